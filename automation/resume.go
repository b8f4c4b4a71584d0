package automation

import (
	"context"
	"fmt"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/clawdeploy/clawdeploy/journal"
)

// StuckInstalling is how long a deployment may wait in INSTALLING without news before start-up
// resume marks it ERROR.
const StuckInstalling = 45 * time.Minute

// Resume continues a deployment a previous process left half done. The recovery is explicit and
// ordered (DESIGN.md, "The driver"):
//
//  1. take the deployment's lease (a live owner elsewhere: stop, exit 3);
//  2. stop what the dead owner left running, and cancel a backend lock whose owner is provably
//     dead (a live one is never touched);
//  3. resolve pending creates through the finder (found: import; provably absent: clear) and
//     refresh away other pending operations;
//  4. carry on with the interrupted operation: up with refresh, then the setup wait; destroy; or
//     refresh.
//
// Only an operation that started is continued: a deployment whose up was refused before it
// began has nothing to resume. One INSTALLING without news for StuckInstalling, that no live
// owner holds, is marked ERROR instead, as ResumeAll and the worker do. A deployment that is
// READY and was not interrupted costs no engine run at all.
func (d *Driver) Resume(ctx context.Context, stack string) (*Result, error) {
	if err := CheckStackName(stack); err != nil {
		return nil, err
	}
	rec, err := d.Status(ctx, stack)
	if err != nil {
		return nil, err
	}
	if d.stuck(rec) && !d.heldElsewhere(rec, ownerDeadHere()) {
		if err := d.markStuck(ctx, rec); err != nil {
			return &Result{Record: rec}, err
		}
		if rec, err = d.Status(ctx, stack); err != nil {
			return nil, err
		}
		return &Result{Record: rec}, fmt.Errorf("deployment %s: %s: `clawdeploy up --retry --stack %s` starts it over",
			stack, rec.LastError, stack)
	}
	op := d.resumable(rec)
	if op == "" {
		if rec.Status == journal.Error && !rec.Interrupted {
			// Nothing was interrupted: the deployment failed, and resuming would fail the same way.
			return &Result{Record: rec}, fmt.Errorf("deployment %s is in ERROR (%s): `clawdeploy up --retry --stack %s` starts it over",
				stack, rec.LastError, stack)
		}
		if !rec.Status.Terminal() {
			d.note(stack, "no operation of deployment %s started: nothing to resume; `clawdeploy up --stack %s` starts one", stack, stack)
		}
		return &Result{Record: rec}, nil
	}
	var (
		out auto.OutputMap
		cp  *Checkpoint
	)
	rec, err = d.run(ctx, stack, op, func(ctx context.Context, h *hold) error {
		if d.resumable(h.prev) == "" {
			// Another process finished it while we waited for the lease.
			d.note(stack, "the deployment is %s already: nothing to resume", h.record.Status)
			return nil
		}
		s, err := d.recover(ctx, h, false)
		if err != nil {
			return h.fail(ctx, err)
		}
		switch op {
		case OpDestroy:
			// The destroy reads every resource back through this refresh.
			if _, err := d.resolvePending(ctx, h, s, true); err != nil {
				return h.fail(ctx, err)
			}
			if err := h.update(journal.Change{Status: ptr(journal.Destroying), Interrupted: ptr(false)}); err != nil {
				return err
			}
			_, err := d.destroy(ctx, h, s)
			return err
		case OpRefresh:
			return d.refresh(ctx, h, s)
		}
		if err := d.applyConfig(ctx, s, ConfigInput{}); err != nil {
			return err
		}
		if _, err := d.resolvePending(ctx, h, s, false); err != nil { // the up refreshes
			return h.fail(ctx, err)
		}
		replace, refreshed, err := d.stillToReplace(ctx, h, s)
		if err != nil {
			return h.fail(ctx, err)
		}
		if _, err := d.ignoredConfig(ctx, stack, s, ConfigInput{}, replace); err != nil {
			return h.fail(ctx, err)
		}
		if err := h.update(journal.Change{Status: ptr(journal.Provisioning), Operation: ptr(OpUp),
			Interrupted: ptr(false), AddAttempt: true}); err != nil {
			return err
		}
		out, cp, err = d.upAndWait(ctx, h, s, replace, !refreshed)
		return err
	})
	return &Result{Record: rec, Outputs: out, Checkpoint: cp}, err
}

// resumable is the operation a resume of r continues: the up, destroy or refresh that started
// and did not finish; empty when there is none. An operation did not finish when its deployment
// is not in a final status, or when it was cut short (cutShort).
func (d *Driver) resumable(r journal.Record) string {
	switch {
	case r.Operation != OpUp && r.Operation != OpDestroy && r.Operation != OpRefresh:
		return "" // nothing started: a refusal, or a deployment never operated on
	case r.Status.Terminal() && !d.cutShort(r):
		return ""
	}
	return r.Operation
}

