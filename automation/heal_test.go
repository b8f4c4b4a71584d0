package automation_test

import (
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/internal/simprovider"
)

// statuses are the statuses a process announced, in order.
func (p *proc) statuses() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, e := range p.events {
		if e.Type == EventStatus {
			out = append(out, e.Status)
		}
	}
	return out
}

// liveInstance returns the one instance of the simulated cloud, failing unless there is one.
func liveInstance(t *testing.T, sim *enginetest.Sim) simprovider.Resource {
	t.Helper()
	instances := sim.Load(t).OfType(simprovider.InstanceType)
	if len(instances) != 1 {
		t.Fatalf("%d instances in the simulated cloud, want 1: %+v", len(instances), instances)
	}
	return instances[0]
}

// TestHealAfterASpotInterruption runs the real program on the simulated provider: a heal of a
// running host runs nothing; after the instance is terminated, with the first instance type out
// of capacity, heal goes INTERRUPTED → PROVISIONING → READY on the second type, with the same
// data volume, one live instance and only its attachment; with every type out of capacity the
// heal fails (ERROR), heal --all waits for the backoff, and once capacity is back a heal brings
// it READY on the first type again.
func TestHealAfterASpotInterruption(t *testing.T) {
	t.Parallel()
	sim := enginetest.NewSim(t, bins)
	if p, code := runSim(t, sim, "real", "up", "--stack", "dev", "--config", "aws:region=me-central-1",
		"--config", "availability_zone=me-central-1a", "--config", "instance_types=t4g.small,t4g.medium",
		"--secret", "gateway_token=gw-heal"); code != 0 {
		t.Fatalf("up: exit %d\n%s", code, p.stderr.String())
	}
	first := liveInstance(t, sim)
	volumes := sim.Load(t).OfType("aws:ebs/volume:Volume")
	if len(volumes) != 1 || first.Inputs["instanceType"] != "t4g.small" {
		t.Fatalf("after up: %d volumes, instance type %v", len(volumes), first.Inputs["instanceType"])
	}
	volume := volumes[0].ID

	if p, code := runSim(t, sim, "real", "heal", "--stack", "dev"); code != 0 || p.ranEngine() {
		t.Errorf("heal of a running host: exit %d, ran the engine %v\n%s", code, p.ranEngine(), p.stderr.String())
	}

	if _, err := simprovider.Terminate(sim.Cloud, first.ID); err != nil {
		t.Fatal(err)
	}
	control(t, sim, simprovider.Control{NoCapacity: []string{"t4g.small"}})
	start := time.Now()
	p, code := runSim(t, sim, "real", "heal", "--stack", "dev")
	if code != 0 {
		t.Fatalf("heal: exit %d\n%s", code, p.stderr.String())
	}
	t.Logf("heal after an interruption: READY again in %.1fs", time.Since(start).Seconds())
	if got := p.statuses(); !slices.Equal(got, []string{"INTERRUPTED", "PROVISIONING", "INSTALLING", "READY"}) {
		t.Errorf("statuses %v", got)
	}
	second := liveInstance(t, sim)
	c := sim.Load(t)
	attachments := c.OfType(simprovider.AttachmentType)
	if second.ID == first.ID || second.Inputs["instanceType"] != "t4g.medium" {
		t.Errorf("the new instance is %s of type %v, want another of type t4g.medium", second.ID, second.Inputs["instanceType"])
	}
	if v := c.OfType("aws:ebs/volume:Volume"); len(v) != 1 || v[0].ID != volume {
		t.Errorf("data volumes %+v, want %s kept", v, volume)
	}
	if len(attachments) != 1 || attachments[0].Inputs["instanceId"] != second.ID || attachments[0].Inputs["volumeId"] != volume {
		t.Errorf("attachments %+v, want one of %s to %s", attachments, volume, second.ID)
	}
	rec := status(t, sim, "real", "dev")
	if rec["status"] != "READY" || rec["interruptions"] != float64(1) || rec["interruptedInstance"] != first.ID ||
		rec["recoveredAt"] == nil || rec["downtimeSeconds"] == nil {
		t.Errorf("journal after the heal: %v", rec)
	}
	for _, pr := range checkRecovered(t, sim, "real", "dev", 31) {
		t.Error(pr)
	}

	// No capacity at all: the heal fails, and heal --all waits for the backoff.
	if _, err := simprovider.Terminate(sim.Cloud, second.ID); err != nil {
		t.Fatal(err)
	}
	control(t, sim, simprovider.Control{NoCapacity: []string{"t4g.small", "t4g.medium"}})
	p, code = runSim(t, sim, "real", "heal", "--stack", "dev")
	if code != ExitFailed || !strings.Contains(p.stderr.String(), "no Spot capacity in me-central-1a for t4g.small, t4g.medium") {
		t.Errorf("heal without capacity: exit %d\n%s", code, p.stderr.String())
	}
	rec = status(t, sim, "real", "dev")
	if rec["status"] != "ERROR" || rec["healFailures"] != float64(1) || rec["healAfter"] == nil {
		t.Errorf("journal after the failed heal: %v", rec)
	}
	if p, code := runSim(t, sim, "real", "heal", "--all"); code != 0 || p.ranEngine() {
		t.Errorf("heal --all inside the backoff: exit %d, ran the engine %v\n%s", code, p.ranEngine(), p.stderr.String())
	}
	control(t, sim, simprovider.Control{})
	if p, code := runSim(t, sim, "real", "heal", "--stack", "dev"); code != 0 {
		t.Fatalf("heal once capacity is back: exit %d\n%s", code, p.stderr.String())
	}
	if third := liveInstance(t, sim); third.Inputs["instanceType"] != "t4g.small" {
		t.Errorf("after the capacity came back the instance is %v, want the first type again", third.Inputs["instanceType"])
	}
	third := liveInstance(t, sim)
	if rec := status(t, sim, "real", "dev"); rec["status"] != "READY" || rec["interruptions"] != float64(2) || rec["healFailures"] != nil {
		t.Errorf("journal once healed: %v", rec)
	}
	for _, pr := range checkRecovered(t, sim, "real", "dev", 31) {
		t.Error(pr)
	}

	// A worker heals, with no other command run: it checks every --heal-every, leaves the
	// running host alone, and brings back the one taken away.
	w := startSim(t, sim, "real", "worker", "--heal-every", "1s", "--poll", "500ms")
	w.waitFor("a check of the running host", func(e Event) bool { return strings.Contains(e.Message, "nothing to heal") })
	if w.ranEngine() {
		t.Errorf("the worker ran the engine on a running host:\n%s", w.stderr.String())
	}
	if _, err := simprovider.Terminate(sim.Cloud, third.ID); err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	for w.resourceEvents() == 0 || !slices.Contains(w.statuses(), "READY") {
		if time.Since(lost) > 5*time.Minute {
			t.Fatalf("the worker did not heal within 5 minutes; statuses %v\n%s", w.statuses(), w.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the worker healed a lost host in %.1fs", time.Since(lost).Seconds())
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	if code := w.wait(time.Minute); code != 0 {
		t.Errorf("the worker exited %d on SIGTERM\n%s", code, w.stderr.String())
	}
	if got := w.statuses(); !slices.Equal(got, []string{"INTERRUPTED", "PROVISIONING", "INSTALLING", "READY"}) {
		t.Errorf("the worker's heal went %v", got)
	}
	if fourth := liveInstance(t, sim); fourth.ID == third.ID {
		t.Errorf("after the worker's heal the instance is still %s", third.ID)
	}
	if v := sim.Load(t).OfType("aws:ebs/volume:Volume"); len(v) != 1 || v[0].ID != volume {
		t.Errorf("data volumes %+v, want %s kept", v, volume)
	}
	if rec := status(t, sim, "real", "dev"); rec["status"] != "READY" || rec["interruptions"] != float64(3) {
		t.Errorf("journal after the worker's heal: %v", rec)
	}
	for _, pr := range checkRecovered(t, sim, "real", "dev", 31) {
		t.Error(pr)
	}
}
