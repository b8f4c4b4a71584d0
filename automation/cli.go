package automation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/blang/semver"
)

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
