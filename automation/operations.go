package automation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"

	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/ordering"
	"github.com/clawdeploy/clawdeploy/targets"
)

// Operations the journal records.
const (
	OpUp      = "up"
	OpDestroy = "destroy"
	OpRefresh = "refresh"
)

// Result is where an operation left a deployment.
type Result struct {
	Record  journal.Record
	Outputs auto.OutputMap
	// Checkpoint is the one taken (or kept) before this up deployed a new image; nil when the
	// image did not change.
	Checkpoint *Checkpoint
	// Released is what a destroy of an ordered VPS did at its provider; nil for a host the
	// user brings.
	Released *ordering.Release
}

// engineError wraps a failed engine run.
func (d *Driver) engineError(op, stack string, err error) error {
	var lock *LockHeldError
	if errors.As(err, &lock) {
		return err
	}
	return &EngineError{Op: op, Stack: stack, Err: err, Streamed: d.progress != io.Discard}
}

// Destroy deletes every resource of the deployment: DESTROYING, then DESTROYED.
func (d *Driver) Destroy(ctx context.Context, stack string) (*Result, error) {
	if err := CheckStackName(stack); err != nil {
		return nil, err
	}
	if err := d.Existing(ctx, stack); err != nil {
		return nil, err
	}
	var released *ordering.Release
	rec, err := d.run(ctx, stack, OpDestroy, func(ctx context.Context, h *hold) error {
		s, err := d.recover(ctx, h, false)
		if err != nil {
			return h.fail(ctx, err)
		}
		if _, err := d.resolvePending(ctx, h, s, true); err != nil {
			return h.fail(ctx, err)
		}
		if err := h.update(journal.Change{Status: ptr(journal.Destroying), Operation: ptr(OpDestroy),
			Interrupted: ptr(false), LastError: ptr("")}); err != nil {
			return err
		}
		released, err = d.destroy(ctx, h, s)
		return err
	})
	return &Result{Record: rec, Released: released}, err
}

// Existing refuses, before anything is touched, a stack the backend provably does not hold (a
// *NotFoundError) and a stack of another target (a *UsageError). A stack that cannot be opened
// for another reason is for recovery.
func (d *Driver) Existing(ctx context.Context, stack string) error {
	s, err := d.stack(ctx, stack, false)
	var notFound *NotFoundError
	switch {
	case errors.As(err, &notFound):
		return err
	case err != nil:
		return nil
	}
	_, err = d.checkTarget(ctx, s)
	return err
}

func (d *Driver) destroy(ctx context.Context, h *hold, s auto.Stack) (*ordering.Release, error) {
	started := d.now()
	var outputs auto.OutputMap // what the final snapshot is found by; none for a stack never deployed
	if d.finals != nil {
		outputs, _ = s.Outputs(ctx)
	}
	ch, wait := d.engineEvents(h)
	err := d.withLockRecovery(ctx, h, s, func() error {
		_, err := s.Destroy(ctx, optdestroy.ProgressStreams(d.progress), optdestroy.ErrorProgressStreams(d.progress),
			optdestroy.EventStreams(ch))
		return err
	})
	wait()
	if err != nil {
		return nil, h.fail(ctx, d.engineError("destroying", h.stack, err))
	}
	if len(outputs) > 0 {
		// The deletion is done: a snapshot left unmarked is a warning, never a failed destroy.
		switch marked, err := d.finals.MarkFinal(ctx, h.stack, outputs, started); {
		case err != nil:
			d.warn(h.stack, "the data volume's final snapshot could not be tagged CreatedBy=final-on-destroy: %v "+
				"(`clawdeploy snapshots list --stack %s --region R` shows it all the same)", err, h.stack)
		case len(marked) > 0:
			d.note(h.stack, "the data volume's final snapshot: %s (tagged CreatedBy=final-on-destroy; "+
				"`clawdeploy restore --stack %s --snapshot %s` brings it back)", strings.Join(marked, ", "), h.stack, marked[0])
		}
	}
	// The host the deployment ordered stops renewing before the stack, which holds the
	// provider's credentials, goes.
	var released *ordering.Release
	if d.profile.releaser != nil {
		if released, err = d.profile.releaser.Release(ctx, h.lease(s)); err != nil {
			return nil, h.fail(ctx, err)
		}
	}
	// What the state held (a vps deployment's root SSH key, the secrets in its configuration)
	// must not outlive the deployment in the backend's history and backups: the stack goes,
	// the journal keeps the record.
	if err := d.removeStack(ctx, h.stack, nil); err != nil {
		return released, h.fail(ctx, fmt.Errorf("the resources of %s are deleted, but removing the stack with its history failed "+
			"(run destroy again): %w", h.stack, err))
	}
	d.note(h.stack, "removed the stack from the backend with its history and backups")
	return released, h.update(journal.Change{Status: ptr(journal.Destroyed), Stage: ptr(""), HostOrder: ptr("")})
}

