package ec2spot

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/cloudinit"
	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
)

// Logical names of the program's components. They are part of every resource's URN: changing one
// replaces everything under it.
const (
	NameData         = "data"
	NameSecrets      = "secrets"
	NameNetwork      = "network"
	NameBackup       = "backup"
	NameMonitoring   = "monitoring"
	NameInstanceRole = "instance-role"
	NameSpot         = "spot"
	NameSnapshots    = "snapshots"
)

// ParameterPath is the stack's SSM path: its secrets, its setup status, its agent configuration.
func ParameterPath(stack string) string { return "/openclaw/" + stack }

// SecretsPath holds the stack's secrets, one SecureString per environment variable.
func SecretsPath(stack string) string { return ParameterPath(stack) + "/env" }

// StatusParameter is where the stack's instance publishes its setup status.
func StatusParameter(stack string) string { return ParameterPath(stack) + "/setup-status" }

// AgentConfigParameter holds the stack's CloudWatch agent configuration.
func AgentConfigParameter(stack string) string { return ParameterPath(stack) + "/cloudwatch-agent" }

// Outputs are what the program exports.
type Outputs struct {
	Region           pulumi.StringOutput
	InstanceID       pulumi.StringOutput
	DataVolumeID     pulumi.StringOutput
	AvailabilityZone pulumi.StringOutput
	BackupBucket     pulumi.StringOutput
	SnapshotPolicyID pulumi.StringOutput
	PrivateIP        pulumi.StringOutput
	// GatewayURL is where the gateway answers once GatewayTunnel runs on the operator's machine.
	GatewayURL pulumi.StringOutput
	// GatewayTunnel is the SSM port forwarding command that reaches the gateway.
	GatewayTunnel pulumi.StringOutput
	// StatusParameter is where the instance publishes its setup status.
	StatusParameter pulumi.StringOutput
	// GatewayToken is the configured token, as a secret; absent when none is configured.
	GatewayToken *pulumi.StringOutput
	// UserData is the instance's user-data, gzipped and base64-encoded.
	UserData pulumi.StringOutput
	// Image is the gateway's image the instance runs: pinned to its digest once the driver pinned it.
	Image pulumi.StringOutput
}

// Program is the Pulumi program of an OpenClaw deployment on EC2 Spot.
func Program(ctx *pulumi.Context) error {
	out, err := Deploy(ctx)
	if err != nil {
		return err
	}
	ctx.Export("region", out.Region)
	ctx.Export("instance_id", out.InstanceID)
	ctx.Export("data_volume_id", out.DataVolumeID)
	ctx.Export("availability_zone", out.AvailabilityZone)
	ctx.Export("backup_bucket", out.BackupBucket)
	ctx.Export("snapshot_policy_id", out.SnapshotPolicyID)
	ctx.Export("private_ip", out.PrivateIP)
	ctx.Export("gateway_url", out.GatewayURL)
	ctx.Export("gateway_tunnel", out.GatewayTunnel)
	ctx.Export("setup_status_parameter", out.StatusParameter)
	ctx.Export("openclaw_image", out.Image)
	if out.GatewayToken != nil {
		ctx.Export("gateway_token", *out.GatewayToken)
	}
	return nil
}

