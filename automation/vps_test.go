package automation_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/internal/openrouterfake"
	"github.com/clawdeploy/clawdeploy/internal/simprogram"
	"github.com/clawdeploy/clawdeploy/internal/sshd"
	"github.com/clawdeploy/clawdeploy/setup"
	"github.com/clawdeploy/clawdeploy/targets/vps"
)

// vpsWorld is a simulated world whose vps host is a real sshd on a loopback port: the simulated
// command provider runs the program's remote commands on it, and the driver polls it.
type vpsWorld struct {
	sim    *enginetest.Sim
	server *sshd.Server
	root   string // the setup protocol's directory on the host
	files  string // where the launch writes the host's other files
}

func newVPSWorld(t *testing.T, script []byte) *vpsWorld {
	t.Helper()
	return newVPSWorldOn(t, script, sshd.Start(t))
}

// newVPSWorldOn is newVPSWorld on a server of the test's.
func newVPSWorldOn(t *testing.T, script []byte, server *sshd.Server) *vpsWorld {
	t.Helper()
	w := &vpsWorld{sim: enginetest.NewSim(t, bins), server: server, root: t.TempDir(), files: t.TempDir()}
	path := filepath.Join(t.TempDir(), "setup.sh")
	if err := os.WriteFile(path, script, 0o600); err != nil {
		t.Fatal(err)
	}
	w.sim.Env["SIMDRIVER_VPS_SCRIPT"] = path
	w.sim.Env["SIMDRIVER_VPS_POLL"] = "300ms"
	w.sim.Env["SIMDRIVER_VPS_FILES"] = w.files
	return w
}

// upArgs are the arguments of an up of stack on the world's host, as a backend passes them.
func (w *vpsWorld) upArgs(stack string) []string {
	return append(w.hostArgs(stack), "--secret", "gateway_token=gw-vps-token")
}

// hostArgs are upArgs without a gateway token.
func (w *vpsWorld) hostArgs(stack string) []string {
	return []string{
		"--target", "vps", "up", "--stack", stack,
		"--config", "vps_host=127.0.0.1",
		"--config", "vps_port=" + strconv.Itoa(w.server.Port),
		"--config", "vps_user=" + w.server.User,
		"--config", "vps_host_key=" + w.server.HostKey,
		"--config", "vps_setup_root=" + w.root,
		"--secret", "vps_ssh_private_key=" + string(w.server.ClientKey),
	}
}

// outputs returns the stack's outputs as `clawdeploy outputs` prints them with flags.
func (w *vpsWorld) outputs(t *testing.T, stack string, flags ...string) map[string]any {
	t.Helper()
	cmd := exec.Command(filepath.Join(w.sim.Bins.Dir, "clawdeploy-sim"), append([]string{"--json", "outputs", "--stack", stack}, flags...)...)
	cmd.Env = w.sim.Environ("SIMDRIVER_PROGRAM=vps")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("outputs: %v", err)
	}
	values := map[string]any{}
	if err := json.Unmarshal(out, &values); err != nil {
		t.Fatalf("outputs %s: %v", out, err)
	}
	return values
}

func (w *vpsWorld) launches() int {
	data, _ := os.ReadFile(filepath.Join(w.root, "launches"))
	return strings.Count(string(data), "run\n")
}

