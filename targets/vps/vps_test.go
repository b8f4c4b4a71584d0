package vps_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/clawdeploy/clawdeploy/internal/sshd"
	"github.com/clawdeploy/clawdeploy/setup"
	"github.com/clawdeploy/clawdeploy/sshexec"
	"github.com/clawdeploy/clawdeploy/targets"
	"github.com/clawdeploy/clawdeploy/targets/vps"
)

func vpsOutputs(s *sshd.Server, root string) auto.OutputMap {
	return auto.OutputMap{
		"ssh_host": {Value: "127.0.0.1"}, "ssh_port": {Value: float64(s.Port)}, "ssh_user": {Value: s.User},
		"ssh_host_key": {Value: s.HostKey}, "ssh_private_key": {Value: string(s.ClientKey), Secret: true},
		"setup_root": {Value: root},
	}
}

// TestSSHWaiterBounds: a wrong host key stops the wait at the first poll; a host that stops
// answering fails within the budget, naming the last status read and the last dial error; a poll
// that never answers costs its own bound, not the whole budget; a host that prints without end
// is cut off.
func TestSSHWaiterBounds(t *testing.T) {
	t.Parallel()
	t.Run("a poll that never answers", func(t *testing.T) {
		t.Parallel()
		server := sshd.Start(t)
		root := t.TempDir()
		// The setup is complete, but its token file is a FIFO nobody writes: the poll's cat blocks.
		if err := os.WriteFile(filepath.Join(root, setup.CompleteFile), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(filepath.Join(root, setup.TokenFile), 0o600); err != nil {
			t.Fatal(err)
		}
		w := vps.SSHWaiter{Interval: 100 * time.Millisecond, Budget: 4 * time.Second, PollTimeout: time.Second}
		_, err := w.Wait(t.Context(), "vps", vpsOutputs(server, root), func(setup.Status) {})
		var se *targets.SetupError
		if !errors.As(err, &se) || !se.TimedOut || se.LastErr == nil || !strings.Contains(se.LastErr.Error(), "did not answer within 1s") {
			t.Errorf("hanging poll: %v", err)
		}
		// One poll ends with its bound, not with the budget: more than one was made. (A busy
		// machine may spend a poll's bound on its handshake, so no more is asked.)
		if n := server.Stats().Execs; n < 2 {
			t.Errorf("%d polls in a 4 s budget with a 1 s bound each: a hanging poll took the budget", n)
		}
		// An abandoned poll leaves nothing running on the host: its processes end with its bound.
		deadline := time.Now().Add(time.Minute)
		for len(naming(root)) > 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if pids := naming(root); len(pids) > 0 {
			t.Errorf("the abandoned polls' processes %v still run on the host a minute after the wait", pids)
		}
	})
	t.Run("a poll that prints without end", func(t *testing.T) {
		t.Parallel()
		server := sshd.Start(t)
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, setup.CompleteFile), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, setup.TokenFile), bytes.Repeat([]byte("x"), 3<<20), 0o600); err != nil {
			t.Fatal(err)
		}
		w := vps.SSHWaiter{Interval: 100 * time.Millisecond, Budget: time.Minute}
		start := time.Now()
		st, err := w.Wait(t.Context(), "vps", vpsOutputs(server, root), func(setup.Status) {})
		var limit *sshexec.OutputLimitError
		// Cut off, not read for the minute's budget: half of it is the bound however busy the machine.
		if !errors.As(err, &limit) || limit.Limit != sshexec.DefaultMaxOutput || time.Since(start) > 30*time.Second {
			t.Errorf("3 MiB answer: %v after %s (status %s with a %d-byte token)", err, time.Since(start), st.State, len(st.Token))
		}
	})

	server := sshd.Start(t)
	root := t.TempDir()
	w := vps.SSHWaiter{Interval: 100 * time.Millisecond, Budget: 3 * time.Second}

	// A wrong host key stops the wait at the first poll: well inside a budget of two minutes.
	out := vpsOutputs(server, root)
	_, other := sshd.NewKey(t)
	out["ssh_host_key"] = auto.OutputValue{Value: other}
	start := time.Now()
	_, err := vps.SSHWaiter{Interval: 100 * time.Millisecond, Budget: 2 * time.Minute}.Wait(t.Context(), "vps", out, func(setup.Status) {})
	var hk *sshexec.HostKeyError
	if !errors.As(err, &hk) || time.Since(start) > time.Minute {
		t.Errorf("wrong host key: %v after %s", err, time.Since(start))
	}

	// NOT_STARTED is read, then the port closes.
	out = vpsOutputs(server, root)
	var seen []setup.Status
	start = time.Now()
	_, err = w.Wait(t.Context(), "vps", out, func(st setup.Status) {
		seen = append(seen, st)
		if len(seen) == 1 {
			server.Close()
		}
	})
	took := time.Since(start)
	var se *targets.SetupError
	if !errors.As(err, &se) || !se.TimedOut || se.Status.State != setup.NotStarted || se.LastErr == nil {
		t.Fatalf("unreachable host: %v", err)
	}
	// The budget ends the wait, not the poll's own 15 s bound (vps.DefaultPollTimeout); the slack is
	// for a busy machine.
	if took > 13*time.Second {
		t.Errorf("the 3 s budget took %s", took)
	}
	t.Logf("unreachable host: %v (after %s)", err, took.Round(time.Millisecond))
}

// naming returns the live processes whose command line names path (a FIFO's reader blocks in
// open, before the file is among its descriptors).
func naming(path string) []int {
	var pids []int
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range cmdlines {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.Contains(b, []byte(path)) {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join(filepath.Dir(f), "stat"))
		if pid, err := strconv.Atoi(strings.Split(f, "/")[2]); err == nil && pid != os.Getpid() && !bytes.Contains(stat, []byte(") Z ")) {
			pids = append(pids, pid)
		}
	}
	return pids
}
