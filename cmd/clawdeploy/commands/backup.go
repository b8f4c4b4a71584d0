package commands

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/backup"
	"github.com/clawdeploy/clawdeploy/runbook"
	"github.com/clawdeploy/clawdeploy/targets"
)

// Backup groups what clawdeploy does with an ec2-spot deployment's backups.
var Backup = &cli.Command{
	Name:  "backup",
	Usage: "work with a deployment's backups in its bucket (" + automation.TargetsWith[targets.DataVolume]() + ")",
	Subcommands: []*cli.Command{{
		Name:      "verify",
		Usage:     "prove that a backup restores: checksums, every file, every SQLite database",
		ArgsUsage: " ",
		Description: `Downloads the stack's newest backup (or --version ID) from its bucket into
a scratch directory, checks the archive against the SHA-256 the backup recorded
and every file against the manifest inside it (both ways: nothing missing,
nothing unlisted), runs PRAGMA integrity_check on every SQLite database, and
prints "restorable, taken at T (reason), N files, M databases".

With --json: one "backup" event with the report (bucket, key, versionId, takenAt,
reason, sha256, size, files, databases, restorable, problems[{file, why}]),
then the result line.

Exit codes: 0 restorable; 1 not restorable (each problem names its file) or
the bucket could not be read; 2 bad usage (a vps deployment has no bucket).
Older versions: aws s3api list-object-versions --bucket <backup_bucket>
--prefix backups/latest.tar.gz.`,
		Flags: []cli.Flag{stackFlag, &cli.StringFlag{Name: "version", Usage: "verify this S3 version of the backup instead of the newest"}},
		Action: func(cliContext *cli.Context) error {
			stack, err := stackName(cliContext)
			if err != nil {
				return err
			}
			return withDriver(cliContext, func(d *automation.Driver) error {
				report, err := runbook.New(d).VerifyBackup(cliContext.Context, stack, cliContext.String("version"))
				if err == nil && !report.Restorable {
					err = &NotRestorableError{Report: report}
				}
				if report != nil {
					if cliContext.Bool("json") {
						_ = json.NewEncoder(os.Stdout).Encode(backupEvent{Time: time.Now().UTC(), Type: "backup", Stack: stack, Report: report})
					} else {
						printReport(report)
					}
				}
				return finish(cliContext, stack, "backup verify", nil, err)
			})
		},
	}},
}

// NotRestorableError is a backup that was read and failed its checks: exit 1.
type NotRestorableError struct{ Report *backup.Report }

func (e *NotRestorableError) Error() string {
	r := e.Report
	return fmt.Sprintf("the backup s3://%s/%s (version %s) is not restorable: %s", r.Bucket, r.Key, r.VersionID, r.Problems[0])
}

// backupEvent is the report as an NDJSON event.
type backupEvent struct {
	Time  time.Time `json:"time"`
	Type  string    `json:"type"`
	Stack string    `json:"stack"`
	*backup.Report
}

func printReport(r *backup.Report) {
	fmt.Printf("s3://%s/%s version %s, %d bytes\n", r.Bucket, r.Key, r.VersionID, r.Size)
	for _, p := range r.Problems {
		fmt.Printf("  FAILED %s\n", p)
	}
	fmt.Println(r.Summary())
}
