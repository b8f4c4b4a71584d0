package commands

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy"
	"github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/preview"
	"github.com/clawdeploy/clawdeploy/targets"
)

// Preview shows what up would change.
var Preview = &cli.Command{
	Name:      "preview",
	Usage:     "show what up would create, change or delete, and what that risks, touching nothing",
	ArgsUsage: " ",
	Description: `Validates the configuration and runs the program in preview mode: every change is
listed (the AZ guard and the other checks run), but no cloud resource is touched and
no lease is taken. A stack that does not exist yet is made for the preview and
removed again; the configuration given is previewed, not kept.

The changes are summed up for reviewers: counts per operation, and each resource
that would change with its risk: data (the data volume, the backup bucket, the
snapshot policy or a secret parameter replaced or deleted; a change of
availability_zone or data_volume_snapshot_id that the stack ignores), downtime
(the instance replaced, with the property and the configuration key that force it,
and the minutes until READY again) or access (IAM, security groups, bucket policy).

--json prints them as one "changes" event before the result line.
--comment FILE writes them as the Markdown body of a pull-request comment: a hidden
marker naming project and stack, the verdict, the counts, the data-at-risk,
downtime and access blocks, then the engine's diff collapsed (cut, never the
summary, to stay within GitHub's 65,536 characters).
--expect-no-changes exits 1 when anything would change.
--cost adds the monthly cost (` + automation.TargetsWith[targets.Previewer]() + `): the Spot price of the last 7 days, the
volumes, snapshots and backups, now and after the change, and the on-demand price
beside it; a price that cannot be had is a line saying why, never a failure.
--policy-pack DIR (repeatable) runs a policy pack against the program: its
violations go into the changes event and the comment, and a mandatory one fails
the preview (exit 1). policy/awsguard is AWSGuard, Pulumi's AWS rules, pinned.

A fleet: --all (every deployment the journal knows and, in operator mode, every
Pulumi.<stack>.yaml) or --stacks a,b,c previews each, --concurrency at a time: one
"changes" event and one result line per stack, and one comment ("N of M stacks
would replace their instance, K put data at risk", a row per stack, the details
collapsed). The exit code is the most urgent among the stacks'.`,
	Flags: []cli.Flag{stackFlag, configFlag, secretFlag, secretFileFlag, configFileFlag, replaceFlag,
		&cli.StringFlag{Name: "comment", Usage: "write a pull-request comment body (Markdown) to this file"},
		&cli.StringFlag{Name: "commit", Usage: "the commit the comment names", EnvVars: []string{"GITHUB_SHA"}},
		&cli.BoolFlag{Name: "expect-no-changes", Usage: "exit 1 when anything would change"},
		refreshImageFlag,
		&cli.BoolFlag{Name: "cost", Usage: "estimate the monthly cost now and after the change (" + automation.TargetsWith[targets.Previewer]() + "; needs AWS credentials)"},
		&cli.StringSliceFlag{Name: "policy-pack", Usage: "run this policy pack directory against the program (repeatable)"},
		&cli.BoolFlag{Name: "all", Usage: "preview every deployment (the journal's; in operator mode, every stack file's too)"},
		&cli.StringFlag{Name: "stacks", Usage: "preview these stacks, comma-separated"},
		&cli.IntFlag{Name: "concurrency", Usage: "with --all or --stacks, how many at a time", Value: automation.DefaultConcurrency}},
	Action: func(cliContext *cli.Context) error {
		if cliContext.Bool("all") || cliContext.IsSet("stacks") {
			return previewFleet(cliContext)
		}
		stack, in, err := stackAndConfig(cliContext)
		if err != nil {
			return err
		}
		return withDriver(cliContext, func(d *automation.Driver) error {
			res, err := d.Preview(cliContext.Context, stack, &automation.UpOptions{Config: in, Replace: cliContext.StringSlice(replaceFlag.Name), RefreshImage: cliContext.Bool(refreshImageFlag.Name),
				Cost: cliContext.Bool("cost"), PolicyPacks: cliContext.StringSlice("policy-pack")})
			if res != nil {
				// A preview a mandatory policy refused still reports what it found.
				if rerr := reportChanges(cliContext, stack, res, true); err == nil {
					err = rerr
				}
			}
			return finish(cliContext, stack, "preview", nil, err)
		})
	},
}

