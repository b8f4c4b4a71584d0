package commands

import (
	"github.com/urfave/cli/v2"
)

// Destroy deletes a deployment's resources.
var Destroy = &cli.Command{
	Name:      "destroy",
	Usage:     "delete every resource of the deployment",
	ArgsUsage: " ",
	Description: `Deletes every resource of the stack, the data volume included. The stack's
history and configuration remain in the backend. Requires --yes.`,
	Flags: []cli.Flag{
		stackFlag,
		&cli.BoolFlag{Name: "yes", Usage: "confirm the deletion"},
	},
	Action: func(cliContext *cli.Context) error {
		stack, err := stackName(cliContext)
		if err != nil {
			return err
		}
		if !cliContext.Bool("yes") {
			return usageError("destroy deletes every resource of stack %s, the data volume included: "+
				"pass --yes to confirm", stack)
		}
		d, err := newDriver(cliContext)
		if err != nil {
			return err
		}
		_, err = d.Destroy(cliContext.Context, stack)
		return err
	},
}
