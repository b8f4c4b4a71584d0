package automation_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/fleet"
	"github.com/clawdeploy/clawdeploy/internal/enginetest"
	"github.com/clawdeploy/clawdeploy/internal/simprogram"
	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/targets/ec2spot"
)

// stuckNow is the clock of stuckWorld.
var stuckNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// stuckWorld is a journal with three deployments INSTALLING, by a clock of the test's own:
// "stuck" silent for 46 minutes, its owner gone; "held" as silent, held by a live process (me,
// this test process); "recent" silent for 44 minutes, its owner gone. The driver runs six.
func stuckWorld(t *testing.T) (*journal.SQL, *Driver, *events, Owner) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	j, err := journal.OpenSQLite(ctx, filepath.Join(dir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	now := stuckNow
	host, _ := os.Hostname()
	gone := Owner{Host: host, PID: 1 << 22, Start: 1, Nonce: "gone"}.String() // beyond pid_max: never alive
	me, err := NewOwner()
	if err != nil {
		t.Fatal(err)
	}
	installing := func(stack, owner string, news time.Time, leaseUntil time.Time) {
		t.Helper()
		if _, err := j.Ensure(ctx, stack, ec2spot.Name, news); err != nil {
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
	return j, d, ev, me
}

// TestResumeAllMarksStuckInstalling puts deployments in INSTALLING at chosen times with a clock
// of the test's own: one silent for 46 minutes whose owner is gone becomes ERROR, without an
// engine run; one as silent but held by a live process is left alone; one whose last news is 44
// minutes old and whose owner is gone is resumed, not marked (its stack does not exist here, so
// that resume stops at once with "no deployment"); the held one is named with its holder.
func TestResumeAllMarksStuckInstalling(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	j, d, ev, me := stuckWorld(t)
	results, err := d.ResumeAll(ctx, 4, nil)
	if err != nil || len(results) != 3 {
		t.Fatalf("ResumeAll = %+v, %v; want stuck, held and recent", results, err)
	}
	for _, r := range results {
		var (
			notFound *NotFoundError
			held     *journal.LeaseHeldError
		)
		switch {
		case r.Stack == "stuck" && r.Err != nil, r.Stack == "recent" && !errors.As(r.Err, &notFound):
			t.Errorf("%s: %v", r.Stack, r.Err)
		case r.Stack == "held" && (!errors.As(r.Err, &held) || held.Owner != me.String() || !strings.Contains(r.Err.Error(), "until 2026-11-22T12:01:00Z")):
			// Held by a live process: named, with its holder and until when, never passed over in silence.
			t.Errorf("held: %v", r.Err)
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

// TestStuckInstallingCountsFromTheLastNews: a lease taken and given back since the last news (a
// worker's claim, a resume that stopped at once) is no news. A minute after such a claim of
// "stuck" and "recent", a resume of "stuck" (silent for 46 minutes) marks it ERROR without an
// engine run, as resume --all would, and "recent" (44 minutes) is resumed.
func TestStuckInstallingCountsFromTheLastNews(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	j, d, ev, _ := stuckWorld(t)
	claimed, err := j.ClaimStale(ctx, "worker-elsewhere", "", stuckNow.Add(-time.Minute), stuckNow.Add(-30*time.Second), 10)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claimed %+v, %v; want stuck and recent", claimed, err)
	}
	for _, r := range claimed {
		if err := j.Release(ctx, r.Stack, "worker-elsewhere", stuckNow.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := d.Resume(ctx, "stuck")
	if err == nil || !strings.Contains(err.Error(), "did not complete within 45m0s of the last news (2026-11-22T11:14:00Z)") ||
		!strings.Contains(err.Error(), "up --retry") || res == nil || res.Record.Status != journal.Error {
		t.Errorf("resume of stuck: %+v, %v", res, err)
	}
	if rec, _ := j.Get(ctx, "stuck"); rec.Status != journal.Error || rec.LeaseOwner != "" {
		t.Errorf("stuck: %+v", rec)
	}
	var notFound *NotFoundError
	if _, err := d.Resume(ctx, "recent"); !errors.As(err, &notFound) {
		t.Errorf("resume of recent: %v, want it resumed (no deployment here)", err)
	}
	if rec, _ := j.Get(ctx, "recent"); rec.Status != journal.Installing {
		t.Errorf("recent was marked: %+v", rec)
	}
	if n := len(ev.of(EventResource)); n != 0 {
		t.Errorf("%d resource events: marking a deployment stuck must not run the engine", n)
	}
}

// TestWorkerSweepsStuckInstalling: the worker's stale sweep, by the same clock, marks ERROR the
// deployment silent for 46 minutes whose owner is gone, and leaves alone the one a live owner
// holds and the one silent for 44 minutes.
func TestWorkerSweepsStuckInstalling(t *testing.T) {
	t.Parallel()
	j, d, _, me := stuckWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- fleet.Work(ctx, d, fleet.Options{Concurrency: 2, Poll: 50 * time.Millisecond, StaleEvery: time.Minute})
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		if rec, _ := j.Get(context.Background(), "stuck"); rec.Status == journal.Error {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker never marked the stuck deployment")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if rec, _ := j.Get(context.Background(), "stuck"); !strings.Contains(rec.LastError, "did not complete within 45m0s") {
		t.Errorf("stuck: %+v", rec)
	}
	if rec, _ := j.Get(context.Background(), "held"); rec.Status != journal.Installing || rec.LeaseOwner != me.String() {
		t.Errorf("held was touched: %+v", rec)
	}
	if rec, _ := j.Get(context.Background(), "recent"); rec.Status == journal.Error && strings.Contains(rec.LastError, "did not complete") {
		t.Errorf("recent was marked: %+v", rec)
	}
}

// holderFinishes is a journal on which, while a driver waits for a lease, its holder finishes
// the deployment, releases the lease and is gone (its lease long expired), just before the
// driver's next try.
type holderFinishes struct {
	journal.Journal
	tries  atomic.Int32
	finish func()
}

func (j *holderFinishes) Acquire(ctx context.Context, stack, owner string, now, expires time.Time, dead func(string) bool) (journal.Record, error) {
	if j.tries.Add(1) == 2 {
		j.finish()
	}
	return j.Journal.Acquire(ctx, stack, owner, now, expires, dead)
}

// TestResumeWaitsOutAHolderThatFinishes: a resume that waits for a live holder, which then
// completes the up and exits, finds the deployment READY and runs nothing. Who held the lease is
// judged as the lease is taken, not from what was read while waiting: that holder is gone by
// then, and taking it for a dead owner would run a second up after the first (TestConcurrentResumes
// saw it once in 20 races).
func TestResumeWaitsOutAHolderThatFinishes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sql, err := journal.OpenSQLite(ctx, filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sql.Close() }()
	start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	holder, err := NewOwner() // this test process: alive while it holds the lease
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sql.Ensure(ctx, "dev", ec2spot.Name, start); err != nil {
		t.Fatal(err)
	}
	if _, err := sql.Acquire(ctx, "dev", holder.String(), start, start.Add(time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	up := OpUp
	set := func(s journal.Status) {
		t.Helper()
		if _, err := sql.Update(ctx, "dev", holder.String(), now(), journal.Change{Status: &s, Operation: &up}); err != nil {
			t.Fatal(err)
		}
	}
	set(journal.Provisioning)
	j := &holderFinishes{Journal: sql, finish: func() {
		set(journal.Installing)
		set(journal.Ready)
		if err := sql.Release(ctx, "dev", holder.String(), now()); err != nil {
			t.Error(err)
		}
		clock.Store(start.Add(2 * time.Minute).UnixNano())
	}}

	sim := enginetest.NewSim(t, bins)
	ev := &events{}
	d, err := New(ctx, &Options{Program: simprogram.Six, StateDir: sim.StateDir, PulumiRoot: sim.PulumiRoot,
		Env: sim.Env, Journal: j, Clock: now, Events: ev, WaitForLease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.Resume(ctx, "dev")
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if j.tries.Load() < 2 {
		t.Fatalf("the resume took the lease at its first try: it never waited for the holder")
	}
	if res.Record.Status != journal.Ready || res.Record.Attempts != 0 {
		t.Errorf("after the resume: %+v", res.Record)
	}
	if n := len(ev.of(EventResource)); n != 0 {
		t.Errorf("%d resource events: the deployment was READY, nothing may run", n)
	}
}
