package automation

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/clawdeploy/clawdeploy/backup"
	"github.com/clawdeploy/clawdeploy/cloudinit"
	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/infra"
	"github.com/clawdeploy/clawdeploy/journal"
)

// TagCheckpoint marks a snapshot the driver took before an upgrade; its value says why
// (pre-upgrade), beside the data volume's own tags, so `snapshots list` tells it apart.
const TagCheckpoint = "OpenClawCheckpoint"

// Checkpoint is what an upgrade of the OpenClaw image can be undone to: copies of the data taken
// before the new image replaced the instance, and the image the deployment was READY with.
type Checkpoint struct {
	// From is the image the deployment was READY with, To the one the upgrade deploys.
	From string    `json:"from"`
	To   string    `json:"to"`
	At   time.Time `json:"at"`
	// Snapshot is an EBS snapshot of Volume, the data volume, taken at At.
	Snapshot string `json:"snapshot,omitempty"`
	Volume   string `json:"volume,omitempty"`
	// BackupVersion is the S3 version of a backup taken at BackupTakenAt: the one the instance
	// took for the checkpoint (BackupFresh), or, when it did not answer in time (BackupNote says
	// so), the newest one there was. The bucket is versioned, so it stays whatever the new image
	// writes.
	BackupVersion string    `json:"backupVersion,omitempty"`
	BackupTakenAt time.Time `json:"backupTakenAt,omitzero"`
	BackupFresh   bool      `json:"backupFresh,omitempty"`
	BackupNote    string    `json:"backupNote,omitempty"`
}

func (c *Checkpoint) String() string {
	var parts []string
	if c.Snapshot != "" {
		parts = append(parts, fmt.Sprintf("snapshot %s of %s", c.Snapshot, c.Volume))
	}
	if c.BackupVersion != "" {
		kind := "backup"
		if c.BackupFresh {
			kind = "fresh backup"
		}
		parts = append(parts, fmt.Sprintf("%s version %s (taken at %s)", kind, c.BackupVersion, c.BackupTakenAt.UTC().Format(time.RFC3339)))
	}
	if c.BackupNote != "" {
		parts = append(parts, c.BackupNote)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// Checkpointer takes a pre-upgrade checkpoint of a deployment's data.
type Checkpointer interface {
	Checkpoint(ctx context.Context, stack string, outputs auto.OutputMap, from, to string) (*Checkpoint, error)
}

// DefaultCheckpointBackupWait is how long AWSCheckpointer waits for the instance's backup: the
// watcher reads requests every 30 s and a backup of a gigabyte takes about a minute.
const DefaultCheckpointBackupWait = 10 * time.Minute

// AWSCheckpointer asks the instance for a backup of its state as it is now (package backup's
// Request, which the spot watcher answers) and snapshots the data volume, tagged as the volume's
// snapshots are plus OpenClawCheckpoint=pre-upgrade and the image it holds the data of. When the
// instance does not answer in BackupWait (it is down, or its watcher is), the checkpoint pins the
// newest backup there is instead, and says so; the snapshot is taken either way.
type AWSCheckpointer struct {
	// Config is the AWS configuration; nil loads the default one, with the stack's region.
	Config *aws.Config
	// Now tells the time; nil means time.Now.
	Now func() time.Time
	// BackupWait bounds the wait for the instance's backup (0: DefaultCheckpointBackupWait);
	// Poll is how often the bucket is read meanwhile (0: 5 s).
	BackupWait, Poll time.Duration
}

// Checkpoint implements Checkpointer.
func (c *AWSCheckpointer) Checkpoint(ctx context.Context, stack string, outputs auto.OutputMap, from, to string) (*Checkpoint, error) {
	volume, _ := outputs["data_volume_id"].Value.(string)
	zone, _ := outputs["availability_zone"].Value.(string)
	bucket, _ := outputs["backup_bucket"].Value.(string)
	region, _ := outputs["region"].Value.(string)
	if volume == "" {
		return nil, fmt.Errorf("stack %s has no data_volume_id output to snapshot", stack)
	}
	cfg, err := awsConfig(ctx, c.Config, region)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	cp := &Checkpoint{From: from, To: to, At: now().UTC(), Volume: volume}
	if bucket != "" {
		if err := c.freshBackup(ctx, s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }), bucket, cp); err != nil {
			return nil, err
		}
	}
	tags := []ec2types.Tag{
		{Key: aws.String(components.TagData), Value: aws.String("true")},
		{Key: aws.String(components.TagStack), Value: aws.String(stack)},
		{Key: aws.String(components.TagAz), Value: aws.String(zone)},
		{Key: aws.String(TagCheckpoint), Value: aws.String("pre-upgrade")},
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
func (c *AWSCheckpointer) freshBackup(ctx context.Context, client *s3.Client, bucket string, cp *Checkpoint) error {
	wait, poll := cmp.Or(c.BackupWait, DefaultCheckpointBackupWait), cmp.Or(c.Poll, 5*time.Second)
	id := "up-" + strconv.FormatInt(cp.At.UnixNano(), 36)
	if err := backup.Request(ctx, client, bucket, cloudinit.BackupRequestObject, id, "pre-upgrade"); err != nil {
		return err
	}
	got, err := backup.Await(ctx, client, bucket, cloudinit.BackupObject, id, time.Now(), poll, wait)
	// Withdrawn whatever the answer, so that the next instance does not take it up.
	if werr := backup.Withdraw(context.WithoutCancel(ctx), client, bucket, cloudinit.BackupRequestObject); werr != nil && err == nil {
		err = werr
	}
	switch {
	case err == nil:
		cp.BackupVersion, cp.BackupTakenAt, cp.BackupFresh = got.VersionID, got.TakenAt, true
		return nil
	case !errors.Is(err, backup.ErrNoAnswer):
		return err
	}
	cp.BackupNote = fmt.Sprintf("no fresh backup: the instance did not answer a backup request in %s", wait)
	head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(cloudinit.BackupObject)})
	switch {
	case err == nil:
		cp.BackupVersion = aws.ToString(head.VersionId)
		cp.BackupTakenAt, _ = time.Parse(time.RFC3339, head.Metadata["created"])
	case notFound(err, "NotFound", "NoSuchKey"):
		cp.BackupNote += ", and the bucket holds no backup yet"
	default:
		return fmt.Errorf("looking up the newest backup in %s: %w", bucket, err)
	}
	return nil
}

