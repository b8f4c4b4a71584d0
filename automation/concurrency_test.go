package automation_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/internal/simprovider"
)

// control writes the simulated provider's control file.
func control(t testing.TB, sim *enginetest.Sim, c simprovider.Control) {
	t.Helper()
	if err := simprovider.WriteControl(sim.Control, c); err != nil {
		t.Fatal(err)
	}
}

// waitFor waits for the process to print an event that satisfies ok.
func (p *proc) waitFor(what string, ok func(Event) bool) Event {
	p.t.Helper()
	deadline := time.After(2 * time.Minute)
	next := 0
	for {
		p.mu.Lock()
		for ; next < len(p.events); next++ {
			if ok(p.events[next]) {
				e := p.events[next]
				p.mu.Unlock()
				return e
			}
		}
		p.mu.Unlock()
		select {
		case <-p.seen:
		case <-p.done:
			p.t.Fatalf("the process ended before %s\n%s", what, p.stderr.String())
		case <-deadline:
			p.t.Fatalf("no %s within 2 minutes", what)
		}
	}
}

// creating reports whether e is the start of a Thing's creation.
func creating(name string) func(Event) bool {
	return func(e Event) bool {
		return e.Type == EventResource && e.Phase == "start" && e.Op == "create" && strings.HasSuffix(e.URN, "::"+name)
	}
}

// result is the process's result event, if it printed one.
func (p *proc) result() (Event, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.events {
		if e.Type == EventResult {
			return e, true
		}
	}
	return Event{}, false
}

// ranEngine reports whether the process ran the engine: it printed a resource event.
func (p *proc) ranEngine() bool {
	return p.resourceEvents() > 0
}

