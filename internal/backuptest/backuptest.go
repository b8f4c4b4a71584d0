// Package backuptest makes backup archives in the shape the instance's openclaw-backup.sh
// uploads (a gzipped tar of the state folders with a sha256sum manifest at its root, the
// archive's SHA-256 and its time in the object's metadata), whole or broken on purpose.
package backuptest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/clawdeploy/clawdeploy/backup"
)

// Files is a backup's staging tree: path under the data folder -> content.
type Files map[string][]byte

func (f Files) names() []string {
	names := make([]string, 0, len(f))
	for name := range f {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Manifest is what `sha256sum` prints for the tree, as the backup writes it.
func Manifest(f Files) []byte {
	var b strings.Builder
	for _, name := range f.names() {
		sum := sha256.Sum256(f[name])
		fmt.Fprintf(&b, "%s  ./%s\n", hex.EncodeToString(sum[:]), name)
	}
	return []byte(b.String())
}

// Archive tars and gzips the tree with manifest at its root, as `tar -C staging -czf`.
func Archive(t testing.TB, f Files, manifest []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	write := func(name string, content []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: "./" + name, Mode: 0o600, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(content); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "./", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
		t.Fatal(err)
	}
	write(backup.ManifestName, manifest)
	for _, name := range f.names() {
		write(name, f[name])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Upload puts content at bucket/key as the backup does, with sum as its recorded SHA-256 (the
// content's own when empty), and returns the new version's id.
func Upload(t testing.TB, client *s3.Client, bucket, key string, content []byte, sum string) string {
	t.Helper()
	if sum == "" {
		s := sha256.Sum256(content)
		sum = hex.EncodeToString(s[:])
	}
	out, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: bytes.NewReader(content), Metadata: map[string]string{"sha256": sum, "created": "2026-11-30T12:00:00Z",
			"stack": "dev", "reason": "scheduled"}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.VersionId)
}
