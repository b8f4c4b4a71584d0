package automation

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy"
	"github.com/clawdeploy/clawdeploy/infra"
	"github.com/clawdeploy/clawdeploy/ordering"
)

// Targets the driver deploys to.
const (
	TargetEC2Spot = "ec2-spot"
	TargetVPS     = "vps"
)

// profile is everything that differs between targets. The driver holds the profile of its
// target and reads each difference from it: no other code branches on the target's name. A new
// target is one entry in profiles and a file of its own (ec2spot.go and vps.go are the models);
// a new provider of an existing target lives in that target's files.
type profile struct {
	name string
	// summary describes the target in --help.
	summary string
	// program is the Pulumi program, run inline.
	program pulumi.RunFunc
	// stages are the target's stages and the resource types that mark them.
	stages Stages
	// keys are the project config keys the program reads, bare (availability_zone); helpKeys
	// are what --help lists, namespaced ones (aws:region) included. Nil keys accept any key: a
	// program the caller brings. listKeys are the keys that hold a list.
	keys, helpKeys, listKeys []string
	// check validates a stack's whole configuration without an engine; nil checks nothing.
	check func(project, stack string, values map[string]string, secretKeys []string) error
	// projectYAML is the built-in project definition of backend mode; nil is a bare project.
	projectYAML []byte
	// fromCheckout reports whether the target runs from an operator's checkout, whose
	// Pulumi.yaml is the ec2-spot project. A target that does not runs with its built-in
	// project only.
	fromCheckout bool
	// newWaiter returns the waiter of the setup's completion, polling every poll for at most
	// timeout (0: the defaults).
	newWaiter func(poll, timeout time.Duration) Waiter
	// relaunch returns the URNs that `up --retry` replaces so the setup runs anew.
	relaunch func(stack string) []string
	// newFinder returns the finder of resources whose creation was interrupted.
	newFinder func() Finder
	// beforeEngine runs before the engine of every up (and resumed up), once the configuration
	// is set; nil does nothing. The vps target pins there a host key trusted on first contact.
	beforeEngine func(ctx context.Context, d *Driver, h *hold, s auto.Stack) error
	// release gives back, after a destroy's engine, what the deployment holds outside the
	// stack (a VPS it ordered); nil holds nothing.
	release func(ctx context.Context, d *Driver, h *hold, s auto.Stack) (*ordering.Release, error)
	// afterEngineFailure decides, when the engine of an up failed with err, whether to run it
	// again (having changed what made it fail), or returns the error to report; nil never runs
	// it again. ec2-spot falls back there to the next instance type without Spot capacity.
	afterEngineFailure func(ctx context.Context, d *Driver, stack string, s auto.Stack, err error) (again bool, reported error)
	// newHostChecker returns what tells Heal that a host is gone; nil for a target whose hosts
	// are not taken away.
	newHostChecker func() HostChecker
	// ignored finds the configuration changes the program ignores on a deployed stack, for
	// preview and up to warn of; nil when there are none.
	ignored func(ctx context.Context, d *Driver, stack string, s auto.Stack, config auto.ConfigMap) ([]IgnoredChange, error)
	// cost estimates the monthly cost of the stack now (existed) and with config; nil for a
	// target that runs on a host of the user's own.
	cost func(ctx context.Context, d *Driver, stack string, s auto.Stack, config auto.ConfigMap, existed bool) (*CostComparison, error)
	// newCheckpointer returns what takes the checkpoint before an upgrade; nil for a target
	// whose data stays on its host.
	newCheckpointer func(cfg *aws.Config, now func() time.Time) Checkpointer
	// newFinalSnapshots returns what marks the snapshot a destroy leaves; nil for a target
	// without a data volume.
	newFinalSnapshots func(cfg *aws.Config) FinalSnapshots
	// userData renders the user-data an instance of the stack would get; nil when the target's
	// hosts get none.
	userData func(ctx context.Context, d *Driver, stack string, in ConfigInput) ([]byte, error)
}

// profiles are the targets, by name.
var profiles = map[string]profile{
	TargetEC2Spot: {
		name: TargetEC2Spot,
		summary: `(default) an EC2 Spot instance with a persistent, snapshotted data
volume.`,
		program:      infra.Program,
		stages:       EC2SpotStages,
		keys:         infra.Keys,
		helpKeys:     append([]string{infra.KeyRegion}, infra.Keys...),
		listKeys:     []string{infra.KeyInstanceTypes},
		check:        infra.CheckConfig,
		projectYAML:  clawdeploy.ProjectYAML,
		fromCheckout: true,
		newWaiter: func(poll, timeout time.Duration) Waiter {
			return SSMWaiter{Interval: poll, Budget: timeout}
		},
		relaunch:           func(stack string) []string { return []string{SpotInstanceURN(stack)} },
		newFinder:          func() Finder { return &AWSFinder{} },
		userData:           ec2SpotUserData,
		afterEngineFailure: ec2SpotCapacity,
		ignored:            ec2SpotIgnored,
		cost:               ec2SpotCost,
		newHostChecker:     func() HostChecker { return &SpotHostChecker{} },
		newCheckpointer: func(cfg *aws.Config, now func() time.Time) Checkpointer {
			return &AWSCheckpointer{Config: cfg, Now: now}
		},
		newFinalSnapshots: func(cfg *aws.Config) FinalSnapshots { return &AWSFinalSnapshots{Config: cfg} },
	},
	TargetVPS: {
		name: TargetVPS,
		summary: `a host reachable over SSH as root or with passwordless sudo, given
(vps_host) or ordered from OVHcloud (vps_provider ovh): the setup
script is launched detached and polled; Docker is installed when
missing. Backend mode only.`,
		program:     infra.VPSProgram,
		stages:      VPSStages,
		keys:        infra.VPSKeys,
		helpKeys:    infra.VPSKeys,
		check:       infra.CheckVPSConfig,
		projectYAML: infra.VPSProjectYAML,
		newWaiter: func(poll, timeout time.Duration) Waiter {
			return SSHWaiter{Interval: poll, Budget: timeout}
		},
		relaunch:     func(stack string) []string { return []string{VPSLaunchURN(stack)} },
		newFinder:    func() Finder { return VPSFinder },
		beforeEngine: vpsBeforeEngine,
		release:      vpsRelease,
	},
}

// running returns the profile for a program the caller brings instead of the target's own:
// the target's name, finder, step before the engine and release (which act only on the
// target's own keys), and nothing of the target's program (keys, validation, project definition, stages,
// setup wait, relaunch).
func (p profile) running(program pulumi.RunFunc) profile {
	return profile{
		name:         p.name,
		summary:      p.summary,
		program:      program,
		fromCheckout: true,
		newWaiter:    func(time.Duration, time.Duration) Waiter { return NoWait },
		relaunch:     func(string) []string { return nil },
		newFinder:    p.newFinder,
		beforeEngine: p.beforeEngine,
		release:      p.release,
	}
}

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
	for _, name := range slices.Sorted(maps.Keys(profiles)) {
		p := profiles[name]
		out = append(out, TargetInfo{Name: p.name, Summary: p.summary, Keys: slices.Clone(p.helpKeys)})
	}
	return out
}

// DefaultProjectDir is the project directory of a target when none is given: the current
// directory when the target runs from a checkout and it holds a Pulumi.yaml (operator mode),
// else empty (backend mode).
func DefaultProjectDir(target string) string {
	p, ok := profiles[target]
	if !ok || !p.fromCheckout {
		return ""
	}
	if _, err := os.Stat(filepath.Join(".", "Pulumi.yaml")); err != nil {
		return ""
	}
	return "."
}
