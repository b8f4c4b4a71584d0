package automation

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/clawdeploy/clawdeploy/images"
	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/setup"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
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
	// RefreshImage follows openclaw_image's tag: it is resolved again, and where it moved since
	// the stack pinned it, the up is an upgrade to the new digest (with its checkpoint).
	// Without it a pinned tag stays on its digest (package images).
	RefreshImage bool

	// pinned is the pin --rollback deploys again.
	pinned string
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
		in, pinned, err := d.rollbackConfig(ctx, stack, opts.Config)
		if err != nil {
			return nil, err
		}
		opts = &UpOptions{Config: in, Replace: opts.Replace, Retry: opts.Retry, pinned: pinned}
	}
	if err := d.CheckConfig(ctx, stack, opts.Config); err != nil {
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
		pin, err := d.applyUpConfig(ctx, s, opts.Config, opts)
		if err != nil {
			return err
		}
		d.noteImage(stack, pin)
		var relaunch []string
		if opts.Retry {
			relaunch = d.profile.Relaunch(stack)
		}
		// Journaled once the configuration they go with (a restore's snapshot) is the stack's.
		replace, err := d.journalReplacements(ctx, h, s, opts.Replace, relaunch)
		if err != nil {
			return h.fail(ctx, err)
		}
		if _, err := d.ignoredConfig(ctx, stack, s, ConfigInput{}, replace); err != nil {
			return h.fail(ctx, err)
		}
		settled, err := d.resolvePending(ctx, h, s, false)
		if err != nil {
			return h.fail(ctx, err)
		}
		change := journal.Change{Status: ptr(journal.Provisioning), Operation: ptr(OpUp), Interrupted: ptr(false),
			LastError: ptr(""), AddAttempt: true}
		if opts.Retry {
			change.Stage = ptr("")
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
	if d.profile.preparer != nil {
		if err := d.profile.preparer.BeforeEngine(ctx, h.lease(s)); err != nil {
			return nil, cp, h.fail(ctx, err)
		}
	}
	var outputs auto.OutputMap
	for {
		outputs, err = d.engineUp(ctx, h, s, replace, refresh)
		if err == nil {
			break
		}
		if d.profile.retrier == nil || ctx.Err() != nil {
			return nil, cp, failed(d.engineError("updating", h.stack, err))
		}
		again, reported := d.profile.retrier.AfterEngineFailure(ctx, d.deployment(h.stack, &s), err)
		if !again {
			if reported == nil {
				reported = d.engineError("updating", h.stack, err)
			}
			return nil, cp, failed(reported)
		}
		refresh = true
	}
	if err := h.update(journal.Change{Status: ptr(journal.Installing), Replacing: &[]journal.Replacement{}}); err != nil {
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

// journalReplacements records the replacements an up is asked for, each with the id its
// resource has now, so that a resume makes those the up did not (stillToReplace), and returns
// them. urns are the caller's (--replace, a restore's); relaunch are --retry's, replaced only
// when the state holds them: one it does not hold (a setup never launched, its VPS never
// delivered) the up creates anyway, and the engine refuses to replace what is not there. With
// none, it clears what an earlier up left.
func (d *Driver) journalReplacements(ctx context.Context, h *hold, s auto.Stack, urns, relaunch []string) ([]string, error) {
	if len(urns) == 0 && len(relaunch) == 0 && len(h.record.Replacing) == 0 {
		return nil, nil
	}
	replacing := []journal.Replacement{}
	urns = slices.Clone(urns)
	if len(urns) > 0 || len(relaunch) > 0 {
		state, err := exportState(ctx, s)
		if err != nil {
			return nil, err
		}
		for _, urn := range relaunch {
			if liveID(state, urn) == "" {
				d.note(h.stack, "%s is not in the state: this up creates it", urn)
				continue
			}
			urns = append(urns, urn)
		}
		for _, urn := range urns {
			replacing = append(replacing, journal.Replacement{URN: urn, ID: liveID(state, urn)})
		}
	}
	return urns, h.update(journal.Change{Replacing: &replacing})
}

// stillToReplace is what an up that continues an interrupted one must replace: the journal's
// replacements whose resource still has the id it had when that up began. One the interrupted
// up made (a new id) is not made twice; one whose resource it deleted (delete-before-replace)
// needs no --replace, as the up creates it. It refreshes the state first, so that the state
// shows what the interrupted up did in the cloud; refreshed says so, and the up that follows
// needs no refresh of its own.
func (d *Driver) stillToReplace(ctx context.Context, h *hold, s auto.Stack) (urns []string, refreshed bool, err error) {
	if len(h.record.Replacing) == 0 {
		return nil, false, nil
	}
	if err := d.refreshState(ctx, h, s); err != nil {
		return nil, false, err
	}
	state, err := exportState(ctx, s)
	if err != nil {
		return nil, true, err
	}
	for _, r := range h.record.Replacing {
		switch now := liveID(state, r.URN); {
		case now == "" || r.ID == "":
			d.note(h.stack, "%s is not in the state: the up creates it", r.URN)
		case now != r.ID:
			d.note(h.stack, "%s was replaced already (now %s): not replacing it again", r.URN, now)
		default:
			d.note(h.stack, "replacing %s, as the interrupted up was asked to: it had not", r.URN)
			urns = append(urns, r.URN)
		}
	}
	return urns, true, nil
}

// liveID is the id of urn's resource in state, not counting one marked for deletion (the
// resource a replacement superseded) or deleted already (delete-before-replace); "" when there
// is none.
func liveID(state *apitype.DeploymentV3, urn string) string {
	if state == nil {
		return ""
	}
	for _, r := range state.Resources {
		if string(r.URN) == urn && !r.Delete && !r.PendingReplacement {
			return string(r.ID)
		}
	}
	return ""
}

// waitSetup waits for the setup to complete and records its stages; the caller records how it
// ended.
func (d *Driver) waitSetup(ctx context.Context, h *hold, outputs auto.OutputMap) error {
	tracker := newStageTracker(d.profile.Stages(), h.record.Stage)
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

// UpgradeError is an up of a new image that did not reach READY: Err says why, and the message
// says how to go back.
type UpgradeError struct {
	Stack, From, To string
	Checkpoint      *Checkpoint
	Err             error
}

func (e *UpgradeError) Error() string {
	msg := fmt.Sprintf("%v\nthe new image %s did not become healthy: `clawdeploy up --rollback --stack %s` deploys %s again",
		e.Err, e.To, e.Stack, e.From)
	if e.Checkpoint != nil {
		msg += "; pre-upgrade checkpoint: " + e.Checkpoint.String()
	}
	return msg
}

// Unwrap returns why the upgrade failed.
func (e *UpgradeError) Unwrap() error { return e.Err }

// configuredImage is the OpenClaw image the stack's configuration deploys, pinned to its digest
// when it is; "" for a program of the caller's, which has no such key.
func (d *Driver) configuredImage(ctx context.Context, s auto.Stack) (string, error) {
	if !slices.Contains(d.profile.Keys().Program, stackconfig.KeyOpenClawImage) {
		return "", nil
	}
	config, err := s.GetAllConfig(ctx)
	if err != nil {
		return "", fmt.Errorf("reading the configuration of stack %s: %w", s.Name(), err)
	}
	return images.Effective(configImage(config), config[stackconfig.KeyOpenClawImagePinned].Value), nil
}

// preUpgrade takes the checkpoint before an up that deploys image over the last good one, and
// records it. An up cut short and resumed keeps the checkpoint it took. Without a checkpointer
// (a target whose data stays on its host's disk) there is none.
func (d *Driver) preUpgrade(ctx context.Context, h *hold, s auto.Stack, image string) (*Checkpoint, error) {
	from := h.record.LastGoodImage
	var cp Checkpoint
	if json.Unmarshal([]byte(h.record.Checkpoint), &cp) == nil && cp.From == from && cp.To == image {
		d.note(h.stack, "upgrade from %s to %s: the pre-upgrade checkpoint is %s", from, image, &cp)
		return &cp, nil
	}
	if d.checkpointer == nil {
		d.note(h.stack, "upgrade from %s to %s: no checkpoint for a %s deployment", from, image, d.profile.Name())
		return nil, nil
	}
	outputs, err := s.Outputs(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the outputs of %s: %w", h.stack, err)
	}
	d.note(h.stack, "upgrade from %s to %s: taking the pre-upgrade checkpoint (a backup the instance takes now, and a snapshot of the data volume)", from, image)
	taken, err := d.checkpointer.Checkpoint(ctx, h.stack, outputs, from, image)
	if err != nil {
		return nil, fmt.Errorf("the pre-upgrade checkpoint failed, so the upgrade to %s did not start: %w", image, err)
	}
	text, _ := json.Marshal(taken)
	if err := h.update(journal.Change{Checkpoint: ptr(string(text))}); err != nil {
		return nil, err
	}
	d.note(h.stack, "upgrade from %s to %s: pre-upgrade checkpoint %s", from, image, taken)
	return taken, nil
}

// rollbackConfig is the configuration of `up --rollback`: in, with the image the deployment last
// reached READY with, and that image's pin: the digest it ran, not what its tag says now. A
// deployment that reached READY before images were pinned gets its tag, resolved again.
func (d *Driver) rollbackConfig(ctx context.Context, stack string, in ConfigInput) (ConfigInput, string, error) {
	if !slices.Contains(d.profile.Keys().Program, stackconfig.KeyOpenClawImage) {
		return in, "", &UsageError{Err: fmt.Errorf("--rollback deploys the last good %s; this program has no such key", stackconfig.KeyOpenClawImage)}
	}
	for k := range in.Values {
		if fullKey(k) != fullKey(stackconfig.KeyOpenClawImage) {
			continue
		}
		return in, "", &UsageError{Err: fmt.Errorf("--rollback sets %s to the last image that reached READY: give one or the other", stackconfig.KeyOpenClawImage)}
	}
	rec, err := d.Status(ctx, stack)
	if err != nil {
		return in, "", err
	}
	if rec.LastGoodImage == "" {
		return in, "", &UsageError{Err: fmt.Errorf("deployment %s never reached READY with a recorded image: there is nothing to roll back to", stack)}
	}
	values := map[string]string{stackconfig.KeyOpenClawImage: images.Unpinned(rec.LastGoodImage)}
	maps.Copy(values, in.Values)
	d.note(stack, "rolling back to %s, the last image that reached READY", rec.LastGoodImage)
	var cp Checkpoint
	if json.Unmarshal([]byte(rec.Checkpoint), &cp) == nil && cp.From == rec.LastGoodImage {
		restore := "(docs/operator.md, \"Restore onto a running stack\")"
		if cp.Snapshot != "" {
			restore = fmt.Sprintf("(`clawdeploy restore --stack %s --snapshot %s`)", stack, cp.Snapshot)
		}
		d.note(stack, "the data stays as %s left it; if it changed the data, restore the pre-upgrade checkpoint: %s %s", cp.To, &cp, restore)
	}
	pinned := ""
	if images.Digest(rec.LastGoodImage) != "" {
		pinned = rec.LastGoodImage
	}
	return ConfigInput{Values: values, Secrets: in.Secrets}, pinned, nil
}
