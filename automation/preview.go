package automation

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"

	"github.com/clawdeploy/clawdeploy/cost"
	"github.com/clawdeploy/clawdeploy/preview"
	"github.com/clawdeploy/clawdeploy/targets"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
)

// PreviewResult is what a preview found (package preview sums it up and renders it).
type PreviewResult = preview.Result

// StackPreview is one stack's preview in PreviewStacks.
type StackPreview = preview.Stack

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
	config, err := d.checkedConfig(ctx, stack, opts.Config)
	if err != nil {
		return nil, err
	}
	pin, err := d.previewImage(ctx, stack, config, opts)
	if err != nil {
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
	collector := &preview.Collector{Risk: d.profile.Risk}
	ch, wait := streamEvents(collector.Handle)
	popts := []optpreview.Option{optpreview.ProgressStreams(d.progress), optpreview.ErrorProgressStreams(d.progress),
		optpreview.Diff(), optpreview.EventStreams(ch)}
	in := opts.Config
	if pin != nil && pin.Pinned != config[stackconfig.KeyOpenClawImagePinned].Value {
		in = in.with(stackconfig.KeyOpenClawImagePinned, pin.Pinned)
	}
	if !in.empty() {
		file, err := d.previewConfig(ctx, stack, in)
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
	out := &PreviewResult{Changes: collector.Result(), Diff: res.StdOut}
	out.Changes.Image = imageChange(pin, opts.RefreshImage)
	if err != nil && out.Changes.Mandatory() > 0 {
		// The engine refuses a preview with a mandatory violation: the changes still say which.
		return out, &PolicyError{Stack: stack, Violations: out.Changes.Mandatory()}
	}
	if err != nil {
		return nil, d.engineError("previewing", stack, err)
	}
	if existed {
		if out.Changes.Ignored, err = d.ignoredConfig(ctx, stack, s, opts.Config, opts.Replace); err != nil {
			return nil, err
		}
	}
	if opts.Cost && d.profile.previewer != nil {
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
		values, secrets := flatten(in.over(current))
		config := targets.Config{Values: values, SecretKeys: secrets}
		if cmp, err = d.profile.previewer.Cost(ctx, d.deployment(stack, &s), config, existed); err == nil {
			return cmp
		}
	}
	return &CostComparison{Change: &cost.Estimate{Problems: []string{"no estimate: " + err.Error()}}}
}

// ignoredConfig finds, and warns of, the configuration changes the program would ignore on a
// deployed stack, with in over its configuration.
func (d *Driver) ignoredConfig(ctx context.Context, stack string, s auto.Stack, in ConfigInput, replace []string) ([]IgnoredChange, error) {
	if d.profile.previewer == nil {
		return nil, nil
	}
	current, err := s.GetAllConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the configuration of stack %s: %w", stack, err)
	}
	values, secrets := flatten(in.over(current))
	ignored, err := d.profile.previewer.Ignored(ctx, d.deployment(stack, &s), targets.Config{Values: values, SecretKeys: secrets, Replacing: replace})
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
