package automation_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/internal/simprogram"
	"github.com/clawdeploy/clawdeploy/internal/simprovider"
	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/setup"
	"github.com/clawdeploy/clawdeploy/targets/ec2spot"
)

// exampleConfig is the runbook's example stack, as a backend passes it.
func exampleConfig() ConfigInput {
	return ConfigInput{
		Values:  map[string]string{"aws:region": "me-central-1", "availability_zone": "me-central-1a", "instance_type": "t4g.small"},
		Secrets: map[string]string{"gateway_token": "gw-sim-token"},
	}
}

// TestRealProgramOnTheSimulatedProvider runs ec2spot.Program through the real engine: up to READY
// through every stage, a change that replaces the instance, and destroy.
func TestRealProgramOnTheSimulatedProvider(t *testing.T) {
	t.Parallel()
	sim := enginetest.NewSim(t, bins)
	sim.Registry.Push(t, "ghcr.io/openclaw/openclaw:2026.2.26") // the release the second up deploys
	d, ev, progress := newSimDriver(t, sim, nil, nil)
	ctx := t.Context()

	res, err := d.Up(ctx, "dev", &UpOptions{Config: exampleConfig()})
	if err != nil {
		t.Fatalf("Up: %v\n%s", err, progress)
	}
	if res.Record.Status != journal.Ready || res.Record.Stage != StageSetupComplete {
		t.Errorf("journal: %+v", res.Record)
	}
	var stages []string
	for _, e := range ev.of(EventStage) {
		stages = append(stages, e.Stage)
	}
	for _, want := range ec2spot.Stages.Order {
		if !slices.Contains(stages, want) {
			t.Errorf("stage %s never reported; reported %v", want, stages)
		}
	}
	c := sim.Load(t)
	// 1 volume, 2 parameters, 5 network, 7 bucket, 7 monitoring, 3 role, 2 instance, 1 attachment, 3 DLM.
	if n := len(c.Resources); n != 31 {
		t.Errorf("%d resources in the cloud, want 31", n)
	}
	for urn, n := range countByURN(c) {
		if n != 1 {
			t.Errorf("%s exists %d times", urn, n)
		}
	}
	firstInstance := res.Outputs["instance_id"].Value

	// A new image changes the user-data, which replaces the instance (a one-time Spot instance
	// cannot be stopped to take new user-data).
	res, err = d.Up(ctx, "dev", &UpOptions{Config: ConfigInput{Values: map[string]string{"openclaw_image": "ghcr.io/openclaw/openclaw:2026.2.26"}}})
	if err != nil {
		t.Fatalf("Up with a new image: %v\n%s", err, progress)
	}
	if res.Outputs["instance_id"].Value == firstInstance {
		t.Fatalf("the instance was not replaced")
	}
	ops := sim.Load(t).Ops
	seq := func(kind, typ string) []int {
		var out []int
		for _, o := range ops {
			if o.Kind == kind && o.Type == typ {
				out = append(out, o.Seq)
			}
		}
		return out
	}
	attachDeletes, attachCreates := seq("delete", "aws:ec2/volumeAttachment:VolumeAttachment"), seq("create", "aws:ec2/volumeAttachment:VolumeAttachment")
	instanceDeletes, instanceCreates := seq("delete", "aws:ec2/instance:Instance"), seq("create", "aws:ec2/instance:Instance")
	if len(attachDeletes) != 1 || len(attachCreates) != 2 || len(instanceDeletes) != 1 || len(instanceCreates) != 2 {
		t.Fatalf("ops: attachment -%v +%v, instance -%v +%v", attachDeletes, attachCreates, instanceDeletes, instanceCreates)
	}
	// The old attachment goes first, then the old instance (freeing the volume), then the new
	// instance, then the new attachment.
	if attachDeletes[0] >= instanceDeletes[0] || instanceDeletes[0] >= instanceCreates[1] || instanceCreates[1] >= attachCreates[1] {
		t.Errorf("order: attachment deleted at %d, instance deleted at %d, instance created at %d, attachment created at %d",
			attachDeletes[0], instanceDeletes[0], instanceCreates[1], attachCreates[1])
	}
	if n := len(seq("delete", "aws:ebs/volume:Volume")); n != 0 {
		t.Errorf("the up deleted the data volume %d times", n)
	}

	res, err = d.Destroy(ctx, "dev")
	if err != nil || res.Record.Status != journal.Destroyed {
		t.Fatalf("Destroy: %+v %v\n%s", res, err, progress)
	}
	c = sim.Load(t)
	// The backup bucket and its settings stay; the volume leaves a final snapshot with its zone.
	if n := len(c.Resources); n != 7 {
		t.Errorf("%d resources after destroy, want the 7 of the retained bucket", n)
	}
	for _, r := range c.Resources {
		if r.Package != "aws" || r.Type[:7] != "aws:s3/" {
			t.Errorf("%s %s survived destroy", r.Type, r.ID)
		}
	}
	// The new image's up took a pre-upgrade checkpoint; destroy took the final snapshot.
	kinds := map[string]int{}
	for id, s := range c.Snapshots {
		kinds[cmp.Or(s.Tags[TagCheckpoint], "final")]++
		if s.Tags["OpenClawAz"] != "me-central-1a" || s.Tags["OpenClawStack"] != "dev" {
			t.Errorf("snapshot %s tags: %v", id, s.Tags)
		}
	}
	if len(c.Snapshots) != 2 || kinds["final"] != 1 || kinds["pre-upgrade"] != 1 {
		t.Fatalf("snapshots after destroy: %v, want the pre-upgrade checkpoint and the final one", kinds)
	}
	// The driver marked the final one as `snapshots final` marks its own, and named it.
	for id, s := range c.Snapshots {
		final := s.Tags[TagCheckpoint] == ""
		if (s.Tags["CreatedBy"] == "final-on-destroy") != final {
			t.Errorf("snapshot %s (final: %v) tags %v", id, final, s.Tags)
		}
		named := slices.ContainsFunc(ev.of(EventDiagnostic), func(e Event) bool {
			return strings.Contains(e.Message, "the data volume's final snapshot: "+id+" (tagged CreatedBy=final-on-destroy")
		})
		if named != final {
			t.Errorf("snapshot %s (final: %v) named by the destroy: %v", id, final, named)
		}
	}
}

