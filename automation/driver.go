package automation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/infra"
	"github.com/clawdeploy/clawdeploy/journal"
)

// CLIVersion is the Pulumi CLI version the driver is built and tested against; `make tools` builds
// exactly this version into ./bin.
var CLIVersion = semver.MustParse("3.259.0")

// Targets the driver deploys to.
const (
	TargetEC2Spot = "ec2-spot"
	TargetVPS     = "vps"
)

// Options configures a Driver. The zero value (or nil) means defaults.
type Options struct {
	// Program is the Pulumi program run inline. Nil means infra.Program, with its project
	// definition, config validation, stages and setup wait.
	Program pulumi.RunFunc
	// Target is the deployment target the journal records; empty means ec2-spot.
	Target string
	// Stages maps resource types to the target's stages. Nil means the ec2-spot stages for the
	// default program, none for another.
	Stages *Stages
	// ProjectDir holds Pulumi.yaml and the Pulumi.<stack>.yaml stack files: the operator's
	// checkout. Empty means backend mode: each stack gets a work directory under StateDir with the
	// project definition built in, and its configuration comes from ConfigInput.
	ProjectDir string
	// StateDir holds the journal, the work directories and, in backend mode, the Pulumi state.
	// Empty means ~/.clawdeploy.
	StateDir string
	// BackendURL is the Pulumi state backend. Empty means PULUMI_BACKEND_URL, else the project's
	// (operator mode) or file://<StateDir>/state (backend mode).
	BackendURL string
	// PulumiRoot is a directory whose bin/pulumi is the CLI to run (the repository after
	// `make tools`). Empty means the `pulumi` on PATH.
	PulumiRoot string
	// Env is added to the environment of every CLI run.
	Env map[string]string
	// Journal records the deployments. Nil means the SQLite journal StateDir/journal.db.
	Journal journal.Journal
	// Clock tells the time; nil means time.Now.
	Clock func() time.Time
	// Finder looks up resources whose creation was interrupted. Nil means the AWS finder.
	Finder Finder
	// Waiter waits for the setup to complete after an up. Nil means the SSM waiter for the
	// default program and NoWait for another.
	Waiter Waiter
	// RelaunchURNs are replaced by `up --retry` to run the setup again; nil means the ec2-spot
	// instance for the default program.
	RelaunchURNs func(stack string) []string
	// Events receives the driver's events; nil discards them.
	Events Sink
	// Progress receives the engine's own progress display; nil discards it.
	Progress io.Writer
	// LeaseTTL is how long a lease lasts without a heartbeat; 0 means 60 s. Heartbeats come every
	// third of it.
	LeaseTTL time.Duration
	// Drain is how long an interrupted operation gets to checkpoint; 0 means 25 s.
	Drain time.Duration
	// WaitForLease waits this long for a deployment held by a live owner instead of refusing at
	// once; 0 refuses at once.
	WaitForLease time.Duration
}

// Driver runs stack operations through the Automation API, with the program inline, and keeps
// the journal of every deployment it touches.
type Driver struct {
	program  pulumi.RunFunc
	target   string
	stages   Stages
	defaults bool // the default program: config validation and project definition apply
	// keys, check and projectYAML are the target's config keys, its validation and its project
	// definition, for the default program.
	keys        []string
	check       func(project, stack string, values map[string]string, secretKeys []string) error
	projectYAML []byte
	projectDir  string
	stateDir    string
	backendURL  string
	env         map[string]string
	journal     journal.Journal
	ownJournal  bool
	now         func() time.Time
	finder      Finder
	waiter      Waiter
	relaunch    func(string) []string
	events      Sink
	progress    io.Writer
	leaseTTL    time.Duration
	drain       time.Duration
	waitLease   time.Duration
	owner       string
	pulumiRoot  string
	// cli is the Pulumi CLI, checked on first use: what the journal alone answers (status, a
	// READY resume) does not pay for running `pulumi version`.
	cli     auto.PulumiCommand
	cliErr  error
	cliOne  sync.Once
	project *workspace.Project
	// projectName and effectiveBackend locate the stacks' locks.
	projectName      string
	effectiveBackend string
}

