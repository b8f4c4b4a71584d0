package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawdeploy/clawdeploy/internal/enginetest"
)

// builtPath is the clawdeploy binary TestMain builds for the tests to run.
var builtPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "clawdeploy-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	builtPath = filepath.Join(dir, "clawdeploy")
	if out, err := exec.Command("go", "build", "-o", builtPath, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building clawdeploy: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// operatorProject copies the repository's project and example stack into a temporary directory,
// with a file backend of its own, as an operator's checkout would be.
func operatorProject(t *testing.T) (dir string, env []string) {
	t.Helper()
	root := enginetest.RepoRoot(t)
	dir = t.TempDir()
	for _, f := range []string{"Pulumi.yaml", "Pulumi.dev.yaml"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Pulumi.yaml's main must exist even though the program runs inline.
	if err := os.MkdirAll(filepath.Join(dir, "cmd", "infra"), 0o755); err != nil {
		t.Fatal(err)
	}
	env = append(os.Environ(),
		"PATH="+filepath.Join(enginetest.PulumiRoot(t), "bin")+string(os.PathListSeparator)+os.Getenv("PATH"),
		"PULUMI_BACKEND_URL=file://"+t.TempDir(),
		"PULUMI_HOME="+t.TempDir(),
		"PULUMI_CONFIG_PASSPHRASE="+enginetest.PassphraseForTests,
		"CLAWDEPLOY_PROJECT_DIR="+dir,
	)
	return dir, env
}

func run(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), builtPath, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running clawdeploy: %v", err)
	}
	return out.String(), errb.String(), code
}

func TestUsageErrorsExitTwo(t *testing.T) {
	t.Parallel()
	_, env := operatorProject(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no stack", []string{"up"}, "--stack is required"},
		{"unknown flag", []string{"up", "--stack", "dev", "--bogus"}, "flag provided but not defined: -bogus"},
		{"destroy without --yes", []string{"destroy", "--stack", "dev"}, "pass --yes to confirm"},
		{"no project", []string{"--dir", t.TempDir(), "preview", "--stack", "dev"}, "has no Pulumi.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, code := run(t, env, tt.args...)
			if code != 2 {
				t.Errorf("exit code = %d, want 2; stderr: %s", code, stderr)
			}
			if !strings.HasPrefix(stderr, "clawdeploy: ") || !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr = %q, want a clawdeploy: line containing %q", stderr, tt.want)
			}
		})
	}
}

func TestMissingPassphraseIsAUsageError(t *testing.T) {
	t.Parallel()
	_, env := operatorProject(t)
	env = append(env, "PULUMI_CONFIG_PASSPHRASE=")
	var kept []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PULUMI_CONFIG_PASSPHRASE") {
			kept = append(kept, kv)
		}
	}
	_, stderr, code := run(t, kept, "preview", "--stack", "dev")
	if code != 2 || !strings.Contains(stderr, "PULUMI_CONFIG_PASSPHRASE") {
		t.Errorf("exit %d, stderr %q; want 2 naming PULUMI_CONFIG_PASSPHRASE", code, stderr)
	}
}

func TestInvalidConfigFailsWithTheKeyNamed(t *testing.T) {
	t.Parallel()
	dir, env := operatorProject(t)
	stack := filepath.Join(dir, "Pulumi.dev.yaml")
	b, err := os.ReadFile(stack)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(b), "openclaw:availability_zone: me-central-1a", "openclaw:availability_zone: us-east-1a", 1)
	if err := os.WriteFile(stack, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := run(t, env, "preview", "--stack", "dev")
	if code == 0 {
		t.Fatalf("preview of an invalid stack succeeded:\n%s", stdout)
	}
	if !strings.Contains(stdout, `config availability_zone must be an availability zone of region me-central-1`) ||
		!strings.Contains(stdout, `got "us-east-1a"`) {
		t.Errorf("output does not explain the bad zone:\n%s", stdout)
	}
	if strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr should be one line, the output is above:\n%s", stderr)
	}
}
