package cloudinit

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/clawdeploy/clawdeploy/setup"
)

// accept regenerates golden files instead of comparing with them: CLAWDEPLOY_ACCEPT=true go test.
var accept = os.Getenv("CLAWDEPLOY_ACCEPT") == "true"

func render(t *testing.T, a Args) []byte {
	t.Helper()
	b, err := Render(a)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return b
}

func TestRenderMatchesGolden(t *testing.T) {
	t.Parallel()
	got := render(t, testArgs("openclaw-dev-backup-1a2b3c4"))
	golden := filepath.Join("testdata", "user-data.golden.yaml")
	if accept {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (regenerate with CLAWDEPLOY_ACCEPT=true)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("rendered user-data differs from %s; review the change and regenerate with CLAWDEPLOY_ACCEPT=true", golden)
	}
}

// cloudConfig is the part of the cloud-config the tests read back.
type cloudConfig struct {
	Packages   []string `yaml:"packages"`
	WriteFiles []struct {
		Path        string `yaml:"path"`
		Owner       string `yaml:"owner"`
		Permissions string `yaml:"permissions"`
		Content     string `yaml:"content"`
	} `yaml:"write_files"`
	Runcmd [][]string `yaml:"runcmd"`
}

func parse(t *testing.T, b []byte) cloudConfig {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("#cloud-config\n")) {
		t.Fatalf("user-data does not start with #cloud-config")
	}
	var c cloudConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("user-data is not YAML: %v", err)
	}
	return c
}

// TestRenderWritesEveryFileVerbatim reads the YAML back: each file must arrive byte for byte,
// tabs and blank lines included, with its mode, and the launch must be the protocol's.
func TestRenderWritesEveryFileVerbatim(t *testing.T) {
	t.Parallel()
	a := testArgs("openclaw-dev-backup-1a2b3c4")
	files, err := Files(a)
	if err != nil {
		t.Fatal(err)
	}
	c := parse(t, render(t, a))
	if len(c.WriteFiles) != len(files) {
		t.Fatalf("write_files has %d entries, want %d", len(c.WriteFiles), len(files))
	}
	for i, f := range files {
		w := c.WriteFiles[i]
		if w.Path != f.Path || w.Permissions != f.Mode || w.Owner != "root:root" {
			t.Errorf("entry %d = %s %s %s, want %s %s root:root", i, w.Path, w.Permissions, w.Owner, f.Path, f.Mode)
		}
		if w.Content != f.Content {
			t.Errorf("%s does not arrive verbatim", f.Path)
		}
	}
	for _, p := range []string{"docker", "amazon-cloudwatch-agent", "sqlite", "xfsprogs"} {
		if !slices.Contains(c.Packages, p) {
			t.Errorf("packages lack %s: %v", p, c.Packages)
		}
	}
	want := setup.Launch{SourcePath: SetupScriptPath, EnvFile: EnvFile}.Command()
	if len(c.Runcmd) != 1 || !slices.Equal(c.Runcmd[0], []string{"bash", "-c", want}) {
		t.Errorf("runcmd = %q, want the setup launch command", c.Runcmd)
	}
}

func TestRenderFitsInUserData(t *testing.T) {
	t.Parallel()
	b := render(t, testArgs("openclaw-dev-backup-1a2b3c4"))
	var z bytes.Buffer
	w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	_, _ = w.Write(b)
	_ = w.Close()
	// EC2 takes at most 16 KiB of user-data; cloud-init reads it gzipped.
	if z.Len() > 16384 {
		t.Errorf("gzipped user-data is %d bytes, over EC2's 16384", z.Len())
	}
	t.Logf("user-data: %d bytes, %d gzipped", len(b), z.Len())
}

