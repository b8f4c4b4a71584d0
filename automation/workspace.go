package automation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"

	"github.com/clawdeploy/clawdeploy"
)

// openWorkspace resolves where the stacks live: the state directory, the project (the
// operator's checkout, or the target's built-in definition in backend mode) and the state
// backend. It creates nothing: directories are made when a stack is first opened, so a command
// refused before that leaves nothing behind.
func (d *Driver) openWorkspace(opts *Options) error {
	stateDir := opts.StateDir
	if stateDir == "" {
		stateDir = "~/.clawdeploy"
	}
	stateDir, err := expandHome(stateDir)
	if err != nil {
		return fmt.Errorf("finding the home directory for the state directory: %w", err)
	}
	if d.stateDir, err = filepath.Abs(stateDir); err != nil {
		return fmt.Errorf("resolving the state directory: %w", err)
	}

	backend := opts.BackendURL
	if backend == "" {
		backend = os.Getenv("PULUMI_BACKEND_URL")
	}
	if opts.ProjectDir != "" {
		if d.projectDir, err = filepath.Abs(opts.ProjectDir); err != nil {
			return fmt.Errorf("resolving project directory %s: %w", opts.ProjectDir, err)
		}
		file := filepath.Join(d.projectDir, "Pulumi.yaml")
		if _, err := os.Stat(file); err != nil {
			return fmt.Errorf("project directory %s has no Pulumi.yaml: %w", d.projectDir, err)
		}
		proj, err := workspace.LoadProject(file)
		if err != nil {
			return fmt.Errorf("reading %s: %w", file, err)
		}
		d.projectName = proj.Name.String()
		if backend == "" && proj.Backend != nil {
			d.effectiveBackend = proj.Backend.URL
		}
	} else {
		if d.project, err = d.builtInProject(); err != nil {
			return err
		}
		d.projectName = d.project.Name.String()
		if backend == "" {
			d.ownBackend = filepath.Join(d.stateDir, "state")
			backend = "file://" + d.ownBackend
		}
	}
	if backend != "" {
		d.env["PULUMI_BACKEND_URL"] = backend
		d.effectiveBackend = backend
	}
	// The CLI runs in each stack's work directory: a relative root would name another place.
	if opts.PulumiRoot != "" {
		root, err := filepath.Abs(opts.PulumiRoot)
		if err != nil {
			return &UsageError{Err: fmt.Errorf("--pulumi-root %s: %w", opts.PulumiRoot, err)}
		}
		d.pulumiRoot = root
	}
	return nil
}

// expandHome replaces a leading ~ (alone or before a /) with the home directory.
func expandHome(path string) (string, error) {
	rest, ok := strings.CutPrefix(path, "~")
	if !ok || rest != "" && !strings.HasPrefix(rest, "/") {
		return path, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, rest), nil
}

