package automation_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/internal/simprogram"
	"github.com/clawdeploy/clawdeploy/journal"
)

// TestResumeAllMarksStuckInstalling puts deployments in INSTALLING at chosen times with a clock
// of the test's own: one silent for 46 minutes whose owner is gone becomes ERROR, without an
// engine run; one as silent but held by a live process is left alone; one whose last news is 44
// minutes old and whose owner is gone is resumed, not marked (its stack does not exist here, so
// that resume stops at once with "no deployment").
func TestResumeAllMarksStuckInstalling(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	j, err := journal.OpenSQLite(ctx, filepath.Join(dir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = j.Close() }()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	host, _ := os.Hostname()
	gone := Owner{Host: host, PID: 1 << 22, Start: 1, Nonce: "gone"}.String() // beyond pid_max: never alive
	me, err := NewOwner()
	if err != nil {
		t.Fatal(err)
	}
	installing := func(stack, owner string, news time.Time, leaseUntil time.Time) {
		t.Helper()
		if _, err := j.Ensure(ctx, stack, TargetEC2Spot, news); err != nil {
			t.Fatal(err)
		}
		if _, err := j.Acquire(ctx, stack, owner, news, leaseUntil, nil); err != nil {
			t.Fatal(err)
		}
		up := OpUp // what an up records as it starts
		for _, s := range []journal.Status{journal.Provisioning, journal.Installing} {
			st := s
			if _, err := j.Update(ctx, stack, owner, news, journal.Change{Status: &st, Operation: &up}); err != nil {
				t.Fatal(err)
			}
		}
	}
	installing("stuck", gone, now.Add(-46*time.Minute), now.Add(-45*time.Minute))
	installing("held", me.String(), now.Add(-46*time.Minute), now.Add(time.Minute))
	installing("recent", gone, now.Add(-44*time.Minute), now.Add(-43*time.Minute))

	sim := enginetest.NewSim(t, bins)
	ev := &events{}
	d, err := New(ctx, &Options{Program: simprogram.Six, StateDir: sim.StateDir, PulumiRoot: sim.PulumiRoot,
		Env: sim.Env, Journal: j, Clock: func() time.Time { return now }, Events: ev})
	if err != nil {
		t.Fatal(err)
	}
	results, err := d.ResumeAll(ctx, 4, nil)
	if err != nil || len(results) != 2 {
		t.Fatalf("ResumeAll = %+v, %v; want stuck and recent", results, err)
	}
	for _, r := range results {
		var notFound *NotFoundError
		if r.Stack == "stuck" && r.Err != nil || r.Stack == "recent" && !errors.As(r.Err, &notFound) {
			t.Errorf("%s: %v", r.Stack, r.Err)
		}
	}
	rec, _ := j.Get(ctx, "stuck")
	if rec.Status != journal.Error || !strings.Contains(rec.LastError, "did not complete within 45m0s") || rec.LeaseOwner != "" {
		t.Errorf("stuck: %+v", rec)
	}
	if rec, _ := j.Get(ctx, "held"); rec.Status != journal.Installing || rec.LeaseOwner != me.String() {
		t.Errorf("held was touched: %+v", rec)
	}
	if rec, _ := j.Get(ctx, "recent"); rec.Status != journal.Installing {
		t.Errorf("recent was marked: %+v", rec)
	}
	if n := len(ev.of(EventResource)); n != 0 {
		t.Errorf("%d resource events: marking a deployment stuck must not run the engine", n)
	}
}