// TestVPSDriverKilledWhilePollingResumes kills the driver while it polls a setup that runs until
// the test lets it end; a new process resumes the polling and the deployment becomes READY, the
// script having been launched once.
func TestVPSDriverKilledWhilePollingResumes(t *testing.T) {
	t.Parallel()
	gate := filepath.Join(t.TempDir(), "setup-may-end")
	w := newVPSWorld(t, simprogram.GatedSetupScript(gate))
	p := startSim(t, w.sim, "vps", w.upArgs("vps1")...)
	deadline := time.After(3 * time.Minute)
	polling := false
	for !polling {
		select {
		case e := <-p.seen:
			polling = e.Type == EventStatus && e.Status == "INSTALLING"
		case <-p.done:
			t.Fatalf("up ended before it polled\n%s", p.stderr.String())
		case <-deadline:
			t.Fatal("up never started polling")
		}
	}
	// A few polls: two more exec sessions than when polling began.
	execs := w.server.Stats().Execs
	for w.server.Stats().Execs < execs+2 {
		select {
		case <-p.done:
			t.Fatalf("up ended while the setup ran\n%s", p.stderr.String())
		case <-deadline:
			t.Fatal("up never polled twice")
		case <-time.After(50 * time.Millisecond):
		}
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	p.wait(time.Minute)
	if rec := status(t, w.sim, "vps", "vps1"); rec["status"] != "INSTALLING" || rec["stage"] != StageSetupLaunched {
		t.Fatalf("after the kill: %v", rec)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	r, code := runSim(t, w.sim, "vps", "--target", "vps", "resume", "--stack", "vps1")
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, r.stderr.String())
	}
	rec := status(t, w.sim, "vps", "vps1")
	if rec["status"] != "READY" || rec["stage"] != StageSetupComplete {
		t.Errorf("after resume: %v", rec)
	}
	if n := w.launches(); n != 1 {
		t.Errorf("the setup script was launched %d times", n)
	}
	var stages []string
	for _, e := range append(p.events, r.events...) {
		if e.Type == EventStage {
			stages = append(stages, e.Stage)
		}
	}
	for _, want := range vps.Stages.Order {
		if slices.Contains(vps.Stages.Optional, want) {
			// Without a provisioning key or an order: no OpenRouter key, no ordering stage.
			if slices.Contains(stages, want) {
				t.Errorf("stage %s reported for a host the user brings, without a provisioning key", want)
			}
			continue
		}
		if !slices.Contains(stages, want) {
			t.Errorf("stage %s never reported; reported %v", want, stages)
		}
	}
	// The host now trusts the deployment's own key, authorized once.
	keys, _ := os.ReadFile(filepath.Join(w.server.Home, ".ssh", "authorized_keys"))
	if n := strings.Count(string(keys), "ssh-ed25519 "); n != 1 {
		t.Errorf("%d deployment keys authorized:\n%s", n, keys)
	}

	// Another up changes nothing on the host: the launch is not run again.
	before := w.server.Stats()
	if r, code := runSim(t, w.sim, "vps", w.upArgs("vps1")...); code != 0 {
		t.Fatalf("second up: exit %d\n%s", code, r.stderr.String())
	}
	if n := w.launches(); n != 1 {
		t.Errorf("a second up launched the script again (%d runs)", n)
	}
	// Its only session is the one poll that confirms COMPLETE.
	if after := w.server.Stats(); after.Execs-before.Execs != 1 {
		t.Errorf("a second up made %d exec sessions, want the 1 poll", after.Execs-before.Execs)
	}

	// The ec2-spot program must never run on it: it would delete everything.
	if r, code := runSim(t, w.sim, "vps", "up", "--stack", "vps1"); code != 2 ||
		!strings.Contains(r.stderr.String(), "vps1 is a vps deployment; run it with --target vps") {
		t.Errorf("up with the default target: exit %d\n%s", code, r.stderr.String())
	}
}

// TestVPSFailingSetupReachesTheJournal runs a setup script whose line 7 fails: the line and the
// command reach the journal, and the CLI exits 1.
func TestVPSFailingSetupReachesTheJournal(t *testing.T) {
	t.Parallel()
	w := newVPSWorld(t, simprogram.SetupScript(0, true))
	p, code := runSim(t, w.sim, "vps", w.upArgs("vps2")...)
	if code != 1 {
		t.Fatalf("up: exit %d, want 1\n%s", code, p.stderr.String())
	}
	rec := status(t, w.sim, "vps", "vps2")
	if rec["status"] != "ERROR" || !strings.Contains(fmt.Sprint(rec["lastError"]), "line 7: false") {
		t.Errorf("journal: %v", rec)
	}
	if !strings.Contains(p.stderr.String(), "line 7: false") {
		t.Errorf("stderr does not name the line and command:\n%s", p.stderr.String())
	}
}

