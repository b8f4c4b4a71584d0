package automation_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/internal/moto"
	"github.com/clawdeploy/clawdeploy/internal/pricingfake"
	"github.com/clawdeploy/clawdeploy/internal/simprovider"
	"github.com/clawdeploy/clawdeploy/prcomment"
	"github.com/clawdeploy/clawdeploy/preview"
	"github.com/clawdeploy/clawdeploy/targets"
	"github.com/clawdeploy/clawdeploy/targets/ec2spot"
)

// TestPreviewSumsUpTheRisks previews the real program on the simulated provider: a new stack
// (everything created, nothing at risk), then on the deployed stack a new image (the instance
// replaced: downtime, forced by its user-data), a new data_volume_snapshot_id and zone (ignored
// by the stack: data at risk, with the way to restore), and the data volume replaced by hand
// (data at risk). None of it changes anything.
func TestPreviewSumsUpTheRisks(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	sim := enginetest.NewSim(t, bins)
	sim.Registry.Push(t, "ghcr.io/openclaw/openclaw:2026.3.1") // the release the previews upgrade to
	d, ev, progress := newSimDriver(t, sim, nil, nil)

	res, err := d.Preview(ctx, "dev", &UpOptions{Config: exampleConfig()})
	if err != nil {
		t.Fatalf("preview of a new stack: %v\n%s", err, progress)
	}
	c := res.Changes
	if c.Counts["create"] < 20 || c.Changed() != c.Counts["create"] || len(c.Of(targets.RiskData))+len(c.Of(targets.RiskDowntime)) != 0 {
		t.Errorf("new stack: counts %v, resources %+v", c.Counts, c.Resources)
	}
	if len(c.Of(targets.RiskAccess)) == 0 || c.Verdict() != "access changes: review the IAM, security group and bucket policy changes" {
		t.Errorf("new stack: verdict %q, access %+v", c.Verdict(), c.Of(targets.RiskAccess))
	}

	if _, err := d.Up(ctx, "dev", &UpOptions{Config: exampleConfig()}); err != nil {
		t.Fatalf("up: %v\n%s", err, progress)
	}
	before := sim.Load(t)

	res, err = d.Preview(ctx, "dev", nil)
	if err != nil || res.Changes.Changed() != 0 || res.Changes.Verdict() != "no changes" {
		t.Fatalf("preview of the deployed stack: %+v %v", res, err)
	}

	res, err = d.Preview(ctx, "dev", &UpOptions{Config: ConfigInput{Values: map[string]string{"openclaw_image": "ghcr.io/openclaw/openclaw:2026.3.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	downtime := res.Changes.Of(targets.RiskDowntime)
	if len(downtime) == 0 || downtime[0].Type != "aws:ec2/instance:Instance" || downtime[0].Op != "replace" ||
		!strings.Contains(downtime[0].Reason, "config: openclaw_image") || downtime[0].DowntimeMinutes != ec2spot.ReadyAgainMinutes {
		t.Errorf("new image: %+v", res.Changes.Resources)
	}
	if len(res.Changes.Of(targets.RiskData)) != 0 || !strings.HasPrefix(res.Changes.Verdict(), "downtime:") {
		t.Errorf("new image: verdict %q, data %+v", res.Changes.Verdict(), res.Changes.Of(targets.RiskData))
	}

	// A snapshot of the stack's zone: ignored by the deployed stack, and said so.
	if err := simprovider.Change(sim.Cloud, func(c *simprovider.Cloud) error {
		c.Snapshots["snap-0123456789abcdef0"] = simprovider.Snapshot{Tags: map[string]string{"OpenClawAz": "me-central-1a"}, SizeGB: 20}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	warned := len(ev.of(EventDiagnostic))
	res, err = d.Preview(ctx, "dev", &UpOptions{Config: ConfigInput{Values: map[string]string{"data_volume_snapshot_id": "snap-0123456789abcdef0"}}})
	if err != nil {
		t.Fatalf("preview with a snapshot: %v\n%s", err, progress)
	}
	ignored := res.Changes.Ignored
	if len(ignored) != 1 || ignored[0].Key != "data_volume_snapshot_id" || ignored[0].To != "snap-0123456789abcdef0" ||
		!strings.Contains(ignored[0].Instead, "clawdeploy restore --stack dev --snapshot snap-0123456789abcdef0") || !strings.HasPrefix(res.Changes.Verdict(), "DATA AT RISK") {
		t.Errorf("ignored %+v, verdict %q", ignored, res.Changes.Verdict())
	}
	said := 0
	for _, e := range ev.of(EventDiagnostic)[warned:] {
		if e.Severity == "warning" && strings.Contains(e.Message, "config data_volume_snapshot_id changed") {
			said++
		}
	}
	if said != 1 {
		t.Errorf("%d warnings naming data_volume_snapshot_id, want 1", said)
	}
	// Another zone the program refuses, naming the volume's.
	if _, err := d.Preview(ctx, "dev", &UpOptions{Config: ConfigInput{Values: map[string]string{"availability_zone": "me-central-1b"}}}); err == nil ||
		!strings.Contains(progress.String(), "an EBS volume cannot move between zones") {
		t.Errorf("preview in another zone: %v", err)
	}

	volume := "urn:pulumi:dev::openclaw::clawdeploy:storage:DataVolume$aws:ebs/volume:Volume::data-volume"
	res, err = d.Preview(ctx, "dev", &UpOptions{Replace: []string{volume}})
	if err != nil {
		t.Fatal(err)
	}
	data := res.Changes.Of(targets.RiskData)
	if len(data) != 1 || data[0].URN != volume || res.Changes.Resources[0].URN != volume {
		t.Errorf("replacing the volume: %+v", res.Changes.Resources)
	}
	comment := res.Comment("openclaw", "dev", "0123456789abcdef0123")
	for _, want := range []string{prcomment.Marker("openclaw", "dev"), "### clawdeploy preview: `openclaw` / `dev` at `0123456789ab`",
		"**⚠️ DATA AT RISK", "#### Data at risk", "#### Downtime", "<details><summary>Full diff</summary>"} {
		if !strings.Contains(comment, want) {
			t.Errorf("the comment lacks %q:\n%s", want, comment)
		}
	}
	if strings.Index(comment, "#### Data at risk") > strings.Index(comment, "#### Downtime") {
		t.Errorf("data at risk is not the first block:\n%s", comment)
	}

	// The command line: --json's changes event, --comment's file, --expect-no-changes' exit code.
	if p, code := runSim(t, sim, "real", "preview", "--stack", "dev", "--expect-no-changes"); code != 0 {
		t.Errorf("preview --expect-no-changes of an unchanged stack: exit %d\n%s", code, p.stderr.String())
	}
	file := filepath.Join(t.TempDir(), "comment.md")
	p, code := runSim(t, sim, "real", "preview", "--stack", "dev", "--config", "openclaw_image=ghcr.io/openclaw/openclaw:2026.3.1",
		"--expect-no-changes", "--comment", file, "--commit", "abc123")
	if code != ExitFailed || !strings.Contains(p.stderr.String(), "--expect-no-changes: the preview of dev found changes: downtime") {
		t.Errorf("preview --expect-no-changes of a change: exit %d\n%s", code, p.stderr.String())
	}
	var changes struct {
		Type    string `json:"type"`
		Verdict string `json:"verdict"`
		preview.Changes
	}
	for _, line := range p.lines {
		if json.Unmarshal([]byte(line), &changes) == nil && changes.Type == "changes" {
			break
		}
	}
	if changes.Type != "changes" || changes.Counts["replace"] == 0 || len(changes.Of(targets.RiskDowntime)) == 0 || !strings.HasPrefix(changes.Verdict, "downtime") {
		t.Errorf("changes event %+v in %q", changes, p.lines)
	}
	if body, err := os.ReadFile(file); err != nil || !strings.HasPrefix(string(body), prcomment.Marker("openclaw", "dev")) ||
		!strings.Contains(string(body), "at `abc123`") {
		t.Errorf("comment file: %v\n%s", err, body)
	}

	after := sim.Load(t)
	if len(after.Ops) != len(before.Ops) {
		t.Errorf("the previews changed the cloud: %d ops before, %d after", len(before.Ops), len(after.Ops))
	}

	// An up warns of the ignored snapshot too.
	warned = len(ev.of(EventDiagnostic))
	if _, err := d.Up(ctx, "dev", &UpOptions{Config: ConfigInput{Values: map[string]string{"data_volume_snapshot_id": "snap-0123456789abcdef0"}}}); err != nil {
		t.Fatalf("up with a snapshot: %v", err)
	}
	said = 0
	for _, e := range ev.of(EventDiagnostic)[warned:] {
		if e.Severity == "warning" && strings.Contains(e.Message, "config data_volume_snapshot_id changed") && strings.Contains(e.Message, "clawdeploy restore --stack dev") {
			said++
		}
	}
	if said != 1 {
		t.Errorf("the up gave %d warnings naming data_volume_snapshot_id and the restore, want 1", said)
	}
}

// TestCommentIsCutToGitHubsLimit: the diff of 300 resources, too long for a comment, loses its
// end, never the summary, and the comment says where it was cut.
func TestCommentIsCutToGitHubsLimit(t *testing.T) {
	t.Parallel()
	res := &PreviewResult{Changes: &preview.Changes{Counts: map[string]int{"update": 300}}}
	var diff strings.Builder
	for i := range 300 {
		urn := fmt.Sprintf("urn:pulumi:dev::openclaw::clawdeploy:compute:InstanceRole$aws:iam/rolePolicy:RolePolicy::policy-%03d", i)
		res.Changes.Resources = append(res.Changes.Resources, preview.ResourceChange{URN: urn, Type: "aws:iam/rolePolicy:RolePolicy", Op: "update",
			Risk: targets.RiskAccess, Reason: "RolePolicy would be updated"})
		fmt.Fprintf(&diff, "    ~ aws:iam/rolePolicy:RolePolicy: (update)\n        [urn=%s]\n", urn)
		for j := range 30 {
			fmt.Fprintf(&diff, "      ~ policy: \"…é statement %d…\" => \"…statement %d…\"\n", j, j+1)
		}
	}
	res.Diff = diff.String()
	comment := res.Comment("openclaw", "dev", "")
	if n := utf8.RuneCountInString(comment); n > prcomment.MaxLength || n < prcomment.MaxLength-300 {
		t.Errorf("comment of %d characters, want just under %d", n, prcomment.MaxLength)
	}
	for i := range 300 {
		if !strings.Contains(comment, fmt.Sprintf("`policy-%03d` (`aws:iam/rolePolicy:RolePolicy`)", i)) {
			t.Fatalf("the summary lost policy-%03d", i)
		}
	}
	if !strings.Contains(comment, "the diff is cut here, at line ") || !strings.Contains(comment, " of 9600") ||
		!strings.HasSuffix(comment, "```\n</details>\n") {
		t.Errorf("cut comment ends:\n%s", comment[len(comment)-400:])
	}
	short := (&PreviewResult{Changes: &preview.Changes{Counts: map[string]int{}}, Diff: "  pulumi:pulumi:Stack openclaw-dev\n"}).Comment("openclaw", "dev", "")
	if strings.Contains(short, "cut here") || !strings.Contains(short, "**no changes**") {
		t.Errorf("short comment:\n%s", short)
	}
}

// TestPreviewFleet previews every deployment at once from the command line: a change for all
// (a new image) gives a changes event and a result line per stack, and one comment that counts
// the stacks replacing their instance, with a row and the collapsed details of each.
func TestPreviewFleet(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	sim := enginetest.NewSim(t, bins)
	sim.Registry.Push(t, "ghcr.io/openclaw/openclaw:2026.3.1") // the release the previews upgrade to
	d, _, progress := newSimDriver(t, sim, nil, nil)
	for _, stack := range []string{"alpha", "beta"} {
		if _, err := d.Up(ctx, stack, &UpOptions{Config: exampleConfig()}); err != nil {
			t.Fatalf("up %s: %v\n%s", stack, err, progress)
		}
	}
	file := filepath.Join(t.TempDir(), "fleet.md")
	p, code := runSim(t, sim, "real", "preview", "--all", "--concurrency", "2", "--comment", file,
		"--config", "openclaw_image=ghcr.io/openclaw/openclaw:2026.3.1")
	if code != 0 {
		t.Fatalf("preview --all: exit %d\n%s", code, p.stderr.String())
	}
	changes, results := map[string]bool{}, 0
	for _, line := range p.lines {
		var e struct {
			Type  string `json:"type"`
			Stack string `json:"stack"`
		}
		if json.Unmarshal([]byte(line), &e) == nil {
			switch e.Type {
			case "changes":
				changes[e.Stack] = true
			case EventResult:
				results++
			}
		}
	}
	if !changes["alpha"] || !changes["beta"] || results != 2 {
		t.Errorf("changes events %v, %d result lines; want both stacks", changes, results)
	}
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{prcomment.Marker("openclaw", "*"), "**2 of 2 stacks would replace their instance, 0 put data at risk**",
		"| `alpha` | downtime:", "| `beta` | downtime:", "<details><summary><code>alpha</code>: downtime"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the fleet comment lacks %q:\n%s", want, body)
		}
	}
	if p, code := runSim(t, sim, "real", "preview", "--all", "--stacks", "alpha"); code != ExitUsage {
		t.Errorf("--all with --stacks: exit %d\n%s", code, p.stderr.String())
	}
	if p, code := runSim(t, sim, "real", "preview", "--stacks", "alpha", "--expect-no-changes"); code != 0 {
		t.Errorf("--stacks alpha --expect-no-changes, unchanged: exit %d\n%s", code, p.stderr.String())
	}
}

// TestPreviewCost previews a new instance type with --cost, EC2 in moto and the Price List in
// its fake (pricingfake), both reached through AWS_ENDPOINT_URL*: the changes event and the
// comment give the monthly cost now and after, and moto's Spot price, dated 2006, is a line
// saying there is none in the last 7 days, not a failure.
func TestPreviewCost(t *testing.T) {
	t.Parallel()
	sim := enginetest.NewSim(t, bins)
	d, _, progress := newSimDriver(t, sim, nil, nil)
	if _, err := d.Up(t.Context(), "dev", &UpOptions{Config: exampleConfig()}); err != nil {
		t.Fatalf("up: %v\n%s", err, progress)
	}
	m := moto.Start(t)
	region := map[string]string{"regionCode": "me-central-1"}
	with := func(attrs map[string]string) map[string]string {
		out := map[string]string{}
		maps.Copy(out, region)
		maps.Copy(out, attrs)
		return out
	}
	ec2 := map[string]string{"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used"}
	prices := pricingfake.Start(t,
		pricingfake.Product{Service: "AmazonEC2", Unit: "Hrs", USD: "0.0184", Attributes: with(mapWith(ec2, "instanceType", "t4g.small"))},
		pricingfake.Product{Service: "AmazonEC2", Unit: "Hrs", USD: "0.0368", Attributes: with(mapWith(ec2, "instanceType", "t4g.medium"))},
		pricingfake.Product{Service: "AmazonEC2", Unit: "GB-Mo", USD: "0.0968", Attributes: with(map[string]string{"productFamily": "Storage", "volumeApiName": "gp3"})},
		pricingfake.Product{Service: "AmazonEC2", Unit: "GB-Mo", USD: "0.0605", Attributes: with(map[string]string{"productFamily": "Storage Snapshot", "usagetype": "MEC1-EBS:SnapshotUsage"})},
		pricingfake.Product{Service: "AmazonS3", Unit: "GB-Mo", USD: "0.0275", Attributes: with(map[string]string{"storageClass": "General Purpose", "volumeType": "Standard"})},
	)
	var env []string
	for _, kv := range m.Env() {
		if strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	env = append(env, "AWS_ENDPOINT_URL_PRICING="+prices.URL)
	file := filepath.Join(t.TempDir(), "comment.md")
	p := startSimWith(t, sim, "real", nil, env, "preview", "--stack", "dev", "--cost", "--comment", file,
		"--config", "instance_type=t4g.medium", "--config", "instance_types=t4g.medium")
	if code := p.wait(3 * time.Minute); code != 0 {
		t.Fatalf("preview --cost: exit %d\n%s", code, p.stderr.String())
	}
	var event struct {
		Type string          `json:"type"`
		Cost *CostComparison `json:"cost"`
	}
	for _, line := range p.lines {
		if json.Unmarshal([]byte(line), &event) == nil && event.Type == "changes" {
			break
		}
	}
	c := event.Cost
	if c == nil || c.Now == nil || !near(c.Change.OnDemandMonthly, 0.0368*730) || !near(c.Now.OnDemandMonthly, 0.0184*730) ||
		len(c.Change.Problems) != 1 || !strings.Contains(c.Change.Problems[0], "no Spot price of t4g.medium in me-central-1a in the last 7 days") {
		t.Fatalf("cost %+v in %q", c, p.lines)
	}
	if !near(c.Delta, 0) { // without a Spot price, the instance is not in either total
		t.Errorf("delta %.2f", c.Delta)
	}
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#### Cost (USD per month)", "| data volume (gp3) | 1.94 | 1.94 | +0.00 |",
		"- On demand instead of Spot, for comparison: 26.86 a month", "- not priced: no Spot price of t4g.medium"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the comment lacks %q:\n%s", want, body)
		}
	}
	if strings.Index(string(body), "#### Cost") > strings.Index(string(body), "<details>") {
		t.Errorf("the cost block is not before the diff")
	}
}

func mapWith(m map[string]string, k, v string) map[string]string {
	out := maps.Clone(m)
	out[k] = v
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 0.005 }
