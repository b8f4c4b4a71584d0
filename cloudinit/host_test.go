package cloudinit

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clawdeploy/clawdeploy/internal/moto"
	"github.com/clawdeploy/clawdeploy/setup"
)

// testArgs are the Args the tests render with.
func testArgs(bucket string) Args {
	return Args{
		Stack:                     "dev",
		Region:                    moto.Region,
		VolumeID:                  "vol-0123456789abcdef0",
		BackupBucket:              bucket,
		SecretsPath:               "/openclaw/dev/env",
		StatusParameter:           "/openclaw/dev/setup-status",
		CloudWatchConfigParameter: "/openclaw/dev/cloudwatch-agent",
		Image:                     "ghcr.io/openclaw/openclaw:2026.2.26",
		BackupIntervalMinutes:     20,
	}
}

// host is a fake instance: the files cloud-init writes, under a temporary root, with the data
// folder, the tmpfs run folder and the lock folder moved inside it. Scripts run in a private
// mount namespace where the data folder is a real mountpoint (a bind mount of itself) and the run
// folder is a real tmpfs, so their safety checks are the real ones.
type host struct {
	t       testing.TB
	root    string
	data    string
	run     string
	libexec string
	stubLog string
	env     []string
	// setupRoot is the setup protocol's directory.
	setupRoot string
	// setupBound is how long waitSetup waits for the setup to end (0: 5 minutes, seconds on an
	// idle machine). A host whose setup waits on something slow bounds that wait itself and sets
	// setupBound above it, so that on a busy machine the setup's own limit is the one that fails.
	setupBound time.Duration
	// diagnose, when set, adds what else the host knows (its gateway's log) to a failure.
	diagnose func() string
}

// newRoot returns a host with its folders named under a new temporary root, nothing written.
func newRoot(t testing.TB) *host {
	t.Helper()
	root := t.TempDir()
	return &host{
		t:         t,
		root:      root,
		data:      filepath.Join(root, "opt/openclaw"),
		run:       filepath.Join(root, "run/openclaw"),
		libexec:   filepath.Join(root, strings.TrimPrefix(LibexecDir, "/")),
		stubLog:   filepath.Join(root, "stub-calls.log"),
		setupRoot: filepath.Join(root, "root"),
	}
}

