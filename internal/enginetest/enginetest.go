package enginetest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// PassphraseForTests encrypts the secrets of test stacks.
const PassphraseForTests = "clawdeploy-tests"

// RepoRoot returns the module root: the nearest directory above the test's working directory that
// holds go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// PulumiRoot returns the directory whose bin/pulumi is the CLI that `make tools` built. A missing
// CLI fails the test: engine tests are what prove the driver works, so they never skip.
func PulumiRoot(t testing.TB) string {
	t.Helper()
	root := RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "bin", "pulumi")); err != nil {
		t.Fatalf("the Pulumi CLI is missing (%v): run `make tools` first", err)
	}
	return root
}

// Project writes a Pulumi.yaml for an inline program into a new temporary directory, with a file
// backend in another, and returns the project directory and the environment a driver needs.
func Project(t testing.TB, name string) (dir string, env map[string]string) {
	t.Helper()
	dir = t.TempDir()
	state := t.TempDir()
	yaml := fmt.Sprintf("name: %s\nruntime: go\nbackend:\n  url: file://%s\n", name, state)
	if err := os.WriteFile(filepath.Join(dir, "Pulumi.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatalf("writing Pulumi.yaml: %v", err)
	}
	return dir, map[string]string{
		"PULUMI_CONFIG_PASSPHRASE": PassphraseForTests,
		"PULUMI_HOME":              t.TempDir(),
		"PULUMI_BACKEND_URL":       "file://" + state,
	}
}
