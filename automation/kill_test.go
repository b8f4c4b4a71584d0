package automation_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/internal/simprogram"
	"github.com/clawdeploy/clawdeploy/internal/simprovider"
)

// proc is a clawdeploy-sim process and the events it printed.
type proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	mu     sync.Mutex
	events []Event
	lines  []string // every line of standard output, as printed
	seen   chan Event
	stderr bytes.Buffer
	done   chan struct{}
	err    error
	start  time.Time
}

// startSim runs clawdeploy-sim --json with args in sim's world; program is "six" or "real".
func startSim(t testing.TB, sim *enginetest.Sim, program string, args ...string) *proc {
	t.Helper()
	return startSimWithInput(t, sim, program, nil, args...)
}

// startSimWithInput is startSim with stdin as the process's standard input.
func startSimWithInput(t testing.TB, sim *enginetest.Sim, program string, stdin io.Reader, args ...string) *proc {
	t.Helper()
	return startSimWith(t, sim, program, stdin, nil, args...)
}

// startSimWith is startSim with stdin as the process's standard input and env added to its
// environment.
func startSimWith(t testing.TB, sim *enginetest.Sim, program string, stdin io.Reader, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(filepath.Join(sim.Bins.Dir, "clawdeploy-sim"), append([]string{"--json"}, args...)...)
	cmd.Stdin = stdin
	cmd.Env = sim.Environ(append([]string{"SIMDRIVER_PROGRAM=" + program}, env...)...)
	return startProc(t, cmd)
}

// startProc starts cmd in a process group of its own, reading the events it prints, and kills
// the group when the test ends.
func startProc(t testing.TB, cmd *exec.Cmd) *proc {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &proc{t: t, cmd: cmd, seen: make(chan Event, 1000), done: make(chan struct{})}
	cmd.Stderr = &p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			var e Event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				p.mu.Lock()
				p.events = append(p.events, e)
				p.mu.Unlock()
				select {
				case p.seen <- e:
				default:
				}
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return p
}

// wait waits for the process to end and returns its exit code.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("clawdeploy-sim did not end within %s\n%s", timeout, p.stderr.String())
	}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		return exit.ExitCode()
	}
	if p.err != nil {
		return -1
	}
	return 0
}

func (p *proc) resourceEvents() int { return len(p.resourceEventList()) }

// eventList returns the events printed so far, in order.
func (p *proc) eventList() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

// resourceEventList returns the resource events printed so far, in order.
func (p *proc) resourceEventList() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Event
	for _, e := range p.events {
		if e.Type == EventResource {
			out = append(out, e)
		}
	}
	return out
}

// run runs clawdeploy-sim to its end.
func runSim(t testing.TB, sim *enginetest.Sim, program string, args ...string) (*proc, int) {
	t.Helper()
	p := startSim(t, sim, program, args...)
	return p, p.wait(5 * time.Minute)
}

// killAt SIGKILLs the process when it has printed k resource events, and returns whether it got
// there. With everything set, every process working for the driver dies too (its Pulumi CLI and
// the provider plugins), as when the machine or its container goes; otherwise only the driver.
func (p *proc) killAt(k int, everything bool) bool {
	p.t.Helper()
	return p.killWhen(fmt.Sprintf("resource event %d", k), func(events []Event) bool { return len(events) >= k }, everything)
}

// killWhen is killAt with the moment chosen by reached, which is given the resource events
// printed so far.
func (p *proc) killWhen(what string, reached func(events []Event) bool, everything bool) bool {
	p.t.Helper()
	return p.killOn(what, p.resourceEventList, reached, everything)
}

// killOn is killWhen with reached given the events list returns.
func (p *proc) killOn(what string, list func() []Event, reached func(events []Event) bool, everything bool) bool {
	p.t.Helper()
	deadline := time.After(2 * time.Minute)
	for !reached(list()) {
		select {
		case <-p.seen:
		case <-p.done:
			return false
		case <-deadline:
			p.t.Fatalf("no %s within 2 minutes", what)
		}
	}
	pids := []int{p.cmd.Process.Pid}
	if everything {
		pids = append(pids, workingFor(p.cmd.Process.Pid)...)
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	p.wait(time.Minute)
	return true
}

// workingFor returns the processes that descend from pid and work for a driver (its CLI, the
// CLI's plugins).
func workingFor(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err == nil && descends(p, pid) && ProcessOwner(p) != "" {
			out = append(out, p)
		}
	}
	return out
}