// builtInProject is the project definition of backend mode: the target's embedded project
// definition, without its main (the program runs inline) and its backend (the driver's
// decides); a bare project for a program of the caller's.
func (d *Driver) builtInProject() (*workspace.Project, error) {
	if d.profile.ProjectYAML() == nil {
		return &workspace.Project{Name: clawdeploy.Project, Runtime: workspace.NewProjectRuntimeInfo("go", nil)}, nil
	}
	dir, err := os.MkdirTemp("", "clawdeploy-project-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	path := filepath.Join(dir, "Pulumi.yaml")
	if err := os.WriteFile(path, d.profile.ProjectYAML(), 0o600); err != nil {
		return nil, err
	}
	proj, err := workspace.LoadProject(path)
	if err != nil {
		return nil, fmt.Errorf("reading the built-in project definition: %w", err)
	}
	proj.Main = ""
	proj.Backend = nil
	return proj, nil
}

// lookupEnv is a variable of the CLI's environment: the driver's own (Options.Env), else the
// process's.
func (d *Driver) lookupEnv(k string) (string, bool) {
	if v, ok := d.env[k]; ok {
		return v, true
	}
	return os.LookupEnv(k)
}

// checkPassphrase fails early, with the fix, when a self-managed backend would need a passphrase
// that nobody set: the CLI would otherwise stop half-way through stack creation.
func (d *Driver) checkPassphrase() error {
	for _, k := range []string{"PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"} {
		if _, ok := d.lookupEnv(k); ok {
			return nil
		}
	}
	backend := d.env["PULUMI_BACKEND_URL"]
	if backend != "" && !strings.HasPrefix(backend, "file://") && !strings.HasPrefix(backend, "s3://") &&
		!strings.HasPrefix(backend, "gs://") && !strings.HasPrefix(backend, "azblob://") {
		return nil // Pulumi Cloud manages secrets itself
	}
	return &UsageError{Err: errors.New("PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) is not set: " +
		"the self-managed state backend encrypts stack secrets with it; set it before running")}
}

// workDir is where a stack's workspace lives.
func (d *Driver) workDir(stack string) string {
	if d.projectDir != "" {
		return d.projectDir
	}
	return filepath.Join(d.stateDir, "work", stack)
}

// stack selects the named stack, creating it when create is true. A stack that does not exist
// is a *NotFoundError, found without touching anything when the backend is a directory.
func (d *Driver) stack(ctx context.Context, name string, create bool) (auto.Stack, error) {
	d.stacksMu.Lock()
	s, opened := d.stacks[name]
	d.stacksMu.Unlock()
	if opened {
		return s, nil // its workspace names it in every command: selecting it again costs a CLI run
	}
	exists, known := d.stackOnDisk(name)
	if !create && known && !exists {
		return auto.Stack{}, &NotFoundError{Stack: name}
	}
	dir := d.workDir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return auto.Stack{}, fmt.Errorf("creating the work directory of %s: %w", name, err)
	}
	if d.ownBackend != "" {
		if err := os.MkdirAll(d.ownBackend, 0o700); err != nil {
			return auto.Stack{}, fmt.Errorf("creating the state backend %s: %w", d.ownBackend, err)
		}
	}
	if err := d.checkCLI(); err != nil {
		return auto.Stack{}, err
	}
	opts := []auto.LocalWorkspaceOption{auto.WorkDir(dir), auto.Pulumi(d.cli), auto.EnvVars(d.env)}
	if d.project != nil {
		opts = append(opts, auto.Project(*d.project))
	}
	var err error
	switch {
	case create && known && !exists:
		// The directory says it is new: `stack init` alone, not a `stack select` that fails first
		// (unless another process made it meanwhile).
		if s, err = auto.NewStackInlineSource(ctx, name, "", d.profile.Program(), opts...); auto.IsCreateStack409Error(err) {
			s, err = auto.SelectStackInlineSource(ctx, name, "", d.profile.Program(), opts...)
		}
	case create && !known:
		s, err = auto.UpsertStackInlineSource(ctx, name, "", d.profile.Program(), opts...)
	default:
		s, err = auto.SelectStackInlineSource(ctx, name, "", d.profile.Program(), opts...)
	}
	if err != nil {
		if !create && strings.Contains(err.Error(), "no stack named") {
			return auto.Stack{}, &NotFoundError{Stack: name}
		}
		return auto.Stack{}, fmt.Errorf("opening stack %s: %w", name, err)
	}
	d.stacksMu.Lock()
	d.stacks[name] = s
	d.stacksMu.Unlock()
	return s, nil
}

// checkCLI checks the Pulumi CLI once, on first use (newPulumiCLI: a binary already checked is
// not asked again).
func (d *Driver) checkCLI() error {
	d.cliOne.Do(func() {
		d.cli, d.cliErr = newPulumiCLI(d.pulumiRoot, d.stateDir, CLIVersion)
	})
	if d.cliErr != nil {
		return fmt.Errorf("checking the Pulumi CLI (need v%s or later; `make tools` builds it into ./bin): %w",
			CLIVersion, d.cliErr)
	}
	return nil
}