// New returns a Driver for opts. The Pulumi CLI is checked (the pinned version or later) when an
// operation first needs it.
func New(ctx context.Context, opts *Options) (*Driver, error) {
	if opts == nil {
		opts = &Options{}
	}
	d := &Driver{
		program:    opts.Program,
		target:     opts.Target,
		projectDir: opts.ProjectDir,
		stateDir:   opts.StateDir,
		env:        map[string]string{"PULUMI_SKIP_UPDATE_CHECK": "true"},
		journal:    opts.Journal,
		now:        opts.Clock,
		finder:     opts.Finder,
		waiter:     opts.Waiter,
		relaunch:   opts.RelaunchURNs,
		events:     opts.Events,
		progress:   opts.Progress,
		leaseTTL:   opts.LeaseTTL,
		drain:      opts.Drain,
		waitLease:  opts.WaitForLease,
	}
	d.defaults = d.program == nil
	switch {
	case d.target == "":
		d.target = TargetEC2Spot
	case d.target != TargetEC2Spot && d.target != TargetVPS:
		return nil, &UsageError{Err: fmt.Errorf("target %q is not one of %s, %s", d.target, TargetEC2Spot, TargetVPS)}
	}
	if d.defaults && d.target == TargetVPS && d.projectDir != "" {
		return nil, &UsageError{Err: fmt.Errorf("target %s runs with its built-in project, not the one in %s (the ec2-spot project): run it without a project directory", TargetVPS, d.projectDir)}
	}
	if d.defaults {
		p := profiles[d.target]
		d.program, d.stages, d.keys, d.check, d.projectYAML = p.program, p.stages, p.keys, p.check, p.projectYAML
		if d.waiter == nil {
			d.waiter = p.waiter()
		}
		if d.relaunch == nil {
			d.relaunch = p.relaunch
		}
		if d.finder == nil {
			d.finder = p.finder()
		}
	}
	if opts.Stages != nil {
		d.stages = *opts.Stages
	}
	if d.waiter == nil {
		d.waiter = NoWait
	}
	if d.relaunch == nil {
		d.relaunch = func(string) []string { return nil }
	}
	if d.finder == nil {
		d.finder = &AWSFinder{}
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.events == nil {
		d.events = discard
	}
	if d.progress == nil {
		d.progress = io.Discard
	}
	if d.leaseTTL == 0 {
		d.leaseTTL = time.Minute
	}
	if d.drain == 0 {
		d.drain = 25 * time.Second
	}
	if d.stateDir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("finding the home directory for the state directory: %w", err)
		}
		d.stateDir = filepath.Join(home, ".clawdeploy")
	}
	var err error
	if d.stateDir, err = filepath.Abs(d.stateDir); err != nil {
		return nil, fmt.Errorf("resolving the state directory: %w", err)
	}
	if err := os.MkdirAll(d.stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the state directory %s: %w", d.stateDir, err)
	}

	if d.projectDir != "" {
		abs, err := filepath.Abs(d.projectDir)
		if err != nil {
			return nil, fmt.Errorf("resolving project directory %s: %w", d.projectDir, err)
		}
		d.projectDir = abs
		if _, err := os.Stat(filepath.Join(abs, "Pulumi.yaml")); err != nil {
			return nil, fmt.Errorf("project directory %s has no Pulumi.yaml: %w", abs, err)
		}
	} else if d.project, err = d.builtInProject(); err != nil {
		return nil, err
	}

	d.backendURL = opts.BackendURL
	if d.backendURL == "" {
		d.backendURL = os.Getenv("PULUMI_BACKEND_URL")
	}
	if d.project != nil {
		d.projectName = d.project.Name.String()
	} else {
		proj, err := workspace.LoadProject(filepath.Join(d.projectDir, "Pulumi.yaml"))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", filepath.Join(d.projectDir, "Pulumi.yaml"), err)
		}
		d.projectName = proj.Name.String()
		if d.backendURL == "" && proj.Backend != nil {
			d.effectiveBackend = proj.Backend.URL
		}
	}
	if d.backendURL == "" && d.projectDir == "" {
		d.backendURL = "file://" + filepath.Join(d.stateDir, "state")
		if err := os.MkdirAll(filepath.Join(d.stateDir, "state"), 0o700); err != nil {
			return nil, fmt.Errorf("creating the state backend: %w", err)
		}
	}
	if d.backendURL != "" {
		d.env["PULUMI_BACKEND_URL"] = d.backendURL
		d.effectiveBackend = d.backendURL
	}
	maps.Copy(d.env, opts.Env)
	if err := d.checkPassphrase(); err != nil {
		return nil, err
	}

	owner, err := NewOwner()
	if err != nil {
		return nil, err
	}
	d.owner = owner.String()
	d.env[EnvOwner] = d.owner

	d.pulumiRoot = opts.PulumiRoot

	if d.journal == nil {
		j, err := journal.OpenSQLite(ctx, filepath.Join(d.stateDir, "journal.db"))
		if err != nil {
			return nil, err
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

// Journal is the driver's journal.
func (d *Driver) Journal() journal.Journal { return d.journal }

// builtInProject is the project definition of backend mode: the embedded Pulumi.yaml for the
// default program, without its main (the program runs inline) and its backend (the driver's
// decides); a bare project for another program.
func (d *Driver) builtInProject() (*workspace.Project, error) {
	if !d.defaults {
		return &workspace.Project{Name: "openclaw", Runtime: workspace.NewProjectRuntimeInfo("go", nil)}, nil
	}
	dir, err := os.MkdirTemp("", "clawdeploy-project-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	path := filepath.Join(dir, "Pulumi.yaml")
	if err := os.WriteFile(path, d.projectYAML, 0o600); err != nil {
		return nil, err
	}
	proj, err := workspace.LoadProject(path)
	if err != nil {
		return nil, fmt.Errorf("reading the built-in project definition: %w", err)
	}
	proj.Main = ""
	proj.Backend = nil
	return proj, nil
}

// checkPassphrase fails early, with the fix, when a self-managed backend would need a passphrase
// that nobody set: the CLI would otherwise stop half-way through stack creation.
func (d *Driver) checkPassphrase() error {
	for _, k := range []string{"PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"} {
		if _, ok := d.env[k]; ok {
			return nil
		}
		if _, ok := os.LookupEnv(k); ok {
			return nil
		}
	}
	backend := d.backendURL
	if backend != "" && !strings.HasPrefix(backend, "file://") && !strings.HasPrefix(backend, "s3://") &&
		!strings.HasPrefix(backend, "gs://") && !strings.HasPrefix(backend, "azblob://") {
		return nil // Pulumi Cloud manages secrets itself
	}
	return &UsageError{Err: errors.New("PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) is not set: " +
		"the self-managed state backend encrypts stack secrets with it; set it before running")}
}

// workDir is where a stack's workspace lives.
func (d *Driver) workDir(stack string) string {
	if d.projectDir != "" {
		return d.projectDir
	}
	return filepath.Join(d.stateDir, "work", stack)
}

// stack selects the named stack, creating it when create is true.
func (d *Driver) stack(ctx context.Context, name string, create bool) (auto.Stack, error) {
	dir := d.workDir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return auto.Stack{}, fmt.Errorf("creating the work directory of %s: %w", name, err)
	}
	d.cliOne.Do(func() {
		d.cli, d.cliErr = auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: d.pulumiRoot, Version: CLIVersion})
	})
	if d.cliErr != nil {
		return auto.Stack{}, fmt.Errorf("checking the Pulumi CLI (need v%s or later; `make tools` builds it into ./bin): %w",
			CLIVersion, d.cliErr)
	}
	opts := []auto.LocalWorkspaceOption{auto.WorkDir(dir), auto.Pulumi(d.cli), auto.EnvVars(d.env)}
	if d.project != nil {
		opts = append(opts, auto.Project(*d.project))
	}
	var (
		s   auto.Stack
		err error
	)
	if create {
		s, err = auto.UpsertStackInlineSource(ctx, name, "", d.program, opts...)
	} else {
		s, err = auto.SelectStackInlineSource(ctx, name, "", d.program, opts...)
	}
	if err != nil {
		if !create && strings.Contains(err.Error(), "no stack named") {
			return auto.Stack{}, &NotFoundError{Stack: name}
		}
		return auto.Stack{}, fmt.Errorf("opening stack %s: %w", name, err)
	}
	return s, nil
}

