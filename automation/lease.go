package automation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/targets"
)

// hold is a deployment this process holds: the lease, its heartbeat, and the journal writes.
type hold struct {
	d      *Driver
	stack  string
	prev   journal.Record // the record before we took it: who held it, what it was doing
	record journal.Record
	stop   chan struct{}
	done   sync.WaitGroup
	mu     sync.Mutex
	// fence stops the operation when the lease is lost (another host took the deployment over
	// after this one's lease expired): two engines must never run on one deployment.
	fence context.CancelCauseFunc
}

// LeaseLostError is an operation stopped because its lease was lost: another owner took the
// deployment over (this process's lease had expired, say after a long pause), and goes on with it.
type LeaseLostError struct {
	Stack string
	To    string
}

func (e *LeaseLostError) Error() string {
	return fmt.Sprintf("the lease of %s was lost to %s (ours expired before it could be renewed): this process stopped its engine "+
		"and leaves the deployment to it", e.Stack, e.To)
}

// take acquires a deployment for this process, waiting up to WaitForLease for a live owner.
func (d *Driver) take(ctx context.Context, stack string) (*hold, error) {
	known, err := d.journal.Ensure(ctx, stack, d.profile.Name(), d.now())
	if err != nil {
		return nil, err
	}
	if known.Target != d.profile.Name() {
		// Running another target's program on a stack would delete everything it has.
		return nil, otherTarget(known)
	}
	deadline := d.now().Add(d.waitLease)
	for {
		now := d.now()
		taken, err := d.journal.Acquire(ctx, stack, d.owner, now, now.Add(d.leaseTTL), ownerDeadHere())
		if err == nil {
			if claim, ok := d.claimed(stack); ok {
				// A sweep (ClaimStale) took it for us: it is the record as taken from its owner.
				taken = claim
			}
			// prev is the deployment as the lease was taken from it: a holder we waited for may
			// have finished it and gone since we last read it, and is no owner to recover from.
			rec := taken
			rec.LeaseOwner, rec.LeaseExpires, rec.Updated = d.owner, now.Add(d.leaseTTL), now
			h := &hold{d: d, stack: stack, prev: taken, record: rec, stop: make(chan struct{})}
			if taken.LeaseOwner != "" && taken.LeaseOwner != d.owner {
				d.emit(stack, Event{Type: EventDiagnostic, Severity: "info", TakenFrom: taken.LeaseOwner, LeaseExpired: utcPtr(taken.LeaseExpires),
					Message: fmt.Sprintf("took over the deployment from %s, whose lease expired at %s or whose process is gone",
						taken.LeaseOwner, taken.LeaseExpires.UTC().Format(time.RFC3339Nano))})
				d.takeovers.Add(1)
			}
			h.done.Add(1)
			go h.heartbeat()
			return h, nil
		}
		var held *journal.LeaseHeldError
		if !errors.As(err, &held) || !d.now().Before(deadline) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// heartbeat renews the lease every third of its TTL until the hold ends.
func (h *hold) heartbeat() {
	defer h.done.Done()
	for {
		select {
		case <-h.stop:
			return
		case <-time.After(h.d.leaseTTL / 3):
			now := h.d.now()
			err := h.d.journal.Renew(context.Background(), h.stack, h.d.owner, now, now.Add(h.d.leaseTTL))
			var held *journal.LeaseHeldError
			h.mu.Lock()
			fence := h.fence
			h.mu.Unlock()
			if errors.As(err, &held) && fence != nil {
				h.d.warn(h.stack, "lost the lease of %s to %s: stopping the engine (fencing)", h.stack, held.Owner)
				fence(&LeaseLostError{Stack: h.stack, To: held.Owner})
				return
			}
		}
	}
}

// release stops the heartbeat and gives the lease up.
func (h *hold) release() {
	close(h.stop)
	h.done.Wait()
	_ = h.d.journal.Release(context.Background(), h.stack, h.d.owner, h.d.now())
}

// end stops the heartbeat and ends the lease now, leaving the owner's name on it: the record of
// an interrupted operation says whose it was, so whoever continues it, on any host, may remove
// the state lock an engine this process killed in its drain left (recovery judges a lock on the
// host of an owner whose lease ended as dead), and is not refused forever by a lock nobody holds.
func (h *hold) end() {
	close(h.stop)
	h.done.Wait()
	now := h.d.now()
	_ = h.d.journal.Renew(context.Background(), h.stack, h.d.owner, now, now)
}

// update writes a change to the journal and announces new statuses and stages. It writes even
// when the operation's context is cancelled: an interruption is recorded too.
func (h *hold) update(change journal.Change) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	rec, err := h.d.journal.Update(context.Background(), h.stack, h.d.owner, h.d.now(), change)
	if err != nil {
		return err
	}
	if rec.Status != h.record.Status || rec.Interrupted != h.record.Interrupted {
		h.d.emit(h.stack, Event{Type: EventStatus, Status: string(rec.Status), Interrupted: rec.Interrupted})
	}
	h.record = rec
	return nil
}

func ptr[T any](v T) *T { return &v }

// otherTarget refuses to run a target's program on another target's deployment.
func otherTarget(r journal.Record) error {
	return &UsageError{Err: fmt.Errorf("deployment %s is a %s deployment; run it with --target %s", r.Stack, r.Target, r.Target)}
}

func utcPtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// claim hands take a deployment a sweep claimed for this driver (journal.ClaimStale), as it was
// taken from its owner.
func (d *Driver) claim(r journal.Record) {
	d.claimsMu.Lock()
	defer d.claimsMu.Unlock()
	if d.claims == nil {
		d.claims = map[string]journal.Record{}
	}
	d.claims[r.Stack] = r
}

// claimed returns, once, the claim of stack.
func (d *Driver) claimed(stack string) (journal.Record, bool) {
	d.claimsMu.Lock()
	defer d.claimsMu.Unlock()
	r, ok := d.claims[stack]
	delete(d.claims, stack)
	return r, ok
}

// run holds a deployment for one operation. body runs under the lease; when ctx is cancelled (a
// signal) it gets the drain window to save its state, after which the deployment is marked
// interrupted and run returns an *InterruptedError, whether or not body has returned.
func (d *Driver) run(ctx context.Context, stack, operation string, body func(ctx context.Context, h *hold) error) (journal.Record, error) {
	h, err := d.take(ctx, stack)
	if err != nil {
		return journal.Record{}, err
	}
	ctx, fence := context.WithCancelCause(ctx)
	defer fence(nil)
	h.mu.Lock()
	h.fence = fence
	h.mu.Unlock()
	finished := make(chan error, 1)
	go func() { finished <- body(ctx, h) }()

	select {
	case err = <-finished:
	case <-ctx.Done():
		select {
		case err = <-finished:
		case <-time.After(d.drain):
			err = ctx.Err()
			// A signal stops everything this driver runs; a lost lease only this deployment's
			// engine (a worker runs others beside it), found by its work directory.
			var n int
			if lost := new(LeaseLostError); errors.As(context.Cause(ctx), &lost) {
				n = killProcessesIn(d.owner, d.workDir(stack))
			} else {
				n = killProcessesOf(d.owner)
			}
			if n > 0 {
				d.note(stack, "the engine did not save its state within the %s drain window: killed its %d processes", d.drain, n)
			}
		}
	}
	var lost *LeaseLostError
	if errors.As(context.Cause(ctx), &lost) {
		// Not ours any more: nothing to record, the new owner carries on.
		close(h.stop)
		h.done.Wait()
		return h.record, lost
	}
	if ctx.Err() != nil {
		// A refresh that interrupts an unfinished up or destroy leaves that one to resume.
		if op := d.resumable(h.prev); operation == OpRefresh && op != "" && op != OpRefresh {
			operation = op
		}
		_ = h.update(journal.Change{Interrupted: ptr(true), Operation: ptr(operation)})
		d.note(stack, "%s interrupted: the next `clawdeploy resume --stack %s` continues it", operation, stack)
		err = &InterruptedError{Stack: stack, Operation: operation}
		h.end()
	} else {
		h.release()
	}
	if rec, gerr := d.journal.Get(context.Background(), stack); gerr == nil {
		return rec, err
	}
	return h.record, err
}

// completed reports a stage's completion as an event, and records the deployment's stage when it
// moves.
func (h *hold) completed(t *stageTracker, stage string) {
	news, recorded, moved := t.complete(stage)
	if news {
		h.d.emit(h.stack, Event{Type: EventStage, Stage: stage})
	}
	if moved {
		_ = h.update(journal.Change{Stage: ptr(recorded)})
	}
}

// fail records an operation's failure, unless it was an interruption (run records those) or a
// refusal that says nothing about the deployment: a live lock, an unknown stack, another
// target's stack.
func (h *hold) fail(ctx context.Context, err error) error {
	var (
		lock     *LockHeldError
		notFound *NotFoundError
		usage    *UsageError
	)
	if errors.As(err, &lock) || errors.As(err, &notFound) || errors.As(err, &usage) {
		return err
	}
	if ctx.Err() == nil {
		_ = h.update(journal.Change{Status: ptr(journal.Error), LastError: ptr(err.Error())})
	}
	return err
}

// stageTracker follows the stages an operation completes. Resources finish in parallel, so
// stages complete in any order: each completion is reported as it happens, and the deployment's
// stage is the furthest one whose predecessors (in Order) have all completed, so everything up to
// the recorded stage is done.
type stageTracker struct {
	stages targets.Stages
	mu     sync.Mutex
	done   map[string]bool
	prefix int // index in Order of the recorded stage; -1 for none
}

func newStageTracker(stages targets.Stages, current string) *stageTracker {
	t := &stageTracker{stages: stages, done: map[string]bool{}, prefix: slices.Index(stages.Order, current)}
	for _, s := range stages.Order[:t.prefix+1] {
		t.done[s] = true
	}
	return t
}

// complete records that a stage completed. It reports whether the stage is news, and returns the
// deployment's stage when that moved.
func (t *stageTracker) complete(stage string) (news bool, recorded string, moved bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done[stage] || !slices.Contains(t.stages.Order, stage) {
		return false, "", false
	}
	t.done[stage] = true
	start := t.prefix
	for {
		next := t.prefix + 1
		for next < len(t.stages.Order) && !t.done[t.stages.Order[next]] && slices.Contains(t.stages.Optional, t.stages.Order[next]) {
			next++
		}
		if next >= len(t.stages.Order) || !t.done[t.stages.Order[next]] {
			break
		}
		t.prefix = next
	}
	if t.prefix == start {
		return true, "", false
	}
	return true, t.stages.Order[t.prefix], true
}

// forType returns the stage a resource type's completion marks.
func (t *stageTracker) forType(typ string) (string, bool) {
	s, ok := t.stages.ByType[typ]
	return s, ok
}

// TakeOver continues a deployment a sweep claimed from a dead owner (journal.ClaimStale, with
// this driver's Owner): it resumes it from the claimed record, and gives the claim's lease back
// when the resume never took it (stopped first, or nothing to do), so that the next worker need
// not wait for it to expire.
func (d *Driver) TakeOver(ctx context.Context, r journal.Record) (*Result, error) {
	d.claim(r)
	res, err := d.Resume(ctx, r.Stack)
	if _, unused := d.claimed(r.Stack); unused {
		_ = d.journal.Release(context.Background(), r.Stack, d.owner, d.now())
	}
	return res, err
}
