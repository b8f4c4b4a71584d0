package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/clawdeploy/clawdeploy/internal/dlmfake"
	"github.com/clawdeploy/clawdeploy/internal/moto"
)

// TestSnapshotsCommands runs `snapshots list` and `snapshots delete` against moto on the snapshots
// of a stack that no longer exists here (--region), as an operator cleaning up after a destroy
// would: the table and the events, the refusals (exit 2, nothing deleted), the question and its
// answers. Taking a final snapshot is tested in package snapshots, against moto too.
func TestSnapshotsCommands(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)
	client := ec2.NewFromConfig(m.Config())
	volume := m.Volume(t, moto.Region+"a")
	snap := func(stack string, extra ...string) string {
		t.Helper()
		return m.Snapshot(t, volume, append([]string{"OpenClawData", "true", "OpenClawStack", stack, "OpenClawAz", moto.Region + "a"}, extra...)...)
	}
	final, manual, dlm, other := snap("gone", "CreatedBy", "manual-final"), snap("gone"), snap("gone", "SnapshotCreator", "dlm"), snap("other")
	env := append(backendEnv(t, filepath.Join(t.TempDir(), "state")), m.Env()...)
	clawdeploy := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		return runWithInput(t, env, stdin, args...)
	}
	listed := func() []string {
		t.Helper()
		out, stderr, code := clawdeploy("", "snapshots", "list", "--stack", "gone", "--region", moto.Region, "--json")
		if code != 0 {
			t.Fatalf("list --json: exit %d\n%s", code, stderr)
		}
		var ids []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var e struct{ Type, ID, Origin string }
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("not NDJSON: %q", line)
			}
			if e.Type == "snapshot" {
				ids = append(ids, e.ID+" "+e.Origin)
			}
		}
		return ids
	}

	out, stderr, code := clawdeploy("", "snapshots", "list", "--stack", "gone", "--region", moto.Region)
	t.Logf("clawdeploy snapshots list --stack gone --region %s (docs/operator.md shows this):\n%s", moto.Region, out)
	if code != 0 || !strings.HasPrefix(out, "TIME ") || strings.Count(out, "\n") != 4 || !strings.Contains(out, final) || strings.Contains(out, other) {
		t.Errorf("list: exit %d, want a table of gone's three snapshots:\n%s%s", code, out, stderr)
	}
	if ids := listed(); len(ids) != 3 || !strings.Contains(strings.Join(ids, ","), dlm+" dlm") {
		t.Errorf("list --json: %v", ids)
	}

	// The stack's DLM policy, from a fake of DLM's API (moto has none).
	lifecycle := dlmfake.Start(t, dlmfake.Policy{ID: "policy-0a1b2c3d4e5f60718", Description: "DLM snapshots of OpenClaw stack gone", State: "ENABLED",
		TargetTags: map[string]string{"OpenClawData": "true", "OpenClawStack": "gone"}, IntervalHours: 24, Times: []string{"03:00"}, RetainCount: 7,
		CopyTags: true, Created: time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)})
	env = append(env, "AWS_ENDPOINT_URL_DLM="+lifecycle.URL)
	out, stderr, code = clawdeploy("", "snapshots", "policy", "--stack", "gone", "--region", moto.Region)
	t.Logf("clawdeploy snapshots policy --stack gone --region %s (docs/operator.md shows this):\n%s", moto.Region, out)
	for _, want := range []string{"policy policy-0a1b2c3d4e5f60718: ENABLED\n", "schedule: every 24 hours from 03:00 UTC, keeps the newest 7, copies the volume's tags: true\n",
		"targets: volumes tagged OpenClawData=true, OpenClawStack=gone\n", "newest snapshots:\n", dlm} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("snapshots policy: exit %d, want %q in:\n%s%s", code, want, out, stderr)
		}
	}
	if strings.Contains(out, manual) {
		t.Errorf("snapshots policy lists a snapshot DLM did not make:\n%s", out)
	}
	out, _, code = clawdeploy("", "snapshots", "policy", "--stack", "gone", "--region", moto.Region, "--json")
	if code != 0 || !strings.Contains(out, `"type":"snapshotPolicy"`) || !strings.Contains(out, `"retainCount":7`) {
		t.Errorf("snapshots policy --json: exit %d\n%s", code, out)
	}
	if _, stderr, code := clawdeploy("", "snapshots", "policy", "--stack", "other", "--region", moto.Region); code != 1 ||
		!strings.Contains(stderr, "no DLM policy targets OpenClawStack=other") {
		t.Errorf("a stack without a policy: exit %d\n%s", code, stderr)
	}

	for _, bad := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"snapshots", "list", "--stack", "gone"}, "no deployment named gone here: pass --region"},
		{"", []string{"snapshots", "final", "--stack", "gone", "--region", moto.Region}, "a final snapshot needs its data volume"},
		{"", []string{"snapshots", "delete", "--stack", "gone", "--region", moto.Region, "--yes"}, "name the snapshots to delete or give --older-than"},
		{"", []string{"snapshots", "delete", "--stack", "gone", "--region", moto.Region, "--older-than", "30x", "--yes"}, `--older-than "30x"`},
		{"", []string{"snapshots", "delete", "--stack", "gone", "--region", moto.Region, "--json", manual}, "--json cannot ask: pass --yes"},
		{"", []string{"snapshots", "delete", "--stack", "gone", "--region", moto.Region, "--yes", manual, other}, other + " belongs to stack other, not gone"},
		{"", []string{"snapshots", "delete", "--stack", "gone", "--region", moto.Region, "--yes", dlm}, dlm + " is DLM's"},
		{"", []string{"snapshots", "delete", "--stack", "gone", "--region", moto.Region, "--yes", "snap-0123456789abcdef0"}, "snap-0123456789abcdef0 does not exist"},
		{"n\n", []string{"snapshots", "delete", "--stack", "gone", "--region", moto.Region, manual}, "not confirmed: nothing deleted"},
		{"", []string{"snapshots", "delete", "--stack", "gone", "--region", moto.Region, manual}, "not confirmed: nothing deleted"},
	} {
		_, stderr, code := clawdeploy(bad.stdin, bad.args...)
		if code != 2 || !strings.Contains(stderr, bad.want) {
			t.Errorf("%v: exit %d, want 2 and %q:\n%s", bad.args, code, bad.want, stderr)
		}
	}
	if ids := listed(); len(ids) != 3 {
		t.Fatalf("refusals deleted something: %v", ids)
	}

	out, stderr, code = clawdeploy("y\n", "snapshots", "delete", "--stack", "gone", "--region", moto.Region, manual)
	if code != 0 || !strings.Contains(out, manual) || !strings.Contains(stderr, "delete these 1 snapshots of gone? [y/N]") || !strings.Contains(stderr, "deleted "+manual) {
		t.Errorf("delete, answered y: exit %d\n%s%s", code, out, stderr)
	}
	if _, stderr, code := clawdeploy("", "snapshots", "delete", "--stack", "gone", "--region", moto.Region, "--yes", "--force", dlm, final); code != 0 {
		t.Errorf("delete --force --yes: exit %d\n%s", code, stderr)
	}
	if ids := listed(); len(ids) != 0 {
		t.Errorf("left %v, want none", ids)
	}
	if _, err := client.DescribeSnapshots(t.Context(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{other}}); err != nil {
		t.Errorf("the other stack's snapshot: %v", err)
	}
}
