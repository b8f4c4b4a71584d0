package snapshots_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/clawdeploy/clawdeploy/internal/moto"
	"github.com/clawdeploy/clawdeploy/snapshots"
)

// seeded is a moto EC2 with one stack's data volume and snapshots of every origin, and another
// stack's.
type seeded struct {
	client *ec2.Client
	volume string
	zone   string
	// ids by name: dlm, destroy, final, checkpoint, manual, untagged zone, wrong zone, other
	// stack.
	ids map[string]string
}

func seed(t *testing.T, m *moto.Server, stack string) *seeded {
	t.Helper()
	s := &seeded{client: ec2.NewFromConfig(m.Config()), zone: moto.Region + "a", ids: map[string]string{}}
	s.volume = m.Volume(t, s.zone)
	base := map[string]string{"OpenClawData": "true", "OpenClawStack": stack, "OpenClawAz": s.zone}
	for _, snap := range []struct {
		name string
		tags map[string]string
	}{
		{"dlm", map[string]string{"SnapshotCreator": "dlm"}},
		{"destroy", map[string]string{"clawdeploy:urn": "urn:pulumi:" + stack + "::clawdeploy::x$aws:ebs/volume:Volume::data-volume"}},
		{"final", map[string]string{"CreatedBy": "manual-final"}},
		{"checkpoint", map[string]string{"OpenClawCheckpoint": "pre-upgrade"}},
		{"manual", nil},
		{"untagged zone", map[string]string{"OpenClawAz": ""}},
		{"wrong zone", map[string]string{"OpenClawAz": moto.Region + "b"}},
		{"other stack", map[string]string{"OpenClawStack": "other"}},
	} {
		tags := maps.Clone(base)
		maps.Copy(tags, snap.tags)
		var pairs []string
		for k, v := range tags {
			if v != "" {
				pairs = append(pairs, k, v)
			}
		}
		s.ids[snap.name] = m.Snapshot(t, s.volume, pairs...)
	}
	return s
}

