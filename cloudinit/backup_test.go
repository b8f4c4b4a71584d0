package cloudinit

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	_ "modernc.org/sqlite" // a SQLite newer than the host's, as the gateway's is

	"github.com/clawdeploy/clawdeploy/backup"
	"github.com/clawdeploy/clawdeploy/internal/moto"
)

// seedState writes an OpenClaw state the way a running gateway leaves it: config, sessions,
// credentials, a SQLite database, workspace files of every kind.
func seedState(t testing.TB, data string) {
	t.Helper()
	random := make([]byte, 1<<20)
	_, _ = rand.Read(random)
	files := map[string]struct {
		content []byte
		mode    os.FileMode
	}{
		".openclaw/openclaw.json":                         {[]byte(`{"gateway":{"port":18789}}`), 0o600},
		".openclaw/agents/main/sessions/2026-11-22.jsonl": {[]byte("{\"role\":\"user\"}\n{\"role\":\"assistant\"}\n"), 0o600},
		".openclaw/credentials/telegram.json":             {[]byte(`{"token":"not-a-real-one"}`), 0o600},
		"workspace/notes/plan.md":                         {[]byte("# plan\n\n- back up\n"), 0o644},
		"workspace/my notes.txt":                          {[]byte("a name with a space\n"), 0o644},
		"workspace/empty.txt":                             {nil, 0o644},
		"workspace/blob.bin":                              {random, 0o640},
	}
	for rel, f := range files {
		p := filepath.Join(data, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.content, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("notes/plan.md", filepath.Join(data, "workspace/plan-link.md")); err != nil {
		t.Fatal(err)
	}
	// The key that encrypts OAuth profile tokens, owned as in the container: by node (1000).
	secrets := filepath.Join(data, "auth-profile-secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "auth-profile.key"), random[:32], 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		for _, p := range []string{secrets, filepath.Join(secrets, "auth-profile.key")} {
			if err := os.Lchown(p, 1000, 1000); err != nil {
				t.Fatal(err)
			}
		}
	}
	sqlite(t, filepath.Join(data, ".openclaw/memory/main.sqlite"),
		"PRAGMA journal_mode=WAL; CREATE TABLE chunks(id INTEGER PRIMARY KEY, text TEXT);"+
			"INSERT INTO chunks(text) VALUES ('remember the milk'), ('and the eggs');")
}

func sqlite(t testing.TB, db, sql string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sqlite3", db, sql).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %s: %v\n%s", db, err, out)
	}
	return strings.TrimSpace(string(out))
}

// markRestored writes the restore marker, as on a host whose restore completed.
func markRestored(t testing.TB, h *host) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(h.data, ".openclaw-restore-complete"), []byte("test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// entry describes one path of a state tree for comparison.
type entry struct {
	Mode  string
	Owner string // uid:gid
	Sum   string // SHA-256 of a file, the .dump of a SQLite database, or a link's target
}

// stateDirs are the directories OpenClaw keeps state in, as the instance scripts list them
// (lib.sh's STATE_DIRS): its state, its workspace, and the key of its auth profiles.
var stateDirs = []string{".openclaw", "workspace", "auth-profile-secrets"}

// stateTree describes the state folders of a data folder.
func stateTree(t *testing.T, data string) map[string]entry {
	t.Helper()
	tree := map[string]entry{}
	for _, top := range stateDirs {
		root := filepath.Join(data, top)
		if _, err := os.Lstat(root); os.IsNotExist(err) {
			continue
		}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(data, p)
			// SQLite's side files come and go as databases are opened, this walk's own .dump
			// included; they are never part of a backup.
			if strings.HasSuffix(rel, "-wal") || strings.HasSuffix(rel, "-shm") || strings.HasSuffix(rel, "-journal") {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			e := entry{Mode: info.Mode().String()}
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				e.Owner = fmt.Sprintf("%d:%d", st.Uid, st.Gid)
			}
			switch {
			case info.Mode()&fs.ModeSymlink != 0:
				e.Sum, _ = os.Readlink(p)
			case info.Mode().IsRegular():
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				if strings.HasPrefix(string(b), "SQLite format 3\x00") {
					e.Sum = "sqlite:" + sqlite(t, p, ".dump")
				} else {
					sum := sha256.Sum256(b)
					e.Sum = hex.EncodeToString(sum[:])
				}
			}
			tree[rel] = e
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return tree
}

// regularFiles counts the regular files of a state tree.
func regularFiles(tree map[string]entry) int {
	n := 0
	for _, e := range tree {
		if strings.HasPrefix(e.Mode, "-") {
			n++
		}
	}
	return n
}

func sameTree(t *testing.T, got, want map[string]entry) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("restored tree lacks %s", p)
		} else if g != w {
			t.Errorf("%s restored as %+v, want %+v", p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("restored tree has an extra %s", p)
		}
	}
}