// stackOnDisk reports whether a file:// backend holds the stack, from its files; known is false
// for other backends, which only the CLI can ask.
func (d *Driver) stackOnDisk(name string) (exists, known bool) {
	base, known := d.stackBase(name)
	return base != "", known
}

// stackBase is where a file:// backend keeps the stack: its state file is base.json (or
// .json.gz), its tags base.pulumi-tags. Empty when the stack is not there; known is false for
// other backends.
func (d *Driver) stackBase(name string) (base string, known bool) {
	dir := d.fileBackendDir()
	if dir == "" {
		return "", false
	}
	stacks := filepath.Join(dir, ".pulumi", "stacks")
	// The project-scoped layout, then the legacy one; plain or gzipped state files.
	for _, base := range []string{filepath.Join(stacks, d.projectName, name), filepath.Join(stacks, name)} {
		for _, ext := range []string{".json", ".json.gz"} {
			if _, err := os.Stat(base + ext); err == nil {
				return base, true
			}
		}
	}
	return "", true
}

// pendingOnDisk reports whether a file:// backend's state file of the stack holds pending
// operations, read from its file (Pulumi's checkpoint format, version 3) without a CLI run; known is
// false for other backends, a gzipped or unreadable state file, or another format, which only
// the CLI can read. A stack with no state file has none.
func (d *Driver) pendingOnDisk(name string) (pending, known bool) {
	base, known := d.stackBase(name)
	if !known || base == "" {
		return false, known
	}
	b, err := os.ReadFile(base + ".json")
	if err != nil {
		return false, false
	}
	var versioned apitype.VersionedCheckpoint
	if err := json.Unmarshal(b, &versioned); err != nil || versioned.Version != 3 {
		return false, false
	}
	var checkpoint apitype.CheckpointV3
	if err := json.Unmarshal(versioned.Checkpoint, &checkpoint); err != nil {
		return false, false
	}
	return checkpoint.Latest != nil && len(checkpoint.Latest.PendingOperations) > 0, true
}

// pulumi runs the CLI on a stack's workspace, with stdin as its standard input: the way to give
// it a secret without putting it in a process's arguments.
func (d *Driver) pulumi(ctx context.Context, stack string, stdin io.Reader, args ...string) error {
	if err := d.checkCLI(); err != nil {
		return err
	}
	env := make([]string, 0, len(d.env))
	for k, v := range d.env {
		env = append(env, k+"="+v)
	}
	stdout, stderr, code, err := d.cli.Run(ctx, d.workDir(stack), stdin, nil, nil, env, args...)
	if err != nil {
		return fmt.Errorf("pulumi %s: exit %d: %w\n%s%s", args[0], code, err, stdout, stderr)
	}
	return nil
}

// removeStack removes a stack from the backend with its history and backups, and its
// configuration: in backend mode the whole work directory; in operator mode the stack file is
// the operator's and stays, as keep gives it (nil: as it is).
func (d *Driver) removeStack(ctx context.Context, stack string, keep []byte) error {
	args := []string{"stack", "rm", "--yes", "--remove-backups", "--stack", stack}
	if d.projectDir != "" {
		args = append(args, "--preserve-config")
	}
	if err := d.pulumi(ctx, stack, nil, args...); err != nil {
		return err
	}
	d.stacksMu.Lock()
	delete(d.stacks, stack)
	d.stacksMu.Unlock()
	if d.projectDir == "" {
		return os.RemoveAll(d.workDir(stack))
	}
	if keep != nil {
		return os.WriteFile(d.stackFile(stack), keep, 0o600)
	}
	return nil
}

// stackFile is a stack's settings file, Pulumi.<stack>.yaml, where its configuration lives.
func (d *Driver) stackFile(stack string) string {
	return filepath.Join(d.workDir(stack), "Pulumi."+stack+".yaml")
}

