package cloudinit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clawdeploy/clawdeploy/internal/imdsfake"
	"github.com/clawdeploy/clawdeploy/internal/loopback"
	"github.com/clawdeploy/clawdeploy/internal/openclaw"
	"github.com/clawdeploy/clawdeploy/setup"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
)

// realStandIn makes the docker stub run the real OpenClaw for `docker compose … run … openclaw-cli
// ARGS`: the CLI service's command, as the image runs it (cli.sh, from the compose file the
// setup gives docker, which must be the one the test read), with ARGS.
const realStandIn = `
if [ "$1" = compose ]; then
	file="" cli=""
	while [ $# -gt 0 ]; do
		case $1 in
		-f) file=$2; shift ;;
		openclaw-cli) cli=1; shift; break ;;
		esac
		shift
	done
	if [ -n "$cli" ]; then
		cmp -s "$file" "$OPENCLAW_TEST_COMPOSE" || { echo "docker stand-in: $file is not the compose file the test read" >&2; exit 1; }
		exec sh "$OPENCLAW_TEST_STANDINS/cli.sh" $OPENCLAW_TEST_CLI_ENTRYPOINT "$@"
	fi
fi
`

// realServiceStandIn makes the systemctl stub start the real gateway for `systemctl enable --now
// openclaw.service`, in a session of its own (its pid, which is its process group, in
// gateway.pid), as the gateway service's command (gateway.sh), with none of the caller's file
// descriptors: systemd starts a unit outside the setup's process tree, so the gateway must not
// hold the setup's run lock (fd 9) or its launch lock (fd 8).
const realServiceStandIn = `
case "$*" in
"enable --now openclaw.service" | "restart openclaw.service")
	setsid sh "$OPENCLAW_TEST_STANDINS/gateway.sh" $OPENCLAW_TEST_GATEWAY_COMMAND \
		>>"$OPENCLAW_TEST_STANDINS/gateway.log" 2>&1 </dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
	echo $! >"$OPENCLAW_TEST_STANDINS/gateway.pid"
	;;
esac
`

