package backup_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/clawdeploy/clawdeploy/backup"
	"github.com/clawdeploy/clawdeploy/internal/backuptest"
	"github.com/clawdeploy/clawdeploy/internal/moto"
)

const requestKey = "requests/backup"

// TestBackupRequests: the caller's side of a backup request against moto S3; the instance's side
// (the spot watcher answering) is tested against this one in package cloudinit.
func TestBackupRequests(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)

	t.Run("refused before any call", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t, m)
		for _, bad := range [][2]string{{"", "pre-upgrade"}, {"up 1", "pre-upgrade"}, {"up-1", "pre upgrade"}, {"x;rm", "r"}, {strings.Repeat("a", 65), "r"}} {
			if err := backup.Request(t.Context(), b.client, b.name, requestKey, bad[0], bad[1]); err == nil || !strings.Contains(err.Error(), "A-Z a-z 0-9") {
				t.Errorf("Request(%q, %q) = %v", bad[0], bad[1], err)
			}
		}
		if out, err := b.client.ListObjectVersions(t.Context(), &s3.ListObjectVersionsInput{Bucket: &b.name}); err != nil || len(out.Versions) != 0 {
			t.Errorf("the bucket holds %d versions after refused requests (%v)", len(out.Versions), err)
		}
	})

	t.Run("answer among newer backups", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t, m)
		b.upload(t, []byte("scheduled before"), "")
		since := time.Now()
		if err := backup.Request(t.Context(), b.client, b.name, requestKey, "up-7", "pre-upgrade"); err != nil {
			t.Fatal(err)
		}
		body, err := b.client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: &b.name, Key: aws.String(requestKey)})
		if err != nil {
			t.Fatal(err)
		}
		var line bytes.Buffer
		_, _ = line.ReadFrom(body.Body)
		if line.String() != "up-7 pre-upgrade\n" {
			t.Errorf("request object %q", line.String())
		}
		answer, err := b.client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &b.name, Key: aws.String(key), Body: strings.NewReader("answer"),
			Metadata: map[string]string{"request": "up-7", "reason": "pre-upgrade", "created": "2026-11-30T14:00:00Z"}})
		if err != nil {
			t.Fatal(err)
		}
		b.upload(t, []byte("scheduled after"), "")
		got, err := backup.Await(t.Context(), b.client, b.name, key, requestKey, "up-7", since, 50*time.Millisecond, 10*time.Second)
		if err != nil || got.VersionID != aws.ToString(answer.VersionId) || !got.TakenAt.Equal(time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)) {
			t.Errorf("Await = %+v, %v; want version %s", got, err, aws.ToString(answer.VersionId))
		}
		if err := backup.Withdraw(t.Context(), b.client, b.name, requestKey); err != nil {
			t.Fatal(err)
		}
		if _, err := b.client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &b.name, Key: aws.String(requestKey)}); err == nil {
			t.Errorf("the request is still there after Withdraw")
		}
	})

	t.Run("no answer in the budget", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t, m)
		since := time.Now()
		backuptest.Upload(t, b.client, b.name, key, []byte("scheduled, not the answer"), "")
		start := time.Now()
		got, err := backup.Await(t.Context(), b.client, b.name, key, requestKey, "up-8", since, 100*time.Millisecond, time.Second)
		if !errors.Is(err, backup.ErrNoAnswer) || got.VersionID != "" || !strings.Contains(err.Error(), "up-8 in 1s") {
			t.Errorf("Await = %+v, %v; want ErrNoAnswer", got, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Await gave up after %s, budget 1s", took)
		}
	})

	t.Run("a failure answer ends the wait", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t, m)
		since := time.Now()
		fail := func(line string) {
			t.Helper()
			if _, err := b.client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &b.name, Key: aws.String(backup.FailureKey(requestKey)),
				Body: strings.NewReader(line)}); err != nil {
				t.Fatal(err)
			}
		}
		// Another request's failure is not this one's.
		fail("up-8 the restore has not completed\n")
		if _, err := backup.Await(t.Context(), b.client, b.name, key, requestKey, "up-9", since, 50*time.Millisecond, 500*time.Millisecond); !errors.Is(err, backup.ErrNoAnswer) {
			t.Errorf("Await of up-9 beside up-8's failure: %v, want ErrNoAnswer", err)
		}
		fail("up-9 openclaw-backup.sh: the restore of /opt/openclaw has not completed\n")
		start := time.Now()
		_, err := backup.Await(t.Context(), b.client, b.name, key, requestKey, "up-9", since, 50*time.Millisecond, 10*time.Minute)
		var failed *backup.FailedError
		if !errors.As(err, &failed) || failed.Why != "openclaw-backup.sh: the restore of /opt/openclaw has not completed" ||
			!strings.Contains(err.Error(), "the instance's backup for request up-9 failed: openclaw-backup.sh: the restore") {
			t.Errorf("Await = %v, want the failure", err)
		}
		if took := time.Since(start); took > time.Minute {
			t.Errorf("the failure ended a 10-minute wait after %s", took)
		}
		if err := backup.Withdraw(t.Context(), b.client, b.name, requestKey); err != nil {
			t.Fatal(err)
		}
		if _, err := b.client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &b.name, Key: aws.String(backup.FailureKey(requestKey))}); err == nil {
			t.Errorf("the failure answer is still there after Withdraw")
		}
	})
}
