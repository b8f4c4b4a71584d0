package components

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/internal/awsmock"
	"github.com/clawdeploy/clawdeploy/internal/pulumitest"
)

// run runs body under mocks with the default AWS answers, and fails the test on an error.
func run(t *testing.T, body pulumi.RunFunc, opts ...pulumitest.Option) *pulumitest.Mocks {
	t.Helper()
	m, err := pulumitest.Run(body, append(awsmock.Options(), opts...)...)
	if err != nil {
		t.Fatalf("program: %v", err)
	}
	return m
}

// child returns the one resource of typ named name, checks its parent is the component of
// componentType named componentName, and checks its identity tags when it has tags.
func child(t *testing.T, m *pulumitest.Mocks, componentType, componentName, typ, name string) pulumitest.Resource {
	t.Helper()
	r, ok := m.One(typ, name)
	if !ok {
		var names []string
		for _, x := range m.OfType(typ) {
			names = append(names, x.Name)
		}
		t.Fatalf("no %s named %s; there are %v", typ, name, names)
	}
	parent, ok := m.One(componentType, componentName)
	if !ok {
		t.Fatalf("no component %s %s", componentType, componentName)
	}
	if r.Parent() != parent.URN {
		t.Errorf("%s's parent is %s, want %s", name, r.Parent(), parent.URN)
	}
	if !strings.HasPrefix(name, componentName+"-") {
		t.Errorf("%s is not named from its component %s", name, componentName)
	}
	if _, tagged := r.Input("tags"); tagged {
		if got := r.String("tags." + TagStack); got != pulumitest.DefaultStack {
			t.Errorf("%s: tag %s = %q", name, TagStack, got)
		}
		if got := r.String("tags." + TagURN); got != r.URN {
			t.Errorf("%s: tag %s = %q, want its URN %q", name, TagURN, got, r.URN)
		}
	}
	return r
}

func boolInput(r pulumitest.Resource, path string) bool {
	v, ok := r.Input(path)
	return ok && v.IsBool() && v.BoolValue()
}

func numberInput(r pulumitest.Resource, path string) float64 {
	if v, ok := r.Input(path); ok && v.IsNumber() {
		return v.NumberValue()
	}
	return -1
}

func TestConstructorsRefuseNilArgs(t *testing.T) {
	t.Parallel()
	constructors := map[string]func(*pulumi.Context) error{
		"DataVolume":     func(ctx *pulumi.Context) error { _, err := NewDataVolume(ctx, "x", nil); return err },
		"SpotInstance":   func(ctx *pulumi.Context) error { _, err := NewSpotInstance(ctx, "x", nil); return err },
		"Network":        func(ctx *pulumi.Context) error { _, err := NewNetwork(ctx, "x", nil); return err },
		"InstanceRole":   func(ctx *pulumi.Context) error { _, err := NewInstanceRole(ctx, "x", nil); return err },
		"BackupBucket":   func(ctx *pulumi.Context) error { _, err := NewBackupBucket(ctx, "x", nil); return err },
		"SnapshotPolicy": func(ctx *pulumi.Context) error { _, err := NewSnapshotPolicy(ctx, "x", nil); return err },
		"Monitoring":     func(ctx *pulumi.Context) error { _, err := NewMonitoring(ctx, "x", nil); return err },
		"Secrets":        func(ctx *pulumi.Context) error { _, err := NewSecrets(ctx, "x", nil); return err },
	}
	for name, construct := range constructors {
		m, err := pulumitest.Run(construct, awsmock.Options()...)
		if err == nil || !strings.Contains(err.Error(), "needs args") {
			t.Errorf("New%s(nil args) = %v", name, err)
		}
		if n := len(m.Resources()); n != 0 {
			t.Errorf("New%s(nil args) registered %d resources", name, n)
		}
	}
}

func newDataVolume(snapshot string) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		v, err := NewDataVolume(ctx, "data", &DataVolumeArgs{AvailabilityZone: awsmock.Zone, SizeGB: 30, SnapshotID: snapshot})
		if err != nil {
			return err
		}
		_, err = v.Attach(ctx, pulumi.String("i-0123456789abcdef0"))
		return err
	}
}

