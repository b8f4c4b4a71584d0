package automation

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blang/semver"
)

// fakeCLI writes root/bin/pulumi, a script that answers `version` with version and logs every
// run (its arguments, PULUMI_AUTOMATION_API, the first PATH entry, its standard input) to
// root/runs. It exits 7 on `fail`, and on `wait` waits for an interrupt, then exits 42.
func fakeCLI(t *testing.T, version string) (root string, runs func() []string) {
	t.Helper()
	root = t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/bash
input=""
[ -t 0 ] || input=$(timeout 1 cat 2>/dev/null || true)
echo "$* | api=${PULUMI_AUTOMATION_API:-} | path=${PATH%%:*} | in=$input" >> "` + root + `/runs"
case " $* " in
*" version "*) echo "` + version + `" ;;
*" fail "*) echo "it failed" >&2; exit 7 ;;
*" wait "*) trap 'exit 42' INT; echo waiting; while :; do sleep 0.05; done ;;
*) echo out ;;
esac
`
	if err := os.WriteFile(filepath.Join(root, "bin", "pulumi"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return root, func() []string {
		b, _ := os.ReadFile(filepath.Join(root, "runs"))
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
}

// TestPulumiCLIVersionIsAskedOncePerBinary: the first driver asks the binary its version and
// notes it; the next ones read the note; a rebuilt binary is asked again; a version of another
// major, an older one or none at all is refused, as auto.NewPulumiCommand refuses them.
func TestPulumiCLIVersionIsAskedOncePerBinary(t *testing.T) {
	minimum := semver.MustParse("3.259.0")
	root, runs := fakeCLI(t, "v3.260.1")
	state := filepath.Join(t.TempDir(), "state")
	for range 3 {
		cli, err := newPulumiCLI(root, state, minimum)
		if err != nil || cli.Version().String() != "3.260.1" {
			t.Fatalf("newPulumiCLI: %v, version %s", err, cli.Version())
		}
	}
	if got := runs(); len(got) != 1 || !strings.HasPrefix(got[0], "version |") {
		t.Errorf("runs of the CLI for three drivers: %q, want the one version", got)
	}
	// Rebuilt: a new modification time.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(filepath.Join(root, "bin", "pulumi"), later, later); err != nil {
		t.Fatal(err)
	}
	if _, err := newPulumiCLI(root, state, minimum); err != nil || len(runs()) != 2 {
		t.Errorf("a rebuilt binary: %v after %d runs, want its version asked again", err, len(runs()))
	}
	for _, version := range []string{"v3.258.9", "v4.0.0", "a version"} {
		root, _ := fakeCLI(t, version)
		if _, err := newPulumiCLI(root, t.TempDir(), minimum); err == nil {
			t.Errorf("CLI %s accepted as v3.259.0 or later", version)
		}
	}
	if _, err := newPulumiCLI(t.TempDir(), t.TempDir(), minimum); err == nil {
		t.Error("a root without bin/pulumi accepted")
	}
}

// TestPulumiCLIRunsAsTheAutomationAPIDoes: non-interactive (once, never after "--"), with
// PULUMI_AUTOMATION_API set and the CLI's own directory first on PATH, standard input given;
// the exit code and both outputs come back, also to the extra writers; an ended context
// interrupts the CLI.
func TestPulumiCLIRunsAsTheAutomationAPIDoes(t *testing.T) {
	root, runs := fakeCLI(t, "v3.259.0")
	cli, err := newPulumiCLI(root, t.TempDir(), semver.MustParse("3.259.0"))
	if err != nil {
		t.Fatal(err)
	}
	var extra strings.Builder
	out, _, code, err := cli.Run(t.Context(), t.TempDir(), strings.NewReader("a secret"), []io.Writer{&extra}, nil, nil, "stack", "ls")
	if err != nil || code != 0 || out != "out\n" || extra.String() != "out\n" {
		t.Errorf("stack ls: %q (extra %q), exit %d, %v", out, extra.String(), code, err)
	}
	last := func() string { r := runs(); return r[len(r)-1] }
	if want := "--non-interactive stack ls | api=true | path=" + filepath.Join(root, "bin") + " | in=a secret"; last() != want {
		t.Errorf("run as %q, want %q", last(), want)
	}
	_, _, _, _ = cli.Run(t.Context(), t.TempDir(), nil, nil, nil, nil, "--non-interactive", "x", "--", "y")
	if got := last(); !strings.HasPrefix(got, "--non-interactive x -- y |") {
		t.Errorf("given --non-interactive: run as %q", got)
	}
	_, _, _, _ = cli.Run(t.Context(), t.TempDir(), nil, nil, nil, nil, "x", "--", "--non-interactive")
	if got := last(); !strings.HasPrefix(got, "--non-interactive x -- --non-interactive |") {
		t.Errorf("--non-interactive after --: run as %q", got)
	}
	_, stderr, code, err := cli.Run(t.Context(), t.TempDir(), nil, nil, nil, nil, "fail")
	if code != 7 || err == nil || stderr != "it failed\n" {
		t.Errorf("fail: exit %d, %v, stderr %q", code, err, stderr)
	}
	ctx, cancel := context.WithCancel(t.Context())
	waiting := &syncBuilder{}
	go func() {
		for !strings.Contains(waiting.String(), "waiting") {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	if _, _, code, _ := cli.Run(ctx, t.TempDir(), nil, []io.Writer{waiting}, nil, nil, "wait"); code != 42 {
		t.Errorf("an ended context: exit %d, want the CLI's answer to an interrupt, 42", code)
	}
}

// syncBuilder is a strings.Builder that one goroutine writes while another reads it.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
