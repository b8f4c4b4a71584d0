package automation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
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

// SSMWaiter polls the SSM parameter an ec2-spot instance publishes its setup status to. The value
// is "<instance-id> <status line>": a line from another instance (a replaced one) counts as
// NOT_STARTED.
type SSMWaiter struct {
	// Interval between polls; 0 means 30 s.
	Interval time.Duration
	// Budget for the whole wait; 0 means 20 min.
	Budget time.Duration
	// Client reads the parameter; nil means one from the default AWS configuration (environment,
	// shared config, instance role), with the stack's region.
	Client interface {
		GetParameter(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	}
}

// Wait polls until COMPLETE, FAILED or the budget runs out.
func (w SSMWaiter) Wait(ctx context.Context, stack string, outputs auto.OutputMap, report func(setup.Status)) (setup.Status, error) {
	param, _ := outputs["setupStatusParameter"].Value.(string)
	instance, _ := outputs["instanceId"].Value.(string)
	region, _ := outputs["region"].Value.(string)
	if param == "" || instance == "" {
		return setup.Status{}, fmt.Errorf("stack %s has no setupStatusParameter or instanceId output to wait on", stack)
	}
	client := w.Client
	if client == nil {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return setup.Status{}, fmt.Errorf("loading the AWS configuration: %w", err)
		}
		if region != "" {
			cfg.Region = region
		}
		client = ssm.NewFromConfig(cfg)
	}
	return poll(ctx, w.Interval, w.Budget, report, func(ctx context.Context) (setup.Status, error) {
		return w.read(ctx, client, param, instance)
	})
}

// errStopPolling wraps a read error that no later poll can fix: poll returns it at once.
type errStopPolling struct{ error }

func (e errStopPolling) Unwrap() error { return e.error }

// poll reads the setup's status every interval until it is final or the budget runs out. A read
// that fails is tried again at the next interval (the host may be restarting), unless it says
// to stop; the timeout names the last status read and why the last read failed, if it did.
// An interval of 0 means 30 s, a budget of 0 means 20 min.
func poll(ctx context.Context, interval, budget time.Duration, report func(setup.Status),
	read func(context.Context) (setup.Status, error)) (setup.Status, error) {
	if interval == 0 {
		interval = 30 * time.Second
	}
	if budget == 0 {
		budget = 20 * time.Minute
	}
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
		case err != nil:
			lastErr = err
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

func (w SSMWaiter) read(ctx context.Context, client interface {
	GetParameter(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}, param, instance string) (setup.Status, error) {
	out, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(param), WithDecryption: aws.Bool(true)})
	if err != nil {
		return setup.Status{}, err
	}
	value := aws.ToString(out.Parameter.Value)
	id, line, ok := strings.Cut(value, " ")
	if !ok || id != instance {
		return setup.Status{State: setup.NotStarted}, nil
	}
	return setup.ParseStatus(line)
}
