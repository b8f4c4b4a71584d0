package ec2spot

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/cloudinit"
	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/names"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
)

// Config keys in the project namespace, named as in the runbook. Pulumi.yaml declares each of them;
// a test keeps the declarations and the defaults below in step.
const (
	KeyAvailabilityZone       = "availability_zone"
	KeyInstanceType           = "instance_type"
	KeyInstanceTypes          = "instance_types"
	KeyDataVolumeSizeGB       = "data_volume_size_gb"
	KeyDataVolumeSnapshotID   = "data_volume_snapshot_id"
	KeySnapshotRetentionCount = "snapshot_retention_count"
	KeySnapshotIntervalHours  = "snapshot_interval_hours"
	KeyBackupIntervalMinutes  = "backup_interval_minutes"
	KeyAMIID                  = "ami_id"
	KeySubnetID               = "subnet_id"
	KeyLogRetentionDays       = "log_retention_days"

	// KeyRegion is the AWS provider's region, in the aws namespace.
	KeyRegion = "aws:region"

	// KeyInstanceTypeChosen is the type of instance_types the driver falls back to when the ones
	// before it had no Spot capacity, in the clawdeploy namespace: the driver sets it, never the
	// operator. A type no longer listed is ignored.
	KeyInstanceTypeChosen = "clawdeploy:instanceType"
)

// Keys lists every project config key, in the order Pulumi.yaml declares them.
var Keys = []string{
	KeyAvailabilityZone, KeyInstanceType, KeyInstanceTypes, KeyDataVolumeSizeGB, KeyDataVolumeSnapshotID,
	KeySnapshotRetentionCount, KeySnapshotIntervalHours, KeyBackupIntervalMinutes, KeyAMIID,
	stackconfig.KeyOpenClawImage, KeySubnetID, KeyLogRetentionDays, stackconfig.KeyGatewayToken, stackconfig.KeyAnthropicAPIKey, stackconfig.KeyOpenAIAPIKey, stackconfig.KeyOpenRouterAPIKey,
	stackconfig.KeyGeminiAPIKey,
}

// Defaults for the optional keys. Pulumi.yaml declares the same values.
const (
	DefaultInstanceType           = "t4g.small"
	DefaultDataVolumeSizeGB       = 20
	DefaultSnapshotRetentionCount = 7
	DefaultSnapshotIntervalHours  = 24
	DefaultBackupIntervalMinutes  = 20
	DefaultLogRetentionDays       = 30
)

// Limits enforced by Validate.
const (
	MinDataVolumeSizeGB       = 1     // gp3 minimum
	MaxDataVolumeSizeGB       = 16384 // gp3 maximum
	MinSnapshotRetentionCount = 1
	MaxSnapshotRetentionCount = 1000 // DLM count-based retention maximum
	MinBackupIntervalMinutes  = cloudinit.MinBackupIntervalMinutes
	MaxBackupIntervalMinutes  = cloudinit.MaxBackupIntervalMinutes
)

// SnapshotIntervals are the intervals, in hours, that a DLM create rule accepts.
var SnapshotIntervals = components.DLMIntervals

// Config is the validated configuration of one ec2-spot stack.
type Config struct {
	// Stack is the Pulumi stack name; every resource is tagged with it.
	Stack string
	// Region is aws:region.
	Region string
	// AvailabilityZone pins the instance and the data volume; it is never guessed.
	AvailabilityZone string
	// InstanceType is the EC2 instance type requested on the Spot market: the one of
	// InstanceTypes in use.
	InstanceType string
	// InstanceTypes are the types to try in order when one has no Spot capacity in the zone:
	// instance_types, or the one instance_type.
	InstanceTypes []string
	// DataVolumeSizeGB is the size of the persistent gp3 data volume.
	DataVolumeSizeGB int
	// DataVolumeSnapshotID, when set, is the snapshot the data volume is restored from.
	DataVolumeSnapshotID string
	// SnapshotRetentionCount is how many DLM snapshots are kept.
	SnapshotRetentionCount int
	// SnapshotIntervalHours is how often DLM snapshots the data volume.
	SnapshotIntervalHours int
	// BackupIntervalMinutes is how often the instance syncs its data to S3.
	BackupIntervalMinutes int
	// AMIID pins the AMI; empty means "resolve once and keep".
	AMIID string
	// OpenClawImage is the gateway's container image: openclaw_image, pinned to the digest the
	// driver resolved it to when it did (stackconfig.Reader.Image).
	OpenClawImage string
	// SubnetID, when set, is an existing subnet to run in instead of a VPC of the stack's own.
	SubnetID string
	// LogRetentionDays is how long CloudWatch keeps the instance's logs.
	LogRetentionDays int
	// Secrets holds the secret values by config key; keys that are not set are absent.
	Secrets map[string]stackconfig.Secret
}