// countByURN counts the cloud's resources per URN: more than one is a duplicate.
func countByURN(c *simprovider.Cloud) map[string]int {
	n := map[string]int{}
	for _, r := range c.Resources {
		n[r.URN]++
	}
	return n
}

// TestUpRetryStartsClean fails the setup of the real program's first up: the deployment is
// ERROR, and resume refuses to repeat it. `up --retry` starts over: the stage is reset and
// reported again from the first, the instance is replaced so that the setup runs anew, and the
// deployment ends READY.
func TestUpRetryStartsClean(t *testing.T) {
	t.Parallel()
	sim := enginetest.NewSim(t, bins)
	var waits atomic.Int32
	ev := &events{}
	var progress bytes.Buffer
	d, err := New(t.Context(), &Options{
		StateDir: sim.StateDir, PulumiRoot: sim.PulumiRoot, Env: sim.Env,
		Finder: simprogram.Finder{Cloud: sim.Cloud}, Events: ev, Progress: &progress, FinalSnapshots: simprogram.FinalSnapshots{Cloud: sim.Cloud},
		Waiter: WaiterFunc(func(_ context.Context, _ string, _ auto.OutputMap, report func(setup.Status)) (setup.Status, error) {
			report(setup.Status{State: setup.Running})
			if waits.Add(1) == 1 {
				st := setup.Status{State: setup.Failed, Reason: "docker compose pull: timeout"}
				return st, &SetupError{Status: st}
			}
			return setup.Status{State: setup.Complete, Token: "t"}, nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close() }()
	ctx := t.Context()

	res, err := d.Up(ctx, "dev", &UpOptions{Config: exampleConfig()})
	var setupErr *SetupError
	if !errors.As(err, &setupErr) || res.Record.Status != journal.Error || res.Record.Stage != StageSetupLaunched ||
		!strings.Contains(res.Record.LastError, "docker compose pull: timeout") {
		t.Fatalf("first up: %+v, %v\n%s", res.Record, err, progress.String())
	}
	first := res.Outputs["instance_id"].Value
	if _, err := d.Resume(ctx, "dev"); err == nil || !strings.Contains(err.Error(), "up --retry") {
		t.Errorf("resume of an ERROR deployment: %v", err)
	}

	mark := len(ev.of(EventStage))
	res, err = d.Up(ctx, "dev", &UpOptions{Retry: true})
	if err != nil || res.Record.Status != journal.Ready || res.Record.Stage != StageSetupComplete || res.Record.Attempts != 2 {
		t.Fatalf("up --retry: %+v, %v\n%s", res.Record, err, progress.String())
	}
	if res.Outputs["instance_id"].Value == first {
		t.Errorf("up --retry kept instance %v: the setup did not run anew", first)
	}
	var again []string
	for _, e := range ev.of(EventStage)[mark:] {
		again = append(again, e.Stage)
	}
	for _, want := range ec2spot.Stages.Order {
		if !slices.Contains(again, want) {
			t.Errorf("after the reset stage %s was not reported again; reported %v", want, again)
		}
	}
	for urn, n := range countByURN(sim.Load(t)) {
		if n != 1 {
			t.Errorf("%s exists %d times", urn, n)
		}
	}
}
