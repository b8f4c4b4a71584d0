// Package automation is the clawdeploy driver: it runs a target's deployment program inline
// through the Pulumi Automation API, so the operator's shell, a provisioning backend and CI all
// execute the same code against the same state, and it keeps a journal of every deployment so
// that whatever a dead process left half done is continued, never done twice.
//
// The driver needs the Pulumi CLI (`make tools` builds the pinned version into ./bin) but no
// language plugin: the program runs in the driver's own process.
//
// The targets are packages of their own (targets/ec2spot, targets/vps): the driver asks them
// through package targets and lists them in registry.go. What is not the driver is beside it:
// package preview sums a preview up, package runbook is the runbook's AWS commands on a
// deployment, package fleet is the worker of several replicas.
//
// The files, top-down (docs/architecture.md draws the flows):
//
//	driver.go       Options, New, the Driver
//	registry.go     the registry of targets; the driver's profile of its target; what a
//	                target's hooks see of a deployment and of its lease
//	up.go           Up: the engine, the setup wait, the pre-upgrade checkpoint, --rollback
//	images.go       the gateway's image pinned to its digest once; --refresh-image; a
//	                moved tag told by the preview
//	preview.go      Preview and PreviewStacks: the engine's preview, the cost, ignored config
//	operations.go   Destroy, Refresh, Outputs, Status, Cancel, UserData; forEach, the fan-out
//	                of every --all
//	resume.go       Resume and ResumeAll; SweepStuck
//	heal.go         Heal and HealAll: a host taken away, brought back
//	lease.go        step 1: the deployment's lease, its heartbeat, the journal's writes, stages
//	recovery.go     steps 2 and 3: leftovers, dead locks, torn state files, pending creates
//	locks.go        who holds a stack: the driver's identity, the processes that work for it,
//	                the backend's locks (read, judged by recovery.go, removed)
//	config.go       configuration: keys, validation before anything is touched, stack files
//	workspace.go    the project, the state backend, the stacks' work directories, the Pulumi
//	                CLI (its version checked once per binary)
//	events.go       the NDJSON and human event streams; the engine's events streamed
//	errors.go       typed errors and the exit codes they map to
package automation

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/images"
	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/targets"
)

// CLIVersion is the Pulumi CLI version the driver is built and tested against; `make tools` builds
// exactly this version into ./bin.
var CLIVersion = semver.MustParse("3.259.0")

// Defaults of the driver's durations. The command line's flags show the same values.
const (
	// DefaultLeaseTTL is how long a lease lasts without a heartbeat.
	DefaultLeaseTTL = time.Minute
	// DefaultDrain is how long an interrupted operation gets to save its state.
	DefaultDrain = 25 * time.Second
)

