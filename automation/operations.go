package automation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/clawdeploy/clawdeploy/cost"
	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/ordering"
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
	// way to restore the data volume from a snapshot (see docs/operator.md).
	Replace []string
	// Retry starts a failed deployment over: stage reset, setup relaunched.
	Retry bool
	// Rollback deploys again the OpenClaw image the deployment last reached READY with (the
	// journal's), undoing an upgrade that did not become healthy. The data stays as the new image
	// left it: the pre-upgrade checkpoint is named to restore it from.
	Rollback bool
	// Cost, for a preview, estimates the monthly cost now and after the change (ec2-spot).
	Cost bool
	// PolicyPacks, for a preview, are policy pack directories the engine runs against the
	// program; their violations go into the changes, and a mandatory one fails the preview.
	PolicyPacks []string
}

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

// Up creates or updates the deployment, then waits for its setup to complete. The journal goes
// PROVISIONING, INSTALLING, READY (or ERROR).
func (d *Driver) Up(ctx context.Context, stack string, opts *UpOptions) (*Result, error) {
	if err := CheckStackName(stack); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &UpOptions{}
	}
	if opts.Rollback {
		in, err := d.rollbackConfig(ctx, stack, opts.Config)
		if err != nil {
			return nil, err
		}
		opts = &UpOptions{Config: in, Replace: opts.Replace, Retry: opts.Retry}
	}
	if err := d.checkConfig(ctx, stack, opts.Config); err != nil {
		return nil, err
	}
	var (
		out auto.OutputMap
		cp  *Checkpoint
	)
	rec, err := d.run(ctx, stack, OpUp, func(ctx context.Context, h *hold) error {
		s, err := d.recover(ctx, h, true)
		if err != nil {
			return h.fail(ctx, err)
		}
		if err := d.applyConfig(ctx, s, opts.Config); err != nil {
			return err
		}
		if _, err := d.ignoredConfig(ctx, stack, s, ConfigInput{}); err != nil {
			return h.fail(ctx, err)
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
			replace = append(slices.Clone(replace), d.profile.relaunch(stack)...)
			d.note(stack, "retrying from a clean start: stage reset, setup relaunched")
		}
		if err := h.update(change); err != nil {
			return err
		}
		// After an interruption the state may lag the cloud: refresh first.
		refresh := settled || h.prev.Interrupted || (!h.prev.Status.Terminal() && h.prev.Status != journal.Pending)
		out, cp, err = d.upAndWait(ctx, h, s, replace, refresh)
		return err
	})
	return &Result{Record: rec, Outputs: out, Checkpoint: cp}, err
}

// upAndWait runs the engine's up, then the setup wait. An up that deploys another image than
// the last one that reached READY is an upgrade: a checkpoint is taken first, and a failure
// says how to roll back.
func (d *Driver) upAndWait(ctx context.Context, h *hold, s auto.Stack, replace []string, refresh bool) (auto.OutputMap, *Checkpoint, error) {
	image, err := d.configuredImage(ctx, s)
	if err != nil {
		return nil, nil, h.fail(ctx, err)
	}
	var cp *Checkpoint
	upgrade := image != "" && h.record.LastGoodImage != "" && image != h.record.LastGoodImage
	if upgrade {
		if cp, err = d.preUpgrade(ctx, h, s, image); err != nil {
			return nil, nil, h.fail(ctx, err)
		}
	}
	// A failure of an upgrade says, in the journal too, how to roll back.
	failed := func(err error) error {
		if upgrade && ctx.Err() == nil {
			err = &UpgradeError{Stack: h.stack, From: h.record.LastGoodImage, To: image, Checkpoint: cp, Err: err}
		}
		return h.fail(ctx, err)
	}
	if d.profile.beforeEngine != nil {
		if err := d.profile.beforeEngine(ctx, d, h, s); err != nil {
			return nil, cp, h.fail(ctx, err)
		}
	}
	var outputs auto.OutputMap
	for {
		outputs, err = d.engineUp(ctx, h, s, replace, refresh)
		if err == nil {
			break
		}
		if d.profile.afterEngineFailure == nil || ctx.Err() != nil {
			return nil, cp, failed(d.engineError("updating", h.stack, err))
		}
		again, reported := d.profile.afterEngineFailure(ctx, d, h.stack, s, err)
		if !again {
			if reported == nil {
				reported = d.engineError("updating", h.stack, err)
			}
			return nil, cp, failed(reported)
		}
		refresh = true
	}
	if err := h.update(journal.Change{Status: ptr(journal.Installing)}); err != nil {
		return outputs, cp, err
	}
	if err := d.waitSetup(ctx, h, outputs); err != nil {
		return outputs, cp, failed(err)
	}
	ready := journal.Change{Status: ptr(journal.Ready)}
	if image != "" {
		ready.LastGoodImage = ptr(image)
	}
	return outputs, cp, h.update(ready)
}

