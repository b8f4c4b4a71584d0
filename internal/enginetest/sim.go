package enginetest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawdeploy/clawdeploy/images"
	"github.com/clawdeploy/clawdeploy/internal/registrytest"
	"github.com/clawdeploy/clawdeploy/internal/simprovider"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
)

// SimBinaries are the simulated provider, built under the names of the packages it stands in for
// (pulumi-resource-aws, -tls, -command, -sim), and clawdeploy-sim, the driver wired to it.
type SimBinaries struct {
	Dir string
}

// BuildSim builds the simulated binaries into a new temporary directory. Call it once from
// TestMain and remove Dir when the tests end.
func BuildSim() (*SimBinaries, error) {
	bins, err := BuildProviders()
	if err != nil {
		return nil, err
	}
	if err := bins.Build("clawdeploy-sim", "./internal/simprogram/cmd/clawdeploy-sim"); err != nil {
		return nil, err
	}
	return bins, nil
}

// BuildProviders builds the simulated provider alone, under the names of the packages it stands
// in for, into a new temporary directory: what a program run by the Pulumi CLI itself needs.
// Remove Dir when the tests end.
func BuildProviders() (*SimBinaries, error) {
	dir, err := os.MkdirTemp("", "clawdeploy-sim-")
	if err != nil {
		return nil, err
	}
	bins := &SimBinaries{Dir: dir}
	if err := bins.Build("pulumi-resource-sim", "./internal/simprovider/cmd/pulumi-resource-sim"); err != nil {
		return nil, err
	}
	for _, pkg := range []string{"aws", "tls", "command"} {
		if err := os.Link(filepath.Join(dir, "pulumi-resource-sim"), filepath.Join(dir, "pulumi-resource-"+pkg)); err != nil {
			return nil, err
		}
	}
	return bins, nil
}

// Build builds the package pkg of this module into Dir/out.
func (b *SimBinaries) Build(out, pkg string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(b.Dir, out), pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %w\n%s", pkg, err, out)
	}
	return nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		dir = parent
	}
}

// Sim is one test's simulated world: a cloud file, a control file, a state directory (with the
// journal and a file backend), and the environment that points the engine at the simulated
// provider.
type Sim struct {
	Bins     *SimBinaries
	Cloud    string
	Control  string
	StateDir string
	// PulumiRoot is the repository, whose bin/pulumi is the CLI.
	PulumiRoot string
	// Env is what a driver adds to the CLI's environment.
	Env map[string]string
	// Registry is the world's container registry: every image reference resolves through it
	// (images.EnvMirror in Env). It has the default openclaw_image; a test pushes the others
	// it deploys.
	Registry *registrytest.Registry
}

// NewSim makes a simulated world for t.
func NewSim(t testing.TB, bins *SimBinaries) *Sim {
	t.Helper()
	dir := t.TempDir()
	s := &Sim{
		Bins:       bins,
		Cloud:      filepath.Join(dir, "cloud.json"),
		Control:    filepath.Join(dir, "control.json"),
		StateDir:   filepath.Join(dir, "state"),
		PulumiRoot: PulumiRoot(t),
		Registry:   registrytest.Start(t, stackconfig.DefaultOpenClawImage),
	}
	s.Env = map[string]string{
		images.EnvMirror:           s.Registry.Host,
		"PATH":                     bins.Dir + string(os.PathListSeparator) + os.Getenv("PATH"),
		simprovider.EnvCloud:       s.Cloud,
		simprovider.EnvControl:     s.Control,
		"PULUMI_CONFIG_PASSPHRASE": PassphraseForTests,
		"PULUMI_HOME":              filepath.Join(dir, "pulumi-home"),
	}
	return s
}

// Environ is the environment of a clawdeploy-sim process in this world.
func (s *Sim) Environ(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ours := s.Env[k]; !ours && !strings.HasPrefix(k, "CLAWDEPLOY_") && !strings.HasPrefix(k, "PULUMI_") {
			env = append(env, kv)
		}
	}
	for k, v := range s.Env {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, "CLAWDEPLOY_STATE_DIR="+s.StateDir, "CLAWDEPLOY_PULUMI_ROOT="+s.PulumiRoot, "PULUMI_SKIP_UPDATE_CHECK=true")
	return append(env, extra...)
}

// Load reads the cloud.
func (s *Sim) Load(t testing.TB) *simprovider.Cloud {
	t.Helper()
	c, err := simprovider.Load(s.Cloud)
	if err != nil {
		t.Fatalf("reading the simulated cloud: %v", err)
	}
	return c
}

// Clone makes a new world for t that starts as s is now: its cloud and its state directory
// (journal, file backend, work directories) copied, its control file empty. A test that needs
// many worlds at the same point (each to be killed at another moment) prepares one and clones
// it, instead of running the same operations again for each.
func (s *Sim) Clone(t testing.TB) *Sim {
	t.Helper()
	c := NewSim(t, s.Bins)
	for k, v := range s.Env {
		if _, ours := c.Env[k]; !ours {
			c.Env[k] = v
		}
	}
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(s.Cloud, c.Cloud)
	if _, err := os.Stat(s.StateDir); errors.Is(err, os.ErrNotExist) {
		return c // nothing ran in s yet
	}
	err := filepath.WalkDir(s.StateDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.StateDir, p)
		to := filepath.Join(c.StateDir, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		copyFile(p, to)
		return nil
	})
	if err != nil {
		t.Fatalf("cloning the state directory: %v", err)
	}
	return c
}
