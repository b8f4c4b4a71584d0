package automation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"gopkg.in/yaml.v3"

	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/setup"
)

// Operations the journal records.
const (
	OpUp      = "up"
	OpDestroy = "destroy"
	OpRefresh = "refresh"
)

// UpOptions adjust Up and Preview. Nil means none.
type UpOptions struct {
	// Config is set on the stack first, once the whole is valid.
	Config ConfigInput
	// Replace forces the replacement of these URNs, as `pulumi up --replace` does: the explicit
	// way to restore the data volume from a snapshot (see the README).
	Replace []string
	// Retry starts a failed deployment over: stage reset, setup relaunched.
	Retry bool
}

// Result is where an operation left a deployment.
type Result struct {
	Record  journal.Record
	Outputs auto.OutputMap
}

// hold is a deployment this process holds: the lease, its heartbeat, and the journal writes.
type hold struct {
	d      *Driver
	stack  string
	prev   journal.Record // the record before we took it: who held it, what it was doing
	record journal.Record
	stop   chan struct{}
	done   sync.WaitGroup
	mu     sync.Mutex
}

// take acquires a deployment for this process, waiting up to WaitForLease for a live owner.
func (d *Driver) take(ctx context.Context, stack string) (*hold, error) {
	prev, err := d.journal.Ensure(ctx, stack, d.target, d.now())
	if err != nil {
		return nil, err
	}
	if prev.Target != d.target {
		// Running another target's program on a stack would delete everything it has.
		return nil, &UsageError{Err: fmt.Errorf("deployment %s is a %s deployment; run it with --target %s", stack, prev.Target, prev.Target)}
	}
	deadline := d.now().Add(d.waitLease)
	for {
		now := d.now()
		rec, err := d.journal.Acquire(ctx, stack, d.owner, now, now.Add(d.leaseTTL), ownerDeadHere())
		if err == nil {
			// The deployment is as the lease gave it to us (a holder we waited for may have
			// finished it since prev was read); prev keeps only who held it before.
			prev.Status, prev.Stage, prev.Interrupted, prev.Operation = rec.Status, rec.Stage, rec.Interrupted, rec.Operation
			prev.Attempts, prev.LastError = rec.Attempts, rec.LastError
			h := &hold{d: d, stack: stack, prev: prev, record: rec, stop: make(chan struct{})}
			if prev.LeaseOwner != "" && prev.LeaseOwner != d.owner {
				d.note(stack, "took over the deployment from %s, whose lease had expired or whose process is gone", prev.LeaseOwner)
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
		if prev, err = d.journal.Get(ctx, stack); err != nil {
			return nil, err
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
			_ = h.d.journal.Renew(context.Background(), h.stack, h.d.owner, now, now.Add(h.d.leaseTTL))
		}
	}
}

// release stops the heartbeat and gives the lease up.
func (h *hold) release() {
	close(h.stop)
	h.done.Wait()
	_ = h.d.journal.Release(context.Background(), h.stack, h.d.owner, h.d.now())
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

// run holds a deployment for one operation. body runs under the lease; when ctx is cancelled (a
// signal) it gets the drain window to checkpoint, after which the deployment is marked
// interrupted and run returns an *InterruptedError, whether or not body has returned.
func (d *Driver) run(ctx context.Context, stack, operation string, body func(ctx context.Context, h *hold) error) (journal.Record, error) {
	h, err := d.take(ctx, stack)
	if err != nil {
		return journal.Record{}, err
	}
	finished := make(chan error, 1)
	go func() { finished <- body(ctx, h) }()

	select {
	case err = <-finished:
	case <-ctx.Done():
		select {
		case err = <-finished:
		case <-time.After(d.drain):
			err = ctx.Err()
			if n := killProcessesOf(d.owner); n > 0 {
				d.note(stack, "the engine did not checkpoint within the %s drain window: killed its %d processes", d.drain, n)
			}
		}
	}
	if ctx.Err() != nil {
		_ = h.update(journal.Change{Interrupted: ptr(true), Operation: ptr(operation)})
		d.note(stack, "%s interrupted: the next `clawdeploy resume --stack %s` continues it", operation, stack)
		err = &InterruptedError{Stack: stack, Operation: operation}
	}
	h.release()
	if rec, gerr := d.journal.Get(context.Background(), stack); gerr == nil {
		return rec, err
	}
	return h.record, err
}

// engineEvents consumes the engine's events for one operation: it forwards them as the
// driver's and advances the stage. Close the returned channel's consumer by closing ch.
func (d *Driver) engineEvents(h *hold) (chan events.EngineEvent, *sync.WaitGroup) {
	ch := make(chan events.EngineEvent)
	var wg sync.WaitGroup
	tracker := newStageTracker(d.stages, h.record.Stage)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for e := range ch {
			if ev, ok := engineEvent(e); ok {
				d.emit(h.stack, ev)
			}
			if s, ok := tracker.stageOf(e); ok {
				h.completed(tracker, s)
			}
		}
	}()
	return ch, &wg
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
// refusal that says nothing about the deployment: a live lock, an unknown stack.
func (h *hold) fail(ctx context.Context, err error) error {
	var (
		lock     *LockHeldError
		notFound *NotFoundError
	)
	if errors.As(err, &lock) || errors.As(err, &notFound) {
		return err
	}
	if ctx.Err() == nil {
		_ = h.update(journal.Change{Status: ptr(journal.Error), LastError: ptr(err.Error())})
	}
	return err
}

// Up creates or updates the deployment, then waits for its setup to complete. The journal goes
// PROVISIONING, INSTALLING, READY (or ERROR).
func (d *Driver) Up(ctx context.Context, stack string, opts *UpOptions) (*Result, error) {
	if opts == nil {
		opts = &UpOptions{}
	}
	if err := d.checkKeys(opts.Config); err != nil {
		return nil, err
	}
	if err := d.checkNewStack(ctx, stack, opts.Config); err != nil {
		return nil, err
	}
	var out auto.OutputMap
	rec, err := d.run(ctx, stack, OpUp, func(ctx context.Context, h *hold) error {
		s, err := d.recover(ctx, h, true)
		if err != nil {
			return h.fail(ctx, err)
		}
		if err := d.applyConfig(ctx, s, opts.Config); err != nil {
			return err
		}
		settled, err := d.resolvePending(ctx, h, s, false)
		if err != nil {
			return h.fail(ctx, err)
		}
		replace := opts.Replace
		change := journal.Change{Status: ptr(journal.Provisioning), Operation: ptr(OpUp), Interrupted: ptr(false),
			LastError: ptr(""), AddAttempt: true}
		if opts.Retry {
			change.Stage = ptr("")
			replace = append(slices.Clone(replace), d.relaunch(stack)...)
			d.note(stack, "retrying from a clean start: stage reset, setup relaunched")
		}
		if err := h.update(change); err != nil {
			return err
		}
		// After an interruption the state may lag the cloud: refresh first.
		refresh := settled || h.prev.Interrupted || (!h.prev.Status.Terminal() && h.prev.Status != journal.Pending)
		out, err = d.upAndWait(ctx, h, s, replace, refresh)
		return err
	})
	return &Result{Record: rec, Outputs: out}, err
}

// checkNewStack validates the configuration of a stack that does not exist yet, before anything
// (the stack included) is created: exit 2 means nothing was touched. In operator mode the
// configuration is the stack file, Pulumi.<stack>.yaml, with in over it. An existing stack's
// configuration is validated once it is open, before any change.
func (d *Driver) checkNewStack(ctx context.Context, stack string, in ConfigInput) error {
	if !d.defaults {
		return nil
	}
	_, err := d.stack(ctx, stack, false)
	var notFound *NotFoundError
	if !errors.As(err, &notFound) {
		return nil
	}
	values := map[string]string{}
	secret := map[string]bool{}
	if d.projectDir != "" {
		if err := readStackFile(filepath.Join(d.projectDir, "Pulumi."+stack+".yaml"), values, secret); err != nil {
			return &ConfigError{Err: err}
		}
	}
	for k, v := range in.Values {
		values[fullKey(k)] = v
		secret[fullKey(k)] = false
	}
	for k, v := range in.Secrets {
		values[fullKey(k)] = v
		secret[fullKey(k)] = true
	}
	var secrets []string
	for k, isSecret := range secret {
		if isSecret {
			secrets = append(secrets, k)
		}
	}
	slices.Sort(secrets)
	if err := d.check("openclaw", stack, values, secrets); err != nil {
		return &ConfigError{Err: err}
	}
	return nil
}

// readStackFile reads a stack file's config into values, for validation: a secure (encrypted)
// value is marked secret and stands in as a placeholder, since only its presence is checked. A
// missing file adds nothing.
func readStackFile(path string, values map[string]string, secret map[string]bool) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	var file struct {
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		return fmt.Errorf("%s is not a stack file: %w", path, err)
	}
	for k, v := range file.Config {
		k = fullKey(k)
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["secure"]; ok {
				values[k], secret[k] = "[encrypted]", true
				continue
			}
			j, _ := json.Marshal(v)
			values[k] = string(j)
		case []any:
			j, _ := json.Marshal(v)
			values[k] = string(j)
		default:
			values[k] = fmt.Sprint(v)
		}
	}
	return nil
}

// upAndWait runs the engine's up, then the setup wait.
func (d *Driver) upAndWait(ctx context.Context, h *hold, s auto.Stack, replace []string, refresh bool) (auto.OutputMap, error) {
	ch, wg := d.engineEvents(h)
	uopts := []optup.Option{optup.ProgressStreams(d.progress), optup.ErrorProgressStreams(d.progress), optup.EventStreams(ch)}
	if len(replace) > 0 {
		uopts = append(uopts, optup.Replace(replace))
	}
	if refresh {
		uopts = append(uopts, optup.Refresh())
	}
	err := d.withLockRecovery(ctx, h, s, func() error {
		_, err := s.Up(ctx, uopts...)
		return err
	})
	wg.Wait()
	if err != nil {
		return nil, h.fail(ctx, d.engineError("updating", h.stack, err))
	}
	outputs, err := s.Outputs(ctx)
	if err != nil {
		return nil, h.fail(ctx, fmt.Errorf("reading the outputs of %s: %w", h.stack, err))
	}
	if err := h.update(journal.Change{Status: ptr(journal.Installing)}); err != nil {
		return outputs, err
	}
	return outputs, d.waitSetup(ctx, h, outputs)
}

// waitSetup waits for the setup to complete and records its stages.
func (d *Driver) waitSetup(ctx context.Context, h *hold, outputs auto.OutputMap) error {
	tracker := newStageTracker(d.stages, h.record.Stage)
	report := func(st setup.Status) {
		if st.State == setup.Running || st.State == setup.Complete {
			h.completed(tracker, StageSetupLaunched)
		}
	}
	st, err := d.waiter.Wait(ctx, h.stack, outputs, report)
	if err != nil {
		return h.fail(ctx, err)
	}
	if st.State == setup.Complete {
		h.completed(tracker, StageSetupLaunched) // a first poll may find the setup complete already
		h.completed(tracker, StageSetupComplete)
		// The token is stored as the gatewayToken output (a secret); the host must use that one.
		if want, ok := outputs["gatewayToken"].Value.(string); ok && st.Token != "" && st.Token != want {
			d.emit(h.stack, Event{Type: EventDiagnostic, Severity: "warning", Message: "the gateway reports a token " +
				"other than the gatewayToken output; read the host's with `openclaw config get gateway.auth.token`"})
		}
	}
	return h.update(journal.Change{Status: ptr(journal.Ready)})
}

// engineError wraps a failed engine run.
func (d *Driver) engineError(op, stack string, err error) error {
	var lock *LockHeldError
	if errors.As(err, &lock) {
		return err
	}
	return &EngineError{Op: op, Stack: stack, Err: err, Streamed: d.progress != io.Discard}
}

// Preview shows what Up would change, creating the stack when it does not exist yet. It takes no
// lease and changes nothing but the stack's configuration.
func (d *Driver) Preview(ctx context.Context, stack string, opts *UpOptions) (auto.PreviewResult, error) {
	if opts == nil {
		opts = &UpOptions{}
	}
	if err := d.checkKeys(opts.Config); err != nil {
		return auto.PreviewResult{}, err
	}
	if err := d.checkNewStack(ctx, stack, opts.Config); err != nil {
		return auto.PreviewResult{}, err
	}
	s, err := d.stack(ctx, stack, true)
	if err != nil {
		return auto.PreviewResult{}, err
	}
	if err := d.applyConfig(ctx, s, opts.Config); err != nil {
		return auto.PreviewResult{}, err
	}
	popts := []optpreview.Option{optpreview.ProgressStreams(d.progress), optpreview.ErrorProgressStreams(d.progress)}
	if len(opts.Replace) > 0 {
		popts = append(popts, optpreview.Replace(opts.Replace))
	}
	res, err := s.Preview(ctx, popts...)
	if err != nil {
		return res, d.engineError("previewing", stack, err)
	}
	return res, nil
}

// Destroy deletes every resource of the deployment: DESTROYING, then DESTROYED.
func (d *Driver) Destroy(ctx context.Context, stack string) (*Result, error) {
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
		return d.destroy(ctx, h, s)
	})
	return &Result{Record: rec}, err
}

