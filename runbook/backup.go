package runbook

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/awsapi"
	"github.com/clawdeploy/clawdeploy/backup"
	"github.com/clawdeploy/clawdeploy/cloudinit"
)

// VerifyBackup proves that the stack's newest backup (version: that version of it) restores:
// the archive and every file against what the backup recorded, every SQLite database with
// PRAGMA integrity_check, unpacked into a scratch directory that is removed afterwards. A report
// that is not Restorable names what failed; the error is for what kept it from looking at all.
func (r *Runbook) VerifyBackup(ctx context.Context, stack, version string) (*backup.Report, error) {
	if err := automation.CheckStackName(stack); err != nil {
		return nil, err
	}
	if r.d.DataVolume() == nil {
		return nil, &automation.UsageError{Err: fmt.Errorf("a %s deployment keeps its data on the host's disk and has no backups in a bucket to verify", r.d.Target())}
	}
	if err := r.d.Existing(ctx, stack); err != nil {
		return nil, err
	}
	out, err := r.d.Outputs(ctx, stack)
	if err != nil {
		return nil, err
	}
	bucket, _ := out["backup_bucket"].Value.(string)
	region, _ := out["region"].Value.(string)
	if bucket == "" {
		return nil, fmt.Errorf("stack %s has no backup_bucket output: `clawdeploy up --stack %s` creates its bucket", stack, stack)
	}
	cfg, err := awsapi.Config(ctx, r.d.AWS(), region)
	if err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp("", "clawdeploy-verify-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(scratch) }()
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	r.d.Note(stack, "verifying s3://%s/%s%s", bucket, cloudinit.BackupObject, versionNote(version))
	report, err := backup.Verify(ctx, client, bucket, cloudinit.BackupObject, version, scratch)
	if err != nil && version == "" && awsapi.NotFound(err, "NoSuchKey") {
		return nil, fmt.Errorf("stack %s has no backup yet at s3://%s/%s: the instance takes one every backup_interval_minutes", stack, bucket, cloudinit.BackupObject)
	}
	return report, err
}

func versionNote(version string) string {
	if version == "" {
		return " (newest)"
	}
	return " version " + version
}