// ConfigInput is configuration to set on a stack before an operation. Keys without a namespace are
// the project's (availability_zone means openclaw:availability_zone).
type ConfigInput struct {
	Values  map[string]string
	Secrets map[string]string
}

func (c ConfigInput) empty() bool { return len(c.Values) == 0 && len(c.Secrets) == 0 }

// fullKey puts a bare key in the project's namespace.
func fullKey(k string) string {
	if strings.Contains(k, ":") {
		return k
	}
	return "openclaw:" + k
}

// checkKeys refuses keys the program does not read, before anything is touched: a typo would
// otherwise be ignored.
func (d *Driver) checkKeys(in ConfigInput) error {
	if !d.defaults {
		return nil
	}
	known := map[string]bool{}
	for _, k := range d.keys {
		known["openclaw:"+k] = true
	}
	for k := range maps.Keys(in.Values) {
		if !known[fullKey(k)] && !strings.HasPrefix(k, "aws:") {
			return &ConfigError{Err: fmt.Errorf("unknown config key %s for target %s; known keys: %s, and aws:region",
				k, d.target, strings.Join(d.keys, ", "))}
		}
	}
	for k := range maps.Keys(in.Secrets) {
		if !known[fullKey(k)] {
			return &ConfigError{Err: fmt.Errorf("unknown config key %s for target %s; known keys: %s", k, d.target, strings.Join(d.keys, ", "))}
		}
	}
	return nil
}

