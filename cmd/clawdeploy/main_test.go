package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/clawdeploy/clawdeploy/images"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/internal/moto"
	"github.com/clawdeploy/clawdeploy/internal/registrytest"
	"github.com/clawdeploy/clawdeploy/internal/simprovider"
	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/targets/ec2spot"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
	"github.com/clawdeploy/clawdeploy/targets/vps"
)

// builtPath is the clawdeploy binary TestMain builds for the tests to run; sim holds the
// simulated provider plugins that stand in for aws, tls and command.
var (
	builtPath string
	sim       *enginetest.SimBinaries
)

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
	if sim, err = enginetest.BuildSim(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Every clawdeploy these tests start resolves images through a registry of the tests' (the
	// default image pinned as from ghcr.io), inherited from this process's environment.
	registry, err := registrytest.Serve(stackconfig.DefaultOpenClawImage)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = os.Setenv(images.EnvMirror, registry.Host)
	code := m.Run()
	registry.Close()
	_ = os.RemoveAll(dir)
	_ = os.RemoveAll(sim.Dir)
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
		"CLAWDEPLOY_STATE_DIR="+t.TempDir(),
	)
	return dir, env
}

func run(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runWithInput(t, env, "", args...)
}

// runWithInput is run with stdin as the process's standard input.
func runWithInput(t *testing.T, env []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), builtPath, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
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
	for _, cmd := range []string{"preview", "up"} {
		stdout, stderr, code := run(t, env, cmd, "--stack", "dev", "--secret", "gateway_token=x")
		if code != 2 {
			t.Fatalf("%s of an invalid stack: exit %d, want 2\n%s%s", cmd, code, stdout, stderr)
		}
		if !strings.Contains(stderr, `config availability_zone must be an availability zone of region me-central-1`) ||
			!strings.Contains(stderr, `got "us-east-1a"`) || strings.Contains(stderr, "error occurred") {
			t.Errorf("%s: the error does not explain the bad zone plainly:\n%s", cmd, stderr)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(envValue(env, "PULUMI_BACKEND_URL")[len("file://"):], ".pulumi", "stacks")); len(entries) > 0 {
		t.Errorf("invalid configuration created a stack: %v", entries)
	}
}

