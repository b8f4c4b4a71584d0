package commands

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/runbook"
	"github.com/clawdeploy/clawdeploy/snapshots"
	"github.com/clawdeploy/clawdeploy/targets"
)

var regionFlag = &cli.StringFlag{Name: "region", Usage: "the AWS region (default: the stack's); with it, the command works on the snapshots of a stack that no longer exists"}

// Snapshots groups the runbook's work on an ec2-spot deployment's data-volume snapshots.
var Snapshots = &cli.Command{
	Name:  "snapshots",
	Usage: "list, take and delete the snapshots of a deployment's data volume (" + automation.TargetsWith[targets.DataVolume]() + ")",
	Description: `The snapshots are found by their tags, OpenClawData=true and
OpenClawStack=<stack>; OpenClawAz names the zone a volume restored from one must
be in. Who made each one (ORIGIN): dlm (the stack's lifecycle policy),
final-on-destroy (the volume's deletion), manual-final (snapshots final),
pre-upgrade (the checkpoint of an up that deploys a new image), manual (anything
else with the stack's tags).`,
	Subcommands: []*cli.Command{{
		Name:      "list",
		Usage:     "the stack's snapshots, newest first, with who made them; a missing or wrong zone tag is flagged",
		ArgsUsage: " ",
		Description: `Prints TIME, ID, ZONE (the OpenClawAz tag), STATE, SIZE, ORIGIN and any
problem with the zone tag (missing, or not the zone of the stack's volume).
--json: one "snapshot" event per snapshot (id, stack, startTime, zone, state,
progress, sizeGiB, volumeId, origin, problem), then the result line.`,
		Flags: []cli.Flag{stackFlag, regionFlag},
		Action: onStack("snapshots list", func(cliContext *cli.Context, d *automation.Driver, stack string) ([]snapshots.Snapshot, error) {
			return runbook.New(d).ListSnapshots(cliContext.Context, stack, cliContext.String(regionFlag.Name))
		}, printSnapshots),
	}, {
		Name:      "final",
		Usage:     "snapshot the stack's data volume now (CreatedBy=manual-final) and wait until it is completed",
		ArgsUsage: " ",
		Description: `Tags the snapshot as the others are (OpenClawData, OpenClawStack, OpenClawAz)
plus CreatedBy=manual-final, shows its progress until EC2 says completed, and
prints its id. Take one before a destroy you may want to undo; destroy takes
one of its own as well (final-on-destroy).`,
		Flags: []cli.Flag{stackFlag, regionFlag, &cli.DurationFlag{Name: "poll", Value: 15 * time.Second, Usage: "how often to read the snapshot's progress"}},
		Action: onStack("snapshots final", func(cliContext *cli.Context, d *automation.Driver, stack string) ([]snapshots.Snapshot, error) {
			snap, err := runbook.New(d).FinalSnapshot(cliContext.Context, stack, cliContext.String(regionFlag.Name), cliContext.Duration("poll"))
			return []snapshots.Snapshot{snap}, err
		}, printSnapshots),
	}, {
		Name:      "policy",
		Usage:     "the stack's DLM policy: its state, schedule, retention and the newest snapshots it made",
		ArgsUsage: " ",
		Description: `Reads the policy the stack's snapshot_policy_id output names (or, for a stack
that is gone, the one whose target tags name it) from Data Lifecycle Manager:
its state (ENABLED, DISABLED, ERROR) and status message, every how many hours
it snapshots and at what time, how many it keeps, whether it copies the
volume's tags (the zone tag the AZ guard reads), and the 5 newest snapshots it
made. A stack with no policy exits 1, naming the tag it looked for.
--json: one "snapshotPolicy" event, then the result line.`,
		Flags: []cli.Flag{stackFlag, regionFlag},
		Action: onStack("snapshots policy", func(cliContext *cli.Context, d *automation.Driver, stack string) (*snapshots.Policy, error) {
			return runbook.New(d).SnapshotPolicy(cliContext.Context, stack, cliContext.String(regionFlag.Name))
		}, printPolicy),
	}, {
		Name:      "delete",
		Usage:     "delete the stack's manual and final snapshots: the ones named, or all --older-than an age",
		ArgsUsage: "[SNAPSHOT-ID ...]",
		Description: `Deletes the snapshots named, or with --older-than (30d, 12h) every one of the
stack's snapshots started longer ago, DLM's left to their policy. It refuses,
deleting nothing (exit 2): an id that does not exist, a snapshot another stack
owns (even with --force), and one DLM made (unless --force). It shows what it
would delete and asks; --yes does not ask (and --json needs it).`,
		Flags: []cli.Flag{stackFlag, regionFlag,
			&cli.StringFlag{Name: "older-than", Usage: "delete every manual and final snapshot older than this (30d, 12h, 90m)"},
			&cli.BoolFlag{Name: "force", Usage: "DLM's snapshots too"},
			&cli.BoolFlag{Name: "yes", Usage: "do not ask"}},
		Action: func(cliContext *cli.Context) error {
			stack, err := stackName(cliContext)
			if err != nil {
				return err
			}
			var olderThan time.Duration
			if v := cliContext.String("older-than"); v != "" {
				if olderThan, err = parseAge(v); err != nil {
					return usageError("--older-than %q: %v", v, err)
				}
			}
			if cliContext.Bool("json") && !cliContext.Bool("yes") {
				return usageError("--json cannot ask: pass --yes")
			}
			return withDriver(cliContext, func(d *automation.Driver) error {
				plan, err := runbook.New(d).PlanSnapshotDeletion(cliContext.Context, stack, cliContext.String(regionFlag.Name),
					cliContext.Args().Slice(), olderThan, cliContext.Bool("force"))
				if err != nil {
					return finish(cliContext, stack, "snapshots delete", nil, err)
				}
				chosen := plan.Snapshots
				if len(chosen) == 0 {
					fmt.Fprintf(os.Stderr, "no snapshot of %s is older than %s\n", stack, cliContext.String("older-than"))
					return finish(cliContext, stack, "snapshots delete", nil, nil)
				}
				if !cliContext.Bool("yes") {
					printSnapshots(cliContext, stack, chosen)
					if !confirm(os.Stdin, fmt.Sprintf("delete these %d snapshots of %s?", len(chosen), stack)) {
						return finish(cliContext, stack, "snapshots delete", nil, usageError("not confirmed: nothing deleted (--yes does not ask)"))
					}
				}
				_, err = runbook.New(d).DeleteSnapshots(cliContext.Context, plan)
				return finish(cliContext, stack, "snapshots delete", nil, err)
			})
		},
	}},
}

