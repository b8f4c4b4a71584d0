package commands

import (
	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
)

// Up creates or updates a deployment.
var Up = &cli.Command{
	Name:      "up",
	Usage:     "create or update the deployment, then wait for its setup to complete",
	ArgsUsage: " ",
	Description: `Validates the stack's configuration (refusing, with exit 2, before anything is touched),
takes the deployment's lease, runs the engine, and waits for the setup script to
complete. The journal goes PENDING → PROVISIONING → INSTALLING → READY, or ERROR.

--retry starts a deployment in ERROR over: its stage is reset and the setup runs
again (ec2-spot: on a new instance; vps: relaunched on the host).`,
	Flags: []cli.Flag{stackFlag, configFlag, secretFlag, secretFileFlag, configFileFlag, replaceFlag, waitFlag,
		&cli.BoolFlag{Name: "retry", Usage: "start over from a clean stage, relaunching the setup"},
		setupTimeoutFlag, setupPollFlag},
	Action: func(cliContext *cli.Context) error {
		stack, in, err := stackAndConfig(cliContext)
		if err != nil {
			return err
		}
		return withDriver(cliContext, func(d *automation.Driver) error {
			res, err := d.Up(cliContext.Context, stack, &automation.UpOptions{
				Config: in, Replace: cliContext.StringSlice(replaceFlag.Name), Retry: cliContext.Bool("retry"),
			})
			return finish(cliContext, stack, "up", outputsOf(res), err)
		})
	},
}
