package automation_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/fleet"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/internal/loopback"
	"github.com/clawdeploy/clawdeploy/internal/moto"
	"github.com/clawdeploy/clawdeploy/internal/pgtest"
	"github.com/clawdeploy/clawdeploy/internal/simprogram"
	"github.com/clawdeploy/clawdeploy/internal/simprovider"
	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/targets/ec2spot"
	"github.com/clawdeploy/clawdeploy/targets/vps"
)

// hosts is a world of several hosts: one PostgreSQL journal, one S3 state backend (moto), the
// simulated provider, and workers each in a UTS namespace of its own (its own host name).
type hosts struct {
	sim        *enginetest.Sim
	journalURL string
	backend    string
	moto       *moto.Server
	leaseTTL   time.Duration
	journal    *journal.SQL
	// said, when set, is what the workers said of a stack: awaitReady's failure quotes it for
	// each stack that did not become READY.
	said func(stack string) string
}

const fleetBucket = "clawdeploy-fleet"

func newFleet(t testing.TB, leaseTTL time.Duration) *hosts {
	t.Helper()
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	dsn, err := pg.NewDatabase("fleet")
	if err != nil {
		t.Fatal(err)
	}
	m := moto.Start(t)
	m.CreateBucket(t, fleetBucket)
	f := &hosts{sim: enginetest.NewSim(t, bins), journalURL: dsn, moto: m, leaseTTL: leaseTTL,
		backend: "s3://" + fleetBucket + "/states?endpoint=" + url.QueryEscape(m.Endpoint) + "&use_path_style=true&region=" + moto.Region}
	for _, kv := range m.Env() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			f.sim.Env[k] = v
		}
	}
	if f.journal, err = journal.OpenPostgres(context.Background(), dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.journal.Close() })
	return f
}

// args are the global flags of every process of the fleet.
func (f *hosts) args(args ...string) []string {
	return append([]string{"--json", "--journal", f.journalURL, "--backend", f.backend, "--lease-ttl", f.leaseTTL.String()}, args...)
}

// run runs one clawdeploy-sim command of the fleet to its end.
func (f *hosts) run(t testing.TB, args ...string) (*proc, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(f.sim.Bins.Dir, "clawdeploy-sim"), f.args(args...)...)
	cmd.Env = f.sim.Environ("SIMDRIVER_PROGRAM=six")
	p := startProc(t, cmd)
	return p, p.wait(5 * time.Minute)
}

// worker starts a worker on a host of its own: its own UTS namespace named host, its own state
// directory.
func (f *hosts) worker(t testing.TB, host string, args ...string) *proc {
	t.Helper()
	return f.workerWith(t, host, nil, args...)
}

// workerWith is worker with global flags of its own (--drain, say) besides the fleet's.
func (f *hosts) workerWith(t testing.TB, host string, global []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command("unshare", append([]string{"--uts", "sh", "-c", `hostname "$0" && exec "$@"`, host,
		filepath.Join(f.sim.Bins.Dir, "clawdeploy-sim")}, f.args(append(append(global, "worker"), args...)...)...)...)
	cmd.Env = f.sim.Environ("SIMDRIVER_PROGRAM=six", "CLAWDEPLOY_STATE_DIR="+filepath.Join(t.TempDir(), host))
	return startProc(t, cmd)
}

// enqueue queues an up of each stack, a few processes at a time.
func (f *hosts) enqueue(t testing.TB, stacks []string) {
	t.Helper()
	var wg sync.WaitGroup
	slots := make(chan struct{}, 6)
	for _, s := range stacks {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			if p, code := f.run(t, "up", "--enqueue", "--stack", s); code != 0 {
				t.Errorf("up --enqueue %s: exit %d\n%s", s, code, p.stderr.String())
			}
		}()
	}
	wg.Wait()
}