// TestSIGTERMDuringUp sends SIGTERM to the driver during an up: it exits 4 within the drain
// window with the deployment marked interrupted, and a resume completes it. "checkpoints" lets
// the engine finish its in-flight step; "drain expires" blocks a create past the window, so the
// driver kills its own engine and the resume repairs what that leaves.
func TestSIGTERMDuringUp(t *testing.T) {
	t.Parallel()
	const drain = 4 * time.Second
	for _, tc := range []struct {
		name string
		ctl  simprovider.Control
	}{
		{"checkpoints", simprovider.Control{Delay: map[string]string{"create urn:": "1500ms"}}},
		{"drain expires", simprovider.Control{Block: []string{"create urn:pulumi:dev::openclaw::sim:index:Thing::left-2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := enginetest.NewSim(t, bins)
			control(t, sim, tc.ctl)
			p := startSim(t, sim, "six", "--drain", drain.String(), "up", "--stack", "dev")
			p.waitFor("the creation of left-2", creating("left-2"))
			sent := time.Now()
			if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			code := p.wait(time.Minute)
			took := time.Since(sent)
			t.Logf("SIGTERM → exit %d in %.2fs (drain %s)", code, took.Seconds(), drain)
			if code != ExitInterrupted {
				t.Fatalf("exit %d, want %d\n%s", code, ExitInterrupted, p.stderr.String())
			}
			// Within the window, and a second after it when an idle machine kills the blocked
			// engine; the slack is for a busy one. Waiting for the blocked create would take
			// p.wait's minute.
			if took > drain+8*time.Second {
				t.Errorf("took %s to exit, drain window %s", took, drain)
			}
			if res, ok := p.result(); !ok || res.ExitCode == nil || *res.ExitCode != ExitInterrupted {
				t.Errorf("result event %+v", res)
			}
			// Interrupted, and the lease ended (not held, though it still says whose it was).
			rec := status(t, sim, "six", "dev")
			expires, _ := rec["leaseExpires"].(string)
			if ended, err := time.Parse(time.RFC3339Nano, expires); rec["interrupted"] != true || err != nil || ended.After(time.Now()) {
				t.Errorf("journal after SIGTERM: %v", rec)
			}
			control(t, sim, simprovider.Control{})
			r, code := runSim(t, sim, "six", "resume", "--stack", "dev")
			if code != 0 {
				t.Fatalf("resume exited %d\n%s", code, r.stderr.String())
			}
			for _, pr := range checkRecovered(t, sim, "six", "dev", 6) {
				t.Error(pr)
			}
		})
	}
}

// interrupted makes an interrupted deployment of six: an up SIGKILLed at its k-th resource event.
func interrupted(t *testing.T, sim *enginetest.Sim, stack string, k int) {
	t.Helper()
	p := startSim(t, sim, "six", "up", "--stack", stack)
	if !p.killAt(k, k%2 == 0) {
		t.Fatalf("the up of %s finished before event %d", stack, k)
	}
}

// TestConcurrentResumes starts two resumes of the same killed deployment at once, 20 times:
// exactly one runs the engine. Without --wait the other exits 3; with --wait it waits, finds the
// deployment READY and exits 0 without running anything.
func TestConcurrentResumes(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		summary = map[string]int{}
	)
	for i := range 20 {
		wait := i%2 == 1
		t.Run(fmt.Sprintf("%d/wait=%v", i, wait), func(t *testing.T) {
			t.Parallel()
			sim := enginetest.NewSim(t, bins)
			control(t, sim, simprovider.Control{DefaultDelay: "40ms"})
			interrupted(t, sim, "dev", 1+i%5)
			args := []string{"resume", "--stack", "dev"}
			if wait {
				args = append(args, "--wait", "3m")
			}
			a, b := startSim(t, sim, "six", args...), startSim(t, sim, "six", args...)
			codes := []int{a.wait(5 * time.Minute), b.wait(5 * time.Minute)}
			engines := 0
			for _, p := range []*proc{a, b} {
				if p.ranEngine() {
					engines++
				}
			}
			slices.Sort(codes)
			want := []int{0, ExitHeld}
			if wait {
				want = []int{0, 0}
			}
			if !slices.Equal(codes, want) || engines != 1 {
				t.Errorf("exit codes %v (want %v), %d ran the engine (want 1)\nA: %s\nB: %s",
					codes, want, engines, a.stderr.String(), b.stderr.String())
			}
			for _, pr := range checkRecovered(t, sim, "six", "dev", 6) {
				t.Error(pr)
			}
			mu.Lock()
			summary[fmt.Sprintf("codes=%v engines=%d", codes, engines)]++
			mu.Unlock()
		})
	}
	t.Cleanup(func() { t.Logf("outcomes of 20 races: %v", summary) })
}