// versions counts every version of every object in a bucket: a backup that must not touch the
// bucket leaves this number alone.
func versions(t testing.TB, m *moto.Server, bucket string) int {
	t.Helper()
	out, err := m.S3().ListObjectVersions(t.Context(), &s3.ListObjectVersionsInput{Bucket: &bucket})
	if err != nil {
		t.Fatalf("listing the versions in %s: %v", bucket, err)
	}
	return len(out.Versions) + len(out.DeleteMarkers)
}

// archiveEntries lists the members of the backup archive in the bucket.
func archiveEntries(t testing.TB, m *moto.Server, bucket string) []string {
	t.Helper()
	obj, err := m.S3().GetObject(t.Context(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(BackupObject)})
	if err != nil {
		t.Fatalf("getting the backup: %v", err)
	}
	defer func() { _ = obj.Body.Close() }()
	tar := exec.Command("tar", "-tz")
	tar.Stdin = obj.Body
	out, err := tar.Output()
	if err != nil {
		t.Fatalf("tar -t: %v", err)
	}
	return strings.Fields(string(out))
}

// backupMetadata is the newest backup's metadata.
func backupMetadata(t testing.TB, m *moto.Server, bucket string) map[string]string {
	t.Helper()
	head, err := m.S3().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(BackupObject)})
	if err != nil {
		t.Fatalf("head of the backup: %v", err)
	}
	return head.Metadata
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	bucket := "openclaw-dev-roundtrip"
	m.CreateBucket(t, bucket)

	src := newHost(t, testArgs(bucket), m.Env())
	seedState(t, src.data)
	markRestored(t, src)
	took := src.mustRun(mounts{data: true}, "openclaw-backup.sh")

	if meta := backupMetadata(t, m, bucket); meta["sha256"] == "" || meta["reason"] != "scheduled" {
		t.Errorf("backup object metadata: %v", meta)
	}
	// What `clawdeploy backup verify` reads is what the script wrote.
	client := m.S3()
	report, err := backup.Verify(t.Context(), client, bucket, BackupObject, "", t.TempDir())
	if err != nil || !report.Restorable || report.Databases != 1 || report.Files != regularFiles(stateTree(t, src.data)) {
		t.Errorf("verify: %v %+v", err, report)
	}

	dst := newHost(t, testArgs(bucket), m.Env())
	restore := dst.mustRun(mounts{data: true}, "openclaw-restore.sh")
	sameTree(t, stateTree(t, dst.data), stateTree(t, src.data))
	marker, err := os.ReadFile(filepath.Join(dst.data, ".openclaw-restore-complete"))
	if err != nil || !strings.HasPrefix(string(marker), "restored s3://"+bucket) {
		t.Errorf("restore marker = %q, %v", marker, err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dst.data, ".restore-staging*")); len(leftovers) > 0 {
		t.Errorf("restore left %v behind", leftovers)
	}
	t.Logf("round trip: backup %.2fs, restore %.2fs", took.duration.Seconds(), restore.duration.Seconds())

	// A second restore on the same volume does nothing.
	again := dst.mustRun(mounts{data: true}, "openclaw-restore.sh")
	if !strings.Contains(again.stderr, "restore already complete") {
		t.Errorf("second restore: %s", again.stderr)
	}
}

