package commands

import (
	"errors"
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
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
lease to expire.

A deployment INSTALLING for 45 minutes without news (an update of its record; a lease
taken or given back is none) that no live owner holds becomes ERROR instead of being
resumed: resume --stack then exits 1 and points at up --retry.`,
	Flags: []cli.Flag{stackFlag, waitFlag,
		&cli.BoolFlag{Name: "all", Usage: "resume every unfinished deployment"},
		&cli.IntFlag{Name: "concurrency", Usage: "with --all, how many at a time", Value: automation.DefaultConcurrency},
		setupTimeoutFlag, setupPollFlag},
	Action: func(cliContext *cli.Context) error {
		return oneOrAll(cliContext, "resume",
			func(d *automation.Driver, stack string) (auto.OutputMap, error) {
				res, err := d.Resume(cliContext.Context, stack)
				return outputsOf(res), err
			},
			func(d *automation.Driver, n int, each func(string, auto.OutputMap, error)) (int, error) {
				results, err := d.ResumeAll(cliContext.Context, n, func(r automation.ResumeResult) {
					each(r.Stack, outputsOf(r.Result), r.Err)
				})
				return len(results), err
			})
	},
}

// oneOrAll runs an operation on --stack or, with --all, on every deployment it applies to,
// --concurrency at a time: one result per deployment, and an error naming those that failed.
func oneOrAll(cliContext *cli.Context, operation string,
	one func(d *automation.Driver, stack string) (auto.OutputMap, error),
	all func(d *automation.Driver, concurrency int, each func(stack string, outputs auto.OutputMap, err error)) (int, error)) error {
	every := cliContext.Bool("all")
	stack := cliContext.String(stackFlag.Name)
	if every == (stack != "") {
		return usageError("give either --stack or --all")
	}
	if !every {
		if err := automation.CheckStackName(stack); err != nil {
			return err
		}
	}
	n := cliContext.Int("concurrency")
	if n < 1 {
		return usageError("--concurrency must be 1 or more, got %d", n)
	}
	return withDriver(cliContext, func(d *automation.Driver) error {
		if !every {
			outputs, err := one(d, stack)
			return finish(cliContext, stack, operation, outputs, err)
		}
		var failed []error
		count, err := all(d, n, func(stack string, outputs auto.OutputMap, err error) {
			_ = finish(cliContext, stack, operation, outputs, err)
			if err != nil {
				failed = append(failed, fmt.Errorf("%s: %w", stack, err))
			}
		})
		if err != nil {
			return finish(cliContext, "", operation, nil, err)
		}
		if len(failed) > 0 {
			return fmt.Errorf("%d of %d deployments failed to %s: %w", len(failed), count, operation, errors.Join(failed...))
		}
		return nil
	})
}