// Refresh reads every resource back from the cloud into the state. An interrupted refresh is
// continued by resume as a refresh; one that interrupts an unfinished up or destroy leaves that
// operation to resume.
func (d *Driver) Refresh(ctx context.Context, stack string) (*Result, error) {
	if err := CheckStackName(stack); err != nil {
		return nil, err
	}
	if err := d.Existing(ctx, stack); err != nil {
		return nil, err
	}
	rec, err := d.run(ctx, stack, OpRefresh, func(ctx context.Context, h *hold) error {
		s, err := d.recover(ctx, h, false)
		if err != nil {
			return err
		}
		// The refresh is the deployment's operation, so that a resume continues it if it is cut
		// short; an unfinished up or destroy stays the one to continue.
		if op := d.resumable(h.prev); op == "" || op == OpRefresh {
			if err := h.update(journal.Change{Operation: ptr(OpRefresh)}); err != nil {
				return err
			}
		}
		return d.refresh(ctx, h, s)
	})
	return &Result{Record: rec}, err
}

// refresh resolves pending operations, then reads every resource back; it ends an interrupted
// refresh.
func (d *Driver) refresh(ctx context.Context, h *hold, s auto.Stack) error {
	if _, err := d.resolvePending(ctx, h, s, false); err != nil { // the refresh follows
		return err
	}
	ch, wait := d.engineEvents(h)
	err := d.withLockRecovery(ctx, h, s, func() error {
		_, err := s.Refresh(ctx, optrefresh.ProgressStreams(d.progress), optrefresh.ErrorProgressStreams(d.progress),
			optrefresh.EventStreams(ch))
		return err
	})
	wait()
	if err != nil {
		return d.engineError("refreshing", h.stack, err)
	}
	if h.record.Interrupted && h.record.Operation == OpRefresh {
		return h.update(journal.Change{Interrupted: ptr(false)})
	}
	return nil
}

// Outputs returns the stack's outputs.
func (d *Driver) Outputs(ctx context.Context, stack string) (auto.OutputMap, error) {
	if err := CheckStackName(stack); err != nil {
		return nil, err
	}
	s, err := d.stack(ctx, stack, false)
	if err != nil {
		return nil, err
	}
	return s.Outputs(ctx)
}

// Status returns the journal's record of a deployment.
func (d *Driver) Status(ctx context.Context, stack string) (journal.Record, error) {
	if err := CheckStackName(stack); err != nil {
		return journal.Record{}, err
	}
	rec, err := d.journal.Get(ctx, stack)
	if errors.Is(err, journal.ErrNotFound) {
		return rec, &NotFoundError{Stack: stack}
	}
	return rec, err
}

// List returns every deployment the journal knows.
func (d *Driver) List(ctx context.Context) ([]journal.Record, error) {
	return d.journal.List(ctx)
}

