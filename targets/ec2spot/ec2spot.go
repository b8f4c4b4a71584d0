// Package ec2spot is the ec2-spot target: an EC2 Spot instance with a persistent, snapshotted
// data volume. It owns everything only this target knows: its program (program.go, which
// `pulumi up` runs through cmd/infra and the driver runs inline) and configuration (config.go;
// Pulumi.yaml declares the same keys), its stages, the instance `up --retry`
// replaces, the setup wait on the SSM status parameter, the user-data, the fallback to the next
// instance type without Spot capacity, what tells heal the instance is gone, the finder of
// interrupted creations (finder.go), the cost (cost.go) and the pre-upgrade checkpoint and final
// snapshots of the data volume (data.go).
package ec2spot

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy"
	"github.com/clawdeploy/clawdeploy/awsapi"
	"github.com/clawdeploy/clawdeploy/cloudinit"
	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/setup"
	"github.com/clawdeploy/clawdeploy/targets"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
)

// Name is the target's name.
const Name = "ec2-spot"

// Target is the ec2-spot target.
type Target struct{}

var (
	_ targets.Target           = Target{}
	_ targets.Retrier          = Target{}
	_ targets.Healer           = Target{}
	_ targets.Upgrader         = Target{}
	_ targets.DataVolume       = Target{}
	_ targets.Previewer        = Target{}
	_ targets.UserDataRenderer = Target{}
)

// Name implements targets.Target.
func (Target) Name() string { return Name }

// Summary implements targets.Target.
func (Target) Summary() string {
	return `(default) an EC2 Spot instance with a persistent, snapshotted data
volume.`
}

// Program implements targets.Target: Program.
func (Target) Program() pulumi.RunFunc { return Program }

// Stages implements targets.Target.
func (Target) Stages() targets.Stages { return Stages }

// Keys implements targets.Target: Keys, and aws:region.
func (Target) Keys() targets.Keys {
	return targets.Keys{Program: Keys, Help: append([]string{KeyRegion}, Keys...),
		List: []string{KeyInstanceTypes}}
}

// Check implements targets.Target: CheckConfig.
func (Target) Check(project, stack string, values map[string]string, secretKeys []string) error {
	return CheckConfig(project, stack, values, secretKeys)
}

// ProjectYAML implements targets.Target: the repository's Pulumi.yaml.
func (Target) ProjectYAML() []byte { return clawdeploy.ProjectYAML }

// FromCheckout implements targets.Target: an operator's checkout holds this project.
func (Target) FromCheckout() bool { return true }

// NewWaiter implements targets.Target: an SSMWaiter.
func (Target) NewWaiter(poll, timeout time.Duration) targets.Waiter {
	return SSMWaiter{Interval: poll, Budget: timeout}
}

// Relaunch implements targets.Target: the instance.
func (Target) Relaunch(stack string) []string { return []string{InstanceURN(stack)} }

// NewFinder implements targets.Target: a Finder in AWS.
func (Target) NewFinder() targets.Finder { return &Finder{} }

// NewHostChecker implements targets.Healer.
func (Target) NewHostChecker() targets.HostChecker { return &HostChecker{} }

// NewCheckpointer implements targets.Upgrader.
func (Target) NewCheckpointer(cfg *aws.Config, now func() time.Time) targets.Checkpointer {
	return &Checkpointer{Config: cfg, Now: now}
}

// RestoreReplaces implements targets.DataVolume: the data volume and the instance.
func (Target) RestoreReplaces(stack string) []string {
	return []string{DataVolumeURN(stack), InstanceURN(stack)}
}

// VolumeKeys implements targets.DataVolume.
func (Target) VolumeKeys() targets.VolumeKeys {
	return targets.VolumeKeys{Region: KeyRegion, Zone: KeyAvailabilityZone, Snapshot: KeyDataVolumeSnapshotID, InstanceType: KeyInstanceType}
}

// NewFinalSnapshots implements targets.DataVolume.
func (Target) NewFinalSnapshots(cfg *aws.Config) targets.FinalSnapshots {
	return &FinalSnapshots{Config: cfg}
}

