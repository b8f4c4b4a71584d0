package volumes

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestDiagnoseDetaching classifies the attachments moto cannot hold: one detaching for a minute
// (wait) and one detaching for an hour (stuck: only a forced detachment ends it), on volumes as
// EC2's DescribeVolumes returns them.
func TestDiagnoseDetaching(t *testing.T) {
	now := time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC)
	volume := func(since time.Duration) ec2types.Volume {
		return ec2types.Volume{VolumeId: aws.String("vol-0a"), AvailabilityZone: aws.String("me-central-1a"), State: ec2types.VolumeStateInUse,
			Attachments: []ec2types.VolumeAttachment{{InstanceId: aws.String("i-0old"), State: ec2types.VolumeAttachmentStateDetaching,
				AttachTime: aws.Time(now.Add(-since))}}}
	}
	if d := diagnose(volume(time.Minute), "shutting-down", "i-0new", now); d.Finding != Detaching || d.NeedsDetach() || !strings.Contains(d.Why, "wait") {
		t.Errorf("detaching for a minute: %+v", d)
	}
	d := diagnose(volume(time.Hour), "terminated", "i-0new", now)
	if d.Finding != Stuck || !d.NeedsDetach() || !strings.Contains(d.Why, "--force-detach") || d.InstanceState != "terminated" {
		t.Errorf("detaching for an hour: %+v", d)
	}
	if err := Detach(t.Context(), nil, d, false, time.Millisecond); err == nil || !strings.Contains(err.Error(), "only --force-detach ends it") {
		t.Errorf("a stuck attachment detached without force: %v", err)
	}
}
