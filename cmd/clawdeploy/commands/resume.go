package commands

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
)

// Resume continues interrupted deployments.
var Resume = &cli.Command{
	Name:      "resume",
	Usage:     "continue a deployment (or all) that a killed or interrupted process left half done",
	ArgsUsage: " ",
	Description: `Recovers, in order: takes the deployment's lease (a live owner elsewhere: exit 3);
stops what a dead owner left running and cancels a state lock whose owner is
provably dead (a live one is never touched); resolves resources whose creation was
cut short (found: imported; provably absent: cleared); then runs up with refresh
(or the interrupted destroy) and waits for the setup. A READY deployment costs
nothing.

--all resumes every unfinished deployment nobody live holds, --concurrency at a
time, at once: a dead owner on this host is recognised without waiting for its
lease to expire. Deployments stuck in INSTALLING for 45 minutes become ERROR.`,
	Flags: []cli.Flag{stackFlag, waitFlag,
		&cli.BoolFlag{Name: "all", Usage: "resume every unfinished deployment"},
		&cli.IntFlag{Name: "concurrency", Usage: "with --all, how many at a time", Value: automation.DefaultConcurrency},
		setupTimeoutFlag, setupPollFlag},
	Action: func(cliContext *cli.Context) error {
		all := cliContext.Bool("all")
		stack := cliContext.String(stackFlag.Name)
		if all == (stack != "") {
			return usageError("give either --stack or --all")
		}
		if !all {
			if err := automation.CheckStackName(stack); err != nil {
				return err
			}
		}
		if n := cliContext.Int("concurrency"); n < 1 {
			return usageError("--concurrency must be 1 or more, got %d", n)
		}
		return withDriver(cliContext, func(d *automation.Driver) error {
			if !all {
				res, err := d.Resume(cliContext.Context, stack)
				return finish(cliContext, stack, "resume", outputsOf(res), err)
			}
			var failed []error
			results, err := d.ResumeAll(cliContext.Context, cliContext.Int("concurrency"), func(r automation.ResumeResult) {
				_ = finish(cliContext, r.Stack, "resume", outputsOf(r.Result), r.Err)
				if r.Err != nil {
					failed = append(failed, fmt.Errorf("%s: %w", r.Stack, r.Err))
				}
			})
			if err != nil {
				return finish(cliContext, "", "resume", nil, err)
			}
			if len(failed) > 0 {
				return fmt.Errorf("%d of %d deployments did not resume: %w", len(failed), len(results), errors.Join(failed...))
			}
			return nil
		})
	},
}
