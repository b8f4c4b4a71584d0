// Package snapshots is the runbook's work on an ec2-spot stack's data-volume snapshots: list them
// with who made them, take a final one and wait for it, and delete the ones a person made. The
// snapshots are found by their tags (OpenClawData=true, OpenClawStack=<stack>), so all of it works
// on the snapshots of a stack that no longer exists.
package snapshots

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/clawdeploy/clawdeploy/components"
)

// TagCreatedBy says who made a snapshot that DLM did not: OriginManualFinal for `snapshots final`.
const TagCreatedBy = "CreatedBy"

// Who made a snapshot.
const (
	// OriginDLM: the stack's lifecycle policy (the snapshot carries aws:dlm:lifecycle-policy-id,
	// or the SnapshotCreator=dlm tag the policy adds).
	OriginDLM = "dlm"
	// OriginFinalOnDestroy: the data volume's deletion (its tags, the resource URN among them,
	// copied to the snapshot, and no other mark).
	OriginFinalOnDestroy = "final-on-destroy"
	// OriginManualFinal: `clawdeploy snapshots final`.
	OriginManualFinal = "manual-final"
	// OriginPreUpgrade: the checkpoint an up takes before it deploys a new image.
	OriginPreUpgrade = "pre-upgrade"
	// OriginManual: anything else carrying the stack's tags.
	OriginManual = "manual"
)

// Snapshot is one snapshot of a stack's data volume.
type Snapshot struct {
	ID        string    `json:"id"`
	Stack     string    `json:"stack"`
	StartTime time.Time `json:"startTime"`
	// Zone is the OpenClawAz tag: the zone a volume restored from it must be in.
	Zone     string `json:"zone"`
	State    string `json:"state"`
	Progress string `json:"progress,omitempty"`
	SizeGiB  int32  `json:"sizeGiB"`
	VolumeID string `json:"volumeId,omitempty"`
	Origin   string `json:"origin"`
	// Problem is what is wrong with its zone tag: missing, or not the stack's zone.
	Problem string `json:"problem,omitempty"`
}

// Owner names the stack the snapshot belongs to, by its tag.
func (s Snapshot) Owner() string {
	if s.Stack == "" {
		return "no stack"
	}
	return "stack " + s.Stack
}

// ErrNoSnapshot is Describe's error for a snapshot EC2 does not know.
var ErrNoSnapshot = errors.New("no such snapshot")

// Describe reads one snapshot by its id, whoever owns it.
func Describe(ctx context.Context, client *ec2.Client, id string) (Snapshot, error) {
	got, err := describe(ctx, client, "", "", &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
	var apiErr smithy.APIError
	switch {
	case errors.As(err, &apiErr) && (apiErr.ErrorCode() == "InvalidSnapshot.NotFound" || apiErr.ErrorCode() == "InvalidSnapshotID.Malformed"):
		return Snapshot{}, fmt.Errorf("%w: %s", ErrNoSnapshot, id)
	case err != nil:
		return Snapshot{}, err
	case len(got) != 1:
		return Snapshot{}, fmt.Errorf("%w: %s", ErrNoSnapshot, id)
	}
	return got[0], nil
}

// Deletable says whether a person may delete it without --force: DLM manages its own.
func (s Snapshot) Deletable() bool { return s.Origin != OriginDLM }

// List returns the snapshots of stack, newest first; zone, when not empty, is the zone the stack's
// data volume is in, which every snapshot's zone tag must name.
func List(ctx context.Context, client *ec2.Client, stack, zone string) ([]Snapshot, error) {
	return describe(ctx, client, stack, zone, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + components.TagData), Values: []string{"true"}},
		{Name: aws.String("tag:" + components.TagStack), Values: []string{stack}},
	}})
}

