package cloudinit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/clawdeploy/clawdeploy/backup"
	"github.com/clawdeploy/clawdeploy/internal/imdsfake"
	"github.com/clawdeploy/clawdeploy/internal/moto"
)

// lockedBuffer is an output buffer that a test may read while a process writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// watcher is openclaw-spot-watch.sh running on a fake host against the IMDS fake, with moto S3
// and SSM behind the backups and the status parameter.
type watcher struct {
	t      testing.TB
	h      *host
	m      *moto.Server
	imds   *imdsfake.Server
	bucket string
	log    *lockedBuffer
	done   chan error
}

// startWatcher seeds a host's state (more, when not nil, adds to it) and starts its watcher,
// once it has read the metadata quietly twice: no signal, no action.
func startWatcher(t testing.TB, more func(h *host)) *watcher {
	t.Helper()
	m := moto.Start(t)
	w := &watcher{t: t, m: m, imds: imdsfake.Start(t), bucket: "openclaw-dev-spot", log: &lockedBuffer{}, done: make(chan error, 1)}
	m.CreateBucket(t, w.bucket)
	w.h = newHost(t, testArgs(w.bucket), m.Env())
	w.h.appendSettings(map[string]string{"OPENCLAW_IMDS_ENDPOINT": w.imds.URL})
	seedState(t, w.h.data)
	markRestored(t, w.h)
	if more != nil {
		more(w.h)
	}
	cmd := w.h.command(mounts{data: true}, "openclaw-spot-watch.sh")
	cmd.Stdout, cmd.Stderr = w.log, w.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	w.until("two quiet metadata reads", func() bool { reads, _ := w.imds.Reads(); return reads >= 2 })
	if calls := w.h.stubCalls(); len(calls) != 0 {
		t.Fatalf("acted without a signal: %v", calls)
	}
	return w
}

// eventBound is how long a test waits for something the watcher does: far beyond what an idle
// machine needs (seconds), so that a loaded one never fails a test that would pass.
const eventBound = 3 * time.Minute

