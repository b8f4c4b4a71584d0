package automation_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/cloudinit"
	"github.com/clawdeploy/clawdeploy/internal/backuptest"
	"github.com/clawdeploy/clawdeploy/internal/moto"
)

// TestAWSCheckpointer takes a pre-upgrade checkpoint in moto: the data volume's snapshot carries
// the tags the AZ guard and `snapshots list` read, and the newest backup is pinned by version.
func TestAWSCheckpointer(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	cfg := m.Config()
	zone := moto.Region + "a"
	vol, err := ec2.NewFromConfig(cfg).CreateVolume(t.Context(), &ec2.CreateVolumeInput{AvailabilityZone: aws.String(zone), Size: aws.Int32(20)})
	if err != nil {
		t.Fatal(err)
	}
	bucket := "openclaw-dev-checkpoint"
	m.CreateBucket(t, bucket)
	files := backuptest.Files{".openclaw/openclaw.json": []byte(`{}`)}
	version := backuptest.Upload(t, s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }), bucket, cloudinit.BackupObject,
		backuptest.Archive(t, files, backuptest.Manifest(files)), "")
	outputs := auto.OutputMap{
		"dataVolumeId":     {Value: aws.ToString(vol.VolumeId)},
		"availabilityZone": {Value: zone},
		"backupBucket":     {Value: bucket},
		"region":           {Value: moto.Region},
	}
	at := time.Date(2026, 11, 30, 13, 0, 0, 0, time.UTC)
	cp, err := (&AWSCheckpointer{Config: &cfg, Now: func() time.Time { return at }}).Checkpoint(t.Context(), "dev", outputs, "ghcr.io/openclaw/openclaw:2026.2.26", "ghcr.io/openclaw/openclaw:2026.3.1")
	if err != nil {
		t.Fatal(err)
	}
	if cp.BackupVersion != version || !cp.At.Equal(at) || cp.Volume != aws.ToString(vol.VolumeId) || !strings.HasPrefix(cp.Snapshot, "snap-") {
		t.Errorf("checkpoint %+v (backup version %s)", cp, version)
	}
	out, err := ec2.NewFromConfig(cfg).DescribeSnapshots(t.Context(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{cp.Snapshot}})
	if err != nil || len(out.Snapshots) != 1 {
		t.Fatalf("describe %s: %v", cp.Snapshot, err)
	}
	tags := map[string]string{}
	for _, tag := range out.Snapshots[0].Tags {
		tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	for k, v := range map[string]string{"OpenClawData": "true", "OpenClawStack": "dev", "OpenClawAz": zone, TagCheckpoint: "pre-upgrade",
		"OpenClawImage": "ghcr.io/openclaw/openclaw:2026.2.26"} {
		if tags[k] != v {
			t.Errorf("snapshot tag %s = %q, want %q (all: %v)", k, tags[k], v, tags)
		}
	}
	if got := cp.String(); !strings.Contains(got, "snapshot "+cp.Snapshot) || !strings.Contains(got, "backup version "+version) {
		t.Errorf("String() = %q", got)
	}
}
