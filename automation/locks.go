package automation

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
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
// state file itself is written atomically (temporary file, then rename) and is left alone. Call
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

// A driver's identity (Owner) and the processes that work for it: how a later process tells a
// dead driver's orphans from anything else, and ends them.

// EnvOwner is set in the environment of every Pulumi CLI the driver starts, and so of the CLI's
// provider plugins: it says which driver process they work for, so that a later process can
// tell orphans of a dead driver from anything else.
const EnvOwner = "CLAWDEPLOY_OWNER"

// Owner identifies one driver process: its host, its pid, the pid's start time (so that a pid the
// kernel gave to another process since is not taken for it) and a random nonce.
type Owner struct {
	Host  string
	PID   int
	Start uint64
	Nonce string
}

// NewOwner identifies the current process.
func NewOwner() (Owner, error) {
	host, err := os.Hostname()
	if err != nil {
		return Owner{}, fmt.Errorf("reading the host name: %w", err)
	}
	start, ok := processStart(os.Getpid())
	if !ok {
		return Owner{}, errors.New("reading this process's start time from /proc")
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return Owner{Host: host, PID: os.Getpid(), Start: start, Nonce: hex.EncodeToString(b)}, nil
}

// String is the owner as the journal stores it: host/pid/start/nonce.
func (o Owner) String() string {
	return fmt.Sprintf("%s/%d/%d/%s", o.Host, o.PID, o.Start, o.Nonce)
}

// ParseOwner reads an owner string.
func ParseOwner(s string) (Owner, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 4 {
		return Owner{}, fmt.Errorf("owner %q is not host/pid/start/nonce", s)
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil {
		return Owner{}, fmt.Errorf("owner %q: %w", s, err)
	}
	start, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return Owner{}, fmt.Errorf("owner %q: %w", s, err)
	}
	return Owner{Host: parts[0], PID: pid, Start: start, Nonce: parts[3]}, nil
}

// DeadOn reports whether the owner is provably dead as seen from host: it ran there, and its
// process is gone or is now another process. Owners on other hosts are never provably dead here;
// only their lease's expiry frees what they hold.
func (o Owner) DeadOn(host string) bool {
	if o.Host != host {
		return false
	}
	start, ok := processStart(o.PID)
	return !ok || start != o.Start
}

// ownerDeadHere returns the journal's liveness check for owner strings, as seen from this host.
func ownerDeadHere() func(string) bool {
	host, _ := os.Hostname()
	return func(s string) bool {
		o, err := ParseOwner(s)
		return err == nil && o.DeadOn(host)
	}
}

// processStart returns the start time of a process, in clock ticks since boot, from
// /proc/<pid>/stat, and whether the process exists.
func processStart(pid int) (uint64, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces: count from its end.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(s[i+1:])
	// After the name come state (field 3) onwards; starttime is field 22.
	if len(fields) < 20 {
		return 0, false
	}
	if fields[0] == "Z" { // a zombie has exited: it holds nothing
		return 0, false
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	return start, err == nil
}

// processAlive reports whether pid runs (and is not a zombie).
func processAlive(pid int) bool {
	_, ok := processStart(pid)
	return ok
}

// ProcessOwner returns the driver a process works for (the owner string of its EnvOwner), from
// its environment; empty when it works for none, or is gone.
func ProcessOwner(pid int) string {
	env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		return ""
	}
	for _, kv := range strings.Split(string(env), "\x00") {
		if v, ok := strings.CutPrefix(kv, EnvOwner+"="); ok {
			return v
		}
	}
	return ""
}

// processesOf returns the processes whose environment says they work for owner: the Pulumi CLIs
// it started and their provider plugins.
func processesOf(owner string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err == nil && pid != os.Getpid() && ProcessOwner(pid) == owner {
			pids = append(pids, pid)
		}
	}
	return pids
}

// stopOrphans ends the processes a dead owner left, in an order that loses nothing. The Pulumi
// CLIs go first: each gets SIGINT, lets its in-flight provider calls finish, records them in its
// state, releases its lock and shuts its plugins down; after grace it is killed. Only then
// are plugins still there (their CLI died with the owner) stopped: interrupting a plugin while
// its CLI waits on it would lose the answer to a create that already happened, and the engine
// would forget the resource. It returns how many processes it found.
func stopOrphans(owner string, grace time.Duration) int {
	pids := processesOf(owner)
	var clis []int
	for _, pid := range pids {
		if processName(pid) == "pulumi" {
			clis = append(clis, pid)
		}
	}
	stop(clis, grace)
	stop(processesOf(owner), 5*time.Second)
	return len(pids)
}

// killProcessesOf kills at once what still works for owner when its drain window is over: the
// CLIs first, so none sees its plugins die and records a failure, then the plugins. Their pending
// operations and lock are what resume repairs. It returns how many processes it killed.
func killProcessesOf(owner string) int {
	return killCLIFirst(processesOf(owner))
}

// killCLIFirst kills pids at once, the Pulumi CLIs among them first.
func killCLIFirst(pids []int) int {
	slices.SortFunc(pids, func(a, b int) int {
		return cmp.Compare(boolInt(processName(b) == "pulumi"), boolInt(processName(a) == "pulumi"))
	})
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(pids)
}

// killProcessesIn kills, CLI first, the processes working for owner whose working directory is
// dir or under it: one deployment's engine and plugins among the worker's others.
func killProcessesIn(owner, dir string) int {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return 0
	}
	var pids []int
	for _, pid := range processesOf(owner) {
		cwd, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "cwd"))
		if err == nil && (cwd == abs || strings.HasPrefix(cwd, abs+string(filepath.Separator))) {
			pids = append(pids, pid)
		}
	}
	return killCLIFirst(pids)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// stop sends SIGINT to pids, waits up to grace for them to end, and kills what remains.
func stop(pids []int, grace time.Duration) {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGINT)
	}
	deadline := time.Now().Add(grace)
	for _, pid := range pids {
		for processAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if processAlive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// processName is the base name of a process's executable.
func processName(pid int) string {
	exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
	if err != nil {
		return ""
	}
	return filepath.Base(exe)
}