// TestLiveLockIsNeverCancelled holds a deployment in a live up (a create blocked in the provider)
// and tries everything that could take it away: a driver with another journal over the same
// backend (it sees only the state lock), resume and cancel with the same journal (they see the
// lease). Each exits 3 and the live up, released, finishes untouched.
func TestLiveLockIsNeverCancelled(t *testing.T) {
	t.Parallel()
	sim := enginetest.NewSim(t, bins)
	control(t, sim, simprovider.Control{Block: []string{"create urn:pulumi:dev::openclaw::sim:index:Thing::top"}})
	live := startSim(t, sim, "six", "up", "--stack", "dev")
	live.waitFor("the creation of top", creating("top"))
	heldLocks := locks(sim)
	if len(heldLocks) != 1 {
		t.Fatalf("lock files while the up runs: %v", heldLocks)
	}

	foreign := []string{"--state-dir", t.TempDir(), "--backend", "file://" + filepath.Join(sim.StateDir, "state")}
	for _, args := range [][]string{
		append(slices.Clone(foreign), "up", "--stack", "dev"),
		append(slices.Clone(foreign), "destroy", "--stack", "dev", "--yes"),
		append(slices.Clone(foreign), "cancel", "--stack", "dev"),
		{"resume", "--stack", "dev"},
		{"up", "--stack", "dev"},
		{"cancel", "--stack", "dev"},
	} {
		p, code := runSim(t, sim, "six", args...)
		if code != ExitHeld {
			t.Errorf("%v exited %d, want %d\n%s", args, code, ExitHeld, p.stderr.String())
		}
		t.Logf("%v: exit %d: %s", args[len(args)-3:], code, strings.TrimSpace(p.stderr.String()))
		if got := locks(sim); !slices.Equal(got, heldLocks) {
			t.Fatalf("after %v the locks are %v, were %v", args, got, heldLocks)
		}
		select {
		case <-live.done:
			t.Fatalf("the live up ended after %v\n%s", args, live.stderr.String())
		default:
		}
	}

	control(t, sim, simprovider.Control{})
	if code := live.wait(2 * time.Minute); code != 0 {
		t.Fatalf("the live up exited %d\n%s", code, live.stderr.String())
	}
	for _, pr := range checkRecovered(t, sim, "six", "dev", 6) {
		t.Error(pr)
	}

	// The refused operations started nothing in the other journal: its resume --all has
	// nothing to continue.
	if p, code := runSim(t, sim, "six", append(slices.Clone(foreign), "resume", "--all")...); code != 0 || p.ranEngine() {
		t.Errorf("resume --all of the other journal: exit %d, ran the engine: %v\n%s", code, p.ranEngine(), p.stderr.String())
	}

	// A state lock of a live process that works for no driver (an operator's pulumi): cancel
	// refuses it, cancel --force removes it and says whose it was.
	operator := exec.Command("sleep", "120")
	if err := operator.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = operator.Process.Kill(); _ = operator.Wait() }()
	host, _ := os.Hostname()
	lockDir := filepath.Join(sim.StateDir, "state", ".pulumi", "locks", "organization", "openclaw", "dev")
	lock := fmt.Sprintf(`{"pid":%d,"username":"operator","hostname":%q,"timestamp":"2026-11-30T10:00:00Z"}`, operator.Process.Pid, host)
	if err := os.MkdirAll(lockDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lockDir, "0b1e8d3a.json"), []byte(lock), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"cancel", "--stack", "dev"}, append(slices.Clone(foreign), "cancel", "--stack", "dev")} {
		if p, code := runSim(t, sim, "six", args...); code != ExitHeld || len(locks(sim)) != 1 {
			t.Errorf("%v: exit %d, locks %v; want %d and the lock kept\n%s", args, code, locks(sim), ExitHeld, p.stderr.String())
		}
	}
	p, code := runSim(t, sim, "six", "cancel", "--stack", "dev", "--force")
	if code != 0 || len(locks(sim)) != 0 {
		t.Errorf("cancel --force: exit %d, locks %v; want 0 and no lock\n%s", code, locks(sim), p.stderr.String())
	}
	said := false
	for _, e := range p.events {
		said = said || e.Severity == "warning" && strings.Contains(e.Message, fmt.Sprintf("pid %d on %s", operator.Process.Pid, host))
	}
	if !said {
		t.Errorf("cancel --force did not say whose lock it removed: %+v", p.events)
	}
}

