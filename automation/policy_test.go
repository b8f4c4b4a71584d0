package automation_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/preview"
)

// analyzerPlugin puts on PATH the analyzer the engine runs a Node.js policy pack with, as the
// official CLI's Node.js support would: this CLI has none, and falls back to a plugin of this
// name. It runs the pack with @pulumi/pulumi's own runner, from the pack's node_modules.
func analyzerPlugin(t *testing.T, sim *enginetest.Sim) {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\nexec node ./node_modules/@pulumi/pulumi/cmd/run-policy-pack \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "pulumi-analyzer-policy-nodejs"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env := maps.Clone(sim.Env)
	env["PATH"] = dir + string(os.PathListSeparator) + env["PATH"]
	sim.Env = env
}

// awsguardExceptions are AWSGuard's findings on the program that docs/ci.md lists as deliberate
// exceptions, with their reasons and costs ("AWSGuard's findings"): a new finding fails the test
// until it is fixed or listed there.
var awsguardExceptions = []string{
	"ec2-instance-detailed-monitoring-enabled spot-instance",
	"ec2-instance-no-public-ip spot-instance",
	"ec2-volume-inuse spot-instance",
}

// awsguardPack is policy/awsguard, whose node_modules `make deps` installs with npm ci.
func awsguardPack(t *testing.T) string {
	t.Helper()
	pack, err := filepath.Abs(filepath.Join("..", "policy", "awsguard"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(pack, "node_modules", "@pulumi", "awsguard")); err != nil {
		t.Fatalf("policy/awsguard has no node_modules: `make deps` runs npm ci there (%v)", err)
	}
	return pack
}

// TestAWSGuardOnTheProgram runs Pulumi's published AWS rules (AWSGuard, policy/awsguard, pinned
// with npm) against the real program through the real engine and the simulated provider: the
// findings are exactly those docs/ci.md lists as deliberate exceptions. The same pack with every
// rule mandatory fails the preview from the command line (exit 1), its findings still in the
// changes event.
func TestAWSGuardOnTheProgram(t *testing.T) {
	t.Parallel()
	pack := awsguardPack(t)
	sim := enginetest.NewSim(t, bins)
	analyzerPlugin(t, sim)
	d, _, progress := newSimDriver(t, sim, nil, nil)
	res, err := d.Preview(t.Context(), "dev", &UpOptions{Config: exampleConfig(), PolicyPacks: []string{pack}})
	if err != nil {
		t.Fatalf("preview with AWSGuard: %v\n%s", err, progress)
	}
	var found []string
	for _, p := range res.Changes.Policies {
		found = append(found, p.Policy+" "+p.URN[strings.LastIndex(p.URN, "::")+2:])
		if p.Pack != "pulumi-awsguard" || p.Enforcement != "advisory" {
			t.Errorf("finding %+v", p)
		}
	}
	slices.Sort(found)
	if !slices.Equal(found, awsguardExceptions) {
		t.Errorf("AWSGuard found %q, docs/ci.md lists %q: fix the new finding or document it", found, awsguardExceptions)
	}
	if comment := res.Comment("openclaw", "dev", ""); !strings.Contains(comment, "#### Policies\n\n3 violation(s), 0 mandatory.") {
		t.Errorf("the comment's policies:\n%s", comment)
	}

	// Every rule mandatory: a pack of its own beside AWSGuard's modules.
	strict := t.TempDir()
	for name, content := range map[string]string{
		"PulumiPolicy.yaml": "runtime: nodejs\n",
		"package.json":      `{"name": "awsguard-mandatory", "version": "1.0.0"}`,
		"index.js":          `new (require("@pulumi/awsguard").AwsGuard)({ all: "mandatory" });`,
	} {
		if err := os.WriteFile(filepath.Join(strict, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(pack, "node_modules"), filepath.Join(strict, "node_modules")); err != nil {
		t.Fatal(err)
	}
	p, code := runSim(t, sim, "real", "preview", "--stack", "dev", "--policy-pack", strict,
		"--config", "aws:region=me-central-1", "--config", "availability_zone=me-central-1a", "--config", "instance_type=t4g.small",
		"--secret", "gateway_token=gw-sim-token")
	if code != ExitFailed || !strings.Contains(p.stderr.String(), "mandatory policy violation(s)") {
		t.Fatalf("a mandatory violation: exit %d\n%s", code, p.stderr.String())
	}
	mandatory := 0
	for _, line := range p.lines {
		var e struct {
			Type string `json:"type"`
			preview.Changes
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Type == "changes" {
			mandatory = e.Mandatory()
		}
	}
	if mandatory != len(awsguardExceptions) {
		t.Errorf("%d mandatory violations in the changes event, want %d", mandatory, len(awsguardExceptions))
	}
}
