package infra

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/cloudinit"
	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/names"
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
	KeyOpenClawImage          = "openclaw_image"
	KeySubnetID               = "subnet_id"
	KeyLogRetentionDays       = "log_retention_days"

	KeyGatewayToken     = "gateway_token"
	KeyAnthropicAPIKey  = "anthropic_api_key"
	KeyOpenAIAPIKey     = "openai_api_key"
	KeyOpenRouterAPIKey = "openrouter_api_key"
	KeyGeminiAPIKey     = "gemini_api_key"

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
	KeyOpenClawImage, KeySubnetID, KeyLogRetentionDays, KeyGatewayToken, KeyAnthropicAPIKey, KeyOpenAIAPIKey, KeyOpenRouterAPIKey,
	KeyGeminiAPIKey,
}

// Defaults for the optional keys. Pulumi.yaml declares the same values.
const (
	DefaultInstanceType           = "t4g.small"
	DefaultDataVolumeSizeGB       = 20
	DefaultSnapshotRetentionCount = 7
	DefaultSnapshotIntervalHours  = 24
	DefaultBackupIntervalMinutes  = 20
	DefaultOpenClawImage          = "ghcr.io/openclaw/openclaw:latest"
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

// SecretKeys are the config keys whose values are secrets. Each must be set with
// `pulumi config set --secret`; each that is set is stored in SSM and rendered into the gateway's
// environment as the variable it maps to.
var SecretKeys = map[string]string{
	KeyGatewayToken:     "OPENCLAW_GATEWAY_TOKEN",
	KeyAnthropicAPIKey:  "ANTHROPIC_API_KEY",
	KeyOpenAIAPIKey:     "OPENAI_API_KEY",
	KeyOpenRouterAPIKey: "OPENROUTER_API_KEY",
	KeyGeminiAPIKey:     "GEMINI_API_KEY",
}

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
	// OpenClawImage is the gateway's container image reference.
	OpenClawImage string
	// SubnetID, when set, is an existing subnet to run in instead of a VPC of the stack's own.
	SubnetID string
	// LogRetentionDays is how long CloudWatch keeps the instance's logs.
	LogRetentionDays int
	// Secrets holds the secret values by config key; keys that are not set are absent.
	Secrets map[string]Secret
}

// Secret is a secret config value. It never prints its value: use Reveal where the plaintext is
// really needed, and Output to hand it to a resource as a Pulumi secret.
type Secret struct {
	value string
	// encrypted reports whether the value was set with --secret.
	encrypted bool
}

// NewSecret returns a Secret holding value, as set with --secret when encrypted is true.
func NewSecret(value string, encrypted bool) Secret {
	return Secret{value: value, encrypted: encrypted}
}

// Reveal returns the plaintext.
func (s Secret) Reveal() string { return s.value }

// Output returns the value as a Pulumi secret output.
func (s Secret) Output() pulumi.StringOutput {
	return pulumi.ToSecret(pulumi.String(s.value)).(pulumi.StringOutput)
}

// String redacts the value.
func (s Secret) String() string { return "[secret]" }

// GoString redacts the value from %#v as well.
func (s Secret) GoString() string { return "infra.Secret{[secret]}" }

// FieldError is one invalid config value: the key, the value (empty when it is secret) and what
// the key allows.
type FieldError struct {
	Key     string
	Value   string
	Allowed string
	// Redacted hides Value from the message, for secret keys.
	Redacted bool
}

func (e *FieldError) Error() string {
	if e.Redacted {
		return fmt.Sprintf("config %s must be %s", e.Key, e.Allowed)
	}
	return fmt.Sprintf("config %s must be %s, got %q", e.Key, e.Allowed, e.Value)
}

// ValidationError lists every invalid config value of a stack. It is returned before any resource
// is registered.
type ValidationError struct {
	Stack  string
	Fields []*FieldError
}

func (e *ValidationError) Error() string {
	lines := make([]string, 0, len(e.Fields)+1)
	lines = append(lines, fmt.Sprintf("invalid configuration for stack %q:", e.Stack))
	for _, f := range e.Fields {
		lines = append(lines, "  "+f.Error())
	}
	return strings.Join(lines, "\n")
}

// Keys returns the keys that failed, in order.
func (e *ValidationError) Keys() []string {
	keys := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		keys[i] = f.Key
	}
	return keys
}