// Load reads the stack's configuration once, with defaults applied, and validates it. Every
// problem is reported at once, in a *ValidationError, before the program registers anything.
func Load(ctx *pulumi.Context) (*Config, error) {
	r := stackconfig.NewReader(ctx)
	c := &Config{
		Stack:                  ctx.Stack(),
		Region:                 r.Str(KeyRegion, ""),
		AvailabilityZone:       r.Str(KeyAvailabilityZone, ""),
		InstanceType:           r.Str(KeyInstanceType, DefaultInstanceType),
		DataVolumeSizeGB:       r.Int(KeyDataVolumeSizeGB, DefaultDataVolumeSizeGB),
		DataVolumeSnapshotID:   r.Str(KeyDataVolumeSnapshotID, ""),
		SnapshotRetentionCount: r.Int(KeySnapshotRetentionCount, DefaultSnapshotRetentionCount),
		SnapshotIntervalHours:  r.Int(KeySnapshotIntervalHours, DefaultSnapshotIntervalHours),
		BackupIntervalMinutes:  r.Int(KeyBackupIntervalMinutes, DefaultBackupIntervalMinutes),
		AMIID:                  r.Str(KeyAMIID, ""),
		OpenClawImage:          r.Image(stackconfig.DefaultOpenClawImage),
		SubnetID:               r.Str(KeySubnetID, ""),
		LogRetentionDays:       r.Int(KeyLogRetentionDays, DefaultLogRetentionDays),
	}
	c.InstanceTypes = r.List(KeyInstanceTypes, []string{c.InstanceType}, "a list of EC2 instance types, like t4g.small,t4g.medium")
	c.InstanceType = c.InstanceTypes[0]
	if chosen, ok := r.Raw(KeyInstanceTypeChosen); ok && slices.Contains(c.InstanceTypes, chosen) {
		c.InstanceType = chosen
	}
	c.Secrets = r.GatewaySecrets()
	if err := r.Checked(c.Stack, c.Validate()); err != nil {
		return nil, err
	}
	return c, nil
}

var (
	instanceTypePattern = regexp.MustCompile(
		`^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.(nano|micro|small|medium|large|[0-9]*xlarge|metal(-[0-9]+xl)?)$`)
	snapshotIDPattern = regexp.MustCompile(`^snap-([0-9a-f]{8}|[0-9a-f]{17})$`)
	amiIDPattern      = regexp.MustCompile(`^ami-([0-9a-f]{8}|[0-9a-f]{17})$`)
	subnetIDPattern   = regexp.MustCompile(`^subnet-([0-9a-f]{8}|[0-9a-f]{17})$`)
)

