package ec2spot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/clawdeploy/clawdeploy/awsapi"
	"github.com/clawdeploy/clawdeploy/backup"
	"github.com/clawdeploy/clawdeploy/cloudinit"
	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/snapshots"
	"github.com/clawdeploy/clawdeploy/targets"
)

// The data volume's copies the driver takes: the checkpoint before an upgrade, and the snapshot
// a destroy leaves.

// DefaultCheckpointBackupWait is how long Checkpointer waits for the instance's backup: the
// watcher reads requests every 30 s and a backup of a gigabyte takes about a minute.
const DefaultCheckpointBackupWait = 10 * time.Minute

// Checkpointer asks the instance for a backup of its state as it is now (package backup's
// Request, which the spot watcher answers) and snapshots the data volume, tagged as the volume's
// snapshots are plus OpenClawCheckpoint=pre-upgrade and the image it holds the data of. When the
// instance does not answer in BackupWait (it is down, or its watcher is), the checkpoint pins the
// newest backup there is instead, and says so; the snapshot is taken either way.
type Checkpointer struct {
	// Config is the AWS configuration; nil loads the default one, with the stack's region.
	Config *aws.Config
	// Now tells the time; nil means time.Now.
	Now func() time.Time
	// BackupWait bounds the wait for the instance's backup (0: DefaultCheckpointBackupWait);
	// Poll is how often the bucket is read meanwhile (0: 5 s).
	BackupWait, Poll time.Duration
}

// Checkpoint implements targets.Checkpointer.
func (c *Checkpointer) Checkpoint(ctx context.Context, stack string, outputs auto.OutputMap, from, to string) (*targets.Checkpoint, error) {
	volume, _ := outputs["data_volume_id"].Value.(string)
	zone, _ := outputs["availability_zone"].Value.(string)
	bucket, _ := outputs["backup_bucket"].Value.(string)
	region, _ := outputs["region"].Value.(string)
	if volume == "" {
		return nil, fmt.Errorf("stack %s has no data_volume_id output to snapshot", stack)
	}
	cfg, err := awsapi.Config(ctx, c.Config, region)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	cp := &targets.Checkpoint{From: from, To: to, At: now().UTC(), Volume: volume}
	if bucket != "" {
		if err := c.freshBackup(ctx, s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }), bucket, cp); err != nil {
			return nil, err
		}
	}
	tags := []ec2types.Tag{
		{Key: aws.String(components.TagData), Value: aws.String("true")},
		{Key: aws.String(components.TagStack), Value: aws.String(stack)},
		{Key: aws.String(components.TagAz), Value: aws.String(zone)},
		{Key: aws.String(targets.TagCheckpoint), Value: aws.String("pre-upgrade")},
		{Key: aws.String("OpenClawImage"), Value: aws.String(from)},
		{Key: aws.String("Name"), Value: aws.String(stack + "-pre-upgrade")},
	}
	snap, err := ec2.NewFromConfig(cfg).CreateSnapshot(ctx, &ec2.CreateSnapshotInput{
		VolumeId:          aws.String(volume),
		Description:       aws.String(fmt.Sprintf("clawdeploy: %s before the upgrade from %s to %s", stack, from, to)),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot, Tags: tags}},
	})
	if err != nil {
		return nil, fmt.Errorf("snapshotting the data volume %s: %w", volume, err)
	}
	cp.Snapshot = aws.ToString(snap.SnapshotId)
	return cp, nil
}

// freshBackup asks the instance for a backup and records it in cp; without an answer in time, it
// records the newest backup there is, and why it is not a fresh one.
func (c *Checkpointer) freshBackup(ctx context.Context, client *s3.Client, bucket string, cp *targets.Checkpoint) error {
	wait, poll := cmp.Or(c.BackupWait, DefaultCheckpointBackupWait), cmp.Or(c.Poll, 5*time.Second)
	id := "up-" + strconv.FormatInt(cp.At.UnixNano(), 36)
	if err := backup.Request(ctx, client, bucket, cloudinit.BackupRequestObject, id, "pre-upgrade"); err != nil {
		return err
	}
	got, err := backup.Await(ctx, client, bucket, cloudinit.BackupObject, cloudinit.BackupRequestObject, id, time.Now(), poll, wait)
	// Withdrawn whatever the answer, so that the next instance does not take it up.
	if werr := backup.Withdraw(context.WithoutCancel(ctx), client, bucket, cloudinit.BackupRequestObject); werr != nil && err == nil {
		err = werr
	}
	var failed *backup.FailedError
	switch {
	case err == nil:
		cp.BackupVersion, cp.BackupTakenAt, cp.BackupFresh = got.VersionID, got.TakenAt, true
		return nil
	case errors.As(err, &failed):
		cp.BackupNote = "no fresh backup: " + failed.Error()
	case errors.Is(err, backup.ErrNoAnswer):
		cp.BackupNote = fmt.Sprintf("no fresh backup: the instance did not answer a backup request in %s", wait)
	default:
		return err
	}
	head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(cloudinit.BackupObject)})
	switch {
	case err == nil:
		cp.BackupVersion = aws.ToString(head.VersionId)
		cp.BackupTakenAt, _ = time.Parse(time.RFC3339, head.Metadata["created"])
	case awsapi.NotFound(err, "NotFound", "NoSuchKey"):
		cp.BackupNote += ", and the bucket holds no backup yet"
	default:
		return fmt.Errorf("looking up the newest backup in %s: %w", bucket, err)
	}
	return nil
}

// FinalSnapshots marks the final snapshot in EC2.
type FinalSnapshots struct {
	// Config is the AWS configuration; nil loads the default one, with the stack's region.
	Config *aws.Config
}

// MarkFinal implements targets.FinalSnapshots.
func (f *FinalSnapshots) MarkFinal(ctx context.Context, stack string, outputs auto.OutputMap, since time.Time) ([]string, error) {
	volume, _ := outputs["data_volume_id"].Value.(string)
	region, _ := outputs["region"].Value.(string)
	if volume == "" {
		return nil, nil
	}
	cfg, err := awsapi.Config(ctx, f.Config, region)
	if err != nil {
		return nil, err
	}
	return snapshots.MarkFinal(ctx, ec2.NewFromConfig(cfg), stack, volume, since)
}
