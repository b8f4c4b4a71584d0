package cloudinit

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawdeploy/clawdeploy/internal/imdsfake"
	"github.com/clawdeploy/clawdeploy/internal/moto"
	"github.com/clawdeploy/clawdeploy/setup"
)

// ec2Host is a fake instance ready for the setup script: the emulator holds the gateway token and
// the status parameter, the fake IMDS knows the instance id, and a local server answers the
// gateway's health check.
type ec2Host struct {
	*host
	moto *moto.Server
	imds *imdsfake.Server
}

func newEC2Host(t *testing.T) *ec2Host {
	t.Helper()
	return newEC2HostOn(t, moto.Start(t))
}

// newEC2HostOn is newEC2Host in the AWS of m: a second instance of the same stack.
func newEC2HostOn(t *testing.T, m *moto.Server) *ec2Host {
	t.Helper()
	putSecret(t, m, "/openclaw/dev/env/OPENCLAW_GATEWAY_TOKEN", "gw-setup-token")
	m.PutSecureString(t, "/openclaw/dev/setup-status", "NOT_STARTED")
	imds := imdsfake.Start(t)
	h := &ec2Host{host: newHost(t, testArgs("openclaw-dev-setup"), m.Env()), moto: m, imds: imds}
	h.appendSettings(map[string]string{
		"OPENCLAW_IMDS_ENDPOINT":          imds.URL,
		"OPENCLAW_GATEWAY_PORT":           healthPort(t),
		"OPENCLAW_UID":                    fmt.Sprint(os.Getuid()),
		"OPENCLAW_GID":                    fmt.Sprint(os.Getgid()),
		"OPENCLAW_HEALTH_TIMEOUT_SECONDS": "20",
	})
	h.stopSetupScripts()
	return h
}

