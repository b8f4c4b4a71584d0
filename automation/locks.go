package automation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Lock is one backend lock on a stack, as the engine reports it when it refuses an operation.
type Lock struct {
	URL  string
	User string
	Host string
	PID  int
	At   time.Time
}

// lockedPattern matches the engine's refusal of a locked stack, and each lock's line in it:
// "  file:///…/<id>.json: created by user@host (pid 1234) at 2026-11-22T10:00:00Z".
var (
	lockedPattern = regexp.MustCompile(`the stack is currently locked by \d+ lock\(s\)`)
	lockPattern   = regexp.MustCompile(`(?m)^\s*(\S+): created by (.*)@([^@\s]+) \(pid (\d+)\) at (\S+)`)
)

// parseLocks returns the locks an error names, and whether the error is a lock refusal at all.
func parseLocks(err error) ([]Lock, bool) {
	if err == nil || !lockedPattern.MatchString(err.Error()) {
		return nil, false
	}
	var locks []Lock
	for _, m := range lockPattern.FindAllStringSubmatch(err.Error(), -1) {
		pid, _ := strconv.Atoi(m[4])
		at, _ := time.Parse(time.RFC3339, m[5])
		locks = append(locks, Lock{URL: m[1], User: m[2], Host: m[3], PID: pid, At: at})
	}
	return locks, true
}

// LockHeldError says the stack's backend lock belongs to a process that is alive (or cannot be
// proven dead): the driver never breaks such a lock.
type LockHeldError struct {
	Stack string
	Locks []Lock
}

func (e *LockHeldError) Error() string {
	msg := "stack " + e.Stack + " is locked by a live process:"
	for _, l := range e.Locks {
		msg += " pid " + strconv.Itoa(l.PID) + " on " + l.Host
	}
	return msg + "; it was not touched"
}

// lockFile is a backend lock's content.
type lockFile struct {
	PID       int       `json:"pid"`
	Username  string    `json:"username"`
	Hostname  string    `json:"hostname"`
	Timestamp time.Time `json:"timestamp"`
}

// lockPrefix is where the self-managed backend keeps a stack's locks.
func lockPrefix(project, stack string) string {
	return path.Join(".pulumi", "locks", "organization", project, stack)
}

// fileBackendDir returns the directory of a file:// backend, or "" for another kind.
func (d *Driver) fileBackendDir() string {
	u, err := url.Parse(d.effectiveBackend)
	if err != nil || u.Scheme != "file" {
		return ""
	}
	dir, err := expandHome(u.Host + u.Path)
	if err != nil {
		return ""
	}
	return dir
}

// removeLockFiles removes a stack's locks from a file:// backend, as `pulumi cancel` does, without
// needing the stack to load.
func (d *Driver) removeLockFiles(stack string) error {
	dir := d.fileBackendDir()
	if dir == "" {
		return errors.New("not a file backend")
	}
	entries, err := os.ReadDir(filepath.Join(dir, lockPrefix(d.projectName, stack)))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, lockPrefix(d.projectName, stack), e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// repairFileState removes what a killed write leaves in a file:// backend's stack directory: an
// attributes sidecar (<stack>.json.attrs) that is empty or torn, which makes the stack impossible
// to load ("failed to load checkpoint: EOF"), and temporary files of unfinished writes. The
// checkpoint itself is written atomically (temporary file, then rename) and is left alone. Call
// it only once every writer is known dead.
func (d *Driver) repairFileState(stack string) ([]string, error) {
	dir := d.fileBackendDir()
	if dir == "" {
		return nil, nil
	}
	stacks := filepath.Join(dir, ".pulumi", "stacks", d.projectName)
	entries, err := os.ReadDir(stacks)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, stack+".json") {
			continue
		}
		p := filepath.Join(stacks, name)
		torn := false
		switch {
		case strings.HasSuffix(name, ".tmp"):
			torn = true
		case strings.HasSuffix(name, ".attrs"):
			b, err := os.ReadFile(p)
			torn = err == nil && !json.Valid(b)
		}
		if torn {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return removed, err
			}
			removed = append(removed, name)
		}
	}
	return removed, nil
}

// readLocks lists a stack's backend locks without asking the engine: read from the files of a
// file:// backend or the objects of an s3:// one. supported is false for other backends, whose
// locks are only learnt from the engine's refusal.
func (d *Driver) readLocks(ctx context.Context, stack string) (locks []Lock, supported bool, err error) {
	u, err := url.Parse(d.effectiveBackend)
	if err != nil || d.effectiveBackend == "" {
		return nil, false, nil
	}
	prefix := lockPrefix(d.projectName, stack)
	switch u.Scheme {
	case "file":
		dir := d.fileBackendDir()
		if dir == "" {
			return nil, true, fmt.Errorf("finding the directory of backend %s", d.effectiveBackend)
		}
		entries, err := os.ReadDir(filepath.Join(dir, prefix))
		if errors.Is(err, os.ErrNotExist) {
			return nil, true, nil
		}
		if err != nil {
			return nil, true, err
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, prefix, e.Name()))
			if errors.Is(err, os.ErrNotExist) {
				continue // released meanwhile
			}
			if err != nil {
				return nil, true, err
			}
			locks = append(locks, parseLockFile("file://"+filepath.Join(dir, prefix, e.Name()), b))
		}
		return locks, true, nil
	case "s3":
		return d.readS3Locks(ctx, u, prefix)
	}
	return nil, false, nil
}

func parseLockFile(where string, b []byte) Lock {
	var f lockFile
	_ = json.Unmarshal(b, &f)
	return Lock{URL: where, User: f.Username, Host: f.Hostname, PID: f.PID, At: f.Timestamp}
}

func (d *Driver) readS3Locks(ctx context.Context, u *url.URL, prefix string) ([]Lock, bool, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, true, err
	}
	q := u.Query()
	if r := q.Get("region"); r != "" {
		cfg.Region = r
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if e := q.Get("endpoint"); e != "" {
			if !strings.Contains(e, "://") {
				e = "https://" + e
			}
			o.BaseEndpoint = aws.String(e)
			o.UsePathStyle = true
		}
	})
	full := path.Join(strings.TrimPrefix(u.Path, "/"), prefix) + "/"
	out, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(u.Host), Prefix: aws.String(full)})
	if err != nil {
		return nil, true, fmt.Errorf("listing the locks of %s: %w", u.String(), err)
	}
	var locks []Lock
	for _, o := range out.Contents {
		if !strings.HasSuffix(aws.ToString(o.Key), ".json") {
			continue
		}
		obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(u.Host), Key: o.Key})
		if err != nil {
			continue // released meanwhile
		}
		b, _ := io.ReadAll(obj.Body)
		_ = obj.Body.Close()
		locks = append(locks, parseLockFile("s3://"+u.Host+"/"+aws.ToString(o.Key), b))
	}
	return locks, true, nil
}
