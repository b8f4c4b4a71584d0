package commands

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/targets"
)

// Render prints generated files.
var Render = &cli.Command{
	Name:  "render",
	Usage: "print files the program generates, for inspection",
	Subcommands: []*cli.Command{{
		Name:      "user-data",
		Usage:     "print the user-data of a stack's instance for its configuration (" + automation.TargetsWith[targets.UserDataRenderer]() + ")",
		ArgsUsage: " ",
		Description: `Prints the cloud-config the program would pass to the instance (uncompressed), for
the stack's configuration with --config/--secret/--config-file applied. The user-data
never holds a secret: the header lists each one by the SSM parameter the instance
reads it from. A deployed stack's real volume and bucket are used; otherwise
placeholders stand in.`,
		Flags: []cli.Flag{stackFlag, configFlag, secretFlag, secretFileFlag, configFileFlag},
		Action: func(cliContext *cli.Context) error {
			if err := automation.HasUserData(cliContext.String("target")); err != nil {
				return err
			}
			stack, in, err := stackAndConfig(cliContext)
			if err != nil {
				return err
			}
			return withDriver(cliContext, func(d *automation.Driver) error {
				doc, err := d.UserData(cliContext.Context, stack, in)
				if err != nil {
					return err
				}
				_, err = os.Stdout.Write(doc)
				return err
			})
		},
	}},
}
