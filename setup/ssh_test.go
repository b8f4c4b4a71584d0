package setup_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawdeploy/clawdeploy/internal/loopback"
	"github.com/clawdeploy/clawdeploy/internal/simprogram"
	"github.com/clawdeploy/clawdeploy/internal/sshd"
	"github.com/clawdeploy/clawdeploy/setup"
	"github.com/clawdeploy/clawdeploy/sshexec"
)

type sshHost struct {
	t      *testing.T
	server *sshd.Server
	root   string
	dialer sshexec.Dialer
}

func newSSHHost(t *testing.T) *sshHost {
	t.Helper()
	return &sshHost{t: t, server: sshd.Start(t), root: t.TempDir(), dialer: sshexec.Dialer{Timeout: 5 * time.Second, Attempts: 3, Backoff: 100 * time.Millisecond}}
}

func (h *sshHost) launchCommand(script []byte) string {
	return setup.Launch{Root: h.root, Script: script}.Command()
}

func (h *sshHost) launch(script []byte) (string, time.Duration) {
	h.t.Helper()
	start := time.Now()
	out, err := h.dialer.Run(context.Background(), h.server.Target(), h.launchCommand(script))
	if err != nil {
		h.t.Fatalf("launch: %v", err)
	}
	return strings.TrimSpace(out), time.Since(start)
}

