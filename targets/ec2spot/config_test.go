package ec2spot

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/internal/pulumitest"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
)

// validConfig is the runbook's example stack; each case below breaks one thing in it.
func validConfig() map[string]string {
	return map[string]string{
		"aws:region":                 "me-central-1",
		KeyAvailabilityZone:          "me-central-1a",
		KeyInstanceType:              "t4g.small",
		KeyDataVolumeSizeGB:          "20",
		stackconfig.KeyOpenClawImage: "ghcr.io/openclaw/openclaw:2026.2.26",
		KeySnapshotRetentionCount:    "7",
	}
}

// loadConfig runs Load under mocks with the given plain and secret values.
func loadConfig(t *testing.T, plain, secret map[string]string) (*Config, error) {
	t.Helper()
	var cfg *Config
	_, err := pulumitest.Run(func(ctx *pulumi.Context) error {
		c, err := Load(ctx)
		cfg = c
		return err
	}, pulumitest.WithStack("dev"), pulumitest.WithConfig(plain), pulumitest.WithSecretConfig(secret))
	return cfg, err
}

func TestLoadAcceptsTheExampleStack(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(t, validConfig(), map[string]string{stackconfig.KeyGatewayToken: "tok"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Stack != "dev" || cfg.Region != "me-central-1" || cfg.AvailabilityZone != "me-central-1a" {
		t.Errorf("stack/region/zone = %q/%q/%q", cfg.Stack, cfg.Region, cfg.AvailabilityZone)
	}
	if got := cfg.Secrets[stackconfig.KeyGatewayToken].Reveal(); got != "tok" {
		t.Errorf("gateway token = %q, want tok", got)
	}
}

func TestLoadAppliesDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(t, map[string]string{
		"aws:region":        "me-central-1",
		KeyAvailabilityZone: "me-central-1b",
	}, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Config{
		Stack:                  "dev",
		Region:                 "me-central-1",
		AvailabilityZone:       "me-central-1b",
		InstanceType:           DefaultInstanceType,
		InstanceTypes:          []string{DefaultInstanceType},
		DataVolumeSizeGB:       DefaultDataVolumeSizeGB,
		SnapshotRetentionCount: DefaultSnapshotRetentionCount,
		SnapshotIntervalHours:  DefaultSnapshotIntervalHours,
		BackupIntervalMinutes:  DefaultBackupIntervalMinutes,
		OpenClawImage:          stackconfig.DefaultOpenClawImage,
		LogRetentionDays:       DefaultLogRetentionDays,
	}
	got := *cfg
	got.Secrets = nil
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
	if len(cfg.Secrets) != 0 {
		t.Errorf("secrets = %v, want none", cfg.Secrets)
	}
}

func TestLoadRejectsBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		set    map[string]string // plain values over validConfig; "" deletes
		secret map[string]string
		plainS map[string]string // secret keys set in plain text
		key    string            // the key the message must name
		value  string            // the value it must quote ("" when redacted)
	}{
		{name: "region missing", set: map[string]string{"aws:region": ""}, key: KeyRegion},
		{name: "region syntax", set: map[string]string{"aws:region": "middle-east"}, key: KeyRegion, value: "middle-east"},
		{name: "region upper case", set: map[string]string{"aws:region": "ME-CENTRAL-1"}, key: KeyRegion, value: "ME-CENTRAL-1"},
		{name: "zone missing", set: map[string]string{KeyAvailabilityZone: ""}, key: KeyAvailabilityZone},
		{name: "zone of another region", set: map[string]string{KeyAvailabilityZone: "us-east-1a"}, key: KeyAvailabilityZone, value: "us-east-1a"},
		{name: "zone is the region", set: map[string]string{KeyAvailabilityZone: "me-central-1"}, key: KeyAvailabilityZone, value: "me-central-1"},
		{name: "zone with two letters", set: map[string]string{KeyAvailabilityZone: "me-central-1ab"}, key: KeyAvailabilityZone, value: "me-central-1ab"},
		{name: "zone id instead of name", set: map[string]string{KeyAvailabilityZone: "mec1-az1"}, key: KeyAvailabilityZone, value: "mec1-az1"},
		{name: "instance type without size", set: map[string]string{KeyInstanceType: "t4g"}, key: KeyInstanceType, value: "t4g"},
		{name: "instance type unknown size", set: map[string]string{KeyInstanceType: "t4g.huge"}, key: KeyInstanceType, value: "t4g.huge"},
		{name: "instance type without generation", set: map[string]string{KeyInstanceType: "t.small"}, key: KeyInstanceType, value: "t.small"},
		{name: "instance type upper case", set: map[string]string{KeyInstanceType: "T4G.SMALL"}, key: KeyInstanceType, value: "T4G.SMALL"},
		{name: "instance types with a bad entry", set: map[string]string{KeyInstanceTypes: "t4g.small,t4g.huge"}, key: KeyInstanceTypes, value: "t4g.small,t4g.huge"},
		{name: "instance type with 1 GiB", set: map[string]string{KeyInstanceType: "t4g.micro"}, key: KeyInstanceType, value: "t4g.micro"},
		{name: "instance types with one of 512 MiB", set: map[string]string{KeyInstanceTypes: "t3.small,t3.nano"}, key: KeyInstanceTypes, value: "t3.small,t3.nano"},
		{name: "instance types of two architectures", set: map[string]string{KeyInstanceTypes: `["t4g.small","t3.small"]`}, key: KeyInstanceTypes, value: `["t4g.small","t3.small"]`},
		{name: "volume size zero", set: map[string]string{KeyDataVolumeSizeGB: "0"}, key: KeyDataVolumeSizeGB, value: "0"},
		{name: "volume size too big", set: map[string]string{KeyDataVolumeSizeGB: "16385"}, key: KeyDataVolumeSizeGB, value: "16385"},
		{name: "volume size negative", set: map[string]string{KeyDataVolumeSizeGB: "-5"}, key: KeyDataVolumeSizeGB, value: "-5"},
		{name: "volume size not a number", set: map[string]string{KeyDataVolumeSizeGB: "20GB"}, key: KeyDataVolumeSizeGB, value: "20GB"},
		{name: "snapshot id syntax", set: map[string]string{KeyDataVolumeSnapshotID: "snapshot-1"}, key: KeyDataVolumeSnapshotID, value: "snapshot-1"},
		{name: "snapshot id short hex", set: map[string]string{KeyDataVolumeSnapshotID: "snap-0123"}, key: KeyDataVolumeSnapshotID, value: "snap-0123"},
		{name: "snapshot id is a volume id", set: map[string]string{KeyDataVolumeSnapshotID: "vol-0123456789abcdef0"}, key: KeyDataVolumeSnapshotID, value: "vol-0123456789abcdef0"},
		{name: "retention zero", set: map[string]string{KeySnapshotRetentionCount: "0"}, key: KeySnapshotRetentionCount, value: "0"},
		{name: "retention over 1000", set: map[string]string{KeySnapshotRetentionCount: "1001"}, key: KeySnapshotRetentionCount, value: "1001"},
		{name: "retention not a number", set: map[string]string{KeySnapshotRetentionCount: "seven"}, key: KeySnapshotRetentionCount, value: "seven"},
		{name: "interval 5", set: map[string]string{KeySnapshotIntervalHours: "5"}, key: KeySnapshotIntervalHours, value: "5"},
		{name: "interval 48", set: map[string]string{KeySnapshotIntervalHours: "48"}, key: KeySnapshotIntervalHours, value: "48"},
		{name: "interval 0", set: map[string]string{KeySnapshotIntervalHours: "0"}, key: KeySnapshotIntervalHours, value: "0"},
		{name: "interval fractional", set: map[string]string{KeySnapshotIntervalHours: "1.5"}, key: KeySnapshotIntervalHours, value: "1.5"},
		{name: "backup interval too short", set: map[string]string{KeyBackupIntervalMinutes: "1"}, key: KeyBackupIntervalMinutes, value: "1"},
		{name: "backup interval over a day", set: map[string]string{KeyBackupIntervalMinutes: "1441"}, key: KeyBackupIntervalMinutes, value: "1441"},
		{name: "ami syntax", set: map[string]string{KeyAMIID: "ami-xyz"}, key: KeyAMIID, value: "ami-xyz"},
		{name: "ami name instead of id", set: map[string]string{KeyAMIID: "al2023-ami-2023.6"}, key: KeyAMIID, value: "al2023-ami-2023.6"},
		{name: "image with spaces", set: map[string]string{stackconfig.KeyOpenClawImage: "ghcr.io/openclaw/openclaw latest"}, key: stackconfig.KeyOpenClawImage, value: "ghcr.io/openclaw/openclaw latest"},
		{name: "image upper-case path", set: map[string]string{stackconfig.KeyOpenClawImage: "ghcr.io/OpenClaw/openclaw"}, key: stackconfig.KeyOpenClawImage, value: "ghcr.io/OpenClaw/openclaw"},
		{name: "image empty tag", set: map[string]string{stackconfig.KeyOpenClawImage: "ghcr.io/openclaw/openclaw:"}, key: stackconfig.KeyOpenClawImage, value: "ghcr.io/openclaw/openclaw:"},
		{name: "image short digest", set: map[string]string{stackconfig.KeyOpenClawImage: "ghcr.io/openclaw/openclaw@sha256:abc"}, key: stackconfig.KeyOpenClawImage, value: "ghcr.io/openclaw/openclaw@sha256:abc"},
		{name: "image url scheme", set: map[string]string{stackconfig.KeyOpenClawImage: "https://ghcr.io/openclaw/openclaw"}, key: stackconfig.KeyOpenClawImage, value: "https://ghcr.io/openclaw/openclaw"},
		{name: "subnet id syntax", set: map[string]string{KeySubnetID: "subnet-xyz"}, key: KeySubnetID, value: "subnet-xyz"},
		{name: "subnet name instead of id", set: map[string]string{KeySubnetID: "private-a"}, key: KeySubnetID, value: "private-a"},
		{name: "log retention not accepted", set: map[string]string{KeyLogRetentionDays: "10"}, key: KeyLogRetentionDays, value: "10"},
		{name: "log retention zero", set: map[string]string{KeyLogRetentionDays: "0"}, key: KeyLogRetentionDays, value: "0"},
		{name: "gateway token in plain text", plainS: map[string]string{stackconfig.KeyGatewayToken: "hunter2-gateway"}, key: stackconfig.KeyGatewayToken},
		{name: "anthropic key in plain text", plainS: map[string]string{stackconfig.KeyAnthropicAPIKey: "sk-ant-plain"}, key: stackconfig.KeyAnthropicAPIKey},
		{name: "openrouter key in plain text", plainS: map[string]string{stackconfig.KeyOpenRouterAPIKey: "sk-or-plain"}, key: stackconfig.KeyOpenRouterAPIKey},
	}
	if len(tests) < 25 {
		t.Fatalf("the table must hold at least 25 bad inputs, has %d", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			plain := validConfig()
			for k, v := range tt.set {
				if v == "" {
					delete(plain, k)
				} else {
					plain[k] = v
				}
			}
			maps.Copy(plain, tt.plainS)
			_, err := loadConfig(t, plain, tt.secret)

			var verr *stackconfig.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Load error = %v, want a *stackconfig.ValidationError", err)
			}
			if keys := verr.Keys(); !slices.Equal(keys, []string{tt.key}) {
				t.Fatalf("failing keys = %v, want exactly [%s]; error:\n%v", keys, tt.key, err)
			}
			msg := verr.Fields[0].Error()
			if !strings.HasPrefix(msg, "config "+tt.key+" must be ") {
				t.Errorf("message %q does not start by naming the key %s", msg, tt.key)
			}
			if tt.value != "" && !strings.Contains(msg, fmt.Sprintf("got %q", tt.value)) {
				t.Errorf("message %q does not quote the value %q", msg, tt.value)
			}
			for _, v := range tt.plainS {
				if strings.Contains(err.Error(), v) {
					t.Errorf("message reveals the secret value: %v", err)
				}
			}
			if !strings.Contains(err.Error(), `stack "dev"`) {
				t.Errorf("message does not name the stack: %v", err)
			}
		})
	}
}