// newHost writes the rendered files for args under a new root. env is the environment the scripts
// start from (the emulator's, say); nil means the test process's own.
func newHost(t testing.TB, args Args, env []string) *host {
	t.Helper()
	h := newRoot(t)
	root := h.root
	files, err := Files(args)
	if err != nil {
		t.Fatalf("Files: %v", err)
	}
	writeTree(t, root, files)
	for _, d := range []string{h.data, h.run, filepath.Join(root, "run/lock"), filepath.Join(root, "dev/disk/by-id")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Later assignments win when the scripts source the file: the rendered settings stay under
	// test, with the instance paths moved into the fake root.
	h.appendSettings(map[string]string{
		"OPENCLAW_DATA_DIR":          h.data,
		"OPENCLAW_RUN_DIR":           h.run,
		"OPENCLAW_LOCK_DIR":          filepath.Join(root, "run/lock"),
		"OPENCLAW_DEVICE_DIR":        filepath.Join(root, "dev/disk/by-id"),
		"OPENCLAW_COMPOSE_SOURCE":    filepath.Join(root, "etc/openclaw/docker-compose.yaml"),
		"OPENCLAW_LIBEXEC":           h.libexec,
		"OPENCLAW_SPOT_POLL_SECONDS": "1",
	})
	h.writeStubs()
	if env == nil {
		env = os.Environ()
	}
	h.env = append(env,
		"OPENCLAW_ENV_FILE="+h.envFile(),
		"PATH="+filepath.Join(root, "stubs")+string(os.PathListSeparator)+os.Getenv("PATH"),
		"STUB_LOG="+h.stubLog,
	)
	return h
}

// writeTree writes files under root with their modes, as cloud-init would.
func writeTree(t testing.TB, root string, files []File) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(root, f.Path)
		var mode os.FileMode
		if _, err := fmt.Sscanf(f.Mode, "%o", &mode); err != nil {
			t.Fatalf("mode %q of %s: %v", f.Mode, f.Path, err)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.Content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func (h *host) envFile() string { return filepath.Join(h.root, strings.TrimPrefix(EnvFile, "/")) }

// appendSettings adds KEY=VALUE lines to the settings file.
func (h *host) appendSettings(kv map[string]string) {
	h.t.Helper()
	f, err := os.OpenFile(h.envFile(), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range kv {
		if _, err := fmt.Fprintf(f, "%s=%s\n", k, v); err != nil {
			h.t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		h.t.Fatal(err)
	}
}

// writeStubs puts fake systemctl and docker on PATH: they record their arguments, one call per
// line, with a timestamp, and succeed, unless the call is the one STUB_FAIL names. Nothing in
// these tests may reach the real ones.
func (h *host) writeStubs() {
	h.t.Helper()
	dir := filepath.Join(h.root, "stubs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	for name, script := range map[string]string{"systemctl": stubScript, "docker": stubScript + imageStandIn + onboardStandIn} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			h.t.Fatal(err)
		}
	}
}

// addToStub appends script to the stub name (systemctl or docker): answers of its own, after the
// call is recorded.
func (h *host) addToStub(name, script string) {
	h.t.Helper()
	f, err := os.OpenFile(filepath.Join(h.root, "stubs", name), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := f.WriteString(script); err != nil {
		h.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		h.t.Fatal(err)
	}
}

// stubScript records its call and succeeds, unless the call is the one STUB_FAIL names.
const stubScript = `#!/bin/sh
call="${0##*/} $*"
printf '%s %s\n' "$(date +%s.%N)" "$call" >>"$STUB_LOG"
if [ -n "${STUB_FAIL:-}" ] && [ "$call" = "$STUB_FAIL" ]; then exit 1; fi
`

// imageStandIn makes the docker stub keep the images a host has, as docker does: `docker compose
// … pull` fetches the compose file's image (OPENCLAW_IMAGE, which compose reads from the env
// file), `docker image inspect` succeeds for an image the host has. They are listed in the file
// images beside the stub's log.
const imageStandIn = `
images="${STUB_LOG%/*}/images"
case " $* " in
" image inspect "*) grep -qxF -- "$3" "$images" 2>/dev/null || { echo "Error: No such image: $3" >&2; exit 1; } ;;
" compose "*" pull "*) printf '%s\n' "${OPENCLAW_IMAGE:?the stand-in pulls the image OPENCLAW_IMAGE names}" >>"$images" ;;
esac
`

// onboardStandIn makes the docker stub answer `openclaw onboard … --json` with a summary, fast: the
// tests of the setup's own logic (markers, locks, failures, a second run) take seconds on it. That
// the real OpenClaw accepts the setup's onboarding, and its gateway comes up on what it wrote, is
// TestTheRealGateway's.
const onboardStandIn = `
case " $* " in
*" openclaw-cli onboard "*" --json "*) echo '{"ok":true,"mode":"local","gateway":{"port":18789,"authMode":"token"}}' ;;
esac
`

// stubCalls returns the recorded calls, as "name args". The setup's looks at a unit's state
// (`systemctl show`, while it waits for the gateway) change nothing and are left out.
func (h *host) stubCalls() []string {
	b, err := os.ReadFile(h.stubLog)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	var calls []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if _, call, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(call, "systemctl show ") {
			calls = append(calls, call)
		}
	}
	return calls
}

// mounts says which of the host's folders are mounted for a run.
type mounts struct {
	data bool // bind-mount the data folder onto itself: a real mountpoint
	run  bool // mount a tmpfs on the run folder
	// after is a shell snippet run after the script, in the same namespace.
	after string
}

// command returns the command that runs a script of the host in its own mount namespace. When
// m.after is set, that shell snippet runs after the script in the same namespace (which goes
// away with its last process), to look at what the script mounted or wrote to tmpfs.
func (h *host) command(m mounts, script string, args ...string) *exec.Cmd {
	h.t.Helper()
	return h.commandLine(m, append([]string{filepath.Join(h.libexec, script)}, args...)...)
}

// commandLine is command for any command line.
func (h *host) commandLine(m mounts, argv ...string) *exec.Cmd {
	h.t.Helper()
	prelude := "set -e\n"
	if m.data {
		prelude += `mount --bind "$OPENCLAW_TEST_DATA" "$OPENCLAW_TEST_DATA"` + "\n"
	}
	if m.run {
		prelude += `mount -t tmpfs -o mode=0755 tmpfs "$OPENCLAW_TEST_RUN"` + "\n"
	}
	if m.after == "" {
		prelude += `exec "$@"`
	} else {
		prelude += "set +e\n\"$@\"\nrc=$?\n" + m.after + "\nexit $rc"
	}
	unshare := []string{"--mount", "--propagation", "private"}
	if os.Geteuid() != 0 {
		unshare = append(unshare, "--map-root-user")
	}
	full := append(append(unshare, "sh", "-c", prelude, "sh"), argv...)
	cmd := exec.Command("unshare", full...)
	cmd.Env = append(h.env, "OPENCLAW_TEST_DATA="+h.data, "OPENCLAW_TEST_RUN="+h.run)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// result is how a script run ended.
type result struct {
	code     int
	stdout   string
	stderr   string
	duration time.Duration
}

// runScript runs a script to completion.
func (h *host) runScript(m mounts, script string, args ...string) result {
	h.t.Helper()
	cmd := h.command(m, script, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), duration: time.Since(start)}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.code = exit.ExitCode()
	} else if err != nil {
		h.t.Fatalf("running %s: %v", script, err)
	}
	return r
}

// mustRun runs a script and fails the test unless it succeeds.
func (h *host) mustRun(m mounts, script string, args ...string) result {
	h.t.Helper()
	r := h.runScript(m, script, args...)
	if r.code != 0 {
		h.t.Fatalf("%s exited %d\nstdout:\n%s\nstderr:\n%s", script, r.code, r.stdout, r.stderr)
	}
	return r
}

// waitSetup polls with the protocol's poll command until the state is final, and then until the
// script has let go of its run lock: it reports its result with its marker a moment before it
// exits, and a launch in that moment is honestly "already-running".
func (h *host) waitSetup() setup.Status {
	h.t.Helper()
	bound := h.setupBound
	if bound == 0 {
		bound = 5 * time.Minute // seconds on an idle machine; never the test's limit on a busy one
	}
	deadline := time.Now().Add(bound)
	lock := filepath.Join(h.setupRoot, setup.LockFile)
	for {
		out, err := exec.Command("bash", "-c", setup.PollCommand(h.setupRoot)).Output()
		if err != nil {
			h.t.Fatalf("poll: %v", err)
		}
		st, err := setup.ParseStatus(string(out))
		if err != nil {
			h.t.Fatal(err)
		}
		final := st.State == setup.Complete || st.State == setup.Failed
		if final && exec.Command("flock", "-n", lock, "true").Run() == nil {
			return st
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(h.setupRoot, setup.LogFile))
			if h.diagnose != nil {
				log = append(log, h.diagnose()...)
			}
			if final {
				h.t.Fatalf("setup %s, but its script still held the run lock after %s:\n%s", st.State, bound, log)
			}
			h.t.Fatalf("setup still %s after %s:\n%s", st.State, bound, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// healthPort starts a server that answers the gateway's health check, for the test, and returns
// its port.
func healthPort(t *testing.T) string {
	return healthAnswering(t, `{"ok":true,"status":"live"}`)
}

// healthAnswering starts a server whose /healthz answers body with 200, and returns its port.
func healthAnswering(t *testing.T, body string) string {
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(health.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(health.URL, "http://"))
	return port
}

// stopSetupScripts kills, when the test ends, the setup scripts still running from the host's
// setup root (each in its own session).
func (h *host) stopSetupScripts() {
	h.t.Cleanup(func() {
		if pid, err := exec.Command("pgrep", "-f", filepath.Join(h.setupRoot, setup.ScriptFile)).Output(); err == nil {
			for _, p := range strings.Fields(string(pid)) {
				_ = exec.Command("kill", "-KILL", "--", "-"+p).Run()
			}
		}
	})
}