// applyConfig validates the stack's configuration with in applied, and writes in only when the
// whole is valid. For the default program every operation goes through it, so invalid
// configuration fails before the engine starts.
func (d *Driver) applyConfig(ctx context.Context, s auto.Stack, in ConfigInput) error {
	if !d.defaults && in.empty() {
		return nil
	}
	current, err := s.GetAllConfig(ctx)
	if err != nil {
		return fmt.Errorf("reading the configuration of stack %s: %w", s.Name(), err)
	}
	set := auto.ConfigMap{}
	for k, v := range in.Values {
		set[fullKey(k)] = auto.ConfigValue{Value: v}
	}
	for k, v := range in.Secrets {
		set[fullKey(k)] = auto.ConfigValue{Value: v, Secret: true}
	}
	if d.defaults {
		values := map[string]string{}
		var secrets []string
		merged := maps.Clone(current)
		maps.Copy(merged, set)
		for k, v := range merged {
			values[k] = v.Value
			if v.Secret {
				secrets = append(secrets, k)
			}
		}
		slices.Sort(secrets)
		if err := d.check("openclaw", s.Name(), values, secrets); err != nil {
			return &ConfigError{Err: err}
		}
	}
	if len(set) == 0 {
		return nil
	}
	if err := s.SetAllConfig(ctx, set); err != nil {
		return fmt.Errorf("setting the configuration of stack %s: %w", s.Name(), err)
	}
	return nil
}

// Config returns a stack's configuration with in applied, without writing anything: namespaced
// values and the keys that are secret. A stack that does not exist yet has only in.
func (d *Driver) Config(ctx context.Context, stack string, in ConfigInput) (map[string]string, []string, error) {
	if err := d.checkKeys(in); err != nil {
		return nil, nil, err
	}
	merged := auto.ConfigMap{}
	s, err := d.stack(ctx, stack, false)
	var notFound *NotFoundError
	switch {
	case errors.As(err, &notFound):
	case err != nil:
		return nil, nil, err
	default:
		if merged, err = s.GetAllConfig(ctx); err != nil {
			return nil, nil, fmt.Errorf("reading the configuration of stack %s: %w", stack, err)
		}
	}
	for k, v := range in.Values {
		merged[fullKey(k)] = auto.ConfigValue{Value: v}
	}
	for k, v := range in.Secrets {
		merged[fullKey(k)] = auto.ConfigValue{Value: v, Secret: true}
	}
	values := map[string]string{}
	var secrets []string
	for k, v := range merged {
		values[k] = v.Value
		if v.Secret {
			secrets = append(secrets, k)
		}
	}
	slices.Sort(secrets)
	return values, secrets, nil
}

// SpotInstanceURN is the ec2-spot instance of a stack: `up --retry` replaces it so that cloud-init
// runs the setup again.
func SpotInstanceURN(stack string) string {
	return "urn:pulumi:" + stack + "::openclaw::clawdeploy:compute:SpotInstance$aws:ec2/instance:Instance::" +
		infra.NameSpot + "-instance"
}

// emit sends an event, stamped.
func (d *Driver) emit(stack string, e Event) {
	e.Time = d.now().UTC()
	e.Stack = stack
	d.events.Emit(e)
}

// note emits an informational diagnostic: what the driver did and why.
func (d *Driver) note(stack, format string, args ...any) {
	d.emit(stack, Event{Type: EventDiagnostic, Severity: "info", Message: fmt.Sprintf(format, args...)})
}