// waitSetup waits for the setup to complete and records its stages; the caller records how it
// ended.
func (d *Driver) waitSetup(ctx context.Context, h *hold, outputs auto.OutputMap) error {
	tracker := newStageTracker(d.profile.stages, h.record.Stage)
	report := func(st setup.Status) {
		if st.State == setup.Running || st.State == setup.Complete {
			h.completed(tracker, StageSetupLaunched)
		}
	}
	st, err := d.waiter.Wait(ctx, h.stack, outputs, report)
	if err != nil {
		return err
	}
	if st.State == setup.Complete {
		h.completed(tracker, StageSetupLaunched) // a first poll may find the setup complete already
		h.completed(tracker, StageSetupComplete)
		// The token is stored as the gatewayToken output (a secret); the host must use that one.
		if want, ok := outputs["gateway_token"].Value.(string); ok && st.Token != "" && st.Token != want {
			d.emit(h.stack, Event{Type: EventDiagnostic, Severity: "warning", Message: "the gateway reports a token " +
				"other than the gateway_token output; read the host's with `openclaw config get gateway.auth.token`"})
		}
	}
	return nil
}

// engineError wraps a failed engine run.
func (d *Driver) engineError(op, stack string, err error) error {
	var lock *LockHeldError
	if errors.As(err, &lock) {
		return err
	}
	return &EngineError{Op: op, Stack: stack, Err: err, Streamed: d.progress != io.Discard}
}

// engineUp runs the engine's up once, its events forwarded and its stages recorded.
//
// It returns the stack's outputs as the engine's up read them after the update: reading them
// again would cost two more CLI runs.
func (d *Driver) engineUp(ctx context.Context, h *hold, s auto.Stack, replace []string, refresh bool) (auto.OutputMap, error) {
	ch, wait := d.engineEvents(h)
	uopts := []optup.Option{optup.ProgressStreams(d.progress), optup.ErrorProgressStreams(d.progress), optup.EventStreams(ch)}
	if len(replace) > 0 {
		uopts = append(uopts, optup.Replace(replace))
	}
	if refresh {
		uopts = append(uopts, optup.Refresh())
	}
	var outputs auto.OutputMap
	err := d.withLockRecovery(ctx, h, s, func() error {
		res, err := s.Up(ctx, uopts...)
		outputs = res.Outputs
		return err
	})
	wait()
	return outputs, err
}

// PreviewResult is what a preview found.
type PreviewResult struct {
	// Changes sums the preview up for reviewers: counts, risks, ignored configuration.
	Changes *Changes
	// Diff is the engine's own rendering of the changes, property by property.
	Diff string
	// Cost is the monthly cost now and after, when asked for (UpOptions.Cost).
	Cost *CostComparison
}

