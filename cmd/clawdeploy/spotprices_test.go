package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/internal/pricingfake"
	"github.com/clawdeploy/clawdeploy/internal/spotpricefake"
)

// TestSpotPricesCommand runs the runbook's first step, `make ec2-spot-prices` and
// `clawdeploy spot-prices`, against a fake of EC2's Spot price history (moto's is one price of
// 2006) and a fake of the AWS Price List: the table cheapest first, the config lines for the best
// row, and bad input refused with exit 2 before any call.
func TestSpotPricesCommand(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Hour)
	var history []spotpricefake.Price
	for zone, prices := range map[string][]float64{"me-central-1a": {0.0061, 0.0059, 0.0064}, "me-central-1b": {0.0049, 0.0052, 0.0050}} {
		for i, p := range prices {
			history = append(history, spotpricefake.Price{InstanceType: "t4g.small", Zone: zone, Price: p, At: now.Add(-time.Duration(i) * 36 * time.Hour)})
		}
	}
	history = append(history, spotpricefake.Price{InstanceType: "t4g.medium", Zone: "me-central-1a", Price: 0.0121, At: now.Add(-time.Hour)})
	spot := spotpricefake.Start(t, history...)
	prices := pricingfake.Start(t, pricingfake.Product{Service: "AmazonEC2", Unit: "Hrs", USD: "0.0194000000", Attributes: map[string]string{
		"regionCode": "me-central-1", "instanceType": "t4g.small", "operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used"}})
	env := append(backendEnv(t, filepath.Join(t.TempDir(), "state")), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_EC2="+spot.URL, "AWS_ENDPOINT_URL_PRICING="+prices.URL)

	out, stderr, code := run(t, env, "spot-prices", "--instance-types", "t4g.small, t4g.medium", "--region", "me-central-1")
	t.Logf("clawdeploy spot-prices --instance-types \"t4g.small t4g.medium\" --region me-central-1 (docs/operator.md shows this):\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) < 7 {
		t.Fatalf("exit %d:\n%s%s", code, out, stderr)
	}
	for i, want := range []string{"TYPE", "t4g.small  me-central-1b  0.0049  0.0050", "t4g.small  me-central-1a  0.0061  0.0061", "t4g.medium  me-central-1a  0.0121"} {
		if !strings.HasPrefix(strings.Join(strings.Fields(lines[i]), "  "), want) {
			t.Errorf("line %d = %q, want %q", i, lines[i], want)
		}
	}
	if !strings.Contains(out, "0.0194") || !strings.Contains(out, "note: on-demand price of t4g.medium") ||
		!strings.HasSuffix(out, "pulumi config set instance_type t4g.small\npulumi config set availability_zone me-central-1b\n") {
		t.Errorf("on-demand, notes or config lines missing:\n%s", out)
	}

	// The make target an operator types, from the repository root.
	root := enginetest.RepoRoot(t)
	cmd := exec.CommandContext(t.Context(), "make", "--no-print-directory", "-C", root, "ec2-spot-prices", "INSTANCE_TYPES=t4g.small", "REGION=me-central-1")
	// backendEnv's HOME is empty: the build in the target uses the test's Go caches.
	cmd.Env = append(env, "GOCACHE="+goEnv(t, "GOCACHE"), "GOMODCACHE="+goEnv(t, "GOMODCACHE"))
	var makeOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &makeOut, &makeOut
	if err := cmd.Run(); err != nil || !strings.Contains(makeOut.String(), "pulumi config set availability_zone me-central-1b") {
		t.Errorf("make ec2-spot-prices: %v\n%s", err, makeOut.String())
	}

	calls := spot.Calls()
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"spot-prices", "--region", "me-central-1"}, "--instance-types is required"},
		{[]string{"spot-prices", "--instance-types", "t4g small", "--region", "me-central-1"}, `--instance-types: "t4g" is not an EC2 instance type`},
		{[]string{"spot-prices", "--instance-types", "t4g.small"}, "--region is required without --stack"},
		{[]string{"spot-prices", "--instance-types", "t4g.small", "--stack", "gone"}, "no deployment named gone here: pass --region"},
	} {
		if _, stderr, code := run(t, env, bad.args...); code != 2 || !strings.Contains(stderr, bad.want) {
			t.Errorf("%v: exit %d, want 2 and %q:\n%s", bad.args, code, bad.want, stderr)
		}
	}
	if spot.Calls() != calls {
		t.Errorf("bad input reached EC2")
	}
}

// goEnv is a setting of the go command's, as `go env` prints it.
func goEnv(t *testing.T, key string) string {
	t.Helper()
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", key, err)
	}
	return strings.TrimSpace(string(out))
}