// awaitReady waits until every stack is READY in the journal. It fails when no deployment has
// become READY for stall: the workers stopped making progress. A busy machine makes them slower,
// and is no failure (a bound on the whole took 545 s for 29 of 30 deployments beside the
// real-gateway tests).
func (f *hosts) awaitReady(t testing.TB, stacks []string, stall time.Duration) {
	t.Helper()
	deadline, readyBefore := time.Now().Add(stall), -1
	for {
		records, err := f.journal.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ready := 0
		var pending []string
		for _, r := range records {
			if r.Status == journal.Ready && !r.Interrupted {
				ready++
			} else {
				pending = append(pending, fmt.Sprintf("%s %s (operation %q, interrupted %t, held by %q until %s, updated %s, %s)",
					r.Stack, r.Status, r.Operation, r.Interrupted, r.LeaseOwner, r.LeaseExpires.Format(time.RFC3339Nano),
					r.Updated.Format(time.RFC3339Nano), r.LastError))
			}
		}
		if ready == len(stacks) {
			return
		}
		if ready > readyBefore {
			deadline, readyBefore = time.Now().Add(stall), ready
		}
		if time.Now().After(deadline) {
			requests, _ := f.journal.Requests(context.Background())
			var open []string
			for _, q := range requests {
				if q.State != journal.RequestDone {
					open = append(open, fmt.Sprintf("%s of %s %s by %q since %s (%s)", q.ID, q.Stack, q.State, q.Owner, q.Taken.Format(time.RFC3339Nano), q.Error))
				}
			}
			var said strings.Builder
			for _, r := range records {
				if f.said != nil && (r.Status != journal.Ready || r.Interrupted) {
					fmt.Fprintf(&said, "\nwhat the workers said of %s:\n%s", r.Stack, f.said(r.Stack))
				}
			}
			t.Fatalf("%d of %d deployments READY, and none more for %s; the others: %v; requests not done: %v%s", ready, len(stacks), stall, pending, open, said.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// stacksIn returns the stacks a worker ran an operation of so far (its resource events).
func stacksIn(p *proc) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return distinct(p.events, EventResource, func(e Event) string { return e.Stack })
}

// TestWorkersTakeOverADeadPeer is the several-hosts proof: three workers, each with a host name
// of its own, one PostgreSQL journal, one S3 state backend, 12 deployments queued (more than the
// three workers run at once). One worker is SIGKILLed in the middle of its operations and another
// SIGTERMed: the SIGTERMed one exits within its drain, the third finishes everything. Every
// deployment ends READY, each simulated resource exists once, no state lock remains, every
// request is done, and each takeover of the dead worker's deployments came after its lease
// expired, never before. (TestWorkerContinuesWhatAStoppedPeerKilled is the SIGTERMed worker whose
// drain had to kill its engine.)
func TestWorkersTakeOverADeadPeer(t *testing.T) {
	t.Parallel()
	const deployments = 12
	f := newFleet(t, 6*time.Second)
	control(t, f.sim, simprovider.Control{DefaultDelay: "150ms"})
	var stacks []string
	for i := range deployments {
		stacks = append(stacks, fmt.Sprintf("fleet-%02d", i))
	}
	// One request carries a secret: queued encrypted, as the stack's secrets are.
	if p, code := f.run(t, "up", "--enqueue", "--stack", stacks[0], "--secret", "probe_secret=s3cr3t-fleet-probe"); code != 0 {
		t.Fatalf("up --enqueue with a secret: exit %d\n%s", code, p.stderr.String())
	}
	f.enqueue(t, stacks[1:])
	queued, _ := f.journal.Requests(context.Background())
	if len(queued) != deployments {
		t.Fatalf("%d requests queued, want %d", len(queued), deployments)
	}
	for _, q := range queued {
		if strings.Contains(q.Config, "s3cr3t-fleet-probe") || q.Stack == stacks[0] && !strings.Contains(q.Config, `"probe_secret":"v1:`) {
			t.Errorf("request %s of %s holds %s", q.ID, q.Stack, q.Config)
		}
	}

	listen := freeAddress(t)
	workers := map[string]*proc{}
	for _, host := range []string{"host-a", "host-b", "host-c"} {
		args := []string{"--concurrency", "3", "--poll", "300ms"}
		if host == "host-c" {
			args = append(args, "--listen", listen)
		}
		workers[host] = f.worker(t, host, args...)
	}
	// host-a dies with operations in flight.
	deadline := time.Now().Add(3 * time.Minute)
	for len(stacksIn(workers["host-a"])) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("host-a never ran two operations\n%s", workers["host-a"].stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	killed := time.Now()
	_ = syscall.Kill(-workers["host-a"].cmd.Process.Pid, syscall.SIGKILL)
	workers["host-a"].wait(time.Minute)

	// host-b is stopped with SIGTERM while it works: it exits within its drain.
	for len(stacksIn(workers["host-b"])) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("host-b never ran three operations\n%s", workers["host-b"].stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	termed := time.Now()
	_ = syscall.Kill(workers["host-b"].cmd.Process.Pid, syscall.SIGTERM)
	if code := workers["host-b"].wait(DefaultDrain + 15*time.Second); code != 0 {
		t.Errorf("host-b exited %d after SIGTERM\n%s", code, workers["host-b"].stderr.String())
	}
	if took := time.Since(termed); took > DefaultDrain+10*time.Second {
		t.Errorf("host-b took %s to exit after SIGTERM (drain %s)", took, DefaultDrain)
	}

	f.said = func(stack string) string {
		var lines []string
		for _, host := range []string{"host-a", "host-b", "host-c"} {
			p := workers[host]
			p.mu.Lock()
			for _, line := range p.lines {
				if strings.Contains(line, `"`+stack+`"`) {
					lines = append(lines, host+": "+line)
				}
			}
			p.mu.Unlock()
		}
		return strings.Join(lines[max(0, len(lines)-40):], "\n")
	}
	f.awaitReady(t, stacks, 5*time.Minute)

	// Each takeover of host-a's deployments waited for its lease to expire.
	var takeovers []string
	for _, host := range []string{"host-b", "host-c"} {
		p := workers[host]
		p.mu.Lock()
		for _, e := range p.events {
			if !strings.HasPrefix(e.TakenFrom, "host-a/") {
				continue
			}
			takeovers = append(takeovers, e.Stack)
			switch {
			case e.LeaseExpired == nil:
				t.Errorf("%s took over %s without saying when host-a's lease expired", host, e.Stack)
			case e.Time.Before(*e.LeaseExpired):
				t.Errorf("%s took over %s at %s, before host-a's lease expired at %s", host, e.Stack, e.Time, *e.LeaseExpired)
			case e.LeaseExpired.Before(killed.Add(-f.leaseTTL)):
				t.Errorf("host-a's lease of %s expired at %s, before host-a was killed at %s: it was not alive", e.Stack, *e.LeaseExpired, killed)
			}
		}
		p.mu.Unlock()
	}
	if len(takeovers) == 0 {
		t.Errorf("nobody took over what host-a held (%v)", stacksIn(workers["host-a"]))
	}
	t.Logf("host-a ran %v when killed; taken over: %v", stacksIn(workers["host-a"]), takeovers)

	// Each simulated resource once: six per deployment.
	c := f.sim.Load(t)
	count := map[string]int{}
	for _, r := range c.Resources {
		count[r.URN]++
	}
	for urn, n := range count {
		if n != 1 {
			t.Errorf("%s exists %d times", urn, n)
		}
	}
	if len(count) != 6*len(stacks) {
		t.Errorf("%d resources in the simulated cloud, want %d", len(count), 6*len(stacks))
	}
	if locks := f.moto.AWS(t, "s3api", "list-objects-v2", "--bucket", fleetBucket, "--prefix", "states/.pulumi/locks/",
		"--query", "Contents[].Key", "--output", "text"); strings.TrimSpace(locks) != "None" {
		t.Errorf("state locks left: %s", locks)
	}
	requests, err := f.journal.Requests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range requests {
		if q.State != journal.RequestDone {
			t.Errorf("request %s of %s is %s (%s)", q.ID, q.Stack, q.State, q.Error)
		}
	}
	// host-c's /healthz and /metrics: the journal as it is now, and its own counts.
	if body, code := httpGet(t, "http://"+listen+"/healthz"); code != http.StatusOK || !strings.HasPrefix(body, "ok: host-c/") {
		t.Errorf("/healthz: %d %q", code, body)
	}
	metrics, code := httpGet(t, "http://"+listen+"/metrics")
	for _, want := range []string{fmt.Sprintf(`clawdeploy_deployments{status="READY"} %d`, deployments),
		fmt.Sprintf(`clawdeploy_requests{state="done"} %d`, deployments),
		`clawdeploy_requests{state="queued"} 0`, "clawdeploy_operations_in_flight 0", "clawdeploy_takeovers_total",
		`clawdeploy_operations_total{operation="up"}`, `clawdeploy_operation_failures_total{operation="up"} 0`} {
		if code != http.StatusOK || !strings.Contains(metrics, want) {
			t.Errorf("/metrics (%d) lacks %s:\n%s", code, want, metrics)
		}
	}
	_ = syscall.Kill(workers["host-c"].cmd.Process.Pid, syscall.SIGTERM)
	if code := workers["host-c"].wait(time.Minute); code != 0 {
		t.Errorf("host-c exited %d after SIGTERM\n%s", code, workers["host-c"].stderr.String())
	}
}

// TestWorkerContinuesWhatAStoppedPeerKilled: a worker SIGTERMed while its engine is blocked
// (a create that outlasts --drain) kills that engine, which leaves its state lock in the S3
// backend, marks the deployment interrupted and ends its lease. A worker on another host then
// takes the deployment over: it may remove that lock, since the process that held it was the
// stopped worker's (the lease says whose it was, and that it ended), and finishes the up and the
// request. The fleet test met it: the lock was judged live forever, the takeover refused
// silently at every sweep, and the deployment stayed interrupted.
func TestWorkerContinuesWhatAStoppedPeerKilled(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 6*time.Second)
	control(t, f.sim, simprovider.Control{Block: []string{"create urn:pulumi:dev::openclaw::sim:index:Thing::left-2"}})
	f.enqueue(t, []string{"dev"})
	b := f.workerWith(t, "host-b", []string{"--drain", "2s"}, "--poll", "200ms")
	b.waitFor("the creation of left-2", creating("left-2"))
	_ = syscall.Kill(b.cmd.Process.Pid, syscall.SIGTERM)
	if code := b.wait(time.Minute); code != 0 {
		t.Fatalf("host-b exited %d after SIGTERM\n%s", code, b.stderr.String())
	}
	// What the stopped worker left: its engine's lock, the deployment interrupted and free.
	if locks := f.moto.AWS(t, "s3api", "list-objects-v2", "--bucket", fleetBucket, "--prefix", "states/.pulumi/locks/",
		"--query", "Contents[].Key", "--output", "text"); strings.TrimSpace(locks) == "None" {
		t.Fatal("host-b's engine left no state lock: the test no longer kills an engine in its drain")
	}
	rec, err := f.journal.Get(context.Background(), "dev")
	if err != nil || !rec.Interrupted || rec.Leased(time.Now()) {
		t.Fatalf("after host-b's stop: %+v %v", rec, err)
	}

	control(t, f.sim, simprovider.Control{})
	c := f.worker(t, "host-c", "--poll", "200ms")
	f.said = func(string) string {
		c.mu.Lock()
		defer c.mu.Unlock()
		return strings.Join(c.lines, "\n")
	}
	f.awaitReady(t, []string{"dev"}, 5*time.Minute) // a bound for a busy machine, not a figure
	if q, _ := f.journal.Requests(context.Background()); len(q) != 1 || q[0].State != journal.RequestDone {
		t.Errorf("requests: %+v", q)
	}
	if locks := f.moto.AWS(t, "s3api", "list-objects-v2", "--bucket", fleetBucket, "--prefix", "states/.pulumi/locks/",
		"--query", "Contents[].Key", "--output", "text"); strings.TrimSpace(locks) != "None" {
		t.Errorf("state locks left: %s", locks)
	}
	count := map[string]int{}
	for _, r := range f.sim.Load(t).Resources {
		count[r.URN]++
	}
	for urn, n := range count {
		if n != 1 {
			t.Errorf("%s exists %d times", urn, n)
		}
	}
	if len(count) != 6 {
		t.Errorf("%d resources in the simulated cloud, want 6", len(count))
	}
	_ = syscall.Kill(c.cmd.Process.Pid, syscall.SIGTERM)
	if code := c.wait(time.Minute); code != 0 {
		t.Errorf("host-c exited %d after SIGTERM\n%s", code, c.stderr.String())
	}
}

// openSQLite opens a journal of the test's own, closed when the test ends.
func openSQLite(t *testing.T) *journal.SQL {
	t.Helper()
	j, err := journal.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

// freeAddress returns a loopback address nobody listens on, one the kernel does not hand out.
func freeAddress(t testing.TB) string {
	t.Helper()
	port, err := loopback.Port()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// httpGet returns a URL's body and status.
func httpGet(t testing.TB, u string) (string, int) {
	t.Helper()
	resp, err := http.Get(u) //nolint:gosec,noctx // a loopback address of the test's
	if err != nil {
		t.Errorf("GET %s: %v", u, err)
		return "", 0
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

// TestLostLeaseStopsTheEngine is the fencing: a driver whose lease another owner took (its own
// having expired, say after a long pause) stops its engine at its next heartbeat, records nothing
// more, and leaves the deployment to the new owner: never two engines on one deployment.
func TestLostLeaseStopsTheEngine(t *testing.T) {
	t.Parallel()
	sim := enginetest.NewSim(t, bins)
	control(t, sim, simprovider.Control{DefaultDelay: "1500ms"})
	ev := &events{}
	j := openSQLite(t)
	if err := os.MkdirAll(sim.StateDir+"/state", 0o700); err != nil {
		t.Fatal(err)
	}
	d, err := New(t.Context(), &Options{Program: simprogram.Six, Stages: &simprogram.SixStages, StateDir: sim.StateDir,
		BackendURL: "file://" + sim.StateDir + "/state", PulumiRoot: sim.PulumiRoot, Env: sim.Env, Finder: simprogram.Finder{Cloud: sim.Cloud},
		Waiter: NoWait, Events: ev, Journal: j, LeaseTTL: 1500 * time.Millisecond, Drain: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := d.Up(context.Background(), "dev", nil); done <- err }()
	deadline := time.Now().Add(2 * time.Minute)
	for len(ev.of(EventResource)) == 0 {
		select {
		case err := <-done:
			t.Fatalf("the up ended before its engine started: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the up never started its engine")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Another host takes the deployment over, as if this driver's lease had expired.
	if _, err := j.Acquire(context.Background(), "dev", "host-b/1/1/thief", time.Now(), time.Now().Add(time.Hour),
		func(string) bool { return true }); err != nil {
		t.Fatal(err)
	}
	stolen := time.Now()
	var lost *LeaseLostError
	select {
	case err := <-done:
		if !errors.As(err, &lost) || lost.To != "host-b/1/1/thief" || ExitCode(err) != ExitHeld {
			t.Fatalf("the up returned %v (exit %d), want the lease lost to host-b", err, ExitCode(err))
		}
	case <-time.After(time.Minute):
		t.Fatal("the up went on after its lease was lost")
	}
	// A heartbeat and the drain, and slack for a busy machine; an unfenced up would run on.
	if took := time.Since(stolen); took > 1500*time.Millisecond/3+5*time.Second+10*time.Second {
		t.Errorf("the engine stopped %s after the lease was lost (heartbeat %s, drain 5s)", took, 500*time.Millisecond)
	}
	if rec, _ := j.Get(context.Background(), "dev"); rec.LeaseOwner != "host-b/1/1/thief" || rec.Interrupted {
		t.Errorf("the driver wrote over the new owner's record: %+v", rec)
	}
	for deadline := time.Now().Add(30 * time.Second); len(strays(sim)) > 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if s := strays(sim); len(s) > 0 {
		t.Errorf("the engine's processes still run 30 s after the up returned: %v", s)
	}
}

// TestWorkerRequeuesARequestItsOwnerNeverBegan: a worker took a request, took the deployment's
// lease and died before its up was recorded as begun (the fleet test met it once: decrypting the
// request's secrets takes a second). Nothing would resume such a deployment: the request is
// queued again once the dead worker's lease expired, and another worker runs it to READY.
func TestWorkerRequeuesARequestItsOwnerNeverBegan(t *testing.T) {
	t.Parallel()
	sim := enginetest.NewSim(t, bins)
	j := openSQLite(t)
	ctx := context.Background()
	long := time.Now().Add(-time.Hour)
	if err := j.Enqueue(ctx, journal.Request{ID: "r1", Stack: "dev", Target: ec2spot.Name, Operation: OpUp}, long); err != nil {
		t.Fatal(err)
	}
	dead := "host-z/4194304/1/gone"
	if taken, err := j.TakeRequests(ctx, dead, "", long, 1); err != nil || len(taken) != 1 {
		t.Fatalf("taking: %+v %v", taken, err)
	}
	if _, err := j.Ensure(ctx, "dev", ec2spot.Name, long); err != nil {
		t.Fatal(err)
	}
	// A second after it took the request, it took the deployment: then it died.
	if _, err := j.Acquire(ctx, "dev", dead, long.Add(time.Second), long.Add(time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(sim.StateDir+"/state", 0o700); err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	d, err := New(t.Context(), &Options{Program: simprogram.Six, Stages: &simprogram.SixStages, StateDir: sim.StateDir,
		BackendURL: "file://" + sim.StateDir + "/state", PulumiRoot: sim.PulumiRoot, Env: sim.Env, Finder: simprogram.Finder{Cloud: sim.Cloud},
		Waiter: NoWait, Events: ev, Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fleet.Work(wctx, d, fleet.Options{Poll: 100 * time.Millisecond}) }()
	deadline := time.Now().Add(45 * time.Second)
	for {
		q, _ := j.GetRequest(ctx, "r1")
		if q.State == journal.RequestDone {
			break
		}
		if q.State == journal.RequestFailed || time.Now().After(deadline) {
			stop()
			t.Fatalf("the request is %s (%s)", q.State, q.Error)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if rec, _ := j.Get(ctx, "dev"); rec.Status != journal.Ready {
		t.Errorf("dev: %+v", rec)
	}
}

// TestWorkerTakesOnlyItsTargetsWork: one journal serves a fleet of both targets, a worker for
// each. The ec2-spot worker leaves the vps deployments alone: a queued vps request stays queued
// (it failed it before, running the ec2-spot program's refusal of a vps stack), a vps deployment
// a dead worker left stays for the vps workers to claim, and one stuck INSTALLING for their stale
// sweep (it warned of it at each of its own, unable to mark it).
func TestWorkerTakesOnlyItsTargetsWork(t *testing.T) {
	t.Parallel()
	sim := enginetest.NewSim(t, bins)
	j := openSQLite(t)
	ctx := context.Background()
	long := time.Now().Add(-time.Hour)
	if err := j.Enqueue(ctx, journal.Request{ID: "r1", Stack: "shop", Target: vps.Name, Operation: OpUp}, long); err != nil {
		t.Fatal(err)
	}
	dead := "host-z/4194304/1/gone"
	leftBy(t, j, "abandoned", vps.Name, dead, long, journal.Provisioning)
	// INSTALLING and silent for an hour, its owner dead: stuck, for a vps worker's sweep.
	leftBy(t, j, "silent", vps.Name, dead, long, journal.Provisioning, journal.Installing)
	if err := os.MkdirAll(sim.StateDir+"/state", 0o700); err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	d, err := New(t.Context(), &Options{Program: simprogram.Six, Stages: &simprogram.SixStages, StateDir: sim.StateDir,
		BackendURL: "file://" + sim.StateDir + "/state", PulumiRoot: sim.PulumiRoot, Env: sim.Env, Waiter: NoWait, Journal: j, Events: ev})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	stats := &fleet.Stats{}
	done := make(chan error, 1)
	go func() {
		done <- fleet.Work(wctx, d, fleet.Options{Poll: 50 * time.Millisecond, StaleEvery: 50 * time.Millisecond, Stats: stats})
	}()
	// Sweeps answered for a second: twenty of them at least, each of which took what it saw.
	first := time.Now()
	for deadline := time.Now().Add(time.Minute); !stats.LastSweep().After(first.Add(time.Second)); {
		if time.Now().After(deadline) {
			stop()
			t.Fatal("the worker's sweeps never answered")
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if q, _ := j.GetRequest(ctx, "r1"); q.State != journal.RequestQueued || q.Owner != "" {
		t.Errorf("the vps request is %s (owner %q, %q): want it queued, for a vps worker", q.State, q.Owner, q.Error)
	}
	if rec, _ := j.Get(ctx, "abandoned"); rec.LeaseOwner != dead || rec.Status != journal.Provisioning {
		t.Errorf("the abandoned vps deployment: %+v, want it as its dead owner left it", rec)
	}
	if rec, _ := j.Get(ctx, "silent"); rec.Status != journal.Installing {
		t.Errorf("the silent vps deployment: %+v, want it INSTALLING", rec)
	}
	for _, e := range ev.of(EventDiagnostic) {
		if e.Stack == "silent" || e.Stack == "shop" || e.Stack == "abandoned" {
			t.Errorf("the ec2-spot worker spoke of a vps deployment: %+v", e)
		}
	}
}

// leftBy makes stack a deployment of target whose up owner began at at, reaching statuses, and
// whose lease expired a minute later: what a dead owner leaves.
func leftBy(t *testing.T, j journal.Journal, stack, target, owner string, at time.Time, statuses ...journal.Status) {
	t.Helper()
	ctx := context.Background()
	if _, err := j.Ensure(ctx, stack, target, at); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Acquire(ctx, stack, owner, at, at.Add(time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	up := OpUp
	for _, st := range statuses {
		if _, err := j.Update(ctx, stack, owner, at, journal.Change{Status: ptrStatus(st), Operation: &up}); err != nil {
			t.Fatal(err)
		}
	}
}

// stalledEnsure is a journal whose Ensure waits for its caller to be stopped: a worker that takes
// a request and is SIGTERMed before the request's operation began.
type stalledEnsure struct {
	journal.Journal
	reached chan struct{}
	once    sync.Once
}

func (j *stalledEnsure) Ensure(ctx context.Context, stack, target string, now time.Time) (journal.Record, error) {
	j.once.Do(func() { close(j.reached) })
	<-ctx.Done()
	return journal.Record{}, ctx.Err()
}

// TestStoppedWorkerQueuesAgainWhatItDidNotBegin: a worker stopped between taking a request and
// beginning its operation leaves the request queued for the next worker, never failed.
func TestStoppedWorkerQueuesAgainWhatItDidNotBegin(t *testing.T) {
	t.Parallel()
	sim := enginetest.NewSim(t, bins)
	sql := openSQLite(t)
	if err := sql.Enqueue(context.Background(), journal.Request{ID: "r1", Stack: "dev", Target: ec2spot.Name, Operation: OpUp}, time.Now()); err != nil {
		t.Fatal(err)
	}
	j := &stalledEnsure{Journal: sql, reached: make(chan struct{})}
	d, err := New(t.Context(), &Options{Program: simprogram.Six, Stages: &simprogram.SixStages, StateDir: sim.StateDir,
		BackendURL: "file://" + sim.StateDir + "/state", PulumiRoot: sim.PulumiRoot, Env: sim.Env, Waiter: NoWait, Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fleet.Work(ctx, d, fleet.Options{Poll: 50 * time.Millisecond}) }()
	select {
	case <-j.reached:
	case <-time.After(time.Minute):
		t.Fatal("the worker never began the request")
	}
	stop() // SIGTERM
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if q, _ := sql.GetRequest(context.Background(), "r1"); q.State != journal.RequestQueued || q.Owner != "" {
		t.Errorf("after the stop, the request is %s (owner %q, %s): want it queued again", q.State, q.Owner, q.Error)
	}
}

// stalledGet is a journal whose first Get waits for its caller to be stopped: a worker that
// claimed a dead owner's deployment and is SIGTERMed before its resume took the deployment.
type stalledGet struct {
	journal.Journal
	reached chan struct{}
	once    sync.Once
}

func (j *stalledGet) Get(ctx context.Context, stack string) (journal.Record, error) {
	first := false
	j.once.Do(func() { first = true; close(j.reached) })
	if first {
		<-ctx.Done()
		return journal.Record{}, ctx.Err()
	}
	return j.Journal.Get(ctx, stack)
}

// TestStoppedWorkerReleasesAClaimItNeverTook: a worker stopped between claiming a dead owner's
// deployment and its resume taking it lets the claim go as it stops, so the next worker takes
// the deployment at once rather than after the claim's lease expires; and it leaves the dead
// owner's request running, for the worker that finishes the deployment to finish, never failed
// with its own stop (the fleet test met it: the request failed, "context canceled", while the
// deployment was still to resume).
func TestStoppedWorkerReleasesAClaimItNeverTook(t *testing.T) {
	t.Parallel()
	sim := enginetest.NewSim(t, bins)
	sql := openSQLite(t)
	ctx := context.Background()
	long := time.Now().Add(-time.Hour)
	dead := "host-z/4194304/1/gone"
	if err := sql.Enqueue(ctx, journal.Request{ID: "r1", Stack: "dev", Target: ec2spot.Name, Operation: OpUp}, long); err != nil {
		t.Fatal(err)
	}
	if taken, err := sql.TakeRequests(ctx, dead, "", long, 1); err != nil || len(taken) != 1 {
		t.Fatalf("taking: %+v %v", taken, err)
	}
	leftBy(t, sql, "dev", ec2spot.Name, dead, long, journal.Provisioning)
	j := &stalledGet{Journal: sql, reached: make(chan struct{})}
	d, err := New(t.Context(), &Options{Program: simprogram.Six, Stages: &simprogram.SixStages, StateDir: sim.StateDir,
		BackendURL: "file://" + sim.StateDir + "/state", PulumiRoot: sim.PulumiRoot, Env: sim.Env, Waiter: NoWait,
		Journal: j, LeaseTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fleet.Work(wctx, d, fleet.Options{Poll: 50 * time.Millisecond}) }()
	select {
	case <-j.reached:
	case <-time.After(time.Minute):
		stop()
		t.Fatal("the worker never began the takeover")
	}
	if rec, _ := sql.Get(ctx, "dev"); rec.LeaseOwner == dead || rec.LeaseOwner == "" {
		t.Fatalf("the worker's sweep did not claim dev: %+v", rec)
	}
	stop() // SIGTERM
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The claim's lease was an hour: only a released claim lets the next sweep take it now.
	next, err := sql.ClaimStale(ctx, "host-y/1/1/next", "", time.Now(), time.Now().Add(time.Minute), 10)
	if err != nil || len(next) != 1 || next[0].Stack != "dev" {
		rec, _ := sql.Get(ctx, "dev")
		t.Errorf("the next worker's sweep claimed %+v (%v); dev is held by %q until %s", next, err, rec.LeaseOwner, rec.LeaseExpires)
	}
	if q, _ := sql.GetRequest(ctx, "r1"); q.State != journal.RequestRunning || q.Owner != dead {
		t.Errorf("after the stop, the dead owner's request is %s (owner %q, %q): want it still running, for the takeover to finish", q.State, q.Owner, q.Error)
	}
}
