package automation

import (
	"context"
	"fmt"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/targets"
)

// HealResult is where a heal left a deployment.
type HealResult struct {
	Result
	// Host is what the check found; Healed reports that an up brought the host back.
	Host   HostState
	Healed bool
}

// Heal brings back a deployment whose host was taken away (DESIGN.md, "After a Spot
// interruption"). It checks the host without a lease; a host that runs is left alone, without an
// engine run. A host that is gone makes the deployment INTERRUPTED, then an up with refresh
// (the refresh drops the dead instance and its attachment; the up makes a new instance in the
// pinned zone and attaches the same volume; the setup finds the data where it was), READY again.
// A heal that fails (every instance type out of capacity, say) leaves the deployment ERROR and
// sets when the next may try: HealAll waits for it; Heal itself does not.
//
// It heals READY deployments, INTERRUPTED ones (a heal cut short), and ERROR ones whose last
// heal failed; any other status is an operation for up, resume or destroy.
func (d *Driver) Heal(ctx context.Context, stack string) (*HealResult, error) {
	if err := CheckStackName(stack); err != nil {
		return nil, err
	}
	if d.hostChecker == nil {
		return nil, &UsageError{Err: fmt.Errorf("heal is for the %s target: a %s host is not taken away by its provider",
			targetNames(isA[targets.Healer]), d.profile.Name())}
	}
	rec, err := d.Status(ctx, stack)
	if err != nil {
		return nil, err
	}
	res := &HealResult{Result: Result{Record: rec}}
	switch {
	case d.resumable(rec) == OpUp:
		// A heal (or an up) was cut short: what resume does finishes it.
		d.note(stack, "an up of %s was cut short (%s): continuing it", stack, rec.Status)
		r, err := d.Resume(ctx, stack)
		if r != nil {
			res.Result, res.Healed = *r, err == nil
		}
		return res, err
	case d.resumable(rec) != "":
		d.note(stack, "a %s of %s was cut short: `clawdeploy resume --stack %s` continues it", rec.Operation, stack, stack)
		return res, nil
	case rec.Status == journal.Ready, rec.Status == journal.Error && rec.HealFailures > 0:
		outputs, err := d.Outputs(ctx, stack)
		if err != nil {
			return res, err
		}
		if res.Host, err = d.hostChecker.Check(ctx, stack, outputs); err != nil {
			return res, fmt.Errorf("checking the host of %s: %w", stack, err)
		}
		if !res.Host.Down {
			d.note(stack, "%s: nothing to heal", res.Host.Why)
			if rec.Status == journal.Error {
				d.note(stack, "%s: the deployment is in ERROR (%s); `clawdeploy up --retry` starts it over", res.Host.Why, rec.LastError)
			}
			return res, nil
		}
	case rec.Status == journal.Error:
		return res, fmt.Errorf("deployment %s is in ERROR (%s): `clawdeploy up --retry --stack %s` starts it over",
			stack, rec.LastError, stack)
	default:
		d.note(stack, "the deployment is %s: nothing to heal (`clawdeploy resume` continues what was cut short)", rec.Status)
		return res, nil
	}

	var out auto.OutputMap
	checked := rec.Updated
	rec, err = d.run(ctx, stack, OpUp, func(ctx context.Context, h *hold) error {
		var err error
		out, err = d.bringBack(ctx, h, res, checked)
		return err
	})
	res.Record, res.Outputs = rec, out
	return res, err
}

