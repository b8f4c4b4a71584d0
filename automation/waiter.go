package automation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/clawdeploy/clawdeploy/setup"
)

// Waiter waits until the setup script completes on the deployment's host. It calls report with
// every status it reads, and returns the final one: COMPLETE, or an error saying why not.
type Waiter interface {
	Wait(ctx context.Context, stack string, outputs auto.OutputMap, report func(setup.Status)) (setup.Status, error)
}

// WaiterFunc is a Waiter.
type WaiterFunc func(ctx context.Context, stack string, outputs auto.OutputMap, report func(setup.Status)) (setup.Status, error)

// Wait calls f.
func (f WaiterFunc) Wait(ctx context.Context, stack string, outputs auto.OutputMap, report func(setup.Status)) (setup.Status, error) {
	return f(ctx, stack, outputs, report)
}

// NoWait is a Waiter for programs without a setup script: complete at once.
var NoWait = WaiterFunc(func(context.Context, string, auto.OutputMap, func(setup.Status)) (setup.Status, error) {
	return setup.Status{State: setup.Complete}, nil
})

// SetupError is a setup that failed or did not finish in time.
type SetupError struct {
	// Status is the last status read.
	Status setup.Status
	// TimedOut reports that the budget ran out before a final status.
	TimedOut bool
	Budget   time.Duration
	// LastErr is why the last poll read nothing, when it did not.
	LastErr error
}

func (e *SetupError) Error() string {
	if e.TimedOut {
		last := string(e.Status.State)
		if last == "" {
			last = "nothing"
		}
		msg := fmt.Sprintf("the setup did not complete within %s; last status read: %s", e.Budget, last)
		if e.LastErr != nil {
			msg += "; the last poll failed: " + e.LastErr.Error()
		}
		return msg
	}
	return "the setup failed: " + e.Status.Reason
}

// errStopPolling wraps a read error that no later poll can fix: poll returns it at once.
type errStopPolling struct{ error }

func (e errStopPolling) Unwrap() error { return e.error }

// poll reads the setup's status every interval until it is final or the budget runs out. A read
// that fails is tried again at the next interval (the host may be restarting), unless it says
// to stop; the timeout names the last status read and why the last read failed, if it did.
// An interval or a budget of 0 means the default (DefaultSetupPoll, DefaultSetupTimeout).
func poll(ctx context.Context, interval, budget time.Duration, report func(setup.Status),
	read func(context.Context) (setup.Status, error)) (setup.Status, error) {
	interval = cmp.Or(interval, DefaultSetupPoll)
	budget = cmp.Or(budget, DefaultSetupTimeout)
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	var last setup.Status
	var lastErr error
	for {
		st, err := read(ctx)
		var stop errStopPolling
		switch {
		case errors.As(err, &stop):
			return last, stop.error
		case err != nil && (ctx.Err() == nil || lastErr == nil):
			// A read cut short by the end of the budget says less than the one before it.
			lastErr = err
		case err != nil:
		default:
			last, lastErr = st, nil
			report(st)
			switch st.State {
			case setup.Complete:
				return st, nil
			case setup.Failed:
				return st, &SetupError{Status: st}
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return last, &SetupError{Status: last, TimedOut: true, Budget: budget, LastErr: lastErr}
			}
			return last, ctx.Err()
		case <-time.After(interval):
		}
	}
}