func descends(pid, ancestor int) bool {
	for i := 0; i < 32 && pid > 1; i++ {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			return false
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		ppid, _ := strconv.Atoi(fields[1])
		if ppid == ancestor {
			return true
		}
		pid = ppid
	}
	return false
}

// strays returns the live processes of this simulated world: anything whose environment names
// its cloud file.
func strays(sim *enginetest.Sim) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	marker := []byte(simprovider.EnvCloud + "=" + sim.Cloud + "\x00")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if bytes.Contains(append(env, 0), marker) && !bytes.Contains(stat, []byte(") Z ")) {
			out = append(out, pid)
		}
	}
	return out
}

// stateResources reads the stack's checkpoint from the file backend: custom resources by URN.
func stateResources(t *testing.T, sim *enginetest.Sim, stack string) map[string]string {
	t.Helper()
	path := filepath.Join(sim.StateDir, "state", ".pulumi", "stacks", "openclaw", stack+".json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the checkpoint: %v", err)
	}
	var cp struct {
		Checkpoint struct {
			Latest struct {
				Resources []struct {
					URN    string `json:"urn"`
					ID     string `json:"id"`
					Custom bool   `json:"custom"`
					Type   string `json:"type"`
				} `json:"resources"`
				PendingOperations []any `json:"pending_operations"`
			} `json:"latest"`
		} `json:"checkpoint"`
	}
	if err := json.Unmarshal(b, &cp); err != nil {
		t.Fatalf("parsing the checkpoint: %v", err)
	}
	if n := len(cp.Checkpoint.Latest.PendingOperations); n != 0 {
		t.Errorf("%d pending operations left in the checkpoint", n)
	}
	out := map[string]string{}
	for _, r := range cp.Checkpoint.Latest.Resources {
		if r.Custom && !strings.HasPrefix(r.Type, "pulumi:providers:") {
			out[r.URN] = r.ID
		}
	}
	return out
}

// listState describes the stack files of the file backend, for a failure's report.
func listState(sim *enginetest.Sim) string {
	var b strings.Builder
	dir := filepath.Join(sim.StateDir, "state", ".pulumi", "stacks", "openclaw")
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		info, _ := e.Info()
		content, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		head := string(content)
		if len(head) > 80 {
			head = head[:80]
		}
		fmt.Fprintf(&b, "  %s %d bytes: %q\n", e.Name(), info.Size(), head)
	}
	return b.String()
}

func locks(sim *enginetest.Sim) []string {
	var out []string
	_ = filepath.WalkDir(filepath.Join(sim.StateDir, "state", ".pulumi", "locks"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".attrs") { // the file backend's metadata sidecar
			out = append(out, p)
		}
		return nil
	})
	return out
}

// status reads a deployment's journal record through the CLI.
func status(t *testing.T, sim *enginetest.Sim, program, stack string) map[string]any {
	t.Helper()
	cmd := exec.Command(filepath.Join(sim.Bins.Dir, "clawdeploy-sim"), "--json", "status", "--stack", stack)
	cmd.Env = sim.Environ("SIMDRIVER_PROGRAM=" + program)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var rec map[string]any
	if err := json.Unmarshal(out, &rec); err != nil {
		t.Fatalf("status output %q: %v", out, err)
	}
	return rec
}

// checkRecovered asserts what a successful recovery leaves: the journal READY, each resource once
// in the cloud and in the state, nothing in the cloud the state does not know, no lock, no stray
// process.
func checkRecovered(t *testing.T, sim *enginetest.Sim, program, stack string, want int) []string {
	t.Helper()
	return checkSettled(t, sim, program, stack, "READY", want)
}