// Preview shows what Up would change. It takes no lease and changes nothing: the configuration
// given is previewed from a copy of the stack file, and a stack that did not exist is removed
// again.
func (d *Driver) Preview(ctx context.Context, stack string, opts *UpOptions) (*PreviewResult, error) {
	if err := CheckStackName(stack); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &UpOptions{}
	}
	if err := d.checkConfig(ctx, stack, opts.Config); err != nil {
		return nil, err
	}
	s, err := d.stack(ctx, stack, false)
	var notFound *NotFoundError
	existed := !errors.As(err, &notFound)
	if !existed {
		// The engine previews a stack: make one for the preview and remove it after, with the
		// operator's stack file as it was (stack init adds its encryption salt to it).
		before, _ := os.ReadFile(d.stackFile(stack))
		if s, err = d.stack(ctx, stack, true); err == nil {
			defer func() {
				if rerr := d.removeStack(context.WithoutCancel(ctx), stack, before); rerr != nil {
					d.emit(stack, Event{Type: EventDiagnostic, Severity: "warning",
						Message: "removing the stack made for the preview: " + rerr.Error()})
				}
			}()
		}
	}
	if err != nil {
		return nil, err
	}
	collector := &changesCollector{}
	ch, wait := streamEvents(collector.handle)
	popts := []optpreview.Option{optpreview.ProgressStreams(d.progress), optpreview.ErrorProgressStreams(d.progress),
		optpreview.Diff(), optpreview.EventStreams(ch)}
	if !opts.Config.empty() {
		file, err := d.previewConfig(ctx, stack, opts.Config)
		if err != nil {
			return nil, err
		}
		defer func() { _ = os.Remove(file) }()
		popts = append(popts, optpreview.ConfigFile(file))
	}
	if len(opts.Replace) > 0 {
		popts = append(popts, optpreview.Replace(opts.Replace))
	}
	if len(opts.PolicyPacks) > 0 {
		popts = append(popts, optpreview.PolicyPacks(opts.PolicyPacks...))
	}
	res, err := s.Preview(ctx, popts...)
	wait()
	out := &PreviewResult{Changes: collector.result(), Diff: res.StdOut}
	if err != nil && out.Changes.Mandatory() > 0 {
		// The engine refuses a preview with a mandatory violation: the changes still say which.
		return out, &PolicyError{Stack: stack, Violations: out.Changes.Mandatory()}
	}
	if err != nil {
		return nil, d.engineError("previewing", stack, err)
	}
	if existed {
		if out.Changes.Ignored, err = d.ignoredConfig(ctx, stack, s, opts.Config); err != nil {
			return nil, err
		}
	}
	if opts.Cost && d.profile.cost != nil {
		out.Cost = d.estimateCost(ctx, stack, s, opts.Config, existed)
	}
	return out, nil
}

// PreviewStacks previews several stacks with the same options, at most concurrency at a time
// (0: DefaultConcurrency), and returns them by stack name; each, when not nil, gets every
// outcome as it comes, one call at a time. No stacks means every deployment the driver knows:
// the journal's and, in operator mode, those of the project's stack files (Pulumi.<stack>.yaml).
func (d *Driver) PreviewStacks(ctx context.Context, stacks []string, opts *UpOptions, concurrency int, each func(StackPreview)) ([]StackPreview, error) {
	if len(stacks) == 0 {
		var err error
		if stacks, err = d.knownStacks(ctx); err != nil {
			return nil, err
		}
	}
	for _, s := range stacks {
		if err := CheckStackName(s); err != nil {
			return nil, err
		}
	}
	out, err := forEach(ctx, stacks, concurrency, func(ctx context.Context, stack string) StackPreview {
		res, err := d.Preview(ctx, stack, opts)
		return StackPreview{Stack: stack, Result: res, Err: err}
	}, each)
	slices.SortFunc(out, func(a, b StackPreview) int { return strings.Compare(a.Stack, b.Stack) })
	return out, err
}

