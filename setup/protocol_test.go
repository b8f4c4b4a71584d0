package setup

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// toyScript behaves like the setup script as far as the protocol sees it: it counts its runs,
// runs until the file gate exists (not at all when gate is empty), and leaves a token and the
// complete marker (or an error marker). A test opens the gate (open) when it has seen what it
// must see while the script runs, however slow the machine.
func toyScript(gate string, fail bool) []byte {
	body := "#!/usr/bin/env bash\nset -eu\n" +
		`echo run >> "$OPENCLAW_SETUP_ROOT/runs"` + "\n"
	if gate != "" {
		body += fmt.Sprintf("until [ -e %q ]; do sleep 0.05; done\n", gate)
	}
	if fail {
		body += `printf 'FAILED: line 5: docker compose pull\n' > "$OPENCLAW_SETUP_ROOT/.openclaw-setup-error"` + "\nexit 1\n"
	} else {
		body += `printf 'tok-123\n' > "$OPENCLAW_SETUP_ROOT/.openclaw-setup-token"` + "\n" +
			`cp "$OPENCLAW_SETUP_ROOT/.openclaw-setup-started" "$OPENCLAW_SETUP_ROOT/.openclaw-setup-complete"` + "\n"
	}
	return []byte(body)
}

// newGate returns the path of a gate for toyScript, not open yet.
func newGate(t *testing.T) string { return filepath.Join(t.TempDir(), "gate") }

// open opens a gate: the scripts waiting on it go on.
func open(t *testing.T, gate string) {
	t.Helper()
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// shell runs a protocol command with bash, as one SSH exec would, and returns its output and
// exit code.
func shell(t *testing.T, command string) (string, int) {
	t.Helper()
	cmd := exec.Command("bash", "-c", command)
	out, err := cmd.Output()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return strings.TrimSpace(string(out)), exit.ExitCode()
	case err != nil:
		t.Fatalf("bash: %v", err)
	}
	return strings.TrimSpace(string(out)), 0
}

// stopScripts kills setup scripts started under root when the test ends.
func stopScripts(t *testing.T, root string) {
	t.Cleanup(func() {
		if pid, err := exec.Command("pgrep", "-f", filepath.Join(root, ScriptFile)).Output(); err == nil {
			for _, p := range strings.Fields(string(pid)) {
				_ = exec.Command("kill", "-KILL", "--", "-"+p).Run()
			}
		}
	})
}

func runs(t *testing.T, root string) int {
	b, _ := os.ReadFile(filepath.Join(root, "runs"))
	return strings.Count(string(b), "run")
}

