package backup_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/clawdeploy/clawdeploy/backup"
	"github.com/clawdeploy/clawdeploy/internal/backuptest"
	"github.com/clawdeploy/clawdeploy/internal/moto"
)

const key = "openclaw-state.tar.gz"

// database returns a SQLite database with a table and an index over 2000 rows, made by sqlite3.
func database(t *testing.T) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "db.sqlite")
	sql := "CREATE TABLE chunks(id INTEGER PRIMARY KEY, text TEXT); CREATE INDEX chunks_text ON chunks(text);" +
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) " +
		"INSERT INTO chunks(text) SELECT 'remember ' || i || ' ' || hex(randomblob(20)) FROM n;"
	if out, err := exec.Command("sqlite3", p, sql).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func goodState(t *testing.T) backuptest.Files {
	return backuptest.Files{
		".openclaw/openclaw.json":                []byte(`{"gateway":{"port":18789}}`),
		".openclaw/agents/main/sessions/a.jsonl": []byte("{\"role\":\"user\"}\n"),
		".openclaw/memory/main.sqlite":           database(t),
		"workspace/my notes.txt":                 []byte("a name with a space\n"),
		"workspace/memory.db":                    database(t),
		"auth-profile-secrets/auth-profile.key":  bytes.Repeat([]byte{7}, 32),
		"workspace/empty.txt":                    nil,
	}
}

// bucket is a versioned moto bucket and an S3 client for it.
type bucket struct {
	name   string
	client *s3.Client
}

// newBucket makes a bucket of its own for a subtest on the test's one emulator.
func newBucket(t *testing.T, m *moto.Server) *bucket {
	name := "openclaw-" + strings.NewReplacer(" ", "-", "/", "-", "_", "-").Replace(strings.ToLower(t.Name()))
	b := &bucket{name: name, client: s3.NewFromConfig(m.Config(), func(o *s3.Options) { o.UsePathStyle = true })}
	m.CreateBucket(t, b.name)
	return b
}

// upload puts content as the backup does and returns the version id.
func (b *bucket) upload(t *testing.T, content []byte, sum string) string {
	t.Helper()
	return backuptest.Upload(t, b.client, b.name, key, content, sum)
}

func (b *bucket) verify(t *testing.T, version string) *backup.Report {
	t.Helper()
	r, err := backup.Verify(t.Context(), b.client, b.name, key, version, t.TempDir())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return r
}

// problems are the report's problems, one string each.
func problems(r *backup.Report) []string {
	var out []string
	for _, p := range r.Problems {
		out = append(out, p.String())
	}
	return out
}

// TestVerify runs every case on one emulator.
func TestVerify(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	t.Run("good", func(t *testing.T) { t.Parallel(); verifyAGoodBackup(t, m) })
	t.Run("problems", func(t *testing.T) { t.Parallel(); verifyFindsWhatIsWrong(t, m) })
	t.Run("older version", func(t *testing.T) { t.Parallel(); verifyAnOlderVersion(t, m) })
}

func verifyAGoodBackup(t *testing.T, m *moto.Server) {
	b := newBucket(t, m)
	s := goodState(t)
	b.upload(t, backuptest.Archive(t, s, backuptest.Manifest(s)), "")
	r := b.verify(t, "")
	if !r.Restorable || r.Files != 7 || r.Databases != 2 || r.Reason != "scheduled" || r.TakenAt.Format("15:04") != "12:00" {
		t.Fatalf("report %+v, problems %q", r, problems(r))
	}
	if got := r.Summary(); got != "restorable, taken at 2026-11-30T12:00:00Z (scheduled), 7 files, 2 databases" {
		t.Errorf("summary %q", got)
	}
}

// verifyFindsWhatIsWrong: a truncated archive, a corrupted database and a manifest that lies
// are each reported, naming the file; none is restorable.
func verifyFindsWhatIsWrong(t *testing.T, m *moto.Server) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T) (content []byte, sum string)
		want []string // substrings, one for each problem, in order
	}{
		{"truncated", func(t *testing.T) ([]byte, string) {
			s := goodState(t)
			whole := backuptest.Archive(t, s, backuptest.Manifest(s))
			sum := sha256.Sum256(whole)
			return whole[:len(whole)/2], hex.EncodeToString(sum[:])
		}, []string{"the archive has sha256", "the archive is cut short or damaged"}},
		{"corrupted database", func(t *testing.T) ([]byte, string) {
			s := goodState(t)
			db := s["workspace/memory.db"]
			// Scribble over the middle of the file: pages of the table and its index.
			for i := len(db) / 2; i < len(db)/2+3000; i++ {
				db[i] ^= 0x5a
			}
			return backuptest.Archive(t, s, backuptest.Manifest(s)), "" // the manifest and the archive's sum are honest
		}, []string{"workspace/memory.db: PRAGMA integrity_check: "}},
		{"lying manifest", func(t *testing.T) ([]byte, string) {
			s := goodState(t)
			listed := backuptest.Files{}
			for k, v := range s {
				listed[k] = v
			}
			listed["workspace/my notes.txt"] = []byte("something else")
			delete(listed, ".openclaw/openclaw.json")
			listed["workspace/gone.txt"] = []byte("never archived")
			return backuptest.Archive(t, s, backuptest.Manifest(listed)), ""
		}, []string{
			".openclaw/openclaw.json: in the archive but not in the manifest",
			"workspace/my notes.txt: sha256 ",
			"workspace/gone.txt: in the manifest but not in the archive",
		}},
		{"no manifest", func(t *testing.T) ([]byte, string) {
			s := goodState(t)
			return backuptest.Archive(t, s, []byte("not a manifest\n")), ""
		}, []string{backup.ManifestName + ": line 1 is not a sha256sum line"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBucket(t, m)
			content, sum := tc.make(t)
			b.upload(t, content, sum)
			r := b.verify(t, "")
			got := problems(r)
			if r.Restorable || len(got) != len(tc.want) {
				t.Fatalf("restorable=%v, problems %q, want %d like %q", r.Restorable, got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to say %q", i, got[i], w)
				}
			}
			if !strings.HasPrefix(r.Summary(), "NOT restorable") {
				t.Errorf("summary %q", r.Summary())
			}
		})
	}
}

// verifyAnOlderVersion: the newest backup is broken, the one before is good; --version
// checks that one.
func verifyAnOlderVersion(t *testing.T, m *moto.Server) {
	b := newBucket(t, m)
	s := goodState(t)
	good := b.upload(t, backuptest.Archive(t, s, backuptest.Manifest(s)), "")
	b.upload(t, []byte("not an archive"), "")
	if r := b.verify(t, ""); r.Restorable {
		t.Errorf("the newest, broken backup passed: %+v", r)
	}
	if r := b.verify(t, good); !r.Restorable || r.VersionID != good {
		t.Errorf("version %s: %+v %q", good, r, problems(r))
	}
	if _, err := backup.Verify(t.Context(), b.client, b.name, key, "no-such-version", t.TempDir()); err == nil ||
		!strings.Contains(err.Error(), "backup version no-such-version") {
		t.Errorf("an unknown version: %v", err)
	}
}