// checkSettled asserts what a recovery to wantStatus leaves. READY: each of want resources once in
// the cloud and in the state, nothing in the cloud the state does not know. DESTROYED: nothing
// in the cloud, the stack gone from the backend. Both: the journal at status and not
// interrupted, no lock, no stray process.
func checkSettled(t *testing.T, sim *enginetest.Sim, program, stack, wantStatus string, want int) []string {
	t.Helper()
	var problems []string
	if rec := status(t, sim, program, stack); rec["status"] != wantStatus || rec["interrupted"] == true {
		problems = append(problems, fmt.Sprintf("journal %v interrupted=%v, want %s", rec["status"], rec["interrupted"], wantStatus))
	}
	c := sim.Load(t)
	if wantStatus == "DESTROYED" {
		for _, r := range c.Resources {
			problems = append(problems, fmt.Sprintf("%s (%s) remains after the destroy", r.URN, r.ID))
		}
		checkpoint := filepath.Join(sim.StateDir, "state", ".pulumi", "stacks", "openclaw", stack+".json")
		if _, err := os.Stat(checkpoint); err == nil {
			problems = append(problems, "the destroyed stack is still in the backend")
		}
	} else {
		state := stateResources(t, sim, stack)
		counts := map[string]int{}
		for _, r := range c.Resources {
			counts[r.URN]++
			if state[r.URN] != r.ID {
				problems = append(problems, fmt.Sprintf("orphan %s (%s) is not in the state", r.URN, r.ID))
			}
		}
		for urn, n := range counts {
			if n != 1 {
				problems = append(problems, fmt.Sprintf("%s exists %d times", urn, n))
			}
		}
		if len(c.Resources) != want || len(state) != want {
			problems = append(problems, fmt.Sprintf("%d resources in the cloud and %d in the state, want %d", len(c.Resources), len(state), want))
		}
	}
	if l := locks(sim); len(l) > 0 {
		problems = append(problems, fmt.Sprintf("lock files left: %v", l))
	}
	// Processes may take a moment to be reaped.
	deadline := time.Now().Add(10 * time.Second)
	for len(strays(sim)) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if s := strays(sim); len(s) > 0 {
		problems = append(problems, fmt.Sprintf("stray processes: %v", s))
	}
	return problems
}

// checkReplaced says what is wrong with the replacement of each of names (Things of Six) from
// the cloud before to the cloud after: the same object as before, or not created exactly once.
func checkReplaced(after, before *simprovider.Cloud, names []string) []string {
	var problems []string
	for _, name := range names {
		urn := "urn:pulumi:dev::openclaw::" + simprogram.ThingType + "::" + name
		old, now := before.ByURN(urn), after.ByURN(urn)
		if len(old) != 1 || len(now) != 1 {
			problems = append(problems, fmt.Sprintf("%s: %d objects before, %d after", name, len(old), len(now)))
			continue
		}
		if now[0].ID == old[0].ID {
			problems = append(problems, fmt.Sprintf("%s was not replaced: still %s", name, old[0].ID))
		}
		created := 0
		for _, op := range after.Ops[len(before.Ops):] {
			if op.URN == urn && op.Kind == "create" {
				created++
			}
		}
		if created != 1 {
			problems = append(problems, fmt.Sprintf("%s was created %d times, want once", name, created))
		}
	}
	return problems
}

// killCase is an operation killed at each of its resource events, then resumed by a new process.
type killCase struct {
	program string // "six" or "real"
	// before brings a world to where the operation starts; nil starts from nothing. It runs
	// once, and each kill starts from a clone of its world.
	before func(t *testing.T, sim *enginetest.Sim)
	// op is the operation killed, as clawdeploy-sim's arguments; then is what finishes it after
	// the kill (nil: resume --stack dev).
	op, then []string
	// status and want are what the resume must leave: READY with want resources, or DESTROYED.
	status string
	want   int
	// replaced are the resources (by name in Six) the operation replaces: once the resume is
	// done, each is a new object, created exactly once since the operation began.
	replaced []string
	// alternate, in the full matrix, kills the driver alone at odd events and everything at
	// even ones, instead of both at each event, to bound the run time.
	alternate bool
}

