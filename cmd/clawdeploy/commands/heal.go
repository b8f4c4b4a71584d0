package commands

import (
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
)

// Heal brings back deployments whose host was taken away.
var Heal = &cli.Command{
	Name:      "heal",
	Usage:     "bring back a deployment (or all) whose Spot instance was interrupted or terminated",
	ArgsUsage: " ",
	Description: `Checks each deployment's host without taking its lease: the status parameter (the
instance's watcher publishes INTERRUPTED there on a Spot interruption notice) and
the instance's state in EC2. A host that runs is left alone, without an engine run.
A host that is gone makes the deployment INTERRUPTED, then runs up with refresh:
the dead instance and its attachment leave the state, a new instance starts in the
pinned zone with the same data volume, and the setup finds the data where it was;
READY again. With instance_types, a type without Spot capacity is passed over for
the next; when none has capacity, the deployment is ERROR and heal tries again
later.

--all heals every READY deployment whose host is gone, every INTERRUPTED one a
heal left half done, and every ERROR one whose last heal failed once its backoff
(a minute, doubling, at most an hour) has passed. Run it every minute from cron,
or let the worker run it. --stack heals one now, backoff or not.`,
	Flags: []cli.Flag{stackFlag, waitFlag,
		&cli.BoolFlag{Name: "all", Usage: "heal every deployment whose host is gone"},
		&cli.IntFlag{Name: "concurrency", Usage: "with --all, how many at a time", Value: automation.DefaultConcurrency},
		setupTimeoutFlag, setupPollFlag},
	Action: func(cliContext *cli.Context) error {
		return oneOrAll(cliContext, "heal",
			func(d *automation.Driver, stack string) (auto.OutputMap, error) {
				res, err := d.Heal(cliContext.Context, stack)
				return healOutputs(res), err
			},
			func(d *automation.Driver, n int, each func(string, auto.OutputMap, error)) (int, error) {
				results, err := d.HealAll(cliContext.Context, n, func(o automation.HealOutcome) {
					each(o.Stack, healOutputs(o.Result), o.Err)
				})
				return len(results), err
			})
	},
}

// healOutputs returns a heal's outputs; nil for no result.
func healOutputs(r *automation.HealResult) auto.OutputMap {
	if r == nil {
		return nil
	}
	return r.Outputs
}
