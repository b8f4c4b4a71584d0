// Package targets is the contract between the driver (package automation) and the places it
// deploys to. Each target is a package of its own below this one (targets/ec2spot,
// targets/vps) that answers for everything only it knows: its program and configuration keys
// (read with package targets/stackconfig, which both share), its stages, how to wait for its setup, find its interrupted creations and relaunch
// it, what each change of its resources risks, and what it can do beyond that (the optional
// interfaces: Preparer, Releaser, Retrier, Healer, …). The driver asks a Target through these
// interfaces and never compares a target's name; automation's registry (registry.go) lists the
// targets.
//
// A new target is a new package implementing Target and the optional interfaces it needs, with
// its program and configuration, one line in automation's registry, and its docs (docs/architecture.md says
// which files).
package targets

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy"
	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/ordering"
)

// Target is a place the driver deploys to. Every target has these; what only some have is
// asked for with the optional interfaces below.
type Target interface {
	// Name is the target's name: --target, the journal's and the stack's target tag.
	Name() string
	// Summary describes the target in --help, in lines that fit a terminal.
	Summary() string
	// Program is the Pulumi program, run inline.
	Program() pulumi.RunFunc
	// Stages are the target's stages and the resource types that mark them.
	Stages() Stages
	// Keys are the configuration keys the program reads.
	Keys() Keys
	// Check validates a stack's whole configuration (namespaced values, the secret keys)
	// without an engine.
	Check(project, stack string, values map[string]string, secretKeys []string) error
	// ProjectYAML is the built-in project definition of backend mode; nil is a bare project.
	ProjectYAML() []byte
	// FromCheckout reports whether the target runs from an operator's checkout, whose
	// Pulumi.yaml is its project. A target that does not runs with its built-in project only.
	FromCheckout() bool
	// NewWaiter returns the waiter of the setup's completion, polling every poll for at most
	// timeout (0: DefaultSetupPoll, DefaultSetupTimeout).
	NewWaiter(poll, timeout time.Duration) Waiter
	// Relaunch returns the URNs that `up --retry` replaces so that the setup runs anew.
	Relaunch(stack string) []string
	// NewFinder returns the finder of resources whose creation was interrupted.
	NewFinder() Finder
	// Risk says what a change of one of the program's resources puts at risk: the risk classes
	// of its resource types.
	Risk(change Change) Risk
}

// Keys are a target's configuration keys.
type Keys struct {
	// Program are the project keys the program reads, bare (availability_zone). Nil accepts
	// any key: a program the caller brings.
	Program []string
	// Help are what --help lists: namespaced ones (aws:region) too.
	Help []string
	// List are the keys that hold a list.
	List []string
}

// Preparer is a target that readies the host before the engine of every up (and resumed up),
// once the configuration is set: vps orders a VPS there, and pins a host key trusted on first
// contact.
type Preparer interface {
	BeforeEngine(ctx context.Context, l Lease) error
}

// Releaser is a target whose deployments hold something outside the stack (a VPS ordered for
// them): Release gives it back after a destroy's engine.
type Releaser interface {
	Release(ctx context.Context, l Lease) (*ordering.Release, error)
}

// Retrier is a target that may run an up's engine again after it failed with err, having
// changed what made it fail: again says so, or reported is the error to report. ec2-spot falls
// back there to the next instance type without Spot capacity.
type Retrier interface {
	AfterEngineFailure(ctx context.Context, d Deployment, err error) (again bool, reported error)
}

// Healer is a target whose hosts its provider takes away (Spot): heal asks its HostChecker
// whether a deployment's host is gone.
type Healer interface {
	NewHostChecker() HostChecker
}

// Upgrader is a target whose data can be checkpointed before an up deploys a new OpenClaw image.
type Upgrader interface {
	NewCheckpointer(aws *aws.Config, now func() time.Time) Checkpointer
}