func TestDataVolume(t *testing.T) {
	t.Parallel()
	m := run(t, newDataVolume(awsmock.Snapshot))
	v := child(t, m, TypeDataVolume, "data", "aws:ebs/volume:Volume", "data-volume")
	if v.String("type") != "gp3" || !boolInput(v, "encrypted") || numberInput(v, "size") != 30 ||
		v.String("availabilityZone") != awsmock.Zone || v.String("snapshotId") != awsmock.Snapshot {
		t.Errorf("volume inputs: %v", v.Inputs)
	}
	if !boolInput(v, "finalSnapshot") {
		t.Errorf("the volume is deleted without a final snapshot")
	}
	if v.String("tags."+TagData) != "true" || v.String("tags."+TagAz) != awsmock.Zone {
		t.Errorf("volume tags: %v", v.Inputs["tags"])
	}
	for _, p := range []string{"snapshotId", "availabilityZone", "encrypted", "kmsKeyId"} {
		if !slices.Contains(v.Request.GetIgnoreChanges(), p) {
			t.Errorf("a change of %s would replace the volume: ignoreChanges %v", p, v.Request.GetIgnoreChanges())
		}
	}
	if v.Request.GetDeleteBeforeReplace() {
		t.Errorf("the volume is delete-before-replace")
	}
	a := child(t, m, TypeDataVolume, "data", "aws:ec2/volumeAttachment:VolumeAttachment", "data-attachment")
	if !a.Request.GetDeleteBeforeReplace() {
		t.Errorf("the attachment is not delete-before-replace")
	}
	if !boolInput(a, "skipDestroy") || !boolInput(a, "stopInstanceBeforeDetaching") {
		t.Errorf("the attachment could detach a live volume: %v", a.Inputs)
	}
	if a.String("deviceName") != DataDeviceName || a.String("instanceId") != "i-0123456789abcdef0" {
		t.Errorf("attachment inputs: %v", a.Inputs)
	}
	// The guard looked the snapshot up before the volume existed.
	calls := m.Calls()
	if len(calls) < 2 || calls[0].Token != awsmock.GetSnapshot || calls[1].Token != awsmock.GetEbsVolumes {
		t.Errorf("calls = %v, want the snapshot and the existing volumes looked up first", calls)
	}
}

func TestAZGuardRefusesBeforeAnyResource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  []pulumitest.Option
		parts []string
	}{
		{"snapshot tagged for another zone", []pulumitest.Option{pulumitest.WithCall(awsmock.GetSnapshot, awsmock.SnapshotIn("me-central-1b", 20))},
			[]string{awsmock.Snapshot, "OpenClawAz=me-central-1b", "availability_zone is me-central-1a"}},
		{"snapshot without a zone tag", []pulumitest.Option{pulumitest.WithCall(awsmock.GetSnapshot, awsmock.SnapshotIn("", 20))},
			[]string{awsmock.Snapshot, "has no OpenClawAz tag", "availability_zone is me-central-1a"}},
		{"existing volume in another zone", awsmock.ExistingVolumeIn("me-central-1c"),
			[]string{"vol-0feedfacecafe0001", "is in me-central-1c", "availability_zone is me-central-1a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := pulumitest.Run(newDataVolume(awsmock.Snapshot), append(awsmock.Options(), tt.opts...)...)
			var zerr *ZoneError
			if !errors.As(err, &zerr) {
				t.Fatalf("error = %v, want a *ZoneError", err)
			}
			for _, p := range tt.parts {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("message lacks %q: %v", p, err)
				}
			}
			if n := len(m.Resources()); n != 0 {
				t.Errorf("%d resources registered before the refusal", n)
			}
		})
	}
	// A snapshot bigger than the volume would fail at create; it fails at preview instead.
	_, err := pulumitest.Run(newDataVolume(awsmock.Snapshot), append(awsmock.Options(),
		pulumitest.WithCall(awsmock.GetSnapshot, awsmock.SnapshotIn(awsmock.Zone, 100)))...)
	if err == nil || !strings.Contains(err.Error(), "set data_volume_size_gb to 100 or more") {
		t.Errorf("oversized snapshot: %v", err)
	}
}