// knownStacks are the journal's deployments and, in operator mode, the project's stack files.
func (d *Driver) knownStacks(ctx context.Context) ([]string, error) {
	records, err := d.journal.List(ctx)
	if err != nil {
		return nil, err
	}
	var stacks []string
	for _, r := range records {
		stacks = append(stacks, r.Stack)
	}
	if d.projectDir != "" {
		files, _ := filepath.Glob(filepath.Join(d.projectDir, "Pulumi.*.yaml"))
		for _, f := range files {
			name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "Pulumi."), ".yaml")
			if CheckStackName(name) == nil && !slices.Contains(stacks, name) {
				stacks = append(stacks, name)
			}
		}
	}
	slices.Sort(stacks)
	if len(stacks) == 0 {
		return nil, &UsageError{Err: errors.New("no deployments to preview: the journal knows none and there is no Pulumi.<stack>.yaml")}
	}
	return stacks, nil
}

// estimateCost prices the stack now and with in applied; what cannot be priced is a problem of
// the estimate, never an error of the preview.
func (d *Driver) estimateCost(ctx context.Context, stack string, s auto.Stack, in ConfigInput, existed bool) *CostComparison {
	current, err := s.GetAllConfig(ctx)
	if err == nil {
		var cmp *CostComparison
		if cmp, err = d.profile.cost(ctx, d, stack, s, in.over(current), existed); err == nil {
			return cmp
		}
	}
	return &CostComparison{Change: &cost.Estimate{Problems: []string{"no estimate: " + err.Error()}}}
}

// ignoredConfig finds, and warns of, the configuration changes the program would ignore on a
// deployed stack, with in over its configuration.
func (d *Driver) ignoredConfig(ctx context.Context, stack string, s auto.Stack, in ConfigInput) ([]IgnoredChange, error) {
	if d.profile.ignored == nil {
		return nil, nil
	}
	current, err := s.GetAllConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the configuration of stack %s: %w", stack, err)
	}
	ignored, err := d.profile.ignored(ctx, d, stack, s, in.over(current))
	for _, i := range ignored {
		d.emit(stack, Event{Type: EventDiagnostic, Severity: "warning", Message: fmt.Sprintf(
			"config %s changed from %q to %q, which this stack ignores: %s. Instead, %s", i.Key, i.From, i.To, i.Reason, i.Instead)})
	}
	return ignored, err
}

// previewConfig writes the stack's configuration with in over it to a copy of the stack file,
// for a preview: the stack's own configuration stays as it is.
func (d *Driver) previewConfig(ctx context.Context, stack string, in ConfigInput) (string, error) {
	b, err := os.ReadFile(d.stackFile(stack))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading the configuration of stack %s: %w", stack, err)
	}
	f, err := os.CreateTemp(d.workDir(stack), ".preview-*.yaml")
	if err != nil {
		return "", fmt.Errorf("writing the preview's configuration of stack %s: %w", stack, err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.setConfig(ctx, stack, f.Name(), in)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// Destroy deletes every resource of the deployment: DESTROYING, then DESTROYED.
func (d *Driver) Destroy(ctx context.Context, stack string) (*Result, error) {
	if err := CheckStackName(stack); err != nil {
		return nil, err
	}
	if err := d.existing(ctx, stack); err != nil {
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

// existing refuses, before anything is touched, a stack the backend provably does not hold (a
// *NotFoundError) and a stack of another target (a *UsageError). A stack that cannot be opened
// for another reason is for recovery.
func (d *Driver) existing(ctx context.Context, stack string) error {
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
	if d.profile.release != nil {
		if released, err = d.profile.release(ctx, d, h, s); err != nil {
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
	if err := d.existing(ctx, stack); err != nil {
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
	if err := HasUserData(d.profile.name); err != nil {
		return nil, err
	}
	return d.profile.userData(ctx, d, stack, in)
}

// HasUserData returns a *UsageError when the target's hosts get no user-data.
func HasUserData(target string) error {
	if p, ok := profiles[target]; !ok || p.userData == nil {
		return &UsageError{Err: fmt.Errorf("render user-data is for the %s target: a %s host gets no user-data, its setup script is launched over SSH",
			TargetEC2Spot, target)}
	}
	return nil
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
	if err := d.existing(ctx, stack); err != nil {
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
