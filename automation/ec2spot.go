package automation

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
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
	param, _ := outputs["setupStatusParameter"].Value.(string)
	instance, _ := outputs["instanceId"].Value.(string)
	region, _ := outputs["region"].Value.(string)
	if param == "" || instance == "" {
		return setup.Status{}, fmt.Errorf("stack %s has no setupStatusParameter or instanceId output to wait on", stack)
	}
	client := w.Client
	if client == nil {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return setup.Status{}, fmt.Errorf("loading the AWS configuration: %w", err)
		}
		if region != "" {
			cfg.Region = region
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
		if v, ok := out["dataVolumeId"].Value.(string); ok && v != "" {
			volume = v
		}
		if b, ok := out["backupBucket"].Value.(string); ok && b != "" {
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