func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	_, err := loadConfig(t, map[string]string{
		"aws:region":                 "me-central-1",
		KeyInstanceType:              "nope",
		KeyDataVolumeSizeGB:          "big",
		KeySnapshotIntervalHours:     "7",
		stackconfig.KeyOpenClawImage: "UPPER/Case",
		stackconfig.KeyGatewayToken:  "plain",
		KeySnapshotRetentionCount:    "0",
	}, nil)
	var verr *stackconfig.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Load error = %v, want a *stackconfig.ValidationError", err)
	}
	want := []string{
		KeyDataVolumeSizeGB, KeyAvailabilityZone, KeyInstanceType, KeySnapshotRetentionCount,
		KeySnapshotIntervalHours, stackconfig.KeyOpenClawImage, stackconfig.KeyGatewayToken,
	}
	if got := verr.Keys(); !slices.Equal(got, want) {
		t.Errorf("keys = %v\nwant %v", got, want)
	}
}

func TestValidateAcceptsWhatAWSAccepts(t *testing.T) {
	t.Parallel()
	base := func() Config {
		return Config{
			Stack: "dev", Region: "me-central-1", AvailabilityZone: "me-central-1c",
			InstanceType: "t4g.small", DataVolumeSizeGB: 20, SnapshotRetentionCount: 7,
			SnapshotIntervalHours: 24, BackupIntervalMinutes: 20, OpenClawImage: stackconfig.DefaultOpenClawImage,
			LogRetentionDays: 30,
		}
	}
	tests := map[string]func(*Config){
		"gov region":            func(c *Config) { c.Region, c.AvailabilityZone = "us-gov-west-1", "us-gov-west-1b" },
		"metal size":            func(c *Config) { c.InstanceType = "c7gn.metal" },
		"24xlarge":              func(c *Config) { c.InstanceType = "m7i.24xlarge" },
		"flex family":           func(c *Config) { c.InstanceType = "m7i-flex.large" },
		"high memory family":    func(c *Config) { c.InstanceType = "u-6tb1.112xlarge" },
		"long snapshot id":      func(c *Config) { c.DataVolumeSnapshotID = "snap-0123456789abcdef0" },
		"short snapshot id":     func(c *Config) { c.DataVolumeSnapshotID = "snap-0123abcd" },
		"ami id":                func(c *Config) { c.AMIID = "ami-0123456789abcdef0" },
		"image with port":       func(c *Config) { c.OpenClawImage = "registry.example.com:5000/team/openclaw:v1.2" },
		"image by digest":       func(c *Config) { c.OpenClawImage = "ghcr.io/openclaw/openclaw@sha256:" + strings.Repeat("ab", 32) },
		"docker hub short name": func(c *Config) { c.OpenClawImage = "openclaw" },
		"edges": func(c *Config) {
			c.DataVolumeSizeGB, c.SnapshotRetentionCount, c.BackupIntervalMinutes = 16384, 1000, 5
		},
		"encrypted secret": func(c *Config) {
			c.Secrets = map[string]stackconfig.Secret{stackconfig.KeyGatewayToken: stackconfig.NewSecret("x", true)}
		},
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := base()
			mutate(&c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
	for _, h := range SnapshotIntervals {
		c := base()
		c.SnapshotIntervalHours = h
		if err := c.Validate(); err != nil {
			t.Errorf("interval %d: %v", h, err)
		}
	}
}

func TestArchitecture(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"t4g.small": "arm64", "c7gn.large": "arm64", "x2gd.xlarge": "arm64", "a1.medium": "arm64",
		"im4gn.large": "arm64", "g5g.xlarge": "arm64", "r8g.large": "arm64",
		"t3.small": "x86_64", "m7i-flex.large": "x86_64", "g4dn.xlarge": "x86_64", "c7a.large": "x86_64",
		"u-6tb1.112xlarge": "x86_64", "inf2.xlarge": "x86_64",
	}
	for typ, want := range tests {
		c := Config{InstanceType: typ}
		if got := c.Architecture(); got != want {
			t.Errorf("Architecture(%s) = %s, want %s", typ, got, want)
		}
	}
}

func TestSecretNeverPrintsItsValue(t *testing.T) {
	t.Parallel()
	s := stackconfig.NewSecret("sk-very-secret", true)
	for _, format := range []string{"%v", "%+v", "%s", "%#v"} {
		if out := fmt.Sprintf(format, s); strings.Contains(out, "sk-very") {
			t.Errorf("%s prints the value: %s", format, out)
		}
	}
	c := Config{Secrets: map[string]stackconfig.Secret{stackconfig.KeyGatewayToken: s}}
	if out := fmt.Sprintf("%+v %#v", c, c); strings.Contains(out, "sk-very") {
		t.Errorf("a Config prints the secret: %s", out)
	}
}

func TestCheckConfig(t *testing.T) {
	t.Parallel()
	ok := map[string]string{"aws:region": "me-central-1", "openclaw:availability_zone": "me-central-1a"}
	if err := CheckConfig("openclaw", "dev", ok, nil); err != nil {
		t.Errorf("valid config: %v", err)
	}
	bad := map[string]string{"aws:region": "me-central-1", "openclaw:availability_zone": "me-central-1a", "openclaw:gateway_token": "x"}
	var verr *stackconfig.ValidationError
	if err := CheckConfig("openclaw", "dev", bad, nil); !errors.As(err, &verr) || verr.Keys()[0] != stackconfig.KeyGatewayToken {
		t.Errorf("plain secret: %v", err)
	}
	if err := CheckConfig("openclaw", "dev", bad, []string{"openclaw:gateway_token"}); err != nil {
		t.Errorf("secret set as secret: %v", err)
	}
}

// TestInstanceTypesAndTheChosenOne: instance_types lists the types to try, as a JSON list (a
// YAML list in the stack file) or between commas; the driver's fallback (clawdeploy:instanceType)
// is used while it is listed, the first type otherwise; instance_type alone is a list of one.
func TestInstanceTypesAndTheChosenOne(t *testing.T) {
	t.Parallel()
	base := map[string]string{"aws:region": "me-central-1", KeyAvailabilityZone: "me-central-1a"}
	with := func(kv ...string) map[string]string {
		m := maps.Clone(base)
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		values map[string]string
		types  []string
		chosen string
	}{
		{"instance_type alone", with(KeyInstanceType, "c7g.large"), []string{"c7g.large"}, "c7g.large"},
		{"a list between commas", with(KeyInstanceTypes, "t4g.small, t4g.medium"), []string{"t4g.small", "t4g.medium"}, "t4g.small"},
		{"a YAML list", with(KeyInstanceTypes, `["t4g.medium","t4g.large"]`), []string{"t4g.medium", "t4g.large"}, "t4g.medium"},
		{"the driver's fallback", with(KeyInstanceTypes, "t4g.small,t4g.medium", KeyInstanceTypeChosen, "t4g.medium"),
			[]string{"t4g.small", "t4g.medium"}, "t4g.medium"},
		{"a fallback no longer listed", with(KeyInstanceTypes, "t4g.small,t4g.large", KeyInstanceTypeChosen, "t4g.medium"),
			[]string{"t4g.small", "t4g.large"}, "t4g.small"},
	} {
		cfg, err := loadConfig(t, tc.values, nil)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !slices.Equal(cfg.InstanceTypes, tc.types) || cfg.InstanceType != tc.chosen {
			t.Errorf("%s: types %v, in use %s; want %v and %s", tc.name, cfg.InstanceTypes, cfg.InstanceType, tc.types, tc.chosen)
		}
	}
}
