package automation

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/targets"
	"github.com/clawdeploy/clawdeploy/targets/ec2spot"
	"github.com/clawdeploy/clawdeploy/targets/vps"
)

// registry lists the targets, the default first. A new target is one line here and a package of
// its own under targets/ (docs/architecture.md says what else it touches).
var registry = []targets.Target{
	ec2spot.Target{},
	vps.Target{},
}

// DefaultTarget is the target of a driver whose options name none.
func DefaultTarget() string { return registry[0].Name() }

// lookup returns the target named name, or a *UsageError naming the targets there are.
func lookup(name string) (targets.Target, error) {
	for _, t := range registry {
		if t.Name() == name {
			return t, nil
		}
	}
	return nil, &UsageError{Err: fmt.Errorf("target %q is not one of %s", name, targetNames(func(targets.Target) bool { return true }))}
}

// targetNames lists the names of the targets that have what has asks for, for messages.
func targetNames(has func(targets.Target) bool) string {
	var names []string
	for _, t := range registry {
		if has(t) {
			names = append(names, t.Name())
		}
	}
	return strings.Join(names, ", ")
}

// TargetsWith names the targets that implement T (one of the optional interfaces of package
// targets, such as targets.DataVolume), for help texts: "ec2-spot", or "ec2-spot, vps".
func TargetsWith[T any]() string { return targetNames(isA[T]) }

// TargetInfo describes a target, for help texts.
type TargetInfo struct {
	Name string
	// Summary is a short description, in lines that fit a terminal.
	Summary string
	// Keys are the configuration keys its program reads.
	Keys []string
}