// Validate checks every value against what AWS and the runbook allow. It is pure: it reads only the
// struct, so tests call it directly.
func (c *Config) Validate() error {
	var fields []*stackconfig.FieldError
	bad := func(key, value, allowed string) {
		fields = append(fields, &stackconfig.FieldError{Key: key, Value: value, Allowed: allowed})
	}

	regionOK := names.IsRegion(c.Region)
	switch {
	case c.Region == "":
		bad(KeyRegion, c.Region, "set to the AWS region to deploy to (pulumi config set aws:region me-central-1)")
	case !regionOK:
		bad(KeyRegion, c.Region, "an AWS region name like me-central-1")
	}

	switch {
	case c.AvailabilityZone == "":
		bad(KeyAvailabilityZone, c.AvailabilityZone,
			"set: the zone is pinned, never guessed (pulumi config set availability_zone me-central-1a)")
	case regionOK && !isZoneOf(c.AvailabilityZone, c.Region):
		bad(KeyAvailabilityZone, c.AvailabilityZone,
			fmt.Sprintf("an availability zone of region %s, like %sa", c.Region, c.Region))
	case !regionOK && !names.IsZone(c.AvailabilityZone):
		bad(KeyAvailabilityZone, c.AvailabilityZone, "an availability zone name like me-central-1a")
	}

	if len(c.InstanceTypes) == 1 && c.InstanceTypes[0] == c.InstanceType {
		if !instanceTypePattern.MatchString(c.InstanceType) {
			bad(KeyInstanceType, c.InstanceType, "an EC2 instance type like t4g.small or m7i.large")
		} else if why := tooSmall(c.InstanceType); why != "" {
			bad(KeyInstanceType, c.InstanceType, "an instance type with enough memory: "+why)
		}
	} else {
		list := strings.Join(c.InstanceTypes, ",")
		for _, typ := range c.InstanceTypes {
			if !instanceTypePattern.MatchString(typ) {
				bad(KeyInstanceTypes, list, fmt.Sprintf("a list of EC2 instance types like t4g.small,t4g.medium, and %q is not one", typ))
			}
		}
		for _, typ := range c.InstanceTypes {
			if why := tooSmall(typ); why != "" {
				bad(KeyInstanceTypes, list, "instance types with enough memory: "+why)
				break
			}
		}
		for _, typ := range c.InstanceTypes {
			if arch := architectureOf(typ); arch != architectureOf(c.InstanceTypes[0]) {
				bad(KeyInstanceTypes, list, fmt.Sprintf("of one CPU architecture, since the AMI is resolved once: %s is %s, %s is %s",
					c.InstanceTypes[0], architectureOf(c.InstanceTypes[0]), typ, arch))
				break
			}
		}
	}

	if c.DataVolumeSizeGB < MinDataVolumeSizeGB || c.DataVolumeSizeGB > MaxDataVolumeSizeGB {
		bad(KeyDataVolumeSizeGB, strconv.Itoa(c.DataVolumeSizeGB),
			fmt.Sprintf("between %d and %d (GiB, gp3)", MinDataVolumeSizeGB, MaxDataVolumeSizeGB))
	}

	if c.DataVolumeSnapshotID != "" && !snapshotIDPattern.MatchString(c.DataVolumeSnapshotID) {
		bad(KeyDataVolumeSnapshotID, c.DataVolumeSnapshotID,
			"empty or a snapshot id like snap-0123456789abcdef0")
	}

	if c.SnapshotRetentionCount < MinSnapshotRetentionCount || c.SnapshotRetentionCount > MaxSnapshotRetentionCount {
		bad(KeySnapshotRetentionCount, strconv.Itoa(c.SnapshotRetentionCount),
			fmt.Sprintf("between %d and %d", MinSnapshotRetentionCount, MaxSnapshotRetentionCount))
	}

	if !slices.Contains(SnapshotIntervals, c.SnapshotIntervalHours) {
		bad(KeySnapshotIntervalHours, strconv.Itoa(c.SnapshotIntervalHours),
			"one of 1, 2, 3, 4, 6, 8, 12, 24 (hours, as DLM allows)")
	}

	if c.BackupIntervalMinutes < MinBackupIntervalMinutes || c.BackupIntervalMinutes > MaxBackupIntervalMinutes {
		bad(KeyBackupIntervalMinutes, strconv.Itoa(c.BackupIntervalMinutes),
			fmt.Sprintf("between %d and %d (minutes)", MinBackupIntervalMinutes, MaxBackupIntervalMinutes))
	}

	if c.AMIID != "" && !amiIDPattern.MatchString(c.AMIID) {
		bad(KeyAMIID, c.AMIID, "empty or an AMI id like ami-0123456789abcdef0")
	}

	fields = append(fields, stackconfig.CheckImage(c.OpenClawImage)...)

	if c.SubnetID != "" && !subnetIDPattern.MatchString(c.SubnetID) {
		bad(KeySubnetID, c.SubnetID, "empty (a VPC of the stack's own) or a subnet id like subnet-0123456789abcdef0")
	}

	if !slices.Contains(components.LogRetentionDays, c.LogRetentionDays) {
		bad(KeyLogRetentionDays, strconv.Itoa(c.LogRetentionDays),
			"a retention CloudWatch accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653 (days)")
	}

	fields = append(fields, stackconfig.CheckSecrets(c.Stack, c.Secrets, c.Secrets)...)

	if len(fields) > 0 {
		return &stackconfig.ValidationError{Stack: c.Stack, Fields: fields}
	}
	return nil
}