// bringBack heals, under the lease, a deployment whose host is gone (res.Host says why): it
// records the loss (HOST_LOST, and an interruption when the deployment was READY), recovers,
// and runs the up again with refresh. A failure sets when HealAll may try next. A deployment
// that another process healed since it was checked is left as it is.
func (d *Driver) bringBack(ctx context.Context, h *hold, res *HealResult, checked time.Time) (auto.OutputMap, error) {
	stack := h.stack
	if h.record.Status == journal.Ready && h.record.RecoveredAt.After(checked) {
		d.note(stack, "another process healed it while we waited")
		return nil, nil
	}
	if h.record.Status != journal.HostLost {
		d.emit(stack, Event{Type: EventDiagnostic, Severity: "warning",
			Message: fmt.Sprintf("%s: the host is gone, healing", res.Host.Why)})
		change := journal.Change{Status: ptr(journal.HostLost), Operation: ptr(OpUp), Interrupted: ptr(false), LastError: ptr("")}
		if h.record.Status == journal.Ready { // a new loss; after a failed heal, the same one
			change.Interruption = &journal.Interruption{At: d.now(), Host: res.Host.Host}
		}
		if err := h.update(change); err != nil {
			return nil, err
		}
	}
	var out auto.OutputMap
	s, err := d.recover(ctx, h, false)
	if err == nil {
		err = d.applyConfig(ctx, s, ConfigInput{})
	}
	if err == nil {
		_, err = d.resolvePending(ctx, h, s, false)
	}
	var (
		replace   []string // what an interrupted up (a restore) had still to replace
		refreshed bool
	)
	if err == nil {
		replace, refreshed, err = d.stillToReplace(ctx, h, s)
	}
	if err == nil {
		err = h.update(journal.Change{Status: ptr(journal.Provisioning), AddAttempt: true})
	}
	if err == nil {
		out, _, err = d.upAndWait(ctx, h, s, replace, !refreshed)
	}
	if err != nil && ctx.Err() == nil {
		next := d.now().Add(healBackoff(h.record.HealFailures))
		_ = h.update(journal.Change{HealFailed: &next})
		d.note(stack, "the heal failed; `clawdeploy heal --all` tries again after %s", next.UTC().Format(time.RFC3339))
		return out, h.fail(ctx, err)
	}
	res.Healed = err == nil
	return out, err
}

// healBackoff is how long HealAll waits after failures heals failed in a row: a minute, doubled
// each time, at most an hour.
func healBackoff(failures int) time.Duration {
	wait := time.Minute
	for range failures {
		if wait *= 2; wait >= time.Hour {
			return time.Hour
		}
	}
	return wait
}

// HealAll checks every deployment of a target that heals and heals those whose host is gone, at
// most concurrency at a time (0: DefaultConcurrency): those HealDue names. It is what `heal
// --all` from cron runs; the worker runs the same check every --heal-every.
func (d *Driver) HealAll(ctx context.Context, concurrency int, each func(HealOutcome)) ([]HealOutcome, error) {
	records, err := d.HealDue(ctx)
	if err != nil {
		return nil, err
	}
	due := make([]string, len(records))
	for i, r := range records {
		due[i] = r.Stack
	}
	return forEach(ctx, due, concurrency, func(ctx context.Context, stack string) HealOutcome {
		res, err := d.Heal(ctx, stack)
		return HealOutcome{Stack: stack, Result: res, Err: err}
	}, each)
}

// HealDue names the deployments of this target a heal check is for: READY ones, INTERRUPTED
// ones (a heal cut short), and ERROR ones whose last heal failed once their backoff has passed,
// each only when no live owner elsewhere holds it (its operation is under way: a heal could not
// take its lease). None for a target whose hosts are not taken away.
func (d *Driver) HealDue(ctx context.Context) ([]journal.Record, error) {
	if d.hostChecker == nil {
		return nil, nil
	}
	records, err := d.journal.List(ctx)
	if err != nil {
		return nil, err
	}
	dead := ownerDeadHere()
	var due []journal.Record
	for _, r := range records {
		switch {
		case r.Target != d.profile.Name(), d.heldElsewhere(r, dead):
		case r.Status == journal.Ready, r.Status == journal.HostLost:
			due = append(due, r)
		case r.Status == journal.Error && r.HealFailures > 0 && !d.now().Before(r.HealAfter):
			due = append(due, r)
		}
	}
	return due, nil
}

// HealOutcome is one deployment's outcome in HealAll.
type HealOutcome struct {
	Stack  string
	Result *HealResult
	Err    error
}