// changesEvent is the preview's summary as an NDJSON event.
type changesEvent struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Stack   string    `json:"stack"`
	Verdict string    `json:"verdict"`
	*preview.Changes
	Cost *targets.CostComparison `json:"cost,omitempty"`
}

// reportChanges prints or writes what the preview found, and fails when changes were not
// expected.
func reportChanges(cliContext *cli.Context, stack string, res *automation.PreviewResult, comment bool) error {
	c := res.Changes
	if cliContext.Bool("json") {
		_ = json.NewEncoder(os.Stdout).Encode(changesEvent{Time: time.Now().UTC(), Type: "changes", Stack: stack, Verdict: c.Verdict(), Changes: c, Cost: res.Cost})
	} else {
		fmt.Printf("%s: %d to create, %d to update, %d to replace, %d to delete, %d unchanged\n", c.Verdict(),
			c.Counts["create"], c.Counts["update"], c.Counts["replace"], c.Counts["delete"], c.Counts["same"])
		for _, r := range c.Resources {
			if r.Risk != "" {
				fmt.Printf("  %-8s %s %s: %s\n", r.Risk, r.Op, r.URN, r.Reason)
			}
		}
		if c.Image != nil {
			fmt.Printf("  image    %s\n", c.Image)
		}
		if res.Cost != nil {
			fmt.Printf("cost: %.2f USD a month after the change (%+.2f)\n", res.Cost.Change.Total, res.Cost.Delta)
			for _, p := range res.Cost.Change.Problems {
				fmt.Printf("  not priced: %s\n", p)
			}
		}
	}
	if file := cliContext.String("comment"); file != "" && comment {
		body := res.Comment(clawdeploy.Project, stack, cliContext.String("commit"))
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			return fmt.Errorf("writing the comment: %w", err)
		}
	}
	if cliContext.Bool("expect-no-changes") && (c.Changed() > 0 || len(c.Ignored) > 0) {
		return fmt.Errorf("--expect-no-changes: the preview of %s found changes: %s", stack, c.Verdict())
	}
	return nil
}

// previewFleet previews several stacks and writes one comment for them all.
func previewFleet(cliContext *cli.Context) error {
	var stacks []string
	switch {
	case cliContext.Bool("all") && cliContext.IsSet("stacks"), cliContext.IsSet(stackFlag.Name):
		return usageError("give one of --stack, --stacks or --all")
	case cliContext.IsSet("stacks"):
		for _, s := range strings.Split(cliContext.String("stacks"), ",") {
			if s = strings.TrimSpace(s); s != "" {
				stacks = append(stacks, s)
			}
		}
		if len(stacks) == 0 {
			return usageError("--stacks names no stack: give them comma-separated, like dev,prod")
		}
	}
	if n := cliContext.Int("concurrency"); n < 1 {
		return usageError("--concurrency must be 1 or more, got %d", n)
	}
	in, err := configInput(cliContext)
	if err != nil {
		return err
	}
	return withDriver(cliContext, func(d *automation.Driver) error {
		var failed []error
		previews, err := d.PreviewStacks(cliContext.Context, stacks, &automation.UpOptions{Config: in, Replace: cliContext.StringSlice(replaceFlag.Name), RefreshImage: cliContext.Bool(refreshImageFlag.Name),
			Cost: cliContext.Bool("cost"), PolicyPacks: cliContext.StringSlice("policy-pack")},
			cliContext.Int("concurrency"), func(p automation.StackPreview) {
				err := p.Err
				if p.Result != nil {
					if rerr := reportChanges(cliContext, p.Stack, p.Result, false); err == nil {
						err = rerr
					}
				}
				_ = finish(cliContext, p.Stack, "preview", nil, err)
				if err != nil {
					failed = append(failed, fmt.Errorf("%s: %w", p.Stack, err))
				}
			})
		if err != nil {
			return finish(cliContext, "", "preview", nil, err)
		}
		if file := cliContext.String("comment"); file != "" {
			body := preview.FleetComment(clawdeploy.Project, cliContext.String("commit"), previews)
			if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
				return fmt.Errorf("writing the comment: %w", err)
			}
		}
		if len(failed) > 0 {
			return fmt.Errorf("%d of %d previews failed or found changes not expected: %w", len(failed), len(previews), errors.Join(failed...))
		}
		return nil
	})
}