// Options configures a Driver. The zero value (or nil) means defaults.
type Options struct {
	// Target is the deployment target's name (Targets lists them: ec2-spot, vps); empty means
	// DefaultTarget. The journal records it, and a deployment keeps the one it was created with.
	Target string
	// Program is the Pulumi program run inline. Nil means the target's own, with its project
	// definition, config validation, stages, setup wait and relaunch. A program of the caller's
	// gets none of those unless the fields below give them.
	Program pulumi.RunFunc
	// Stages replaces the target's stages.
	Stages *Stages
	// ProjectDir holds Pulumi.yaml and the Pulumi.<stack>.yaml stack files: the operator's
	// checkout. Empty means backend mode: each stack gets a work directory under StateDir with the
	// project definition built in, and its configuration comes from ConfigInput.
	ProjectDir string
	// StateDir holds the journal, the work directories and, in backend mode, the Pulumi state.
	// Empty means ~/.clawdeploy; a leading ~/ is the home directory.
	StateDir string
	// BackendURL is the Pulumi state backend. Empty means PULUMI_BACKEND_URL, else the project's
	// (operator mode) or file://<StateDir>/state (backend mode).
	BackendURL string
	// PulumiRoot is a directory whose bin/pulumi is the CLI to run (the repository after
	// `make tools`). Empty means the `pulumi` on PATH.
	PulumiRoot string
	// Env is added to the environment of every CLI run.
	Env map[string]string
	// Journal records the deployments. Nil means the one JournalURL names (journal.Open): the
	// SQLite journal StateDir/journal.db by default, created by the first operation that writes
	// to it; a postgres:// URL for a journal several hosts share.
	Journal    journal.Journal
	JournalURL string
	// Clock tells the time; nil means time.Now.
	Clock func() time.Time
	// Finder looks up resources whose creation was interrupted. Nil means the target's.
	Finder Finder
	// Waiter waits for the setup to complete after an up. Nil means the target's, polling every
	// SetupPoll for at most SetupTimeout (NoWait for a program of the caller's).
	Waiter Waiter
	// SetupPoll and SetupTimeout configure the target's waiter; 0 means DefaultSetupPoll and
	// DefaultSetupTimeout. SetupPoll is also the interval of the polls of an ordered VPS's
	// delivery and rebuild.
	SetupPoll, SetupTimeout time.Duration
	// AWS is the configuration of the driver's own AWS calls (`backup verify`); nil loads the
	// default one (environment, shared files, instance role) with the stack's region.
	AWS *aws.Config
	// Checkpointer takes the checkpoint before an up deploys a new OpenClaw image. Nil means the
	// target's (a targets.Upgrader's: for ec2-spot, a snapshot and a backup the instance takes
	// for it); none for a target whose data stays on its host.
	Checkpointer Checkpointer
	// Registry resolves openclaw_image to a digest at up and preview (package images). Nil means
	// the image's own registry (through the mirror images.EnvMirror names, in Env or the
	// environment, when one is set).
	Registry images.Resolver
	// FinalSnapshots marks the snapshot a destroy leaves of the data volume; nil means the
	// target's (a targets.DataVolume's); none for a target without a volume.
	FinalSnapshots FinalSnapshots
	// HostChecker tells Heal whether a deployment's host is gone. Nil means the target's (a
	// targets.Healer's); none for a target whose hosts are not taken away.
	HostChecker HostChecker
	// RelaunchURNs are replaced by `up --retry` to run the setup again; nil means the target's.
	RelaunchURNs func(stack string) []string
	// Events receives the driver's events; nil discards them.
	Events Sink
	// Progress receives the engine's own progress display; nil discards it.
	Progress io.Writer
	// LeaseTTL is how long a lease lasts without a heartbeat; 0 means DefaultLeaseTTL.
	// Heartbeats come every third of it.
	LeaseTTL time.Duration
	// Drain is how long an interrupted operation gets to save its state; 0 means DefaultDrain.
	Drain time.Duration
	// WaitForLease waits this long for a deployment held by a live owner instead of refusing at
	// once; 0 refuses at once.
	WaitForLease time.Duration
}

// Driver runs stack operations through the Automation API, with the program inline, and keeps
// the journal of every deployment it touches.
type Driver struct {
	// profile is the target: its program, stages, keys, validation and project definition.
	profile      profile
	finder       Finder
	waiter       Waiter
	hostChecker  HostChecker
	checkpointer Checkpointer
	finals       FinalSnapshots
	aws          *aws.Config
	registry     images.Resolver

	// The workspace: where stacks live and which CLI runs them (workspace.go).
	projectDir string
	stateDir   string
	// project is the built-in project definition of backend mode; nil in operator mode.
	project *workspace.Project
	// ownBackend is the default state backend's directory under the state directory, made on
	// first use; empty for a backend given.
	ownBackend string
	// projectName and effectiveBackend locate the stacks' locks.
	projectName      string
	effectiveBackend string
	env              map[string]string
	pulumiRoot       string
	// cli is the Pulumi CLI, checked on first use: what the journal alone answers (status, a
	// READY resume) does not pay for running `pulumi version`.
	cli    auto.PulumiCommand
	cliErr error
	cliOne sync.Once
	// stacks are the stacks opened so far, by name.
	stacks   map[string]auto.Stack
	stacksMu sync.Mutex

	journal    journal.Journal
	ownJournal bool
	owner      string
	now        func() time.Time
	events     Sink
	progress   io.Writer
	leaseTTL   time.Duration
	drain      time.Duration
	waitLease  time.Duration
	// orderPoll is the interval of the polls of an ordered VPS (0: ordering.DefaultPoll).
	orderPoll time.Duration
	// claims are deployments a worker's sweep claimed, for take; takeovers counts the
	// deployments taken from another owner.
	claims    map[string]journal.Record
	claimsMu  sync.Mutex
	takeovers atomic.Int64
}