func (h *sshHost) poll() setup.Status {
	h.t.Helper()
	out, err := h.dialer.Run(context.Background(), h.server.Target(), setup.PollCommand(h.root))
	if err != nil {
		h.t.Fatalf("poll: %v", err)
	}
	st, err := setup.ParseStatus(out)
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

// waitFinal polls every 200 ms until COMPLETE or FAILED, returning the status and the polls made.
func (h *sshHost) waitFinal() (setup.Status, int) {
	h.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for polls := 1; ; polls++ {
		st := h.poll()
		if st.State == setup.Complete || st.State == setup.Failed {
			return st, polls
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("still %s after 3 minutes", st.State)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (h *sshHost) launches() int {
	data, _ := os.ReadFile(filepath.Join(h.root, "launches"))
	return strings.Count(string(data), "run\n")
}

func TestLaunchOverSSHReturnsAtOnceAndPollsAreOneExec(t *testing.T) {
	t.Parallel()
	h := newSSHHost(t)
	// The script cannot end before the gate opens: a launch that returns did not wait for it.
	gate := filepath.Join(t.TempDir(), "gate")
	out, took := h.launch(simprogram.GatedSetupScript(gate))
	t.Logf("launch of a script that runs until the test lets it end returned in %s", took.Round(time.Millisecond))
	if out != "LAUNCH started" {
		t.Fatalf("launch: %q in %s, want LAUNCH started", out, took)
	}
	if s := h.server.Stats(); s.Connections != 1 || s.Execs != 1 {
		t.Errorf("launch used %d connections and %d execs, want 1 and 1", s.Connections, s.Execs)
	}
	if st := h.poll(); st.State != setup.Running {
		t.Errorf("after launch, the script's gate closed: %+v", st)
	}
	openGate(t, gate)
	st, polls := h.waitFinal()
	if st.State != setup.Complete || !strings.HasPrefix(st.Token, "token-") {
		t.Fatalf("final status %+v", st)
	}
	if s := h.server.Stats(); s.Connections != 2+polls || s.Execs != 2+polls {
		t.Errorf("%d polls made %d connections and %d execs, want one each", polls+1, s.Connections-1, s.Execs-1)
	}
	if n := h.launches(); n != 1 {
		t.Errorf("the script ran %d times", n)
	}
}

// launchAndDrop runs the launch command and, as soon as it says it started the script, drops the
// connection: from the client (the socket closed under the session) or from the server (its
// session processes killed).
func launchAndDrop(t *testing.T, h *sshHost, script []byte, serverSide bool) {
	t.Helper()
	client, err := h.dialer.Dial(context.Background(), h.server.Target())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Close() }()
	session, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := session.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := session.Start(h.launchCommand(script)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "LAUNCH started\n" {
		t.Fatalf("launch said %q, %v", line, err)
	}
	if serverSide {
		if n := h.server.KillSessions(); n == 0 {
			t.Fatal("no server-side session to kill")
		}
	} else {
		_ = client.Close() // the socket, under the session
	}
	_ = session.Wait() // it ends with the connection, one way or the other
}

func TestLaunchSurvivesADroppedConnection(t *testing.T) {
	t.Parallel()
	for _, side := range []string{"client", "server"} {
		t.Run(side, func(t *testing.T) {
			t.Parallel()
			h := newSSHHost(t)
			gate := filepath.Join(t.TempDir(), "gate")
			launchAndDrop(t, h, simprogram.GatedSetupScript(gate), side == "server")
			openGate(t, gate) // the connection is gone while the script still runs
			st, _ := h.waitFinal()
			if st.State != setup.Complete || st.Token == "" {
				t.Fatalf("after the %s dropped the connection: %+v", side, st)
			}
			if n := h.launches(); n != 1 {
				t.Errorf("the script ran %d times", n)
			}
		})
	}
}

func TestRelaunchStartsNothingSecond(t *testing.T) {
	t.Parallel()
	h := newSSHHost(t)
	gate := filepath.Join(t.TempDir(), "gate")
	script := simprogram.GatedSetupScript(gate)
	h.launch(script)
	if out, _ := h.launch(script); out != "LAUNCH already-running" {
		t.Errorf("launch on a running host: %q", out)
	}
	openGate(t, gate)
	if st, _ := h.waitFinal(); st.State != setup.Complete {
		t.Fatalf("status %+v", st)
	}
	setup.WaitExited(t, h.root)
	if out, _ := h.launch(script); out != "LAUNCH already-complete" {
		t.Errorf("launch on a completed host: %q", out)
	}
	if n := h.launches(); n != 1 {
		t.Errorf("the script ran %d times", n)
	}
	// A changed script is a new setup: it runs.
	if out, _ := h.launch(simprogram.SetupScript(0, false)); out != "LAUNCH started" {
		t.Errorf("launch of a changed script: %q", out)
	}
	if st, _ := h.waitFinal(); st.State != setup.Complete || h.launches() != 2 {
		t.Errorf("changed script: %+v after %d runs", st, h.launches())
	}
}

func TestFailingScriptReportsLineAndCommand(t *testing.T) {
	t.Parallel()
	h := newSSHHost(t)
	h.launch(simprogram.SetupScript(0, true))
	st, _ := h.waitFinal()
	if st.State != setup.Failed || st.Reason != "line 7: false" {
		t.Fatalf("status %+v, want FAILED line 7: false", st)
	}
}

func TestHostKeyIsPinned(t *testing.T) {
	t.Parallel()
	server := sshd.Start(t)
	dialer := sshexec.Dialer{Timeout: 5 * time.Second, Attempts: 3, Backoff: 100 * time.Millisecond}
	_, otherKey := sshd.NewKey(t)

	wrong := server.Target()
	wrong.HostKey = otherKey
	_, err := dialer.Run(context.Background(), wrong, "true")
	var hk *sshexec.HostKeyError
	if !errors.As(err, &hk) || hk.Want == "" || !strings.Contains(err.Error(), "attempt 1 of 3") {
		t.Errorf("wrong host key: %v, want a HostKeyError on the first attempt, not retried", err)
	}

	unknown := server.Target()
	unknown.HostKey = ""
	if _, err := dialer.Run(context.Background(), unknown, "true"); !errors.As(err, &hk) || hk.Want != "" {
		t.Errorf("unpinned host key: %v, want a refusal", err)
	}
	if s := server.Stats(); s.Connections != 0 {
		t.Errorf("%d connections authenticated to a refused host", s.Connections)
	}

	unknown.AllowUnknownHostKey = true
	if out, err := dialer.Run(context.Background(), unknown, "echo ok"); err != nil || out != "ok\n" {
		t.Errorf("allowed unknown host key: %q %v", out, err)
	}
}

func TestClosedPortFailsWithinTheBudget(t *testing.T) {
	t.Parallel()
	server := sshd.Start(t)
	target := server.Target()
	target.Port = freePort(t)

	// Bounded by attempts.
	start := time.Now()
	_, err := sshexec.Dialer{Timeout: time.Second, Attempts: 3, Backoff: 100 * time.Millisecond}.Run(context.Background(), target, "true")
	if err == nil || !strings.Contains(err.Error(), "attempt 3 of 3") {
		t.Errorf("closed port: %v", err)
	}
	t.Logf("3 attempts at a closed port failed in %s", time.Since(start).Round(time.Millisecond))

	// Bounded by the caller's budget, however many attempts are allowed.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start = time.Now()
	_, err = sshexec.Dialer{Timeout: time.Second, Attempts: 1000, Backoff: 100 * time.Millisecond}.Run(ctx, target, "true")
	took := time.Since(start)
	// 1000 attempts would take minutes; the slack over the budget is for a busy machine.
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || took > 10*time.Second {
		t.Errorf("closed port with a 2s budget: %v after %s", err, took)
	}
	t.Logf("a closed port with a 2 s budget failed in %s", took.Round(time.Millisecond))
}

// freePort returns a loopback port nothing listens on, one the kernel does not hand out.
func freePort(t *testing.T) int {
	t.Helper()
	port, err := loopback.Port()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// TestLaunchWritesTheSettingsAndFiles: a launch carrying settings and files writes them, with
// their modes (settings 0600), before the script starts; changed settings or a changed file
// relaunch a completed script.
func TestLaunchWritesTheSettingsAndFiles(t *testing.T) {
	t.Parallel()
	h := newSSHHost(t)
	script := simprogram.SetupScript(0, false)
	envFile := filepath.Join(h.root, "settings.env")
	unit := filepath.Join(h.root, "etc/systemd/system/openclaw.service")
	helper := filepath.Join(h.root, "usr/local/libexec/openclaw/helper.sh")
	launch := func(env, unitText string) string {
		files := []setup.File{
			{Path: unit, Mode: "0644", Content: unitText},
			{Path: helper, Mode: "0755", Content: "#!/bin/sh\necho 'it''s here'\n"},
		}
		out, err := h.dialer.Run(context.Background(), h.server.Target(),
			setup.Launch{Root: h.root, Script: script, EnvFile: envFile, Env: []byte(env), Files: files}.Command())
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	fileIs := func(path, content string, mode os.FileMode) {
		t.Helper()
		data, err := os.ReadFile(path)
		info, _ := os.Stat(path)
		if err != nil || string(data) != content || info.Mode().Perm() != mode {
			t.Errorf("%s: %q (%v), mode %v; want %q, mode %v", path, data, err, info.Mode().Perm(), content, mode)
		}
	}
	if out := launch("A='1'\n", "[Unit]\n"); out != "LAUNCH started" {
		t.Fatalf("launch: %q", out)
	}
	h.waitFinal()
	setup.WaitExited(t, h.root)
	fileIs(envFile, "A='1'\n", 0o600)
	fileIs(unit, "[Unit]\n", 0o644)
	fileIs(helper, "#!/bin/sh\necho 'it''s here'\n", 0o755)
	if info, err := os.Stat(filepath.Dir(helper)); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("a directory the launch made: %v %v", info.Mode().Perm(), err)
	}
	if out := launch("A='1'\n", "[Unit]\n"); out != "LAUNCH already-complete" {
		t.Errorf("same settings and files: %q", out)
	}
	if out := launch("A='2'\n", "[Unit]\n"); out != "LAUNCH started" {
		t.Errorf("changed settings: %q", out)
	}
	h.waitFinal()
	setup.WaitExited(t, h.root)
	fileIs(envFile, "A='2'\n", 0o600)
	if out := launch("A='2'\n", "[Unit]\nDescription=x\n"); out != "LAUNCH started" {
		t.Errorf("changed file: %q", out)
	}
	h.waitFinal()
	fileIs(unit, "[Unit]\nDescription=x\n", 0o644)
	if n := h.launches(); n != 3 {
		t.Errorf("%d runs, want 3", n)
	}
}

// openGate lets a GatedSetupScript waiting on gate go on.
func openGate(t *testing.T, gate string) {
	t.Helper()
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}