// TestResumeAllTen interrupts ten deployments and resumes them with one `resume --all
// --concurrency 4`: all end READY, never more than four at a time.
func TestResumeAllTen(t *testing.T) {
	t.Parallel()
	sim := enginetest.NewSim(t, bins)
	control(t, sim, simprovider.Control{DefaultDelay: "40ms"})
	var stacks []string
	for i := range 10 {
		stacks = append(stacks, fmt.Sprintf("customer-%02d", i))
	}
	var wg sync.WaitGroup
	for i, s := range stacks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			interrupted(t, sim, s, 1+i%5)
		}()
	}
	wg.Wait()

	start := time.Now()
	p, code := runSim(t, sim, "six", "resume", "--all", "--concurrency", "4")
	t.Logf("resume --all of 10 stacks took %.1fs", time.Since(start).Seconds())
	if code != 0 {
		t.Fatalf("resume --all exited %d\n%s", code, p.stderr.String())
	}
	// Each stack's span: from its first event to its result.
	type span struct{ from, to time.Time }
	spans := map[string]*span{}
	results := 0
	for _, e := range p.events {
		if e.Stack == "" {
			continue
		}
		s := spans[e.Stack]
		if s == nil {
			s = &span{from: e.Time}
			spans[e.Stack] = s
		}
		s.to = e.Time
		if e.Type == EventResult {
			results++
			if e.OK == nil || !*e.OK {
				t.Errorf("%s: %+v", e.Stack, e)
			}
		}
	}
	if results != 10 {
		t.Errorf("%d result events, want 10", results)
	}
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, s := range spans {
		edges = append(edges, edge{s.from, 1}, edge{s.to, -1})
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at.Equal(edges[j].at) {
			return edges[i].delta < edges[j].delta
		}
		return edges[i].at.Before(edges[j].at)
	})
	running, most := 0, 0
	for _, e := range edges {
		running += e.delta
		most = max(most, running)
	}
	t.Logf("at most %d resumes ran at once", most)
	if most > 4 || most < 2 {
		t.Errorf("at most %d resumes at once, want 2..4", most)
	}

	c := sim.Load(t)
	for _, s := range stacks {
		if rec := status(t, sim, "six", s); rec["status"] != "READY" {
			t.Errorf("%s: %v", s, rec)
		}
		state := stateResources(t, sim, s)
		n := 0
		for _, r := range c.Resources {
			if r.Tags[components.TagStack] == s {
				n++
				if state[r.URN] != r.ID {
					t.Errorf("%s: %s (%s) is not in the state", s, r.URN, r.ID)
				}
			}
		}
		if n != 6 || len(state) != 6 {
			t.Errorf("%s: %d things in the cloud, %d in the state, want 6", s, n, len(state))
		}
	}
	if l := locks(sim); len(l) > 0 {
		t.Errorf("lock files left: %v", l)
	}
}

// TestInterruptedRefreshResumesAsARefresh interrupts the refresh of a READY deployment with
// SIGTERM: the journal keeps that a refresh was interrupted, and resume continues the refresh,
// not an up (no status moves, nothing is created or updated).
func TestInterruptedRefreshResumesAsARefresh(t *testing.T) {
	t.Parallel()
	sim := enginetest.NewSim(t, bins)
	if p, code := runSim(t, sim, "six", "up", "--stack", "dev"); code != 0 {
		t.Fatalf("up exited %d\n%s", code, p.stderr.String())
	}
	control(t, sim, simprovider.Control{Block: []string{"read urn:pulumi:dev::openclaw::sim:index:Thing::top"}})
	p := startSim(t, sim, "six", "--drain", "3s", "refresh", "--stack", "dev")
	p.waitFor("the refresh of top", func(e Event) bool {
		return e.Type == EventResource && e.Phase == "start" && e.Op == "refresh" && strings.HasSuffix(e.URN, "::top")
	})
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(time.Minute); code != ExitInterrupted {
		t.Fatalf("refresh exited %d, want %d\n%s", code, ExitInterrupted, p.stderr.String())
	}
	if rec := status(t, sim, "six", "dev"); rec["interrupted"] != true || rec["operation"] != "refresh" || rec["status"] != "READY" {
		t.Fatalf("journal after the interrupted refresh: %v", rec)
	}
	control(t, sim, simprovider.Control{})
	r, code := runSim(t, sim, "six", "resume", "--stack", "dev")
	if code != 0 {
		t.Fatalf("resume exited %d\n%s", code, r.stderr.String())
	}
	refreshed := 0
	for _, e := range r.events {
		switch {
		case e.Type == EventStatus && (e.Status != "READY" || e.Interrupted):
			t.Errorf("the resume moved the status: %+v", e)
		case e.Type == EventResource && e.Op == "refresh":
			refreshed++
		case e.Type == EventResource:
			t.Errorf("the resume did more than a refresh: %+v", e)
		}
	}
	if refreshed == 0 {
		t.Error("the resume refreshed nothing")
	}
	if rec := status(t, sim, "six", "dev"); rec["interrupted"] == true || rec["status"] != "READY" {
		t.Errorf("journal after the resume: %v", rec)
	}
	for _, pr := range checkRecovered(t, sim, "six", "dev", 6) {
		t.Error(pr)
	}
}