// UpgradeError is an up of a new image that did not reach READY: Err says why, and the message
// says how to go back.
type UpgradeError struct {
	Stack, From, To string
	Checkpoint      *Checkpoint
	Err             error
}

func (e *UpgradeError) Error() string {
	msg := fmt.Sprintf("%v\nthe new image %s did not become healthy: `clawdeploy up --rollback --stack %s` deploys %s again",
		e.Err, e.To, e.Stack, e.From)
	if e.Checkpoint != nil {
		msg += "; pre-upgrade checkpoint: " + e.Checkpoint.String()
	}
	return msg
}

// Unwrap returns why the upgrade failed.
func (e *UpgradeError) Unwrap() error { return e.Err }

// configuredImage is the OpenClaw image the stack's configuration deploys; "" for a program of
// the caller's, which has no such key.
func (d *Driver) configuredImage(ctx context.Context, s auto.Stack) (string, error) {
	if !slices.Contains(d.profile.keys, infra.KeyOpenClawImage) {
		return "", nil
	}
	config, err := s.GetAllConfig(ctx)
	if err != nil {
		return "", fmt.Errorf("reading the configuration of stack %s: %w", s.Name(), err)
	}
	if v, ok := config[fullKey(infra.KeyOpenClawImage)]; ok && v.Value != "" {
		return v.Value, nil
	}
	return infra.DefaultOpenClawImage, nil
}

// preUpgrade takes the checkpoint before an up that deploys image over the last good one, and
// records it. An up cut short and resumed keeps the checkpoint it took. Without a checkpointer
// (a target whose data stays on its host's disk) there is none.
func (d *Driver) preUpgrade(ctx context.Context, h *hold, s auto.Stack, image string) (*Checkpoint, error) {
	from := h.record.LastGoodImage
	var cp Checkpoint
	if json.Unmarshal([]byte(h.record.Checkpoint), &cp) == nil && cp.From == from && cp.To == image {
		d.note(h.stack, "upgrade from %s to %s: the pre-upgrade checkpoint is %s", from, image, &cp)
		return &cp, nil
	}
	if d.checkpointer == nil {
		d.note(h.stack, "upgrade from %s to %s: no checkpoint for a %s deployment", from, image, d.profile.name)
		return nil, nil
	}
	outputs, err := s.Outputs(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the outputs of %s: %w", h.stack, err)
	}
	d.note(h.stack, "upgrade from %s to %s: taking the pre-upgrade checkpoint (a backup the instance takes now, and a snapshot of the data volume)", from, image)
	taken, err := d.checkpointer.Checkpoint(ctx, h.stack, outputs, from, image)
	if err != nil {
		return nil, fmt.Errorf("the pre-upgrade checkpoint failed, so the upgrade to %s did not start: %w", image, err)
	}
	text, _ := json.Marshal(taken)
	if err := h.update(journal.Change{Checkpoint: ptr(string(text))}); err != nil {
		return nil, err
	}
	d.note(h.stack, "upgrade from %s to %s: pre-upgrade checkpoint %s", from, image, taken)
	return taken, nil
}

// rollbackConfig is the configuration of `up --rollback`: in, with the image the deployment last
// reached READY with.
func (d *Driver) rollbackConfig(ctx context.Context, stack string, in ConfigInput) (ConfigInput, error) {
	if !slices.Contains(d.profile.keys, infra.KeyOpenClawImage) {
		return in, &UsageError{Err: fmt.Errorf("--rollback deploys the last good %s; this program has no such key", infra.KeyOpenClawImage)}
	}
	for k := range in.Values {
		if fullKey(k) != fullKey(infra.KeyOpenClawImage) {
			continue
		}
		return in, &UsageError{Err: fmt.Errorf("--rollback sets %s to the last image that reached READY: give one or the other", infra.KeyOpenClawImage)}
	}
	rec, err := d.Status(ctx, stack)
	if err != nil {
		return in, err
	}
	if rec.LastGoodImage == "" {
		return in, &UsageError{Err: fmt.Errorf("deployment %s never reached READY with a recorded image: there is nothing to roll back to", stack)}
	}
	values := map[string]string{infra.KeyOpenClawImage: rec.LastGoodImage}
	maps.Copy(values, in.Values)
	d.note(stack, "rolling back to %s, the last image that reached READY", rec.LastGoodImage)
	var cp Checkpoint
	if json.Unmarshal([]byte(rec.Checkpoint), &cp) == nil && cp.From == rec.LastGoodImage {
		restore := "(docs/operator.md, \"Restore onto a running stack\")"
		if cp.Snapshot != "" {
			restore = fmt.Sprintf("(`clawdeploy restore --stack %s --snapshot %s`)", stack, cp.Snapshot)
		}
		d.note(stack, "the data stays as %s left it; if it changed the data, restore the pre-upgrade checkpoint: %s %s", cp.To, &cp, restore)
	}
	return ConfigInput{Values: values, Secrets: in.Secrets}, nil
}
