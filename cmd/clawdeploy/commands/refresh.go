package commands

import (
	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
)

// Refresh reads the deployment's resources back into the state.
var Refresh = &cli.Command{
	Name:      "refresh",
	Usage:     "read every resource back from the cloud into the state",
	ArgsUsage: " ",
	Flags:     []cli.Flag{stackFlag, waitFlag},
	Action: func(cliContext *cli.Context) error {
		stack, err := stackName(cliContext)
		if err != nil {
			return err
		}
		return withDriver(cliContext, func(d *automation.Driver) error {
			_, err := d.Refresh(cliContext.Context, stack)
			return finish(cliContext, stack, "refresh", nil, err)
		})
	},
}