func TestUnknownConfigKeyAndMissingStack(t *testing.T) {
	t.Parallel()
	_, env := operatorProject(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"up", "--stack", "dev", "--config", "instance_typ=t4g.small"}, "unknown config key instance_typ for target ec2-spot; known keys:"},
		{[]string{"up", "--stack", "dev", "--config", "no-equals-sign"}, `--config "no-equals-sign" is not key=value`},
		{[]string{"resume", "--stack", "nobody"}, "no deployment named nobody"},
		{[]string{"status", "--stack", "nobody"}, "no deployment named nobody"},
		{[]string{"resume"}, "give either --stack or --all"},
		{[]string{"--target", "lightsail", "up", "--stack", "dev"}, `target "lightsail" is not one of ec2-spot, vps`},
		{[]string{"--target", "vps", "up", "--stack", "dev"}, "config vps_host must be set"},
		{[]string{"--target", "vps", "up", "--stack", "dev", "--config", "vps_host=203.0.113.10", "--config", "vps_port=70000"},
			`config vps_port must be a TCP port between 1 and 65535, got "70000"`},
		{[]string{"--target", "vps", "up", "--stack", "dev", "--config", "vps_host=203.0.113.10"},
			"config vps_host_key must be the host's public key"},
		{[]string{"--target", "vps", "up", "--stack", "dev", "--config", "availability_zone=me-central-1a"},
			"unknown config key availability_zone for target vps"},
		{[]string{"--target", "vps", "--dir", ".", "up", "--stack", "dev"}, "target vps runs with its built-in project"},
		{[]string{"--target", "vps", "render", "user-data", "--stack", "dev"}, "render user-data is for the ec2-spot target"},
		{[]string{"up", "--stack", "dev", "--config-file", "/nonexistent.yaml"}, "reading --config-file"},
	} {
		runEnv := env
		if tc.args[0] == "--target" && tc.args[1] == "vps" {
			// A backend runs the vps target without a project directory.
			runEnv = slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "CLAWDEPLOY_PROJECT_DIR=") })
		}
		_, stderr, code := run(t, runEnv, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

// envValue returns the last value env gives key.
func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// TestOperatorPath runs the real binary the way `make up`, `make preview` and `make destroy` do:
// operator mode on the example stack file, the real program, the simulated provider plugins
// standing in for aws, tls and command, and moto's SSM for the setup status, which a simulated
// instance publishes once the provider has "launched" it.
func TestOperatorPath(t *testing.T) {
	t.Parallel()
	_, env := operatorProject(t)
	m := moto.Start(t)
	cloud := filepath.Join(t.TempDir(), "cloud.json")
	for _, kv := range m.Env() {
		if strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	env = append(env, "PATH="+sim.Dir+string(os.PathListSeparator)+envValue(env, "PATH"),
		simprovider.EnvCloud+"="+cloud)

	// The simulated instance: once the provider has created it, its setup reports COMPLETE.
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	go func() {
		cfg := m.Config()
		client := ssm.NewFromConfig(cfg)
		for ctx.Err() == nil {
			time.Sleep(200 * time.Millisecond)
			c, err := simprovider.Load(cloud)
			if err != nil {
				continue
			}
			for _, r := range c.OfType("aws:ec2/instance:Instance") {
				_, _ = client.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(ec2spot.StatusParameter("dev")),
					Type: "String", Overwrite: aws.Bool(true), Value: aws.String(r.ID + " COMPLETE sim-token")})
			}
		}
	}()

	stackFile := filepath.Join(envValue(env, "CLAWDEPLOY_PROJECT_DIR"), "Pulumi.dev.yaml")
	before, err := os.ReadFile(stackFile)
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := run(t, env, "preview", "--stack", "dev", "--secret", "gateway_token=gw-operator")
	if code != 0 || !strings.Contains(stdout, "+ 40 to create") {
		t.Fatalf("preview: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if n := len(loadCloud(t, cloud).Resources); n != 0 {
		t.Fatalf("preview created %d resources", n)
	}
	// The preview changed nothing: no stack in the backend, the stack file as it was (the
	// configuration it was given is not kept for a later up).
	if after, _ := os.ReadFile(stackFile); !bytes.Equal(after, before) {
		t.Errorf("the preview changed Pulumi.dev.yaml:\n%s", after)
	}
	if entries, _ := os.ReadDir(filepath.Join(strings.TrimPrefix(envValue(env, "PULUMI_BACKEND_URL"), "file://"), ".pulumi", "stacks", "openclaw")); len(entries) > 0 {
		t.Errorf("the preview left a stack in the backend: %v", entries)
	}
	stdout, stderr, code = run(t, env, "up", "--stack", "dev", "--setup-poll", "300ms", "--secret", "gateway_token=gw-operator")
	if code != 0 {
		t.Fatalf("up: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"status PROVISIONING", "stage instance_launched", "stage setup_complete", "status READY"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("up's progress lacks %q:\n%s", want, stderr)
		}
	}
	if !regexp.MustCompile(`availability_zone\s*: "me-central-1a"`).MatchString(stdout) {
		t.Errorf("up's output lacks the zone:\n%s", stdout)
	}
	stdout, _, code = run(t, env, "--json", "status", "--stack", "dev")
	var rec map[string]any
	if err := json.Unmarshal([]byte(stdout), &rec); code != 0 || err != nil || rec["status"] != "READY" || rec["stage"] != "setup_complete" {
		t.Errorf("status: exit %d, %v: %s", code, err, stdout)
	}
	stdout, _, code = run(t, env, "outputs", "--stack", "dev")
	if code != 0 || !strings.Contains(stdout, "instance_id") || strings.Contains(stdout, "gw-operator") {
		t.Errorf("outputs: exit %d\n%s", code, stdout)
	}
	stdout, stderr, code = run(t, env, "render", "user-data", "--stack", "dev")
	if code != 0 || !strings.HasPrefix(stdout, "#cloud-config\n") || strings.Contains(stdout, "gw-operator") ||
		!strings.Contains(stdout, "# secret gateway_token: SSM SecureString /openclaw/dev/env/OPENCLAW_GATEWAY_TOKEN") ||
		!regexp.MustCompile(`data volume vol-[0-9a-f]{17}`).MatchString(stdout) {
		t.Errorf("render user-data: exit %d\n%.600s\n%s", code, stdout, stderr)
	}
	stdout, _, code = run(t, env, "status")
	if code != 0 || !regexp.MustCompile(`(?m)^dev\s+ec2-spot\s+READY\s+setup_complete`).MatchString(stdout) {
		t.Errorf("status table: exit %d\n%s", code, stdout)
	}
	stdout, stderr, code = run(t, env, "destroy", "--stack", "dev", "--yes")
	if code != 0 {
		t.Fatalf("destroy: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// The backups bucket and its settings are retained on delete, and the data volume leaves a
	// final snapshot: nothing else may remain.
	for _, r := range loadCloud(t, cloud).Resources {
		if !strings.HasPrefix(r.Type, "aws:s3/") && r.Type != "aws:ebs/snapshot:Snapshot" {
			t.Errorf("%s %s remains after destroy", r.Type, r.ID)
		}
	}
}

func loadCloud(t *testing.T, path string) *simprovider.Cloud {
	t.Helper()
	c, err := simprovider.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestHelpNamesBothTargetsAndEveryKey: --help lists each target's config keys, so an operator
// can find them without the README, in lines a terminal shows whole.
func TestHelpNamesBothTargetsAndEveryKey(t *testing.T) {
	t.Parallel()
	stdout, _, code := run(t, os.Environ(), "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	_, targets, ok := strings.Cut(stdout, "Targets (--target")
	targets, _, _ = strings.Cut(targets, "PULUMI_CONFIG_PASSPHRASE")
	if !ok {
		t.Fatalf("no Targets section:\n%s", stdout)
	}
	ec2, vpsHelp, _ := strings.Cut(targets, "\n     vps ")
	words := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '.' })
	}
	for _, k := range append([]string{"aws:region"}, ec2spot.Keys...) {
		if !slices.Contains(words(ec2), k) {
			t.Errorf("ec2-spot key %s is not in --help", k)
		}
	}
	for _, k := range vps.Keys {
		if !slices.Contains(words(vpsHelp), k) {
			t.Errorf("vps key %s is not in --help", k)
		}
	}
	for _, line := range strings.Split(targets, "\n") {
		if len(line) > 82 {
			t.Errorf("line of %d characters: %q", len(line), line)
		}
	}
}

// TestGlobalFlagsAfterTheCommand gives the global flags after the command, before it, and in
// both places (the one nearest the command wins), and checks each reached the driver: the
// journal read is the one in --state-dir, the output is what --json says.
func TestGlobalFlagsAfterTheCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := append(os.Environ(), "HOME="+dir, "PULUMI_CONFIG_PASSPHRASE="+enginetest.PassphraseForTests)
	for _, name := range []string{"a", "b", "c"} { // a journal in each, knowing a deployment of its name
		j, err := journal.OpenSQLite(t.Context(), filepath.Join(dir, name, "journal.db"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := j.Ensure(t.Context(), "stack-"+name, "ec2-spot", time.Now()); err != nil {
			t.Fatal(err)
		}
		_ = j.Close()
	}
	for _, tc := range []struct {
		name     string
		args     []string
		stateDir string
		json     bool
	}{
		{"after", []string{"status", "--state-dir", filepath.Join(dir, "a"), "--json"}, "a", true},
		{"before", []string{"--state-dir", filepath.Join(dir, "b"), "status"}, "b", false},
		{"both, the command's wins", []string{"--json", "--state-dir", filepath.Join(dir, "x"), "status",
			"--state-dir", filepath.Join(dir, "c"), "--json=false"}, "c", false},
		{"after a subcommand", []string{"--target", "ec2-spot", "render", "user-data", "--target", "vps", "--stack", "s"}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := run(t, env, tc.args...)
			if tc.stateDir == "" { // --target vps after the subcommand: refused for its target
				if code != 2 || !strings.Contains(stderr, "a vps host gets no user-data") {
					t.Errorf("exit %d, stderr %q; want 2, refused for the vps target", code, stderr)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if !strings.Contains(stdout, "stack-"+tc.stateDir) {
				t.Errorf("the journal read is not the one in --state-dir %s: %q", tc.stateDir, stdout)
			}
			if table := strings.HasPrefix(stdout, "STACK"); table == tc.json {
				t.Errorf("--json=%v, but the output is %q", tc.json, stdout)
			}
		})
	}
	for _, unused := range []string{"x", ".clawdeploy"} {
		if _, err := os.Stat(filepath.Join(dir, unused)); err == nil {
			t.Errorf("%s was made, though the command said another state directory", unused)
		}
	}
}

// TestStackNamesAreChecked gives every command stack names that are not Pulumi's (a path, a
// qualified name, dot names, a space): each is refused with exit 2 naming the value, before
// anything exists: no state directory, no journal, no file outside it.
func TestStackNamesAreChecked(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	stateDir := filepath.Join(root, "a", "b", "state")
	env := append(os.Environ(), "HOME="+root, "PULUMI_CONFIG_PASSPHRASE="+enginetest.PassphraseForTests,
		"CLAWDEPLOY_STATE_DIR="+stateDir, "PATH="+filepath.Join(enginetest.PulumiRoot(t), "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, name := range []string{"../../x", "organization/openclaw/x", "..", ".", "a b", "x/y", strings.Repeat("s", 101), ""} {
		for _, args := range [][]string{
			{"up", "--config", "aws:region=me-central-1", "--config", "availability_zone=me-central-1a"},
			{"preview"}, {"outputs"}, {"render", "user-data"}, {"status"}, {"destroy", "--yes"}, {"refresh"},
			{"resume"}, {"cancel"},
		} {
			args = append(args, "--stack="+name)
			_, stderr, code := run(t, env, args...)
			want := "stack name"
			if name == "" {
				switch args[0] {
				case "status":
					continue // status without a stack lists every deployment
				case "resume":
					want = "give either --stack or --all"
				default:
					want = "--stack is required"
				}
			}
			if code != 2 || !strings.Contains(stderr, want) {
				t.Errorf("%v: exit %d, stderr %q; want 2 and %q", args, code, stderr, want)
			}
		}
	}
	entries, _ := os.ReadDir(root)
	var made []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != root {
			made = append(made, strings.TrimPrefix(p, root))
		}
		return nil
	})
	if len(made) > 0 {
		t.Errorf("refused commands made %v (%d entries at the top)", made, len(entries))
	}
}

// backendEnv is the environment of backend mode with the state directory stateDir.
func backendEnv(t *testing.T, stateDir string) []string {
	t.Helper()
	return append(os.Environ(), "HOME="+t.TempDir(), "PULUMI_CONFIG_PASSPHRASE="+enginetest.PassphraseForTests,
		"CLAWDEPLOY_STATE_DIR="+stateDir, "PATH="+filepath.Join(enginetest.PulumiRoot(t), "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// TestRefusalsTouchNothing runs commands that must be refused with exit 2, first on a machine
// that never ran clawdeploy (no state directory may appear), then beside a journal that knows
// another deployment (no record, work directory or state may appear).
func TestRefusalsTouchNothing(t *testing.T) {
	t.Parallel()
	stateDir := filepath.Join(t.TempDir(), "state")
	env := backendEnv(t, stateDir)
	refusals := [][]string{
		{"up", "--stack", "dev", "--config", "aws:region=me-central-1", "--config", "availability_zone=us-east-1a"},
		{"up", "--stack", "dev", "--config", "instance_typ=t4g.small"},
		{"up", "--stack", "dev", "--config", "aws:region=me-central-1", "--config", "availability_zone=me-central-1a", "--config", "instance_type=t4g.micro"},
		{"up", "--stack", "dev", "--config", "aws:region=me-central-1", "--config", "availability_zone=me-central-1a", "--setup-timeout", "-1s"},
		{"preview", "--stack", "dev", "--config", "aws:region=me-central-1", "--config", "availability_zone=us-east-1a"},
		{"destroy", "--stack", "dev", "--yes"},
		{"refresh", "--stack", "dev"},
		{"resume", "--stack", "dev"},
		{"resume", "--all", "--concurrency", "-5"},
		{"cancel", "--stack", "dev"},
		{"status", "--stack", "dev"},
		{"outputs", "--stack", "dev"},
		{"snapshots", "list", "--stack", "dev"},
		{"snapshots", "delete", "--stack", "dev", "--older-than", "1x"},
		{"--journal", "mysql://root@db/clawdeploy", "status"},
		{"--journal", "sqlite:", "status"},
		{"--journal", "postgres://clawdeploy:pw@127.0.0.1:1/clawdeploy?sslmode=bogus", "status"},
		{"--journal", "postgres://clawdeploy@127.0.0.1:1/clawdeploy?connect_timeout=soon", "status"},
		{"--journal", "postgres://clawdeploy:pw@127.0.0.1:1/clawdeploy?sslmode=bogus", "worker"},
		{"worker", "--heal-every", "-1m"},
		{"--lease-ttl", "0s", "status"},
		{"up", "--enqueue", "--stack", "dev", "--config", "aws:region=me-central-1", "--config", "availability_zone=us-east-1a"},
		{"up", "--enqueue", "--stack", "../dev"},
		{"worker", "--concurrency", "0"},
		{"worker", "--listen", "127.0.0.1:not-a-port"},
	}
	check := func(when string) {
		t.Helper()
		for _, args := range refusals {
			if _, stderr, code := run(t, env, args...); code != 2 {
				t.Errorf("%s: %v: exit %d, want 2\n%s", when, args, code, stderr)
			}
		}
	}
	check("no state directory")
	if _, err := os.Stat(stateDir); err == nil {
		t.Fatalf("refused commands made the state directory %s", stateDir)
	}

	j, err := journal.OpenSQLite(t.Context(), filepath.Join(stateDir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = j.Close() }()
	if _, err := j.Ensure(t.Context(), "other", "ec2-spot", time.Now()); err != nil {
		t.Fatal(err)
	}
	check("beside another deployment")
	records, err := j.List(t.Context())
	if err != nil || len(records) != 1 || records[0].Stack != "other" {
		t.Errorf("the journal holds %+v (%v), want only other", records, err)
	}
	entries, _ := os.ReadDir(stateDir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "journal.db") {
			t.Errorf("refused commands made %s in the state directory", e.Name())
		}
	}
}

// TestJournalTroubleIsAnOperationalFailure: a damaged journal, and one that cannot be written,
// fail with exit 1 (not 2: the usage was fine) and a message naming the file and what to do.
func TestJournalTroubleIsAnOperationalFailure(t *testing.T) {
	t.Parallel()
	up := []string{"up", "--stack", "dev", "--config", "aws:region=me-central-1", "--config", "availability_zone=me-central-1a"}

	damaged := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(damaged, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(damaged, "journal.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a database "), 300), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status"}, up} {
		_, stderr, code := run(t, backendEnv(t, damaged), args...)
		if code != 1 || !strings.Contains(stderr, path) || !strings.Contains(stderr, "move it aside") {
			t.Errorf("damaged journal, %v: exit %d, stderr %q; want 1 naming %s and what to do", args, code, stderr, path)
		}
	}

	readOnly := filepath.Join(t.TempDir(), "state")
	j, err := journal.OpenSQLite(t.Context(), filepath.Join(readOnly, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Ensure(t.Context(), "other", "ec2-spot", time.Now()); err != nil {
		t.Fatal(err)
	}
	_ = j.Close()
	env := backendEnv(t, readOnly)
	var args []string
	if os.Geteuid() == 0 {
		// root writes through file modes: a read-only bind mount in a mount namespace of its own.
		args = append([]string{"unshare", "--mount", "--propagation", "private", "sh", "-c",
			`mount --bind -o ro "$0" "$0" && exec "$@"`, readOnly, builtPath}, up...)
	} else {
		for _, p := range []string{filepath.Join(readOnly, "journal.db"), readOnly} {
			if err := os.Chmod(p, 0o500); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() { _ = os.Chmod(readOnly, 0o700) })
		args = append([]string{builtPath}, up...)
	}
	cmd := exec.CommandContext(t.Context(), args[0], args[1:]...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), readOnly) ||
		!strings.Contains(stderr.String(), "writable") {
		t.Errorf("read-only journal: %v, stderr %q; want exit 1 naming the file and what to do", err, stderr.String())
	}
}

// TestValuesAreCheckedAsGiven: --config-file values are read as the text written, null is
// refused; a secret is one line on both targets; only the keys a target reads are taken (no
// provider keys such as aws:secretKey); a secret given for a plain key is refused without being
// shown. Each exits 2 before anything is made.
func TestValuesAreCheckedAsGiven(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	env := backendEnv(t, stateDir)
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	zone := []string{"--config", "aws:region=me-central-1", "--config", "availability_zone=me-central-1a"}
	up := func(args ...string) []string {
		return append(append([]string{"up", "--stack", "dev"}, zone...), args...)
	}
	for _, tc := range []struct {
		args    []string
		want    string
		secrets []string // values that must not appear
	}{
		{up("--config-file", file("mode.yaml", "instance_type: 0755\n")),
			`config instance_type must be an EC2 instance type like t4g.small or m7i.large, got "0755"`, nil},
		{up("--config-file", file("big.yaml", "snapshot_retention_count: 0123456789\n")),
			`config snapshot_retention_count must be between 1 and 1000, got "0123456789"`, nil},
		{up("--config-file", file("null.yaml", "secrets:\n  gateway_token: null\n")),
			`gateway_token has no value ("null" reads as null)`, nil},
		{up("--config-file", file("list.yaml", "instance_type: [t4g.small]\n")),
			"instance_type must be one value", nil},
		{up("--secret-file", "anthropic_api_key="+file("two-lines", "sk-ant-first\nsk-ant-second\n")),
			"config anthropic_api_key must be one line", []string{"sk-ant-first", "sk-ant-second"}},
		{up("--secret", "aws:secretKey=AKIAsecretvalue"), "unknown config key aws:secretKey for target ec2-spot", []string{"AKIAsecretvalue"}},
		{up("--config", "aws:profile=prod"), "unknown config key aws:profile", nil},
		{up("--secret", "instance_type=hunter2-value"), "config instance_type must be", []string{"hunter2-value"}},
		{[]string{"--target", "vps", "up", "--stack", "dev", "--config", "aws:region=me-central-1"}, "unknown config key aws:region for target vps", nil},
	} {
		_, stderr, code := run(t, env, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args[3:], code, stderr, tc.want)
		}
		for _, s := range tc.secrets {
			if strings.Contains(stderr, s) {
				t.Errorf("%v: the error shows the secret %q: %s", tc.args[3:], s, stderr)
			}
		}
	}
	if _, err := os.Stat(stateDir); err == nil {
		t.Errorf("refused commands made the state directory")
	}
}