// TagTarget is the stack tag that records a deployment's target in the backend, beside its
// state, where every journal and every state directory sees it.
const TagTarget = "clawdeploy:target"

// checkTarget refuses, with a *UsageError, a stack that another target made: running one
// target's program on another's stack would delete everything the first one made. It returns
// whether the stack carries the tag at all.
func (d *Driver) checkTarget(ctx context.Context, s auto.Stack) (tagged bool, err error) {
	tags, err := d.stackTags(ctx, s)
	if err != nil {
		return false, fmt.Errorf("reading the tags of stack %s: %w", s.Name(), err)
	}
	target, ok := tags[TagTarget]
	if ok && target != d.profile.Name() {
		return true, &UsageError{Err: fmt.Errorf("stack %s is a %s deployment; run it with --target %s (its stack tag %s says so; this is %s)",
			s.Name(), target, target, TagTarget, d.profile.Name())}
	}
	return ok, nil
}

// claimTarget checks the stack's target (checkTarget) and tags a stack that has none with this
// driver's.
func (d *Driver) claimTarget(ctx context.Context, s auto.Stack) error {
	tagged, err := d.checkTarget(ctx, s)
	if err != nil || tagged {
		return err
	}
	if err := s.Workspace().SetTag(ctx, s.Name(), TagTarget, d.profile.Name()); err != nil {
		return fmt.Errorf("tagging stack %s with its target: %w", s.Name(), err)
	}
	return nil
}

// stackTags reads a stack's tags: from its tags file in a file:// backend (the diy backend's
// format, version 1), without a CLI run; through the CLI for other backends.
func (d *Driver) stackTags(ctx context.Context, s auto.Stack) (map[string]string, error) {
	base, known := d.stackBase(s.Name())
	if !known || base == "" {
		return s.Workspace().ListTags(ctx, s.Name())
	}
	b, err := os.ReadFile(base + ".pulumi-tags")
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	var file struct {
		Version int               `json:"version"`
		Tags    map[string]string `json:"tags"`
	}
	if err := json.Unmarshal(b, &file); err != nil || file.Version != 1 {
		return s.Workspace().ListTags(ctx, s.Name()) // a format this driver does not know: ask the CLI
	}
	return file.Tags, nil
}

// pulumiCLI is the Pulumi CLI the driver runs, an auto.PulumiCommand. It runs commands as the
// Automation API's own does (non-interactive, PULUMI_AUTOMATION_API=true, the CLI's directory
// first on PATH, interrupted when the context ends and killed 10 s later), but it does not ask
// the binary for its version at every start as auto.NewPulumiCommand does: `pulumi version`
// costs a third of a second of CPU (most of it the CLI's own start-up), once per operation. The
// version is asked once per binary and remembered in the state directory (cliNote).
type pulumiCLI struct {
	command string
	version semver.Version
}

// Version is the CLI's version.
func (p pulumiCLI) Version() semver.Version { return p.version }

// Run runs the CLI with args in workdir and returns its outputs and exit code.
func (p pulumiCLI) Run(ctx context.Context, workdir string, stdin io.Reader, additionalOutput []io.Writer,
	additionalErrorOutput []io.Writer, additionalEnv []string, args ...string,
) (string, string, int, error) {
	if flags := args[:indexOr(args, "--", len(args))]; !slices.Contains(flags, "--non-interactive") {
		args = append([]string{"--non-interactive"}, args...)
	}
	cmd := exec.CommandContext(ctx, p.command, args...)
	cmd.Dir = workdir
	cmd.Env = withPathFirst(append(append(os.Environ(), additionalEnv...), "PULUMI_AUTOMATION_API=true"), filepath.Dir(p.command))
	var stdout, stderr bytes.Buffer
	cmd.Stdout = io.MultiWriter(append(additionalOutput, &stdout)...)
	cmd.Stderr = io.MultiWriter(append(additionalErrorOutput, &stderr)...)
	cmd.Stdin = stdin
	cmd.Cancel = func() error {
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			_ = cmd.Process.Kill()
		}
		return nil
	}
	cmd.WaitDelay = 10 * time.Second
	code := -2 // as the Automation API reports a CLI that could not run
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); ok { //nolint:errorlint // cmd.Run returns it unwrapped
		code = exit.ExitCode()
	} else if err == nil {
		code = 0
	}
	return stdout.String(), stderr.String(), code, err
}

