package ec2spot

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/cloudinit"
	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/internal/awsmock"
	"github.com/clawdeploy/clawdeploy/internal/pulumitest"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
)

// Secret values the example deployment is configured with; none may reach the user-data.
var testSecrets = map[string]string{
	stackconfig.KeyGatewayToken:    "gw-4f1e9c2b7a",
	stackconfig.KeyAnthropicAPIKey: "sk-ant-api03-c0ffee",
	stackconfig.KeyOpenAIAPIKey:    "sk-proj-deadbeef",
}

// programRun is one run of Deploy under mocks.
type programRun struct {
	mocks  *pulumitest.Mocks
	out    *Outputs
	values map[string]string
	err    error
}

// runProgram runs Deploy on the example stack (with testSecrets), changed by opts.
func runProgram(t testing.TB, opts ...pulumitest.Option) *programRun {
	t.Helper()
	r := &programRun{values: map[string]string{}}
	var mu sync.Mutex
	program := func(ctx *pulumi.Context) error {
		// Each captured value is exported too: the run awaits exports before it returns, so
		// the values are all there when the test reads them (an apply alone may still be pending).
		capture := func(name string, o pulumi.StringOutput) {
			ctx.Export("captured."+name, o.ApplyT(func(v string) string {
				mu.Lock()
				r.values[name] = v
				mu.Unlock()
				return v
			}))
		}
		out, err := Deploy(ctx)
		if err != nil {
			return err
		}
		r.out = out
		for name, o := range map[string]pulumi.StringOutput{
			"instanceId": out.InstanceID, "dataVolumeId": out.DataVolumeID, "availabilityZone": out.AvailabilityZone,
			"backupBucket": out.BackupBucket, "snapshotPolicyId": out.SnapshotPolicyID, "privateIp": out.PrivateIP,
			"gatewayUrl": out.GatewayURL, "gatewayTunnel": out.GatewayTunnel, "userData": out.UserData,
			"statusParameter": out.StatusParameter,
		} {
			capture(name, o)
		}
		if out.GatewayToken != nil {
			capture("gatewayToken", *out.GatewayToken)
		}
		return nil
	}
	base := []pulumitest.Option{
		pulumitest.WithStack("dev"),
		pulumitest.WithConfig(map[string]string{
			"aws:region":        awsmock.Region,
			KeyAvailabilityZone: awsmock.Zone,
			KeyInstanceType:     "t4g.small",
		}),
		pulumitest.WithSecretConfig(maps.Clone(testSecrets)),
	}
	r.mocks, r.err = pulumitest.Run(program, append(append(awsmock.Options(), base...), opts...)...)
	return r
}

func (r *programRun) must(t testing.TB) *programRun {
	t.Helper()
	if r.err != nil {
		t.Fatalf("program: %v", r.err)
	}
	return r
}