// terminateTop takes six's top away, as a Spot interruption takes an instance.
func terminateTop(t *testing.T, sim *enginetest.Sim) {
	t.Helper()
	tops := sim.Load(t).ByURN("urn:pulumi:dev::openclaw::" + simprogram.ThingType + "::top")
	if len(tops) != 1 {
		t.Fatalf("%d tops in the simulated cloud", len(tops))
	}
	if _, err := simprovider.Terminate(sim.Cloud, tops[0].ID); err != nil {
		t.Fatal(err)
	}
}

// upSix brings a world to a READY six.
func upSix(t *testing.T, sim *enginetest.Sim) {
	t.Helper()
	if p, code := runSim(t, sim, "six", "up", "--stack", "dev"); code != 0 {
		t.Fatalf("up: exit %d\n%s", code, p.stderr.String())
	}
}

// killMatrixEnv widens the kill matrices from the CI subset to every event when it is "full"
// (make test-kill-matrix, and the scheduled kill-matrix workflow).
const killMatrixEnv = "CLAWDEPLOY_KILL_MATRIX"

// killPoint is a moment to kill an operation at, and with which kills: the driver alone
// (false), everything (true).
type killPoint struct {
	name    string
	reached func(events []Event) bool
	kills   []bool
	// all gives reached every event printed, not only the resource events.
	all bool
}

// eventKind is what a kill right after a resource event leaves for the recovery to find: the
// phase (after start the step may be pending in the checkpoint, after done it is recorded), the
// engine's step, and the kind of resource (the provider; a component, which has no cloud object;
// or a custom resource, which has one).
func eventKind(e Event) string {
	class := "custom"
	switch {
	case strings.HasPrefix(e.ResourceType, "pulumi:providers:"):
		class = "provider"
	case strings.HasPrefix(e.ResourceType, "clawdeploy:"):
		class = "component"
	}
	return e.Phase + "-" + e.Op + "-" + class
}

// killPoints chooses where to kill an operation whose reference run printed events (its
// resource events). Full: after every event k, with both kills, or with alternate the driver
// alone at odd k and everything at even ones. Otherwise, the fixed subset CI runs: after the
// first event of each kind (eventKind), the driver alone at the first kind, everything at the
// second and so on, and after the operation's last event with both kills: every kind of event
// of the operation, and both kills, at about a quarter of the full matrix's runs.
func killPoints(events []Event, full, alternate bool) []killPoint {
	both := []bool{false, true}
	var points []killPoint
	if full {
		for k := 1; k <= len(events); k++ {
			kills := both
			if alternate {
				kills = []bool{k%2 == 0}
			}
			points = append(points, killPoint{name: fmt.Sprintf("k=%d", k), kills: kills,
				reached: func(seen []Event) bool { return len(seen) >= k }})
		}
		return points
	}
	first := map[string]int{}
	for i, e := range events {
		kind := eventKind(e)
		if _, ok := first[kind]; ok {
			continue
		}
		first[kind] = i
		points = append(points, killPoint{name: "first-" + kind, kills: []bool{len(points)%2 == 1}, reached: func(seen []Event) bool {
			return slices.ContainsFunc(seen, func(e Event) bool { return eventKind(e) == kind })
		}})
	}
	last := len(events) - 1
	if first[eventKind(events[last])] == last {
		points[len(points)-1].name, points[len(points)-1].kills = "last-"+eventKind(events[last]), both
	} else {
		points = append(points, killPoint{name: "last", kills: both, reached: func(seen []Event) bool { return len(seen) > last }})
	}
	return points
}

