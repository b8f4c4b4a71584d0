package ec2spot_test

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/clawdeploy/clawdeploy/backup"
	"github.com/clawdeploy/clawdeploy/cloudinit"
	"github.com/clawdeploy/clawdeploy/internal/backuptest"
	"github.com/clawdeploy/clawdeploy/internal/moto"
	"github.com/clawdeploy/clawdeploy/targets"
	"github.com/clawdeploy/clawdeploy/targets/ec2spot"
)

// TestCheckpointer takes a pre-upgrade checkpoint in moto: the data volume's snapshot carries
// the tags the AZ guard and `snapshots list` read, and the backup pinned by version is the one the
// instance took for the request, or, when it does not answer in time, the newest one, said so.
func TestCheckpointer(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	cfg := m.Config()
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	zone := moto.Region + "a"
	files := backuptest.Files{".openclaw/openclaw.json": []byte(`{}`)}
	archive := backuptest.Archive(t, files, backuptest.Manifest(files))
	at := time.Date(2026, 11, 30, 13, 0, 0, 0, time.UTC)
	from, to := "ghcr.io/openclaw/openclaw:2026.2.26", "ghcr.io/openclaw/openclaw:2026.3.1"

	checkpoint := func(t *testing.T, bucket string, wait time.Duration) *targets.Checkpoint {
		t.Helper()
		volume := m.Volume(t, zone)
		outputs := auto.OutputMap{
			"data_volume_id":    {Value: volume},
			"availability_zone": {Value: zone},
			"backup_bucket":     {Value: bucket},
			"region":            {Value: moto.Region},
		}
		c := &ec2spot.Checkpointer{Config: &cfg, Now: func() time.Time { return at }, BackupWait: wait, Poll: 100 * time.Millisecond}
		cp, err := c.Checkpoint(t.Context(), "dev", outputs, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if !cp.At.Equal(at) || cp.Volume != volume || !strings.HasPrefix(cp.Snapshot, "snap-") {
			t.Errorf("checkpoint %+v", cp)
		}
		out, err := ec2.NewFromConfig(cfg).DescribeSnapshots(t.Context(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{cp.Snapshot}})
		if err != nil || len(out.Snapshots) != 1 {
			t.Fatalf("describe %s: %v", cp.Snapshot, err)
		}
		tags := map[string]string{}
		for _, tag := range out.Snapshots[0].Tags {
			tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		}
		for k, v := range map[string]string{"OpenClawData": "true", "OpenClawStack": "dev", "OpenClawAz": zone, targets.TagCheckpoint: "pre-upgrade", "OpenClawImage": from} {
			if tags[k] != v {
				t.Errorf("snapshot tag %s = %q, want %q (all: %v)", k, tags[k], v, tags)
			}
		}
		if _, err := client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(cloudinit.BackupRequestObject)}); err == nil {
			t.Errorf("the backup request was left in the bucket")
		}
		return cp
	}

	t.Run("the instance answers", func(t *testing.T) {
		t.Parallel()
		bucket := "openclaw-dev-answered"
		m.CreateBucket(t, bucket)
		backuptest.Upload(t, client, bucket, cloudinit.BackupObject, archive, "")
		// A stand-in for the spot watcher, which answers the same way (cloudinit's
		// TestBackupRequestIsAnsweredOnce runs the real one against package backup).
		answered := make(chan string, 1)
		go onRequest(t, client, bucket, func(id, reason string) {
			out, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(cloudinit.BackupObject), Body: bytes.NewReader(archive),
				Metadata: map[string]string{"request": id, "reason": reason, "created": "2026-11-30T13:00:05Z"}})
			if err == nil {
				answered <- aws.ToString(out.VersionId)
			}
		})
		cp := checkpoint(t, bucket, time.Minute)
		version := <-answered
		if cp.BackupVersion != version || !cp.BackupFresh || cp.BackupNote != "" || !cp.BackupTakenAt.Equal(at.Add(5*time.Second)) {
			t.Errorf("checkpoint %+v, want the answer %s", cp, version)
		}
		if got := cp.String(); !strings.Contains(got, "snapshot "+cp.Snapshot) || !strings.Contains(got, "fresh backup version "+version) {
			t.Errorf("String() = %q", got)
		}
	})

	t.Run("the instance's backup fails", func(t *testing.T) {
		t.Parallel()
		bucket := "openclaw-dev-failed"
		m.CreateBucket(t, bucket)
		newest := backuptest.Upload(t, client, bucket, cloudinit.BackupObject, archive, "")
		// A stand-in for the spot watcher answering that the backup failed, as it does.
		go onRequest(t, client, bucket, func(id, _ string) {
			_, _ = client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(backup.FailureKey(cloudinit.BackupRequestObject)),
				Body: strings.NewReader(id + " openclaw-backup.sh: could not back up the database x\n")})
		})
		start := time.Now()
		cp := checkpoint(t, bucket, 10*time.Minute)
		if cp.BackupVersion != newest || cp.BackupFresh || !strings.Contains(cp.BackupNote, "backup for request up-") ||
			!strings.Contains(cp.BackupNote, "failed: openclaw-backup.sh: could not back up the database x") {
			t.Errorf("checkpoint %+v, want the newest backup %s and the instance's failure", cp, newest)
		}
		if took := time.Since(start); took > 2*time.Minute {
			t.Errorf("the failure answer ended a 10-minute wait after %s", took)
		}
	})

	t.Run("no answer", func(t *testing.T) {
		t.Parallel()
		bucket := "openclaw-dev-unanswered"
		m.CreateBucket(t, bucket)
		newest := backuptest.Upload(t, client, bucket, cloudinit.BackupObject, archive, "")
		cp := checkpoint(t, bucket, time.Second)
		if cp.BackupVersion != newest || cp.BackupFresh || !strings.Contains(cp.BackupNote, "did not answer a backup request in 1s") {
			t.Errorf("checkpoint %+v, want the newest backup %s and why it is not fresh", cp, newest)
		}
		if got := cp.String(); !strings.Contains(got, "backup version "+newest+" (taken at 2026-11-30T12:00:00Z), no fresh backup") {
			t.Errorf("String() = %q", got)
		}
	})
}

// onRequest waits for the backup request in bucket, as the spot watcher polls it, and hands its
// id and reason to answer, once.
func onRequest(t *testing.T, client *s3.Client, bucket string, answer func(id, reason string)) {
	for t.Context().Err() == nil {
		req, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(cloudinit.BackupRequestObject)})
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		body, _ := io.ReadAll(req.Body)
		id, reason, _ := strings.Cut(strings.TrimSpace(string(body)), " ")
		answer(id, reason)
		return
	}
}