// TestSetupBringsUpTheRealGateway runs the setup of a fresh instance with the real OpenClaw behind
// the docker and systemd stand-ins, the services as the compose file the host gets describes them
// (its volumes, environment, env file, command and port). The setup's own onboarding flags
// onboard the real CLI; the setup completes on the real gateway's /healthz, and the gateway then
// says it is ready on /readyz. The token the setup reports opens the gateway and another does
// not; no secret is under the data folder; and the gateway writes nothing in its HOME outside
// the three volumes, which are the directories the backups keep (STATE_DIRS).
func TestSetupBringsUpTheRealGateway(t *testing.T) {
	t.Parallel()
	in, err := openclaw.Installed()
	if err != nil {
		t.Fatal(err)
	}
	h := newEC2Host(t)
	port, err := loopback.Port()
	if err != nil {
		t.Fatal(err)
	}
	putSecret(t, h.moto, "/openclaw/dev/env/ANTHROPIC_API_KEY", "sk-ant-real-gateway-test")
	h.appendSettings(map[string]string{
		"OPENCLAW_GATEWAY_PORT":           strconv.Itoa(port),
		"OPENCLAW_HEALTH_TIMEOUT_SECONDS": "600", // 30-60 s on a busy 2-core machine; the bound is not the test's
		"OPENCLAW_HEALTH_POLL_SECONDS":    "1",
		"OPENCLAW_ONBOARD_AUTH_CHOICE":    stackconfig.OnboardAuthChoice(map[string]stackconfig.Secret{stackconfig.KeyAnthropicAPIKey: {}}),
	})

	compose := filepath.Join(h.root, "etc/openclaw/docker-compose.yaml")
	vars := map[string]string{"OPENCLAW_IMAGE": "ghcr.io/openclaw/openclaw:" + in.Version, "OPENCLAW_DATA_DIR": h.data,
		"OPENCLAW_GATEWAY_PORT": strconv.Itoa(port)}
	service := func(name string) openclaw.Service {
		s, err := openclaw.FromCompose(t.Context(), compose, name, vars)
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range s.EnvFiles {
			s.EnvFiles[i] = filepath.Join(h.run, strings.TrimPrefix(f, "/run/openclaw/"))
		}
		return s
	}
	cli, gateway := service("openclaw-cli"), service("openclaw-gateway")
	gateway.Layer = t.TempDir()
	gatewayCommand, err := gateway.GatewayCommand()
	if err != nil {
		t.Fatal(err)
	}
	standins := t.TempDir()
	for name, script := range map[string]string{"cli.sh": in.Script(cli), "gateway.sh": in.Script(gateway)} {
		if err := os.WriteFile(filepath.Join(standins, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stubs := filepath.Join(h.root, "stubs")
	for name, standIn := range map[string]string{"docker": realStandIn, "systemctl": realServiceStandIn} {
		f, err := os.OpenFile(filepath.Join(stubs, name), os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteString(stubScript + standIn)
		if err := errors.Join(err, f.Close()); err != nil {
			t.Fatal(err)
		}
	}
	h.env = append(h.env, "OPENCLAW_TEST_COMPOSE="+compose, "OPENCLAW_TEST_STANDINS="+standins,
		"OPENCLAW_TEST_CLI_ENTRYPOINT="+strings.Join(cli.Command, " "),
		"OPENCLAW_TEST_GATEWAY_COMMAND="+strings.Join(gatewayCommand, " "))
	t.Cleanup(func() { _, _ = stopGateway(t, standins) })

	start := time.Now()
	if out := h.launch(); out != "LAUNCH started" {
		t.Fatalf("launch: %q", out)
	}
	st := h.waitSetup()
	log, _ := os.ReadFile(filepath.Join(h.setupRoot, setup.LogFile))
	gatewayLog, _ := os.ReadFile(filepath.Join(standins, "gateway.log"))
	if st.State != setup.Complete || st.Token != "gw-setup-token" {
		t.Fatalf("status %+v\nsetup log:\n%s\ngateway log:\n%s", st, log, gatewayLog)
	}
	if got := h.published(); got != imdsfake.InstanceID+" COMPLETE gw-setup-token" {
		t.Errorf("published status = %q", got)
	}
	healthy := time.Since(start)
	var summary struct {
		OK         bool   `json:"ok"`
		AuthChoice string `json:"authChoice"`
		Gateway    struct {
			Port     int    `json:"port"`
			AuthMode string `json:"authMode"`
		} `json:"gateway"`
	}
	if b, err := os.ReadFile(filepath.Join(h.setupRoot, "openclaw-onboard.json")); err != nil || json.Unmarshal(b, &summary) != nil ||
		!summary.OK || summary.AuthChoice != "apiKey" || summary.Gateway.AuthMode != "token" {
		t.Errorf("the real onboarding's summary: %+v (%v)", summary, err)
	}

	// Ready, as the gateway itself says, not only live.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	for {
		r, err := openclaw.Readyz(port)
		if err == nil && r.Ready {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the gateway never said it was ready: %v\n%s", err, gatewayLog)
		}
		time.Sleep(500 * time.Millisecond)
	}
	ready := time.Since(start)
	pgid := gatewayGroup(t, standins)
	rss, _ := openclaw.GroupRSS(pgid)
	t.Logf("real gateway: setup complete (healthy) after %s, ready after %s, %d MiB resident", healthy.Round(time.Second), ready.Round(time.Second), rss>>20)

	// The token the setup reported opens the gateway; another does not.
	health := func(token string) (string, error) {
		cmd := in.Command(t.Context(), cli, []string{"OPENCLAW_GATEWAY_TOKEN=" + token}, append(cli.Command, "health", "--json")...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	if out, err := health(st.Token); err != nil || !strings.Contains(out, `"ok": true`) {
		t.Errorf("openclaw health with the setup's token: %v\n%s", err, out)
	}
	if out, err := health("not-the-token"); err == nil || !strings.Contains(out, "AUTH_TOKEN_MISMATCH") {
		t.Errorf("openclaw health with another token: %v\n%s", err, out)
	}

	// Stopped as systemd would, the gateway leaves its state on the volumes only.
	if took, err := stopGateway(t, standins); err != nil {
		t.Error(err)
	} else {
		t.Logf("real gateway: exited %s after SIGTERM", took.Round(10*time.Millisecond))
	}
	var outside []string
	_ = filepath.WalkDir(gateway.Layer, func(path string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(gateway.Layer, path)
		switch {
		case err != nil:
			return err
		case rel == "." || d.IsDir() && isMountPoint(gateway, "/home/node/"+rel):
			return nil
		case notState(rel):
			return nil
		default:
			outside = append(outside, rel)
		}
		return nil
	})
	if len(outside) > 0 {
		t.Errorf("the gateway wrote in its HOME outside its volumes (lost at the next start, in no backup): %q", outside)
	}
	var volumes []string
	for _, m := range gateway.Mounts {
		rel, err := filepath.Rel(h.data, m.Source)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("volume %s is not under the data folder %s", m.Source, h.data)
		}
		volumes = append(volumes, rel)
	}
	if want := stateDirsOfLib(t); strings.Join(volumes, " ") != strings.Join(want, " ") {
		t.Errorf("the gateway's volumes %q are not the directories the backups keep %q", volumes, want)
	}
	secrets := []string{"gw-setup-token", "sk-ant-real-gateway-test"}
	_ = filepath.WalkDir(h.data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a secret", path)
			}
		}
		return nil
	})
	for _, f := range []string{".openclaw/openclaw.json", ".openclaw/state/openclaw.sqlite", "workspace/AGENTS.md"} {
		if _, err := os.Stat(filepath.Join(h.data, f)); err != nil {
			t.Errorf("the real gateway's %s is not on the data folder: %v", f, err)
		}
	}
}

// notState reports whether rel, a path the gateway wrote in its HOME outside its volumes, is
// known to be no state: what this OpenClaw writes there on a start is two empty cache directories
// (~/.cache/openclaw, ~/.cache/openclaw-<uid>) and the debug log of the `npm root --global` it
// runs (~/.npm/_logs).
func notState(rel string) bool {
	for _, p := range []string{".cache", ".npm", ".npm/_logs"} {
		if rel == p {
			return true
		}
	}
	return strings.HasPrefix(rel, ".npm/_logs/") && strings.HasSuffix(rel, "-debug-0.log") ||
		(rel == ".cache/openclaw" || strings.HasPrefix(rel, ".cache/openclaw-"))
}

// isMountPoint reports whether target is a mount target of s, or a directory above one (made to
// hold it, as docker makes it in the container's layer).
func isMountPoint(s openclaw.Service, target string) bool {
	for _, m := range s.Mounts {
		if m.Target == target {
			return true
		}
	}
	return isAboveMount(s, target)
}

func isAboveMount(s openclaw.Service, dir string) bool {
	for _, m := range s.Mounts {
		if strings.HasPrefix(m.Target, dir+"/") {
			return true
		}
	}
	return false
}

// gatewayGroup is the process group of the gateway the systemctl stand-in started.
func gatewayGroup(t *testing.T, standins string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(standins, "gateway.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// stopGateway ends the gateway the systemctl stand-in started, as systemd stops a unit.
func stopGateway(t *testing.T, standins string) (time.Duration, error) {
	return openclaw.Stop(gatewayGroup(t, standins), 30*time.Second)
}