// sqliteWriter is a process that writes to a SQLite database, a transaction of 20 rows at a
// time, holding its connection (and so its -wal or -journal file) open, until the test ends,
// but while it is held. It rests a millisecond after each commit, which leaves hundreds of
// commits a second for a backup to meet and the CPU to the rest of the machine, and counts its
// commits in a file.
type sqliteWriter struct {
	pgid    int
	commits string // the file holding the number of commits so far
}

// hold stops the writer where it is (mid-transaction, maybe).
func (w sqliteWriter) hold() { _ = syscall.Kill(-w.pgid, syscall.SIGSTOP) }

// release lets it write on.
func (w sqliteWriter) release() { _ = syscall.Kill(-w.pgid, syscall.SIGCONT) }

// count returns the commits so far; read while the writer is held, it is exact.
func (w sqliteWriter) count(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile(w.commits)
	if err != nil {
		t.Fatalf("reading the writer's count: %v", err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// writer starts a sqliteWriter on db.
func writer(t testing.TB, db, journalMode string) sqliteWriter {
	t.Helper()
	const program = `
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("PRAGMA journal_mode=" + sys.argv[2])
db.execute("CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, body BLOB, at REAL)")
count = os.open(sys.argv[3], os.O_WRONLY | os.O_CREAT, 0o600)
commits = 0
print("ready", flush=True)
while True:
    db.execute("BEGIN IMMEDIATE")
    for _ in range(20):
        db.execute("INSERT INTO events(body, at) VALUES (randomblob(700), ?)", (time.time(),))
    db.execute("DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - 4000")
    db.execute("COMMIT")
    commits += 1
    os.pwrite(count, b"%d\n" % commits, 0)
    time.sleep(0.001)
`
	w := sqliteWriter{commits: filepath.Join(t.TempDir(), "commits")}
	cmd := exec.Command("python3", "-c", program, db, journalMode, w.commits)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the writer: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("the writer did not start: %q %v", line, err)
	}
	w.pgid = cmd.Process.Pid
	return w
}

// TestBackupIsConsistentUnderWrites backs up while two databases (one in WAL mode, one with a
// rollback journal) are written all along, restores each backup onto a new volume, and checks
// the restored databases: 20 runs, every one must pass PRAGMA integrity_check, and no -wal, -shm
// or -journal file may ever reach the bucket. The writers write from before each backup starts
// until it has ended (each backup must meet at least minCommits of each), and are held while its
// restore is checked, which does not read their databases: two writers at full speed for the
// whole run would take both cores of a small machine from every other test.
func TestBackupIsConsistentUnderWrites(t *testing.T) {
	t.Parallel()
	const runs = 20
	m := moto.Start(t)
	bucket := "openclaw-dev-consistency"
	m.CreateBucket(t, bucket)
	src := newHost(t, testArgs(bucket), m.Env())
	seedState(t, src.data)
	markRestored(t, src)
	writers := []sqliteWriter{
		writer(t, filepath.Join(src.data, ".openclaw/memory/events.sqlite"), "WAL"),
		writer(t, filepath.Join(src.data, "workspace/journal.db"), "DELETE"),
	}

	for _, w := range writers {
		w.hold() // counted from here on exactly: each backup's writes are those between release and hold
	}
	const minCommits = 20
	passed := 0
	var total time.Duration
	for run := 1; run <= runs; run++ {
		var before []int
		for _, w := range writers {
			before = append(before, w.count(t))
			w.release()
		}
		backup := src.mustRun(mounts{data: true}, "openclaw-backup.sh")
		for i, w := range writers {
			w.hold()
			if n := w.count(t) - before[i]; n < minCommits {
				t.Errorf("run %d: writer %d committed %d times during the backup, want %d or more", run, i, n, minCommits)
			}
		}
		total += backup.duration
		for _, e := range archiveEntries(t, m, bucket) {
			if strings.HasSuffix(e, "-wal") || strings.HasSuffix(e, "-shm") || strings.HasSuffix(e, "-journal") {
				t.Errorf("run %d uploaded %s", run, e)
			}
		}
		dst := newHost(t, testArgs(bucket), m.Env())
		dst.mustRun(mounts{data: true}, "openclaw-restore.sh")
		ok := true
		for _, db := range []string{".openclaw/memory/events.sqlite", "workspace/journal.db", ".openclaw/memory/main.sqlite"} {
			p := filepath.Join(dst.data, db)
			if got := sqlite(t, p, "PRAGMA integrity_check;"); got != "ok" {
				t.Errorf("run %d: %s integrity_check = %s", run, db, got)
				ok = false
			}
		}
		if n := sqlite(t, filepath.Join(dst.data, ".openclaw/memory/events.sqlite"), "SELECT count(*) FROM events;"); n == "0" {
			t.Errorf("run %d: the restored events table is empty", run)
			ok = false
		}
		if ok {
			passed++
		}
	}
	t.Logf("consistent restores: %d of %d; mean backup time under writes %.2fs", passed, runs, total.Seconds()/runs)
	if passed != runs {
		t.Errorf("only %d of %d restored backups were consistent", passed, runs)
	}
}

func TestBackupRefusesWithoutItsDisk(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	bucket := "openclaw-dev-refusals"
	m.CreateBucket(t, bucket)

	// One good backup in the bucket: nothing below may replace or add to it.
	good := newHost(t, testArgs(bucket), m.Env())
	seedState(t, good.data)
	markRestored(t, good)
	good.mustRun(mounts{data: true}, "openclaw-backup.sh")
	before := versions(t, m, bucket)

	tests := []struct {
		name    string
		prepare func(h *host)
		mounts  mounts
		want    string
	}{
		{"data folder not mounted", func(h *host) { seedState(t, h.data); markRestored(t, h) }, mounts{}, "is not a mountpoint"},
		{"empty state", func(h *host) {
			markRestored(t, h)
			if err := os.MkdirAll(filepath.Join(h.data, ".openclaw"), 0o700); err != nil {
				t.Fatal(err)
			}
		}, mounts{data: true}, "holds no files"},
		{"no state folder at all", func(h *host) { markRestored(t, h) }, mounts{data: true}, "holds no files"},
		{"restore not finished", func(h *host) { seedState(t, h.data) }, mounts{data: true}, "has not completed"},
	}
	for _, tt := range tests {
		h := newHost(t, testArgs(bucket), m.Env())
		tt.prepare(h)
		r := h.runScript(tt.mounts, "openclaw-backup.sh")
		if r.code == 0 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want a failure saying %q", tt.name, r.code, r.stderr, tt.want)
		}
	}
	if after := versions(t, m, bucket); after != before {
		t.Errorf("the bucket went from %d to %d object versions", before, after)
	}
}

// uploadArchive puts a hand-made backup in the bucket, with the given sha256 metadata.
func uploadArchive(t *testing.T, m *moto.Server, bucket string, content []byte, sum string) {
	t.Helper()
	in := &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(BackupObject), Body: bytes.NewReader(content)}
	if sum != "" {
		in.Metadata = map[string]string{"sha256": sum}
	}
	if _, err := m.S3().PutObject(t.Context(), in); err != nil {
		t.Fatalf("uploading the archive: %v", err)
	}
}

