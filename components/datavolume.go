package components

import (
	"errors"
	"fmt"
	"slices"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ebs"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// TypeDataVolume is the DataVolume component's type token.
const TypeDataVolume = "clawdeploy:storage:DataVolume"

// DataDeviceName is the device name the attachment asks for. Nitro instances expose the volume as
// an NVMe device whatever this says; the instance finds it by its volume id.
const DataDeviceName = "/dev/sdf"

// DataVolumeArgs configures a DataVolume.
type DataVolumeArgs struct {
	// AvailabilityZone pins the volume; its instance must be in the same zone.
	AvailabilityZone string
	// SizeGB is the size of a new volume in GiB (gp3: 1 to 16384).
	SizeGB int
	// SnapshotID, when set, is the snapshot a new volume is restored from. It must carry the tag
	// OpenClawAz equal to AvailabilityZone (the AZ guard). Changing it on an existing volume does
	// nothing: restoring onto a running stack is an explicit replacement (see docs/operator.md,
	// "Restore onto a running stack").
	SnapshotID string
}

// DataVolume is the persistent, encrypted gp3 volume that holds OpenClaw's state.
type DataVolume struct {
	pulumi.ResourceState

	// VolumeID is the EBS volume id, by which the instance finds its device.
	VolumeID pulumi.StringOutput `pulumi:"volumeId"`
	// VolumeArn is the volume's ARN.
	VolumeArn pulumi.StringOutput `pulumi:"volumeArn"`
	// AvailabilityZone is the volume's zone.
	AvailabilityZone pulumi.StringOutput `pulumi:"availabilityZone"`

	name string
}

// ZoneError is the AZ guard's refusal: a snapshot, or the stack's existing volume, belongs to a
// zone other than the configured one.
type ZoneError struct {
	// Snapshot is the snapshot id, or empty when the volume is the problem.
	Snapshot string
	// Volume is the existing volume's id, or empty when the snapshot is the problem.
	Volume string
	// Tag is the snapshot's OpenClawAz tag, or the volume's zone; empty when the tag is missing.
	Tag string
	// Zone is the configured availability zone.
	Zone string
}

func (e *ZoneError) Error() string {
	switch {
	case e.Volume != "":
		return fmt.Sprintf("availability_zone is %s but this stack's data volume %s is in %s: an EBS volume "+
			"cannot move between zones; snapshot it and restore the snapshot in %s (see docs/operator.md, \"Restore onto a running stack\"), "+
			"or set availability_zone back to %s", e.Zone, e.Volume, e.Tag, e.Zone, e.Tag)
	case e.Tag == "":
		return fmt.Sprintf("data_volume_snapshot_id %s has no %s tag, so its zone is unknown, and availability_zone "+
			"is %s: tag the snapshot %s=%s if it belongs there, or choose a snapshot made by this stack",
			e.Snapshot, TagAz, e.Zone, TagAz, e.Zone)
	default:
		return fmt.Sprintf("data_volume_snapshot_id %s is tagged %s=%s but availability_zone is %s: a volume restored "+
			"from it would not be where the instance runs; choose a snapshot tagged for %s or set availability_zone to %s",
			e.Snapshot, TagAz, e.Tag, e.Zone, e.Zone, e.Tag)
	}
}

// NewDataVolume creates the data volume. The AZ guard runs first: it fails, before anything is
// registered, when the snapshot to restore from is tagged for another zone (or not tagged), or
// when the stack already has a data volume in another zone.
func NewDataVolume(ctx *pulumi.Context, name string, args *DataVolumeArgs, opts ...pulumi.ResourceOption) (*DataVolume, error) {
	if args == nil {
		return nil, errors.New("components: NewDataVolume needs args")
	}
	if args.AvailabilityZone == "" || args.SizeGB < 1 || args.SizeGB > 16384 {
		return nil, fmt.Errorf("components: NewDataVolume: zone %q and size %d GiB (1-16384) are required",
			args.AvailabilityZone, args.SizeGB)
	}
	if err := guardSnapshotZone(ctx, args); err != nil {
		return nil, err
	}
	if err := guardVolumeZone(ctx, args.AvailabilityZone); err != nil {
		return nil, err
	}

	c := &DataVolume{name: name}
	if err := ctx.RegisterComponentResource(TypeDataVolume, name, c, opts...); err != nil {
		return nil, err
	}
	volumeName := name + "-volume"
	volumeArgs := &ebs.VolumeArgs{
		AvailabilityZone: pulumi.String(args.AvailabilityZone),
		Size:             pulumi.Int(args.SizeGB),
		Type:             pulumi.String("gp3"),
		Encrypted:        pulumi.Bool(true),
		// destroy snapshots the volume before deleting it; the snapshot carries the volume's tags,
		// the zone among them, so it can be restored through the AZ guard.
		FinalSnapshot: pulumi.Bool(true),
		Tags: childTags(ctx, c, "aws:ebs/volume:Volume", volumeName, map[string]string{
			TagData: "true",
			TagAz:   args.AvailabilityZone,
		}),
	}
	if args.SnapshotID != "" {
		volumeArgs.SnapshotId = pulumi.String(args.SnapshotID)
	}
	volume, err := ebs.NewVolume(ctx, volumeName, volumeArgs, pulumi.Parent(c),
		// Everything that would make AWS replace the volume is ignored once it exists, so no up can
		// delete it: a new snapshot id, a zone (the guard above also refuses a change), encryption.
		pulumi.IgnoreChanges([]string{"snapshotId", "availabilityZone", "encrypted", "kmsKeyId", "outpostArn"}))
	if err != nil {
		return nil, err
	}
	c.VolumeID = volume.ID().ToStringOutput()
	c.VolumeArn = volume.Arn
	c.AvailabilityZone = volume.AvailabilityZone
	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{
		"volumeId":         c.VolumeID,
		"volumeArn":        c.VolumeArn,
		"availabilityZone": c.AvailabilityZone,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// guardSnapshotZone checks the snapshot to restore from carries this zone's tag.
func guardSnapshotZone(ctx *pulumi.Context, args *DataVolumeArgs) error {
	if args.SnapshotID == "" {
		return nil
	}
	snap, err := ebs.LookupSnapshot(ctx, &ebs.LookupSnapshotArgs{SnapshotIds: []string{args.SnapshotID}})
	if err != nil {
		return fmt.Errorf("looking up data_volume_snapshot_id %s: %w", args.SnapshotID, err)
	}
	if tag := snap.Tags[TagAz]; tag != args.AvailabilityZone {
		return &ZoneError{Snapshot: args.SnapshotID, Tag: tag, Zone: args.AvailabilityZone}
	}
	if snap.VolumeSize > args.SizeGB {
		return fmt.Errorf("data_volume_snapshot_id %s holds a %d GiB volume but data_volume_size_gb is %d: "+
			"set data_volume_size_gb to %d or more", args.SnapshotID, snap.VolumeSize, args.SizeGB, snap.VolumeSize)
	}
	return nil
}

// guardVolumeZone refuses a zone change on a stack whose data volume already exists: the ignored
// zone would otherwise leave the volume behind while the instance moves.
func guardVolumeZone(ctx *pulumi.Context, zone string) error {
	found, err := ebs.GetEbsVolumes(ctx, &ebs.GetEbsVolumesArgs{Filters: []ebs.GetEbsVolumesFilter{
		{Name: "tag:" + TagStack, Values: []string{ctx.Stack()}},
		{Name: "tag:" + TagData, Values: []string{"true"}},
	}})
	if err != nil {
		return fmt.Errorf("looking up this stack's data volume: %w", err)
	}
	for _, id := range slices.Sorted(slices.Values(found.Ids)) {
		v, err := ebs.LookupVolume(ctx, &ebs.LookupVolumeArgs{Filters: []ebs.GetVolumeFilter{
			{Name: "volume-id", Values: []string{id}},
		}})
		if err != nil {
			return fmt.Errorf("looking up data volume %s: %w", id, err)
		}
		if v.AvailabilityZone != zone {
			return &ZoneError{Volume: id, Tag: v.AvailabilityZone, Zone: zone}
		}
	}
	return nil
}

// Attach attaches the volume to an instance. The attachment is replaced before its successor is
// created (DeleteBeforeReplace), and its deletion never detaches the volume from a running
// instance (SkipDestroy): the volume comes free when the instance terminates and its OS has
// unmounted it. StopInstanceBeforeDetaching stays set as a second guard, should SkipDestroy ever
// be lifted: a one-time Spot instance cannot be stopped, so a live detach then fails instead of
// pulling a mounted filesystem away.
func (v *DataVolume) Attach(ctx *pulumi.Context, instanceID pulumi.StringInput, opts ...pulumi.ResourceOption) (*ec2.VolumeAttachment, error) {
	return ec2.NewVolumeAttachment(ctx, v.name+"-attachment", &ec2.VolumeAttachmentArgs{
		DeviceName:                  pulumi.String(DataDeviceName),
		VolumeId:                    v.VolumeID,
		InstanceId:                  instanceID,
		SkipDestroy:                 pulumi.Bool(true),
		StopInstanceBeforeDetaching: pulumi.Bool(true),
	}, append([]pulumi.ResourceOption{pulumi.Parent(v), pulumi.DeleteBeforeReplace(true)}, opts...)...)
}