// UserData renders what the target's instance would be given at boot for the stack's
// configuration with in applied, secrets named, never shown. Targets whose hosts get no
// user-data refuse it.
func (d *Driver) UserData(ctx context.Context, stack string, in ConfigInput) ([]byte, error) {
	if err := CheckStackName(stack); err != nil {
		return nil, err
	}
	if d.profile.userData == nil {
		if err := HasUserData(d.profile.Name()); err != nil {
			return nil, err
		}
		return nil, &UsageError{Err: errors.New("render user-data is for the target's own program, not one the caller brings")}
	}
	values, secrets, err := d.Config(ctx, stack, in)
	if err != nil {
		return nil, err
	}
	return d.profile.userData.UserData(ctx, d.deployment(stack, nil), targets.Config{Values: values, SecretKeys: secrets})
}

// Cancel frees a deployment whose owner died: it stops the processes that owner left, removes the
// stack's backend locks and marks the deployment interrupted, for resume. Locks are judged as
// recovery judges them: a live owner's lease or lock is never displaced unless force is set, and
// then a warning says what was overridden.
func (d *Driver) Cancel(ctx context.Context, stack string, force bool) (journal.Record, error) {
	if err := CheckStackName(stack); err != nil {
		return journal.Record{}, err
	}
	prev, err := d.Status(ctx, stack)
	if err != nil {
		return prev, err
	}
	if err := d.Existing(ctx, stack); err != nil {
		return prev, err
	}
	if force && prev.Leased(d.now()) && prev.LeaseOwner != d.owner {
		d.emit(stack, Event{Type: EventDiagnostic, Severity: "warning",
			Message: fmt.Sprintf("--force: taking the lease of %s, which may be alive", prev.LeaseOwner)})
	}
	dead := ownerDeadHere()
	if force {
		dead = func(string) bool { return true }
	}
	now := d.now()
	taken, err := d.journal.Acquire(ctx, stack, d.owner, now, now.Add(d.leaseTTL), dead)
	if err != nil {
		return prev, err
	}
	prev = taken // who held it as it was taken, not as it was read
	defer func() { _ = d.journal.Release(context.Background(), stack, d.owner, d.now()) }()
	d.stopLeftovers(stack, prev.LeaseOwner)
	h := &hold{d: d, stack: stack, prev: prev}
	locks, readable, err := d.judgedLocks(ctx, h, force)
	if err != nil {
		return prev, err
	}
	if !readable && !force {
		return prev, &UsageError{Err: fmt.Errorf("the locks of backend %s cannot be read to be judged: "+
			"`clawdeploy cancel --force` removes them unjudged", d.effectiveBackend)}
	}
	if len(locks) > 0 || !readable {
		if d.fileBackendDir() != "" {
			err = d.removeLockFiles(stack)
		} else {
			var s auto.Stack
			if s, err = d.stack(ctx, stack, false); err == nil {
				err = s.Cancel(ctx)
			}
		}
		if err != nil {
			return prev, fmt.Errorf("removing the backend lock of %s: %w", stack, err)
		}
		d.note(stack, "removed %d backend lock(s)", len(locks))
	}
	return d.journal.Update(ctx, stack, d.owner, d.now(), journal.Change{Interrupted: ptr(!prev.Status.Terminal())})
}

// forEach runs f on each stack, at most concurrency at a time (0: DefaultConcurrency; below 0 a
// *UsageError), calling each (when not nil) with every outcome as it comes, one call at a time,
// and returns them all. Stacks not started when ctx ends are left out.
func forEach[T any](ctx context.Context, stacks []string, concurrency int, f func(context.Context, string) T, each func(T)) ([]T, error) {
	switch {
	case concurrency < 0:
		return nil, &UsageError{Err: fmt.Errorf("--concurrency must be 1 or more, got %d", concurrency)}
	case concurrency == 0:
		concurrency = DefaultConcurrency
	}
	var (
		results []T
		mu      sync.Mutex
		wg      sync.WaitGroup
		sem     = make(chan struct{}, concurrency)
	)
	for _, stack := range stacks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			r := f(ctx, stack)
			mu.Lock()
			defer mu.Unlock()
			results = append(results, r)
			if each != nil {
				each(r)
			}
		}()
	}
	wg.Wait()
	return results, nil
}
