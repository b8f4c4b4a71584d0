package automation_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/preview"
	"github.com/clawdeploy/clawdeploy/targets"
)

var (
	randomID   = regexp.MustCompile(`\b(i|vol|sg|subnet|vpc|igw|rtb|rtbassoc|snap|policy|eipalloc|lt|sgr|arn:aws:[a-z0-9:/_-]*)-?[0-9a-f]{8,32}\b`)
	simID      = regexp.MustCompile(`\b[a-z0-9-]+-[0-9a-f]{7,17}\b`)
	tempPath   = regexp.MustCompile(`/tmp/[^\s"']+`)
	pluginWarn = regexp.MustCompile(`(?m)^.*warning: using pulumi-resource-[a-z]+ from \$PATH.*\n`)
	timing     = regexp.MustCompile(`(?m)^Duration: .*\n`)
	gzipped    = regexp.MustCompile(`"H4sI[A-Za-z0-9+/=]*(\.\.\.)?"`)
)

// resourceLine starts a resource's block in the engine's diff.
var resourceLine = regexp.MustCompile(`^ {2,}(?:(?:(?:\+-|-\+|\+\+|--|[+~-]) )?[A-Za-z0-9:/._-]+: \(|--outputs:--$)`)

// sortDiff puts the resource blocks of the comment's diff in order: the engine's steps run in
// parallel, so their order differs from run to run.
func sortDiff(s string) string {
	start, end := strings.Index(s, "```diff\n"), strings.LastIndex(s, "\n```")
	if start < 0 || end < start {
		return s
	}
	lines := strings.Split(s[start+len("```diff\n"):end], "\n")
	var head, tail []string
	var blocks []string
	i := 0
	for ; i < len(lines) && !resourceLine.MatchString(lines[i]); i++ {
		head = append(head, lines[i])
	}
	for i < len(lines) {
		if strings.HasPrefix(lines[i], "Resources:") || strings.HasPrefix(lines[i], "… the diff is cut") {
			tail = lines[i:]
			break
		}
		block := []string{lines[i]}
		for i++; i < len(lines) && !resourceLine.MatchString(lines[i]) && !strings.HasPrefix(lines[i], "Resources:"); i++ {
			block = append(block, lines[i])
		}
		blocks = append(blocks, strings.Join(block, "\n"))
	}
	slices.Sort(blocks)
	parts := append(append(head, blocks...), tail...)
	return s[:start+len("```diff\n")] + strings.Join(parts, "\n") + s[end:]
}

func normalize(s string) string {
	s = pluginWarn.ReplaceAllString(s, "")
	s = timing.ReplaceAllString(s, "")
	s = tempPath.ReplaceAllString(s, "/tmp/…")
	s = gzipped.ReplaceAllString(s, `"<gzipped user-data>"`)
	s = randomID.ReplaceAllString(s, "<id>")
	return sortDiff(simID.ReplaceAllString(s, "<id>"))
}

// golden compares a comment with testdata/<name>.golden.md, normalized; CLAWDEPLOY_ACCEPT=true
// writes it.
func golden(t *testing.T, name, comment string) {
	t.Helper()
	got := normalize(comment)
	path := filepath.Join("testdata", name+".golden.md")
	if os.Getenv("CLAWDEPLOY_ACCEPT") == "true" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil || got != string(want) {
		t.Errorf("the %s comment differs from %s (regenerate with CLAWDEPLOY_ACCEPT=true): %v\n%s", name, path, err, got)
	}
}

// TestCommentScenarios renders the comment of each kind of change through the real engine and
// the simulated provider, each against a golden file: a first creation, no change, an in-place
// update, a new instance type (downtime, naming the key), the data volume replaced (data at risk
// first), a deletion (the stack's network, given up for an existing subnet), and a fleet of three
// stacks where one replaces its instance.
func TestCommentScenarios(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	sim := enginetest.NewSim(t, bins)
	d, _, progress := newSimDriver(t, sim, nil, nil)
	previewOf := func(name, stack string, opts *UpOptions) *PreviewResult {
		t.Helper()
		res, err := d.Preview(ctx, stack, opts)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, progress)
		}
		golden(t, name, res.Comment("openclaw", stack, "4f3a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39"))
		return res
	}
	if res := previewOf("comment-create", "dev", &UpOptions{Config: exampleConfig()}); res.Changes.Counts["create"] == 0 {
		t.Errorf("first creation: %v", res.Changes.Counts)
	}
	// Three stacks; us runs another instance type, which the fleet's preview sets back.
	for _, stack := range []string{"dev", "eu", "us"} {
		cfg := exampleConfig()
		if stack == "us" {
			cfg.Values["instance_type"], cfg.Values["instance_types"] = "t4g.medium", "t4g.medium"
		}
		if _, err := d.Up(ctx, stack, &UpOptions{Config: cfg}); err != nil {
			t.Fatalf("up %s: %v\n%s", stack, err, progress)
		}
	}
	if res := previewOf("comment-nochange", "dev", nil); res.Changes.Changed() != 0 {
		t.Errorf("no change: %v", res.Changes.Counts)
	}
	if res := previewOf("comment-update", "dev", &UpOptions{Config: ConfigInput{Values: map[string]string{"log_retention_days": "90"}}}); res.Changes.Counts["update"] == 0 ||
		res.Changes.Counts["replace"] != 0 {
		t.Errorf("in-place update: %v", res.Changes.Counts)
	}
	res := previewOf("comment-instance-type", "dev", &UpOptions{Config: ConfigInput{Values: map[string]string{"instance_type": "t4g.medium", "instance_types": "t4g.medium"}}})
	if down := res.Changes.Of(targets.RiskDowntime); len(down) == 0 || !strings.Contains(down[0].Reason, "instanceType (config: instance_type") {
		t.Errorf("new instance type: %+v", res.Changes.Resources)
	}
	volume := "urn:pulumi:dev::openclaw::clawdeploy:storage:DataVolume$aws:ebs/volume:Volume::data-volume"
	res = previewOf("comment-replace-volume", "dev", &UpOptions{Replace: []string{volume}})
	if data := res.Changes.Of(targets.RiskData); len(data) == 0 || data[0].URN != volume {
		t.Errorf("volume replaced: %+v", res.Changes.Resources)
	}
	res = previewOf("comment-delete", "dev", &UpOptions{Config: ConfigInput{Values: map[string]string{"subnet_id": "subnet-0123456789abcdef0"}}})
	if res.Changes.Counts["delete"] == 0 {
		t.Errorf("deletion: %v", res.Changes.Counts)
	}

	previews, err := d.PreviewStacks(ctx, []string{"dev", "eu", "us"},
		&UpOptions{Config: ConfigInput{Values: map[string]string{"instance_type": "t4g.small", "instance_types": "t4g.small"}}}, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range previews {
		if p.Err != nil {
			t.Fatalf("fleet: %s: %v", p.Stack, p.Err)
		}
	}
	fleet := preview.FleetComment("openclaw", "4f3a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39", previews)
	if !strings.Contains(fleet, "**1 of 3 stacks would replace their instance, 0 put data at risk**") {
		t.Errorf("fleet:\n%s", fleet)
	}
	golden(t, "comment-fleet", fleet)
}