// Stages are the ec2-spot stages of DESIGN.md.
var Stages = targets.Stages{
	Order: []string{
		"secrets_stored", "network_ready", "iam_ready", "backup_bucket_ready", "data_volume_ready",
		"instance_launched", "volume_attached", "snapshot_policy_ready", targets.StageSetupLaunched, targets.StageSetupComplete,
	},
	ByType: map[string]string{
		components.TypeSecrets:                      "secrets_stored",
		components.TypeNetwork:                      "network_ready",
		components.TypeInstanceRole:                 "iam_ready",
		components.TypeBackupBucket:                 "backup_bucket_ready",
		components.TypeDataVolume:                   "data_volume_ready",
		components.TypeSpotInstance:                 "instance_launched",
		"aws:ec2/volumeAttachment:VolumeAttachment": "volume_attached",
		components.TypeSnapshotPolicy:               "snapshot_policy_ready",
	},
}

// InstanceURN is the instance of a stack: `up --retry` replaces it so that cloud-init runs the
// setup again.
func InstanceURN(stack string) string {
	return "urn:pulumi:" + stack + "::" + clawdeploy.Project + "::" + components.TypeSpotInstance + "$aws:ec2/instance:Instance::" +
		NameSpot + "-instance"
}

// SSMWaiter polls the SSM parameter an ec2-spot instance publishes its setup status to. The value
// is "<instance-id> <status line>": a line from another instance (a replaced one) counts as
// NOT_STARTED.
type SSMWaiter struct {
	// Interval between polls; 0 means targets.DefaultSetupPoll.
	Interval time.Duration
	// Budget for the whole wait; 0 means targets.DefaultSetupTimeout.
	Budget time.Duration
	// Client reads the parameter; nil means one from the default AWS configuration (environment,
	// shared config, instance role), with the stack's region.
	Client interface {
		GetParameter(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	}
}

// Wait polls until COMPLETE, FAILED or the budget runs out.
func (w SSMWaiter) Wait(ctx context.Context, stack string, outputs auto.OutputMap, report func(setup.Status)) (setup.Status, error) {
	param, _ := outputs["setup_status_parameter"].Value.(string)
	instance, _ := outputs["instance_id"].Value.(string)
	region, _ := outputs["region"].Value.(string)
	if param == "" || instance == "" {
		return setup.Status{}, fmt.Errorf("stack %s has no setup_status_parameter or instance_id output to wait on", stack)
	}
	client := w.Client
	if client == nil {
		cfg, err := awsapi.Config(ctx, nil, region)
		if err != nil {
			return setup.Status{}, err
		}
		client = ssm.NewFromConfig(cfg)
	}
	return targets.Poll(ctx, w.Interval, w.Budget, report, func(ctx context.Context) (setup.Status, error) {
		return w.read(ctx, client, param, instance)
	})
}

func (w SSMWaiter) read(ctx context.Context, client interface {
	GetParameter(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}, param, instance string) (setup.Status, error) {
	out, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(param), WithDecryption: aws.Bool(true)})
	if err != nil {
		return setup.Status{}, err
	}
	value := aws.ToString(out.Parameter.Value)
	id, line, ok := strings.Cut(value, " ")
	if !ok || id != instance {
		return setup.Status{State: setup.NotStarted}, nil
	}
	return setup.ParseStatus(line)
}