// TestVPSRetryAfterAFailedSetup: a setup that fails leaves the deployment ERROR; up --retry,
// through the engine, launches the setup again (the launch resource replaced: a second run on the
// host), and the deployment is READY.
func TestVPSRetryAfterAFailedSetup(t *testing.T) {
	t.Parallel()
	w := newVPSWorld(t, simprogram.FailingOnceSetupScript())
	if p, code := runSim(t, w.sim, "vps", w.upArgs("vps3")...); code != 1 || w.launches() != 1 {
		t.Fatalf("up of a failing setup: exit %d, %d launches; want 1, 1\n%s", code, w.launches(), p.stderr.String())
	}
	if rec := status(t, w.sim, "vps", "vps3"); rec["status"] != "ERROR" || !strings.Contains(fmt.Sprint(rec["lastError"]), "line 7: false") {
		t.Fatalf("journal after the failed setup: %v", rec)
	}
	p, code := runSim(t, w.sim, "vps", append(w.upArgs("vps3"), "--retry")...)
	if code != 0 || w.launches() != 2 || !p.ranEngine() {
		t.Fatalf("up --retry: exit %d, %d launches, engine run %v; want 0, 2, true\n%s", code, w.launches(), p.ranEngine(), p.stderr.String())
	}
	if rec := status(t, w.sim, "vps", "vps3"); rec["status"] != "READY" || rec["lastError"] != "" {
		t.Errorf("journal after the retry: %v", rec)
	}
}