// killEverywhere runs kc's operation once to find its resource events, then kills it at each of
// the points killPoints chooses and resumes it in a new process. A run in which the operation
// ended before its kill point fails: it would prove nothing.
func killEverywhere(t *testing.T, kc killCase) {
	template := enginetest.NewSim(t, bins)
	if kc.before != nil {
		kc.before(t, template)
	}
	before := template.Load(t)
	reference := template.Clone(t)
	p, code := runSim(t, reference, kc.program, kc.op...)
	if code != 0 {
		t.Fatalf("reference run of %v exited %d\n%s", kc.op, code, p.stderr.String())
	}
	events := p.resourceEventList()
	if len(events) == 0 {
		t.Fatalf("%v prints no resource event: nothing to kill it at", kc.op)
	}
	full := os.Getenv(killMatrixEnv) == "full"
	points := killPoints(events, full, kc.alternate)
	if len(kc.replaced) > 0 {
		// Begun, and no replacement started: the moment a resume forgetting the replacements
		// would finish on the old resources.
		points = append(points, killPoint{name: "provisioning", kills: []bool{false, true}, all: true, reached: func(seen []Event) bool {
			return slices.ContainsFunc(seen, func(e Event) bool { return e.Type == EventStatus && e.Status == "PROVISIONING" })
		}})
	}
	t.Logf("%v: N = %d resource events; %d kill points (%s=%q)", kc.op, len(events), len(points), killMatrixEnv, os.Getenv(killMatrixEnv))
	var (
		mu     sync.Mutex
		passed int
		ran    int
	)
	for _, point := range points {
		for _, everything := range point.kills {
			name := point.name + "/" + map[bool]string{false: "driver", true: "everything"}[everything]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				sim := template.Clone(t)
				control(t, sim, simprovider.Control{DefaultDelay: "40ms"})
				p := startSim(t, sim, kc.program, kc.op...)
				list := p.resourceEventList
				if point.all {
					list = p.eventList
				}
				if !p.killOn(point.name, list, point.reached, everything) {
					t.Fatalf("%v ended before %s: the kill did not happen\n%s", kc.op, point.name, p.stderr.String())
				}
				then := kc.then
				if then == nil {
					then = []string{"resume", "--stack", "dev"}
				}
				r, code := runSim(t, sim, kc.program, then...)
				problems := checkSettled(t, sim, kc.program, "dev", kc.status, kc.want)
				problems = append(problems, checkReplaced(sim.Load(t), before, kc.replaced)...)
				if code != 0 {
					problems = append(problems, fmt.Sprintf("%v exited %d: %s\nstate files:\n%s", then, code, r.stderr.String(), listState(sim)))
				}
				mu.Lock()
				ran++
				if len(problems) == 0 {
					passed++
				}
				mu.Unlock()
				for _, pr := range problems {
					t.Error(pr)
				}
			})
		}
	}
	t.Cleanup(func() { t.Logf("%v: %d of %d kill-and-resume runs recovered", kc.op, passed, ran) })
}

// TestKillAtEveryEventSix kills an up of the six-resource program and resumes it: at every
// event with CLAWDEPLOY_KILL_MATRIX=full, at the first event of each kind and the last in CI.
func TestKillAtEveryEventSix(t *testing.T) {
	t.Parallel()
	killEverywhere(t, killCase{program: "six", op: []string{"up", "--stack", "dev"}, status: "READY", want: 6})
}

// TestKillAtEveryEventRealProgram is TestKillAtEveryEventSix with ec2spot.Program (80 events).
func TestKillAtEveryEventRealProgram(t *testing.T) {
	t.Parallel()
	killEverywhere(t, killCase{program: "real", status: "READY", want: 31, alternate: true,
		op: []string{"up", "--stack", "dev", "--config", "aws:region=me-central-1", "--config", "availability_zone=me-central-1a",
			"--secret", "gateway_token=gw-sim"}})
}

