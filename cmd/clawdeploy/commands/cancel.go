package commands

import (
	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
)

// Cancel frees a deployment whose owner died.
var Cancel = &cli.Command{
	Name:      "cancel",
	Usage:     "free a deployment whose owner died: stop its leftovers, remove the state lock",
	ArgsUsage: " ",
	Description: `Only with proof that the owner is dead (its process gone from this host, or its
lease expired), or --force. Stops the Pulumi CLI and plugins the owner left, removes
the stack's state lock and marks the deployment interrupted, so that resume
continues it.`,
	Flags: []cli.Flag{stackFlag, &cli.BoolFlag{Name: "force", Usage: "take the deployment from a live owner"}},
	Action: func(cliContext *cli.Context) error {
		stack, err := stackName(cliContext)
		if err != nil {
			return err
		}
		return withDriver(cliContext, func(d *automation.Driver) error {
			_, err := d.Cancel(cliContext.Context, stack, cliContext.Bool("force"))
			return finish(cliContext, stack, "cancel", nil, err)
		})
	},
}
