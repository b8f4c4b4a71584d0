package runbook

import (
	"strings"
	"testing"

	"github.com/clawdeploy/clawdeploy/snapshots"
)

// TestUnrestorable: what restore refuses, on snapshots as EC2 describes them, including the one
// moto cannot hold (its snapshots complete at once): a snapshot still pending.
func TestUnrestorable(t *testing.T) {
	good := snapshots.Snapshot{ID: "snap-0a", Stack: "dev", Zone: "me-central-1a", State: "completed"}
	for _, tt := range []struct {
		name string
		edit func(*snapshots.Snapshot)
		zone string
		want string
	}{
		{"restorable", func(*snapshots.Snapshot) {}, "me-central-1a", ""},
		{"restorable into a new stack", func(*snapshots.Snapshot) {}, "", ""},
		{"pending", func(s *snapshots.Snapshot) { s.State, s.Progress = "pending", "45%" }, "me-central-1a", "snap-0a is pending 45%: restore it once EC2 says completed"},
		{"another stack's", func(s *snapshots.Snapshot) { s.Stack = "prod" }, "me-central-1a", "snap-0a belongs to stack prod, not dev"},
		{"no stack's", func(s *snapshots.Snapshot) { s.Stack = "" }, "me-central-1a", "snap-0a belongs to no stack, not dev"},
		{"no zone tag", func(s *snapshots.Snapshot) { s.Zone = "" }, "", "no OpenClawAz tag"},
		{"another zone", func(s *snapshots.Snapshot) { s.Zone = "me-central-1b" }, "me-central-1a", "OpenClawAz is me-central-1b, the stack's volume is in me-central-1a"},
	} {
		s := good
		tt.edit(&s)
		if got := unrestorable(s, "dev", tt.zone); (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