// until waits for ok, failing the test after eventBound.
func (w *watcher) until(what string, ok func() bool) {
	w.t.Helper()
	limit := eventBound
	deadline := time.Now().Add(limit)
	for !ok() {
		select {
		case err := <-w.done:
			w.t.Fatalf("the watcher ended (%v) while waiting for %s:\n%s", err, what, w.log.String())
		default:
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("waited %s for %s in vain:\n%s", limit, what, w.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// interrupt raises the notice and waits for the watcher to end with the final backup uploaded,
// inside the two-minute warning; it returns how long that took.
func (w *watcher) interrupt() time.Duration {
	w.t.Helper()
	noticeAt := w.imds.Interrupt()
	select {
	case err := <-w.done:
		if err != nil {
			w.t.Fatalf("watcher: %v\n%s", err, w.log.String())
		}
	case <-time.After(110 * time.Second):
		w.t.Fatalf("no final backup within the two-minute warning:\n%s", w.log.String())
	}
	return time.Since(noticeAt)
}

// reason is the reason the bucket's newest backup was taken for ("" when there is none).
func (w *watcher) reason() string {
	head, err := w.m.S3().HeadObject(w.t.Context(), &s3.HeadObjectInput{Bucket: &w.bucket, Key: aws.String(BackupObject)})
	if err != nil {
		return ""
	}
	return head.Metadata["reason"]
}

// checkFinal checks what a notice must leave: the gateway and every backup stopped, the final
// backup the newest, no staging left on the volume, the interruption published after the final
// backup started, and no metadata read without a token.
func (w *watcher) checkFinal() {
	w.t.Helper()
	calls := w.h.stubCalls()
	for _, c := range []string{"systemctl stop openclaw.service", "systemctl stop openclaw-backup.timer", "systemctl stop openclaw-backup.service"} {
		if !slices.Contains(calls, c) {
			w.t.Errorf("stub calls = %q, want %q", calls, c)
		}
	}
	if r := w.reason(); r != "spot-interruption" {
		w.t.Errorf("the newest backup was taken for %q, want the final one (spot-interruption)", r)
	}
	if left, _ := filepath.Glob(filepath.Join(w.h.data, ".backup-staging.*")); len(left) != 0 {
		w.t.Errorf("backup staging left on the volume: %v", left)
	}
	if _, unauth := w.imds.Reads(); unauth != 0 {
		w.t.Errorf("%d metadata reads came without an IMDSv2 token", unauth)
	}
	status := w.m.Parameter(w.t, "/openclaw/dev/setup-status")
	if got := strings.TrimSpace(status); got != imdsfake.InstanceID+" INTERRUPTED "+imdsfake.InstanceID {
		w.t.Errorf("status parameter %q, want the interruption of %s", got, imdsfake.InstanceID)
	}
	log := w.log.String()
	started, published := strings.Index(log, "running the final backup"), strings.Index(log, "published INTERRUPTED")
	if started < 0 || published < started {
		w.t.Errorf("the interruption was not published after the final backup started:\n%s", log)
	}
}

// TestSpotNoticeStopsTheGatewayAndBacksUp: a notice alone stops the gateway and takes the final
// backup, timed from the notice to the upload.
func TestSpotNoticeStopsTheGatewayAndBacksUp(t *testing.T) {
	t.Parallel()
	w := startWatcher(t, nil)
	took := w.interrupt()
	w.checkFinal()
	if n := versions(t, w.m, w.bucket); n != 1 {
		t.Errorf("%d backup versions, want the final one", n)
	}
	t.Logf("spot notice to final backup uploaded: %.1fs, polling every 1s", took.Seconds())
}

// TestRebalanceTakesACheckpointThenTheNoticeAFinalBackup: a rebalance recommendation makes the
// watcher back up at once while the gateway keeps serving, once for the recommendation however
// often it is read; the notice that follows still stops the gateway and takes the final backup.
func TestRebalanceTakesACheckpointThenTheNoticeAFinalBackup(t *testing.T) {
	t.Parallel()
	w := startWatcher(t, nil)
	w.imds.Rebalance()
	w.until("a checkpoint backup", func() bool { return w.reason() == "rebalance-recommendation" })
	w.until("the checkpoint's end", func() bool { return strings.Contains(w.log.String(), "checkpoint backup uploaded") })
	readsThen, _ := w.imds.Reads()
	w.until("the watcher polling on", func() bool { reads, _ := w.imds.Reads(); return reads >= readsThen+6 })
	if calls := w.h.stubCalls(); len(calls) != 0 {
		t.Fatalf("a rebalance recommendation stopped something: %q", calls)
	}
	if n := versions(t, w.m, w.bucket); n != 1 {
		t.Fatalf("%d backup versions after one recommendation read again and again, want 1", n)
	}
	took := w.interrupt()
	w.checkFinal()
	if n := versions(t, w.m, w.bucket); n != 2 {
		t.Errorf("%d backup versions, want the checkpoint and the final one", n)
	}
	t.Logf("notice after a checkpoint to final backup uploaded: %.1fs", took.Seconds())
}

// slowCheckpoints puts an aws in front of the real one that holds a checkpoint's upload for ten
// minutes, marking that it started: a notice that comes then must not wait for it.
func slowCheckpoints(h *host) {
	real, err := exec.LookPath("aws")
	if err != nil {
		h.t.Fatal(err)
	}
	marker := filepath.Join(h.root, "checkpoint-uploading")
	script := fmt.Sprintf(`#!/bin/sh
case "$*" in *reason=rebalance-recommendation*) touch %q; sleep 600 ;; esac
exec %q "$@"
`, marker, real)
	if err := os.WriteFile(filepath.Join(h.root, "stubs", "aws"), []byte(script), 0o755); err != nil {
		h.t.Fatal(err)
	}
}

// TestNoticeDuringACheckpointEndsIt: a notice that comes while the checkpoint backup is still
// uploading ends that backup (whole: nothing of it reaches the bucket, nothing is left on the
// volume) and takes the final one without waiting for it.
func TestNoticeDuringACheckpointEndsIt(t *testing.T) {
	t.Parallel()
	w := startWatcher(t, slowCheckpoints)
	w.imds.Rebalance()
	w.until("the checkpoint's upload", func() bool {
		_, err := os.Stat(filepath.Join(w.h.root, "checkpoint-uploading"))
		return err == nil
	})
	// The held upload lasts ten minutes: a watcher that waited for it would miss interrupt's
	// two-minute bound however idle the machine, and one that does not takes seconds however busy.
	took := w.interrupt()
	w.checkFinal()
	if n := versions(t, w.m, w.bucket); n != 1 {
		t.Errorf("%d backup versions, want only the final one", n)
	}
	if !strings.Contains(w.log.String(), "ended the checkpoint backup in flight") {
		t.Errorf("the watcher did not say it ended the checkpoint:\n%s", w.log.String())
	}
	t.Logf("notice during a checkpoint to final backup uploaded: %.1fs", took.Seconds())
}

// TestBackupRequestIsAnsweredOnce: the driver's side of a pre-upgrade backup (package backup's
// Request and Await) against the real watcher: a request is answered with a backup that carries
// its id and reason while the gateway keeps serving, once however long the request stays; a new
// id is answered again; a request that is not plain is ignored and said so.
func TestBackupRequestIsAnsweredOnce(t *testing.T) {
	t.Parallel()
	w := startWatcher(t, func(h *host) {
		// Every 2 s: each read is an AWS CLI start (a second of CPU); every second would keep a
		// core busy for the whole test.
		h.appendSettings(map[string]string{"OPENCLAW_BACKUP_REQUEST_POLL_SECONDS": "2"})
	})
	cfg := w.m.Config()
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	ask := func(id string) backup.Requested {
		t.Helper()
		since := time.Now()
		if err := backup.Request(t.Context(), client, w.bucket, BackupRequestObject, id, "pre-upgrade"); err != nil {
			t.Fatal(err)
		}
		got, err := backup.Await(t.Context(), client, w.bucket, BackupObject, BackupRequestObject, id, since, 200*time.Millisecond, eventBound)
		if err != nil {
			t.Fatalf("%v\n%s", err, w.log.String())
		}
		head, err := client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &w.bucket, Key: aws.String(BackupObject), VersionId: &got.VersionID})
		if err != nil {
			t.Fatal(err)
		}
		if head.Metadata["reason"] != "pre-upgrade" || head.Metadata["request"] != id || got.TakenAt.IsZero() {
			t.Errorf("the answer to %s: metadata %v, taken at %s", id, head.Metadata, got.TakenAt)
		}
		return got
	}
	backups := func() int {
		t.Helper()
		out, err := client.ListObjectVersions(t.Context(), &s3.ListObjectVersionsInput{Bucket: &w.bucket, Prefix: aws.String(BackupObject)})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Versions)
	}
	first := ask("up-1")
	w.until("the backup's end", func() bool { return strings.Contains(w.log.String(), "checkpoint backup uploaded") })
	request := "/" + w.bucket + "/" + BackupRequestObject
	readsThen := w.m.Requests("GET", request)
	w.until("the watcher reading the answered request three times more", func() bool { return w.m.Requests("GET", request) >= readsThen+3 })
	if n := backups(); n != 1 {
		t.Fatalf("%d backup versions after one request read again and again, want 1", n)
	}
	if second := ask("up-2"); second.VersionID == first.VersionID {
		t.Errorf("the second request was answered with the first backup")
	}
	if calls := w.h.stubCalls(); len(calls) != 0 {
		t.Errorf("a backup request stopped something: %q", calls)
	}

	// A backup that fails (the restore marker gone, so the backup refuses) is answered too: the
	// wait ends with the backup's own reason, not after its budget.
	marker := filepath.Join(w.h.data, ".openclaw-restore-complete")
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	if err := backup.Request(t.Context(), client, w.bucket, BackupRequestObject, "up-3", "pre-upgrade"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := backup.Await(t.Context(), client, w.bucket, BackupObject, BackupRequestObject, "up-3", start, 200*time.Millisecond, 10*time.Minute)
	var failed *backup.FailedError
	if !errors.As(err, &failed) || !strings.Contains(failed.Why, "has not completed: refusing to back up a partial state") {
		t.Fatalf("the answer to a request whose backup fails: %v\n%s", err, w.log.String())
	}
	t.Logf("a failed requested backup answered in %s: %v", time.Since(start).Round(time.Millisecond), err)
	markRestored(t, w.h)
	if n := backups(); n != 2 {
		t.Errorf("%d backup versions after a failed backup, want 2", n)
	}

	if _, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &w.bucket, Key: aws.String(BackupRequestObject),
		Body: strings.NewReader("x; rm -rf / pre-upgrade\n")}); err != nil {
		t.Fatal(err)
	}
	w.until("the refusal", func() bool { return strings.Contains(w.log.String(), "ignored a backup request") })
	if err := backup.Withdraw(t.Context(), client, w.bucket, BackupRequestObject); err != nil {
		t.Fatal(err)
	}
	if n := backups(); n != 2 {
		t.Errorf("%d backup versions, want one for each plain request", n)
	}
}