func (d *Driver) destroy(ctx context.Context, h *hold, s auto.Stack) error {
	ch, wg := d.engineEvents(h)
	err := d.withLockRecovery(ctx, h, s, func() error {
		_, err := s.Destroy(ctx, optdestroy.ProgressStreams(d.progress), optdestroy.ErrorProgressStreams(d.progress),
			optdestroy.EventStreams(ch))
		return err
	})
	wg.Wait()
	if err != nil {
		return h.fail(ctx, d.engineError("destroying", h.stack, err))
	}
	return h.update(journal.Change{Status: ptr(journal.Destroyed), Stage: ptr("")})
}

// Refresh reads every resource back from the cloud into the state.
func (d *Driver) Refresh(ctx context.Context, stack string) (*Result, error) {
	rec, err := d.run(ctx, stack, OpRefresh, func(ctx context.Context, h *hold) error {
		s, err := d.recover(ctx, h, false)
		if err != nil {
			return err
		}
		if _, err := d.resolvePending(ctx, h, s, false); err != nil { // the refresh follows
			return err
		}
		ch, wg := d.engineEvents(h)
		err = d.withLockRecovery(ctx, h, s, func() error {
			_, err := s.Refresh(ctx, optrefresh.ProgressStreams(d.progress), optrefresh.ErrorProgressStreams(d.progress),
				optrefresh.EventStreams(ch))
			return err
		})
		wg.Wait()
		if err != nil {
			return d.engineError("refreshing", stack, err)
		}
		return nil
	})
	return &Result{Record: rec}, err
}

