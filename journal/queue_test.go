package journal

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// abandon makes stack a deployment whose up its owner left unfinished, the lease expiring at
// until.
func abandon(t *testing.T, j *SQL, stack, owner string, until time.Time) {
	t.Helper()
	abandonOf(t, j, stack, "ec2-spot", owner, until)
}

// abandonOf is abandon for a deployment of target.
func abandonOf(t *testing.T, j *SQL, stack, target, owner string, until time.Time) {
	t.Helper()
	ctx := t.Context()
	if _, err := j.Ensure(ctx, stack, target, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Acquire(ctx, stack, owner, t0, until, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Update(ctx, stack, owner, t0, Change{Status: status(Provisioning), Operation: str("up")}); err != nil {
		t.Fatal(err)
	}
}

// TestClaimStale: a sweep takes the deployments whose operation did not finish and whose lease
// expired, and nothing else: not a live lease, not a finished deployment.
func TestClaimStale(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, e engine) {
		ctx := t.Context()
		j := open(t, e.fresh(t))
		now := t0.Add(time.Hour)
		abandon(t, j, "dead", "w1", now.Add(-time.Second))
		abandon(t, j, "alive", "w2", now.Add(time.Minute))
		abandon(t, j, "done", "w1", now.Add(-time.Second))
		if _, err := j.Update(ctx, "done", "w1", t0, Change{Status: status(Ready)}); err != nil {
			t.Fatal(err)
		}
		if _, err := j.Ensure(ctx, "never", "ec2-spot", t0); err != nil { // no operation started
			t.Fatal(err)
		}
		claimed, err := j.ClaimStale(ctx, "w3", "", now, now.Add(time.Minute), 10)
		if err != nil || len(claimed) != 1 || claimed[0].Stack != "dead" || claimed[0].LeaseOwner != "w1" {
			t.Fatalf("claimed %+v, %v; want dead, taken from w1", claimed, err)
		}
		if r, _ := j.Get(ctx, "dead"); r.LeaseOwner != "w3" || !r.LeaseExpires.Equal(now.Add(time.Minute)) {
			t.Errorf("after the claim: %+v", r)
		}
		if again, err := j.ClaimStale(ctx, "w4", "", now, now.Add(time.Minute), 10); err != nil || len(again) != 0 {
			t.Errorf("a second sweep claimed %+v, %v", again, err)
		}
	})
}

// TestSweepsOfOneTarget: a worker runs one target's program, so its sweeps claim and take only
// that target's deployments and requests; "" is every target's.
func TestSweepsOfOneTarget(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, e engine) {
		ctx := t.Context()
		j := open(t, e.fresh(t))
		now := t0.Add(time.Hour)
		abandon(t, j, "spot", "w1", now.Add(-time.Second))
		abandonOf(t, j, "box", "vps", "w1", now.Add(-time.Second))
		if claimed, err := j.ClaimStale(ctx, "w2", "vps", now, now.Add(time.Minute), 10); err != nil || len(claimed) != 1 || claimed[0].Stack != "box" {
			t.Errorf("the vps sweep claimed %+v, %v; want box alone", claimed, err)
		}
		if claimed, err := j.ClaimStale(ctx, "w3", "", now, now.Add(time.Minute), 10); err != nil || len(claimed) != 1 || claimed[0].Stack != "spot" {
			t.Errorf("the sweep of every target claimed %+v, %v; want spot, the one left", claimed, err)
		}
		for _, r := range []Request{{ID: "a", Stack: "spot", Target: "ec2-spot", Operation: "up"}, {ID: "b", Stack: "box", Target: "vps", Operation: "up"}} {
			if err := j.Enqueue(ctx, r, t0); err != nil {
				t.Fatal(err)
			}
		}
		if taken, err := j.TakeRequests(ctx, "w2", "vps", now, 10); err != nil || len(taken) != 1 || taken[0].ID != "b" {
			t.Errorf("the vps worker took %+v, %v; want b alone", taken, err)
		}
		if taken, err := j.TakeRequests(ctx, "w3", "ec2-spot", now, 10); err != nil || len(taken) != 1 || taken[0].ID != "a" {
			t.Errorf("the ec2-spot worker took %+v, %v; want a alone", taken, err)
		}
	})
}