// DataVolume is a target whose data is on an EBS volume with snapshots, and backups in an S3
// bucket: the runbook's snapshot, volume and restore commands (package runbook, which sets the
// ec2-spot keys on a restore) and `backup verify` work on its deployments, which have the
// outputs data_volume_id, availability_zone, backup_bucket and region.
type DataVolume interface {
	// RestoreReplaces are the URNs a restore of the stack replaces: its data volume, and
	// what must be made again with it.
	RestoreReplaces(stack string) []string
	// NewFinalSnapshots returns what marks the snapshot a destroy leaves; nil marks none.
	NewFinalSnapshots(aws *aws.Config) FinalSnapshots
	// VolumeKeys are the config keys the runbook sets to place the volume and its host.
	VolumeKeys() VolumeKeys
}

// VolumeKeys are the config keys of a target with a DataVolume that the runbook sets: a restore
// sets Snapshot (and, for a new stack, Zone and Region from the snapshot's), the Spot prices'
// config lines InstanceType and Zone.
type VolumeKeys struct {
	Region, Zone, Snapshot, InstanceType string
}

// Previewer is a target that tells a preview more than the engine does: the configuration
// changes the program ignores on a deployed stack, and the cost.
type Previewer interface {
	// Ignored finds, in config (the stack's configuration with the preview's over it), the
	// changes the program ignores on the deployed stack.
	Ignored(ctx context.Context, d Deployment, config Config) ([]IgnoredChange, error)
	// Cost estimates the monthly cost of the stack now (existed) and with config.
	Cost(ctx context.Context, d Deployment, config Config, existed bool) (*CostComparison, error)
}

// UserDataRenderer is a target whose hosts get a user-data at boot: UserData renders it for
// config, the stack's configuration with the caller's over it.
type UserDataRenderer interface {
	UserData(ctx context.Context, d Deployment, config Config) ([]byte, error)
}

// Deployment is what a target's hooks see of the deployment the driver works on.
type Deployment interface {
	Project() string
	Stack() string
	// Config is the stack's configuration as it is now.
	Config(ctx context.Context) (Config, error)
	// SetConfig sets values and secrets (bare or namespaced keys) in the stack's configuration.
	SetConfig(ctx context.Context, values, secrets map[string]string) error
	// Outputs are the stack's outputs; a stack not deployed yet has none.
	Outputs(ctx context.Context) (auto.OutputMap, error)
	// State is the stack's checkpoint as the engine keeps it; nil for a stack without one.
	State(ctx context.Context) (*apitype.DeploymentV3, error)
	// AWS is the driver's AWS configuration; nil means the default one.
	AWS() *aws.Config
	// Note and Warn emit an informational or a warning diagnostic about the deployment.
	Note(format string, args ...any)
	Warn(format string, args ...any)
	Now() time.Time
}

// Lease is a deployment under the driver's lease, in an up or a destroy: what it records goes
// to the journal.
type Lease interface {
	Deployment
	// Record is the journal's record of the deployment as the lease last wrote it.
	Record() journal.Record
	// Update writes a change to the journal's record.
	Update(change journal.Change) error
	// Completed records that a stage completed (an event, and the deployment's stage when it
	// moves).
	Completed(stage string)
	// OrderPoll is how often a provider's order is polled.
	OrderPoll() time.Duration
}

// Config is a stack's configuration: values by namespaced key (clawdeploy:instance_type,
// aws:region), and the keys that are secret, sorted.
type Config struct {
	Values     map[string]string
	SecretKeys []string
	// Replacing are the URNs the up replaces: their new resources take the configuration, so
	// a change they take is not ignored.
	Replacing []string
}

// Value is the value of a key, bare or namespaced.
func (c Config) Value(key string) string { return c.Values[FullKey(key)] }

// FullKey puts a bare key in the project's namespace.
func FullKey(k string) string {
	if strings.Contains(k, ":") {
		return k
	}
	return clawdeploy.Project + ":" + k
}

// ConfigError is invalid configuration, refused before anything was touched.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }

// Unwrap returns the cause (an *stackconfig.ValidationError for bad values).
func (e *ConfigError) Unwrap() error { return e.Err }
