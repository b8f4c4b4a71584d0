package automation_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/images"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/internal/simprogram"
	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/setup"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
)

// TestUpgradeThatFailsIsRolledBack deploys the real program, then a new image whose instance
// never becomes healthy: a snapshot of the data volume is taken before the instance is replaced,
// the result names it, the deployment is ERROR with the way back in its error, and the last good
// image stays recorded. `up --rollback` deploys that image again, READY, and names the
// checkpoint to restore; it takes no checkpoint of its own.
func TestUpgradeThatFailsIsRolledBack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	sim := enginetest.NewSim(t, bins)
	var unhealthy atomic.Bool
	ev := &events{}
	d := upgradeDriver(t, sim, &unhealthy, ev)

	if _, err := d.Up(ctx, "dev", &UpOptions{Config: exampleConfig()}); err != nil {
		t.Fatalf("first up: %v", err)
	}
	// The default image, pinned to the digest the registry served for it.
	first := images.Pin(stackconfig.DefaultOpenClawImage, mustResolve(t, sim, stackconfig.DefaultOpenClawImage))
	if rec, _ := d.Status(ctx, "dev"); rec.LastGoodImage != first || rec.Checkpoint != "" {
		t.Fatalf("after the first up: last good image %q (want %s), checkpoint %q", rec.LastGoodImage, first, rec.Checkpoint)
	}

	const next = "ghcr.io/openclaw/openclaw:2026.3.1"
	pinnedNext := images.Pin(next, sim.Registry.Push(t, next))
	unhealthy.Store(true)
	res, err := d.Up(ctx, "dev", &UpOptions{Config: ConfigInput{Values: map[string]string{"openclaw_image": next}}})
	var upgrade *UpgradeError
	if !errors.As(err, &upgrade) || upgrade.From != first || upgrade.To != pinnedNext {
		t.Fatalf("the failed upgrade: %v", err)
	}
	if ExitCode(err) != ExitFailed || !strings.Contains(err.Error(), "`clawdeploy up --rollback --stack dev` deploys "+first) {
		t.Errorf("exit %d, message:\n%v", ExitCode(err), err)
	}
	cp := res.Checkpoint
	if cp == nil || cp.Snapshot == "" || !strings.Contains(err.Error(), "pre-upgrade checkpoint: snapshot "+cp.Snapshot) {
		t.Fatalf("checkpoint %+v, error %v", cp, err)
	}
	c := sim.Load(t)
	snap, ok := c.Snapshots[cp.Snapshot]
	if !ok || snap.Tags[TagCheckpoint] != "pre-upgrade" || snap.Tags["OpenClawAz"] != "me-central-1a" || snap.Tags["OpenClawStack"] != "dev" {
		t.Errorf("snapshot %s in the cloud: %+v", cp.Snapshot, snap)
	}
	// The snapshot came before the old instance went.
	snapshotAt, instanceDeletedAt := 0, 0
	for _, o := range c.Ops {
		switch {
		case o.Kind == "snapshot" && o.ID == cp.Snapshot:
			snapshotAt = o.Seq
		case o.Kind == "delete" && o.Type == "aws:ec2/instance:Instance" && instanceDeletedAt == 0:
			instanceDeletedAt = o.Seq
		}
	}
	if snapshotAt == 0 || instanceDeletedAt == 0 || snapshotAt > instanceDeletedAt {
		t.Errorf("snapshot at op %d, the old instance deleted at op %d", snapshotAt, instanceDeletedAt)
	}
	rec, _ := d.Status(ctx, "dev")
	if rec.Status != journal.Error || rec.LastGoodImage != first || !strings.Contains(rec.LastError, "up --rollback") {
		t.Errorf("journal after the failed upgrade: %+v", rec)
	}
	var recorded Checkpoint
	if json.Unmarshal([]byte(rec.Checkpoint), &recorded) != nil || recorded.Snapshot != cp.Snapshot {
		t.Errorf("journal checkpoint %q", rec.Checkpoint)
	}
	event, _ := json.Marshal(Event{Type: EventResult, Checkpoint: cp})
	if !strings.Contains(string(event), `"checkpoint":{"from":"`+first) {
		t.Errorf("result event %s", event)
	}

	// --rollback with an image of its own is refused before anything.
	if _, err := d.Up(ctx, "dev", &UpOptions{Rollback: true, Config: ConfigInput{Values: map[string]string{"openclaw:openclaw_image": next}}}); ExitCode(err) != ExitUsage {
		t.Errorf("--rollback with openclaw_image: %v", err)
	}
	unhealthy.Store(false)
	before := len(ev.of(EventDiagnostic))
	res, err = d.Up(ctx, "dev", &UpOptions{Rollback: true})
	if err != nil || res.Record.Status != journal.Ready || res.Checkpoint != nil {
		t.Fatalf("rollback: %+v %v", res, err)
	}
	said := false
	for _, e := range ev.of(EventDiagnostic)[before:] {
		said = said || strings.Contains(e.Message, "restore the pre-upgrade checkpoint: snapshot "+cp.Snapshot)
	}
	if !said {
		t.Errorf("the rollback did not name the checkpoint to restore")
	}
	if n := len(sim.Load(t).Snapshots); n != 1 {
		t.Errorf("%d snapshots after the rollback, want the one checkpoint", n)
	}
	values, _, err := d.Config(ctx, "dev", ConfigInput{})
	if err != nil || values["openclaw:openclaw_image"] != stackconfig.DefaultOpenClawImage || values[stackconfig.KeyOpenClawImagePinned] != first {
		t.Errorf("the image configured after the rollback: %q pinned to %q, %v", values["openclaw:openclaw_image"], values[stackconfig.KeyOpenClawImagePinned], err)
	}
	if rec, _ := d.Status(ctx, "dev"); rec.LastGoodImage != first {
		t.Errorf("last good image after the rollback: %q", rec.LastGoodImage)
	}
	// Nothing to roll back to: a usage error.
	if _, err := d.Up(ctx, "never", &UpOptions{Rollback: true}); ExitCode(err) != ExitUsage {
		t.Errorf("--rollback of a deployment never made: %v", err)
	}
}