// isZoneOf reports whether zone is a standard availability zone of region: the region's name
// followed by one letter.
func isZoneOf(zone, region string) bool {
	suffix, ok := strings.CutPrefix(zone, region)
	return ok && len(suffix) == 1 && suffix[0] >= 'a' && suffix[0] <= 'z'
}

// Architecture returns the CPU architecture of the instance type, as AMIs name it: "arm64" for
// Graviton families (a "g" after the generation digit, as in t4g, c7gn, x2gd; and a1), else
// "x86_64".
func (c *Config) Architecture() string { return architectureOf(c.InstanceType) }

// MinMemoryMiB is the least memory an instance type may have. OpenClaw's gateway keeps about 1 GiB
// resident (954-1,021 MiB measured in the real-gateway tests), beside docker, the system, the
// setup's CLI and the backups.
const MinMemoryMiB = 2048

// smallTypes are the EC2 instance types with less memory than MinMemoryMiB, with their memory in
// MiB, as EC2's DescribeInstanceTypes gives it. TestSmallTypesAreEC2s checks the list against the
// instance types moto serves (its copy of EC2's answer, 1,263 types).
var smallTypes = map[string]int{
	"t1.micro": 627, "t2.nano": 512, "t2.micro": 1024, "t3.nano": 512, "t3.micro": 1024, "t3a.nano": 512,
	"t3a.micro": 1024, "t4g.nano": 512, "t4g.micro": 1024, "m1.small": 1740, "c1.medium": 1740,
}

// tooSmall returns why an instance type has too little memory for OpenClaw, or "".
func tooSmall(typ string) string {
	mib, ok := smallTypes[typ]
	if !ok {
		return ""
	}
	return fmt.Sprintf("%s has %d MiB of memory, and an instance needs at least %d MiB (OpenClaw's gateway alone keeps about 1 GiB resident): "+
		"t4g.small or t3.small is the smallest", typ, mib, MinMemoryMiB)
}

// architectureOf is an instance type's CPU architecture, as AMIs name it.
func architectureOf(instanceType string) string {
	family, _, _ := strings.Cut(instanceType, ".")
	if family == "a1" {
		return "arm64"
	}
	if i := strings.IndexAny(family, "0123456789"); i >= 0 && strings.Contains(family[i+1:], "g") {
		return "arm64"
	}
	return "x86_64"
}

// LoadConfig is Load without an engine: it runs Load on values (namespaced keys, like
// openclaw:availability_zone and aws:region) with the keys in secretKeys marked secret.
func LoadConfig(project, stack string, values map[string]string, secretKeys []string) (*Config, error) {
	var cfg *Config
	err := stackconfig.WithoutEngine(project, stack, values, secretKeys, func(ctx *pulumi.Context) (err error) {
		cfg, err = Load(ctx)
		return err
	})
	return cfg, err
}

// CheckConfig validates a stack's configuration without an engine. The driver calls it so that
// bad input fails before anything is touched.
func CheckConfig(project, stack string, values map[string]string, secretKeys []string) error {
	_, err := LoadConfig(project, stack, values, secretKeys)
	return err
}
