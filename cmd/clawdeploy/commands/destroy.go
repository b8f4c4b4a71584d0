package commands

import (
	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
)

// Destroy deletes a deployment's resources.
var Destroy = &cli.Command{
	Name:      "destroy",
	Usage:     "delete every resource of the deployment (ec2-spot: the data volume after a final snapshot; vps: its keys, not the host's data)",
	ArgsUsage: " ",
	Description: `Deletes every resource of the stack. The data volume is snapshotted first, and the
snapshot carries its zone tag, so it can be restored; the backup bucket is retained.
The journal goes DESTROYING → DESTROYED. Requires --yes.`,
	Flags: []cli.Flag{stackFlag, waitFlag, &cli.BoolFlag{Name: "yes", Usage: "confirm the deletion"}},
	Action: func(cliContext *cli.Context) error {
		stack, err := stackName(cliContext)
		if err != nil {
			return err
		}
		if !cliContext.Bool("yes") {
			return usageError("destroy deletes every resource of stack %s: pass --yes to confirm", stack)
		}
		return withDriver(cliContext, func(d *automation.Driver) error {
			_, err := d.Destroy(cliContext.Context, stack)
			return finish(cliContext, stack, "destroy", nil, err)
		})
	},
}
