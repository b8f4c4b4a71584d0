package cloudinit

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bigState adds about 1 GB to a host's state, as a busy gateway's could hold: 50 SQLite databases
// of 8 MB of incompressible rows (memory and embeddings), 300 MB of session transcripts (text)
// and 300 MB of media (incompressible). It returns the databases.
func bigState(b testing.TB, data string) []string {
	b.Helper()
	var dbs []string
	for i := range 50 {
		db := filepath.Join(data, fmt.Sprintf(".openclaw/memory/agent-%02d.sqlite", i))
		sqlite(b, db, "PRAGMA journal_mode=WAL; CREATE TABLE chunks(id INTEGER PRIMARY KEY, body BLOB, at REAL);"+
			"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "+
			"INSERT INTO chunks(body, at) SELECT randomblob(4000), 0 FROM n;")
		dbs = append(dbs, db)
	}
	random := make([]byte, 1<<20)
	for i := range 30 {
		var text strings.Builder
		for text.Len() < 10<<20 {
			_, _ = rand.Read(random[:16])
			fmt.Fprintf(&text, `{"role":"assistant","id":"%x","content":"Here is the plan for today: back up, restore, verify."}`+"\n", random[:16])
		}
		writeFile(b, filepath.Join(data, fmt.Sprintf(".openclaw/agents/main/sessions/2026-11-%02d.jsonl", i+1)), []byte(text.String()))
	}
	for i := range 300 {
		_, _ = rand.Read(random)
		writeFile(b, filepath.Join(data, fmt.Sprintf("workspace/media/%03d.jpg", i)), random)
	}
	return dbs
}

func writeFile(b testing.TB, p string, content []byte) {
	b.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o600); err != nil {
		b.Fatal(err)
	}
}

// writeAll writes to every database without pause, round robin, one small transaction each, until
// the benchmark ends.
func writeAll(b testing.TB, dbs []string) {
	b.Helper()
	const program = `
import sqlite3, sys, time
dbs = [sqlite3.connect(p, isolation_level=None, timeout=30) for p in sys.argv[1:]]
print("ready", flush=True)
while True:
    for db in dbs:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO chunks(body, at) VALUES (randomblob(4000), ?)", (time.time(),))
        db.execute("DELETE FROM chunks WHERE id <= (SELECT max(id) FROM chunks) - 2000")
        db.execute("COMMIT")
`
	cmd := exec.Command("python3", append([]string{"-c", program}, dbs...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		b.Fatalf("the writers did not start: %q %v", line, err)
	}
}

// BenchmarkSpotNoticeToFinalBackup times, on a data folder of about 1 GB whose 50 SQLite databases
// are written without pause, the Spot notice to the final backup uploaded to moto S3, with and
// without a rebalance checkpoint before it. The baseline, measured in the same run on the same
// folder, is the least any backup costs: tar, gzip and upload of the folder, nothing else. The
// final backup must leave margin inside the two-minute warning.
func BenchmarkSpotNoticeToFinalBackup(b *testing.B) {
	for _, rebalance := range []bool{false, true} {
		b.Run(fmt.Sprintf("rebalance=%v", rebalance), func(b *testing.B) {
			var took, floor time.Duration
			for range b.N {
				b.StopTimer()
				var dbs []string
				w := startWatcher(b, func(h *host) { dbs = bigState(b, h.data) })
				writeAll(b, dbs)
				start := time.Now()
				tarball := exec.Command("sh", "-c", `tar -C "$1" -czf - . | aws s3 cp - "s3://$2/baseline.tar.gz" --only-show-errors`, "sh", w.h.data, w.bucket)
				tarball.Env = w.h.env
				if out, err := tarball.CombinedOutput(); err != nil {
					b.Fatalf("baseline: %v\n%s", err, out)
				}
				floor += time.Since(start)
				if rebalance {
					w.imds.Rebalance()
					w.until("the checkpoint", func() bool { return strings.Contains(w.log.String(), "checkpoint backup uploaded") })
				}
				b.StartTimer()
				took += w.interrupt()
				b.StopTimer()
				w.checkFinal()
			}
			n := float64(b.N)
			b.ReportMetric(took.Seconds()/n, "s-notice-to-upload")
			b.ReportMetric(floor.Seconds()/n, "s-baseline")
			b.ReportMetric(took.Seconds()/floor.Seconds(), "x-baseline")
			b.ReportMetric(120-took.Seconds()/n, "s-margin")
			if took/time.Duration(b.N) > 100*time.Second {
				b.Errorf("the final backup took %s after the notice: less than 20 s of the two-minute warning left", took/time.Duration(b.N))
			}
		})
	}
}
