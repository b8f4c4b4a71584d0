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
complete. The journal goes PENDING → PROVISIONING → INSTALLING → READY, or ERROR;
a VPS ordered from OVHcloud (--target vps, vps_provider ovh) is ordered, delivered
(ORDERING from its checkout to its delivery) and rebuilt first, once per deployment.

--retry starts a deployment in ERROR over: its stage is reset and the setup runs
again (ec2-spot: on a new instance; vps: relaunched on the host; an ordered VPS
keeps its order, waits on for its delivery, and is never rebuilt again).

A new openclaw_image is an upgrade. Before it replaces the instance (ec2-spot),
up asks the instance for a fresh backup and pins its S3 version (the newest
backup, said so, when the instance does not answer in 10 minutes) and snapshots
the data volume (tagged OpenClawCheckpoint=pre-upgrade): the pre-upgrade
checkpoint, named in the result
(--json: "checkpoint") and kept in the journal. When the new image does not
become healthy, the error says so; --rollback then deploys again the last image
that reached READY (the digest it ran, not what its tag says now), and names
the checkpoint to restore if the new version changed the data.

The image is pinned: the first up resolves openclaw_image's tag to its digest
through the registry (the Docker config's credentials when it has some) and
records it (the stack's clawdeploy:openclawImage, the openclaw_image output,
the journal); every host of the stack runs that digest, so a heal, a replaced
instance or a restart never upgrades OpenClaw behind your back. When the tag
moves, preview says so and nothing changes until up --refresh-image, which
follows the tag: an upgrade like any other, with its checkpoint. An image given
by digest (repository:tag@sha256:…) needs no registry.`,
	Flags: []cli.Flag{stackFlag, configFlag, secretFlag, secretFileFlag, configFileFlag, replaceFlag, waitFlag,
		&cli.BoolFlag{Name: "retry", Usage: "start over from a clean stage, relaunching the setup"},
		&cli.BoolFlag{Name: "rollback", Usage: "deploy again the last openclaw_image that reached READY (after a failed upgrade)"},
		refreshImageFlag,
		setupTimeoutFlag, setupPollFlag, enqueueFlag},
	Action: func(cliContext *cli.Context) error {
		stack, in, err := stackAndConfig(cliContext)
		if err != nil {
			return err
		}
		return withDriver(cliContext, func(d *automation.Driver) error {
			opts := &automation.UpOptions{
				Config: in, Replace: cliContext.StringSlice(replaceFlag.Name), Retry: cliContext.Bool("retry"),
				Rollback: cliContext.Bool("rollback"), RefreshImage: cliContext.Bool(refreshImageFlag.Name),
			}
			if cliContext.Bool(enqueueFlag.Name) {
				return enqueue(cliContext, d, stack, automation.OpUp, opts)
			}
			res, err := d.Up(cliContext.Context, stack, opts)
			var cp *automation.Checkpoint
			if res != nil {
				cp = res.Checkpoint
			}
			return finishWith(cliContext, stack, "up", outputsOf(res), automation.Event{Checkpoint: cp}, err)
		})
	},
}