// cutShort reports whether r's last operation ended without its process finishing it: marked
// interrupted (a signal), or its lease left by a process that died (gone from this host, or its
// lease expired). A process that finishes releases its lease.
func (d *Driver) cutShort(r journal.Record) bool {
	if r.Interrupted {
		return true
	}
	if r.LeaseOwner == "" || r.LeaseOwner == d.owner {
		return false
	}
	return !r.Leased(d.now()) || ownerDeadHere()(r.LeaseOwner)
}

// heldElsewhere reports whether a live owner other than this driver holds r, on this host or on
// another; dead is ownerDeadHere's judgement.
func (d *Driver) heldElsewhere(r journal.Record, dead func(owner string) bool) bool {
	return r.Leased(d.now()) && r.LeaseOwner != d.owner && !dead(r.LeaseOwner)
}

// ResumeResult is one deployment's outcome in ResumeAll.
type ResumeResult struct {
	Stack  string
	Result *Result
	Err    error
}

// DefaultConcurrency is how many deployments ResumeAll resumes at once unless told.
const DefaultConcurrency = 4

// ResumeAll resumes every deployment that is not finished and that nobody live holds (one that
// somebody does is reported as a *journal.LeaseHeldError naming the holder and until when), at most
// concurrency at a time (0: DefaultConcurrency), and marks ERROR those stuck in INSTALLING for StuckInstalling without
// news. It starts at once: a dead owner on this host is recognised without waiting for its lease.
// each, when not nil, is called with every outcome as it comes, one call at a time.
func (d *Driver) ResumeAll(ctx context.Context, concurrency int, each func(ResumeResult)) ([]ResumeResult, error) {
	if concurrency < 0 {
		return nil, &UsageError{Err: fmt.Errorf("--concurrency must be 1 or more, got %d", concurrency)}
	}
	records, err := d.journal.List(ctx)
	if err != nil {
		return nil, err
	}
	dead := ownerDeadHere()
	var due []string
	var stuck []ResumeResult
	for _, r := range records {
		if d.resumable(r) == "" {
			continue
		}
		if d.heldElsewhere(r, dead) {
			// A live owner is on it, here or on another host: named, not passed over in silence.
			held := ResumeResult{Stack: r.Stack, Err: &journal.LeaseHeldError{Stack: r.Stack, Owner: r.LeaseOwner, Expires: r.LeaseExpires}}
			stuck = append(stuck, held)
			if each != nil {
				each(held)
			}
			continue
		}
		if d.stuck(r) {
			res := ResumeResult{Stack: r.Stack, Err: d.markStuck(ctx, r)}
			stuck = append(stuck, res)
			if each != nil {
				each(res)
			}
			continue
		}
		due = append(due, r.Stack)
	}
	resumed, err := forEach(ctx, due, concurrency, func(ctx context.Context, stack string) ResumeResult {
		res, err := d.Resume(ctx, stack)
		return ResumeResult{Stack: stack, Result: res, Err: err}
	}, each)
	return append(stuck, resumed...), err
}

// stuck reports whether r has been INSTALLING for StuckInstalling without news. A lease taken or
// given back since is no news: the clock runs from the last Update.
func (d *Driver) stuck(r journal.Record) bool {
	return r.Status == journal.Installing && d.now().Sub(r.LastNews()) > StuckInstalling
}

// markStuck moves a deployment stuck in INSTALLING to ERROR, under its lease.
func (d *Driver) markStuck(ctx context.Context, r journal.Record) error {
	_, err := d.run(ctx, r.Stack, r.Operation, func(_ context.Context, h *hold) error {
		msg := fmt.Sprintf("the setup did not complete within %s of the last news (%s)",
			StuckInstalling, r.LastNews().UTC().Format(time.RFC3339))
		d.note(r.Stack, "%s: marking it ERROR", msg)
		return h.update(journal.Change{Status: ptr(journal.Error), LastError: ptr(msg)})
	})
	return err
}

// SweepStuck marks ERROR the INSTALLING deployments without news for StuckInstalling, except
// those a live owner holds (their lease says so, wherever they run).
func (d *Driver) SweepStuck(ctx context.Context) {
	records, err := d.journal.List(ctx)
	if err != nil {
		return
	}
	dead := ownerDeadHere()
	for _, r := range records {
		if r.Target != d.profile.Name() || !d.stuck(r) {
			continue // another target's are its workers' to sweep
		}
		if d.heldElsewhere(r, dead) {
			continue // a live owner: its news will come
		}
		if err := d.markStuck(ctx, r); err != nil {
			d.warn(r.Stack, "marking %s ERROR: %v", r.Stack, err)
		}
	}
}