func TestSnapshots(t *testing.T) {
	t.Parallel()
	m := moto.Start(t)

	t.Run("list", func(t *testing.T) {
		t.Parallel()
		s := seed(t, m, "listed")
		got, err := snapshots.List(t.Context(), s.client, "listed", s.zone)
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]snapshots.Snapshot{}
		for _, snap := range got {
			byID[snap.ID] = snap
		}
		if len(got) != 7 {
			t.Fatalf("%d snapshots, want the stack's 7 (not the other stack's): %+v", len(got), got)
		}
		if _, ok := byID[s.ids["other stack"]]; ok {
			t.Errorf("listed another stack's snapshot")
		}
		for name, origin := range map[string]string{"dlm": "dlm", "destroy": "final-on-destroy", "final": "manual-final",
			"checkpoint": "pre-upgrade", "manual": "manual"} {
			snap := byID[s.ids[name]]
			if snap.Origin != origin || snap.Problem != "" || snap.Zone != s.zone || snap.State != "completed" || snap.SizeGiB != 20 || snap.VolumeID != s.volume {
				t.Errorf("%s: %+v, want origin %s and no problem", name, snap, origin)
			}
		}
		if p := byID[s.ids["untagged zone"]].Problem; !strings.Contains(p, "no OpenClawAz tag") {
			t.Errorf("untagged zone: problem %q", p)
		}
		if p := byID[s.ids["wrong zone"]].Problem; p != "OpenClawAz is "+moto.Region+"b, the stack's volume is in "+s.zone {
			t.Errorf("wrong zone: problem %q", p)
		}
		if !slices.IsSortedFunc(got, func(a, b snapshots.Snapshot) int { return b.StartTime.Compare(a.StartTime) }) {
			t.Errorf("not newest first")
		}
	})

	t.Run("final", func(t *testing.T) {
		t.Parallel()
		s := seed(t, m, "finalled")
		var polls int
		snap, err := snapshots.Final(t.Context(), s.client, "finalled", s.volume, s.zone, 10*time.Millisecond, func(snapshots.Snapshot) { polls++ })
		if err != nil {
			t.Fatal(err)
		}
		if snap.Origin != "manual-final" || snap.State != "completed" || snap.Zone != s.zone || snap.Stack != "finalled" || polls == 0 {
			t.Errorf("final snapshot %+v after %d polls", snap, polls)
		}
		listed, _ := snapshots.List(t.Context(), s.client, "finalled", s.zone)
		if !slices.ContainsFunc(listed, func(l snapshots.Snapshot) bool { return l.ID == snap.ID && l.Origin == "manual-final" }) {
			t.Errorf("the final snapshot is not listed as manual-final: %+v", listed)
		}
		if _, err := snapshots.Final(t.Context(), s.client, "finalled", "vol-0123456789abcdef0", s.zone, time.Millisecond, nil); err == nil ||
			!strings.Contains(err.Error(), "vol-0123456789abcdef0") {
			t.Errorf("a volume that does not exist: %v", err)
		}
	})

	t.Run("final on destroy", func(t *testing.T) {
		t.Parallel()
		s := seed(t, m, "destroyed")
		marked, err := snapshots.MarkFinal(t.Context(), s.client, "destroyed", s.volume, time.Now())
		if err != nil || len(marked) != 1 || marked[0] != s.ids["destroy"] {
			t.Fatalf("MarkFinal = %v, %v; want only the snapshot carrying the volume's tags, %s", marked, err, s.ids["destroy"])
		}
		listed, _ := snapshots.List(t.Context(), s.client, "destroyed", s.zone)
		for _, l := range listed {
			if l.ID == s.ids["destroy"] && l.Origin != "final-on-destroy" {
				t.Errorf("the marked snapshot reads as %s", l.Origin)
			}
		}
		out, err := s.client.DescribeSnapshots(t.Context(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{s.ids["destroy"], s.ids["dlm"]}})
		if err != nil {
			t.Fatal(err)
		}
		for _, snap := range out.Snapshots {
			tagged := slices.ContainsFunc(snap.Tags, func(tag ec2types.Tag) bool {
				return aws.ToString(tag.Key) == "CreatedBy" && aws.ToString(tag.Value) == "final-on-destroy"
			})
			if tagged != (aws.ToString(snap.SnapshotId) == s.ids["destroy"]) {
				t.Errorf("%s tagged CreatedBy=final-on-destroy: %v", aws.ToString(snap.SnapshotId), tagged)
			}
		}
		if again, err := snapshots.MarkFinal(t.Context(), s.client, "destroyed", s.volume, time.Now().Add(2*time.Hour)); err != nil || len(again) != 0 {
			t.Errorf("a snapshot older than the destroy was marked: %v, %v", again, err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		t.Parallel()
		s := seed(t, m, "deleted")
		count := func() int {
			all, err := snapshots.List(t.Context(), s.client, "deleted", "")
			if err != nil {
				t.Fatal(err)
			}
			return len(all)
		}
		before := count()
		now := time.Now()
		for _, bad := range []struct {
			ids   []string
			force bool
			want  string
		}{
			{[]string{s.ids["manual"], "snap-0123456789abcdef0"}, false, "snap-0123456789abcdef0 does not exist"},
			{[]string{s.ids["other stack"]}, true, s.ids["other stack"] + " belongs to stack other, not deleted"},
			{[]string{s.ids["dlm"], s.ids["final"]}, false, s.ids["dlm"] + " is DLM's"},
		} {
			_, err := snapshots.Select(t.Context(), s.client, "deleted", bad.ids, 0, bad.force, now)
			var refused *snapshots.RefusedError
			if !errors.As(err, &refused) || !strings.Contains(err.Error(), bad.want) || !strings.HasPrefix(err.Error(), "nothing deleted: ") {
				t.Errorf("Select(%v, force %v) = %v, want a refusal: %s", bad.ids, bad.force, err, bad.want)
			}
		}
		if n := count(); n != before {
			t.Fatalf("%d snapshots after refusals, want %d", n, before)
		}
		chosen, err := snapshots.Select(t.Context(), s.client, "deleted", nil, 0, false, now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(chosen) != before-1 || slices.ContainsFunc(chosen, func(s snapshots.Snapshot) bool { return s.Origin == "dlm" }) {
			t.Errorf("--older-than chose %d of %d, want all but DLM's: %+v", len(chosen), before, chosen)
		}
		if none, err := snapshots.Select(t.Context(), s.client, "deleted", nil, 30*24*time.Hour, false, now); err != nil || len(none) != 0 {
			t.Errorf("--older-than 30d chose %d (%v), want none of today's", len(none), err)
		}
		deleted, err := snapshots.Delete(t.Context(), s.client, chosen)
		if err != nil || len(deleted) != len(chosen) {
			t.Fatalf("deleted %v: %v", deleted, err)
		}
		left, _ := snapshots.List(t.Context(), s.client, "deleted", "")
		if len(left) != 1 || left[0].Origin != "dlm" {
			t.Errorf("left %+v, want DLM's one", left)
		}
		forced, err := snapshots.Select(t.Context(), s.client, "deleted", []string{s.ids["dlm"]}, 0, true, now)
		if err != nil || len(forced) != 1 {
			t.Errorf("--force on DLM's snapshot: %v, %v", forced, err)
		}
	})
}
