package commands

import (
	"github.com/urfave/cli/v2"
)

// Preview shows what up would change.
var Preview = &cli.Command{
	Name:      "preview",
	Usage:     "show what up would create, change or delete, touching nothing",
	ArgsUsage: " ",
	Description: `Runs the program in preview mode: configuration is validated and every change is
listed, but no cloud resource is touched. The stack is created in the backend if it
does not exist yet.`,
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
		_, err = d.Preview(cliContext.Context, stack, upOptions(cliContext))
		return err
	},
}
