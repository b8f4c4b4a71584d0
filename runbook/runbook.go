// Package runbook is what the runbook (docs/operator.md) does with a deployment's data in AWS,
// through the driver: list, take and delete the data volume's snapshots, read its snapshot
// policy, compare Spot prices, diagnose and free a stuck volume, restore from a snapshot, and
// prove that the newest backup restores. It is for a target with a targets.DataVolume; the
// driver refuses the others with a usage error.
package runbook

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dlm"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/awsapi"
	"github.com/clawdeploy/clawdeploy/cost"
	"github.com/clawdeploy/clawdeploy/snapshots"
	"github.com/clawdeploy/clawdeploy/volumes"
)

// Runbook is the runbook's AWS commands on the deployments of a driver whose target keeps their
// data on a volume (a targets.DataVolume: ec2-spot): snapshots, the snapshot policy, Spot
// prices, the volume, restores and backup verification. Its notes are the driver's events.
type Runbook struct{ d *automation.Driver }

// New returns the runbook of the deployments d drives.
func New(d *automation.Driver) *Runbook { return &Runbook{d: d} }

// aws is the AWS configuration a runbook command on stack works with: in region when it is
// given, else in the stack's. The stack's outputs come with it when the stack exists; a stack that
// does not (any more) needs the region given.
func (r *Runbook) aws(ctx context.Context, stack, region string) (aws.Config, auto.OutputMap, error) {
	if err := automation.CheckStackName(stack); err != nil {
		return aws.Config{}, nil, err
	}
	if r.d.DataVolume() == nil {
		return aws.Config{}, nil, &automation.UsageError{Err: fmt.Errorf("a %s deployment has no EBS volume or snapshots", r.d.Target())}
	}
	var outputs auto.OutputMap
	err := r.d.Existing(ctx, stack)
	var notFound *automation.NotFoundError
	switch {
	case errors.As(err, &notFound) && region == "":
		return aws.Config{}, nil, &automation.UsageError{Err: fmt.Errorf("no deployment named %s here: pass --region to work on the snapshots its tags name", stack)}
	case err != nil && !errors.As(err, &notFound):
		return aws.Config{}, nil, err
	case err == nil:
		if outputs, err = r.d.Outputs(ctx, stack); err != nil {
			return aws.Config{}, nil, err
		}
		if region == "" {
			region, _ = outputs["region"].Value.(string)
		}
	}
	if region == "" {
		return aws.Config{}, nil, &automation.UsageError{Err: fmt.Errorf("stack %s has no region output yet: pass --region", stack)}
	}
	cfg, err := awsapi.Config(ctx, r.d.AWS(), region)
	return cfg, outputs, err
}

// ListSnapshots returns the snapshots of stack's data volume, newest first, each with who made it
// and whatever is wrong with its zone tag (against the zone of the stack's volume, when the stack
// exists).
func (r *Runbook) ListSnapshots(ctx context.Context, stack, region string) ([]snapshots.Snapshot, error) {
	cfg, outputs, err := r.aws(ctx, stack, region)
	if err != nil {
		return nil, err
	}
	zone, _ := outputs["availability_zone"].Value.(string)
	return snapshots.List(ctx, ec2.NewFromConfig(cfg), stack, zone)
}

