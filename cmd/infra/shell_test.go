package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/internal/simprovider"
)

// TestRunbookFromAShell walks the operator's runbook with the real Pulumi CLI in a copy of the
// repository, as a shell would: `pulumi stack init`, `config set`, `preview`, `up`, `stack output
// data_volume_id`, `destroy`. The program is this package, built and run by a stand-in for Pulumi's
// Go language host (internal/golanghost: the official one cannot be installed here), against the
// simulated providers. It proves what only the inline path exercised before: Pulumi.yaml's typed
// config block (a value of the wrong type is refused, naming the key), the key names of
// Pulumi.dev.yaml, `main: ./cmd/infra` and the output names.
func TestRunbookFromAShell(t *testing.T) {
	t.Parallel()
	root := enginetest.PulumiRoot(t)
	bins, err := enginetest.BuildProviders()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(bins.Dir) })
	if err := bins.Build("pulumi-language-go", "./internal/golanghost/cmd/pulumi-language-go"); err != nil {
		t.Fatal(err)
	}
	project := copyCheckout(t, root)
	cloud := filepath.Join(t.TempDir(), "cloud.json")
	env := []string{
		"PATH=" + bins.Dir + string(os.PathListSeparator) + filepath.Join(root, "bin") + string(os.PathListSeparator) + os.Getenv("PATH"),
		"PULUMI_BACKEND_URL=file://" + t.TempDir(),
		"PULUMI_HOME=" + t.TempDir(),
		"PULUMI_CONFIG_PASSPHRASE=" + enginetest.PassphraseForTests,
		"PULUMI_SKIP_UPDATE_CHECK=true",
		simprovider.EnvCloud + "=" + cloud,
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "PATH" && !strings.HasPrefix(k, "PULUMI_") && !strings.HasPrefix(k, "CLAWDEPLOY_") {
			env = append(env, kv)
		}
	}
	pulumi := func(wantOK bool, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), "pulumi", append(args, "--non-interactive")...)
		cmd.Dir, cmd.Env = project, env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if (err == nil) != wantOK {
			t.Fatalf("pulumi %s: %v, want ok=%v\n%s", strings.Join(args, " "), err, wantOK, out.String())
		}
		return out.String()
	}

	pulumi(true, "stack", "init", "dev")
	pulumi(true, "config", "set", "instance_type", "t4g.medium")
	pulumi(true, "config", "set", "--secret", "gateway_token", strings.Repeat("ab", 32))
	// The runbook's fresh deploy: no snapshot to restore from.
	pulumi(true, "config", "rm", "data_volume_snapshot_id")

	// Pulumi.yaml's types are the engine's to check, before the program runs.
	pulumi(true, "config", "set", "data_volume_size_gb", "twenty")
	if out := pulumi(false, "preview"); !strings.Contains(out, "data_volume_size_gb") || !strings.Contains(out, "integer") {
		t.Errorf("a string for an integer key was not refused naming the key:\n%s", out)
	}
	pulumi(true, "config", "set", "data_volume_size_gb", "30")

	if out := pulumi(true, "preview"); !strings.Contains(out, "+ 40 to create") {
		t.Errorf("preview:\n%s", out)
	}
	up := pulumi(true, "up", "--yes")
	volume := strings.TrimSpace(pulumi(true, "stack", "output", "data_volume_id"))
	c, err := simprovider.Load(cloud)
	if err != nil {
		t.Fatal(err)
	}
	var volumes, instances []simprovider.Resource
	for _, r := range c.Resources {
		switch r.Type {
		case "aws:ebs/volume:Volume":
			volumes = append(volumes, r)
		case "aws:ec2/instance:Instance":
			instances = append(instances, r)
		}
	}
	if len(volumes) != 1 || volumes[0].ID != volume || fmt.Sprint(volumes[0].Inputs["size"]) != "30" {
		t.Errorf("stack output data_volume_id = %q; the cloud's volumes: %+v\n%s", volume, volumes, up)
	}
	if len(instances) != 1 || instances[0].Inputs["instanceType"] != "t4g.medium" {
		t.Errorf("instances %+v, want one t4g.medium", instances)
	}
	for _, name := range []string{"instance_id", "availability_zone", "backup_bucket", "gateway_tunnel", "setup_status_parameter"} {
		if got := strings.TrimSpace(pulumi(true, "stack", "output", name)); got == "" {
			t.Errorf("stack output %s is empty", name)
		}
	}
	if out := pulumi(true, "stack", "output", "gateway_token"); !strings.Contains(out, "[secret]") {
		t.Errorf("gateway_token is not a secret output: %q", out)
	}

	pulumi(true, "destroy", "--yes")
	if c, err = simprovider.Load(cloud); err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Resources {
		if r.Type == "aws:ec2/instance:Instance" || r.Type == "aws:ebs/volume:Volume" {
			t.Errorf("%s %s outlived destroy", r.Type, r.ID)
		}
	}
}

// copyCheckout copies the repository's files (tracked and new, not ignored ones) into a new
// temporary directory: an operator's checkout whose Pulumi.dev.yaml `config set` may change.
func copyCheckout(t *testing.T, root string) string {
	t.Helper()
	list := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard", "-z")
	list.Dir = root
	files, err := list.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dir := t.TempDir()
	for _, f := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		from := filepath.Join(root, f)
		info, err := os.Lstat(from)
		if err != nil || !info.Mode().IsRegular() {
			continue // deleted in the working tree, or a link
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		in, err := os.Open(from)
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(filepath.Join(dir, f), os.O_CREATE|os.O_WRONLY, info.Mode().Perm())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		_ = in.Close()
		_ = out.Close()
	}
	return dir
}