// upgradeDriver is a driver of sim's real program whose setup wait fails, as an image that
// never becomes healthy does, while unhealthy is set.
func upgradeDriver(t *testing.T, sim *enginetest.Sim, unhealthy *atomic.Bool, ev *events) *Driver {
	t.Helper()
	healthy := simprogram.InstanceWaiter(sim.Cloud)
	if err := os.MkdirAll(sim.StateDir+"/state", 0o700); err != nil {
		t.Fatal(err)
	}
	d, err := New(t.Context(), &Options{StateDir: sim.StateDir, BackendURL: "file://" + sim.StateDir + "/state", PulumiRoot: sim.PulumiRoot,
		Env: sim.Env, Finder: simprogram.Finder{Cloud: sim.Cloud}, Events: ev, Checkpointer: simprogram.Checkpointer{Cloud: sim.Cloud},
		FinalSnapshots: simprogram.FinalSnapshots{Cloud: sim.Cloud},
		Waiter: WaiterFunc(func(ctx context.Context, stack string, outputs auto.OutputMap, report func(setup.Status)) (setup.Status, error) {
			if unhealthy.Load() {
				st := setup.Status{State: setup.Failed, Reason: "line 80: the gateway did not finish starting on port 18789 in time (/startupz: not yet)"}
				return st, &SetupError{Status: st}
			}
			return healthy.Wait(ctx, stack, outputs, report)
		})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// mustResolve is the digest sim's registry serves for ref now.
func mustResolve(t *testing.T, sim *enginetest.Sim, ref string) string {
	t.Helper()
	digest, err := sim.Registry.Resolver().Resolve(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return digest
}
