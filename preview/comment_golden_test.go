package preview_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/clawdeploy/clawdeploy/preview"
	"github.com/clawdeploy/clawdeploy/targets"
	"github.com/clawdeploy/clawdeploy/targets/ec2spot"
)

// examplePreview is a pull request's preview as a reviewer sees it: a new image and a snapshot id
// the stack ignores.
func examplePreview() *Result {
	return &Result{
		Changes: &Changes{
			Counts: map[string]int{"replace": 2, "update": 1, "same": 37},
			Resources: []ResourceChange{
				{URN: "urn:pulumi:dev::openclaw::clawdeploy:compute:SpotInstance$aws:ec2/instance:Instance::spot-instance",
					Type: "aws:ec2/instance:Instance", Op: "replace", ReplaceKeys: []string{"userData"}, Risk: targets.RiskDowntime, DowntimeMinutes: ec2spot.ReadyAgainMinutes,
					Reason: "the instance would be replaced, forced by userData (config: openclaw_image, backup_interval_minutes or another setting the instance's user-data carries)"},
				{URN: "urn:pulumi:dev::openclaw::clawdeploy:compute:SpotInstance$aws:ec2/volumeAttachment:VolumeAttachment::data-attachment",
					Type: "aws:ec2/volumeAttachment:VolumeAttachment", Op: "replace", ReplaceKeys: []string{"instanceId"}, Risk: targets.RiskDowntime, DowntimeMinutes: ec2spot.ReadyAgainMinutes,
					Reason: "the data volume would be detached and attached again, forced by instanceId"},
				{URN: "urn:pulumi:dev::openclaw::clawdeploy:compute:InstanceRole$aws:iam/rolePolicy:RolePolicy::instance-role-policy",
					Type: "aws:iam/rolePolicy:RolePolicy", Op: "update", Risk: targets.RiskAccess, Reason: "RolePolicy would be updated"},
			},
			Ignored: []targets.IgnoredChange{{Key: "data_volume_snapshot_id", From: "", To: "snap-0123456789abcdef0",
				Reason:  "the existing data volume is kept: a snapshot id only applies to a new volume",
				Instead: "restore explicitly: `clawdeploy restore --stack dev --snapshot snap-0123456789abcdef0` replaces the volume and the instance together"}},
		},
		Diff: "  pulumi:pulumi:Stack: (same)\n    +-aws:ec2/instance:Instance: (replace)\n      ~ userData: \"H4sIA…\" => \"H4sIA…\"\n",
	}
}

// TestCommentGolden renders the example comment docs/ci.md shows; regenerate with
// CLAWDEPLOY_ACCEPT=true, and docs/ci.md's copy must match.
func TestCommentGolden(t *testing.T) {
	t.Parallel()
	got := examplePreview().Comment("openclaw", "dev", "4f3a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39")
	golden := filepath.Join("testdata", "comment.golden.md")
	if os.Getenv("CLAWDEPLOY_ACCEPT") == "true" {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil || got != string(want) {
		t.Fatalf("the comment differs from %s (regenerate with CLAWDEPLOY_ACCEPT=true): %v\n%s", golden, err, got)
	}
	page, err := os.ReadFile(filepath.Join("..", "docs", "ci.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "````markdown\n"+got+"````\n") {
		t.Errorf("docs/ci.md's example comment is not %s: paste it inside a ````markdown block", golden)
	}
}
