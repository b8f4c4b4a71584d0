package automation_test

import (
	"context"
	"sync"
	"testing"
	"time"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/internal/simprogram"
	"github.com/clawdeploy/clawdeploy/internal/simprovider"
	"github.com/clawdeploy/clawdeploy/journal"
)

// oldFixedWait is what the design before this driver waited before touching a deployment whose
// owner stopped answering: a lease of 45 s had to run out.
const oldFixedWait = 45 * time.Second

// firstResource is a Sink that notes when the first resource event arrives.
type firstResource struct {
	at chan time.Time
}

func (f *firstResource) Emit(e Event) {
	if e.Type == EventResource {
		select {
		case f.at <- time.Now():
		default:
		}
	}
}

// BenchmarkResumeDeadOwner measures, for a deployment whose driver was SIGKILLed on this host
// mid-up (its lease still valid for a minute, its state lock naming the dead pid, a create
// pending, its CLI orphaned), the time from Resume's start to the engine's first resource event.
// Run with -benchtime Nx: each iteration first makes such a deployment, untimed.
func BenchmarkResumeDeadOwner(b *testing.B) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		sim := enginetest.NewSim(b, bins)
		if err := simprovider.WriteControl(sim.Control, simprovider.Control{DefaultDelay: "100ms"}); err != nil {
			b.Fatal(err)
		}
		p := startSim(b, sim, "six", "up", "--stack", "dev")
		if !p.killAt(3, false) {
			b.Fatal("the up finished before it could be killed")
		}
		first := &firstResource{at: make(chan time.Time, 1)}
		d, err := New(context.Background(), &Options{
			Program: simprogram.Six, Stages: &simprogram.SixStages, StateDir: sim.StateDir,
			PulumiRoot: sim.PulumiRoot, Env: sim.Env, Finder: simprogram.Finder{Cloud: sim.Cloud}, Events: first,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		done := make(chan error, 1)
		go func() { _, err := d.Resume(context.Background(), "dev"); done <- err }()
		select {
		case at := <-first.at:
			total += at.Sub(start)
		case err := <-done:
			b.Fatalf("Resume ended with no resource event: %v", err)
		}
		b.StopTimer()
		if err := <-done; err != nil {
			b.Fatalf("Resume: %v", err)
		}
		_ = d.Close()
	}
	perOp := total / time.Duration(b.N)
	b.ReportMetric(float64(perOp.Milliseconds()), "ms-to-first-resource-event")
	b.ReportMetric(oldFixedWait.Seconds()/perOp.Seconds(), "x-faster-than-45s-wait")
}

// BenchmarkResumeReady measures Resume on a deployment that is READY: the journal answers, and
// no engine runs (a resource event would fail the benchmark).
func BenchmarkResumeReady(b *testing.B) {
	sim := enginetest.NewSim(b, bins)
	ev := &events{}
	d, err := New(context.Background(), &Options{
		Program: simprogram.Six, Stages: &simprogram.SixStages, StateDir: sim.StateDir,
		PulumiRoot: sim.PulumiRoot, Env: sim.Env, Finder: simprogram.Finder{Cloud: sim.Cloud}, Events: ev,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = d.Close() }()
	if res, err := d.Up(context.Background(), "dev", nil); err != nil || res.Record.Status != journal.Ready {
		b.Fatalf("Up: %v", err)
	}
	before := len(ev.of(EventResource))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := d.Resume(context.Background(), "dev")
		if err != nil || res.Record.Status != journal.Ready {
			b.Fatalf("Resume: %+v, %v", res, err)
		}
	}
	b.StopTimer()
	if n := len(ev.of(EventResource)) - before; n != 0 {
		b.Fatalf("Resume of a READY deployment ran the engine: %d resource events", n)
	}
}

// BenchmarkResumeReadyProcess is BenchmarkResumeReady as a backend sees it: a whole
// `clawdeploy resume --stack dev` process (start, journal, answer, exit) on a READY deployment.
func BenchmarkResumeReadyProcess(b *testing.B) {
	sim := enginetest.NewSim(b, bins)
	if p, code := runSim(b, sim, "six", "up", "--stack", "dev"); code != 0 {
		b.Fatalf("up exited %d\n%s", code, p.stderr.String())
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, code := runSim(b, sim, "six", "resume", "--stack", "dev")
		if code != 0 || p.resourceEvents() != 0 {
			b.Fatalf("resume exited %d after %d resource events\n%s", code, p.resourceEvents(), p.stderr.String())
		}
	}
}

// statusTimes is a Sink that notes when each status was announced.
type statusTimes struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (s *statusTimes) Emit(e Event) {
	if e.Type != EventStatus {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at[e.Status] = time.Now()
}

// BenchmarkHeal measures a heal of the real program on the simulated provider, from Heal's start
// to READY, after the instance was terminated (untimed), and splits it: the engine's run (from
// PROVISIONING to INSTALLING: refresh, a new instance, its attachment), the setup wait (the
// simulated instance's, immediate), and the driver's own share, the rest (the host check, the
// lease, the recovery steps, the journal). Run with -benchtime Nx.
func BenchmarkHeal(b *testing.B) {
	sim := enginetest.NewSim(b, bins)
	times := &statusTimes{at: map[string]time.Time{}}
	d, err := New(context.Background(), &Options{
		StateDir: sim.StateDir, PulumiRoot: sim.PulumiRoot, Env: sim.Env, Finder: simprogram.Finder{Cloud: sim.Cloud},
		Waiter: simprogram.InstanceWaiter(sim.Cloud), HostChecker: simprogram.HostChecker{Cloud: sim.Cloud, Output: "instance_id"},
		FinalSnapshots: simprogram.FinalSnapshots{Cloud: sim.Cloud}, Events: times,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = d.Close() }()
	if _, err := d.Up(context.Background(), "dev", &UpOptions{Config: ConfigInput{Values: map[string]string{
		"aws:region": "me-central-1", "availability_zone": "me-central-1a"}}}); err != nil {
		b.Fatalf("Up: %v", err)
	}
	var total, engine, setup time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c, err := simprovider.Load(sim.Cloud)
		if err != nil {
			b.Fatal(err)
		}
		instances := c.OfType(simprovider.InstanceType)
		if len(instances) != 1 {
			b.Fatalf("%d instances", len(instances))
		}
		if _, err := simprovider.Terminate(sim.Cloud, instances[0].ID); err != nil {
			b.Fatal(err)
		}
		times.at = map[string]time.Time{}
		b.StartTimer()
		start := time.Now()
		res, err := d.Heal(context.Background(), "dev")
		end := time.Now()
		b.StopTimer()
		if err != nil || !res.Healed || res.Record.Status != journal.Ready {
			b.Fatalf("Heal: %+v, %v", res, err)
		}
		total += end.Sub(start)
		engine += times.at["INSTALLING"].Sub(times.at["PROVISIONING"])
		setup += times.at["READY"].Sub(times.at["INSTALLING"])
	}
	n := time.Duration(b.N)
	own := (total - engine - setup) / n
	b.ReportMetric(float64((total / n).Milliseconds()), "ms-heal-to-READY")
	b.ReportMetric(float64((engine / n).Milliseconds()), "ms-engine")
	b.ReportMetric(float64(own.Milliseconds()), "ms-driver-own")
	b.ReportMetric(own.Seconds()/(total/n).Seconds(), "driver-share")
}