// launch runs the launch command cloud-init runs, inside the host's namespace, and returns its
// line; the script it starts lives on in that namespace.
func (h *ec2Host) launch(env ...string) string {
	h.t.Helper()
	launch := setup.Launch{
		Root:       h.setupRoot,
		SourcePath: filepath.Join(h.root, strings.TrimPrefix(SetupScriptPath, "/")),
		EnvFile:    h.envFile(),
	}.Command()
	cmd := h.commandLine(mounts{data: true, run: true}, "bash", "-c", launch)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.Output()
	if err != nil {
		h.t.Fatalf("launch: %v %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// published returns the final status the script wrote to SSM. The script publishes after it
// writes its marker (the marker is the record), so a poller can see the marker first: wait for
// the published value to leave RUNNING.
func (h *ec2Host) published() string {
	h.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		v := strings.TrimSpace(h.moto.Parameter(h.t, "/openclaw/dev/setup-status"))
		if !strings.HasSuffix(v, " RUNNING") && v != "NOT_STARTED" || time.Now().After(deadline) {
			return v
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func onboards(calls []string) int {
	n := 0
	for _, c := range calls {
		if strings.Contains(c, " run --rm --no-deps -T openclaw-cli onboard --non-interactive") {
			n++
		}
	}
	return n
}

func TestSetupScriptBringsUpAFreshInstance(t *testing.T) {
	t.Parallel()
	h := newEC2Host(t)
	if out := h.launch(); out != "LAUNCH started" {
		t.Fatalf("launch: %q", out)
	}
	st := h.waitSetup()
	if st.State != setup.Complete || st.Token != "gw-setup-token" {
		log, _ := os.ReadFile(filepath.Join(h.setupRoot, setup.LogFile))
		t.Fatalf("status %+v\n%s", st, log)
	}
	if got := h.published(); got != imdsfake.InstanceID+" COMPLETE gw-setup-token" {
		t.Errorf("published status = %q", got)
	}
	calls := h.stubCalls()
	want := []string{
		"systemctl daemon-reload",
		"systemctl enable --now docker.service",
		"docker compose version",
		"systemctl start openclaw-volume.service",
		"systemctl start openclaw-restore.service",
	}
	if len(calls) < len(want) || !slices.Equal(calls[:len(want)], want) {
		t.Errorf("first calls = %q\nwant %q", calls, want)
	}
	if onboards(calls) != 1 {
		t.Errorf("onboarded %d times on a fresh volume, want 1: %q", onboards(calls), calls)
	}
	// The documented non-interactive form for a container: the token by reference, no daemon,
	// no health wait, a JSON summary; never a secret on the command line.
	for _, c := range calls {
		if !strings.Contains(c, " onboard ") {
			continue
		}
		for _, flag := range []string{"--non-interactive", "--accept-risk", "--secret-input-mode ref", "--gateway-auth token",
			"--gateway-token-ref-env OPENCLAW_GATEWAY_TOKEN", "--no-install-daemon", "--skip-health", "--skip-channels", "--json"} {
			if !strings.Contains(c+" ", " "+flag+" ") {
				t.Errorf("onboarding lacks %s: %s", flag, c)
			}
		}
		if strings.Contains(c, "gw-setup-token") {
			t.Errorf("onboarding has the gateway token on its command line: %s", c)
		}
	}
	if summary, err := os.ReadFile(filepath.Join(h.setupRoot, "openclaw-onboard.json")); err != nil || !strings.HasPrefix(string(summary), "{") {
		t.Errorf("onboarding summary: %q %v", summary, err)
	}
	for _, c := range []string{
		"systemctl enable --now openclaw.service",
		"systemctl enable --now openclaw-backup.timer openclaw-spot-watch.service openclaw-cloudwatch.service",
	} {
		if !slices.Contains(calls, c) {
			t.Errorf("missing call %q in %q", c, calls)
		}
	}
	for _, f := range []string{".openclaw", "workspace", "auth-profile-secrets"} {
		info, err := os.Stat(filepath.Join(h.data, f))
		if err != nil || info.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v", f, info, err)
		}
	}
	for f, mode := range map[string]os.FileMode{"docker-compose.yaml": 0o600, "auto-approve-devices.sh": 0o700} {
		info, err := os.Stat(filepath.Join(h.data, f))
		if err != nil || info.Mode().Perm() != mode {
			t.Errorf("%s: %v %v", f, info, err)
		}
	}
	token, err := os.Stat(filepath.Join(h.setupRoot, setup.TokenFile))
	if err != nil || token.Mode().Perm() != 0o600 {
		t.Errorf("token marker: %v %v", token, err)
	}

	// Launching again on the finished instance does nothing at all.
	before := len(h.stubCalls())
	if out := h.launch(); out != "LAUNCH already-complete" {
		t.Errorf("second launch: %q", out)
	}
	if after := len(h.stubCalls()); after != before {
		t.Errorf("the second launch made %d calls", after-before)
	}
}

// TestSetupWaitsForAHealthyAnswer: on an image without /startupz (older than 2026.8.1, whose
// Control UI answers the path with a page), a gateway whose /healthz answers 200 with a page, or
// with "ok": false, is not healthy; the setup fails naming what it waited for.
func TestSetupWaitsForAHealthyAnswer(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"a page":       "<!doctype html><html><body>OpenClaw Control</body></html>",
		"ok is false":  `{"ok":false,"status":"starting"}`,
		"ok is a text": `{"ok":"true"}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newEC2Host(t)
			h.appendSettings(map[string]string{
				"OPENCLAW_GATEWAY_PORT":           healthAnswering(t, body),
				"OPENCLAW_HEALTH_TIMEOUT_SECONDS": "3",
				"OPENCLAW_HEALTH_POLL_SECONDS":    "1",
			})
			if out := h.launch(); out != "LAUNCH started" {
				t.Fatalf("launch: %q", out)
			}
			if st := h.waitSetup(); st.State != setup.Failed || !strings.Contains(st.Reason, "did not finish starting") ||
				!strings.Contains(st.Reason, "(/healthz: not yet)") {
				t.Errorf("status %+v, want FAILED waiting for /healthz", st)
			}
		})
	}
}

// TestSetupWaitsForStartupWork: READY means started. A gateway whose /healthz says "ok" at once
// while /startupz says "starting" (its migrations running) completes the setup only once
// /startupz says "started", and the log says which probe answered; one that stays "draining"
// fails the setup, naming /startupz. An image without /startupz is waited for on /healthz.
func TestSetupWaitsForStartupWork(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		starting int // /startupz answers "starting" this many times, then "started"; -1: "draining" always
		complete bool
		probe    string
	}{
		{"migrations, then started", 3, true, "/startupz"},
		{"draining", -1, false, "/startupz"},
		{"no /startupz", 0, true, "/healthz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			asked := 0
			server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/healthz":
					_, _ = w.Write([]byte(`{"ok":true,"status":"live"}`))
				case r.URL.Path == "/startupz" && tc.probe == "/startupz":
					mu.Lock()
					asked++
					n := asked
					mu.Unlock()
					switch {
					case tc.starting < 0:
						w.WriteHeader(http.StatusServiceUnavailable)
						_, _ = w.Write([]byte(`{"ok":false,"status":"draining"}`))
					case n <= tc.starting:
						w.WriteHeader(http.StatusServiceUnavailable)
						_, _ = w.Write([]byte(`{"ok":false,"status":"starting"}`))
					default:
						_, _ = w.Write([]byte(`{"ok":true,"status":"started"}`))
					}
				default: // the Control UI of an image without /startupz
					_, _ = w.Write([]byte("<!doctype html><html><body>OpenClaw Control</body></html>"))
				}
			}))
			t.Cleanup(server.Close)
			h := newEC2Host(t)
			h.appendSettings(map[string]string{
				"OPENCLAW_GATEWAY_PORT":           server.URL[strings.LastIndex(server.URL, ":")+1:],
				"OPENCLAW_HEALTH_TIMEOUT_SECONDS": "8",
				"OPENCLAW_HEALTH_POLL_SECONDS":    "1",
			})
			if out := h.launch(); out != "LAUNCH started" {
				t.Fatalf("launch: %q", out)
			}
			st := h.waitSetup()
			log, _ := os.ReadFile(filepath.Join(h.setupRoot, setup.LogFile))
			mu.Lock()
			n := asked
			mu.Unlock()
			switch {
			case tc.complete && (st.State != setup.Complete || !strings.Contains(string(log), "the gateway has started: "+tc.probe+" says so")):
				t.Errorf("status %+v, want COMPLETE on %s:\n%s", st, tc.probe, log)
			case tc.complete && tc.starting > 0 && n <= tc.starting:
				t.Errorf("complete after %d answers of /startupz, %d of them \"starting\"", n, tc.starting)
			case !tc.complete && (st.State != setup.Failed || !strings.Contains(st.Reason, "did not finish starting") || !strings.Contains(st.Reason, "(/startupz: not yet)")):
				t.Errorf("status %+v, want FAILED on /startupz", st)
			}
		})
	}
}

// TestSetupCatchesACrashLoop: a gateway that crashes at start fails the setup as soon as systemd
// has restarted it three times (here every poll finds one restart more), not at the health
// timeout (15 minutes, beyond the test's bound), with the container's last log lines in the
// reason the driver reports. One whose unit failed outright fails at the first poll. One that
// systemd restarted twice and that then starts (a start that missed OpenClaw's own startup bound
// on a starved machine) is no crash loop: the setup completes.
func TestSetupCatchesACrashLoop(t *testing.T) {
	t.Parallel()
	const logLine = "Error: Config validation failed: gateway.port: Expected number, received string"
	for _, tc := range []struct {
		name, state string
		restarts    int // the count systemd reaches at most; 0: no bound
		want        string
	}{
		{"restarted again and again", "activating", 0, "the gateway keeps crashing: restarted 3 times since the setup started it: "},
		{"unit failed", "failed", 0, "the gateway stopped while starting (its unit is failed): "},
		// The setup's first look finds 1: twice since, then the gateway answers.
		{"restarted twice then started", "active", 3, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newEC2Host(t)
			// systemd's answers: the unit's state, and one automatic restart more at each look
			// (up to tc.restarts). The gateway answers once systemd has restarted it that often.
			restarts := filepath.Join(h.root, "restarts")
			restarted := func() int {
				b, _ := os.ReadFile(restarts)
				n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
				return n
			}
			health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/healthz" {
					http.NotFound(w, r)
					return
				}
				body := `{"ok":false,"status":"starting"}`
				if tc.restarts > 0 && restarted() >= tc.restarts {
					body = `{"ok":true,"status":"live"}`
				}
				_, _ = w.Write([]byte(body))
			}))
			t.Cleanup(health.Close)
			h.appendSettings(map[string]string{
				"OPENCLAW_GATEWAY_PORT":           health.URL[strings.LastIndex(health.URL, ":")+1:],
				"OPENCLAW_HEALTH_TIMEOUT_SECONDS": "900",
				"OPENCLAW_HEALTH_POLL_SECONDS":    "1",
			})
			h.addToStub("systemctl", `
case "$*" in
"show openclaw.service --property ActiveState --value") echo `+tc.state+` ;;
"show openclaw.service --property NRestarts --value")
	n=$(cat "`+restarts+`" 2>/dev/null || echo 0)
	if [ `+strconv.Itoa(tc.restarts)+` -eq 0 ] || [ "$n" -lt `+strconv.Itoa(tc.restarts)+` ]; then
		n=$((n + 1))
		echo "$n" >"`+restarts+`"
	fi
	echo "$n" ;;
esac
`)
			h.addToStub("docker", `
case " $* " in
*" logs "*" openclaw-gateway "*) printf '%s\n' "starting the gateway" "`+logLine+`" ;;
esac
`)
			if out := h.launch(); out != "LAUNCH started" {
				t.Fatalf("launch: %q", out)
			}
			st := h.waitSetup()
			if tc.want == "" {
				if st.State != setup.Complete || restarted() < tc.restarts {
					t.Errorf("status %+v after %d restarts, want COMPLETE after %d", st, restarted(), tc.restarts)
				}
				return
			}
			if st.State != setup.Failed || !strings.Contains(st.Reason, tc.want+"starting the gateway|"+logLine) {
				t.Errorf("status %+v, want FAILED saying %q with the gateway's log", st, tc.want)
			}
			if published := h.published(); !strings.Contains(published, logLine) {
				t.Errorf("published status %q lacks the gateway's log", published)
			}
		})
	}
}

func TestSetupDoesNotOnboardAgain(t *testing.T) {
	t.Parallel()
	h := newEC2Host(t)
	// A replacement instance: the data volume (or its restore) already holds the configuration.
	if err := os.MkdirAll(filepath.Join(h.data, ".openclaw"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.data, ".openclaw/openclaw.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.launch()
	if st := h.waitSetup(); st.State != setup.Complete {
		t.Fatalf("status %+v", st)
	}
	if n := onboards(h.stubCalls()); n != 0 {
		t.Errorf("onboarded %d times with openclaw.json present", n)
	}
	log, _ := os.ReadFile(filepath.Join(h.setupRoot, setup.LogFile))
	if !strings.Contains(string(log), "openclaw.json exists: not onboarding again") {
		t.Errorf("log:\n%s", log)
	}
}

func TestSetupFailureNamesTheLineAndCommand(t *testing.T) {
	t.Parallel()
	h := newEC2Host(t)
	h.launch("STUB_FAIL=systemctl start openclaw-restore.service")
	st := h.waitSetup()
	if st.State != setup.Failed || !strings.HasSuffix(st.Reason, ": systemctl start openclaw-restore.service") ||
		!strings.HasPrefix(st.Reason, "line ") {
		t.Fatalf("status %+v", st)
	}
	marker, _ := os.ReadFile(filepath.Join(h.setupRoot, setup.ErrorFile))
	if !strings.HasPrefix(string(marker), "FAILED: line ") {
		t.Errorf("error marker = %q", marker)
	}
	if got := h.published(); got != imdsfake.InstanceID+" FAILED "+st.Reason {
		t.Errorf("published status = %q, want the failure", got)
	}
	for _, c := range h.stubCalls() {
		if strings.Contains(c, "openclaw.service") {
			t.Errorf("the gateway was started after the failure: %q", c)
		}
	}
}