// Targets describes every target, by name.
func Targets() []TargetInfo {
	var out []TargetInfo
	for _, t := range registry {
		out = append(out, TargetInfo{Name: t.Name(), Summary: t.Summary(), Keys: slices.Clone(t.Keys().Help)})
	}
	slices.SortFunc(out, func(a, b TargetInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// DefaultProjectDir is the project directory of a target when none is given: the current
// directory when the target runs from a checkout and it holds a Pulumi.yaml (operator mode),
// else empty (backend mode).
func DefaultProjectDir(target string) string {
	t, err := lookup(target)
	if err != nil || !t.FromCheckout() {
		return ""
	}
	if _, err := os.Stat(filepath.Join(".", "Pulumi.yaml")); err != nil {
		return ""
	}
	return "."
}

// HasUserData returns a *UsageError when the target's hosts get no user-data.
func HasUserData(target string) error {
	t, err := lookup(target)
	if err != nil {
		return err
	}
	if _, ok := t.(targets.UserDataRenderer); !ok {
		return &UsageError{Err: fmt.Errorf("render user-data is for the %s target: a %s host gets no user-data",
			targetNames(isA[targets.UserDataRenderer]), target)}
	}
	return nil
}

// isA reports whether a target has the optional interface T.
func isA[T any](t targets.Target) bool {
	_, ok := t.(T)
	return ok
}

// profile is the driver's target with what its Options replace (a program of the caller's,
// stages, relaunch: the embedded Target answers with them), and the optional interfaces the
// target has, asked once. A program the caller brings (Options.Program) keeps of the target only
// what acts on the target's own keys and resources outside the program: its name, finder, step
// before the engine, release, and the runbook's data volume; nothing of the target's program
// (keys, validation, project definition, stages, setup wait, relaunch, cost, heal, checkpoints).
type profile struct {
	targets.Target
	// own is false for a program the caller brings: its configuration is not validated and
	// takes any key.
	own bool

	preparer   targets.Preparer
	releaser   targets.Releaser
	retrier    targets.Retrier
	previewer  targets.Previewer
	userData   targets.UserDataRenderer
	healer     targets.Healer
	upgrader   targets.Upgrader
	dataVolume targets.DataVolume
}

// resolveProfile returns the target opts names with what opts replaces.
func resolveProfile(opts *Options) (profile, error) {
	name := opts.Target
	if name == "" {
		name = DefaultTarget()
	}
	t, err := lookup(name)
	if err != nil {
		return profile{}, err
	}
	p := profile{Target: t, own: true}
	p.preparer, _ = t.(targets.Preparer)
	p.releaser, _ = t.(targets.Releaser)
	p.dataVolume, _ = t.(targets.DataVolume)
	switch {
	case opts.Program != nil:
		p.Target, p.own = brought{Target: t, program: opts.Program}, false
	case opts.ProjectDir != "" && !t.FromCheckout():
		return profile{}, &UsageError{Err: fmt.Errorf("target %s runs with its built-in project, not the one in %s (the %s project): "+
			"run it without a project directory", name, opts.ProjectDir, targetNames(func(t targets.Target) bool { return t.FromCheckout() }))}
	default:
		p.retrier, _ = t.(targets.Retrier)
		p.previewer, _ = t.(targets.Previewer)
		p.userData, _ = t.(targets.UserDataRenderer)
		p.healer, _ = t.(targets.Healer)
		p.upgrader, _ = t.(targets.Upgrader)
	}
	if opts.Stages != nil || opts.RelaunchURNs != nil {
		p.Target = replaced{Target: p.Target, stages: opts.Stages, relaunch: opts.RelaunchURNs}
	}
	return p, nil
}

// brought is a target running a program the caller brings: none of the target's own program's
// keys, validation, project definition, stages, setup wait or relaunch.
type brought struct {
	targets.Target
	program pulumi.RunFunc
}

func (b brought) Program() pulumi.RunFunc                               { return b.program }
func (brought) Stages() targets.Stages                                  { return targets.Stages{} }
func (brought) Keys() targets.Keys                                      { return targets.Keys{} }
func (brought) Check(string, string, map[string]string, []string) error { return nil }
func (brought) ProjectYAML() []byte                                     { return nil }
func (brought) FromCheckout() bool                                      { return true }
func (brought) NewWaiter(time.Duration, time.Duration) targets.Waiter   { return targets.NoWait }
func (brought) Relaunch(string) []string                                { return nil }

// replaced is a target whose stages or relaunch the driver's Options replace (nil: the target's).
type replaced struct {
	targets.Target
	stages   *targets.Stages
	relaunch func(stack string) []string
}

func (r replaced) Stages() targets.Stages {
	if r.stages != nil {
		return *r.stages
	}
	return r.Target.Stages()
}

func (r replaced) Relaunch(stack string) []string {
	if r.relaunch != nil {
		return r.relaunch(stack)
	}
	return r.Target.Relaunch(stack)
}

// The types of package targets' contract, under the names a backend that embeds the driver
// uses: Options takes them, and results carry them.
type (
	// Stages are a target's stages.
	Stages = targets.Stages
	// Waiter waits for the setup to complete.
	Waiter = targets.Waiter
	// WaiterFunc is a Waiter.
	WaiterFunc = targets.WaiterFunc
	// SetupError is a setup that failed or did not finish in time.
	SetupError = targets.SetupError
	// PendingCreate is a resource whose creation was interrupted.
	PendingCreate = targets.PendingCreate
	// Finder looks up a resource whose creation was interrupted.
	Finder = targets.Finder
	// FinderFunc is a Finder.
	FinderFunc = targets.FinderFunc
	// HostChecker tells whether a deployment's host is still there.
	HostChecker = targets.HostChecker
	// HostCheckerFunc is a HostChecker.
	HostCheckerFunc = targets.HostCheckerFunc
	// HostState is what a HostChecker found.
	HostState = targets.HostState
	// Checkpoint is what an upgrade can be undone to.
	Checkpoint = targets.Checkpoint
	// Checkpointer takes a pre-upgrade checkpoint.
	Checkpointer = targets.Checkpointer
	// FinalSnapshots marks the snapshot a destroy leaves.
	FinalSnapshots = targets.FinalSnapshots
	// CostComparison is the monthly cost now and after a change.
	CostComparison = targets.CostComparison
	// IgnoredChange is a configuration change the program ignores on a deployed stack.
	IgnoredChange = targets.IgnoredChange
	// ConfigError is invalid configuration, refused before anything was touched.
	ConfigError = targets.ConfigError
)

// Setup stages, shared by every target, and the defaults of the setup's wait.
const (
	StageSetupLaunched  = targets.StageSetupLaunched
	StageSetupComplete  = targets.StageSetupComplete
	DefaultSetupPoll    = targets.DefaultSetupPoll
	DefaultSetupTimeout = targets.DefaultSetupTimeout
	TagCheckpoint       = targets.TagCheckpoint
)

// NoWait is a Waiter for programs without a setup script: complete at once.
var NoWait = targets.NoWait

// deployment is what a target's hooks see of a stack the driver works on (targets.Deployment),
// and, with a hold, of the lease an up or a destroy holds on it (targets.Lease).
type deployment struct {
	d     *Driver
	stack string
	// s is the stack, open; nil for one that may not exist (a user-data rendered before the
	// first up): Config and State are not asked of it.
	s *auto.Stack
	h *hold

	once    sync.Once
	tracker *stageTracker
}

var _ targets.Lease = (*deployment)(nil)

// deployment returns what the target's hooks see of stack, open as s (nil when it may not exist).
func (d *Driver) deployment(stack string, s *auto.Stack) *deployment {
	return &deployment{d: d, stack: stack, s: s}
}

// lease returns what the target's hooks see of the deployment h holds, open as s.
func (h *hold) lease(s auto.Stack) *deployment {
	return &deployment{d: h.d, stack: h.stack, s: &s, h: h}
}

func (x *deployment) Project() string { return x.d.projectName }
func (x *deployment) Stack() string   { return x.stack }

func (x *deployment) Config(ctx context.Context) (targets.Config, error) {
	if x.s == nil {
		return targets.Config{}, fmt.Errorf("stack %s is not open", x.stack)
	}
	config, err := x.s.GetAllConfig(ctx)
	if err != nil {
		return targets.Config{}, fmt.Errorf("reading the configuration of stack %s: %w", x.stack, err)
	}
	values, secrets := flatten(config)
	return targets.Config{Values: values, SecretKeys: secrets}, nil
}

func (x *deployment) SetConfig(ctx context.Context, values, secrets map[string]string) error {
	return x.d.setConfig(ctx, x.stack, "", ConfigInput{Values: values, Secrets: secrets})
}

func (x *deployment) Outputs(ctx context.Context) (auto.OutputMap, error) {
	return x.d.Outputs(ctx, x.stack)
}

func (x *deployment) State(ctx context.Context) (*apitype.DeploymentV3, error) {
	if x.s == nil {
		return nil, fmt.Errorf("stack %s is not open", x.stack)
	}
	return exportState(ctx, *x.s)
}

func (x *deployment) AWS() *aws.Config { return x.d.aws }
func (x *deployment) Now() time.Time   { return x.d.now() }

func (x *deployment) Note(format string, args ...any) { x.d.note(x.stack, format, args...) }
func (x *deployment) Warn(format string, args ...any) { x.d.warn(x.stack, format, args...) }

func (x *deployment) Record() journal.Record {
	x.h.mu.Lock()
	defer x.h.mu.Unlock()
	return x.h.record
}

func (x *deployment) Update(change journal.Change) error { return x.h.update(change) }

// Completed follows the stages from where the journal's record stood at the first completion.
func (x *deployment) Completed(stage string) {
	x.once.Do(func() { x.tracker = newStageTracker(x.d.profile.Stages(), x.Record().Stage) })
	x.h.completed(x.tracker, stage)
}

func (x *deployment) OrderPoll() time.Duration { return x.d.orderPoll }
