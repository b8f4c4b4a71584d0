package automation

import (
	"context"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/cost"
	"github.com/clawdeploy/clawdeploy/infra"
)

// AssumedStateGB is the size of OpenClaw's state the estimates of backups and snapshots assume.
const AssumedStateGB = 1

// CostComparison is the monthly cost of what runs now and of what the up would make, in USD.
type CostComparison struct {
	// Now is what the deployed resources cost; nil for a stack not deployed yet.
	Now    *cost.Estimate `json:"now,omitempty"`
	Change *cost.Estimate `json:"change"`
	Delta  float64        `json:"delta"`
}

// ec2SpotCost estimates what the stack costs now (its deployed instance type and volume size,
// read from the state) and with config, the configuration the up would apply.
func ec2SpotCost(ctx context.Context, d *Driver, stack string, s auto.Stack, cfgMap auto.ConfigMap, existed bool) (*CostComparison, error) {
	values, secrets := flatten(cfgMap)
	cfg, err := infra.LoadConfig(d.projectName, stack, values, secrets)
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	change := costInputs(cfg.Region, cfg.AvailabilityZone, cfg.InstanceType, cfg.DataVolumeSizeGB, cfg.BackupIntervalMinutes)
	awsCfg, err := awsConfig(ctx, d.aws, cfg.Region)
	if err != nil {
		return nil, err
	}
	e := cost.NewEstimator(awsCfg, cfg.Region)
	cmp := &CostComparison{Change: e.Estimate(ctx, change)}
	if existed {
		now := change
		if state, err := exportState(ctx, s); err == nil && state != nil {
			deployed(&now, state)
		}
		// The interval of the backups is the stack's own configuration's, not the change's.
		interval := infra.DefaultBackupIntervalMinutes
		if current, err := s.GetAllConfig(ctx); err == nil {
			if v, err := strconv.Atoi(current[fullKey(infra.KeyBackupIntervalMinutes)].Value); err == nil && v > 0 {
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
		RootVolumeGB: components.DefaultRootVolumeSizeGB, StateGB: AssumedStateGB,
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