// UserData implements targets.UserDataRenderer: the cloud-config `up` would pass to the instance,
// uncompressed, for config. The header names each secret by the SSM parameter the instance reads
// it from, never its value. A deployed stack's volume and bucket are used; placeholders stand in
// for those of a stack not deployed yet.
func (Target) UserData(ctx context.Context, d targets.Deployment, config targets.Config) ([]byte, error) {
	stack := d.Stack()
	cfg, err := LoadConfig(d.Project(), stack, config.Values, config.SecretKeys)
	if err != nil {
		return nil, &targets.ConfigError{Err: err}
	}
	volume, bucket := "vol-00000000000000000", clawdeploy.Project+"-"+strings.ToLower(stack)+"-backup-placeholder"
	if out, err := d.Outputs(ctx); err == nil {
		if v, ok := out["data_volume_id"].Value.(string); ok && v != "" {
			volume = v
		}
		if b, ok := out["backup_bucket"].Value.(string); ok && b != "" {
			bucket = b
		}
	}
	doc, err := cloudinit.Render(UserDataArgs(cfg, volume, bucket))
	if err != nil {
		return nil, err
	}
	// #cloud-config stays the first line: the output is a user-data as it would be passed.
	first, rest, _ := strings.Cut(string(doc), "\n")
	var out strings.Builder
	out.WriteString(first + "\n")
	fmt.Fprintf(&out, "# user-data of stack %s (data volume %s, backup bucket %s)\n", stack, volume, bucket)
	for _, k := range slices.Sorted(maps.Keys(cfg.Secrets)) {
		fmt.Fprintf(&out, "# secret %s: SSM SecureString %s/%s, read into /run/openclaw/.env at start\n",
			k, SecretsPath(stack), stackconfig.SecretKeys[k])
	}
	out.WriteString(rest + "\n")
	return []byte(out.String()), nil
}

// capacityCodes are EC2's answers to a Spot launch that no capacity can serve.
var capacityCodes = regexp.MustCompile(`\b(InsufficientInstanceCapacity|MaxSpotInstanceCountExceeded|SpotMaxPriceTooLow)\b`)

// CapacityError is an up that found no Spot capacity in the pinned zone for any of the instance
// types it may use.
type CapacityError struct {
	Zone  string
	Types []string
	Code  string
	Err   error
}

func (e *CapacityError) Error() string {
	return fmt.Sprintf("no Spot capacity in %s for %s (%s): a later heal tries again (`clawdeploy heal`), "+
		"or add instance types to instance_types", e.Zone, strings.Join(e.Types, ", "), e.Code)
}

// Unwrap returns the engine's error.
func (e *CapacityError) Unwrap() error { return e.Err }

// AfterEngineFailure implements targets.Retrier: it falls back to the next of instance_types
// when a launch failed for capacity. It records the type to use (clawdeploy:instanceType, which
// the program uses while it is listed) and asks for the engine again. When no type is left, it
// goes back to the first for the next try and reports a *CapacityError.
func (Target) AfterEngineFailure(ctx context.Context, d targets.Deployment, err error) (bool, error) {
	code := capacityCodes.FindString(err.Error())
	if code == "" {
		return false, nil
	}
	config, cerr := d.Config(ctx)
	if cerr != nil {
		return false, cerr
	}
	cfg, cerr := LoadConfig(d.Project(), d.Stack(), config.Values, config.SecretKeys)
	if cerr != nil {
		return false, &targets.ConfigError{Err: cerr}
	}
	i := slices.Index(cfg.InstanceTypes, cfg.InstanceType)
	next := cfg.InstanceTypes[0] // none left: the next try starts from the first again
	if i+1 < len(cfg.InstanceTypes) {
		next = cfg.InstanceTypes[i+1]
	}
	if serr := d.SetConfig(ctx, map[string]string{KeyInstanceTypeChosen: next}, nil); serr != nil {
		return false, serr
	}
	if i+1 >= len(cfg.InstanceTypes) {
		return false, &CapacityError{Zone: cfg.AvailabilityZone, Types: cfg.InstanceTypes, Code: code, Err: err}
	}
	d.Warn("no Spot capacity for %s in %s (%s): trying %s", cfg.InstanceType, cfg.AvailabilityZone, code, next)
	return true, nil
}

// HostChecker tells whether an ec2-spot deployment's instance is gone: the status parameter
// carries the watcher's INTERRUPTED line for it, or EC2 describes it as shutting down, stopping,
// stopped or terminated, or no longer knows it.
type HostChecker struct {
	// Config is the AWS configuration; nil loads the default one, with the stack's region.
	Config *aws.Config
}

