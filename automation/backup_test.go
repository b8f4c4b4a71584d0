package automation_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/backup"
	"github.com/clawdeploy/clawdeploy/cloudinit"
	"github.com/clawdeploy/clawdeploy/internal/backuptest"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/internal/moto"
	"github.com/clawdeploy/clawdeploy/internal/simprovider"
	"github.com/clawdeploy/clawdeploy/internal/spotpricefake"
	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/runbook"
	"github.com/clawdeploy/clawdeploy/targets/ec2spot"
)

// backupReport is the report a `backup verify --json` printed.
func (p *proc) backupReport() (*backup.Report, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, line := range p.lines {
		var e struct {
			Type string `json:"type"`
			backup.Report
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Type == "backup" {
			return &e.Report, true
		}
	}
	return nil, false
}

// TestRunbookCommandsOnADeployment runs the runbook's commands on one deployment of the real
// program whose volume, instance and bucket stand for ones in moto: `backup verify` (no backup
// yet, a good one, a broken newest one and the good version before it, the usage errors),
// `spot-prices --stack`, and `volume unstick` on a volume an old instance still holds.
func TestRunbookCommandsOnADeployment(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	ec2Client := ec2.NewFromConfig(m.Config())
	zone := moto.Region + "a"
	volume, current, old := m.Volume(t, zone), m.Instance(t, zone), m.Instance(t, zone)
	sim := enginetest.NewSim(t, bins)
	control(t, sim, simprovider.Control{IDs: map[string]string{"aws:ebs/volume:Volume": volume, "aws:ec2/instance:Instance": current}})
	d, _, progress := newSimDriver(t, sim, nil, nil)
	res, err := d.Up(t.Context(), "dev", &UpOptions{Config: exampleConfig()})
	if err != nil {
		t.Fatalf("up: %v\n%s", err, progress)
	}
	bucket, _ := res.Outputs["backup_bucket"].Value.(string)
	m.CreateBucket(t, bucket)
	var awsEnv []string
	for _, kv := range m.Env() {
		if strings.HasPrefix(kv, "AWS_") {
			awsEnv = append(awsEnv, kv)
		}
	}
	verify := func(args ...string) (*proc, int) {
		t.Helper()
		p := startSimWith(t, sim, "real", nil, awsEnv, append([]string{"backup", "verify", "--stack", "dev"}, args...)...)
		return p, p.wait(2 * time.Minute)
	}

	if p, code := verify(); code != ExitFailed || !strings.Contains(p.stderr.String(), "has no backup yet") {
		t.Errorf("no backup yet: exit %d\n%s", code, p.stderr.String())
	}

	client := s3.NewFromConfig(m.Config(), func(o *s3.Options) { o.UsePathStyle = true })
	files := backuptest.Files{".openclaw/openclaw.json": []byte(`{}`), "workspace/notes.md": []byte("# notes\n")}
	good := backuptest.Upload(t, client, bucket, cloudinit.BackupObject, backuptest.Archive(t, files, backuptest.Manifest(files)), "")
	p, code := verify()
	if r, ok := p.backupReport(); code != 0 || !ok || !r.Restorable || r.Files != 2 || r.VersionID != good {
		t.Errorf("a good backup: exit %d, report %+v\n%s", code, r, p.stderr.String())
	}
	if res, ok := p.result(); !ok || res.OK == nil || !*res.OK {
		t.Errorf("result event %+v", res)
	}

	lying := backuptest.Files{".openclaw/openclaw.json": []byte(`{"changed":true}`), "workspace/notes.md": []byte("# notes\n")}
	backuptest.Upload(t, client, bucket, cloudinit.BackupObject, backuptest.Archive(t, lying, backuptest.Manifest(files)), "")
	p, code = verify()
	r, ok := p.backupReport()
	if code != ExitFailed || !ok || r.Restorable || len(r.Problems) != 1 || r.Problems[0].File != ".openclaw/openclaw.json" {
		t.Errorf("a broken backup: exit %d, report %+v", code, r)
	}
	if !strings.Contains(p.stderr.String(), "is not restorable: .openclaw/openclaw.json: sha256 ") {
		t.Errorf("the failure does not name the file:\n%s", p.stderr.String())
	}
	if p, code := verify("--version", good); code != 0 {
		t.Errorf("--version %s: exit %d\n%s", good, code, p.stderr.String())
	}

	// spot-prices --stack on the same deployment: its data volume pins me-central-1a, so the best
	// row is chosen there although 1b is cheaper (the Spot price history is a fake's: moto's is
	// one price of 2006).
	spot := spotpricefake.Start(t,
		spotpricefake.Price{InstanceType: "t4g.small", Zone: "me-central-1a", Price: 0.0061, At: time.Now().Add(-time.Hour)},
		spotpricefake.Price{InstanceType: "t4g.small", Zone: "me-central-1b", Price: 0.0049, At: time.Now().Add(-time.Hour)})
	p = startSimWith(t, sim, "real", nil, append(awsEnv, "AWS_ENDPOINT_URL_EC2="+spot.URL), "spot-prices", "--stack", "dev", "--instance-types", "t4g.small")
	if code := p.wait(time.Minute); code != 0 {
		t.Fatalf("spot-prices --stack dev: exit %d\n%s", code, p.stderr.String())
	}
	var report runbook.SpotPriceReport
	for _, line := range p.lines {
		if strings.Contains(line, `"type":"spotPrices"`) {
			_ = json.Unmarshal([]byte(line), &report)
		}
	}
	if report.PinnedZone != "me-central-1a" || report.Best == nil || report.Best.Zone != "me-central-1a" || len(report.Rows) != 2 || report.Rows[0].Zone != "me-central-1b" {
		t.Errorf("spot-prices --stack dev: %+v", report)
	}
	if lines := report.Config; len(lines) != 2 || lines[1] != "pulumi config set availability_zone me-central-1a" {
		t.Errorf("config lines %q", lines)
	}

	// volume unstick: the stack's volume is free, then held by an old instance the state does not
	// hold; unstick detaches it (in moto), refreshes and, with --apply, runs the up.
	// unstick runs it and returns its "volume" event's line.
	unstick := func(args ...string) (*proc, string, int) {
		t.Helper()
		p := startSimWith(t, sim, "real", nil, awsEnv, append([]string{"volume", "unstick", "--stack", "dev"}, args...)...)
		code := p.wait(2 * time.Minute)
		var found string
		for _, line := range p.lines {
			if strings.Contains(line, `"type":"volume"`) {
				found = line
			}
		}
		return p, found, code
	}
	if p, found, code := unstick("--yes"); code != 0 || !strings.Contains(found, `"finding":"free"`) || p.ranEngine() {
		t.Errorf("unstick on a free volume: exit %d, %s\n%s", code, found, p.stderr.String())
	}
	if _, err := ec2Client.AttachVolume(t.Context(), &ec2.AttachVolumeInput{VolumeId: &volume, InstanceId: &old, Device: aws.String("/dev/sdf")}); err != nil {
		t.Fatal(err)
	}
	if p, _, code := unstick(); code != ExitUsage || !strings.Contains(p.stderr.String(), "--json cannot ask: pass --yes") {
		t.Errorf("unstick --json without --yes: exit %d\n%s", code, p.stderr.String())
	}
	p, found, code := unstick("--yes", "--apply")
	if code != 0 || !strings.Contains(found, `"finding":"attached-elsewhere"`) || !strings.Contains(found, `"instance":"`+old+`"`) {
		t.Fatalf("unstick --yes --apply: exit %d, %s\n%s", code, found, p.stderr.String())
	}
	if r, ok := p.result(); !ok || r.Outputs["data_volume_id"] != volume {
		t.Errorf("unstick --apply's result %+v, want the up's outputs", r)
	}
	described, err := ec2Client.DescribeVolumes(t.Context(), &ec2.DescribeVolumesInput{VolumeIds: []string{volume}})
	if err != nil || len(described.Volumes[0].Attachments) != 0 {
		t.Errorf("the volume is still attached after unstick: %+v (%v)", described.Volumes[0].Attachments, err)
	}
	if !p.ranEngine() {
		t.Errorf("unstick ran neither the refresh nor the up")
	}

	// restore: a snapshot of the stack's volume in moto (and in the simulated cloud, where the
	// program's AZ guard looks it up), and three it must refuse. The volume is replaced, so this
	// comes after unstick, which needs the volume moto knows.
	control(t, sim, simprovider.Control{})
	chosen := m.Snapshot(t, volume, "OpenClawData", "true", "OpenClawStack", "dev", "OpenClawAz", zone)
	if err := simprovider.PutSnapshot(sim.Cloud, chosen, map[string]string{"OpenClawData": "true", "OpenClawStack": "dev", "OpenClawAz": zone}, 20); err != nil {
		t.Fatal(err)
	}
	foreign := m.Snapshot(t, volume, "OpenClawData", "true", "OpenClawStack", "other", "OpenClawAz", zone)
	elsewhere := m.Snapshot(t, volume, "OpenClawData", "true", "OpenClawStack", "dev", "OpenClawAz", moto.Region+"b")
	untagged := m.Snapshot(t, volume, "OpenClawData", "true", "OpenClawStack", "dev")
	restore := func(args ...string) (*proc, int) {
		t.Helper()
		p := startSimWith(t, sim, "real", nil, awsEnv, append([]string{"restore", "--stack", "dev"}, args...)...)
		return p, p.wait(3 * time.Minute)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--yes"}, "give --snapshot snap-… or --latest"},
		{[]string{"--snapshot", chosen}, "--json cannot ask: pass --yes"},
		{[]string{"--yes", "--snapshot", "snap-0123456789abcdef0"}, "nothing restored: snap-0123456789abcdef0 does not exist in me-central-1"},
		{[]string{"--yes", "--snapshot", foreign}, "nothing restored: " + foreign + " belongs to stack other, not dev"},
		{[]string{"--yes", "--snapshot", elsewhere}, "OpenClawAz is me-central-1b, the stack's volume is in me-central-1a"},
		{[]string{"--yes", "--snapshot", untagged}, "no OpenClawAz tag"},
	} {
		if p, code := restore(bad.args...); code != ExitUsage || !strings.Contains(p.stderr.String(), bad.want) || p.ranEngine() {
			t.Errorf("restore %v: exit %d, want %d and %q\n%s", bad.args, code, ExitUsage, bad.want, p.stderr.String())
		}
	}
	p, code = restore("--yes", "--latest")
	if code != 0 {
		t.Fatalf("restore --latest: exit %d\n%s", code, p.stderr.String())
	}
	var plan runbook.RestorePlan
	for _, line := range p.lines {
		if strings.Contains(line, `"type":"restorePlan"`) {
			_ = json.Unmarshal([]byte(line), &plan)
		}
	}
	if plan.Snapshot.ID != chosen || !plan.Existing || plan.Volume != volume || len(plan.Replace) != 2 || plan.Replace[0] != ec2spot.DataVolumeURN("dev") {
		t.Errorf("restore plan %+v, want %s replacing %s and the instance", plan, chosen, volume)
	}
	if warnsIgnored(p) {
		t.Errorf("the restore warned that the snapshot it restores is ignored:\n%s", p.stderr.String())
	}
	var restored []string
	for _, r := range sim.Load(t).Resources {
		if r.Type == "aws:ebs/volume:Volume" {
			restored = append(restored, r.ID+" from "+fmt.Sprint(r.Inputs["snapshotId"]))
		}
	}
	if len(restored) != 1 || !strings.HasSuffix(restored[0], " from "+chosen) || strings.HasPrefix(restored[0], volume) {
		t.Errorf("volumes after the restore: %v, want one new volume made from %s", restored, chosen)
	}
	if rec, err := d.Status(t.Context(), "dev"); err != nil || rec.Status != journal.Ready {
		t.Errorf("after the restore: %+v, %v", rec, err)
	}

	// A restore killed once it began, before any replacement started (the journal says
	// PROVISIONING), everything with it: the resume makes the restore's replacements, once each.
	before := sim.Load(t)
	oldVolumes, oldInstances := before.OfType("aws:ebs/volume:Volume"), before.OfType("aws:ec2/instance:Instance")
	if len(oldVolumes) != 1 || len(oldInstances) != 1 {
		t.Fatalf("before the killed restore: %d volumes, %d instances", len(oldVolumes), len(oldInstances))
	}
	second := m.Snapshot(t, volume, "OpenClawData", "true", "OpenClawStack", "dev", "OpenClawAz", zone)
	if err := simprovider.PutSnapshot(sim.Cloud, second, map[string]string{"OpenClawData": "true", "OpenClawStack": "dev", "OpenClawAz": zone}, 20); err != nil {
		t.Fatal(err)
	}
	p = startSimWith(t, sim, "real", nil, awsEnv, "restore", "--stack", "dev", "--snapshot", second, "--yes")
	provisioning := func(seen []Event) bool {
		return slices.ContainsFunc(seen, func(e Event) bool { return e.Type == EventStatus && e.Status == "PROVISIONING" })
	}
	if !p.killOn("PROVISIONING", p.eventList, provisioning, true) {
		t.Fatalf("the restore of %s ended before it began:\n%s", second, p.stderr.String())
	}
	p = startSimWith(t, sim, "real", nil, awsEnv, "resume", "--stack", "dev")
	if code := p.wait(3 * time.Minute); code != 0 {
		t.Fatalf("resume of the killed restore: exit %d\n%s", code, p.stderr.String())
	}
	after := sim.Load(t)
	volumes, instances := after.OfType("aws:ebs/volume:Volume"), after.OfType("aws:ec2/instance:Instance")
	if len(volumes) != 1 || volumes[0].ID == oldVolumes[0].ID || volumes[0].Inputs["snapshotId"] != second {
		t.Errorf("volumes after the resumed restore: %+v, want one new volume made from %s", volumes, second)
	}
	if len(instances) != 1 || instances[0].ID == oldInstances[0].ID {
		t.Errorf("instances after the resumed restore: %+v, want one new instance", instances)
	}
	for _, typ := range []string{"aws:ebs/volume:Volume", "aws:ec2/instance:Instance"} {
		created := 0
		for _, op := range after.Ops[len(before.Ops):] {
			if op.Type == typ && op.Kind == "create" {
				created++
			}
		}
		if created != 1 {
			t.Errorf("%d %s created by the killed restore and its resume, want 1", created, typ)
		}
	}
	if rec, err := d.Status(t.Context(), "dev"); err != nil || rec.Status != journal.Ready || len(rec.Replacing) != 0 {
		t.Errorf("after the resumed restore: %+v, %v", rec, err)
	}
	if warnsIgnored(p) {
		t.Errorf("the resumed restore warned that the snapshot it restores is ignored:\n%s", p.stderr.String())
	}

	// An up of a snapshot the deployed stack ignores, killed once it began: its resume warns, as
	// the up did.
	p = startSimWith(t, sim, "real", nil, awsEnv, "up", "--stack", "dev", "--config", "data_volume_snapshot_id="+chosen)
	if !p.killOn("PROVISIONING", p.eventList, provisioning, true) || !warnsIgnored(p) {
		t.Fatalf("the up of an ignored snapshot: ended before it began, or did not warn:\n%s", p.stderr.String())
	}
	p = startSimWith(t, sim, "real", nil, awsEnv, "resume", "--stack", "dev")
	if code := p.wait(3 * time.Minute); code != 0 || !warnsIgnored(p) {
		t.Errorf("the resume of an up of an ignored snapshot: exit %d, warned %v\n%s", code, warnsIgnored(p), p.stderr.String())
	}

	// restore into a stack that is not deployed here: the final snapshot of a "fresh" stack
	// destroyed earlier deploys it again, its zone and region from the snapshot.
	fresh := m.Snapshot(t, volume, "OpenClawData", "true", "OpenClawStack", "fresh", "OpenClawAz", zone, "CreatedBy", "final-on-destroy")
	if err := simprovider.PutSnapshot(sim.Cloud, fresh, map[string]string{"OpenClawData": "true", "OpenClawStack": "fresh", "OpenClawAz": zone}, 20); err != nil {
		t.Fatal(err)
	}
	p = startSimWith(t, sim, "real", nil, awsEnv, "restore", "--stack", "fresh", "--snapshot", fresh, "--yes")
	if code := p.wait(3 * time.Minute); code != ExitUsage || !strings.Contains(p.stderr.String(), "no deployment named fresh here: pass --region") {
		t.Errorf("restore into a new stack without --region: exit %d\n%s", code, p.stderr.String())
	}
	p = startSimWith(t, sim, "real", nil, awsEnv, "restore", "--stack", "fresh", "--snapshot", fresh, "--region", moto.Region, "--yes",
		"--config", "instance_type=t4g.medium")
	if code := p.wait(3 * time.Minute); code != 0 {
		t.Fatalf("restore into a new stack: exit %d\n%s", code, p.stderr.String())
	}
	made := 0
	for _, r := range sim.Load(t).Resources {
		if r.Type == "aws:ebs/volume:Volume" && strings.Contains(r.URN, "urn:pulumi:fresh::") {
			made++
			if r.Inputs["snapshotId"] != fresh || r.Inputs["availabilityZone"] != zone {
				t.Errorf("fresh's volume: %v", r.Inputs)
			}
		}
	}
	if made != 1 {
		t.Errorf("%d volumes of fresh, want the one restored", made)
	}
	if rec, err := d.Status(t.Context(), "fresh"); err != nil || rec.Status != journal.Ready {
		t.Errorf("fresh after the restore: %+v, %v", rec, err)
	}

	for _, args := range [][]string{{"backup", "verify"}, {"backup", "verify", "--stack", "../x"}} {
		cmd := exec.Command(sim.Bins.Dir+"/clawdeploy-sim", args...)
		cmd.Env = sim.Environ("SIMDRIVER_PROGRAM=real")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != ExitUsage {
			t.Errorf("%v: %v, want exit %d\n%s", args, err, ExitUsage, out)
		}
	}
}

// warnsIgnored reports whether p warned that the stack ignores its data_volume_snapshot_id.
func warnsIgnored(p *proc) bool {
	return slices.ContainsFunc(p.eventList(), func(e Event) bool {
		return e.Type == EventDiagnostic && e.Severity == "warning" && strings.Contains(e.Message, "config data_volume_snapshot_id changed")
	})
}