// Load reads the stack's configuration once, with defaults applied, and validates it. Every
// problem is reported at once, in a *ValidationError, before the program registers anything.
func Load(ctx *pulumi.Context) (*Config, error) {
	r := reader{ctx: ctx}
	c := &Config{
		Stack:                  ctx.Stack(),
		Region:                 r.str(KeyRegion, ""),
		AvailabilityZone:       r.str(KeyAvailabilityZone, ""),
		InstanceType:           r.str(KeyInstanceType, DefaultInstanceType),
		DataVolumeSizeGB:       r.integer(KeyDataVolumeSizeGB, DefaultDataVolumeSizeGB),
		DataVolumeSnapshotID:   r.str(KeyDataVolumeSnapshotID, ""),
		SnapshotRetentionCount: r.integer(KeySnapshotRetentionCount, DefaultSnapshotRetentionCount),
		SnapshotIntervalHours:  r.integer(KeySnapshotIntervalHours, DefaultSnapshotIntervalHours),
		BackupIntervalMinutes:  r.integer(KeyBackupIntervalMinutes, DefaultBackupIntervalMinutes),
		AMIID:                  r.str(KeyAMIID, ""),
		OpenClawImage:          r.str(KeyOpenClawImage, DefaultOpenClawImage),
		SubnetID:               r.str(KeySubnetID, ""),
		LogRetentionDays:       r.integer(KeyLogRetentionDays, DefaultLogRetentionDays),
		Secrets:                map[string]Secret{},
	}
	c.InstanceTypes = r.list(KeyInstanceTypes, []string{c.InstanceType})
	c.InstanceType = c.InstanceTypes[0]
	if chosen, ok := r.raw(KeyInstanceTypeChosen); ok && slices.Contains(c.InstanceTypes, chosen) {
		c.InstanceType = chosen
	}
	r.gatewaySecrets(c.Secrets)
	if err := r.validated(c.Stack, c.Validate()); err != nil {
		return nil, err
	}
	return c, nil
}

