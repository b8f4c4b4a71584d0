package ec2spot_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/internal/moto"
	"github.com/clawdeploy/clawdeploy/setup"
	"github.com/clawdeploy/clawdeploy/targets"
	"github.com/clawdeploy/clawdeploy/targets/ec2spot"
)

const urnPrefix = "urn:pulumi:dev::openclaw::"

// text runs the AWS CLI with text output and returns it trimmed.
func text(t *testing.T, m *moto.Server, args ...string) string {
	t.Helper()
	return strings.TrimSpace(m.AWS(t, append(args, "--output", "text")...))
}

// tagSpec tags a new EC2 resource with its URN, as the components do.
func tagSpec(kind, urn string) string {
	return "ResourceType=" + kind + ",Tags=[{Key=" + components.TagURN + ",Value=" + urn + "}]"
}

// TestFinder creates, in moto, what an interrupted up could have left, and checks that each
// pending create is found with the id its provider imports, and that what was never created is
// reported absent. DLM is not in moto: a lookup it cannot answer must be an error, never
// "absent", or a resume could create a duplicate policy.
func TestFinder(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	cfg := m.Config()
	f := &ec2spot.Finder{Config: &cfg}

	vpc := text(t, m, "ec2", "create-vpc", "--cidr-block", "10.0.0.0/16", "--query", "Vpc.VpcId")
	subnet := text(t, m, "ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", "10.0.1.0/24",
		"--availability-zone", moto.Region+"a", "--query", "Subnet.SubnetId")
	table := text(t, m, "ec2", "create-route-table", "--vpc-id", vpc, "--query", "RouteTable.RouteTableId")
	text(t, m, "ec2", "associate-route-table", "--route-table-id", table, "--subnet-id", subnet)
	volURN := urnPrefix + "clawdeploy:storage:DataVolume$aws:ebs/volume:Volume::openclaw-data"
	volume := text(t, m, "ec2", "create-volume", "--availability-zone", moto.Region+"a", "--size", "8",
		"--tag-specifications", tagSpec("volume", volURN), "--query", "VolumeId")
	instURN := ec2spot.InstanceURN("dev")
	image := text(t, m, "ec2", "describe-images", "--owners", "amazon", "--query", "Images[0].ImageId")
	instance := text(t, m, "ec2", "run-instances", "--image-id", image, "--instance-type", "t4g.small",
		"--subnet-id", subnet, "--tag-specifications", tagSpec("instance", instURN), "--query", "Instances[0].InstanceId")
	text(t, m, "ec2", "attach-volume", "--volume-id", volume, "--instance-id", instance, "--device", "/dev/sdf")
	deadURN := urnPrefix + "clawdeploy:compute:SpotInstance$aws:ec2/instance:Instance::terminated"
	dead := text(t, m, "ec2", "run-instances", "--image-id", image, "--instance-type", "t4g.small",
		"--tag-specifications", tagSpec("instance", deadURN), "--query", "Instances[0].InstanceId")
	text(t, m, "ec2", "terminate-instances", "--instance-ids", dead)
	twinURN := urnPrefix + "aws:ec2/securityGroup:SecurityGroup::twin"
	var twins []string
	for _, name := range []string{"twin-a", "twin-b"} {
		twins = append(twins, text(t, m, "ec2", "create-security-group", "--group-name", name, "--description", "x", "--vpc-id", vpc,
			"--tag-specifications", tagSpec("security-group", twinURN), "--query", "GroupId"))
	}

	m.CreateBucket(t, "openclaw-backups")
	text(t, m, "s3api", "put-public-access-block", "--bucket", "openclaw-backups", "--public-access-block-configuration",
		"BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true")
	m.CreateBucket(t, "bare-bucket")
	m.AWS(t, "s3api", "put-bucket-versioning", "--bucket", "bare-bucket", "--versioning-configuration", "Status=Suspended")
	m.AWS(t, "s3api", "create-bucket", "--bucket", "never-versioned", "--create-bucket-configuration", "LocationConstraint="+moto.Region)
	text(t, m, "iam", "create-role", "--role-name", "openclaw-role", "--assume-role-policy-document",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	text(t, m, "iam", "put-role-policy", "--role-name", "openclaw-role", "--policy-name", "backups",
		"--policy-document", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`)
	text(t, m, "iam", "create-instance-profile", "--instance-profile-name", "openclaw-profile")
	text(t, m, "ssm", "put-parameter", "--name", "/openclaw/dev/gateway_token", "--type", "SecureString", "--value", "x")
	text(t, m, "logs", "create-log-group", "--log-group-name", "/openclaw/dev/setup")
	text(t, m, "logs", "create-log-group", "--log-group-name", "/openclaw/dev/setup-old")

	pc := func(urn, typ string, inputs map[string]any) targets.PendingCreate {
		return targets.PendingCreate{URN: urn, Type: typ, Inputs: inputs}
	}
	for _, tc := range []struct {
		name  string
		pc    targets.PendingCreate
		id    string
		found bool
	}{
		{"tagged volume", pc(volURN, "aws:ebs/volume:Volume", nil), volume, true},
		{"untagged volume", pc(volURN+"-2", "aws:ebs/volume:Volume", nil), "", false},
		{"running instance", pc(instURN, "aws:ec2/instance:Instance", nil), instance, true},
		{"terminated instance", pc(deadURN, "aws:ec2/instance:Instance", nil), "", false},
		{"attachment", pc(urnPrefix+"a", "aws:ec2/volumeAttachment:VolumeAttachment",
			map[string]any{"volumeId": volume, "instanceId": instance, "deviceName": "/dev/sdf"}),
			"/dev/sdf:" + volume + ":" + instance, true},
		{"attachment to another instance", pc(urnPrefix+"a", "aws:ec2/volumeAttachment:VolumeAttachment",
			map[string]any{"volumeId": volume, "instanceId": dead, "deviceName": "/dev/sdf"}), "", false},
		{"route table association", pc(urnPrefix+"r", "aws:ec2/routeTableAssociation:RouteTableAssociation",
			map[string]any{"subnetId": subnet, "routeTableId": table}), subnet + "/" + table, true},
		{"bucket", pc(urnPrefix+"b", "aws:s3/bucketV2:BucketV2", map[string]any{"bucket": "openclaw-backups"}), "openclaw-backups", true},
		{"missing bucket", pc(urnPrefix+"b", "aws:s3/bucketV2:BucketV2", map[string]any{"bucket": "nope-bucket"}), "", false},
		{"versioning", pc(urnPrefix+"v", "aws:s3/bucketVersioningV2:BucketVersioningV2", map[string]any{"bucket": "openclaw-backups"}), "openclaw-backups", true},
		{"suspended versioning is set", pc(urnPrefix+"v", "aws:s3/bucketVersioningV2:BucketVersioningV2", map[string]any{"bucket": "bare-bucket"}), "bare-bucket", true},
		{"versioning never set", pc(urnPrefix+"v", "aws:s3/bucketVersioningV2:BucketVersioningV2", map[string]any{"bucket": "never-versioned"}), "", false},
		{"public access block", pc(urnPrefix+"p", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", map[string]any{"bucket": "openclaw-backups"}), "openclaw-backups", true},
		{"no public access block", pc(urnPrefix+"p", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", map[string]any{"bucket": "bare-bucket"}), "", false},
		{"no bucket policy", pc(urnPrefix+"p", "aws:s3/bucketPolicy:BucketPolicy", map[string]any{"bucket": "bare-bucket"}), "", false},
		{"role", pc(urnPrefix+"role", "aws:iam/role:Role", map[string]any{"name": "openclaw-role"}), "openclaw-role", true},
		{"missing role", pc(urnPrefix+"role", "aws:iam/role:Role", map[string]any{"name": "other-role"}), "", false},
		{"role policy", pc(urnPrefix+"rp", "aws:iam/rolePolicy:RolePolicy", map[string]any{"role": "openclaw-role", "name": "backups"}), "openclaw-role:backups", true},
		{"missing role policy", pc(urnPrefix+"rp", "aws:iam/rolePolicy:RolePolicy", map[string]any{"role": "openclaw-role", "name": "other"}), "", false},
		{"instance profile", pc(urnPrefix+"ip", "aws:iam/instanceProfile:InstanceProfile", map[string]any{"name": "openclaw-profile"}), "openclaw-profile", true},
		{"missing instance profile", pc(urnPrefix+"ip", "aws:iam/instanceProfile:InstanceProfile", map[string]any{"name": "nope"}), "", false},
		{"parameter", pc(urnPrefix+"sp", "aws:ssm/parameter:Parameter", map[string]any{"name": "/openclaw/dev/gateway_token"}), "/openclaw/dev/gateway_token", true},
		{"missing parameter", pc(urnPrefix+"sp", "aws:ssm/parameter:Parameter", map[string]any{"name": "/openclaw/dev/nope"}), "", false},
		{"a replacement, not the original it replaces", targets.PendingCreate{URN: twinURN, Type: "aws:ec2/securityGroup:SecurityGroup",
			Known: twins[:1]}, twins[1], true},
		{"a replacement not created yet", targets.PendingCreate{URN: instURN, Type: "aws:ec2/instance:Instance", Known: []string{instance}}, "", false},
		{"log group, not its prefix twin", pc(urnPrefix+"lg", "aws:cloudwatch/logGroup:LogGroup", map[string]any{"name": "/openclaw/dev/setup"}), "/openclaw/dev/setup", true},
		{"missing log group", pc(urnPrefix+"lg", "aws:cloudwatch/logGroup:LogGroup", map[string]any{"name": "/openclaw/dev/set"}), "", false},
	} {
		id, found, err := f.Find(t.Context(), tc.pc)
		if err != nil || id != tc.id || found != tc.found {
			t.Errorf("%s: Find = %q, %v, %v; want %q, %v", tc.name, id, found, err, tc.id, tc.found)
		}
	}

	for name, p := range map[string]targets.PendingCreate{
		"two resources carry one identity": pc(twinURN, "aws:ec2/securityGroup:SecurityGroup", nil),
		"a type the finder does not know":  pc(urnPrefix+"x", "aws:ec2/eip:Eip", nil),
		"DLM, which moto does not serve": pc(urnPrefix+"dlm", "aws:dlm/lifecyclePolicy:LifecyclePolicy",
			map[string]any{"policyDetails": map[string]any{"targetTags": map[string]any{"OpenClawData": "dev"}}}),
	} {
		if id, found, err := f.Find(t.Context(), p); err == nil {
			t.Errorf("%s: Find = %q, %v and no error; it cannot be told, so it must fail", name, id, found)
		}
	}
}

// TestSSMWaiter publishes setup statuses to a moto SSM parameter as an instance does: a status of
// a replaced instance does not count, RUNNING is reported, COMPLETE ends the wait, FAILED is a
// *targets.SetupError with the reason, and a setup that never finishes runs out of budget.
func TestSSMWaiter(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	cfg := m.Config()
	client := ssm.NewFromConfig(cfg)
	const param = "/openclaw/dev/setup-status"
	put := func(value string) {
		m.AWS(t, "ssm", "put-parameter", "--name", param, "--type", "String", "--overwrite", "--value", value)
	}
	outputs := auto.OutputMap{
		"setup_status_parameter": {Value: param},
		"instance_id":            {Value: "i-new"},
		"region":                 {Value: moto.Region},
	}
	// The budget is not what this tests: each put runs the AWS CLI, seconds apiece on a busy
	// machine (20 s ran out beside the rest of the suite).
	w := ec2spot.SSMWaiter{Interval: 50 * time.Millisecond, Budget: 5 * time.Minute, Client: client}

	put("i-old COMPLETE tok")
	var (
		seen = make(chan setup.State, 100)
		done = make(chan error, 1)
		last setup.Status
	)
	go func() {
		var err error
		last, err = w.Wait(t.Context(), "dev", outputs, func(s setup.Status) { seen <- s.State })
		done <- err
	}()
	expect := func(want setup.State) {
		t.Helper()
		for {
			select {
			case s := <-seen:
				if s == want {
					return
				}
			case err := <-done:
				t.Fatalf("the wait ended (%v) before %s", err, want)
			case <-time.After(2 * time.Minute):
				t.Fatalf("no %s reported", want)
			}
		}
	}
	expect(setup.NotStarted)
	put("i-new RUNNING")
	expect(setup.Running)
	put("i-new COMPLETE tok-123")
	if err := <-done; err != nil || last.State != setup.Complete || last.Token != "tok-123" {
		t.Fatalf("Wait = %+v, %v", last, err)
	}

	put("i-new FAILED docker compose pull: timeout")
	st, err := w.Wait(t.Context(), "dev", outputs, func(setup.Status) {})
	var setupErr *targets.SetupError
	if !errors.As(err, &setupErr) || setupErr.TimedOut || !strings.Contains(err.Error(), "docker compose pull: timeout") || st.State != setup.Failed {
		t.Errorf("a failed setup: %+v, %v", st, err)
	}

	put("i-new RUNNING")
	short := ec2spot.SSMWaiter{Interval: 50 * time.Millisecond, Budget: 500 * time.Millisecond, Client: client}
	st, err = short.Wait(t.Context(), "dev", outputs, func(setup.Status) {})
	if !errors.As(err, &setupErr) || !setupErr.TimedOut || st.State != setup.Running {
		t.Errorf("a setup past its budget: %+v, %v", st, err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := w.Wait(ctx, "dev", outputs, func(setup.Status) {}); err == nil || errors.As(err, &setupErr) {
		t.Errorf("a cancelled wait returned %v; want the cancellation, not a setup error", err)
	}
	if _, err := w.Wait(t.Context(), "dev", auto.OutputMap{}, func(setup.Status) {}); err == nil {
		t.Error("a stack without the status outputs did not fail")
	}
}

// TestHostChecker reads, from moto, what heal reads: a running instance is left alone; the
// watcher's INTERRUPTED line for it, its termination, or its absence makes it down; an
// interruption announced by another (an earlier) instance does not.
func TestHostChecker(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	cfg := m.Config()
	c := &ec2spot.HostChecker{Config: &cfg}
	image := text(t, m, "ec2", "describe-images", "--owners", "amazon", "--query", "Images[0].ImageId")
	run := func() string {
		return text(t, m, "ec2", "run-instances", "--image-id", image, "--instance-type", "t4g.small", "--query", "Instances[0].InstanceId")
	}
	live, interrupted, terminated := run(), run(), run()
	text(t, m, "ec2", "terminate-instances", "--instance-ids", terminated)
	param := "/openclaw/dev/setup-status"
	outputs := func(instance string) auto.OutputMap {
		return auto.OutputMap{"instance_id": {Value: instance}, "setup_status_parameter": {Value: param}, "region": {Value: moto.Region}}
	}
	check := func(instance string, down bool, why string) {
		t.Helper()
		st, err := c.Check(t.Context(), "dev", outputs(instance))
		if err != nil || st.Down != down || !strings.Contains(st.Why, why) || st.Host != instance {
			t.Errorf("%s: %+v, %v; want down=%v (%s)", instance, st, err, down, why)
		}
	}
	check(live, false, "is running") // no status parameter yet
	text(t, m, "ssm", "put-parameter", "--name", param, "--type", "SecureString", "--overwrite",
		"--value", interrupted+" INTERRUPTED "+interrupted)
	check(interrupted, true, "announced a Spot interruption")
	check(live, false, "is running") // the interruption was another instance's
	check(terminated, true, "is terminated")
	check("i-0123456789abcdef0", true, "no longer exists")
}