// onStack is the action of a command that reads (or makes) something of --stack's and prints
// it: read runs with the driver, print shows what it returned, and the result line follows.
func onStack[T any](operation string, read func(*cli.Context, *automation.Driver, string) (T, error),
	print func(*cli.Context, string, T),
) cli.ActionFunc {
	return func(cliContext *cli.Context) error {
		stack, err := stackName(cliContext)
		if err != nil {
			return err
		}
		return withDriver(cliContext, func(d *automation.Driver) error {
			v, err := read(cliContext, d, stack)
			if err == nil {
				print(cliContext, stack, v)
			}
			return finish(cliContext, stack, operation, nil, err)
		})
	}
}

// parseAge reads an age: a Go duration (12h, 90m) or a number of days (30d).
func parseAge(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("days must be a whole number from 1, as in 30d")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	age, err := time.ParseDuration(v)
	if err != nil || age <= 0 {
		return 0, fmt.Errorf("want a positive age: 30d, 12h or 90m")
	}
	return age, nil
}

// confirm asks question on stderr and reads the answer: only y or yes agrees.
func confirm(in io.Reader, question string) bool {
	fmt.Fprintf(os.Stderr, "%s [y/N] ", question)
	answer, _ := bufio.NewReader(in).ReadString('\n')
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes"
}

func printSnapshots(cliContext *cli.Context, stack string, list []snapshots.Snapshot) {
	if cliContext.Bool("json") {
		for _, s := range list {
			printEvent("snapshot", "", s) // a snapshot names its stack itself
		}
		return
	}
	if len(list) == 0 {
		fmt.Fprintf(os.Stderr, "no snapshot carries OpenClawData=true and OpenClawStack=%s\n", stack)
		return
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "TIME\tID\tZONE\tSTATE\tSIZE\tORIGIN\tPROBLEM")
	for _, s := range list {
		state := s.State
		if s.Progress != "" && s.State != "completed" {
			state += " " + s.Progress
		}
		_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d GiB\t%s\t%s\n", s.StartTime.Format(time.RFC3339), s.ID, s.Zone, state, s.SizeGiB, s.Origin, s.Problem)
	}
	_ = w.Flush()
}

func printPolicy(cliContext *cli.Context, stack string, p *snapshots.Policy) {
	if cliContext.Bool("json") {
		printEvent("snapshotPolicy", stack, p)
		return
	}
	fmt.Printf("policy %s: %s", p.ID, p.State)
	if p.StatusMessage != "" && p.StatusMessage != p.State {
		fmt.Printf(" (%s)", p.StatusMessage)
	}
	fmt.Println()
	at := ""
	if len(p.Times) > 0 {
		at = " from " + strings.Join(p.Times, ", ") + " UTC"
	}
	fmt.Printf("schedule: every %d hours%s, keeps the newest %d, copies the volume's tags: %v\n", p.IntervalHours, at, p.RetainCount, p.CopyTags)
	var targets []string
	for k, v := range p.TargetTags {
		targets = append(targets, k+"="+v)
	}
	slices.Sort(targets)
	fmt.Printf("targets: volumes tagged %s\n", strings.Join(targets, ", "))
	if len(p.Newest) == 0 {
		fmt.Println("newest snapshots: none yet")
		return
	}
	fmt.Println("newest snapshots:")
	printSnapshots(cliContext, stack, p.Newest)
}
