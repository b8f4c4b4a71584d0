package commands

import (
	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
)

// Destroy deletes a deployment's resources.
var Destroy = &cli.Command{
	Name:      "destroy",
	Usage:     "delete every resource of the deployment (ec2-spot: the data volume after a final snapshot; vps: its keys, not the host's data; an ordered VPS stops renewing)",
	ArgsUsage: " ",
	Description: `Deletes every resource of the stack. The data volume is snapshotted first, and the
snapshot carries its zone tag, so it can be restored; the backup bucket is retained.
A VPS ordered from a provider (vps_provider ovh) is released: its renewal is turned off
(OVHcloud deletes it at its expiry) and its termination asked for, which OVHcloud
confirms with the account holder by email; the result says what was done and what is
left to confirm ("released" in the --json result line). The journal goes DESTROYING →
DESTROYED. Requires --yes.`,
	Flags: []cli.Flag{stackFlag, waitFlag, &cli.BoolFlag{Name: "yes", Usage: "confirm the deletion"}, enqueueFlag},
	Action: func(cliContext *cli.Context) error {
		stack, err := stackName(cliContext)
		if err != nil {
			return err
		}
		if !cliContext.Bool("yes") {
			return usageError("destroy deletes every resource of stack %s: pass --yes to confirm", stack)
		}
		return withDriver(cliContext, func(d *automation.Driver) error {
			if cliContext.Bool(enqueueFlag.Name) {
				return enqueue(cliContext, d, stack, automation.OpDestroy, nil)
			}
			res, err := d.Destroy(cliContext.Context, stack)
			var more automation.Event
			if res != nil {
				more.Released = res.Released
			}
			return finishWith(cliContext, stack, "destroy", nil, more, err)
		})
	},
}