// ParseList reads a list value as configuration holds it: a JSON array (a YAML list in the stack
// file), or text with the entries between commas (--config instance_types=a,b). Entries are
// trimmed; empty ones are dropped.
func ParseList(v string) ([]string, error) {
	var entries []string
	if strings.HasPrefix(strings.TrimSpace(v), "[") {
		if err := json.Unmarshal([]byte(v), &entries); err != nil {
			return nil, err
		}
	} else {
		entries = strings.Split(v, ",")
	}
	var out []string
	for _, e := range entries {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out, nil
}

// gatewaySecrets reads the gateway's secret keys that are set into secrets.
func (r *reader) gatewaySecrets(secrets map[string]Secret) {
	for _, key := range sortedSecretKeys() {
		if s, ok := r.secret(key); ok {
			secrets[key] = s
		}
	}
}

// validated joins the values that could not be read with what Validate (its result, err)
// refused, into one *ValidationError, or nil when there is nothing.
func (r *reader) validated(stack string, err error) error {
	fields := r.errs
	var verr *ValidationError
	if errors.As(err, &verr) {
		fields = append(fields, verr.Fields...)
	}
	for _, f := range fields {
		// A value is shown as it was given (0123 stays 0123), and a value set as a secret is
		// never shown, whatever key it was given for.
		if given, ok := r.raw(f.Key); ok {
			f.Value = given
		}
		f.Redacted = f.Redacted || r.ctx.IsConfigSecret(r.fullKey(f.Key))
	}
	if len(fields) > 0 {
		return &ValidationError{Stack: stack, Fields: fields}
	}
	return nil
}

// multiLineSecrets refuses each of the gateway's secrets that is not one line: the host keeps them
// as KEY=value lines of an environment file (both targets), where a line break would end the
// value and start another variable.
func multiLineSecrets(secrets map[string]Secret) []*FieldError {
	var fields []*FieldError
	for _, key := range slices.Sorted(maps.Keys(secrets)) {
		if strings.ContainsAny(secrets[key].Reveal(), "\n\r\x00") {
			fields = append(fields, &FieldError{Key: key, Redacted: true,
				Allowed: "one line: the host keeps each secret as a KEY=value line"})
		}
	}
	return fields
}

// plainSecrets refuses each secret in secrets that was not set with --secret.
func plainSecrets(stack string, secrets map[string]Secret) []*FieldError {
	var fields []*FieldError
	for _, key := range slices.Sorted(maps.Keys(secrets)) {
		if !secrets[key].encrypted {
			fields = append(fields, &FieldError{
				Key:      key,
				Redacted: true,
				Allowed: fmt.Sprintf("set as a secret, but it is in plain text in Pulumi.%s.yaml: "+
					"run `pulumi config set --secret %s` and rotate the value", stack, key),
			})
		}
	}
	return fields
}

// reader reads config values, keeping type errors as FieldErrors so that Load reports them with
// the rest.
type reader struct {
	ctx  *pulumi.Context
	errs []*FieldError
}

// fullKey returns key with its namespace: project keys are bare in messages and in the runbook,
// but the engine knows them as <project>:<key>.
func (r *reader) fullKey(key string) string {
	if strings.Contains(key, ":") {
		return key
	}
	return r.ctx.Project() + ":" + key
}

func (r *reader) raw(key string) (string, bool) {
	v, ok := r.ctx.GetConfig(r.fullKey(key))
	return v, ok && v != ""
}

func (r *reader) str(key, def string) string {
	if v, ok := r.raw(key); ok {
		return strings.TrimSpace(v)
	}
	return def
}

func (r *reader) integer(key string, def int) int {
	v, ok := r.raw(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		r.errs = append(r.errs, &FieldError{Key: key, Value: v, Allowed: "a whole number"})
		return def
	}
	return n
}

// list reads a list key (ParseList); def when it is not set or lists nothing.
func (r *reader) list(key string, def []string) []string {
	v, ok := r.raw(key)
	if !ok {
		return def
	}
	l, err := ParseList(v)
	if err != nil {
		r.errs = append(r.errs, &FieldError{Key: key, Value: v, Allowed: "a list of EC2 instance types, like t4g.small,t4g.medium"})
		return def
	}
	if len(l) == 0 {
		return def
	}
	return l
}

func (r *reader) secret(key string) (Secret, bool) {
	v, ok := r.raw(key)
	if !ok {
		return Secret{}, false
	}
	return NewSecret(v, r.ctx.IsConfigSecret(r.fullKey(key))), true
}

func sortedSecretKeys() []string {
	keys := make([]string, 0, len(SecretKeys))
	for k := range SecretKeys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var (
	instanceTypePattern = regexp.MustCompile(
		`^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.(nano|micro|small|medium|large|[0-9]*xlarge|metal(-[0-9]+xl)?)$`)
	snapshotIDPattern = regexp.MustCompile(`^snap-([0-9a-f]{8}|[0-9a-f]{17})$`)
	amiIDPattern      = regexp.MustCompile(`^ami-([0-9a-f]{8}|[0-9a-f]{17})$`)
	subnetIDPattern   = regexp.MustCompile(`^subnet-([0-9a-f]{8}|[0-9a-f]{17})$`)

	// imagePattern is the grammar of a container image reference (distribution/reference),
	// [registry[:port]/]path[:tag][@sha256:digest], with lower-case path components.
	imagePattern = regexp.MustCompile(`^` +
		`(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[0-9]+)?/)?` +
		`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*` +
		`(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?` +
		`(?:@sha256:[a-f0-9]{64})?$`)
)

// Validate checks every value against what AWS and the runbook allow. It is pure: it reads only the
// struct, so tests call it directly.
func (c *Config) Validate() error {
	var fields []*FieldError
	bad := func(key, value, allowed string) {
		fields = append(fields, &FieldError{Key: key, Value: value, Allowed: allowed})
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
		}
	} else {
		list := strings.Join(c.InstanceTypes, ",")
		for _, typ := range c.InstanceTypes {
			if !instanceTypePattern.MatchString(typ) {
				bad(KeyInstanceTypes, list, fmt.Sprintf("a list of EC2 instance types like t4g.small,t4g.medium, and %q is not one", typ))
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

	if len(c.OpenClawImage) > 255 || !imagePattern.MatchString(c.OpenClawImage) {
		bad(KeyOpenClawImage, c.OpenClawImage,
			"a container image reference like ghcr.io/openclaw/openclaw:2026.2.26")
	}

	if c.SubnetID != "" && !subnetIDPattern.MatchString(c.SubnetID) {
		bad(KeySubnetID, c.SubnetID, "empty (a VPC of the stack's own) or a subnet id like subnet-0123456789abcdef0")
	}

	if !slices.Contains(components.LogRetentionDays, c.LogRetentionDays) {
		bad(KeyLogRetentionDays, strconv.Itoa(c.LogRetentionDays),
			"a retention CloudWatch accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653 (days)")
	}

	fields = append(fields, multiLineSecrets(c.Secrets)...)
	fields = append(fields, plainSecrets(c.Stack, c.Secrets)...)

	if len(fields) > 0 {
		return &ValidationError{Stack: c.Stack, Fields: fields}
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
	err := withoutEngine(project, stack, values, secretKeys, func(ctx *pulumi.Context) (err error) {
		cfg, err = Load(ctx)
		return err
	})
	return cfg, err
}

// withoutEngine runs load (a loader that registers nothing) on values, with the keys in
// secretKeys marked secret, and returns its error as it returned it.
func withoutEngine(project, stack string, values map[string]string, secretKeys []string, load pulumi.RunFunc) error {
	err := pulumi.RunErr(load, pulumi.WithMocks(project, stack, noResources{}), func(info *pulumi.RunInfo) {
		info.Config = values
		info.ConfigSecretKeys = secretKeys
	})
	// RunErr wraps the program's error in a list of one; the validation error is the message.
	var invalid *ValidationError
	if errors.As(err, &invalid) {
		return invalid
	}
	return err
}

// CheckConfig validates a stack's configuration without an engine. The driver calls it so that
// bad input fails before anything is touched.
func CheckConfig(project, stack string, values map[string]string, secretKeys []string) error {
	_, err := LoadConfig(project, stack, values, secretKeys)
	return err
}

// noResources is the monitor CheckConfig runs Load under: Load registers nothing and calls
// nothing, so neither is answered.
type noResources struct{}

func (noResources) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return nil, fmt.Errorf("CheckConfig: unexpected call of %s", args.Token)
}

func (noResources) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	return "", nil, fmt.Errorf("CheckConfig: unexpected resource %s", args.Name)
}
