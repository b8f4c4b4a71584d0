package cloudinit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/clawdeploy/clawdeploy/setup"
)

// vpsSecrets are the secrets of the vps tests.
var vpsSecrets = map[string]string{"OPENCLAW_GATEWAY_TOKEN": "gw-vps-7c1e", "ANTHROPIC_API_KEY": "sk-ant-vps-93d0"}

// vpsHost is a fake bare vps: nothing on it but what the launch writes, under a temporary root.
// Docker is missing until the (stub) apt-get installs it; systemctl is a stub; a local server
// answers the gateway's health check.
type vpsHost struct {
	*host
	port string // of the health check
	// settings are the launch's settings: the rendered ones, with the paths moved into the root.
	settings string
}

func newVPSHost(t *testing.T) *vpsHost {
	t.Helper()
	h := &vpsHost{host: newRoot(t), port: healthPort(t)}
	root := h.root
	if err := os.MkdirAll(h.run, 0o755); err != nil {
		t.Fatal(err)
	}
	h.setImage("ghcr.io/openclaw/openclaw:2026.2.26")

	h.writeStubs()
	stubs := filepath.Join(root, "stubs")
	if err := os.Rename(filepath.Join(stubs, "docker"), filepath.Join(root, "docker.stub")); err != nil {
		t.Fatal(err)
	}
	aptGet := `#!/bin/sh
printf '%s %s\n' "$(date +%s.%N)" "apt-get $*" >>"$STUB_LOG"
case "$*" in *"install "*docker.io*) cp "$(dirname "$0")/../docker.stub" "$(dirname "$0")/docker" ;; esac
`
	if err := os.WriteFile(filepath.Join(stubs, "apt-get"), []byte(aptGet), 0o755); err != nil {
		t.Fatal(err)
	}
	// Only the system's directories: no docker of the test machine may be found.
	h.env = append(os.Environ(), "PATH="+stubs+":/usr/sbin:/usr/bin:/sbin:/bin", "STUB_LOG="+h.stubLog,
		"OPENCLAW_ENV_FILE="+h.envFile())
	h.stopSetupScripts()
	return h
}

// setImage renders the settings for image, with the host's paths moved into its root.
func (h *vpsHost) setImage(image string) {
	h.t.Helper()
	settings, err := VPSSettings(VPSArgs{Stack: "dev", Image: image, OnboardAuthChoice: "apiKey"})
	if err != nil {
		h.t.Fatal(err)
	}
	h.settings = settings + strings.Join([]string{
		"OPENCLAW_DATA_DIR=" + h.data,
		"OPENCLAW_RUN_DIR=" + h.run,
		"OPENCLAW_LOCK_DIR=" + h.root,
		"OPENCLAW_COMPOSE_SOURCE=" + filepath.Join(h.root, "etc/openclaw/docker-compose.yaml"),
		"OPENCLAW_LIBEXEC=" + h.libexec,
		"OPENCLAW_SECRETS_FILE=" + filepath.Join(h.root, strings.TrimPrefix(SecretsFile, "/")),
		"OPENCLAW_GATEWAY_PORT=" + h.port,
		fmt.Sprintf("OPENCLAW_UID=%d", os.Getuid()),
		fmt.Sprintf("OPENCLAW_GID=%d", os.Getgid()),
		"OPENCLAW_HEALTH_TIMEOUT_SECONDS=20",
	}, "\n") + "\n"
}