func describe(ctx context.Context, client *ec2.Client, stack, zone string, in *ec2.DescribeSnapshotsInput) ([]Snapshot, error) {
	var out []Snapshot
	pages := ec2.NewDescribeSnapshotsPaginator(client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the snapshots of %s: %w", stack, err)
		}
		for _, s := range page.Snapshots {
			out = append(out, fromEC2(s, zone))
		}
	}
	slices.SortFunc(out, func(a, b Snapshot) int {
		return cmp.Or(b.StartTime.Compare(a.StartTime), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

func fromEC2(s ec2types.Snapshot, zone string) Snapshot {
	tags := map[string]string{}
	for _, t := range s.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	snap := Snapshot{
		ID: aws.ToString(s.SnapshotId), Stack: tags[components.TagStack], StartTime: aws.ToTime(s.StartTime).UTC(),
		Zone: tags[components.TagAz], State: string(s.State), Progress: aws.ToString(s.Progress), SizeGiB: aws.ToInt32(s.VolumeSize),
		VolumeID: aws.ToString(s.VolumeId), Origin: origin(tags),
	}
	snap.Problem = ZoneProblem(snap.Zone, zone)
	return snap
}

// ZoneProblem says what is wrong with a snapshot's zone tag (tagged) for a stack whose volume is
// in zone ("" when unknown): missing, or another zone. "" when nothing is.
func ZoneProblem(tagged, zone string) string {
	switch {
	case tagged == "":
		return "no " + components.TagAz + " tag: the AZ guard refuses to restore it until it is tagged with its volume's zone"
	case zone != "" && tagged != zone:
		return fmt.Sprintf("%s is %s, the stack's volume is in %s", components.TagAz, tagged, zone)
	}
	return ""
}

func origin(tags map[string]string) string {
	switch {
	case tags["aws:dlm:lifecycle-policy-id"] != "" || tags["SnapshotCreator"] == "dlm":
		return OriginDLM
	case tags[TagCreatedBy] != "":
		return tags[TagCreatedBy]
	case tags["OpenClawCheckpoint"] != "":
		return OriginPreUpgrade
	case tags[components.TagURN] != "":
		return OriginFinalOnDestroy
	}
	return OriginManual
}

// Final snapshots volume, the stack's data volume in zone, with the stack's tags and
// CreatedBy=manual-final, and waits until it is completed, calling progress at each poll.
func Final(ctx context.Context, client *ec2.Client, stack, volume, zone string, poll time.Duration, progress func(Snapshot)) (Snapshot, error) {
	tags := []ec2types.Tag{
		{Key: aws.String(components.TagData), Value: aws.String("true")},
		{Key: aws.String(components.TagStack), Value: aws.String(stack)},
		{Key: aws.String(components.TagAz), Value: aws.String(zone)},
		{Key: aws.String(TagCreatedBy), Value: aws.String(OriginManualFinal)},
		{Key: aws.String("Name"), Value: aws.String(stack + "-final")},
	}
	out, err := client.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{
		VolumeId:          aws.String(volume),
		Description:       aws.String("clawdeploy: final snapshot of " + stack),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot, Tags: tags}},
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshotting the data volume %s of %s: %w", volume, stack, err)
	}
	id := aws.ToString(out.SnapshotId)
	for {
		got, err := describe(ctx, client, stack, zone, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
		if err != nil {
			return Snapshot{ID: id}, err
		}
		if len(got) != 1 {
			return Snapshot{ID: id}, fmt.Errorf("the snapshot %s of %s is gone", id, volume)
		}
		if progress != nil {
			progress(got[0])
		}
		switch ec2types.SnapshotState(got[0].State) {
		case ec2types.SnapshotStateCompleted:
			return got[0], nil
		case ec2types.SnapshotStateError:
			return got[0], fmt.Errorf("the snapshot %s of %s failed", id, volume)
		}
		select {
		case <-ctx.Done():
			return got[0], fmt.Errorf("waiting for the snapshot %s (it goes on in EC2): %w", id, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// RefusedError is a deletion refused before anything was deleted: each reason names a snapshot.
type RefusedError struct{ Reasons []string }

func (e *RefusedError) Error() string {
	return "nothing deleted: " + strings.Join(e.Reasons, "; ")
}

// Select returns the snapshots of stack a deletion of ids (or, with olderThan, of every snapshot
// started more than olderThan before now) would delete. It refuses, deleting nothing, an id that
// does not exist, a snapshot another stack (or none) owns, and, without force, one DLM manages.
func Select(ctx context.Context, client *ec2.Client, stack string, ids []string, olderThan time.Duration, force bool, now time.Time) ([]Snapshot, error) {
	var refused []string
	var chosen []Snapshot
	if len(ids) > 0 {
		for _, id := range ids {
			got, err := Describe(ctx, client, id)
			switch {
			case errors.Is(err, ErrNoSnapshot):
				refused = append(refused, id+" does not exist")
				continue
			case err != nil:
				return nil, err
			}
			chosen = append(chosen, got)
		}
	} else {
		all, err := List(ctx, client, stack, "")
		if err != nil {
			return nil, err
		}
		for _, s := range all {
			if now.Sub(s.StartTime) > olderThan && (force || s.Deletable()) {
				chosen = append(chosen, s)
			}
		}
	}
	for _, s := range chosen {
		switch {
		case s.Stack != stack:
			refused = append(refused, fmt.Sprintf("%s belongs to %s, not %s", s.ID, s.Owner(), stack))
		case !force && !s.Deletable():
			refused = append(refused, fmt.Sprintf("%s is DLM's: its policy deletes it when it expires (--force deletes it now)", s.ID))
		}
	}
	if len(refused) > 0 {
		return nil, &RefusedError{Reasons: refused}
	}
	return chosen, nil
}

// Delete deletes snaps, which Select chose, and returns the ids deleted; it stops at the first
// failure.
func Delete(ctx context.Context, client *ec2.Client, snaps []Snapshot) ([]string, error) {
	var deleted []string
	for _, s := range snaps {
		if _, err := client.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(s.ID)}); err != nil {
			return deleted, fmt.Errorf("deleting %s (after %d deleted): %w", s.ID, len(deleted), err)
		}
		deleted = append(deleted, s.ID)
	}
	return deleted, nil
}

// MarkFinal tags the snapshot the deletion of a stack's data volume left (the volume's tags copied,
// no other mark, started since since less a minute) with CreatedBy=final-on-destroy, so that it
// reads as `snapshots final`'s do, and returns its id (none when the volume left none).
func MarkFinal(ctx context.Context, client *ec2.Client, stack, volume string, since time.Time) ([]string, error) {
	found, err := describe(ctx, client, stack, "", &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []ec2types.Filter{
		{Name: aws.String("volume-id"), Values: []string{volume}},
		{Name: aws.String("tag:" + components.TagStack), Values: []string{stack}},
	}})
	if err != nil {
		return nil, err
	}
	var marked []string
	for _, s := range found {
		if s.Origin != OriginFinalOnDestroy || s.StartTime.Before(since.Add(-time.Minute)) {
			continue
		}
		if _, err := client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{s.ID},
			Tags: []ec2types.Tag{{Key: aws.String(TagCreatedBy), Value: aws.String(OriginFinalOnDestroy)}}}); err != nil {
			return marked, fmt.Errorf("tagging the final snapshot %s of %s: %w", s.ID, volume, err)
		}
		marked = append(marked, s.ID)
	}
	return marked, nil
}