// Check reads the status parameter and the instance.
func (c *HostChecker) Check(ctx context.Context, stack string, outputs auto.OutputMap) (targets.HostState, error) {
	instance, _ := outputs["instance_id"].Value.(string)
	param, _ := outputs["setup_status_parameter"].Value.(string)
	region, _ := outputs["region"].Value.(string)
	if instance == "" {
		return targets.HostState{Down: true, Why: "the stack has no instance"}, nil
	}
	cfg, err := awsapi.Config(ctx, c.Config, region)
	if err != nil {
		return targets.HostState{}, err
	}
	st := targets.HostState{Host: instance}
	if param != "" {
		out, err := ssm.NewFromConfig(cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(param), WithDecryption: aws.Bool(true)})
		if err != nil && !awsapi.NotFound(err, "ParameterNotFound") {
			return st, fmt.Errorf("reading %s: %w", param, err)
		}
		if err == nil {
			if f := strings.Fields(aws.ToString(out.Parameter.Value)); len(f) >= 2 && f[0] == instance && f[1] == StatusInterrupted {
				st.Down, st.Why = true, fmt.Sprintf("instance %s announced a Spot interruption", instance)
				return st, nil
			}
		}
	}
	out, err := ec2.NewFromConfig(cfg).DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instance}})
	if awsapi.NotFound(err, "InvalidInstanceID.NotFound") {
		st.Down, st.Why = true, fmt.Sprintf("instance %s no longer exists", instance)
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("describing instance %s: %w", instance, err)
	}
	var described []ec2types.Instance
	for _, r := range out.Reservations {
		described = append(described, r.Instances...)
	}
	if len(described) == 0 || described[0].State == nil {
		st.Down, st.Why = true, fmt.Sprintf("instance %s no longer exists", instance)
		return st, nil
	}
	switch state := described[0].State.Name; state {
	case ec2types.InstanceStateNameShuttingDown, ec2types.InstanceStateNameTerminated,
		ec2types.InstanceStateNameStopping, ec2types.InstanceStateNameStopped:
		st.Down, st.Why = true, fmt.Sprintf("instance %s is %s", instance, state)
	default:
		st.Why = fmt.Sprintf("instance %s is %s", instance, state)
	}
	return st, nil
}

// StatusInterrupted is the status line the instance's watcher publishes, after its instance id,
// when a Spot interruption notice arrives: "<instance id> INTERRUPTED <instance id>".
const StatusInterrupted = "INTERRUPTED"

// Ignored implements targets.Previewer: the program ignores a new data_volume_snapshot_id on a
// deployed stack, whose data volume keeps the snapshot it was made from. (A new
// availability_zone the program refuses outright, naming the volume's zone.)
func (Target) Ignored(ctx context.Context, d targets.Deployment, config targets.Config) ([]targets.IgnoredChange, error) {
	state, err := d.State(ctx)
	if err != nil || state == nil {
		return nil, err
	}
	for _, r := range state.Resources {
		if string(r.Type) != "aws:ebs/volume:Volume" || r.Delete || slices.Contains(config.Replacing, string(r.URN)) {
			continue
		}
		var ignored []targets.IgnoredChange
		snapshot, _ := r.Inputs["snapshotId"].(string)
		if want := config.Value(KeyDataVolumeSnapshotID); want != "" && want != snapshot {
			restore := fmt.Sprintf("restore explicitly: `clawdeploy restore --stack %s --snapshot %s` replaces the volume and the instance together", d.Stack(), want)
			ignored = append(ignored, targets.IgnoredChange{Key: KeyDataVolumeSnapshotID, From: snapshot, To: want,
				Reason:  "the existing data volume is kept: a snapshot id only applies to a new volume",
				Instead: restore})
		}
		return ignored, nil
	}
	return nil, nil
}

// DataVolumeURN is the URN of a stack's data volume: what a restore replaces, with the instance.
func DataVolumeURN(stack string) string {
	return "urn:pulumi:" + stack + "::" + clawdeploy.Project + "::" + components.TypeDataVolume + "$aws:ebs/volume:Volume::" +
		NameData + "-volume"
}
