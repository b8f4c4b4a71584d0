package commands

import (
	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
)

// Preview shows what up would change.
var Preview = &cli.Command{
	Name:      "preview",
	Usage:     "show what up would create, change or delete, touching nothing",
	ArgsUsage: " ",
	Description: `Validates the configuration and runs the program in preview mode: every change is
listed (the AZ guard and the other checks run), but no cloud resource is touched and
no lease is taken. The stack is created in the backend if it does not exist yet.`,
	Flags: []cli.Flag{stackFlag, configFlag, secretFlag, secretFileFlag, configFileFlag, replaceFlag},
	Action: func(cliContext *cli.Context) error {
		stack, in, err := stackAndConfig(cliContext)
		if err != nil {
			return err
		}
		return withDriver(cliContext, func(d *automation.Driver) error {
			_, err := d.Preview(cliContext.Context, stack, &automation.UpOptions{Config: in, Replace: cliContext.StringSlice(replaceFlag.Name)})
			return finish(cliContext, stack, "preview", nil, err)
		})
	},
}