func TestRenderSettings(t *testing.T) {
	t.Parallel()
	files, err := Files(testArgs("openclaw-dev-backup-1a2b3c4"))
	if err != nil {
		t.Fatal(err)
	}
	env := files[0]
	if env.Path != EnvFile {
		t.Fatalf("first file is %s", env.Path)
	}
	for _, line := range []string{
		"OPENCLAW_VOLUME_ID=vol-0123456789abcdef0",
		"OPENCLAW_BACKUP_BUCKET=openclaw-dev-backup-1a2b3c4",
		"OPENCLAW_SECRETS_PATH=/openclaw/dev/env",
		"OPENCLAW_STATUS_PARAMETER=/openclaw/dev/setup-status",
		"OPENCLAW_IMAGE=ghcr.io/openclaw/openclaw:2026.2.26",
		"OPENCLAW_DATA_DIR=/opt/openclaw",
		"AWS_REGION=me-central-1",
	} {
		if !strings.Contains(env.Content, "\n"+line+"\n") {
			t.Errorf("settings lack %q:\n%s", line, env.Content)
		}
	}
	// Every value must read the same in bash, systemd and compose: no quoting needed.
	for _, line := range strings.Split(env.Content, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=[A-Za-z0-9._:/@+,=-]*$`).MatchString(line) {
			t.Errorf("settings line %q needs quoting", line)
		}
		// Secrets come from SSM at start time; the settings (and so the user-data) never hold one.
		key, _, _ := strings.Cut(line, "=")
		if regexp.MustCompile(`(TOKEN|_KEY|PASSWORD|SECRET)$`).MatchString(key) {
			t.Errorf("settings carry a secret-looking variable %s", key)
		}
	}
	last := files[len(files)-1]
	if last.Path != "/etc/systemd/system/openclaw-backup.timer.d/interval.conf" ||
		!strings.Contains(last.Content, "OnUnitActiveSec=20min") {
		t.Errorf("timer drop-in = %s:\n%s", last.Path, last.Content)
	}
}

func TestValidateRejectsBadArgs(t *testing.T) {
	t.Parallel()
	tests := map[string]func(*Args){
		"stack with space":  func(a *Args) { a.Stack = "my stack" },
		"region":            func(a *Args) { a.Region = "mars-1" },
		"volume":            func(a *Args) { a.VolumeID = "vol-xyz" },
		"unknown volume":    func(a *Args) { a.VolumeID = "" },
		"bucket upper":      func(a *Args) { a.BackupBucket = "Openclaw" },
		"secrets path":      func(a *Args) { a.SecretsPath = "openclaw/dev" },
		"status parameter":  func(a *Args) { a.StatusParameter = "/x y" },
		"cloudwatch param":  func(a *Args) { a.CloudWatchConfigParameter = "" },
		"image with dollar": func(a *Args) { a.Image = "ghcr.io/$(reboot)" },
		"image with quote":  func(a *Args) { a.Image = `ghcr.io/x"y` },
		"interval":          func(a *Args) { a.BackupIntervalMinutes = 0 },
		"auth choice":       func(a *Args) { a.OnboardAuthChoice = "api key; reboot" },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := testArgs("openclaw-dev-backup-1a2b3c4")
			mutate(&a)
			if _, err := Render(a); err == nil || !strings.Contains(err.Error(), "invalid arguments") {
				t.Errorf("Render = %v, want an invalid-arguments error", err)
			}
		})
	}
}

// requireTool fails the test when a tool the check needs is missing: these checks are the proof,
// so they never skip, in CI or out of it.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (apt-get install %s)", name, pkg)
	}
	return p
}

func TestCloudInitSchemaAcceptsUserData(t *testing.T) {
	t.Parallel()
	requireTool(t, "cloud-init", "cloud-init")
	// One user-data serves both architectures: the compose installer picks its pinned build by
	// uname -m on the instance. Check it for each instance family anyway, as Program renders it.
	for _, arch := range []string{"arm64", "x86_64"} {
		a := testArgs("openclaw-" + strings.ReplaceAll(arch, "_", "-") + "-backup")
		p := filepath.Join(t.TempDir(), "user-data-"+arch+".yaml")
		if err := os.WriteFile(p, render(t, a), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("cloud-init", "schema", "--config-file", p).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Valid cloud-config") {
			t.Errorf("cloud-init schema (%s): %v\n%s", arch, err, out)
		}
	}
}