// FinalSnapshot snapshots the stack's data volume (CreatedBy=manual-final) and waits until the
// snapshot is completed, reporting its progress every poll.
func (r *Runbook) FinalSnapshot(ctx context.Context, stack, region string, poll time.Duration) (snapshots.Snapshot, error) {
	cfg, outputs, err := r.aws(ctx, stack, region)
	if err != nil {
		return snapshots.Snapshot{}, err
	}
	if outputs == nil {
		return snapshots.Snapshot{}, &automation.UsageError{Err: fmt.Errorf("no deployment named %s here: a final snapshot needs its data volume", stack)}
	}
	volume, _ := outputs["data_volume_id"].Value.(string)
	zone, _ := outputs["availability_zone"].Value.(string)
	if volume == "" {
		return snapshots.Snapshot{}, &automation.UsageError{Err: fmt.Errorf("stack %s has no data_volume_id output: `clawdeploy up --stack %s` creates its volume", stack, stack)}
	}
	r.d.Note(stack, "snapshotting the data volume %s (%s)", volume, zone)
	return snapshots.Final(ctx, ec2.NewFromConfig(cfg), stack, volume, zone, poll, func(s snapshots.Snapshot) {
		r.d.Note(stack, "snapshot %s: %s %s", s.ID, s.State, s.Progress)
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
func (r *Runbook) PlanSnapshotDeletion(ctx context.Context, stack, region string, ids []string, olderThan time.Duration, force bool) (*SnapshotDeletion, error) {
	if (len(ids) == 0) == (olderThan == 0) {
		return nil, &automation.UsageError{Err: errors.New("name the snapshots to delete or give --older-than, one or the other")}
	}
	cfg, _, err := r.aws(ctx, stack, region)
	if err != nil {
		return nil, err
	}
	client := ec2.NewFromConfig(cfg)
	chosen, err := snapshots.Select(ctx, client, stack, ids, olderThan, force, r.d.Now())
	var refused *snapshots.RefusedError
	if errors.As(err, &refused) {
		return nil, &automation.UsageError{Err: err}
	}
	return &SnapshotDeletion{Stack: stack, Snapshots: chosen, client: client}, err
}

// DeleteSnapshots carries out a deletion and returns the ids it deleted.
func (r *Runbook) DeleteSnapshots(ctx context.Context, plan *SnapshotDeletion) ([]string, error) {
	deleted, err := snapshots.Delete(ctx, plan.client, plan.Snapshots)
	for _, id := range deleted {
		r.d.Note(plan.Stack, "deleted %s", id)
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
	// Config are the `pulumi config set` commands that deploy the best row, with the keys of the
	// driver's target (its DataVolume's VolumeKeys); none without such a target.
	Config []string `json:"config,omitempty"`
}

// SpotPrices reads the Spot prices of types in every zone of region (or of stack's region), with
// the 7-day median and maximum and the on-demand price. With a stack whose data volume exists,
// the zone it pins is the one the best row is chosen in: the volume cannot move.
func (r *Runbook) SpotPrices(ctx context.Context, stack, region string, types []string) (*SpotPriceReport, error) {
	if len(types) == 0 {
		return nil, &automation.UsageError{Err: errors.New("--instance-types is required: one or more EC2 instance types, as in \"t4g.small t4g.medium\"")}
	}
	for _, t := range types {
		if !instanceType.MatchString(t) {
			return nil, &automation.UsageError{Err: fmt.Errorf("--instance-types: %q is not an EC2 instance type (family.size, as t4g.small)", t)}
		}
	}
	report := &SpotPriceReport{}
	var cfg aws.Config
	switch {
	case stack != "":
		var outputs auto.OutputMap
		var err error
		if cfg, outputs, err = r.aws(ctx, stack, region); err != nil {
			return nil, err
		}
		report.PinnedZone, _ = outputs["availability_zone"].Value.(string)
	case region == "":
		return nil, &automation.UsageError{Err: errors.New("--region is required without --stack")}
	default:
		var err error
		if cfg, err = awsapi.Config(ctx, r.d.AWS(), region); err != nil {
			return nil, err
		}
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
	if v := r.d.DataVolume(); v != nil && report.Best != nil {
		keys := v.VolumeKeys()
		report.Config = []string{
			"pulumi config set " + keys.InstanceType + " " + report.Best.InstanceType,
			"pulumi config set " + keys.Zone + " " + report.Best.Zone,
		}
	}
	if report.Best == nil && report.PinnedZone != "" {
		report.Problems = append(report.Problems, fmt.Sprintf("none of %v has a Spot price in %s, the zone the data volume of %s is in", types, report.PinnedZone, stack))
	}
	return report, nil
}

// SnapshotPolicy reads the stack's DLM policy (its snapshot_policy_id output, or the policy whose
// target tags name the stack), its schedule and retention, and the newest snapshots it made.
func (r *Runbook) SnapshotPolicy(ctx context.Context, stack, region string) (*snapshots.Policy, error) {
	cfg, outputs, err := r.aws(ctx, stack, region)
	if err != nil {
		return nil, err
	}
	id, _ := outputs["snapshot_policy_id"].Value.(string)
	zone, _ := outputs["availability_zone"].Value.(string)
	return snapshots.GetPolicy(ctx, dlm.NewFromConfig(cfg), ec2.NewFromConfig(cfg), stack, id, zone, 5)
}

// VolumeDiagnosis is what DiagnoseVolume found holding a stack's data volume, with the EC2
// client Unstick acts through.
type VolumeDiagnosis struct {
	Stack string
	volumes.Diagnosis
	client *ec2.Client
}

// DiagnoseVolume says what holds the stack's data volume: nothing, the stack's own instance, an
// instance the state does not hold, or an attachment detaching (stuck after
// volumes.StuckAfter).
func (r *Runbook) DiagnoseVolume(ctx context.Context, stack, region string) (*VolumeDiagnosis, error) {
	cfg, outputs, err := r.aws(ctx, stack, region)
	if err != nil {
		return nil, err
	}
	volume, _ := outputs["data_volume_id"].Value.(string)
	instance, _ := outputs["instance_id"].Value.(string)
	if volume == "" {
		return nil, &automation.UsageError{Err: fmt.Errorf("stack %s has no data_volume_id output: there is no volume to unstick", stack)}
	}
	client := ec2.NewFromConfig(cfg)
	diag, err := volumes.Diagnose(ctx, client, volume, instance, r.d.Now())
	if err != nil {
		return nil, err
	}
	return &VolumeDiagnosis{Stack: stack, Diagnosis: diag, client: client}, nil
}

// Unstick detaches the data volume from what DiagnoseVolume found holding it (forced, when
// force), waits until it is available, and refreshes the stack, so that the next up attaches it.
func (r *Runbook) Unstick(ctx context.Context, v *VolumeDiagnosis, force bool, poll time.Duration) (*automation.Result, error) {
	how := ""
	if force {
		how = " (forced)"
	}
	r.d.Note(v.Stack, "detaching %s from %s%s", v.Volume, v.Instance, how)
	if err := volumes.Detach(ctx, v.client, v.Diagnosis, force, poll); err != nil {
		return nil, err
	}
	r.d.Note(v.Stack, "%s is available; refreshing the stack", v.Volume)
	return r.d.Refresh(ctx, v.Stack)
}

// RestorePlan is what a restore would do, checked: the snapshot, and either the configuration a
// new stack is deployed with or the replacement of an existing stack's volume and instance.
type RestorePlan struct {
	Stack    string             `json:"stack"`
	Snapshot snapshots.Snapshot `json:"snapshot"`
	// Existing is true for a stack that is deployed: its volume (Volume, which keeps a final
	// snapshot) and its instance are replaced together.
	Existing bool     `json:"existing"`
	Volume   string   `json:"volume,omitempty"`
	Replace  []string `json:"replace,omitempty"`
	// Config is what the restore sets on the stack.
	Config map[string]string `json:"config"`
}

// Steps are the plan in sentences, for the confirmation.
func (p *RestorePlan) Steps() []string {
	s := p.Snapshot
	steps := []string{fmt.Sprintf("restore %s (%s, %d GiB, %s, taken %s) into stack %s", s.ID, s.Zone, s.SizeGiB, s.Origin,
		s.StartTime.Format(time.RFC3339), p.Stack)}
	for _, k := range slices.Sorted(maps.Keys(p.Config)) {
		steps = append(steps, fmt.Sprintf("set %s = %s", k, p.Config[k]))
	}
	if p.Existing {
		steps = append(steps, fmt.Sprintf("replace the data volume %s (deleted after a final snapshot) with one made from %s", p.Volume, s.ID),
			"replace the instance, which boots on the restored volume (about 6 minutes to READY)")
	} else {
		steps = append(steps, "deploy the stack, its data volume made from "+s.ID)
	}
	return steps
}

// PlanRestore checks snapshot (or, with latest, the stack's newest completed snapshot in its
// zone) and returns what restoring it into stack would do. It refuses, changing nothing (exit 2):
// a snapshot that does not exist, that another stack owns, that is not completed, or whose
// OpenClawAz tag is missing or names another zone than the stack's (or, for a new stack, than
// the availability_zone given in in).
func (r *Runbook) PlanRestore(ctx context.Context, stack, region, snapshot string, latest bool, in automation.ConfigInput) (*RestorePlan, error) {
	if (snapshot == "") == !latest {
		return nil, &automation.UsageError{Err: errors.New("give --snapshot snap-… or --latest, one or the other")}
	}
	cfg, outputs, err := r.aws(ctx, stack, region)
	if err != nil {
		return nil, err
	}
	client := ec2.NewFromConfig(cfg)
	keys := r.d.DataVolume().VolumeKeys()
	plan := &RestorePlan{Stack: stack, Config: map[string]string{}}
	zone, _ := outputs["availability_zone"].Value.(string)
	plan.Volume, _ = outputs["data_volume_id"].Value.(string)
	plan.Existing = plan.Volume != ""
	if !plan.Existing {
		zone = in.Values[keys.Zone]
	}
	refuse := func(format string, args ...any) (*RestorePlan, error) {
		return nil, &automation.UsageError{Err: fmt.Errorf("nothing restored: "+format, args...)}
	}
	all, err := snapshots.List(ctx, client, stack, zone)
	if err != nil {
		return nil, err
	}
	if latest {
		for _, s := range all {
			if s.State == string(ec2types.SnapshotStateCompleted) && s.Problem == "" {
				plan.Snapshot = s
				break
			}
		}
		if plan.Snapshot.ID == "" {
			return refuse("no completed snapshot of %s with a zone tag%s (`clawdeploy snapshots list --stack %s`)", stack,
				map[bool]string{true: " of " + zone}[zone != ""], stack)
		}
	} else {
		found, err := snapshots.Describe(ctx, client, snapshot)
		switch {
		case errors.Is(err, snapshots.ErrNoSnapshot):
			return refuse("%s does not exist in %s", snapshot, cfg.Region)
		case err != nil:
			return nil, err
		}
		if why := unrestorable(found, stack, zone); why != "" {
			return refuse("%s", why)
		}
		plan.Snapshot = found
	}
	plan.Config[keys.Snapshot] = plan.Snapshot.ID
	if plan.Existing {
		plan.Replace = r.d.DataVolume().RestoreReplaces(stack)
	} else {
		plan.Config[keys.Zone] = plan.Snapshot.Zone
		plan.Config[keys.Region] = cfg.Region
	}
	return plan, nil
}

// unrestorable says why a snapshot cannot be restored into stack, whose volume is in zone ("" for
// a stack not deployed): another stack's, not completed, or a zone tag missing or another zone's.
// "" when it can.
func unrestorable(s snapshots.Snapshot, stack, zone string) string {
	switch {
	case s.Stack != stack:
		return fmt.Sprintf("%s belongs to %s, not %s", s.ID, s.Owner(), stack)
	case s.State != string(ec2types.SnapshotStateCompleted):
		return fmt.Sprintf("%s is %s %s: restore it once EC2 says completed", s.ID, s.State, s.Progress)
	}
	if problem := snapshots.ZoneProblem(s.Zone, zone); problem != "" {
		return s.ID + ": " + problem
	}
	return ""
}

// Restore carries out a plan: an up with the plan's configuration (and in's) and, on an existing
// stack, the replacement of its data volume and instance together.
func (r *Runbook) Restore(ctx context.Context, plan *RestorePlan, in automation.ConfigInput) (*automation.Result, error) {
	config := automation.ConfigInput{Values: maps.Clone(in.Values), Secrets: in.Secrets}
	if config.Values == nil {
		config.Values = map[string]string{}
	}
	maps.Copy(config.Values, plan.Config)
	r.d.Note(plan.Stack, "restoring %s: %s", plan.Snapshot.ID, strings.Join(plan.Steps()[1:], "; "))
	return r.d.Up(ctx, plan.Stack, &automation.UpOptions{Config: config, Replace: plan.Replace})
}