// Outputs returns the stack's outputs.
func (d *Driver) Outputs(ctx context.Context, stack string) (auto.OutputMap, error) {
	s, err := d.stack(ctx, stack, false)
	if err != nil {
		return nil, err
	}
	return s.Outputs(ctx)
}

// Status returns the journal's record of a deployment.
func (d *Driver) Status(ctx context.Context, stack string) (journal.Record, error) {
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

// Cancel frees a deployment whose owner died: it stops the processes that owner left, removes the
// stack's backend lock and marks the deployment interrupted, for resume. A live owner is never
// displaced unless force is set.
func (d *Driver) Cancel(ctx context.Context, stack string, force bool) (journal.Record, error) {
	prev, err := d.Status(ctx, stack)
	if err != nil {
		return prev, err
	}
	if force && prev.Leased(d.now()) && prev.LeaseOwner != d.owner {
		d.note(stack, "forcing the lease of %s away", prev.LeaseOwner)
	}
	dead := ownerDeadHere()
	if force {
		dead = func(string) bool { return true }
	}
	now := d.now()
	if _, err := d.journal.Acquire(ctx, stack, d.owner, now, now.Add(d.leaseTTL), dead); err != nil {
		return prev, err
	}
	defer func() { _ = d.journal.Release(context.Background(), stack, d.owner, d.now()) }()
	if prev.LeaseOwner != "" && prev.LeaseOwner != d.owner {
		if n := stopOrphans(prev.LeaseOwner, d.drain); n > 0 {
			d.note(stack, "stopped %d processes left by %s", n, prev.LeaseOwner)
		}
	}
	s, err := d.stack(ctx, stack, false)
	if err != nil {
		return prev, err
	}
	if err := s.Cancel(ctx); err != nil {
		return prev, fmt.Errorf("removing the backend lock of %s: %w", stack, err)
	}
	rec, err := d.journal.Update(ctx, stack, d.owner, d.now(), journal.Change{Interrupted: ptr(!prev.Status.Terminal())})
	return rec, err
}