func TestDataVolumeInItsOwnZoneIsAccepted(t *testing.T) {
	t.Parallel()
	run(t, newDataVolume(""), awsmock.ExistingVolumeIn(awsmock.Zone)...)
}

func newSpot(keepAMI bool) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		_, err := NewSpotInstance(ctx, "spot", &SpotInstanceArgs{
			InstanceType: "t4g.small", AMI: awsmock.AMI, KeepAMI: keepAMI,
			VpcID: pulumi.String("vpc-1"), SubnetID: pulumi.String("subnet-1"), AssociatePublicIP: true,
			InstanceProfile: pulumi.String("profile"), UserDataBase64: pulumi.String("H4sI"),
		})
		return err
	}
}

func TestSpotInstance(t *testing.T) {
	t.Parallel()
	m := run(t, newSpot(true))
	i := child(t, m, TypeSpotInstance, "spot", "aws:ec2/instance:Instance", "spot-instance")
	for path, want := range map[string]string{
		"instanceMarketOptions.marketType":                               "spot",
		"instanceMarketOptions.spotOptions.spotInstanceType":             "one-time",
		"instanceMarketOptions.spotOptions.instanceInterruptionBehavior": "terminate",
		"metadataOptions.httpTokens":                                     "required",
		"metadataOptions.httpEndpoint":                                   "enabled",
		"rootBlockDevice.volumeType":                                     "gp3",
		"subnetId":                                                       "subnet-1",
		"iamInstanceProfile":                                             "profile",
		"userDataBase64":                                                 "H4sI",
	} {
		if got := i.String(path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	if numberInput(i, "metadataOptions.httpPutResponseHopLimit") != MetadataHopLimit {
		t.Errorf("hop limit = %v", numberInput(i, "metadataOptions.httpPutResponseHopLimit"))
	}
	if !boolInput(i, "rootBlockDevice.encrypted") || !boolInput(i, "userDataReplaceOnChange") {
		t.Errorf("root volume encryption or user-data replacement off: %v", i.Inputs)
	}
	if _, ok := i.Input("keyName"); ok {
		t.Errorf("the instance has an SSH key pair")
	}
	if !i.Request.GetDeleteBeforeReplace() || !slices.Contains(i.Request.GetReplaceOnChanges(), "instanceType") {
		t.Errorf("instance options: deleteBeforeReplace %v replaceOnChanges %v", i.Request.GetDeleteBeforeReplace(), i.Request.GetReplaceOnChanges())
	}
	if !slices.Contains(i.Request.GetIgnoreChanges(), "ami") {
		t.Errorf("a newer resolved AMI would replace the instance")
	}
	sg := child(t, m, TypeSpotInstance, "spot", "aws:ec2/securityGroup:SecurityGroup", "spot-sg")
	if v, ok := sg.Input("ingress"); !ok || !v.IsArray() || len(v.ArrayValue()) != 0 {
		t.Errorf("ingress = %v, want managed and empty", sg.Inputs["ingress"])
	}
	egress, _ := sg.Input("egress")
	for _, e := range egress.ArrayValue() {
		if e.ObjectValue()["description"].StringValue() == "" {
			t.Errorf("egress rule without a description")
		}
	}

	pinned := run(t, newSpot(false))
	if slices.Contains(child(t, pinned, TypeSpotInstance, "spot", "aws:ec2/instance:Instance", "spot-instance").Request.GetIgnoreChanges(), "ami") {
		t.Errorf("a pinned AMI's change is ignored")
	}
}

func TestNetwork(t *testing.T) {
	t.Parallel()
	m := run(t, func(ctx *pulumi.Context) error {
		_, err := NewNetwork(ctx, "network", &NetworkArgs{AvailabilityZone: awsmock.Zone})
		return err
	})
	child(t, m, TypeNetwork, "network", "aws:ec2/vpc:Vpc", "network-vpc")
	s := child(t, m, TypeNetwork, "network", "aws:ec2/subnet:Subnet", "network-subnet")
	if s.String("availabilityZone") != awsmock.Zone || boolInput(s, "mapPublicIpOnLaunch") {
		t.Errorf("subnet inputs: %v", s.Inputs)
	}
	child(t, m, TypeNetwork, "network", "aws:ec2/internetGateway:InternetGateway", "network-igw")
	child(t, m, TypeNetwork, "network", "aws:ec2/routeTable:RouteTable", "network-routes")
	child(t, m, TypeNetwork, "network", "aws:ec2/routeTableAssociation:RouteTableAssociation", "network-routes-subnet")

	var existing *ExistingSubnet
	reused := run(t, func(ctx *pulumi.Context) error {
		var err error
		if existing, err = LookupSubnetInZone(ctx, "subnet-0aaaabbbbccccdddd", awsmock.Zone); err != nil {
			return err
		}
		_, err = NewNetwork(ctx, "network", &NetworkArgs{AvailabilityZone: awsmock.Zone, Existing: existing})
		return err
	})
	if n := len(reused.Resources()); n != 1 || existing.ID != "subnet-0aaaabbbbccccdddd" || existing.VpcID == "" {
		t.Errorf("existing subnet: %d resources, %+v", n, existing)
	}
	_, err := pulumitest.Run(func(ctx *pulumi.Context) error {
		_, err := LookupSubnetInZone(ctx, "subnet-0aaaabbbbccccdddd", awsmock.Zone)
		return err
	}, append(awsmock.Options(), pulumitest.WithCall(awsmock.GetSubnet, awsmock.SubnetIn("me-central-1b")))...)
	if err == nil || !strings.Contains(err.Error(), "subnet_id subnet-0aaaabbbbccccdddd is in me-central-1b but availability_zone is me-central-1a") {
		t.Errorf("subnet in another zone: %v", err)
	}
}

func roleArgs() *InstanceRoleArgs {
	return &InstanceRoleArgs{
		Partition: "aws", Region: awsmock.Region, AccountID: pulumitest.Account,
		ParameterPath: "/openclaw/test", StatusParameter: "/openclaw/test/setup-status",
		BucketArn: pulumi.String("arn:aws:s3:::backup-bucket-1a2b3c4"), BackupPrefix: "backups/",
		LogGroupPrefix: "/openclaw/test/", MetricsNamespace: "OpenClaw/test",
	}
}

// statements decodes a policy document input.
func statements(t *testing.T, r pulumitest.Resource, field string) []Statement {
	t.Helper()
	var doc PolicyDocument
	if err := json.Unmarshal([]byte(r.String(field)), &doc); err != nil {
		t.Fatalf("%s.%s is not a policy document: %v", r.Name, field, err)
	}
	return doc.Statement
}

func TestInstanceRole(t *testing.T) {
	t.Parallel()
	m := run(t, func(ctx *pulumi.Context) error {
		_, err := NewInstanceRole(ctx, "instance-role", roleArgs())
		return err
	})
	role := child(t, m, TypeInstanceRole, "instance-role", "aws:iam/role:Role", "instance-role-role")
	if trust := statements(t, role, "assumeRolePolicy"); len(trust) != 1 || trust[0].Action[0] != "sts:AssumeRole" {
		t.Errorf("trust policy: %+v", trust)
	}
	child(t, m, TypeInstanceRole, "instance-role", "aws:iam/instanceProfile:InstanceProfile", "instance-role-profile")
	p := child(t, m, TypeInstanceRole, "instance-role", "aws:iam/rolePolicy:RolePolicy", "instance-role-policy")
	byID := map[string]Statement{}
	for _, s := range statements(t, p, "policy") {
		byID[s.Sid] = s
		for _, a := range s.Action {
			if strings.Contains(a, "*") {
				t.Errorf("statement %s allows the wildcard action %s", s.Sid, a)
			}
		}
	}
	if got := byID["PublishTheSetupStatus"].Resource; !slices.Equal(got, []string{"arn:aws:ssm:me-central-1:123456789012:parameter/openclaw/test/setup-status"}) {
		t.Errorf("the instance may write %v", got)
	}
	if got := byID["ReadAndWriteBackups"]; !slices.Equal(got.Resource, []string{"arn:aws:s3:::backup-bucket-1a2b3c4/backups/*"}) ||
		slices.Contains(got.Action, "s3:DeleteObject") {
		t.Errorf("backup access: %+v", got)
	}
	if got := byID["PublishMetrics"].Condition["StringEquals"]["cloudwatch:namespace"]; got != "OpenClaw/test" {
		t.Errorf("metrics namespace condition = %v", got)
	}
	_, err := pulumitest.Run(func(ctx *pulumi.Context) error {
		a := roleArgs()
		a.StatusParameter = "/elsewhere/status"
		_, err := NewInstanceRole(ctx, "r", a)
		return err
	}, awsmock.Options()...)
	if err == nil {
		t.Errorf("a status parameter outside the stack's path was accepted")
	}
}

func TestBackupBucket(t *testing.T) {
	t.Parallel()
	m := run(t, func(ctx *pulumi.Context) error {
		_, err := NewBackupBucket(ctx, "backup", &BackupBucketArgs{})
		return err
	})
	b := child(t, m, TypeBackupBucket, "backup", "aws:s3/bucketV2:BucketV2", "backup-bucket")
	if _, named := b.Input("bucket"); named || boolInput(b, "forceDestroy") {
		t.Errorf("the bucket has a fixed name or is force-destroyed: %v", b.Inputs)
	}
	pab := child(t, m, TypeBackupBucket, "backup", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "backup-public-access-block")
	for _, f := range []string{"blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"} {
		if !boolInput(pab, f) {
			t.Errorf("%s is off", f)
		}
	}
	enc := child(t, m, TypeBackupBucket, "backup", "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2", "backup-encryption")
	if rules, _ := enc.Input("rules"); rules.ArrayValue()[0].ObjectValue()["applyServerSideEncryptionByDefault"].ObjectValue()["sseAlgorithm"].StringValue() != "AES256" {
		t.Errorf("encryption: %v", enc.Inputs)
	}
	v := child(t, m, TypeBackupBucket, "backup", "aws:s3/bucketVersioningV2:BucketVersioningV2", "backup-versioning")
	if v.String("versioningConfiguration.status") != "Enabled" {
		t.Errorf("versioning: %v", v.Inputs)
	}
	l := child(t, m, TypeBackupBucket, "backup", "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2", "backup-lifecycle")
	rules, _ := l.Input("rules")
	if len(rules.ArrayValue()) != 2 {
		t.Fatalf("lifecycle rules: %v", rules)
	}
	expire := rules.ArrayValue()[0].ObjectValue()["noncurrentVersionExpiration"].ObjectValue()
	abort := rules.ArrayValue()[1].ObjectValue()["abortIncompleteMultipartUpload"].ObjectValue()
	if expire["noncurrentDays"].NumberValue() != 14 || expire["newerNoncurrentVersions"].NumberValue() != 24 ||
		abort["daysAfterInitiation"].NumberValue() != 1 {
		t.Errorf("lifecycle: %v", rules)
	}
	p := child(t, m, TypeBackupBucket, "backup", "aws:s3/bucketPolicy:BucketPolicy", "backup-policy")
	deny := statements(t, p, "policy")[0]
	if deny.Effect != "Deny" || deny.Condition["Bool"]["aws:SecureTransport"] != "false" ||
		!slices.Equal(deny.Resource, []string{"arn:aws:s3:::backup-bucket-1a2b3c4", "arn:aws:s3:::backup-bucket-1a2b3c4/*"}) {
		t.Errorf("TLS-only policy: %+v", deny)
	}
	// Retained on destroy, settings and all.
	for _, r := range m.Resources() {
		if r.Custom && !r.Request.GetRetainOnDelete() {
			t.Errorf("%s is deleted on destroy", r.Name)
		}
	}
	child(t, m, TypeBackupBucket, "backup", "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "backup-ownership")
}

func TestSnapshotPolicy(t *testing.T) {
	t.Parallel()
	target := map[string]string{TagData: "true", TagStack: pulumitest.DefaultStack}
	m := run(t, func(ctx *pulumi.Context) error {
		_, err := NewSnapshotPolicy(ctx, "snapshots", &SnapshotPolicyArgs{IntervalHours: 12, RetainCount: 14, TargetTags: target})
		return err
	})
	p := child(t, m, TypeSnapshotPolicy, "snapshots", "aws:dlm/lifecyclePolicy:LifecyclePolicy", "snapshots-policy")
	if p.String("policyDetails.targetTags."+TagStack) != pulumitest.DefaultStack || p.String("policyDetails.targetTags."+TagData) != "true" {
		t.Errorf("target tags: %v", p.Inputs)
	}
	schedules, _ := p.Input("policyDetails.schedules")
	s := schedules.ArrayValue()[0].ObjectValue()
	if s["createRule"].ObjectValue()["interval"].NumberValue() != 12 || s["createRule"].ObjectValue()["intervalUnit"].StringValue() != "HOURS" ||
		s["retainRule"].ObjectValue()["count"].NumberValue() != 14 || !s["copyTags"].BoolValue() {
		t.Errorf("schedule: %v", s)
	}
	role := child(t, m, TypeSnapshotPolicy, "snapshots", "aws:iam/role:Role", "snapshots-role")
	if trust := statements(t, role, "assumeRolePolicy"); trust[0].Principal.(map[string]any)["Service"] != "dlm.amazonaws.com" {
		t.Errorf("trust: %+v", trust)
	}
	rp := child(t, m, TypeSnapshotPolicy, "snapshots", "aws:iam/rolePolicy:RolePolicy", "snapshots-role-policy")
	for _, st := range statements(t, rp, "policy") {
		if slices.Contains(st.Action, "ec2:DeleteSnapshot") && st.Condition == nil {
			t.Errorf("DLM may delete any snapshot")
		}
	}
	for _, bad := range []SnapshotPolicyArgs{
		{IntervalHours: 5, RetainCount: 7, TargetTags: target},
		{IntervalHours: 24, RetainCount: 0, TargetTags: target},
		{IntervalHours: 24, RetainCount: 1001, TargetTags: target},
		{IntervalHours: 24, RetainCount: 7, TargetTags: map[string]string{TagData: "true"}},
	} {
		m, err := pulumitest.Run(func(ctx *pulumi.Context) error {
			_, err := NewSnapshotPolicy(ctx, "s", &bad)
			return err
		}, awsmock.Options()...)
		if err == nil || len(m.Resources()) != 0 {
			t.Errorf("NewSnapshotPolicy(%+v) = %v with %d resources", bad, err, len(m.Resources()))
		}
	}
}

func TestMonitoring(t *testing.T) {
	t.Parallel()
	args := &MonitoringArgs{
		LogGroupPrefix: "/openclaw/test/", RetentionDays: 30,
		Logs:            []LogFile{{"openclaw", "/var/log/openclaw/openclaw.log"}, {"backup", "/var/log/openclaw/backup.log"}},
		ConfigParameter: "/openclaw/test/cloudwatch-agent", MetricsNamespace: "OpenClaw/test", DiskPaths: []string{"/", "/opt/openclaw"},
	}
	m := run(t, func(ctx *pulumi.Context) error {
		_, err := NewMonitoring(ctx, "monitoring", args)
		return err
	})
	for _, l := range args.Logs {
		g := child(t, m, TypeMonitoring, "monitoring", "aws:cloudwatch/logGroup:LogGroup", "monitoring-"+l.Name)
		if g.String("name") != "/openclaw/test/"+l.Name || numberInput(g, "retentionInDays") != 30 {
			t.Errorf("log group %s: %v", l.Name, g.Inputs)
		}
	}
	p := child(t, m, TypeMonitoring, "monitoring", "aws:ssm/parameter:Parameter", "monitoring-agent-config")
	var config struct {
		Logs struct {
			LogsCollected struct {
				Files struct {
					CollectList []struct {
						FilePath     string `json:"file_path"`
						LogGroupName string `json:"log_group_name"`
					} `json:"collect_list"`
				} `json:"files"`
			} `json:"logs_collected"`
		} `json:"logs"`
		Metrics struct {
			Namespace        string `json:"namespace"`
			MetricsCollected struct {
				Disk struct {
					Resources []string `json:"resources"`
				} `json:"disk"`
			} `json:"metrics_collected"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal([]byte(p.String("value")), &config); err != nil {
		t.Fatalf("agent config: %v", err)
	}
	if got := config.Logs.LogsCollected.Files.CollectList; len(got) != 2 || got[1].FilePath != "/var/log/openclaw/backup.log" ||
		got[1].LogGroupName != "/openclaw/test/backup" {
		t.Errorf("collect list: %+v", got)
	}
	if config.Metrics.Namespace != "OpenClaw/test" || !slices.Contains(config.Metrics.MetricsCollected.Disk.Resources, "/opt/openclaw") {
		t.Errorf("metrics: %+v", config.Metrics)
	}
	_, err := pulumitest.Run(func(ctx *pulumi.Context) error {
		bad := *args
		bad.RetentionDays = 10
		_, err := NewMonitoring(ctx, "m", &bad)
		return err
	}, awsmock.Options()...)
	if err == nil {
		t.Errorf("a retention CloudWatch refuses was accepted")
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	m := run(t, func(ctx *pulumi.Context) error {
		_, err := NewSecrets(ctx, "secrets", &SecretsArgs{Path: "/openclaw/test", Values: map[string]pulumi.StringInput{
			"OPENCLAW_GATEWAY_TOKEN": pulumi.String("gw-1"),
			"ANTHROPIC_API_KEY":      pulumi.String("sk-ant-1"),
		}})
		return err
	})
	for name, want := range map[string]string{
		"secrets-openclaw-gateway-token": "/openclaw/test/env/OPENCLAW_GATEWAY_TOKEN",
		"secrets-anthropic-api-key":      "/openclaw/test/env/ANTHROPIC_API_KEY",
	} {
		p := child(t, m, TypeSecrets, "secrets", "aws:ssm/parameter:Parameter", name)
		if p.String("name") != want || p.String("type") != "SecureString" {
			t.Errorf("%s: %v", name, p.Inputs)
		}
		if v := p.Inputs["value"]; !v.IsSecret() {
			t.Errorf("%s's value is not a Pulumi secret", name)
		}
	}
	s := child(t, m, TypeSecrets, "secrets", "aws:ssm/parameter:Parameter", "secrets-setup-status")
	if s.String("name") != "/openclaw/test/setup-status" || s.String("value") != StatusNotStarted ||
		!slices.Contains(s.Request.GetIgnoreChanges(), "value") {
		t.Errorf("status parameter: %v %v", s.Inputs, s.Request.GetIgnoreChanges())
	}
	_, err := pulumitest.Run(func(ctx *pulumi.Context) error {
		_, err := NewSecrets(ctx, "s", &SecretsArgs{Path: "/openclaw/test", Values: map[string]pulumi.StringInput{"lower case": pulumi.String("x")}})
		return err
	}, awsmock.Options()...)
	if err == nil {
		t.Errorf("a bad variable name was accepted")
	}
}

func TestChildURNMatchesTheEngine(t *testing.T) {
	t.Parallel()
	parent := resource.URN("urn:pulumi:dev::openclaw::clawdeploy:storage:DataVolume::data")
	if got := ChildURN(pulumi.URN(parent), "aws:ebs/volume:Volume", "data-volume"); got !=
		"urn:pulumi:dev::openclaw::clawdeploy:storage:DataVolume$aws:ebs/volume:Volume::data-volume" {
		t.Errorf("ChildURN = %s", got)
	}
}