func TestShellcheckIsClean(t *testing.T) {
	t.Parallel()
	requireTool(t, "shellcheck", "shellcheck")
	scripts, err := filepath.Glob(filepath.Join("files", "*.sh"))
	if err != nil || len(scripts) < 8 {
		t.Fatalf("scripts: %v %v", scripts, err)
	}
	scripts = append(scripts, filepath.Join("..", "setup", "openclaw-setup.sh"))
	out, err := exec.Command("shellcheck", append([]string{"-x", "--severity=style"}, scripts...)...).CombinedOutput()
	if err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

// TestSystemdAcceptsUnits runs systemd-analyze verify on the units as written, in a root that
// has the system's own units, the files cloud-init writes, and a stub docker.service and docker
// binary (the instance has the real ones). Warnings fail the test too.
func TestSystemdAcceptsUnits(t *testing.T) {
	t.Parallel()
	requireTool(t, "systemd-analyze", "systemd")
	files, err := Files(testArgs("openclaw-dev-backup-1a2b3c4"))
	if err != nil {
		t.Fatal(err)
	}
	vps, err := VPSFiles(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ec2-spot", func(t *testing.T) { t.Parallel(); verifyUnits(t, files, 7) })
	t.Run("vps", func(t *testing.T) { t.Parallel(); verifyUnits(t, vps, 1) })
}

// verifyUnits runs systemd-analyze verify on the want units among files.
func verifyUnits(t *testing.T, files []File, want int) {
	root := t.TempDir()
	writeTree(t, root, files)
	var units []string
	for _, f := range files {
		if filepath.Dir(f.Path) == UnitDir {
			units = append(units, filepath.Join(root, f.Path))
		}
	}
	stubs := map[string]string{
		"usr/bin/docker": "#!/bin/sh\n",
		"opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl": "#!/bin/sh\n",
		"etc/systemd/system/docker.service":                               "[Unit]\nDescription=stub\n[Service]\nExecStart=/usr/bin/docker\n",
	}
	for p, content := range stubs {
		mode := "0755"
		if strings.HasSuffix(p, ".service") {
			mode = "0644"
		}
		writeTree(t, root, []File{{Path: p, Mode: mode, Content: content}})
	}
	if err := os.MkdirAll(filepath.Join(root, "usr/lib/systemd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/")).CombinedOutput(); err != nil {
		t.Fatalf("copying the system's units: %v\n%s", err, out)
	}
	if len(units) != want {
		t.Fatalf("found %d units, want %d", len(units), want)
	}
	out, err := exec.Command("systemd-analyze", append([]string{"verify", "--root=" + root}, units...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestUnitsLogWhereTheAgentLooks keeps the units' log files, the CloudWatch agent's list (Logs)
// and the setup protocol's log in step.
func TestUnitsLogWhereTheAgentLooks(t *testing.T) {
	t.Parallel()
	known := map[string]bool{}
	for _, l := range Logs {
		known[l.Path] = true
	}
	units, err := filepath.Glob(filepath.Join("files", "systemd", "*.service"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?m)^StandardOutput=append:(\S+)$`).FindAllStringSubmatch(string(b), -1) {
			seen[m[1]] = true
			if !known[m[1]] {
				t.Errorf("%s logs to %s, which the CloudWatch agent does not collect", u, m[1])
			}
		}
	}
	for _, l := range Logs {
		if !seen[l.Path] && l.Name != "setup" && l.Name != "cloud-init" {
			t.Errorf("log %s (%s) is written by no unit", l.Name, l.Path)
		}
	}
	if want := setup.DefaultRoot + "/" + setup.LogFile; Logs[1].Path != want {
		t.Errorf("setup log = %s, want %s", Logs[1].Path, want)
	}
}

// TestScriptsHaveNoHereDocuments: withoutComments leaves a script's comment lines out, which
// would change a here-document's lines; none of the scripts has one.
func TestScriptsHaveNoHereDocuments(t *testing.T) {
	t.Parallel()
	entries, err := content.ReadDir("files")
	if err != nil {
		t.Fatal(err)
	}
	heredoc := regexp.MustCompile(`<<-?\s*['"]?[A-Za-z_]`)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sh") {
			continue
		}
		b, err := content.ReadFile("files/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if loc := heredoc.FindIndex(b); loc != nil {
			t.Errorf("files/%s has a here-document (%q): withoutComments would change it", e.Name(), b[loc[0]:loc[1]])
		}
	}
}

// TestWithoutComments keeps the shebang, the header and every command line, says where the
// comments are, and leaves the other comment lines out.
func TestWithoutComments(t *testing.T) {
	t.Parallel()
	in := "#!/usr/bin/env bash\n# what it does\n# and why\nset -e\n\n# a step\nfoo # keeps its tail\n\t# indented\n\tbar\n"
	want := "#!/usr/bin/env bash\n# what it does\n# and why\n# The other comments are in clawdeploy's cloudinit/files/x.sh.\nset -e\n\nfoo # keeps its tail\n\tbar\n"
	if got := withoutComments(in, "files/x.sh"); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
