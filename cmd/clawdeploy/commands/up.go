package commands

import (
	"github.com/urfave/cli/v2"
)

// Up creates or updates a deployment.
var Up = &cli.Command{
	Name:      "up",
	Usage:     "create or update the deployment's resources",
	ArgsUsage: " ",
	Description: `Validates the stack's configuration, then creates or updates its resources.
The stack is created in the backend if it does not exist yet.`,
	Flags: []cli.Flag{stackFlag, replaceFlag},
	Action: func(cliContext *cli.Context) error {
		stack, err := stackName(cliContext)
		if err != nil {
			return err
		}
		d, err := newDriver(cliContext)
		if err != nil {
			return err
		}
		_, err = d.Up(cliContext.Context, stack, upOptions(cliContext))
		return err
	},
}
