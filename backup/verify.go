package backup

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	_ "modernc.org/sqlite" // the driver PRAGMA integrity_check runs on
)

// ManifestName is the manifest's name at the archive's root: one `sha256sum` line for every
// regular file in the archive.
const ManifestName = ".clawdeploy-manifest.sha256"

// Report is what a verification found.
type Report struct {
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	VersionID string `json:"versionId,omitempty"`
	// TakenAt, Reason and Stack are what the backup recorded in its object's metadata.
	TakenAt time.Time `json:"takenAt,omitzero"`
	Reason  string    `json:"reason,omitempty"`
	Stack   string    `json:"stack,omitempty"`
	SHA256  string    `json:"sha256,omitempty"`
	Size    int64     `json:"size"`
	// Files counts the regular files restored, Databases the SQLite databases among them.
	Files     int `json:"files"`
	Databases int `json:"databases"`
	// Restorable is true when nothing failed: the archive, every file and every database.
	Restorable bool      `json:"restorable"`
	Problems   []Problem `json:"problems,omitempty"`
}

// Problem is one thing that failed, and the file it is about ("" for the archive as a whole).
type Problem struct {
	File string `json:"file,omitempty"`
	Why  string `json:"why"`
}

func (p Problem) String() string {
	if p.File == "" {
		return p.Why
	}
	return p.File + ": " + p.Why
}

// Summary is the report in one line.
func (r *Report) Summary() string {
	taken := "at an unrecorded time"
	if !r.TakenAt.IsZero() {
		taken = "at " + r.TakenAt.UTC().Format(time.RFC3339)
	}
	if r.Restorable {
		return fmt.Sprintf("restorable, taken %s (%s), %d files, %d databases", taken, orUnknown(r.Reason), r.Files, r.Databases)
	}
	return fmt.Sprintf("NOT restorable, taken %s: %d problem(s), first %s", taken, len(r.Problems), r.Problems[0])
}

func orUnknown(s string) string {
	if s == "" {
		return "reason unrecorded"
	}
	return s
}

// S3 is the part of the S3 API a verification uses.
type S3 interface {
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// Verify downloads s3://bucket/key (version: that version, "" the newest) into scratch and
// verifies it. The error is for what kept it from looking at all (the bucket, the object, the
// scratch directory); whatever is wrong with the backup itself is in the report's Problems.
func Verify(ctx context.Context, client S3, bucket, key, version, scratch string) (*Report, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if version != "" {
		in.VersionId = aws.String(version)
	}
	obj, err := client.GetObject(ctx, in)
	if err != nil {
		what := "the newest backup"
		if version != "" {
			what = "backup version " + version
		}
		return nil, fmt.Errorf("reading %s at s3://%s/%s: %w", what, bucket, key, err)
	}
	defer func() { _ = obj.Body.Close() }()
	r := &Report{Bucket: bucket, Key: key, VersionID: aws.ToString(obj.VersionId), SHA256: obj.Metadata["sha256"],
		Reason: obj.Metadata["reason"], Stack: obj.Metadata["stack"]}
	if t, err := time.Parse(time.RFC3339, obj.Metadata["created"]); err == nil {
		r.TakenAt = t
	}

	archive := filepath.Join(scratch, "backup.tar.gz")
	f, err := os.Create(archive)
	if err != nil {
		return nil, fmt.Errorf("creating the scratch copy: %w", err)
	}
	sum := sha256.New()
	r.Size, err = io.Copy(io.MultiWriter(f, sum), obj.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("downloading s3://%s/%s: %w", bucket, key, err)
	}
	got := hex.EncodeToString(sum.Sum(nil))
	switch {
	case r.SHA256 == "":
		r.problem("", "the backup recorded no sha256 in its metadata: the restore refuses it")
	case got != r.SHA256:
		r.problem("", fmt.Sprintf("the archive has sha256 %s, the backup recorded %s (%d bytes downloaded)", got, r.SHA256, r.Size))
	}

	tree := filepath.Join(scratch, "tree")
	if err := unpack(archive, tree); err != nil {
		r.problem("", err.Error())
		r.done()
		return r, nil
	}
	r.checkTree(tree)
	r.done()
	return r, nil
}

func (r *Report) problem(file, why string) {
	r.Problems = append(r.Problems, Problem{File: file, Why: why})
}

func (r *Report) done() { r.Restorable = len(r.Problems) == 0 }

// unpack extracts a gzipped tar into dir as the restore's `tar -xz` would, refusing any member
// that would land outside it.
func unpack(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	gz, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("the archive is not gzip: %w", err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("the archive is cut short or damaged: %w", err)
		}
		name := filepath.Clean(h.Name)
		if name == "." {
			continue
		}
		if !filepath.IsLocal(name) {
			return fmt.Errorf("the archive has a member outside its root: %q", h.Name)
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, p); err != nil {
				return err
			}
		case tar.TypeReg:
			out, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("the archive is cut short or damaged in %s: %w", name, err)
			}
		default:
			return fmt.Errorf("the archive has %s of an unexpected type %q", name, h.Typeflag)
		}
	}
}

