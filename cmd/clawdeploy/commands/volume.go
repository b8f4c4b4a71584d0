package commands

import (
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/runbook"
	"github.com/clawdeploy/clawdeploy/targets"
	"github.com/clawdeploy/clawdeploy/volumes"
)

// Volume groups the runbook's work on an ec2-spot deployment's data volume.
var Volume = &cli.Command{
	Name:  "volume",
	Usage: "diagnose and free the deployment's data volume (" + automation.TargetsWith[targets.DataVolume]() + ")",
	Subcommands: []*cli.Command{{
		Name:      "unstick",
		Usage:     "free a data volume an up cannot attach (VolumeInUse): detach it from what holds it, then refresh",
		ArgsUsage: " ",
		Description: `Reads the stack's data volume from EC2 and says what holds it:
  free                   attached to nothing: an up attaches it (nothing to do)
  attached-to-the-stack  attached to the instance the state holds (nothing stuck)
  attached-elsewhere     attached to an instance the state does not hold: a
                         replacement's old instance that outlived the state
  detaching              detaching for less than 10 minutes: wait
  stuck-detaching        detaching for 10 minutes or more: only --force-detach
                         ends it (a forced detachment can lose writes the old
                         instance had not flushed)
It shows what it found and, for the last two that need it, asks before it
detaches (--yes does not ask; --json needs it), waits until the volume is
available, and refreshes the stack. --apply then runs the up that failed.
--json: one "volume" event (volume, zone, state, finding, instance,
instanceState, attachment, since, why), then the result line.`,
		Flags: []cli.Flag{stackFlag, regionFlag,
			&cli.BoolFlag{Name: "force-detach", Usage: "force the detachment of an attachment stuck detaching"},
			&cli.BoolFlag{Name: "yes", Usage: "do not ask"},
			&cli.BoolFlag{Name: "apply", Usage: "run up once the volume is free"},
			&cli.DurationFlag{Name: "poll", Value: 5 * time.Second, Usage: "how often to read the volume while it detaches"},
			setupTimeoutFlag, setupPollFlag},
		Action: func(cliContext *cli.Context) error {
			stack, err := stackName(cliContext)
			if err != nil {
				return err
			}
			if cliContext.Bool("json") && !cliContext.Bool("yes") {
				return usageError("--json cannot ask: pass --yes")
			}
			return withDriver(cliContext, func(d *automation.Driver) error {
				found, err := runbook.New(d).DiagnoseVolume(cliContext.Context, stack, cliContext.String(regionFlag.Name))
				if err != nil {
					return finish(cliContext, stack, "volume unstick", nil, err)
				}
				diag := found.Diagnosis
				if cliContext.Bool("json") {
					printEvent("volume", stack, diag)
				} else {
					fmt.Printf("%s: %s\n", diag.Finding, diag.Why)
				}
				switch {
				case !diag.NeedsDetach():
					return finish(cliContext, stack, "volume unstick", nil, nil)
				case diag.Finding == volumes.Stuck && !cliContext.Bool("force-detach"):
					return finish(cliContext, stack, "volume unstick", nil,
						usageError("%s is stuck detaching from %s: pass --force-detach to end it (nothing was changed)", diag.Volume, diag.Instance))
				case !cliContext.Bool("yes") && !confirm(os.Stdin, fmt.Sprintf("detach %s from %s and refresh %s?", diag.Volume, diag.Instance, stack)):
					return finish(cliContext, stack, "volume unstick", nil, usageError("not confirmed: nothing detached (--yes does not ask)"))
				}
				res, err := runbook.New(d).Unstick(cliContext.Context, found, cliContext.Bool("force-detach"), cliContext.Duration("poll"))
				if err == nil && cliContext.Bool("apply") {
					res, err = d.Up(cliContext.Context, stack, &automation.UpOptions{})
				}
				return finish(cliContext, stack, "volume unstick", outputsOf(res), err)
			})
		},
	}},
}
