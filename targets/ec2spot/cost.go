package ec2spot

import (
	"context"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/clawdeploy/clawdeploy/awsapi"
	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/cost"
	"github.com/clawdeploy/clawdeploy/targets"
)

// Cost implements targets.Previewer: what the stack costs now (its deployed instance type and
// volume size, read from the state) and with config, the configuration the up would apply.
func (Target) Cost(ctx context.Context, d targets.Deployment, config targets.Config, existed bool) (*targets.CostComparison, error) {
	cfg, err := LoadConfig(d.Project(), d.Stack(), config.Values, config.SecretKeys)
	if err != nil {
		return nil, &targets.ConfigError{Err: err}
	}
	change := costInputs(cfg.Region, cfg.AvailabilityZone, cfg.InstanceType, cfg.DataVolumeSizeGB, cfg.BackupIntervalMinutes)
	awsCfg, err := awsapi.Config(ctx, d.AWS(), cfg.Region)
	if err != nil {
		return nil, err
	}
	e := cost.NewEstimator(awsCfg, cfg.Region)
	cmp := &targets.CostComparison{Change: e.Estimate(ctx, change)}
	if existed {
		now := change
		if state, err := d.State(ctx); err == nil && state != nil {
			deployed(&now, state)
		}
		// The interval of the backups is the stack's own configuration's, not the change's.
		interval := DefaultBackupIntervalMinutes
		if current, err := d.Config(ctx); err == nil {
			if v, err := strconv.Atoi(current.Value(KeyBackupIntervalMinutes)); err == nil && v > 0 {
				interval = v
			}
		}
		now.BackupVersions = costInputs(now.Region, now.Zone, now.InstanceType, now.DataVolumeGB, interval).BackupVersions
		cmp.Now = e.Estimate(ctx, now)
		cmp.Delta = cmp.Change.Total - cmp.Now.Total
	} else {
		cmp.Delta = cmp.Change.Total
	}
	return cmp, nil
}

// costInputs are what a deployment costs: the backups it keeps follow from their interval (the
// bucket keeps the replaced ones for DefaultNoncurrentVersionDays, and at least
// DefaultKeepNoncurrentVersions).
func costInputs(region, zone, instanceType string, dataGB, backupIntervalMinutes int) cost.Inputs {
	replaced := components.DefaultNoncurrentVersionDays * 24 * 60 / max(backupIntervalMinutes, 1)
	return cost.Inputs{Region: region, Zone: zone, InstanceType: instanceType, DataVolumeGB: dataGB,
		RootVolumeGB: components.DefaultRootVolumeSizeGB, StateGB: cost.AssumedStateGB,
		BackupVersions: 1 + max(replaced, components.DefaultKeepNoncurrentVersions)}
}

// deployed sets in from what the state holds: the instance's type, the data volume's size and
// zone.
func deployed(in *cost.Inputs, state *apitype.DeploymentV3) {
	for _, r := range state.Resources {
		if r.Delete {
			continue
		}
		switch string(r.Type) {
		case "aws:ec2/instance:Instance":
			if t, ok := r.Inputs["instanceType"].(string); ok && t != "" {
				in.InstanceType = t
			}
		case "aws:ebs/volume:Volume":
			if size, ok := r.Inputs["size"].(float64); ok && size > 0 {
				in.DataVolumeGB = int(size)
			}
			if z, ok := r.Inputs["availabilityZone"].(string); ok && strings.HasPrefix(z, in.Region) {
				in.Zone = z
			}
		}
	}
}
