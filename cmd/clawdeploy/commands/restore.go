package commands

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/runbook"
	"github.com/clawdeploy/clawdeploy/targets"
)

// Restore brings a deployment's data back from a snapshot of its data volume.
var Restore = &cli.Command{
	Name:      "restore",
	Usage:     "restore the data volume from a snapshot: a new stack is deployed from it, an existing one has its volume and instance replaced together (" + automation.TargetsWith[targets.DataVolume]() + ")",
	ArgsUsage: " ",
	Description: `Checks the snapshot first and refuses, changing nothing (exit 2), one that does
not exist, belongs to another stack, is not completed yet, or whose OpenClawAz
tag is missing or names another zone than the stack's. --latest takes the
stack's newest completed snapshot in its zone (snapshots list shows them).

On a stack that is deployed, it sets data_volume_snapshot_id and replaces the
data volume (the old one is deleted after a final snapshot, so nothing is lost)
and the instance together, in one up; the gateway is down until the new
instance is READY (about 6 minutes). On a stack that is not deployed here, it
deploys it with data_volume_snapshot_id, and availability_zone and aws:region
from the snapshot (give the rest with --config, --secret).

It shows the plan and asks; --yes does not ask (--json needs it).
--json: one "restorePlan" event (stack, snapshot, existing, volume, replace,
config), the up's events, then the result line.`,
	Flags: []cli.Flag{stackFlag, regionFlag,
		&cli.StringFlag{Name: "snapshot", Usage: "the snapshot to restore (snap-…)"},
		&cli.BoolFlag{Name: "latest", Usage: "the stack's newest completed snapshot in its zone"},
		&cli.BoolFlag{Name: "yes", Usage: "do not ask"},
		configFlag, secretFlag, secretFileFlag, configFileFlag, waitFlag, setupTimeoutFlag, setupPollFlag},
	Action: func(cliContext *cli.Context) error {
		stack, in, err := stackAndConfig(cliContext)
		if err != nil {
			return err
		}
		if cliContext.Bool("json") && !cliContext.Bool("yes") {
			return usageError("--json cannot ask: pass --yes")
		}
		return withDriver(cliContext, func(d *automation.Driver) error {
			plan, err := runbook.New(d).PlanRestore(cliContext.Context, stack, cliContext.String(regionFlag.Name), cliContext.String("snapshot"),
				cliContext.Bool("latest"), in)
			if err != nil {
				return finish(cliContext, stack, "restore", nil, err)
			}
			if cliContext.Bool("json") {
				printEvent("restorePlan", "", plan) // the plan names its stack itself
			} else {
				for _, step := range plan.Steps() {
					fmt.Fprintln(os.Stderr, "  "+step)
				}
			}
			if !cliContext.Bool("yes") && !confirm(os.Stdin, fmt.Sprintf("restore %s into %s?", plan.Snapshot.ID, stack)) {
				return finish(cliContext, stack, "restore", nil, usageError("not confirmed: nothing restored (--yes does not ask)"))
			}
			res, err := runbook.New(d).Restore(cliContext.Context, plan, in)
			return finish(cliContext, stack, "restore", outputsOf(res), err)
		})
	},
}
