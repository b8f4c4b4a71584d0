// Package volumes diagnoses and frees a data volume that an up cannot attach (EC2's VolumeInUse):
// the volume is attached to an instance the stack's state no longer holds (a replacement whose
// old instance outlived the state), or an attachment is stuck detaching.
package volumes

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// What a diagnosis found.
const (
	// Free: the volume is attached to nothing; an up attaches it.
	Free = "free"
	// Ours: it is attached to the instance the state holds; nothing is stuck.
	Ours = "attached-to-the-stack"
	// Foreign: it is attached to an instance the state does not hold; detaching it frees it.
	Foreign = "attached-elsewhere"
	// Stuck: an attachment has been detaching for longer than StuckAfter; only a forced
	// detachment ends it.
	Stuck = "stuck-detaching"
	// Detaching: an attachment is detaching, for less than StuckAfter: wait.
	Detaching = "detaching"
)

// StuckAfter is how long an attachment may be detaching before it is called stuck: EC2 usually
// detaches in seconds; AWS's own guidance is to force a detachment only after waiting.
const StuckAfter = 10 * time.Minute

// Diagnosis is what holds a volume.
type Diagnosis struct {
	Volume string `json:"volume"`
	Zone   string `json:"zone"`
	State  string `json:"state"`
	// Finding is Free, Ours, Foreign, Stuck or Detaching.
	Finding string `json:"finding"`
	// Instance is the instance it is attached to, InstanceState that instance's state, Since when
	// the attachment began (or began detaching).
	Instance      string    `json:"instance,omitempty"`
	InstanceState string    `json:"instanceState,omitempty"`
	Attachment    string    `json:"attachment,omitempty"`
	Since         time.Time `json:"since,omitzero"`
	// Why says it in a sentence, and what unstick would do.
	Why string `json:"why"`
}

// NeedsDetach says whether unstick has something to detach.
func (d Diagnosis) NeedsDetach() bool { return d.Finding == Foreign || d.Finding == Stuck }

// ErrNoVolume is Diagnose's error for a volume EC2 does not know.
var ErrNoVolume = errors.New("no such volume")

// Diagnose reads volume and says what holds it; stateInstance is the instance the stack's state
// holds ("" when it holds none).
func Diagnose(ctx context.Context, client *ec2.Client, volume, stateInstance string, now time.Time) (Diagnosis, error) {
	out, err := client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{volume}})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode() == "InvalidVolume.NotFound" || apiErr.ErrorCode() == "InvalidVolumeID.Malformed") {
		return Diagnosis{}, fmt.Errorf("%w %s in EC2 (%s)", ErrNoVolume, volume, apiErr.ErrorCode())
	}
	if err != nil {
		return Diagnosis{}, fmt.Errorf("reading the volume %s: %w", volume, err)
	}
	if len(out.Volumes) != 1 {
		return Diagnosis{}, fmt.Errorf("%w %s in EC2", ErrNoVolume, volume)
	}
	v := out.Volumes[0]
	instanceState := ""
	if len(v.Attachments) > 0 {
		inst, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{aws.ToString(v.Attachments[0].InstanceId)}})
		if err == nil {
			for _, r := range inst.Reservations {
				for _, i := range r.Instances {
					if i.State != nil {
						instanceState = string(i.State.Name)
					}
				}
			}
		}
	}
	return diagnose(v, instanceState, stateInstance, now), nil
}

// diagnose classifies what EC2 said of a volume: v, the state of the instance it is attached to
// (instanceState, "" when unknown), and the instance the stack's state holds.
func diagnose(v ec2types.Volume, instanceState, stateInstance string, now time.Time) Diagnosis {
	volume := aws.ToString(v.VolumeId)
	d := Diagnosis{Volume: volume, Zone: aws.ToString(v.AvailabilityZone), State: string(v.State)}
	if len(v.Attachments) == 0 {
		d.Finding, d.Why = Free, fmt.Sprintf("%s is attached to nothing: an up attaches it", volume)
		return d
	}
	a := v.Attachments[0]
	d.Instance, d.Attachment, d.Since, d.InstanceState = aws.ToString(a.InstanceId), string(a.State), aws.ToTime(a.AttachTime).UTC(), instanceState
	switch {
	case a.State == ec2types.VolumeAttachmentStateDetaching && now.Sub(d.Since) >= StuckAfter:
		d.Finding = Stuck
		d.Why = fmt.Sprintf("%s has been detaching from %s since %s: only a forced detachment (--force-detach) ends it",
			volume, d.Instance, d.Since.Format(time.RFC3339))
	case a.State == ec2types.VolumeAttachmentStateDetaching:
		d.Finding = Detaching
		d.Why = fmt.Sprintf("%s is detaching from %s (since %s): wait a few minutes and run unstick again", volume, d.Instance, d.Since.Format(time.RFC3339))
	case d.Instance == stateInstance:
		d.Finding = Ours
		d.Why = fmt.Sprintf("%s is attached to %s, the instance the stack's state holds: nothing is stuck", volume, d.Instance)
	default:
		d.Finding = Foreign
		held := "the stack's state holds no instance"
		if stateInstance != "" {
			held = "the state holds " + stateInstance
		}
		d.Why = fmt.Sprintf("%s is attached to %s (%s), an instance the stack's state does not hold (%s): detaching it frees the volume",
			volume, d.Instance, cmpOr(d.InstanceState, "state unknown"), held)
	}
	return d
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Detach detaches the volume from the instance d found, forced when force, and waits until the
// volume is available, polling every poll.
func Detach(ctx context.Context, client *ec2.Client, d Diagnosis, force bool, poll time.Duration) error {
	if !d.NeedsDetach() {
		return fmt.Errorf("%s: nothing to detach (%s)", d.Volume, d.Finding)
	}
	if d.Finding == Stuck && !force {
		return fmt.Errorf("%s is stuck detaching from %s: only --force-detach ends it", d.Volume, d.Instance)
	}
	if _, err := client.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(d.Volume), InstanceId: aws.String(d.Instance),
		Force: aws.Bool(force)}); err != nil {
		return fmt.Errorf("detaching %s from %s: %w", d.Volume, d.Instance, err)
	}
	for {
		out, err := client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{d.Volume}})
		if err != nil {
			return fmt.Errorf("reading %s while it detaches: %w", d.Volume, err)
		}
		if len(out.Volumes) == 1 && out.Volumes[0].State == ec2types.VolumeStateAvailable && len(out.Volumes[0].Attachments) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to detach (EC2 goes on): %w", d.Volume, ctx.Err())
		case <-time.After(poll):
		}
	}
}
