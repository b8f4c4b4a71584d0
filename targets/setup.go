package targets

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/clawdeploy/clawdeploy/setup"
)

// Stages are one target's stages in order, and the resource types whose completion marks each
// (a component's outputs registered, or a custom resource created). The last two stages come from
// the setup's completion poll, not the engine.
type Stages struct {
	Order  []string
	ByType map[string]string
	// Optional stages are passed over when a deployment does not have them: the recorded stage
	// moves past one that is not done once the next required stage is.
	Optional []string
}

// Setup stages, shared by every target.
const (
	StageSetupLaunched = "setup_script_launched"
	StageSetupComplete = "setup_complete"
)

// Defaults of the setup's wait. The command line's flags show the same values.
const (
	// DefaultSetupPoll is the interval between two polls of the setup's status.
	DefaultSetupPoll = 30 * time.Second
	// DefaultSetupTimeout is how long the setup may take after the engine is done.
	DefaultSetupTimeout = 20 * time.Minute
	// PollBound bounds each poll (a connection and its command, or an API call): the
	// provisioning flow's rule, so that a poll ends well within a 30 s drain window.
	PollBound = 15 * time.Second
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

// StopPolling wraps a read error that no later poll can fix: Poll returns it at once.
func StopPolling(err error) error { return stopPolling{err} }

type stopPolling struct{ error }

func (e stopPolling) Unwrap() error { return e.error }

// Poll reads the setup's status every interval until it is final or the budget runs out. A read
// that fails is tried again at the next interval (the host may be restarting), unless it says
// to stop (StopPolling); the timeout names the last status read and why the last read failed,
// if it did. An interval or a budget of 0 means the default (DefaultSetupPoll,
// DefaultSetupTimeout). Each read is given PollBound: one that takes longer fails, and the next
// interval tries again.
func Poll(ctx context.Context, interval, budget time.Duration, report func(setup.Status),
	read func(context.Context) (setup.Status, error)) (setup.Status, error) {
	interval = cmp.Or(interval, DefaultSetupPoll)
	budget = cmp.Or(budget, DefaultSetupTimeout)
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	var last setup.Status
	var lastErr error
	for {
		readCtx, cancelRead := context.WithTimeout(ctx, PollBound)
		st, err := read(readCtx)
		cancelRead()
		var stop stopPolling
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