// checkTree checks the unpacked files against the manifest, both ways, and every SQLite
// database with PRAGMA integrity_check.
func (r *Report) checkTree(tree string) {
	listed, err := readManifest(filepath.Join(tree, ManifestName))
	if err != nil {
		r.problem(ManifestName, err.Error())
		return
	}
	var files []string
	err = filepath.WalkDir(tree, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		if rel, _ := filepath.Rel(tree, p); rel != ManifestName {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		r.problem("", fmt.Sprintf("reading the unpacked backup: %v", err))
		return
	}
	r.Files = len(files)
	for _, rel := range files {
		want, ok := listed[rel]
		delete(listed, rel)
		got, err := fileSum(filepath.Join(tree, rel))
		switch {
		case err != nil:
			r.problem(rel, err.Error())
			continue
		case !ok:
			r.problem(rel, "in the archive but not in the manifest")
		case got != want:
			r.problem(rel, fmt.Sprintf("sha256 %s, the manifest says %s", got, want))
		}
		if isSQLite(filepath.Join(tree, rel)) {
			r.Databases++
			if res := integrity(filepath.Join(tree, rel)); res != "ok" {
				r.problem(rel, "PRAGMA integrity_check: "+res)
			}
		}
	}
	var missing []string
	for rel := range listed {
		missing = append(missing, rel)
	}
	sort.Strings(missing)
	for _, rel := range missing {
		r.problem(rel, "in the manifest but not in the archive")
	}
}

// readManifest parses `sha256sum` output: "<hex>  ./path", a line starting with a backslash
// when the name holds a backslash or a newline (escaped as \\ and \n).
func readManifest(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errors.New("the backup has no manifest: the restore refuses it")
	}
	if err != nil {
		return nil, err
	}
	listed := map[string]string{}
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		escaped := strings.HasPrefix(line, `\`)
		line = strings.TrimPrefix(line, `\`)
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 64 {
			return nil, fmt.Errorf("line %d is not a sha256sum line: %q", i+1, line)
		}
		if escaped {
			name = strings.NewReplacer(`\\`, `\`, `\n`, "\n").Replace(name)
		}
		listed[filepath.Clean(name)] = sum
	}
	return listed, nil
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// isSQLite tells a SQLite database by its header, whatever its name, as the backup does.
func isSQLite(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }()
	head := make([]byte, 16)
	n, _ := io.ReadFull(f, head)
	return n == 16 && string(head) == "SQLite format 3\x00"
}

// integrity runs PRAGMA integrity_check on a database, read-only, and returns its answer ("ok"
// when sound), or why it could not.
func integrity(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err.Error()
	}
	// A file: URI with the path escaped, so that a ? or # in a name stays part of it.
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: abs}).EscapedPath()+"?mode=ro")
	if err != nil {
		return err.Error()
	}
	defer func() { _ = db.Close() }()
	rows, err := db.Query("PRAGMA integrity_check")
	if err != nil {
		return err.Error()
	}
	defer func() { _ = rows.Close() }()
	var lines []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err.Error()
		}
		lines = append(lines, s)
	}
	if err := rows.Err(); err != nil {
		return err.Error()
	}
	if len(lines) > 3 {
		lines = append(lines[:3], fmt.Sprintf("… %d more", len(lines)-3))
	}
	return strings.Join(lines, "; ")
}