// TestKillAtEveryEventOfEachOperation kills, at their resource events (every one with
// CLAWDEPLOY_KILL_MATRIX=full, the first of each kind and the last in CI), the operations after
// the first up: a create-before-delete replacement (up --replace, the restore path), a
// delete-before-replace one (up --retry, as of the instance), destroy, refresh, a resume itself,
// and the heal of a host taken away (finished by a new heal, not a resume). Each is finished by a
// new process to where the operation would have left it.
func TestKillAtEveryEventOfEachOperation(t *testing.T) {
	t.Parallel()
	left := "urn:pulumi:dev::openclaw::" + simprogram.ThingType + "::left"
	for name, kc := range map[string]killCase{
		"replace": {op: []string{"up", "--stack", "dev", "--replace", left}, before: upSix, status: "READY", want: 6,
			replaced: []string{"left"}},
		"retry": {op: []string{"up", "--stack", "dev", "--retry"}, before: upSix, status: "READY", want: 6,
			replaced: []string{"top"}},
		"destroy": {op: []string{"destroy", "--stack", "dev", "--yes"}, before: upSix, status: "DESTROYED", alternate: true},
		"refresh": {op: []string{"refresh", "--stack", "dev"}, before: upSix, status: "READY", want: 6, alternate: true},
		"heal": {op: []string{"heal", "--stack", "dev"}, then: []string{"heal", "--stack", "dev"}, status: "READY", want: 6, alternate: true,
			before: func(t *testing.T, sim *enginetest.Sim) {
				upSix(t, sim)
				terminateTop(t, sim)
			}},
		"resume": {op: []string{"resume", "--stack", "dev"}, status: "READY", want: 6, alternate: true,
			before: func(t *testing.T, sim *enginetest.Sim) {
				// Everything killed (an even event), so that no orphan of the template's runs on
				// while it is cloned.
				control(t, sim, simprovider.Control{DefaultDelay: "40ms"})
				interrupted(t, sim, "dev", 6)
				for deadline := time.Now().Add(10 * time.Second); len(strays(sim)) > 0 && time.Now().Before(deadline); {
					time.Sleep(50 * time.Millisecond)
				}
			}},
	} {
		kc.program = "six"
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			killEverywhere(t, kc)
		})
	}
}

// TestKillPoints: the full matrix kills after every event (both kills, or alternating); the CI
// subset after the first event of each kind, one kill each in turn, and after the last with
// both, never twice at one event.
func TestKillPoints(t *testing.T) {
	ev := func(phase, op, typ string) Event {
		return Event{Type: EventResource, Phase: phase, Op: op, ResourceType: typ}
	}
	events := []Event{
		ev("start", "create", "pulumi:providers:aws"), ev("done", "create", "pulumi:providers:aws"),
		ev("start", "create", "clawdeploy:storage:DataVolume"), ev("start", "create", "aws:ebs/volume:Volume"),
		ev("start", "create", "aws:ssm/parameter:Parameter"), ev("done", "create", "aws:ebs/volume:Volume"),
		ev("done", "create", "aws:ssm/parameter:Parameter"), ev("done", "create", "clawdeploy:storage:DataVolume"),
	}
	// at returns the index of the event at which a point is reached, feeding events one by one.
	at := func(p killPoint) int {
		for i := range events {
			if p.reached(events[:i+1]) {
				return i
			}
		}
		return -1
	}
	full := killPoints(events, true, true)
	if len(full) != len(events) {
		t.Fatalf("full: %d points for %d events", len(full), len(events))
	}
	for i, p := range full {
		if at(p) != i || len(p.kills) != 1 || p.kills[0] != ((i+1)%2 == 0) {
			t.Errorf("full point %s: reached at %d with kills %v", p.name, at(p), p.kills)
		}
	}
	if p := killPoints(events, true, false); len(p[0].kills) != 2 {
		t.Errorf("full without alternate: kills %v, want both", p[0].kills)
	}
	subset := func(events []Event) []string {
		var got []string
		for _, p := range killPoints(events, false, true) {
			got = append(got, fmt.Sprintf("%s@%d%v", p.name, at(p), p.kills))
		}
		return got
	}
	want := []string{"first-start-create-provider@0[false]", "first-done-create-provider@1[true]", "first-start-create-component@2[false]",
		"first-start-create-custom@3[true]", "first-done-create-custom@5[false]", "last-done-create-component@7[false true]"}
	if got := subset(events); !slices.Equal(got, want) {
		t.Errorf("CI subset:\n got %v\nwant %v (the last event is a first of its kind: one point, both kills)", got, want)
	}
	events = append(events, ev("done", "create", "aws:ebs/volume:Volume"))
	want = append(want[:5], "first-done-create-component@7[true]", "last@8[false true]")
	if got := subset(events); !slices.Equal(got, want) {
		t.Errorf("CI subset with a last event of its own:\n got %v\nwant %v", got, want)
	}
}