func TestRestoreRefusesWhatItCannotVerify(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	tests := []struct {
		name    string
		prepare func(bucket string)
		want    string
	}{
		{"checksum mismatch", func(b string) {
			uploadArchive(t, m, b, []byte("not the archive"), strings.Repeat("ab", 32))
		}, "the backup recorded"},
		{"no checksum", func(b string) { uploadArchive(t, m, b, []byte("x"), "") }, "has no sha256 metadata"},
		{"manifest mismatch", func(b string) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, ".openclaw"), 0o700); err != nil {
				t.Fatal(err)
			}
			_ = os.WriteFile(filepath.Join(dir, ".openclaw/openclaw.json"), []byte("{}"), 0o600)
			_ = os.WriteFile(filepath.Join(dir, ".clawdeploy-manifest.sha256"),
				[]byte(strings.Repeat("0", 64)+"  ./.openclaw/openclaw.json\n"), 0o600)
			archive := filepath.Join(t.TempDir(), "a.tar.gz")
			if out, err := exec.Command("tar", "-C", dir, "-czf", archive, ".").CombinedOutput(); err != nil {
				t.Fatalf("tar: %v %s", err, out)
			}
			b2, _ := os.ReadFile(archive)
			sum := sha256.Sum256(b2)
			uploadArchive(t, m, b, b2, hex.EncodeToString(sum[:]))
		}, "do not match the manifest"},
		{"missing bucket", func(string) {}, "cannot reach the backup bucket"},
	}
	for i, tt := range tests {
		bucket := fmt.Sprintf("openclaw-dev-verify-%d", i)
		if tt.name != "missing bucket" {
			m.CreateBucket(t, bucket)
		}
		tt.prepare(bucket)
		h := newHost(t, testArgs(bucket), m.Env())
		r := h.runScript(mounts{data: true}, "openclaw-restore.sh")
		if r.code == 0 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want a failure saying %q", tt.name, r.code, r.stderr, tt.want)
		}
		if _, err := os.Stat(filepath.Join(h.data, ".openclaw-restore-complete")); err == nil {
			t.Errorf("%s: the restore marker was written", tt.name)
		}
		if _, err := os.Stat(filepath.Join(h.data, ".openclaw")); err == nil {
			t.Errorf("%s: unverified files were moved into place", tt.name)
		}
	}
}