// Deploy registers the deployment and returns its outputs. Everything that can refuse the
// configuration (validation, the subnet's zone, the AZ guard) runs before the first resource is
// registered, so a refused preview or up has created nothing.
func Deploy(ctx *pulumi.Context) (*Outputs, error) {
	cfg, err := Load(ctx)
	if err != nil {
		return nil, err
	}
	account, err := aws.GetCallerIdentity(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("looking up the AWS account: %w", err)
	}
	partition, err := aws.GetPartition(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("looking up the AWS partition: %w", err)
	}
	ami, keepAMI, err := resolveAMI(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var existing *components.ExistingSubnet
	if cfg.SubnetID != "" {
		if existing, err = components.LookupSubnetInZone(ctx, cfg.SubnetID, cfg.AvailabilityZone); err != nil {
			return nil, err
		}
	}

	// First: its AZ guard may still refuse.
	data, err := components.NewDataVolume(ctx, NameData, &components.DataVolumeArgs{
		AvailabilityZone: cfg.AvailabilityZone,
		SizeGB:           cfg.DataVolumeSizeGB,
		SnapshotID:       cfg.DataVolumeSnapshotID,
	})
	if err != nil {
		return nil, err
	}

	path := ParameterPath(cfg.Stack)
	values := map[string]pulumi.StringInput{}
	for key, s := range cfg.Secrets {
		values[stackconfig.SecretKeys[key]] = s.Output()
	}
	secrets, err := components.NewSecrets(ctx, NameSecrets, &components.SecretsArgs{Path: path, Values: values})
	if err != nil {
		return nil, err
	}
	network, err := components.NewNetwork(ctx, NameNetwork, &components.NetworkArgs{
		AvailabilityZone: cfg.AvailabilityZone,
		Existing:         existing,
	})
	if err != nil {
		return nil, err
	}
	backup, err := components.NewBackupBucket(ctx, NameBackup, &components.BackupBucketArgs{})
	if err != nil {
		return nil, err
	}
	logs := make([]components.LogFile, len(cloudinit.Logs))
	for i, l := range cloudinit.Logs {
		logs[i] = components.LogFile{Name: l.Name, Path: l.Path}
	}
	namespace := "OpenClaw/" + cfg.Stack
	monitoring, err := components.NewMonitoring(ctx, NameMonitoring, &components.MonitoringArgs{
		LogGroupPrefix:   path + "/",
		RetentionDays:    cfg.LogRetentionDays,
		Logs:             logs,
		ConfigParameter:  AgentConfigParameter(cfg.Stack),
		MetricsNamespace: namespace,
		DiskPaths:        []string{"/", cloudinit.DataDir},
	})
	if err != nil {
		return nil, err
	}
	role, err := components.NewInstanceRole(ctx, NameInstanceRole, &components.InstanceRoleArgs{
		Partition:        partition.Partition,
		Region:           cfg.Region,
		AccountID:        account.AccountId,
		ParameterPath:    path,
		StatusParameter:  StatusParameter(cfg.Stack),
		BucketArn:        backup.BucketArn,
		BackupPrefix:     "backups/",
		LogGroupPrefix:   path + "/",
		MetricsNamespace: namespace,
	})
	if err != nil {
		return nil, err
	}

	// The user-data names the parameters and the log configuration: depending on their outputs
	// makes them exist before the instance boots.
	userData := pulumi.All(data.VolumeID, backup.BucketName, secrets.EnvPath, secrets.StatusParameter,
		monitoring.ConfigParameter).ApplyT(func(v []any) (string, error) {
		return UserData(UserDataArgs(cfg, v[0].(string), v[1].(string)))
	}).(pulumi.StringOutput)

	spot, err := components.NewSpotInstance(ctx, NameSpot, &components.SpotInstanceArgs{
		InstanceType:      cfg.InstanceType,
		AMI:               ami,
		KeepAMI:           keepAMI,
		VpcID:             network.VpcID,
		SubnetID:          network.SubnetID,
		AssociatePublicIP: network.Public,
		InstanceProfile:   role.InstanceProfileName,
		UserDataBase64:    userData,
	})
	if err != nil {
		return nil, err
	}
	if _, err := data.Attach(ctx, spot.InstanceID); err != nil {
		return nil, err
	}
	snapshots, err := components.NewSnapshotPolicy(ctx, NameSnapshots, &components.SnapshotPolicyArgs{
		IntervalHours: cfg.SnapshotIntervalHours,
		RetainCount:   cfg.SnapshotRetentionCount,
		TargetTags:    map[string]string{components.TagData: "true", components.TagStack: cfg.Stack},
	})
	if err != nil {
		return nil, err
	}

	out := &Outputs{
		Region:           pulumi.String(cfg.Region).ToStringOutput(),
		InstanceID:       spot.InstanceID,
		DataVolumeID:     data.VolumeID,
		AvailabilityZone: data.AvailabilityZone,
		BackupBucket:     backup.BucketName,
		SnapshotPolicyID: snapshots.PolicyID,
		PrivateIP:        spot.PrivateIP,
		GatewayURL:       pulumi.Sprintf("http://127.0.0.1:%d/", cloudinit.GatewayPort),
		GatewayTunnel: pulumi.Sprintf("aws ssm start-session --region %s --target %s "+
			"--document-name AWS-StartPortForwardingSession --parameters portNumber=%d,localPortNumber=%d",
			cfg.Region, spot.InstanceID, cloudinit.GatewayPort, cloudinit.GatewayPort),
		StatusParameter: secrets.StatusParameter,
		UserData:        userData,
		Image:           pulumi.String(cfg.OpenClawImage).ToStringOutput(),
	}
	if token, ok := cfg.Secrets[stackconfig.KeyGatewayToken]; ok {
		o := token.Output()
		out.GatewayToken = &o
	}
	return out, nil
}

// UserDataArgs are the user-data's arguments for a stack's configuration and the names of its
// data volume and backup bucket.
func UserDataArgs(cfg *Config, volumeID, bucket string) cloudinit.Args {
	return cloudinit.Args{
		Stack:                     cfg.Stack,
		Region:                    cfg.Region,
		VolumeID:                  volumeID,
		BackupBucket:              bucket,
		SecretsPath:               SecretsPath(cfg.Stack),
		StatusParameter:           StatusParameter(cfg.Stack),
		CloudWatchConfigParameter: AgentConfigParameter(cfg.Stack),
		Image:                     cfg.OpenClawImage,
		BackupIntervalMinutes:     cfg.BackupIntervalMinutes,
		OnboardAuthChoice:         stackconfig.OnboardAuthChoice(cfg.Secrets),
	}
}

// resolveAMI returns the AMI to launch: the pinned ami_id, or the latest Amazon Linux 2023 image
// for the instance's architecture, which the instance then keeps (keep is true) so a newer image
// never replaces it by itself.
func resolveAMI(ctx *pulumi.Context, cfg *Config) (id string, keep bool, err error) {
	if cfg.AMIID != "" {
		return cfg.AMIID, false, nil
	}
	arch := cfg.Architecture()
	image, err := ec2.LookupAmi(ctx, &ec2.LookupAmiArgs{
		Owners:     []string{"amazon"},
		MostRecent: pulumi.BoolRef(true),
		Filters: []ec2.GetAmiFilter{
			{Name: "name", Values: []string{"al2023-ami-2023.*-kernel-*-" + arch}},
			{Name: "architecture", Values: []string{arch}},
			{Name: "state", Values: []string{"available"}},
		},
	})
	if err != nil {
		return "", false, fmt.Errorf("looking up the latest Amazon Linux 2023 AMI for %s (pin one with ami_id): %w", arch, err)
	}
	return image.Id, true, nil
}

// UserData renders the instance's user-data, gzipped (EC2 takes 16 KiB; cloud-init reads gzip)
// and base64-encoded for the instance's userDataBase64.
func UserData(args cloudinit.Args) (string, error) {
	doc, err := cloudinit.Render(args)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	z, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return "", err
	}
	if _, err := z.Write(doc); err != nil {
		return "", err
	}
	if err := z.Close(); err != nil {
		return "", err
	}
	if b.Len() > 16384 {
		return "", fmt.Errorf("the user-data is %d bytes gzipped, over EC2's 16384", b.Len())
	}
	return base64.StdEncoding.EncodeToString(b.Bytes()), nil
}
