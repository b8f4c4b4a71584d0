package cloudinit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/clawdeploy/clawdeploy/internal/imdsfake"
	"github.com/clawdeploy/clawdeploy/internal/loopback"
	"github.com/clawdeploy/clawdeploy/internal/moto"
	"github.com/clawdeploy/clawdeploy/internal/openaifake"
	"github.com/clawdeploy/clawdeploy/internal/openclaw"
	"github.com/clawdeploy/clawdeploy/setup"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
)

// realStandIn makes the docker stub run the real OpenClaw for `docker compose … run … openclaw-cli
// ARGS`: the CLI service's command, as the image runs it (cli.sh, from the compose file the
// setup gives docker, which must be the one the test read), with ARGS; and answer `docker compose
// … logs … --tail N openclaw-gateway` with the last N lines the gateway's container printed.
const realStandIn = `
if [ "$1" = compose ]; then
	file="" cli="" logs="" tail=all
	while [ $# -gt 0 ]; do
		case $1 in
		-f) file=$2; shift ;;
		logs) logs=1 ;;
		--tail) tail=$2; shift ;;
		openclaw-gateway) [ -n "$logs" ] && { [ "$tail" = all ] && tail=1000000; tail -n "$tail" "$OPENCLAW_TEST_STANDINS/gateway.log" 2>/dev/null; exit 0; } ;;
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

// realServiceStandIn makes the systemctl stub start openclaw.service as systemd does: its
// ExecStartPre (openclaw-start.sh: the volume and the restore checked, the secrets written to the
// env file, the compose file installed), then its ExecStart, the gateway service (gateway.sh),
// in a session of its own (its leader's pid, which is its process group, in gateway.pid) and
// with none of the caller's file descriptors: systemd starts a unit outside the setup's process
// tree, so the gateway must not hold the setup's run lock (fd 9) or its launch lock (fd 8). As
// the unit's Restart=on-failure and RestartSec=10 say, a gateway that exits with an error is
// started again 10 s later: the real one does when a starved machine makes it miss its own
// 5-second startup bound (openclaw/openclaw#135717), and the setup's wait must live with that.
// `systemctl show` answers the unit's ActiveState and NRestarts, which the setup watches. What the
// container prints goes to gateway.log (`docker compose logs` reads it), the rest of the unit's
// output (its ExecStartPre, the restarts) to unit.log, as systemd's journal keeps it apart. It
// stops the unit as its ExecStop does (`docker compose stop --timeout 30`): SIGTERM to the
// gateway, SIGKILL after 30 s, and returns once the gateway is gone; the leader outlives the
// gateway, so the group's leader is alive exactly while the unit is.
const realServiceStandIn = `
unit="$OPENCLAW_TEST_STANDINS/unit"
case "$*" in
"enable --now openclaw.service" | "restart openclaw.service")
	setsid sh -c '
		stopped="" restarts=0
		trap stopped=1 TERM
		while :; do
			echo "active $restarts" >"$OPENCLAW_TEST_STANDINS/unit"
			"$OPENCLAW_LIBEXEC/openclaw-start.sh" && sh "$OPENCLAW_TEST_STANDINS/gateway.sh" "$@" >>"$OPENCLAW_TEST_STANDINS/gateway.log" 2>&1
			code=$?
			if [ -n "$stopped" ] || [ "$code" -eq 0 ]; then
				echo "inactive $restarts" >"$OPENCLAW_TEST_STANDINS/unit"
				exit 0
			fi
			restarts=$((restarts + 1))
			echo "activating $restarts" >"$OPENCLAW_TEST_STANDINS/unit"
			echo "systemctl stand-in: openclaw.service exited with code $code: restarting it in 10 s (restart $restarts)"
			sleep 10 &
			wait $!
			if [ -n "$stopped" ]; then
				echo "inactive $restarts" >"$OPENCLAW_TEST_STANDINS/unit"
				exit 0
			fi
		done' sh $OPENCLAW_TEST_GATEWAY_COMMAND >>"$OPENCLAW_TEST_STANDINS/unit.log" 2>&1 </dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
	echo $! >"$OPENCLAW_TEST_STANDINS/gateway.pid"
	;;
"show openclaw.service --property ActiveState --value")
	state=$(cat "$unit" 2>/dev/null) || state="inactive 0"
	echo "${state% *}"
	;;