// TestVPSOpenRouterKeyLifecycle: with a provisioning key, the deployment gets an OpenRouter key
// of its own (stage openrouter_key_created), the host's settings carry it, and destroy deletes it.
func TestVPSOpenRouterKeyLifecycle(t *testing.T) {
	t.Parallel()
	w := newVPSWorld(t, simprogram.SetupScript(0, false))
	api := openrouterfake.Start(t, "prov-key-1")
	args := append(w.upArgs("vps3"), "--secret", "openrouter_provisioning_key=prov-key-1", "--config", "openrouter_api_base="+api.URL)
	p, code := runSim(t, w.sim, "vps", args...)
	if code != 0 {
		t.Fatalf("up: exit %d\n%s", code, p.stderr.String())
	}
	live := api.Live()
	if len(live) != 1 {
		t.Fatalf("OpenRouter keys: %v", live)
	}
	var hash string
	for h, name := range live {
		hash = h
		if !strings.HasPrefix(name, "openclaw-vps3-") {
			t.Errorf("key named %q", name)
		}
	}
	var stages []string
	for _, e := range p.events {
		if e.Type == EventStage {
			stages = append(stages, e.Stage)
		}
	}
	if !slices.Contains(stages, vps.StageOpenRouterKeyCreated) {
		t.Errorf("stages %v", stages)
	}
	secrets, err := os.ReadFile(filepath.Join(w.files, "etc/openclaw/secrets.env"))
	if err != nil || !strings.Contains(string(secrets), "\nOPENROUTER_API_KEY="+openrouterfake.Key(hash)+"\n") {
		t.Errorf("secrets on the host: %q %v", secrets, err)
	}
	if token := w.outputs(t, "vps3")["gateway_token"]; token != "[secret]" {
		t.Errorf("outputs: the gateway token is %v, want it hidden", token)
	}
	if rec := status(t, w.sim, "vps", "vps3"); rec["status"] != "READY" || rec["stage"] != StageSetupComplete {
		t.Errorf("journal: %v", rec)
	}

	if p, code := runSim(t, w.sim, "vps", "--target", "vps", "destroy", "--stack", "vps3", "--yes"); code != 0 {
		t.Fatalf("destroy: exit %d\n%s", code, p.stderr.String())
	}
	if d := api.Deleted(); len(d) != 1 || d[0] != hash || len(api.Live()) != 0 {
		t.Errorf("after destroy: deleted %v, live %v", d, api.Live())
	}
	// The deployment's root SSH key was in the state: no checkpoint, history entry or backup of
	// the stack may remain in the backend, nor its configuration in the work directory.
	_ = filepath.WalkDir(filepath.Join(w.sim.StateDir, "state"), func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.Contains(p, "vps3") {
			t.Errorf("%s remains after destroy", p)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(w.sim.StateDir, "work", "vps3")); err == nil {
		t.Error("the work directory remains after destroy")
	}
	if rec := status(t, w.sim, "vps", "vps3"); rec["status"] != "DESTROYED" {
		t.Errorf("journal after destroy: %v", rec)
	}
}

// TestVPSMakesAGatewayToken: a stack given no gateway_token gets one made by the program; the
// host's gateway uses it (its secrets file, the token the setup reports), the stack keeps it as a
// secret output, and the next up keeps the same token without relaunching.
func TestVPSMakesAGatewayToken(t *testing.T) {
	t.Parallel()
	w := newVPSWorld(t, simprogram.SetupScript(0, false))
	args := w.hostArgs("vps4")
	p, code := runSim(t, w.sim, "vps", args...)
	if code != 0 {
		t.Fatalf("up: exit %d\n%s", code, p.stderr.String())
	}
	token, _ := w.outputs(t, "vps4", "--show-secrets")["gateway_token"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(token) {
		t.Fatalf("gateway_token output %q, want 64 hex digits", token)
	}
	secrets, _ := os.ReadFile(filepath.Join(w.files, "etc/openclaw/secrets.env"))
	if string(secrets) != "OPENCLAW_GATEWAY_TOKEN="+token+"\n" {
		t.Errorf("secrets file on the host: %q", secrets)
	}
	if reported, _ := os.ReadFile(filepath.Join(w.root, setup.TokenFile)); strings.TrimSpace(string(reported)) != token {
		t.Errorf("the setup reported %q", reported)
	}
	for _, e := range p.events {
		if strings.Contains(e.Message, "other than the gateway_token output") {
			t.Errorf("%s: %s", e.Severity, e.Message)
		}
	}
	if r, code := runSim(t, w.sim, "vps", args...); code != 0 {
		t.Fatalf("second up: exit %d\n%s", code, r.stderr.String())
	}
	if again, _ := w.outputs(t, "vps4", "--show-secrets")["gateway_token"].(string); again != token || w.launches() != 1 {
		t.Errorf("second up: token %q (was %q), %d launches", again, token, w.launches())
	}
}

// TestVPSOpenRouterKeyCreationInterrupted kills the driver while OpenRouter is creating the
// deployment's key: the key exists there, but its answer (the secret) never reached the state.
// Resume clears the pending creation and creates the key again, which deletes the orphan first:
// the deployment ends READY with exactly one key.
func TestVPSOpenRouterKeyCreationInterrupted(t *testing.T) {
	t.Parallel()
	w := newVPSWorld(t, simprogram.SetupScript(0, false))
	api := openrouterfake.Start(t, "prov-key-1")
	api.Hold()
	args := append(w.upArgs("vps5"), "--secret", "openrouter_provisioning_key=prov-key-1", "--config", "openrouter_api_base="+api.URL)
	p := startSim(t, w.sim, "vps", args...)
	var orphan string
	select {
	case orphan = <-api.Holding:
	case <-p.done:
		t.Fatalf("up ended before the key's creation\n%s", p.stderr.String())
	case <-time.After(3 * time.Minute):
		t.Fatal("the key's creation never started")
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	p.wait(time.Minute)
	api.Release()

	r, code := runSim(t, w.sim, "vps", "--target", "vps", "resume", "--stack", "vps5")
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, r.stderr.String())
	}
	if rec := status(t, w.sim, "vps", "vps5"); rec["status"] != "READY" || rec["stage"] != StageSetupComplete {
		t.Errorf("after resume: %v", rec)
	}
	if !slices.ContainsFunc(r.events, func(e Event) bool {
		return strings.Contains(e.Message, "pending create of") && strings.Contains(e.Message, "openrouter-key: nothing to adopt")
	}) {
		t.Errorf("the resume did not settle the key's pending creation")
	}
	live := api.Live()
	if _, kept := live[orphan]; len(live) != 1 || kept || !slices.Contains(api.Deleted(), orphan) {
		t.Errorf("live keys %v, deleted %v; the orphan was %s", live, api.Deleted(), orphan)
	}
	secrets, _ := os.ReadFile(filepath.Join(w.files, "etc/openclaw/secrets.env"))
	for hash := range live {
		if !strings.Contains(string(secrets), "OPENROUTER_API_KEY="+openrouterfake.Key(hash)+"\n") {
			t.Errorf("the host does not have the live key %s: %q", hash, secrets)
		}
	}
}

// argvWatch records the command line of processes and of every process descending from them,
// as /proc shows them to any user of the machine, until it is stopped.
type argvWatch struct {
	roots []int
	mu    sync.Mutex
	seen  map[int]string
	stop  chan struct{}
	done  chan struct{}
}

func watchArgv(roots ...int) *argvWatch {
	w := &argvWatch{roots: roots, seen: map[int]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	under := func(pid int) bool {
		return slices.ContainsFunc(roots, func(root int) bool { return pid == root || descends(pid, root) })
	}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			entries, _ := os.ReadDir("/proc")
			for _, e := range entries {
				pid, err := strconv.Atoi(e.Name())
				if err != nil || !under(pid) {
					continue
				}
				b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				if err != nil || len(b) == 0 {
					continue
				}
				w.mu.Lock()
				w.seen[pid] = strings.ReplaceAll(string(b), "\x00", " ")
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// end stops the watch and returns every command line seen.
func (w *argvWatch) end() []string {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, c := range w.seen {
		out = append(out, c)
	}
	return out
}

// holdsSecret reports whether a command line holds secret: as it is, or base64-encoded (the
// form a file's content takes in a shell command), in any of the three alignments.
func holdsSecret(line, secret string) bool {
	if strings.Contains(line, secret) {
		return true
	}
	for _, token := range regexp.MustCompile(`[A-Za-z0-9+/]{16,}={0,2}`).FindAllString(line, -1) {
		for skip := range 4 { // a token cut anywhere: decode from each offset
			if len(token) <= skip {
				break
			}
			t := token[skip:]
			t = t[:len(t)/4*4]
			if b, err := base64.StdEncoding.DecodeString(t); err == nil && strings.Contains(string(b), secret) {
				return true
			}
		}
	}
	return false
}

// TestNoSecretInAnyProcessArguments runs a vps up and destroy with every kind of secret (the
// operator's SSH key, a gateway token, a provider key, an OpenRouter provisioning key), given
// through --secret-file and standard input, and reads the command line of the driver and of
// every process it starts (the Pulumi CLIs that set the configuration, the plugins, curl) as
// they run, and on the host, of every process its sessions start (the launch, the setup): none
// holds a secret, as it is or base64-encoded. The watch must have seen the CLI, curl and the
// launch on the host, or it proves nothing.
func TestNoSecretInAnyProcessArguments(t *testing.T) {
	t.Parallel()
	w := newVPSWorld(t, simprogram.SetupScript(0, false))
	secrets := map[string]string{
		"gateway_token":               "gw-argv-5e1f0c",
		"openrouter_provisioning_key": "prov-argv-77d2a9",
		"anthropic_api_key":           "sk-ant-argv-c4b8e1",
	}
	api := openrouterfake.Start(t, secrets["openrouter_provisioning_key"])
	dir := t.TempDir()
	args := []string{
		"--target", "vps", "up", "--stack", "argv",
		"--config", "vps_host=127.0.0.1", "--config", "vps_port=" + strconv.Itoa(w.server.Port),
		"--config", "vps_user=" + w.server.User, "--config", "vps_host_key=" + w.server.HostKey,
		"--config", "vps_setup_root=" + w.root, "--config", "openrouter_api_base=" + api.URL,
		"--secret", "anthropic_api_key=-",
	}
	files := map[string]string{"vps_ssh_private_key": string(w.server.ClientKey)}
	for k, v := range secrets {
		if k != "anthropic_api_key" {
			files[k] = v
		}
	}
	for k, v := range files {
		path := filepath.Join(dir, k)
		if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--secret-file", k+"="+path)
	}
	// A curl lives for milliseconds on loopback and the /proc watch can miss it between two
	// scans: a curl in front of the real one on PATH records its arguments as they are given.
	realCurl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal(err)
	}
	shims, curlLog := t.TempDir(), filepath.Join(t.TempDir(), "curl.log")
	if err := os.WriteFile(filepath.Join(shims, "curl"), fmt.Appendf(nil, "#!/bin/sh\nprintf 'curl %%s\\n' \"$*\" >> %q\nexec %q \"$@\"\n",
		curlLog, realCurl), 0o755); err != nil {
		t.Fatal(err)
	}
	w.sim.Env["PATH"] = shims + string(os.PathListSeparator) + w.sim.Env["PATH"]
	curls := func() []string {
		b, _ := os.ReadFile(curlLog)
		_ = os.Remove(curlLog)
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	keyLine := strings.Split(strings.TrimSpace(string(w.server.ClientKey)), "\n")[1] // a line of the key's body
	leaks := func(what string, lines []string) {
		t.Helper()
		lines = append(lines, curls()...)
		clis, curls := 0, 0
		for _, l := range lines {
			if strings.Contains(l, " config set") {
				clis++
			}
			if strings.HasPrefix(l, "curl ") {
				curls++
			}
			for k, v := range secrets {
				if holdsSecret(l, v) {
					t.Errorf("%s: the secret %s is in the arguments of %.300q", what, k, l)
				}
			}
			if strings.Contains(l, keyLine) {
				t.Errorf("%s: the SSH private key is in the arguments of %.120q", what, l)
			}
		}
		t.Logf("%s: %d command lines seen, %d of them setting the configuration, %d of curl", what, len(lines), clis, curls)
		if curls == 0 || what == "up" && clis == 0 {
			t.Errorf("%s: the watch saw %d configuration CLIs and %d curls: it would not have seen a leak", what, clis, curls)
		}
	}

	p := startSimWithInput(t, w.sim, "vps", strings.NewReader(secrets["anthropic_api_key"]+"\n"), args...)
	watch, onHost := watchArgv(p.cmd.Process.Pid), watchArgv(w.server.PID())
	code := p.wait(5 * time.Minute)
	hostLines := onHost.end()
	leaks("up", append(watch.end(), hostLines...))
	if !slices.ContainsFunc(hostLines, func(l string) bool { return strings.Contains(l, "bash") }) {
		t.Errorf("the watch saw no shell on the host (%q): it would not have seen the launch", hostLines)
	}
	if code != 0 {
		t.Fatalf("up: exit %d\n%s", code, p.stderr.String())
	}
	host, err := os.ReadFile(filepath.Join(w.files, "etc/openclaw/secrets.env"))
	if err != nil || !strings.Contains("\n"+string(host), "\nANTHROPIC_API_KEY="+secrets["anthropic_api_key"]+"\n") ||
		!strings.Contains("\n"+string(host), "\nOPENCLAW_GATEWAY_TOKEN="+secrets["gateway_token"]+"\n") {
		t.Errorf("the secrets did not reach the host whole: %q %v", host, err)
	}

	d := startSim(t, w.sim, "vps", "--target", "vps", "destroy", "--stack", "argv", "--yes")
	watch = watchArgv(d.cmd.Process.Pid)
	code = d.wait(5 * time.Minute)
	leaks("destroy", watch.end())
	if code != 0 || len(api.Live()) != 0 {
		t.Errorf("destroy: exit %d, OpenRouter keys left %v\n%s", code, api.Live(), d.stderr.String())
	}
}

// TestVPSTrustsTheFirstHostKeyOnly: with vps_allow_unknown_host_key and no key pinned, the first
// up trusts the key the host presents and pins it (the sshHostKey output, vps_host_key); a later
// up reaching a host with another key, which would let the operator's credential log in, is
// refused before anything runs there.
func TestVPSTrustsTheFirstHostKeyOnly(t *testing.T) {
	t.Parallel()
	w := newVPSWorld(t, simprogram.SetupScript(0, false))
	args := func(port int) []string {
		return []string{
			"--target", "vps", "up", "--stack", "tofu",
			"--config", "vps_host=127.0.0.1", "--config", "vps_port=" + strconv.Itoa(port),
			"--config", "vps_user=" + w.server.User, "--config", "vps_allow_unknown_host_key=true",
			"--config", "vps_setup_root=" + w.root,
			"--secret", "vps_ssh_private_key=" + string(w.server.ClientKey), "--secret", "gateway_token=gw-tofu",
		}
	}
	p, code := runSim(t, w.sim, "vps", args(w.server.Port)...)
	if code != 0 {
		t.Fatalf("first up: exit %d\n%s", code, p.stderr.String())
	}
	if got := w.outputs(t, "tofu")["ssh_host_key"]; got != w.server.HostKey {
		t.Fatalf("the host key pinned is %v, want the host's %s", got, w.server.HostKey)
	}

	// Another host, with a key of its own, that would take the operator's key.
	other := sshd.Start(t)
	signer, err := ssh.ParsePrivateKey(w.server.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other.Home, ".ssh", "authorized_keys"), ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	p, code = runSim(t, w.sim, "vps", args(other.Port)...)
	if code != ExitFailed || !strings.Contains(p.stderr.String(), "is pinned") {
		t.Errorf("up against a host with another key: exit %d, want %d refusing its key\n%s", code, ExitFailed, p.stderr.String())
	}
	if n := other.Stats().Connections; n != 0 {
		t.Errorf("the other host was logged in to %d times", n)
	}
}

// TestTargetIsKeptByTheStack: a vps stack carries its target in the backend (a stack tag), so a
// driver with another journal, another state directory and the ec2-spot target refuses to run
// its program on it (exit 2), and nothing of the stack changes.
func TestTargetIsKeptByTheStack(t *testing.T) {
	t.Parallel()
	w := newVPSWorld(t, simprogram.SetupScript(0, false))
	if p, code := runSim(t, w.sim, "vps", w.upArgs("kept")...); code != 0 {
		t.Fatalf("vps up: exit %d\n%s", code, p.stderr.String())
	}
	before := w.sim.Load(t)
	foreignDir := t.TempDir()
	foreign := []string{"--state-dir", foreignDir, "--backend", "file://" + filepath.Join(w.sim.StateDir, "state")}
	for _, args := range [][]string{
		{"up", "--stack", "kept", "--config", "aws:region=me-central-1", "--config", "availability_zone=me-central-1a"},
		{"preview", "--stack", "kept", "--config", "aws:region=me-central-1", "--config", "availability_zone=me-central-1a"},
		{"destroy", "--stack", "kept", "--yes"},
	} {
		p, code := runSim(t, w.sim, "real", append(slices.Clone(foreign), args...)...)
		if code != ExitUsage || !strings.Contains(p.stderr.String(), "stack kept is a vps deployment") || p.ranEngine() {
			t.Errorf("ec2-spot %s of a vps stack: exit %d, ran the engine %v; want %d naming the target\n%s",
				args[0], code, p.ranEngine(), ExitUsage, p.stderr.String())
		}
	}
	if after := w.sim.Load(t); len(after.Resources) != len(before.Resources) || len(after.Ops) != len(before.Ops) {
		t.Errorf("the vps stack's resources changed: %d then %d, %d operations then %d",
			len(before.Resources), len(after.Resources), len(before.Ops), len(after.Ops))
	}
	if rec := status(t, w.sim, "vps", "kept"); rec["status"] != "READY" {
		t.Errorf("journal: %v", rec)
	}
	if _, err := os.Stat(filepath.Join(foreignDir, "journal.db")); err == nil {
		t.Error("the refusals made a journal in the other state directory")
	}
}
