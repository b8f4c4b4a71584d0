package automation

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/clawdeploy/clawdeploy/cost"
	"github.com/clawdeploy/clawdeploy/infra"
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

// instanceType is what an EC2 instance type looks like: family, generation and options, a dot,
// a size (t4g.small, m7i-flex.large).
var instanceType = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)

// SpotPriceReport is `spot-prices`' answer: the rows cheapest first, what could not be had, the
// zone the stack's data volume pins (when a stack was named) and the row to deploy.
type SpotPriceReport struct {
	Region     string         `json:"region"`
	Rows       []cost.SpotRow `json:"rows"`
	Problems   []string       `json:"problems,omitempty"`
	PinnedZone string         `json:"pinnedZone,omitempty"`
	Best       *cost.SpotRow  `json:"best,omitempty"`
}

// ConfigLines are the `pulumi config set` commands that deploy the best row.
func (r *SpotPriceReport) ConfigLines() []string {
	if r.Best == nil {
		return nil
	}
	return []string{
		"pulumi config set " + infra.KeyInstanceType + " " + r.Best.InstanceType,
		"pulumi config set " + infra.KeyAvailabilityZone + " " + r.Best.Zone,
	}
}

// SpotPrices reads the Spot prices of types in every zone of region (or of stack's region), with
// the 7-day median and maximum and the on-demand price. With a stack whose data volume exists,
// the zone it pins is the one the best row is chosen in: the volume cannot move.
func (d *Driver) SpotPrices(ctx context.Context, stack, region string, types []string) (*SpotPriceReport, error) {
	if len(types) == 0 {
		return nil, &UsageError{Err: errors.New("--instance-types is required: one or more EC2 instance types, as in \"t4g.small t4g.medium\"")}
	}
	for _, t := range types {
		if !instanceType.MatchString(t) {
			return nil, &UsageError{Err: fmt.Errorf("--instance-types: %q is not an EC2 instance type (family.size, as t4g.small)", t)}
		}
	}
	report := &SpotPriceReport{}
	var cfg aws.Config
	switch {
	case stack != "":
		var outputs auto.OutputMap
		var err error
		if cfg, outputs, err = d.runbookAWS(ctx, stack, region); err != nil {
			return nil, err
		}
		report.PinnedZone, _ = outputs["availabilityZone"].Value.(string)
	case region == "":
		return nil, &UsageError{Err: errors.New("--region is required without --stack")}
	default:
		var err error
		if cfg, err = awsConfig(ctx, d.aws, region); err != nil {
			return nil, err
		}
		cfg.Region = region
	}
	report.Region = cfg.Region
	rows, problems, err := cost.NewEstimator(cfg, cfg.Region).SpotPrices(ctx, cfg.Region, types)
	if err != nil {
		return nil, err
	}
	report.Rows, report.Problems = rows, problems
	for i, r := range rows {
		if report.PinnedZone == "" || r.Zone == report.PinnedZone {
			report.Best = &rows[i]
			break
		}
	}
	if report.Best == nil && report.PinnedZone != "" {
		report.Problems = append(report.Problems, fmt.Sprintf("none of %v has a Spot price in %s, the zone the data volume of %s is in", types, report.PinnedZone, stack))
	}
	return report, nil
}