// indexOr is the index of v in s, or or when s does not hold it.
func indexOr(s []string, v string, or int) int {
	if i := slices.Index(s, v); i >= 0 {
		return i
	}
	return or
}

// withPathFirst returns env with dir first on its PATH.
func withPathFirst(env []string, dir string) []string {
	for i, kv := range slices.Backward(env) {
		if old, ok := strings.CutPrefix(kv, "PATH="); ok {
			out := slices.Clone(env)
			out[i] = "PATH=" + dir + string(os.PathListSeparator) + old
			return out
		}
	}
	return append(env, "PATH="+dir)
}

// cliNote is what the state directory remembers of a CLI binary whose version was asked:
// the binary is known by its path, size and modification time, and a rebuilt or replaced one is
// asked again.
type cliNote struct {
	Path    string    `json:"path"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"modTime"`
	Version string    `json:"version"`
}

// cliNoteFile is the note's name in the state directory.
const cliNoteFile = "pulumi-cli.json"

// newPulumiCLI returns the CLI at root/bin/pulumi (the pulumi on PATH when root is empty),
// checked to be minimum or a later version of the same major one, as auto.NewPulumiCommand
// checks it. Its version comes from the note in stateDir when the binary is the one noted, from
// `pulumi version` otherwise (and is noted, when stateDir is writable).
func newPulumiCLI(root, stateDir string, minimum semver.Version) (pulumiCLI, error) {
	command := filepath.Join(root, "bin", "pulumi")
	if root == "" {
		found, err := exec.LookPath("pulumi")
		if err != nil {
			return pulumiCLI{}, err
		}
		if command, err = filepath.Abs(found); err != nil {
			return pulumiCLI{}, err
		}
	}
	info, err := os.Stat(command)
	if err != nil {
		return pulumiCLI{}, err
	}
	here := cliNote{Path: command, Size: info.Size(), ModTime: info.ModTime().UTC()}
	notePath := filepath.Join(stateDir, cliNoteFile)
	var note cliNote
	if b, err := os.ReadFile(notePath); err == nil && json.Unmarshal(b, &note) == nil &&
		note.Path == here.Path && note.Size == here.Size && note.ModTime.Equal(here.ModTime) {
		here.Version = note.Version
	} else {
		cmd := exec.Command(command, "version")
		cmd.Env = append(os.Environ(), "PULUMI_SKIP_UPDATE_CHECK=true")
		out, err := cmd.Output()
		if err != nil {
			return pulumiCLI{}, fmt.Errorf("running `%s version`: %w", command, err)
		}
		here.Version = strings.TrimSpace(string(out))
		if b, err := json.Marshal(here); err == nil && os.MkdirAll(stateDir, 0o700) == nil {
			_ = writeFileAtomic(notePath, b)
		}
	}
	version, err := semver.ParseTolerant(here.Version)
	switch {
	case err != nil:
		return pulumiCLI{}, fmt.Errorf("the version of %s, %q: %w", command, here.Version, err)
	case version.Major != minimum.Major || version.LT(minimum):
		return pulumiCLI{}, fmt.Errorf("%s is version %s; this driver needs v%d.x, v%s or later", command, here.Version, minimum.Major, minimum)
	}
	return pulumiCLI{command: command, version: version}, nil
}

// writeFileAtomic writes b to path through a temporary file and a rename, so that a reader never
// sees half of it.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), path)
	}
	if werr != nil {
		_ = os.Remove(f.Name())
	}
	return werr
}