// launch runs the launch command a vps gets over SSH, settings and files included, in the
// host's namespace (its run folder a real tmpfs), and returns its line.
func (h *vpsHost) launch() string {
	h.t.Helper()
	files, err := VPSFiles(vpsSecrets)
	if err != nil {
		h.t.Fatal(err)
	}
	launch := setup.Launch{Root: h.setupRoot, EnvFile: h.envFile(), Env: []byte(h.settings), Files: setup.Under(h.root, files)}
	out, err := h.commandLine(mounts{run: true}, "bash", "-c", launch.Command()).Output()
	if err != nil {
		h.t.Fatalf("launch: %v %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestSetupScriptBringsUpABareVPS launches the real setup script the way a vps gets it: the launch
// writes the settings, scripts, compose file, unit and secrets; the script installs docker with
// the host's package manager, keeps the data on the host's disk, onboards once, starts the
// gateway and reports the configured token. A relaunch with a new image restarts the gateway
// without onboarding again.
func TestSetupScriptBringsUpABareVPS(t *testing.T) {
	t.Parallel()
	h := newVPSHost(t)
	if out := h.launch(); out != "LAUNCH started" {
		t.Fatalf("launch: %q", out)
	}
	st := h.waitSetup()
	log, _ := os.ReadFile(filepath.Join(h.setupRoot, setup.LogFile))
	if st.State != setup.Complete || st.Token != vpsSecrets["OPENCLAW_GATEWAY_TOKEN"] {
		t.Fatalf("status %+v\n%s", st, log)
	}
	calls := h.stubCalls()
	want := []string{
		"apt-get update -q",
		"apt-get install -y -q docker.io curl",
		"systemctl daemon-reload",
		"systemctl enable --now docker.service",
		"docker compose version",
	}
	if len(calls) < len(want) || !slices.Equal(calls[:len(want)], want) {
		t.Errorf("first calls = %q\nwant %q", calls, want)
	}
	if onboards(calls) != 1 {
		t.Errorf("onboarded %d times, want 1: %q", onboards(calls), calls)
	}
	tail := []string{"systemctl enable openclaw.service", "systemctl restart openclaw.service"}
	if !slices.Equal(calls[len(calls)-2:], tail) {
		t.Errorf("last calls = %q, want %q", calls[len(calls)-2:], tail)
	}
	for _, c := range calls {
		if regexp.MustCompile(`openclaw-(volume|restore|backup|spot-watch|cloudwatch)`).MatchString(c) {
			t.Errorf("a vps has no %q", c)
		}
	}
	if !strings.Contains(string(log), "the data stays on this host's disk") {
		t.Errorf("log:\n%s", log)
	}
	for f, mode := range map[string]os.FileMode{
		"opt/openclaw/.openclaw":                       0o700,
		"opt/openclaw/docker-compose.yaml":             0o600,
		"opt/openclaw/auto-approve-devices.sh":         0o700,
		"etc/openclaw/secrets.env":                     0o600,
		"etc/openclaw/openclaw.env":                    0o600,
		"etc/systemd/system/openclaw.service":          0o644,
		"usr/local/libexec/openclaw/openclaw-start.sh": 0o755,
	} {
		info, err := os.Stat(filepath.Join(h.root, f))
		if err != nil || info.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want mode %v", f, info, err, mode)
		}
	}
	for _, v := range vpsSecrets {
		if bytes.Contains(log, []byte(v)) {
			t.Errorf("the setup log holds a secret value")
		}
	}

	// The same launch again does nothing at all.
	before := len(h.stubCalls())
	if out := h.launch(); out != "LAUNCH already-complete" {
		t.Errorf("second launch: %q", out)
	}
	if after := len(h.stubCalls()); after != before {
		t.Errorf("the second launch made %d calls", after-before)
	}

	// A new image relaunches: docker is there now, the configuration too; the gateway restarts.
	if err := os.WriteFile(filepath.Join(h.data, ".openclaw/openclaw.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.setImage("ghcr.io/openclaw/openclaw:2026.3.1")
	if out := h.launch(); out != "LAUNCH started" {
		t.Fatalf("relaunch: %q", out)
	}
	if st := h.waitSetup(); st.State != setup.Complete {
		t.Fatalf("relaunch: %+v", st)
	}
	again := h.stubCalls()[before:]
	if slices.ContainsFunc(again, func(c string) bool { return strings.HasPrefix(c, "apt-get") }) || onboards(again) != 0 ||
		!slices.Contains(again, "systemctl restart openclaw.service") {
		t.Errorf("relaunch calls = %q", again)
	}
}

// TestVPSSetupWarnsOfLittleMemory: a vps with 980 MiB of memory is set up all the same, and the
// setup's log says it is too little; this machine's memory draws no warning.
func TestVPSSetupWarnsOfLittleMemory(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		meminfo string
		warns   bool
	}{
		{"MemTotal:        1004136 kB\nMemFree:          512000 kB\n", true},
		{"", false}, // this machine's /proc/meminfo
	} {
		h := newVPSHost(t)
		if tc.meminfo != "" {
			file := filepath.Join(t.TempDir(), "meminfo")
			if err := os.WriteFile(file, []byte(tc.meminfo), 0o644); err != nil {
				t.Fatal(err)
			}
			h.settings += "OPENCLAW_MEMINFO=" + file + "\n"
		}
		h.launch()
		st := h.waitSetup()
		log, _ := os.ReadFile(filepath.Join(h.setupRoot, setup.LogFile))
		warned := strings.Contains(string(log), "warning: this host has 980 MiB of memory; OpenClaw's gateway alone keeps about 1 GiB resident")
		if st.State != setup.Complete || warned != tc.warns || strings.Contains(string(log), "warning: this host has") != tc.warns {
			t.Errorf("meminfo %q: %+v, warned %v, want %v:\n%s", tc.meminfo, st, warned, tc.warns, log)
		}
	}
}

// TestVPSGatewayStartsWithoutAVolume: on a vps the gateway's start needs no mount and no restore
// marker, and copies the secrets file to tmpfs.
func TestVPSGatewayStartsWithoutAVolume(t *testing.T) {
	t.Parallel()
	h := newVPSHost(t)
	h.launch()
	h.waitSetup()
	observed := filepath.Join(t.TempDir(), "env")
	r := h.mustRun(mounts{run: true, after: `cp "$OPENCLAW_TEST_RUN/.env" "` + observed + `"`}, "openclaw-start.sh")
	env, err := os.ReadFile(observed)
	if err != nil {
		t.Fatal(err)
	}
	if want := "ANTHROPIC_API_KEY=sk-ant-vps-93d0\nOPENCLAW_GATEWAY_TOKEN=gw-vps-7c1e\n"; string(env) != want {
		t.Errorf(".env = %q, want %q", env, want)
	}
	if !strings.Contains(r.stderr, "wrote 2 secrets from "+filepath.Join(h.root, "etc/openclaw/secrets.env")) {
		t.Errorf("stderr: %s", r.stderr)
	}
	if calls := h.stubCalls(); !strings.HasPrefix(calls[len(calls)-2], "docker image inspect ") ||
		!strings.HasPrefix(calls[len(calls)-1], "docker compose --project-name openclaw") || !strings.HasSuffix(calls[len(calls)-1], "pull --quiet") {
		t.Errorf("last calls %q, want the image looked for, then pulled", calls[len(calls)-2:])
	}
}

func TestVPSFiles(t *testing.T) {
	t.Parallel()
	settings, err := VPSSettings(VPSArgs{Stack: "dev", Image: "ghcr.io/openclaw/openclaw:2026.2.26"})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"OPENCLAW_TARGET=vps", "OPENCLAW_DATA_DIR=/opt/openclaw", "OPENCLAW_SECRETS_FILE=" + SecretsFile} {
		if !strings.Contains(settings, "\n"+line+"\n") {
			t.Errorf("settings lack %q:\n%s", line, settings)
		}
	}
	for _, line := range strings.Split(settings, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=[A-Za-z0-9._:/@+,=-]*$`).MatchString(line) {
			t.Errorf("settings line %q needs quoting", line)
		}
	}
	if _, err := VPSSettings(VPSArgs{Stack: "dev", Image: "x$(reboot)"}); err == nil || !strings.Contains(err.Error(), "Image") {
		t.Errorf("a bad image: %v", err)
	}
	files, err := VPSFiles(map[string]string{"B_KEY": "b=1 #x", "A_KEY": "a"})
	if err != nil {
		t.Fatal(err)
	}
	secrets := files[len(files)-1]
	if secrets.Path != SecretsFile || secrets.Mode != "0600" || secrets.Content != "A_KEY=a\nB_KEY=b=1 #x\n" {
		t.Errorf("secrets file %+v", secrets)
	}
	for _, f := range files {
		if f.Path == UnitDir+"/openclaw.service" && strings.Contains(f.Content, "openclaw-volume") {
			t.Errorf("the vps unit waits for a volume:\n%s", f.Content)
		}
	}
	_, err = VPSFiles(map[string]string{"A_KEY": "line1\nline2"})
	if err == nil || !strings.Contains(err.Error(), "A_KEY") || strings.Contains(err.Error(), "line1") {
		t.Errorf("a two-line secret: %v", err)
	}
	if _, err := VPSFiles(map[string]string{"a-key": "x"}); err == nil {
		t.Errorf("a bad variable name was accepted")
	}
}