// New returns a Driver for opts. The Pulumi CLI is checked (the pinned version or later) when an
// operation first needs it.
func New(ctx context.Context, opts *Options) (*Driver, error) {
	if opts == nil {
		opts = &Options{}
	}
	p, err := resolveProfile(opts)
	if err != nil {
		return nil, err
	}
	d := &Driver{
		profile:   p,
		finder:    opts.Finder,
		waiter:    opts.Waiter,
		env:       map[string]string{"PULUMI_SKIP_UPDATE_CHECK": "true"},
		stacks:    map[string]auto.Stack{},
		journal:   opts.Journal,
		now:       opts.Clock,
		events:    opts.Events,
		progress:  opts.Progress,
		leaseTTL:  cmp.Or(opts.LeaseTTL, DefaultLeaseTTL),
		drain:     cmp.Or(opts.Drain, DefaultDrain),
		waitLease: opts.WaitForLease,
		orderPoll: opts.SetupPoll,
	}
	if d.finder == nil {
		d.finder = p.NewFinder()
	}
	if d.waiter == nil {
		d.waiter = p.NewWaiter(opts.SetupPoll, opts.SetupTimeout)
	}
	d.aws = opts.AWS
	if d.hostChecker = opts.HostChecker; d.hostChecker == nil && p.healer != nil {
		d.hostChecker = p.healer.NewHostChecker()
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.checkpointer = opts.Checkpointer; d.checkpointer == nil && p.upgrader != nil {
		d.checkpointer = p.upgrader.NewCheckpointer(opts.AWS, d.now)
	}
	if d.finals = opts.FinalSnapshots; d.finals == nil && p.own && p.dataVolume != nil {
		d.finals = p.dataVolume.NewFinalSnapshots(opts.AWS)
	}
	if d.events == nil {
		d.events = discard
	}
	if d.progress == nil {
		d.progress = io.Discard
	}
	if err := d.openWorkspace(opts); err != nil {
		return nil, err
	}
	maps.Copy(d.env, opts.Env)
	if d.registry = opts.Registry; d.registry == nil {
		mirror, ok := opts.Env[images.EnvMirror]
		if !ok {
			mirror = os.Getenv(images.EnvMirror)
		}
		d.registry = images.Registry{Mirror: mirror}
	}
	if err := d.checkPassphrase(); err != nil {
		return nil, err
	}
	owner, err := NewOwner()
	if err != nil {
		return nil, err
	}
	d.owner = owner.String()
	d.env[EnvOwner] = d.owner
	if d.journal == nil {
		j, err := journal.Open(opts.JournalURL, d.stateDir)
		if err != nil {
			return nil, &UsageError{Err: err}
		}
		d.journal, d.ownJournal = j, true
	}
	return d, nil
}

// Close releases the driver's journal, when it opened it.
func (d *Driver) Close() error {
	if d.ownJournal {
		return d.journal.Close()
	}
	return nil
}

// Owner is this driver's identity in the journal.
func (d *Driver) Owner() string { return d.owner }

// Takeovers is how many deployments this driver took from another owner (whose lease had
// expired or whose process was gone).
func (d *Driver) Takeovers() int64 { return d.takeovers.Load() }

// Journal is the driver's journal.
func (d *Driver) Journal() journal.Journal { return d.journal }

// Target is the name of the driver's target.
func (d *Driver) Target() string { return d.profile.Name() }

// DataVolume is the driver's target as a targets.DataVolume: how its deployments' data volume is
// restored. Nil for a target that keeps its data on its host.
func (d *Driver) DataVolume() targets.DataVolume { return d.profile.dataVolume }

// AWS is the configuration of the driver's own AWS calls (Options.AWS); nil means the default.
func (d *Driver) AWS() *aws.Config { return d.aws }

// Now tells the driver's time (Options.Clock).
func (d *Driver) Now() time.Time { return d.now() }

// Note emits an informational diagnostic event about stack: what was done and why.
func (d *Driver) Note(stack, format string, args ...any) { d.note(stack, format, args...) }

// Warn emits a warning diagnostic event about stack: something that did not stop the operation.
func (d *Driver) Warn(stack, format string, args ...any) { d.warn(stack, format, args...) }

// LeaseTTL is how long a lease lasts without a heartbeat (Options.LeaseTTL).
func (d *Driver) LeaseTTL() time.Duration { return d.leaseTTL }

// LookupEnv is an environment variable as the Pulumi CLI sees it: Options.Env over the
// process's environment.
func (d *Driver) LookupEnv(key string) (string, bool) { return d.lookupEnv(key) }

// CheckTarget refuses (a *UsageError) a deployment the journal records for another target.
func (d *Driver) CheckTarget(ctx context.Context, stack string) error {
	if rec, err := d.journal.Get(ctx, stack); err == nil && rec.Target != d.profile.Name() {
		return otherTarget(rec)
	}
	return nil
}

// emit sends an event, stamped.
func (d *Driver) emit(stack string, e Event) {
	e.Time = d.now().UTC()
	e.Stack = stack
	d.events.Emit(e)
}

// warn emits a warning diagnostic: something that did not stop the operation.
func (d *Driver) warn(stack, format string, args ...any) {
	d.emit(stack, Event{Type: EventDiagnostic, Severity: "warning", Message: fmt.Sprintf(format, args...)})
}

// note emits an informational diagnostic: what the driver did and why.
func (d *Driver) note(stack, format string, args ...any) {
	d.emit(stack, Event{Type: EventDiagnostic, Severity: "info", Message: fmt.Sprintf(format, args...)})
}
