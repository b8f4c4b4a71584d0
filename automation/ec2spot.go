package automation

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/clawdeploy/clawdeploy"
	"github.com/clawdeploy/clawdeploy/cloudinit"
	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/infra"
	"github.com/clawdeploy/clawdeploy/setup"
)

// The ec2-spot target: its stages, the instance `up --retry` replaces, the setup wait on the SSM
// status parameter, and the user-data. Its finder is AWSFinder (ec2spot_finder.go).

// EC2SpotStages are the ec2-spot stages of DESIGN.md.
var EC2SpotStages = Stages{
	Order: []string{
		"secrets_stored", "network_ready", "iam_ready", "backup_bucket_ready", "data_volume_ready",
		"instance_launched", "volume_attached", "snapshot_policy_ready", StageSetupLaunched, StageSetupComplete,
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

// SpotInstanceURN is the ec2-spot instance of a stack: `up --retry` replaces it so that cloud-init
// runs the setup again.
func SpotInstanceURN(stack string) string {
	return "urn:pulumi:" + stack + "::" + clawdeploy.Project + "::" + components.TypeSpotInstance + "$aws:ec2/instance:Instance::" +
		infra.NameSpot + "-instance"
}

// SSMWaiter polls the SSM parameter an ec2-spot instance publishes its setup status to. The value
// is "<instance-id> <status line>": a line from another instance (a replaced one) counts as
// NOT_STARTED.
type SSMWaiter struct {
	// Interval between polls; 0 means DefaultSetupPoll.
	Interval time.Duration
	// Budget for the whole wait; 0 means DefaultSetupTimeout.
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
		cfg, err := awsConfig(ctx, nil, region)
		if err != nil {
			return setup.Status{}, err
		}
		client = ssm.NewFromConfig(cfg)
	}
	return poll(ctx, w.Interval, w.Budget, report, func(ctx context.Context) (setup.Status, error) {
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

// ec2SpotUserData renders the cloud-config `up` would pass to the instance, uncompressed, for the
// stack's configuration with in applied. The header names each secret by the SSM parameter the
// instance reads it from, never its value. A deployed stack's volume and bucket are used;
// placeholders stand in for those of a stack not deployed yet.
func ec2SpotUserData(ctx context.Context, d *Driver, stack string, in ConfigInput) ([]byte, error) {
	values, secrets, err := d.Config(ctx, stack, in)
	if err != nil {
		return nil, err
	}
	cfg, err := infra.LoadConfig(d.projectName, stack, values, secrets)
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	volume, bucket := "vol-00000000000000000", clawdeploy.Project+"-"+strings.ToLower(stack)+"-backup-placeholder"
	if out, err := d.Outputs(ctx, stack); err == nil {
		if v, ok := out["data_volume_id"].Value.(string); ok && v != "" {
			volume = v
		}
		if b, ok := out["backup_bucket"].Value.(string); ok && b != "" {
			bucket = b
		}
	}
	doc, err := cloudinit.Render(infra.UserDataArgs(cfg, volume, bucket))
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
			k, infra.SecretsPath(stack), infra.SecretKeys[k])
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

// ec2SpotCapacity falls back to the next of instance_types when a launch failed for capacity:
// it records the type to use (clawdeploy:instanceType, which the program uses while it is
// listed) and asks for the engine again. When no type is left, it goes back to the first for the
// next try and reports a *CapacityError.
func ec2SpotCapacity(ctx context.Context, d *Driver, stack string, s auto.Stack, err error) (bool, error) {
	code := capacityCodes.FindString(err.Error())
	if code == "" {
		return false, nil
	}
	config, cerr := s.GetAllConfig(ctx)
	if cerr != nil {
		return false, fmt.Errorf("reading the configuration of stack %s: %w", stack, cerr)
	}
	values, secrets := flatten(config)
	cfg, cerr := infra.LoadConfig(d.projectName, stack, values, secrets)
	if cerr != nil {
		return false, &ConfigError{Err: cerr}
	}
	i := slices.Index(cfg.InstanceTypes, cfg.InstanceType)
	next := cfg.InstanceTypes[0] // none left: the next try starts from the first again
	if i+1 < len(cfg.InstanceTypes) {
		next = cfg.InstanceTypes[i+1]
	}
	if serr := d.setConfig(ctx, stack, "", ConfigInput{Values: map[string]string{infra.KeyInstanceTypeChosen: next}}); serr != nil {
		return false, serr
	}
	if i+1 >= len(cfg.InstanceTypes) {
		return false, &CapacityError{Zone: cfg.AvailabilityZone, Types: cfg.InstanceTypes, Code: code, Err: err}
	}
	d.emit(stack, Event{Type: EventDiagnostic, Severity: "warning", Message: fmt.Sprintf(
		"no Spot capacity for %s in %s (%s): trying %s", cfg.InstanceType, cfg.AvailabilityZone, code, next)})
	return true, nil
}

// SpotHostChecker tells whether an ec2-spot deployment's instance is gone: the status parameter
// carries the watcher's INTERRUPTED line for it, or EC2 describes it as shutting down, stopping,
// stopped or terminated, or no longer knows it.
type SpotHostChecker struct {
	// Config is the AWS configuration; nil loads the default one, with the stack's region.
	Config *aws.Config
}

// Check reads the status parameter and the instance.
func (c *SpotHostChecker) Check(ctx context.Context, stack string, outputs auto.OutputMap) (HostState, error) {
	instance, _ := outputs["instance_id"].Value.(string)
	param, _ := outputs["setup_status_parameter"].Value.(string)
	region, _ := outputs["region"].Value.(string)
	if instance == "" {
		return HostState{Down: true, Why: "the stack has no instance"}, nil
	}
	cfg, err := awsConfig(ctx, c.Config, region)
	if err != nil {
		return HostState{}, err
	}
	st := HostState{Host: instance}
	if param != "" {
		out, err := ssm.NewFromConfig(cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(param), WithDecryption: aws.Bool(true)})
		if err != nil && !notFound(err, "ParameterNotFound") {
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
	if notFound(err, "InvalidInstanceID.NotFound") {
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

// ec2SpotIgnored finds the configuration changes the program ignores on a deployed stack: its
// data volume keeps the snapshot it was made from, whatever data_volume_snapshot_id says now. (A
// new availability_zone the program refuses outright, naming the volume's zone.)
func ec2SpotIgnored(ctx context.Context, d *Driver, stack string, s auto.Stack, config auto.ConfigMap) ([]IgnoredChange, error) {
	state, err := exportState(ctx, s)
	if err != nil || state == nil {
		return nil, err
	}
	for _, r := range state.Resources {
		if string(r.Type) != "aws:ebs/volume:Volume" || r.Delete {
			continue
		}
		var ignored []IgnoredChange
		snapshot, _ := r.Inputs["snapshotId"].(string)
		if want := config[fullKey(infra.KeyDataVolumeSnapshotID)].Value; want != "" && want != snapshot {
			restore := fmt.Sprintf("restore explicitly: `clawdeploy restore --stack %s --snapshot %s` replaces the volume and the instance together", stack, want)
			ignored = append(ignored, IgnoredChange{Key: infra.KeyDataVolumeSnapshotID, From: snapshot, To: want,
				Reason:  "the existing data volume is kept: a snapshot id only applies to a new volume",
				Instead: restore})
		}
		return ignored, nil
	}
	return nil, nil
}

// awsConfig is given when it is not nil, else the default AWS configuration (environment, shared
// files, instance role, AWS_ENDPOINT_URL*); either way in region when it is not empty: the
// stack's, or the one an operator named.
func awsConfig(ctx context.Context, given *aws.Config, region string) (aws.Config, error) {
	var cfg aws.Config
	if given != nil {
		cfg = *given
	} else {
		var err error
		if cfg, err = config.LoadDefaultConfig(ctx); err != nil {
			return aws.Config{}, fmt.Errorf("loading the AWS configuration: %w", err)
		}
	}
	if region != "" {
		cfg.Region = region
	}
	return cfg, nil
}