// userData decodes the instance's user-data.
func (r *programRun) userData(t testing.TB) string {
	t.Helper()
	z, err := base64.StdEncoding.DecodeString(r.values["userData"])
	if err != nil {
		t.Fatalf("user-data is not base64: %v", err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatalf("user-data is not gzip: %v", err)
	}
	doc, err := io.ReadAll(gz)
	if err != nil {
		t.Fatal(err)
	}
	return string(doc)
}

func TestProgramBuildsTheStack(t *testing.T) {
	t.Parallel()
	r := runProgram(t).must(t)
	want := map[string]string{
		components.TypeDataVolume: NameData, components.TypeSecrets: NameSecrets, components.TypeNetwork: NameNetwork,
		components.TypeBackupBucket: NameBackup, components.TypeMonitoring: NameMonitoring,
		components.TypeInstanceRole: NameInstanceRole, components.TypeSpotInstance: NameSpot,
		components.TypeSnapshotPolicy: NameSnapshots,
	}
	for typ, name := range want {
		if _, ok := r.mocks.One(typ, name); !ok {
			t.Errorf("no %s %s", typ, name)
		}
	}
	// The data volume comes first: its AZ guard may still refuse, and nothing may exist then.
	if first := r.mocks.Resources()[0]; first.Type != components.TypeDataVolume {
		t.Errorf("first resource is %s %s", first.Type, first.Name)
	}
	if n := len(r.mocks.OfType("aws:ssm/parameter:Parameter")); n != 5 { // 3 secrets, the status, the agent config
		t.Errorf("%d SSM parameters, want 5", n)
	}
	if n := len(r.mocks.OfType("aws:cloudwatch/logGroup:LogGroup")); n != len(cloudinit.Logs) {
		t.Errorf("%d log groups, want %d", n, len(cloudinit.Logs))
	}
	instance, _ := r.mocks.One("aws:ec2/instance:Instance", "spot-instance")
	if instance.String("ami") != awsmock.AMI || instance.String("instanceType") != "t4g.small" {
		t.Errorf("instance: %v", instance.Inputs)
	}
	// The latest AMI was looked up for the instance's architecture, and is kept.
	for _, c := range r.mocks.Calls() {
		if c.Token == awsmock.GetAmi && !strings.Contains(fmt.Sprint(c.Args), "arm64") {
			t.Errorf("AMI lookup not for arm64: %v", c.Args)
		}
	}
}

func TestProgramOutputs(t *testing.T) {
	t.Parallel()
	r := runProgram(t).must(t)
	v := r.values
	if !strings.HasPrefix(v["instanceId"], "i-") || !strings.HasPrefix(v["dataVolumeId"], "vol-") ||
		v["availabilityZone"] != awsmock.Zone || v["backupBucket"] != "backup-bucket-1a2b3c4" ||
		!strings.HasPrefix(v["snapshotPolicyId"], "policy-") || v["privateIp"] != "10.42.0.10" ||
		v["statusParameter"] != "/openclaw/dev/setup-status" {
		t.Errorf("outputs: %v", v)
	}
	wantTunnel := "aws ssm start-session --region me-central-1 --target " + v["instanceId"] +
		" --document-name AWS-StartPortForwardingSession --parameters portNumber=18789,localPortNumber=18789"
	if v["gatewayTunnel"] != wantTunnel || v["gatewayUrl"] != "http://127.0.0.1:18789/" {
		t.Errorf("gateway access: %q %q", v["gatewayTunnel"], v["gatewayUrl"])
	}
	if r.out.GatewayToken == nil || !pulumi.IsSecret(*r.out.GatewayToken) || v["gatewayToken"] != testSecrets[stackconfig.KeyGatewayToken] {
		t.Errorf("the gateway token output is missing or not a secret")
	}
	for name, o := range map[string]pulumi.StringOutput{"instanceId": r.out.InstanceID, "backupBucket": r.out.BackupBucket} {
		if pulumi.IsSecret(o) {
			t.Errorf("%s is a secret", name)
		}
	}
}

func TestUserDataNamesTheResourcesAndNoSecret(t *testing.T) {
	t.Parallel()
	r := runProgram(t).must(t)
	doc := r.userData(t)
	for _, want := range []string{
		"OPENCLAW_VOLUME_ID=" + r.values["dataVolumeId"],
		"OPENCLAW_BACKUP_BUCKET=backup-bucket-1a2b3c4",
		"OPENCLAW_SECRETS_PATH=/openclaw/dev/env",
		"OPENCLAW_CLOUDWATCH_CONFIG_PARAMETER=/openclaw/dev/cloudwatch-agent",
		"OPENCLAW_ONBOARD_AUTH_CHOICE=apiKey",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("user-data lacks %q", want)
		}
	}
	for key, secret := range testSecrets {
		if strings.Contains(doc, secret) {
			t.Errorf("user-data holds the value of %s", key)
		}
	}
}

func TestRefusalsRegisterNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts []pulumitest.Option
		want string
	}{
		{"snapshot of another zone", []pulumitest.Option{
			pulumitest.WithConfig(map[string]string{KeyDataVolumeSnapshotID: awsmock.Snapshot}),
			pulumitest.WithCall(awsmock.GetSnapshot, awsmock.SnapshotIn("me-central-1b", 20)),
		}, "data_volume_snapshot_id snap-0123456789abcdef0 is tagged OpenClawAz=me-central-1b but availability_zone is me-central-1a"},
		{"snapshot without a zone tag", []pulumitest.Option{
			pulumitest.WithConfig(map[string]string{KeyDataVolumeSnapshotID: awsmock.Snapshot}),
			pulumitest.WithCall(awsmock.GetSnapshot, awsmock.SnapshotIn("", 20)),
		}, "data_volume_snapshot_id snap-0123456789abcdef0 has no OpenClawAz tag"},
		{"zone changed under an existing volume", awsmock.ExistingVolumeIn("me-central-1b"),
			"this stack's data volume vol-0feedfacecafe0001 is in me-central-1b"},
		{"subnet in another zone", []pulumitest.Option{
			pulumitest.WithConfig(map[string]string{KeySubnetID: "subnet-0123456789abcdef0"}),
			pulumitest.WithCall(awsmock.GetSubnet, awsmock.SubnetIn("me-central-1c")),
		}, "subnet_id subnet-0123456789abcdef0 is in me-central-1c"},
		{"invalid configuration", []pulumitest.Option{
			pulumitest.WithConfig(map[string]string{KeySnapshotIntervalHours: "5"}),
		}, "config snapshot_interval_hours must be one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runProgram(t, tt.opts...)
			if r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", r.err, tt.want)
			}
			if n := len(r.mocks.Resources()); n != 0 {
				t.Errorf("%d resources registered before the refusal", n)
			}
		})
	}
	var zerr *components.ZoneError
	r := runProgram(t, pulumitest.WithConfig(map[string]string{KeyDataVolumeSnapshotID: awsmock.Snapshot}),
		pulumitest.WithCall(awsmock.GetSnapshot, awsmock.SnapshotIn("", 20)))
	if !errors.As(r.err, &zerr) || zerr.Snapshot != awsmock.Snapshot || zerr.Zone != awsmock.Zone {
		t.Errorf("error %v is not a ZoneError naming the snapshot and the zone", r.err)
	}
}

func TestExistingSubnetIsUsed(t *testing.T) {
	t.Parallel()
	r := runProgram(t, pulumitest.WithConfig(map[string]string{KeySubnetID: "subnet-0123456789abcdef0"})).must(t)
	if n := len(r.mocks.OfType("aws:ec2/vpc:Vpc")); n != 0 {
		t.Errorf("created %d VPCs with subnet_id set", n)
	}
	instance, _ := r.mocks.One("aws:ec2/instance:Instance", "spot-instance")
	if instance.String("subnetId") != "subnet-0123456789abcdef0" {
		t.Errorf("instance subnet = %s", instance.String("subnetId"))
	}
	if v, ok := instance.Input("associatePublicIpAddress"); ok && v.BoolValue() {
		t.Errorf("a public address in an existing subnet")
	}
}

func TestPinnedAMIIsNotLookedUp(t *testing.T) {
	t.Parallel()
	r := runProgram(t, pulumitest.WithConfig(map[string]string{KeyAMIID: "ami-0fedcba9876543210"})).must(t)
	for _, c := range r.mocks.Calls() {
		if c.Token == awsmock.GetAmi {
			t.Errorf("looked up an AMI although one is pinned")
		}
	}
	instance, _ := r.mocks.One("aws:ec2/instance:Instance", "spot-instance")
	if instance.String("ami") != "ami-0fedcba9876543210" {
		t.Errorf("ami = %s", instance.String("ami"))
	}
}

// BenchmarkProgram evaluates the whole program under mocks.
func BenchmarkProgram(b *testing.B) {
	for b.Loop() {
		runProgram(b).must(b)
	}
}