// TestTwoClaimersOneWinner races two workers (a handle each, as on two hosts) for the same
// abandoned deployment, twenty times: each time exactly one claims it.
func TestTwoClaimersOneWinner(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, e engine) {
		for round := range 20 {
			at := e.fresh(t)
			abandon(t, open(t, at), "dev", "dead-worker", t0.Add(time.Second))
			a, b := open(t, at), open(t, at)
			var (
				wg    sync.WaitGroup
				mu    sync.Mutex
				wins  []string
				start = make(chan struct{})
			)
			for name, j := range map[string]*SQL{"a": a, "b": b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					now := t0.Add(time.Minute)
					got, err := j.ClaimStale(context.Background(), name, "", now, now.Add(time.Minute), 5)
					if err != nil {
						t.Errorf("round %d, %s: %v", round, name, err)
					}
					mu.Lock()
					for range got {
						wins = append(wins, name)
					}
					mu.Unlock()
				}()
			}
			close(start)
			wg.Wait()
			if len(wins) != 1 {
				t.Fatalf("round %d: claimed by %v, want exactly one", round, wins)
			}
		}
	})
}

// TestRequests: requests are taken once each, oldest first, one at a time per deployment and
// in the order they were queued; finishing records how they ended.
func TestRequests(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, e engine) {
		ctx := t.Context()
		at := e.fresh(t)
		j := open(t, at)
		if err := j.Enqueue(ctx, Request{ID: "bad", Stack: "s", Operation: "rm -rf"}, t0); err == nil {
			t.Error("a request for an unknown operation was queued")
		}
		for i := range 10 {
			r := Request{ID: fmt.Sprintf("r%02d", i), Stack: fmt.Sprintf("s%d", i%5), Target: "ec2-spot", Operation: "up",
				Config: `{"values":{"k":"v"}}`}
			if err := j.Enqueue(ctx, r, t0.Add(time.Duration(i)*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		// Two workers take at once: ten requests on five deployments are five at a time.
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			taken []Request
		)
		for _, owner := range []string{"w1", "w2"} {
			h := open(t, at)
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := h.TakeRequests(context.Background(), owner, "", t0.Add(time.Minute), 10)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				taken = append(taken, got...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		var ids []string
		for _, r := range taken {
			ids = append(ids, r.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"r00", "r01", "r02", "r03", "r04"}) {
			t.Fatalf("taken %v, want the oldest request of each deployment, once", ids)
		}
		if more, _ := j.TakeRequests(ctx, "w3", "", t0.Add(time.Minute), 10); len(more) != 0 {
			t.Errorf("requests taken while their deployment's earlier one runs: %+v", more)
		}
		for _, r := range taken {
			var failure error
			if r.Stack == "s1" {
				failure = errors.New("no capacity")
			}
			if err := j.FinishRequests(ctx, r.Stack, t0.Add(2*time.Minute), failure); err != nil {
				t.Fatal(err)
			}
		}
		if r, _ := j.GetRequest(ctx, "r01"); r.State != RequestFailed || r.Error != "no capacity" || r.Finished.IsZero() {
			t.Errorf("r01: %+v", r)
		}
		if err := j.Requeue(ctx, "r00", "someone-else"); err == nil {
			t.Error("a finished request was queued again")
		}
		next, err := j.TakeRequests(ctx, "w3", "", t0.Add(3*time.Minute), 10)
		if err != nil || len(next) != 5 || next[0].ID != "r05" || next[0].Config != `{"values":{"k":"v"}}` {
			t.Errorf("then: %+v, %v", next, err)
		}
		if _, err := j.GetRequest(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("an unknown request: %v", err)
		}
	})
}
