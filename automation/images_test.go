package automation_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"io"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/images"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/preview"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
)

// TestTheImageIsPinnedAndAMovedTagIsAnUpgradeOnlyWhenAsked deploys the real program with the
// default image through a real registry (in process): the tag is resolved once and the
// instance's user-data names its digest. Then the tag moves. A new instance (up --retry) runs
// the recorded digest, and asks the registry nothing; a preview says the tag moved and changes
// nothing; a preview with --refresh-image shows the upgrade; up --refresh-image deploys it with
// a pre-upgrade checkpoint. When that upgrade fails, --rollback goes back to the first digest,
// which the tag no longer names.
func TestTheImageIsPinnedAndAMovedTagIsAnUpgradeOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	sim := enginetest.NewSim(t, bins)
	var unhealthy atomic.Bool
	ev := &events{}
	d := upgradeDriver(t, sim, &unhealthy, ev)
	tag := stackconfig.DefaultOpenClawImage
	first := images.Pin(tag, mustResolve(t, sim, tag))

	heads := sim.Registry.Heads()
	res, err := d.Up(ctx, "dev", &UpOptions{Config: exampleConfig()})
	if err != nil {
		t.Fatalf("first up: %v", err)
	}
	if n := sim.Registry.Heads() - heads; n != 1 {
		t.Errorf("the first up asked the registry %d times, want once", n)
	}
	if got := res.Outputs["openclaw_image"].Value; got != first {
		t.Errorf("openclaw_image output %v, want %s", got, first)
	}
	if got := instanceImage(t, sim); got != first {
		t.Errorf("the instance runs %s, want %s", got, first)
	}
	firstInstance := res.Outputs["instance_id"].Value

	moved := images.Pin(tag, sim.Registry.Push(t, tag))
	heads = sim.Registry.Heads()

	// A new instance runs the recorded digest: the registry is not asked.
	res, err = d.Up(ctx, "dev", &UpOptions{Retry: true})
	if err != nil || res.Outputs["instance_id"].Value == firstInstance {
		t.Fatalf("up --retry: %v (instance %v)", err, res.Outputs["instance_id"].Value)
	}
	if got := instanceImage(t, sim); got != first {
		t.Errorf("the new instance runs %s, want the recorded %s", got, first)
	}
	if n := sim.Registry.Heads() - heads; n != 0 {
		t.Errorf("an up of a pinned image asked the registry %d times", n)
	}

	// A preview says the tag moved, and that nothing changes.
	p, err := d.Preview(ctx, "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &preview.ImageChange{Image: tag, Recorded: images.Digest(first), Latest: images.Digest(moved)}
	if p.Changes.Image == nil || *p.Changes.Image != *want {
		t.Errorf("preview: image %+v, want %+v", p.Changes.Image, want)
	}
	if p.Changes.Changed() != 0 {
		t.Errorf("preview without --refresh-image: %d changes, want none: %+v", p.Changes.Changed(), p.Changes.Resources)
	}
	if !strings.Contains(p.Comment("openclaw", "dev", ""), "`clawdeploy up --refresh-image` upgrades") {
		t.Errorf("the comment does not say how to upgrade:\n%s", p.Comment("openclaw", "dev", ""))
	}
	// With --refresh-image it shows the upgrade: the instance replaced.
	p, err = d.Preview(ctx, "dev", &UpOptions{RefreshImage: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Changes.Image == nil || !p.Changes.Image.Followed || p.Changes.Counts["replace"] == 0 {
		t.Errorf("preview --refresh-image: image %+v, counts %v", p.Changes.Image, p.Changes.Counts)
	}
	if got := instanceImage(t, sim); got != first {
		t.Errorf("after the previews the instance runs %s", got)
	}

	// up --refresh-image is an upgrade: checkpointed. It fails; --rollback goes back to the
	// first digest, not to what the tag says.
	unhealthy.Store(true)
	res, err = d.Up(ctx, "dev", &UpOptions{RefreshImage: true})
	var upgrade *UpgradeError
	if !errors.As(err, &upgrade) || upgrade.From != first || upgrade.To != moved || res.Checkpoint == nil {
		t.Fatalf("up --refresh-image: %v (checkpoint %+v)", err, res.Checkpoint)
	}
	if got := instanceImage(t, sim); got != moved {
		t.Errorf("the upgraded instance runs %s, want %s", got, moved)
	}
	unhealthy.Store(false)
	said := len(ev.of(EventDiagnostic))
	res, err = d.Up(ctx, "dev", &UpOptions{Rollback: true})
	if err != nil || res.Record.Status != journal.Ready || res.Record.LastGoodImage != first || res.Checkpoint != nil {
		t.Fatalf("rollback: %v (%+v, checkpoint %+v)", err, res.Record, res.Checkpoint)
	}
	for _, e := range ev.of(EventDiagnostic)[said:] {
		if strings.Contains(e.Message, "upgrade") && !strings.Contains(e.Message, "pre-upgrade checkpoint") {
			t.Errorf("the rollback says it upgrades: %s", e.Message)
		}
	}
	if got := instanceImage(t, sim); got != first {
		t.Errorf("after the rollback the instance runs %s, want %s", got, first)
	}
}

// TestAnImageTheRegistryLacksIsRefused: a tag the registry does not serve is the input's
// fault, refused before anything is written (exit 2, naming the key and the image); an image
// given by digest needs no registry at all.
func TestAnImageTheRegistryLacksIsRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	sim := enginetest.NewSim(t, bins)
	d := upgradeDriver(t, sim, new(atomic.Bool), &events{})
	in := exampleConfig()
	in.Values["openclaw_image"] = "ghcr.io/openclaw/openclaw:2099.1.1"
	_, err := d.Up(ctx, "dev", &UpOptions{Config: in})
	if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "openclaw_image") || !strings.Contains(err.Error(), "2099.1.1") {
		t.Fatalf("an image the registry lacks: exit %d, %v", ExitCode(err), err)
	}
	if c := sim.Load(t); len(c.Resources) != 0 {
		t.Errorf("%d resources made for a refused image", len(c.Resources))
	}
	byDigest := "ghcr.io/openclaw/openclaw:2099.1.1@sha256:" + strings.Repeat("ab", 32)
	in.Values["openclaw_image"] = byDigest
	heads := sim.Registry.Heads()
	if _, err := d.Up(ctx, "dev", &UpOptions{Config: in}); err != nil {
		t.Fatalf("an image by digest: %v", err)
	}
	if got := instanceImage(t, sim); got != byDigest || sim.Registry.Heads() != heads {
		t.Errorf("the instance runs %s (want %s), the registry asked %d times", got, byDigest, sim.Registry.Heads()-heads)
	}
}

// instanceImage is the image the newest instance of sim's cloud runs: OPENCLAW_IMAGE in its
// user-data.
func instanceImage(t *testing.T, sim *enginetest.Sim) string {
	t.Helper()
	instances := sim.Load(t).OfType("aws:ec2/instance:Instance")
	if len(instances) == 0 {
		t.Fatal("no instance in the cloud")
	}
	encoded, _ := instances[len(instances)-1].Inputs["userDataBase64"].(string)
	gz, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		t.Fatal(err)
	}
	r, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	userData, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)OPENCLAW_IMAGE=(\S+)$`).FindSubmatch(userData)
	if m == nil {
		t.Fatalf("no OPENCLAW_IMAGE in the user-data:\n%s", userData)
	}
	return string(m[1])
}
