package volumes_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/clawdeploy/clawdeploy/internal/moto"
	"github.com/clawdeploy/clawdeploy/volumes"
)

// TestUnstick diagnoses a data volume in moto as it goes from free, to attached to the stack's
// instance, to attached to an instance the state no longer holds (a replacement whose old
// instance outlived the state), and detaches it from there. moto detaches at once, so an
// attachment stuck detaching is not reproduced here.
func TestUnstick(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	client := ec2.NewFromConfig(m.Config())
	zone := moto.Region + "a"
	volume := m.Volume(t, zone)
	old, current := m.Instance(t, zone), m.Instance(t, zone)
	now := time.Now()

	d, err := volumes.Diagnose(t.Context(), client, volume, current, now)
	if err != nil || d.Finding != volumes.Free || d.NeedsDetach() {
		t.Fatalf("a new volume: %+v, %v", d, err)
	}
	if _, err := client.AttachVolume(t.Context(), &ec2.AttachVolumeInput{VolumeId: &volume, InstanceId: &old, Device: aws.String("/dev/sdf")}); err != nil {
		t.Fatal(err)
	}
	if d, err := volumes.Diagnose(t.Context(), client, volume, old, now); err != nil || d.Finding != volumes.Ours || d.NeedsDetach() {
		t.Errorf("attached to the state's instance: %+v, %v", d, err)
	}
	d, err = volumes.Diagnose(t.Context(), client, volume, current, now)
	if err != nil || d.Finding != volumes.Foreign || d.Instance != old || d.InstanceState != "running" || !d.NeedsDetach() ||
		!strings.Contains(d.Why, "an instance the stack's state does not hold (the state holds "+current+")") {
		t.Fatalf("attached to the old instance: %+v, %v", d, err)
	}
	if err := volumes.Detach(t.Context(), client, d, false, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d, err := volumes.Diagnose(t.Context(), client, volume, current, now); err != nil || d.Finding != volumes.Free {
		t.Errorf("after the detachment: %+v, %v", d, err)
	}
	if err := volumes.Detach(t.Context(), client, volumes.Diagnosis{Volume: volume, Finding: volumes.Free}, false, time.Millisecond); err == nil {
		t.Errorf("detaching a free volume did not refuse")
	}
	if _, err := volumes.Diagnose(t.Context(), client, "vol-0123456789abcdef0", current, now); !errors.Is(err, volumes.ErrNoVolume) ||
		!strings.Contains(err.Error(), "vol-0123456789abcdef0") {
		t.Errorf("a volume EC2 does not know: %v", err)
	}
}
