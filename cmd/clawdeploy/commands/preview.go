package commands

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy"
	"github.com/clawdeploy/clawdeploy/automation"
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
--expect-no-changes exits 1 when anything would change.`,
	Flags: []cli.Flag{stackFlag, configFlag, secretFlag, secretFileFlag, configFileFlag, replaceFlag,
		&cli.StringFlag{Name: "comment", Usage: "write a pull-request comment body (Markdown) to this file"},
		&cli.StringFlag{Name: "commit", Usage: "the commit the comment names", EnvVars: []string{"GITHUB_SHA"}},
		&cli.BoolFlag{Name: "expect-no-changes", Usage: "exit 1 when anything would change"}},
	Action: func(cliContext *cli.Context) error {
		stack, in, err := stackAndConfig(cliContext)
		if err != nil {
			return err
		}
		return withDriver(cliContext, func(d *automation.Driver) error {
			res, err := d.Preview(cliContext.Context, stack, &automation.UpOptions{Config: in, Replace: cliContext.StringSlice(replaceFlag.Name)})
			if err == nil {
				err = reportChanges(cliContext, stack, res)
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
	*automation.Changes
}

// reportChanges prints or writes what the preview found, and fails when changes were not
// expected.
func reportChanges(cliContext *cli.Context, stack string, res *automation.PreviewResult) error {
	c := res.Changes
	if cliContext.Bool("json") {
		_ = json.NewEncoder(os.Stdout).Encode(changesEvent{Time: time.Now().UTC(), Type: "changes", Stack: stack, Verdict: c.Verdict(), Changes: c})
	} else {
		fmt.Printf("%s: %d to create, %d to update, %d to replace, %d to delete, %d unchanged\n", c.Verdict(),
			c.Counts["create"], c.Counts["update"], c.Counts["replace"], c.Counts["delete"], c.Counts["same"])
		for _, r := range c.Resources {
			if r.Risk != "" {
				fmt.Printf("  %-8s %s %s: %s\n", r.Risk, r.Op, r.URN, r.Reason)
			}
		}
	}
	if file := cliContext.String("comment"); file != "" {
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
