package automation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/clawdeploy/clawdeploy/snapshots"
)

// runbookAWS is the AWS configuration a runbook command on stack works with: in region when it is
// given, else in the stack's. The stack's outputs come with it when the stack exists; a stack that
// does not (any more) needs the region given.
func (d *Driver) runbookAWS(ctx context.Context, stack, region string) (aws.Config, auto.OutputMap, error) {
	if err := CheckStackName(stack); err != nil {
		return aws.Config{}, nil, err
	}
	if d.profile.name != TargetEC2Spot {
		return aws.Config{}, nil, &UsageError{Err: fmt.Errorf("a %s deployment has no EBS volume or snapshots", d.profile.name)}
	}
	var outputs auto.OutputMap
	err := d.existing(ctx, stack)
	var notFound *NotFoundError
	switch {
	case errors.As(err, &notFound) && region == "":
		return aws.Config{}, nil, &UsageError{Err: fmt.Errorf("no deployment named %s here: pass --region to work on the snapshots its tags name", stack)}
	case err != nil && !errors.As(err, &notFound):
		return aws.Config{}, nil, err
	case err == nil:
		if outputs, err = d.Outputs(ctx, stack); err != nil {
			return aws.Config{}, nil, err
		}
		if region == "" {
			region, _ = outputs["region"].Value.(string)
		}
	}
	if region == "" {
		return aws.Config{}, nil, &UsageError{Err: fmt.Errorf("stack %s has no region output yet: pass --region", stack)}
	}
	cfg, err := awsConfig(ctx, d.aws, region)
	if err != nil {
		return aws.Config{}, nil, err
	}
	cfg.Region = region
	return cfg, outputs, nil
}

// ListSnapshots returns the snapshots of stack's data volume, newest first, each with who made it
// and whatever is wrong with its zone tag (against the zone of the stack's volume, when the stack
// exists).
func (d *Driver) ListSnapshots(ctx context.Context, stack, region string) ([]snapshots.Snapshot, error) {
	cfg, outputs, err := d.runbookAWS(ctx, stack, region)
	if err != nil {
		return nil, err
	}
	zone, _ := outputs["availabilityZone"].Value.(string)
	return snapshots.List(ctx, ec2.NewFromConfig(cfg), stack, zone)
}

// FinalSnapshot snapshots the stack's data volume (CreatedBy=manual-final) and waits until the
// snapshot is completed, reporting its progress every poll.
func (d *Driver) FinalSnapshot(ctx context.Context, stack, region string, poll time.Duration) (snapshots.Snapshot, error) {
	cfg, outputs, err := d.runbookAWS(ctx, stack, region)
	if err != nil {
		return snapshots.Snapshot{}, err
	}
	if outputs == nil {
		return snapshots.Snapshot{}, &UsageError{Err: fmt.Errorf("no deployment named %s here: a final snapshot needs its data volume", stack)}
	}
	volume, _ := outputs["dataVolumeId"].Value.(string)
	zone, _ := outputs["availabilityZone"].Value.(string)
	if volume == "" {
		return snapshots.Snapshot{}, &UsageError{Err: fmt.Errorf("stack %s has no dataVolumeId output: `clawdeploy up --stack %s` creates its volume", stack, stack)}
	}
	d.note(stack, "snapshotting the data volume %s (%s)", volume, zone)
	return snapshots.Final(ctx, ec2.NewFromConfig(cfg), stack, volume, zone, poll, func(s snapshots.Snapshot) {
		d.note(stack, "snapshot %s: %s %s", s.ID, s.State, s.Progress)
	})
}

// SnapshotDeletion is what a deletion of snapshots would delete, chosen and checked.
type SnapshotDeletion struct {
	Stack     string
	Snapshots []snapshots.Snapshot
	client    *ec2.Client
}

// PlanSnapshotDeletion returns what a deletion would delete: ids, or every snapshot of stack older
// than olderThan. A snapshot that does not exist, that another stack owns or, without force, that
// DLM manages is refused with nothing deleted (exit 2).
func (d *Driver) PlanSnapshotDeletion(ctx context.Context, stack, region string, ids []string, olderThan time.Duration, force bool) (*SnapshotDeletion, error) {
	if (len(ids) == 0) == (olderThan == 0) {
		return nil, &UsageError{Err: errors.New("name the snapshots to delete or give --older-than, one or the other")}
	}
	cfg, _, err := d.runbookAWS(ctx, stack, region)
	if err != nil {
		return nil, err
	}
	client := ec2.NewFromConfig(cfg)
	chosen, err := snapshots.Select(ctx, client, stack, ids, olderThan, force, d.now())
	var refused *snapshots.RefusedError
	if errors.As(err, &refused) {
		return nil, &UsageError{Err: err}
	}
	return &SnapshotDeletion{Stack: stack, Snapshots: chosen, client: client}, err
}

// DeleteSnapshots carries out a deletion and returns the ids it deleted.
func (d *Driver) DeleteSnapshots(ctx context.Context, plan *SnapshotDeletion) ([]string, error) {
	deleted, err := snapshots.Delete(ctx, plan.client, plan.Snapshots)
	for _, id := range deleted {
		d.note(plan.Stack, "deleted %s", id)
	}
	return deleted, err
}