func TestRestoreOfANewDeploymentWritesTheMarker(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	bucket := "openclaw-dev-fresh"
	m.CreateBucket(t, bucket)
	h := newHost(t, testArgs(bucket), m.Env())
	r := h.mustRun(mounts{data: true}, "openclaw-restore.sh")
	marker, err := os.ReadFile(filepath.Join(h.data, ".openclaw-restore-complete"))
	if err != nil || !strings.HasPrefix(string(marker), "nothing to restore") {
		t.Errorf("marker = %q, %v; stderr %s", marker, err, r.stderr)
	}
	// Not mounted: the restore never writes to the root disk.
	h2 := newHost(t, testArgs(bucket), m.Env())
	if r := h2.runScript(mounts{}, "openclaw-restore.sh"); r.code == 0 {
		t.Errorf("a restore onto an unmounted folder succeeded")
	}
}

// TestKilledRestoreIsCompletedByTheNextRun kills the restore at points spread over its run time.
// After each kill either the marker is absent (and the gateway refuses to start) or the restore
// had finished; the next uninterrupted run always completes it with the right tree.
func TestKilledRestoreIsCompletedByTheNextRun(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	bucket := "openclaw-dev-killed"
	m.CreateBucket(t, bucket)
	src := newHost(t, testArgs(bucket), m.Env())
	seedState(t, src.data)
	big := make([]byte, 24<<20)
	_, _ = rand.Read(big)
	if err := os.WriteFile(filepath.Join(src.data, "workspace/big.bin"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	markRestored(t, src)
	src.mustRun(mounts{data: true}, "openclaw-backup.sh")
	want := stateTree(t, src.data)

	// How long an uninterrupted restore takes here.
	probe := newHost(t, testArgs(bucket), m.Env())
	full := probe.mustRun(mounts{data: true}, "openclaw-restore.sh").duration

	h := newHost(t, testArgs(bucket), m.Env())
	marker := filepath.Join(h.data, ".openclaw-restore-complete")
	const points = 8
	killedBefore := 0
	for i := 1; i <= points; i++ {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		cmd := h.command(mounts{data: true}, "openclaw-restore.sh")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(full * time.Duration(i) / (points + 1))
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if _, err := os.Stat(marker); err == nil {
			sameTree(t, stateTree(t, h.data), want)
			continue
		}
		killedBefore++
		r := h.runScript(mounts{data: true}, "openclaw-start.sh")
		if r.code == 0 || !strings.Contains(r.stderr, "has not completed") {
			t.Errorf("kill %d: the gateway's start check passed without a restore: exit %d %s", i, r.code, r.stderr)
		}
	}
	h.mustRun(mounts{data: true}, "openclaw-restore.sh")
	sameTree(t, stateTree(t, h.data), want)
	t.Logf("full restore %.2fs; %d of %d kills landed before the marker; the next run completed it",
		full.Seconds(), killedBefore, points)
	if killedBefore == 0 {
		t.Errorf("no kill landed before the marker: the test did not interrupt a restore")
	}
}

// TestBackupCopiesADatabaseThisSQLiteCannotRead: OpenClaw's agent database has CHECK constraints
// on octet_length, a function of SQLite 3.43, and the host's sqlite3 (3.40 on Amazon Linux 2023
// and Debian 12) cannot prepare its schema, so VACUUM INTO fails on it. The backup copies such a
// database all the same (SQLite's online backup copies pages), with what is still in its WAL, and
// the restore brings it back whole, as a newer SQLite (the gateway's) reads it.
//
// A reindex's lock, held exclusively meanwhile, is left out (as OpenClaw's own backup does).
func TestBackupCopiesADatabaseThisSQLiteCannotRead(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	bucket := "openclaw-dev-newer-schema"
	m.CreateBucket(t, bucket)
	src := newHost(t, testArgs(bucket), m.Env())
	seedState(t, src.data)
	markRestored(t, src)
	path := filepath.Join(src.data, ".openclaw/agents/main/agent/openclaw-agent.sqlite")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	db.SetMaxOpenConns(1)
	for _, stmt := range []string{
		"PRAGMA journal_mode=WAL",
		"PRAGMA wal_autocheckpoint=0", // the rows stay in the WAL while the backup runs
		`CREATE TABLE navigation(id INTEGER PRIMARY KEY, navigation_json TEXT CHECK (navigation_json IS NULL OR octet_length(navigation_json) <= 16384))`,
		`INSERT INTO navigation(navigation_json) VALUES ('{"version":1}'), ('{"version":2}')`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if out, err := exec.Command("sqlite3", path, "VACUUM INTO '"+filepath.Join(t.TempDir(), "x.sqlite")+"'").CombinedOutput(); err == nil {
		t.Fatalf("this machine's sqlite3 reads the schema (%s): the test proves nothing here", out)
	}
	// A reindex under way, as OpenClaw's memory store runs one: its lock is a database held
	// exclusively, which no copy can read; it is no state, and the backup leaves it out.
	lock, err := sql.Open("sqlite", path+".reindex-lock.sqlite")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Close() }()
	lock.SetMaxOpenConns(1)
	for _, stmt := range []string{"PRAGMA locking_mode=EXCLUSIVE", "CREATE TABLE lease(owner TEXT)", "BEGIN EXCLUSIVE", "INSERT INTO lease VALUES ('reindex')"} {
		if _, err := lock.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}

	src.mustRun(mounts{data: true}, "openclaw-backup.sh")
	report, err := backup.Verify(t.Context(), m.S3(), bucket, BackupObject, "", t.TempDir())
	if err != nil || !report.Restorable || report.Databases != 2 {
		t.Fatalf("verify: %v %+v", err, report)
	}
	for _, entry := range archiveEntries(t, m, bucket) {
		if strings.Contains(entry, "reindex-lock") {
			t.Errorf("the backup holds %s, a reindex's lock", entry)
		}
	}
	dst := newHost(t, testArgs(bucket), m.Env())
	dst.mustRun(mounts{data: true}, "openclaw-restore.sh")
	restored, err := sql.Open("sqlite", filepath.Join(dst.data, ".openclaw/agents/main/agent/openclaw-agent.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = restored.Close() }()
	var n int
	var check string
	if err := restored.QueryRow("SELECT count(*) FROM navigation WHERE octet_length(navigation_json) > 0").Scan(&n); err != nil || n != 2 {
		t.Errorf("restored rows: %d, %v", n, err)
	}
	if err := restored.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("restored integrity: %q, %v", check, err)
	}
}