// WaitExited waits until no setup script holds the run lock under root. A script reports
// COMPLETE with its marker a moment before it exits, and a launch in that moment is honestly
// "already-running"; a test that means "the script has finished" waits for this as well.
func WaitExited(t testing.TB, root string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for exec.Command("flock", "-n", filepath.Join(root, LockFile), "true").Run() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("a setup script under %s still holds its lock after 3 minutes", root)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scriptPID returns the pid of the setup script running under root. The launch's background
// child holds the run lock (the poll says RUNNING) a moment before it becomes the script.
func scriptPID(t *testing.T, root string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		pid, err := exec.Command("pgrep", "-f", filepath.Join(root, ScriptFile)).Output()
		if err == nil {
			return strings.TrimSpace(string(pid))
		}
		if time.Now().After(deadline) {
			t.Fatalf("no setup script runs under %s after a minute: pgrep: %v", root, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitFor(t *testing.T, root string, want State) Status {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, _ := shell(t, PollCommand(root))
		st, err := ParseStatus(out)
		if err != nil {
			t.Fatal(err)
		}
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %s, waited for %s", st.State, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestLaunchCommandIsOneDetachedStart(t *testing.T) {
	t.Parallel()
	script := []byte("#!/bin/bash\necho hi\n")
	cmd := Launch{Root: "/srv/x", Script: script, EnvFile: "/etc/openclaw/openclaw.env"}.Command()
	for _, want := range []string{
		"root='/srv/x'",
		"hash=" + Hash(script),
		"printf '%s' '" + base64.StdEncoding.EncodeToString(script) + "' | base64 -d",
		`exec 9>>"$root/.openclaw-setup.lock"`,
		`OPENCLAW_SETUP_ROOT="$root" OPENCLAW_SETUP_LOCKED=1 OPENCLAW_ENV_FILE='/etc/openclaw/openclaw.env' setsid nohup bash "$root/openclaw-setup.sh" </dev/null >"$root/openclaw-setup.log" 2>&1 8>&- &`,
	} {
		if !strings.Contains(cmd, want) {
			t.Errorf("launch command lacks %q:\n%s", want, cmd)
		}
	}
	fromFile := Launch{SourcePath: "/usr/local/libexec/openclaw/openclaw-setup.sh"}.Command()
	if !strings.Contains(fromFile, `cp '/usr/local/libexec/openclaw/openclaw-setup.sh' "$tmp"`) ||
		!strings.Contains(fromFile, "root='/root'") || strings.Contains(fromFile, "base64") {
		t.Errorf("launch from a file:\n%s", fromFile)
	}
	if !strings.Contains(fromFile, "hash="+Hash(Script)) {
		t.Errorf("launch from a file does not carry the setup script's hash")
	}
	if !regexp.MustCompile(`^root='/root'\n`).MatchString(PollCommand("")) {
		t.Errorf("poll command:\n%s", PollCommand(""))
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	tests := map[string]Status{
		"NOT_STARTED":                   {State: NotStarted},
		"RUNNING\n":                     {State: Running},
		"COMPLETE tok-123":              {State: Complete, Token: "tok-123"},
		"COMPLETE ":                     {State: Complete},
		"FAILED line 12: docker pull x": {State: Failed, Reason: "line 12: docker pull x"},
	}
	for line, want := range tests {
		got, err := ParseStatus(line)
		if err != nil || got != want {
			t.Errorf("ParseStatus(%q) = %+v, %v; want %+v", line, got, err, want)
		}
	}
	for _, bad := range []string{"", "DONE", "complete tok"} {
		if _, err := ParseStatus(bad); err == nil {
			t.Errorf("ParseStatus(%q) accepted it", bad)
		}
	}
}

// TestLaunchReturnsAtOnceAndTheScriptFinishes: the launch returns while the script runs on its
// own (it cannot end before the test opens its gate), and the poll follows it to COMPLETE.
func TestLaunchReturnsAtOnceAndTheScriptFinishes(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	stopScripts(t, root)
	gate := newGate(t)
	start := time.Now()
	out, code := shell(t, Launch{Root: root, Script: toyScript(gate, false)}.Command())
	took := time.Since(start)
	if code != 0 || out != "LAUNCH started" {
		t.Fatalf("launch: %q exit %d", out, code)
	}
	t.Logf("launch returned in %dms while the script runs", took.Milliseconds())
	if out, _ := shell(t, PollCommand(root)); out != "RUNNING" {
		t.Errorf("poll after launch, the script's gate closed = %q", out)
	}
	open(t, gate)
	st := waitFor(t, root, Complete)
	if st.Token != "tok-123" || runs(t, root) != 1 {
		t.Errorf("status %+v after %d runs", st, runs(t, root))
	}
	info, err := os.Stat(filepath.Join(root, ScriptFile))
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("script file: %v %v", info, err)
	}
}

func TestLaunchIsIdempotent(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	stopScripts(t, root)
	gate := newGate(t)
	script := toyScript(gate, false)
	launch := Launch{Root: root, Script: script}.Command()
	if out, _ := shell(t, launch); out != "LAUNCH started" {
		t.Fatalf("first launch: %q", out)
	}
	if out, code := shell(t, launch); out != "LAUNCH already-running" || code != 0 {
		t.Errorf("launch while running: %q exit %d", out, code)
	}
	other, code := shell(t, Launch{Root: root, Script: toyScript("", false)}.Command())
	if code != ExitBusy || !strings.HasPrefix(other, "LAUNCH busy") {
		t.Errorf("launching another script while one runs: %q exit %d", other, code)
	}
	open(t, gate)
	waitFor(t, root, Complete)
	WaitExited(t, root)
	if out, code := shell(t, launch); out != "LAUNCH already-complete" || code != 0 {
		t.Errorf("launch when complete: %q exit %d", out, code)
	}
	if n := runs(t, root); n != 1 {
		t.Fatalf("the script ran %d times, want 1", n)
	}
	// A changed script is launched again.
	changed := Launch{Root: root, Script: toyScript("", false)}.Command()
	if out, _ := shell(t, changed); out != "LAUNCH started" {
		t.Errorf("changed script: %q", out)
	}
	waitFor(t, root, Complete)
	if n := runs(t, root); n != 2 {
		t.Errorf("runs = %d after a changed script, want 2", n)
	}
}

func TestConcurrentLaunchesStartOneScript(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	stopScripts(t, root)
	gate := newGate(t)
	launch := Launch{Root: root, Script: toyScript(gate, false)}.Command()
	var wg sync.WaitGroup
	outs := make([]string, 10)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], _ = shell(t, launch)
		}()
	}
	wg.Wait()
	open(t, gate)
	started := 0
	for _, o := range outs {
		switch o {
		case "LAUNCH started":
			started++
		case "LAUNCH already-running", "LAUNCH already-complete":
		default:
			t.Errorf("unexpected launch output %q", o)
		}
	}
	waitFor(t, root, Complete)
	if started != 1 || runs(t, root) != 1 {
		t.Errorf("%d launches said started and the script ran %d times; want 1 and 1", started, runs(t, root))
	}
}

func TestPollReportsFailuresAndDeadScripts(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	stopScripts(t, root)
	if out, _ := shell(t, PollCommand(root)); out != "NOT_STARTED" {
		t.Errorf("fresh host: %q", out)
	}
	shell(t, Launch{Root: root, Script: toyScript("", true)}.Command())
	st := waitFor(t, root, Failed)
	if st.Reason != "line 5: docker compose pull" {
		t.Errorf("reason = %q", st.Reason)
	}

	// A script that was killed (or whose host restarted) leaves no result and no lock holder.
	// setsid made it a session and group leader: kill the group, children included, as a
	// restart would.
	dead := t.TempDir()
	stopScripts(t, dead)
	shell(t, Launch{Root: dead, Script: toyScript(newGate(t), false)}.Command()) // never opened
	waitFor(t, dead, Running)
	if _, err := shell(t, "kill -KILL -- -"+scriptPID(t, dead)); err != 0 {
		t.Fatalf("kill exited %d", err)
	}
	st = waitFor(t, dead, Failed)
	if !strings.Contains(st.Reason, "stopped without a result") {
		t.Errorf("dead script reason = %q", st.Reason)
	}
}

func TestLaunchRefusesACorruptScript(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	src := filepath.Join(t.TempDir(), "setup.sh")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho tampered\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := shell(t, Launch{Root: root, SourcePath: src}.Command())
	if code != 1 || !strings.HasPrefix(out, "LAUNCH corrupt") {
		t.Errorf("tampered source: %q exit %d", out, code)
	}
	for _, f := range []string{ScriptFile, StartedFile} {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil {
			t.Errorf("%s was written", f)
		}
	}
}

// TestLockSurvivesTheLauncher checks the hand-over: once the launcher has exited, the running
// script still holds the lock.
func TestLockSurvivesTheLauncher(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	stopScripts(t, root)
	gate := newGate(t)
	shell(t, Launch{Root: root, Script: toyScript(gate, false)}.Command())
	f, err := os.OpenFile(filepath.Join(root, LockFile), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		t.Errorf("the lock was free while the script ran")
	}
	open(t, gate)
	waitFor(t, root, Complete)
	WaitExited(t, root) // fails unless the script lets go of the lock as it ends
}

// TestBoundedEndsTheCommandAndItsChildren: a bounded command that would never end (a reader of
// a FIFO nobody writes, beside a child in the background) is ended by the host with every
// process it started, its output up to then kept; one that ends in time is left alone.
func TestBoundedEndsTheCommandAndItsChildren(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "never-written")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := Bounded("true", 1500*time.Millisecond); got != "timeout -s KILL 2 bash -c 'true'" {
		t.Errorf("Bounded = %q, want the seconds rounded up", got)
	}
	// exec.ExitError's code is -1 for a process a signal ended.
	out, code := shell(t, Bounded("echo before; sleep 600 & cat "+fifo, time.Second))
	if code != -1 || out != "before" {
		t.Errorf("bounded hanging command: exit %d, output %q; want it killed and what it printed", code, out)
	}
	// Nothing it started is left: the background sleep and the reader are gone.
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if left := processesNaming(dir); len(left) == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if left := processesNaming(dir); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
	if out, code := shell(t, Bounded(`printf '%s\n' "it's done"`, time.Minute)); code != 0 || out != "it's done" {
		t.Errorf("a command that ends in time: exit %d, %q", code, out)
	}
}

// processesNaming returns the command lines of the live processes that name s in theirs.
func processesNaming(s string) []string {
	var out []string
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range cmdlines {
		b, err := os.ReadFile(f)
		stat, _ := os.ReadFile(filepath.Join(filepath.Dir(f), "stat"))
		if err == nil && strings.Contains(string(b), s) && !strings.Contains(string(stat), ") Z ") {
			out = append(out, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}