"show openclaw.service --property NRestarts --value")
	state=$(cat "$unit" 2>/dev/null) || state="inactive 0"
	echo "${state#* }"
	;;
"stop openclaw.service")
	pgid=$(cat "$OPENCLAW_TEST_STANDINS/gateway.pid" 2>/dev/null) || exit 0
	kill -TERM "-$pgid" 2>/dev/null || exit 0 # dash: no "--" after a signal
	for _ in $(seq 300); do
		kill -0 "-$pgid" 2>/dev/null || exit 0
		sleep 0.1
	done
	kill -KILL "-$pgid" 2>/dev/null
	echo "systemctl stand-in: the gateway did not stop within 30 s of SIGTERM" >&2
	;;
esac
`

// unitAsTheStandIn fails t unless the unit file at path (in content) starts, stops and restarts
// the gateway as realServiceStandIn does.
func unitAsTheStandIn(t *testing.T, path string) {
	t.Helper()
	unit, err := content.ReadFile(path)
	if err != nil || !strings.Contains(string(unit), "\nExecStartPre=/usr/local/libexec/openclaw/openclaw-start.sh\n") ||
		!regexp.MustCompile(`\nExecStart=/usr/bin/docker compose .* up .*openclaw-gateway\n`).Match(unit) ||
		!regexp.MustCompile(`\nExecStop=/usr/bin/docker compose .* stop --timeout 30\n`).Match(unit) ||
		!strings.Contains(string(unit), "\nRestart=on-failure\nRestartSec=10\n") {
		t.Fatalf("%s no longer starts, stops or restarts the gateway as the systemctl stand-in does (%v):\n%s", path, err, unit)
	}
}

// realOpenClaw is the real OpenClaw behind a host's docker and systemctl stand-ins: its CLI and
// gateway as the compose file the host gets describes them (volumes, environment, env file,
// command, port).
type realOpenClaw struct {
	h            *host
	in           openclaw.Install
	cli, gateway openclaw.Service
	standins     string
	port         int
}

// realHost is an instance whose docker and systemd stand-ins run the real OpenClaw.
type realHost struct {
	*ec2Host
	*realOpenClaw
}

// newRealHost makes an instance of stack dev in the AWS of m (its bucket, secrets and status
// parameter), with the real OpenClaw behind its stand-ins, its gateway published on port (0: a
// free one). Every instance of a deployment publishes the same port, which onboarding writes
// into openclaw.json, where the CLI reads it.
func newRealHost(t *testing.T, in openclaw.Install, m *moto.Server, port int) *realHost {
	t.Helper()
	unitAsTheStandIn(t, "files/systemd/openclaw.service")
	e := newEC2HostOn(t, m)
	r := &realHost{ec2Host: e, realOpenClaw: newRealOpenClaw(t, e.host, in, port, filepath.Join(e.root, "stubs", "docker"))}
	r.appendSettings(map[string]string{
		"OPENCLAW_GATEWAY_PORT":           strconv.Itoa(r.port),
		"OPENCLAW_HEALTH_TIMEOUT_SECONDS": strconv.Itoa(int(realHealthBound.Seconds())),
		"OPENCLAW_HEALTH_POLL_SECONDS":    "1",
		"OPENCLAW_ONBOARD_AUTH_CHOICE":    stackconfig.OnboardAuthChoice(map[string]stackconfig.Secret{stackconfig.KeyAnthropicAPIKey: {}}),
	})
	return r
}

// realHealthBound is the setup's bound on its wait for the real gateway's health. The gateway is
// healthy 30-90 s after its start on a 2-core machine, and took over 4 minutes in CI beside the
// other packages' tests: the setup's own bound on that wait (its default, 600 s) is the limit,
// and the test waits for the setup longer than the setup waits for anything.
const realHealthBound = 10 * time.Minute

// newRealOpenClaw puts the real OpenClaw behind h's stand-ins: docker (written at dockerStub,
// where the host's docker is found or installed from) and systemctl, each a recording stub that
// runs the real CLI and gateway. The compose file is the one h has at etc/openclaw, read now.
func newRealOpenClaw(t *testing.T, h *host, in openclaw.Install, port int, dockerStub string) *realOpenClaw {
	t.Helper()
	r := &realOpenClaw{h: h, in: in, standins: t.TempDir(), port: port}
	var err error
	if port == 0 {
		if r.port, err = loopback.Port(); err != nil {
			t.Fatal(err)
		}
	}
	h.setupBound = realHealthBound + 5*time.Minute
	h.diagnose = func() string { return "\ngateway log:\n" + r.gatewayLog() }
	compose := filepath.Join(h.root, "etc/openclaw/docker-compose.yaml")
	vars := map[string]string{"OPENCLAW_IMAGE": "ghcr.io/openclaw/openclaw:" + in.Version, "OPENCLAW_DATA_DIR": h.data,
		"OPENCLAW_GATEWAY_PORT": strconv.Itoa(r.port)}
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
	r.cli, r.gateway = service("openclaw-cli"), service("openclaw-gateway")
	r.gateway.Layer = t.TempDir()
	gatewayCommand, err := r.gateway.GatewayCommand()
	if err != nil {
		t.Fatal(err)
	}
	for name, script := range map[string]string{"cli.sh": in.Script(r.cli), "gateway.sh": in.Script(r.gateway)} {
		if err := os.WriteFile(filepath.Join(r.standins, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for path, standIn := range map[string]string{dockerStub: imageStandIn + realStandIn, filepath.Join(h.root, "stubs", "systemctl"): realServiceStandIn} {
		if err := os.WriteFile(path, []byte(stubScript+standIn), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h.env = append(h.env, "OPENCLAW_TEST_COMPOSE="+compose, "OPENCLAW_TEST_STANDINS="+r.standins,
		"OPENCLAW_TEST_CLI_ENTRYPOINT="+strings.Join(r.cli.Command, " "),
		"OPENCLAW_TEST_GATEWAY_COMMAND="+strings.Join(gatewayCommand, " "))
	t.Cleanup(func() { _, _ = r.stop() })
	return r
}

// setUp launches the setup and waits for it to complete, then for the gateway to say it is ready
// on /readyz. It returns the setup's status and the times to each.
func (r *realHost) setUp() (st setup.Status, healthy, ready time.Duration) {
	r.t.Helper()
	start := time.Now()
	if out := r.launch(); out != "LAUNCH started" {
		r.t.Fatalf("launch: %q", out)
	}
	return r.completed(start, "gw-setup-token")
}

// completed waits for the setup launched at start to complete with token, then for the gateway
// to say it is ready on /readyz.
func (r *realOpenClaw) completed(start time.Time, token string) (st setup.Status, healthy, ready time.Duration) {
	t := r.h.t
	t.Helper()
	st = r.h.waitSetup()
	if st.State != setup.Complete || st.Token != token {
		log, _ := os.ReadFile(filepath.Join(r.h.setupRoot, setup.LogFile))
		t.Fatalf("status %+v\nsetup log:\n%s\ngateway log:\n%s", st, log, r.gatewayLog())
	}
	healthy = time.Since(start)
	ctx, cancel := context.WithTimeout(t.Context(), r.h.setupBound)
	defer cancel()
	for {
		ok, err := openclaw.Readyz(r.port)
		if err == nil && ok.Ready {
			return st, healthy, time.Since(start)
		}
		if ctx.Err() != nil {
			t.Fatalf("the gateway never said it was ready: %v %+v\n%s", err, ok, r.gatewayLog())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// gatewayLog is what the gateway's unit printed, then what its container did.
func (r *realOpenClaw) gatewayLog() string {
	unit, _ := os.ReadFile(filepath.Join(r.standins, "unit.log"))
	container, _ := os.ReadFile(filepath.Join(r.standins, "gateway.log"))
	return "the unit's (openclaw-start.sh, restarts):\n" + string(unit) + "the container's:\n" + string(container)
}

// openclaw runs the CLI of the host's image with args, the gateway token token in its
// environment, and returns what it printed.
func (r *realOpenClaw) openclaw(token string, args ...string) (string, error) {
	cmd := r.in.Command(r.h.t.Context(), r.cli, []string{"OPENCLAW_GATEWAY_TOKEN=" + token}, append(r.cli.Command, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// stop ends the gateway as systemd stops a unit, and returns how long it took.
func (r *realOpenClaw) stop() (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join(r.standins, "gateway.pid"))
	if err != nil {
		return 0, nil
	}
	pgid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return openclaw.Stop(pgid, 30*time.Second)
}

// rss is the gateway's resident memory, in MiB.
func (r *realOpenClaw) rss() int64 {
	b, _ := os.ReadFile(filepath.Join(r.standins, "gateway.pid"))
	pgid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	n, _ := openclaw.GroupRSS(pgid)
	return n >> 20
}

// TestTheRealGateway runs the real OpenClaw through a deployment's life on the instance's own
// scripts, sharing its gateways between the steps (each start takes 30-60 s and 1 GB):
//
//   - a fresh host: the setup's own onboarding flags onboard the real CLI, the setup completes on
//     the real gateway's /healthz and the gateway then says it is ready on /readyz; the token the
//     setup reports opens the gateway and another does not; no secret is under the data folder;
//     the gateway writes nothing in its HOME outside its volumes, which are the directories the
//     backups keep (STATE_DIRS);
//   - a conversation through the gateway (`openclaw agent`), its model a fake of an
//     OpenAI-compatible API: the answer comes back and the session is in the agent's database;
//   - a backup taken by the instance's script while a turn writes, restored by the instance's
//     script onto a new host of the same stack (an empty data folder): its setup does not onboard
//     again, its gateway starts on the restored state, and a follow-up turn carries the earlier
//     messages (the model is sent them);
//   - a Spot notice on that host: its watcher stops the gateway and takes the final backup, which
//     a third host restores; its agent database holds the turn only the final backup has.
func TestTheRealGateway(t *testing.T) {
	t.Parallel()
	in, err := openclaw.Installed()
	if err != nil {
		t.Fatal(err)
	}
	m := realStack(t)
	const word = "pelican"
	model := secretWordModel(t, word)
	step := steps(t)
	a := newRealHost(t, in, m, 0)
	step("fresh host", func(t *testing.T) { freshHost(t, a.on(t)) })
	step("conversation", func(t *testing.T) { conversation(t, a.on(t), model, word) })
	b := newRealHost(t, in, m, a.port)
	step("backup restored on a new host", func(t *testing.T) { backupRestored(t, a.on(t), b.on(t), m, model, word) })
	c := newEC2HostOn(t, m)
	step("final backup after a Spot notice restored on a new host", func(t *testing.T) {
		c.t = t
		finalBackupRestored(t, b.on(t), c, m)
	})
}

// TestTheRealGatewayThatCannotStartFailsTheSetup: a data volume whose openclaw.json the real
// gateway refuses (a key it does not know: "Invalid config", exit 78), as a restore of state
// from a newer release can bring. The setup does not onboard over it; systemd (the stand-in, as
// the unit says) starts the gateway again 10 s after each exit; the setup fails at the third
// restart, not at its 10-minute health bound, with the gateway's own words in the reason the
// driver reports and in the published status.
func TestTheRealGatewayThatCannotStartFailsTheSetup(t *testing.T) {
	t.Parallel()
	in, err := openclaw.Installed()
	if err != nil {
		t.Fatal(err)
	}
	h := newRealHost(t, in, realStack(t), 0)
	h.mustRun(mounts{data: true}, "openclaw-restore.sh")
	if err := os.MkdirAll(filepath.Join(h.data, ".openclaw"), 0o700); err != nil {
		t.Fatal(err)
	}
	const refused = `{"gateway": {"mode": "local"}, "notAnOpenClawKey": true}`
	if err := os.WriteFile(filepath.Join(h.data, ".openclaw/openclaw.json"), []byte(refused), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if out := h.launch(); out != "LAUNCH started" {
		t.Fatalf("launch: %q", out)
	}
	st := h.waitSetup()
	took := time.Since(start)
	const crashing, said = "the gateway keeps crashing: restarted 3 times since the setup started it: ", `Unrecognized key: "notAnOpenClawKey"`
	if st.State != setup.Failed || !strings.Contains(st.Reason, crashing) || !strings.Contains(st.Reason, said) {
		log, _ := os.ReadFile(filepath.Join(h.setupRoot, setup.LogFile))
		t.Fatalf("status %+v after %s: want FAILED, crashing, with the gateway's words\nsetup log:\n%s\n%s", st, took, log, h.gatewayLog())
	}
	if strings.Contains(st.Reason, "[39m") {
		t.Errorf("the reason keeps the log's colours: %s", st.Reason)
	}
	if published := h.published(); !strings.Contains(published, "FAILED") || !strings.Contains(published, "notAnOpenClawKey") {
		t.Errorf("published status %q lacks the gateway's words", published)
	}
	if n := onboards(h.stubCalls()); n != 0 {
		t.Errorf("onboarded %d times over an existing openclaw.json", n)
	}
	t.Logf("the setup failed %s after its launch: %s", took.Round(time.Second), st.Reason)
}

// realStack is the AWS of stack dev for real-gateway hosts: its bucket and its model API key.
func realStack(t *testing.T) *moto.Server {
	m := moto.Start(t)
	m.CreateBucket(t, "openclaw-dev-setup")
	putSecret(t, m, "/openclaw/dev/env/ANTHROPIC_API_KEY", "sk-ant-real-gateway-test")
	return m
}

// steps returns a step runner for t: each step uses the hosts made for the whole test (their
// gateways outlive a step) with the step's own t, and a failed step ends the test.
func steps(t *testing.T) func(name string, f func(t *testing.T)) {
	return func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
}

// secretWordModel is a fake model that answers the question "What is the secret word?" from
// what the gateway sends it: the earlier turns, each user message as OpenClaw stamps it ("[Mon
// 2026-12-07 15:12 UTC] The secret word is pelican."), then the question, then OpenClaw's own
// context. Anything else is "Noted.".
func secretWordModel(t *testing.T, word string) *openaifake.Server {
	return openaifake.Start(t, func(messages []openaifake.Message) string {
		var history strings.Builder
		for _, msg := range messages {
			if msg.Role == "user" && strings.Contains(msg.Text(), "What is the secret word?") {
				if strings.Contains(history.String(), "The secret word is "+word) {
					return "The secret word is " + word + "."
				}
				return "I was never told a secret word."
			}
			history.WriteString(msg.Role + ": " + msg.Text() + "\n")
		}
		return "Noted."
	})
}

// on makes t the test r fails and whose context its commands run in: a step's.
func (r *realHost) on(t *testing.T) *realHost {
	r.t = t
	return r
}

func freshHost(t *testing.T, a *realHost) {
	// A new deployment: the restore finds nothing and says so (the backups need its marker).
	a.mustRun(mounts{data: true}, "openclaw-restore.sh")
	st, healthy, ready := a.setUp()
	if got := a.published(); got != imdsfake.InstanceID+" COMPLETE gw-setup-token" {
		t.Errorf("published status = %q", got)
	}
	t.Logf("real gateway: setup complete (healthy) after %s, ready after %s, %d MiB resident",
		healthy.Round(time.Second), ready.Round(time.Second), a.rss())
	var summary struct {
		OK         bool   `json:"ok"`
		AuthChoice string `json:"authChoice"`
		Gateway    struct {
			AuthMode string `json:"authMode"`
		} `json:"gateway"`
	}
	if b, err := os.ReadFile(filepath.Join(a.setupRoot, "openclaw-onboard.json")); err != nil || json.Unmarshal(b, &summary) != nil ||
		!summary.OK || summary.AuthChoice != "apiKey" || summary.Gateway.AuthMode != "token" {
		t.Errorf("the real onboarding's summary: %+v (%v)", summary, err)
	}
	if out, err := a.openclaw(st.Token, "health", "--json"); err != nil || !strings.Contains(out, `"ok": true`) {
		t.Errorf("openclaw health with the setup's token: %v\n%s", err, out)
	}
	if out, err := a.openclaw("not-the-token", "health", "--json"); err == nil || !strings.Contains(out, "AUTH_TOKEN_MISMATCH") {
		t.Errorf("openclaw health with another token: %v\n%s", err, out)
	}
	var volumes []string
	for _, m := range a.gateway.Mounts {
		rel, err := filepath.Rel(a.data, m.Source)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("volume %s is not under the data folder %s", m.Source, a.data)
		}
		volumes = append(volumes, rel)
	}
	if want := stateDirsOfLib(t); strings.Join(volumes, " ") != strings.Join(want, " ") {
		t.Errorf("the gateway's volumes %q are not the directories the backups keep %q", volumes, want)
	}
	if log, _ := os.ReadFile(filepath.Join(a.setupRoot, setup.LogFile)); !strings.Contains(string(log), "the gateway has started: /startupz says so") {
		t.Errorf("the setup did not wait for /startupz:\n%s", log)
	}
	// The compose healthcheck, with the image's node, against the real gateway.
	hc := loadCompose(t).Services["openclaw-gateway"].HealthCheck
	script := strings.ReplaceAll(hc.Test[3], "http://127.0.0.1:18789", "http://127.0.0.1:"+strconv.Itoa(a.port))
	if out, err := exec.CommandContext(t.Context(), filepath.Join(a.in.NodeDir, "node"), "-e", script).CombinedOutput(); err != nil {
		t.Errorf("the compose healthcheck on the real gateway: %v %s", err, out)
	}
	noSecretUnder(t, a.data, "gw-setup-token", "sk-ant-real-gateway-test")
	for _, f := range []string{".openclaw/openclaw.json", ".openclaw/state/openclaw.sqlite", "workspace/AGENTS.md"} {
		if _, err := os.Stat(filepath.Join(a.data, f)); err != nil {
			t.Errorf("the real gateway's %s is not on the data folder: %v", f, err)
		}
	}
}

func conversation(t *testing.T, a *realHost, model *openaifake.Server, word string) {
	provider, _ := json.Marshal(map[string]any{"baseUrl": model.URL, "apiKey": "fake-model-key", "api": "openai-completions",
		"models": []map[string]any{{"id": openaifake.Model, "name": "Echo", "reasoning": false, "input": []string{"text"},
			"contextWindow": 128000, "maxTokens": 4096}}})
	for _, set := range [][]string{
		{"config", "set", "models.providers.fake", string(provider), "--strict-json"},
		{"config", "set", "agents.defaults.model.primary", "fake/" + openaifake.Model},
	} {
		if out, err := a.openclaw("gw-setup-token", set...); err != nil {
			t.Fatalf("openclaw %s: %v\n%s", strings.Join(set[:3], " "), err, out)
		}
	}
	answer := turn(t, a, "The secret word is "+word+".")
	if answer != "Noted." {
		t.Errorf("the first turn's answer: %q", answer)
	}
	if n := len(model.Requests()); n == 0 {
		t.Fatal("the model was never asked")
	}
	if got := sqlite(t, filepath.Join(a.data, ".openclaw/agents/main/agent/openclaw-agent.sqlite"),
		"SELECT count(*) FROM sqlite_master WHERE type = 'table'"); got == "0" {
		t.Errorf("the agent's database has no tables")
	}
	if !dataHolds(t, a.data, "The secret word is "+word) {
		t.Error("the conversation is nowhere on the data folder")
	}
}

// turn holds one turn of the main agent through the gateway and returns its answer.
func turn(t *testing.T, r *realHost, message string) string {
	t.Helper()
	out, err := r.openclaw("gw-setup-token", "agent", "--agent", "main", "--message", message, "--json")
	var result struct {
		Status string `json:"status"`
		Result struct {
			Payloads []struct {
				Text string `json:"text"`
			} `json:"payloads"`
		} `json:"result"`
	}
	if start := strings.Index(out, "{"); err != nil || start < 0 || json.Unmarshal([]byte(out[start:]), &result) != nil ||
		result.Status != "ok" || len(result.Result.Payloads) == 0 {
		t.Fatalf("openclaw agent --message %q: %v\n%s", message, err, out)
	}
	return result.Result.Payloads[0].Text
}

func backupRestored(t *testing.T, a, b *realHost, m *moto.Server, model *openaifake.Server, word string) {
	// The backup runs while a turn writes the agent's state.
	done := make(chan string, 1)
	go func() {
		out, _ := a.openclaw("gw-setup-token", "agent", "--agent", "main", "--message", "Say anything.", "--json")
		done <- out
	}()
	backup := a.mustRun(mounts{data: true}, "openclaw-backup.sh")
	<-done
	bucket := "openclaw-dev-setup"
	head, err := m.S3().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(BackupObject)})
	if err != nil || head.Metadata["sha256"] == "" {
		t.Fatalf("the backup: %v", err)
	}
	t.Logf("real gateway: backup of the live state in %.1fs, %d bytes:\n%s", backup.duration.Seconds(), aws.ToInt64(head.ContentLength), backup.stderr)
	for _, entry := range archiveEntries(t, m, bucket) {
		if strings.Contains(entry, ".openclaw/cache/") || strings.Contains(entry, ".openclaw/tmp/") {
			t.Errorf("the backup holds %s, which is no state (BACKUP_SKIP)", entry)
			break
		}
	}
	if took, err := a.stop(); err != nil {
		t.Error(err)
	} else {
		t.Logf("real gateway: exited %s after SIGTERM", took.Round(10*time.Millisecond))
	}
	onlyVolumes(t, a.realOpenClaw)

	b.mustRun(mounts{data: true}, "openclaw-restore.sh")
	if marker, err := os.ReadFile(filepath.Join(b.data, ".openclaw-restore-complete")); err != nil || !strings.HasPrefix(string(marker), "restored s3://") {
		t.Fatalf("restore marker = %q, %v", marker, err)
	}
	_, healthy, ready := b.setUp()
	t.Logf("real gateway on the restored host: healthy after %s, ready after %s", healthy.Round(time.Second), ready.Round(time.Second))
	log, _ := os.ReadFile(filepath.Join(b.setupRoot, setup.LogFile))
	if !strings.Contains(string(log), "openclaw.json exists: not onboarding again") {
		t.Errorf("the restored host onboarded again:\n%s", log)
	}
	before := len(model.Requests())
	if answer := turn(t, b, "What is the secret word?"); answer != "The secret word is "+word+"." {
		t.Errorf("after the restore, the answer is %q: the earlier messages were not sent", answer)
	}
	requests := model.Requests()[before:]
	if len(requests) == 0 {
		t.Fatal("the restored gateway never asked the model")
	}
	var sent []string
	told := false
	for _, msg := range requests[len(requests)-1].Messages {
		sent = append(sent, msg.Role+": "+msg.Text())
		told = told || msg.Role == "user" && strings.Contains(msg.Text(), "] The secret word is "+word+".")
	}
	if !told {
		t.Errorf("the model was not sent the earlier message; it got:\n%s", strings.Join(sent, "\n"))
	}
}

// finalBackupRestored: a Spot notice on b, whose watcher stops the gateway and takes the final
// backup; c, a new host of the stack, restores it, and its agent database holds the turn b held
// after its own restore, which only the final backup has. (That a gateway starts on a restored
// backup and is sent its history is backupRestored's: c runs no gateway, one start less.)
func finalBackupRestored(t *testing.T, b *realHost, c *ec2Host, m *moto.Server) {
	const question = "Which bird was the secret word?"
	if answer := turn(t, b, question); answer == "" {
		t.Fatal("no answer on the restored host")
	}
	b.imds.Interrupt()
	watch := b.mustRun(mounts{data: true}, "openclaw-spot-watch.sh")
	t.Logf("real gateway: from the Spot notice to the final backup's end in %.1fs", watch.duration.Seconds())
	if pid, err := os.ReadFile(filepath.Join(b.standins, "gateway.pid")); err != nil || openclaw.Alive(atoi(t, pid)) {
		t.Errorf("the gateway still runs after the notice (%v):\n%s", err, watch.stderr)
	}
	bucket := "openclaw-dev-setup"
	head, err := m.S3().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(BackupObject)})
	if err != nil || head.Metadata["reason"] != "spot-interruption" {
		t.Fatalf("the bucket's newest backup: %v %v\n%s", head, err, watch.stderr)
	}
	if got := b.published(); !strings.HasSuffix(got, " INTERRUPTED "+imdsfake.InstanceID) {
		t.Errorf("published status = %q", got)
	}
	onlyVolumes(t, b.realOpenClaw)

	c.mustRun(mounts{data: true}, "openclaw-restore.sh")
	agent, err := os.ReadFile(filepath.Join(c.data, ".openclaw/agents/main/agent/openclaw-agent.sqlite"))
	if err != nil {
		t.Fatalf("the restored agent database: %v", err)
	}
	if !bytes.Contains(agent, []byte(`"content":"`+question+`"`)) {
		t.Errorf("the restored agent database lacks the turn held after the first restore: the final backup lost it")
	}
	if got := sqlite(t, filepath.Join(c.data, ".openclaw/state/openclaw.sqlite"), "PRAGMA integrity_check;"); got != "ok" {
		t.Errorf("the restored state database: integrity_check = %s", got)
	}
}

func atoi(t *testing.T, b []byte) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// onlyVolumes fails when the stopped gateway of r wrote, in its HOME, outside its volumes: what
// it wrote there is lost at its next start and is in no backup.
func onlyVolumes(t *testing.T, r *realOpenClaw) {
	t.Helper()
	var outside []string
	_ = filepath.WalkDir(r.gateway.Layer, func(path string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(r.gateway.Layer, path)
		switch {
		case err != nil:
			return err
		case rel == "." || d.IsDir() && isMountPoint(r.gateway, "/home/node/"+rel), notState(rel):
		default:
			outside = append(outside, rel)
		}
		return nil
	})
	if len(outside) > 0 {
		t.Errorf("the gateway wrote in its HOME outside its volumes (lost at the next start, in no backup): %q", outside)
	}
}

// noSecretUnder fails when a file under dir holds one of secrets.
func noSecretUnder(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
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
}

// dataHolds reports whether a file under dir holds text (a database's pages included).
func dataHolds(t *testing.T, dir, text string) bool {
	t.Helper()
	found := false
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return err
		}
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(text)) {
			found = true
		}
		return nil
	})
	return found
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

// realVPSHost is a bare vps whose docker (once the setup installs it) and systemctl stand-ins
// run the real OpenClaw.
type realVPSHost struct {
	*vpsHost
	*realOpenClaw
}

// newRealVPSHost makes a bare vps with the real OpenClaw behind its stand-ins. The compose file
// the launch will write is written first, for the stand-ins to read the services from it; the
// docker stand-in checks that the setup runs that very file.
func newRealVPSHost(t *testing.T, in openclaw.Install) *realVPSHost {
	t.Helper()
	unitAsTheStandIn(t, vpsUnit.src)
	h := newVPSHost(t)
	files, err := VPSFiles(vpsSecrets)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup.Under(h.root, files) {
		if filepath.Base(f.Path) == "docker-compose.yaml" {
			if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f.Path, []byte(f.Content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := &realVPSHost{vpsHost: h, realOpenClaw: newRealOpenClaw(t, h.host, in, 0, filepath.Join(h.root, "docker.stub"))}
	h.settings += fmt.Sprintf("OPENCLAW_GATEWAY_PORT=%d\nOPENCLAW_HEALTH_TIMEOUT_SECONDS=%d\nOPENCLAW_HEALTH_POLL_SECONDS=1\n",
		r.realOpenClaw.port, int(realHealthBound.Seconds()))
	return r
}

// TestTheRealGatewayOnABareVPS runs the vps setup, as a vps gets it over SSH, on a bare host
// whose docker, once the setup installs it, runs the real OpenClaw: the setup's onboarding flags
// onboard the real CLI, the setup completes on the real gateway's health and the gateway says it
// is ready; the token the setup reports opens it and another does not; the configuration is on
// the host's disk and no secret is under it; the same launch again does nothing; the gateway
// wrote nothing in its HOME outside its volumes.
func TestTheRealGatewayOnABareVPS(t *testing.T) {
	t.Parallel()
	in, err := openclaw.Installed()
	if err != nil {
		t.Fatal(err)
	}
	r := newRealVPSHost(t, in)
	start := time.Now()
	if out := r.launch(); out != "LAUNCH started" {
		t.Fatalf("launch: %q", out)
	}
	token := vpsSecrets["OPENCLAW_GATEWAY_TOKEN"]
	_, healthy, ready := r.completed(start, token)
	t.Logf("real gateway on a bare vps: setup complete (docker installed, healthy) after %s, ready after %s, %d MiB resident",
		healthy.Round(time.Second), ready.Round(time.Second), r.rss())
	if out, err := r.openclaw(token, "health", "--json"); err != nil || !strings.Contains(out, `"ok": true`) {
		t.Errorf("openclaw health with the setup's token: %v\n%s", err, out)
	}
	if out, err := r.openclaw("not-the-token", "health", "--json"); err == nil || !strings.Contains(out, "AUTH_TOKEN_MISMATCH") {
		t.Errorf("openclaw health with another token: %v\n%s", err, out)
	}
	for _, f := range []string{".openclaw/openclaw.json", ".openclaw/state/openclaw.sqlite", "workspace/AGENTS.md"} {
		if _, err := os.Stat(filepath.Join(r.data, f)); err != nil {
			t.Errorf("the real gateway's %s is not on the vps's data folder: %v", f, err)
		}
	}
	noSecretUnder(t, r.data, vpsSecrets["OPENCLAW_GATEWAY_TOKEN"], vpsSecrets["ANTHROPIC_API_KEY"])
	if onboards(r.stubCalls()) != 1 {
		t.Errorf("onboarded %d times, want 1", onboards(r.stubCalls()))
	}
	before := len(r.stubCalls())
	if out := r.launch(); out != "LAUNCH already-complete" {
		t.Errorf("second launch: %q", out)
	}
	if after := len(r.stubCalls()); after != before {
		t.Errorf("the second launch made %d calls", after-before)
	}
	if _, err := r.stop(); err != nil {
		t.Fatal(err)
	}
	onlyVolumes(t, r.realOpenClaw)
}
