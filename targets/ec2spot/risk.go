package ec2spot

import (
	"fmt"
	"strings"

	"github.com/clawdeploy/clawdeploy/targets"
)

// ReadyAgainMinutes is the expected time until READY again after the instance is replaced: a
// new instance, its attachment, the boot and the setup.
const ReadyAgainMinutes = 6

// Risk implements targets.Target: the data volume, the backup bucket, the snapshot policy and a
// secret parameter hold data; the instance and the volume's attachment mean downtime; IAM,
// security groups and bucket policies are access.
func (Target) Risk(c targets.Change) targets.Risk {
	forced := c.ForcedBy(configOfProperty)
	if c.Gone() {
		switch {
		case c.Type == "aws:ebs/volume:Volume":
			return targets.Risk{Class: targets.RiskData, Reason: "the data volume, which holds OpenClaw's state, would be " + c.Verb() + forced}
		case c.Type == "aws:s3/bucketV2:BucketV2":
			return targets.Risk{Class: targets.RiskData, Reason: "the backup bucket would be " + c.Verb() + forced + ": its backups with it"}
		case c.Type == "aws:dlm/lifecyclePolicy:LifecyclePolicy":
			return targets.Risk{Class: targets.RiskData, Reason: "the snapshot policy would be " + c.Verb() + forced + ": no scheduled snapshots meanwhile"}
		case c.Type == "aws:ssm/parameter:Parameter" && c.SecureString():
			return targets.Risk{Class: targets.RiskData, Reason: "a secret parameter would be " + c.Verb() + forced +
				": its value is lost unless the configuration still holds it"}
		case c.Type == "aws:ec2/instance:Instance":
			return targets.Risk{Class: targets.RiskDowntime, Reason: "the instance would be " + c.Verb() + forced,
				DowntimeMinutes: ReadyAgainMinutes, ReplacesHost: true}
		case c.Type == "aws:ec2/volumeAttachment:VolumeAttachment":
			return targets.Risk{Class: targets.RiskDowntime, Reason: "the data volume would be detached and attached again" + forced,
				DowntimeMinutes: ReadyAgainMinutes}
		}
	}
	switch {
	case strings.HasPrefix(c.Type, "aws:iam/"),
		c.Type == "aws:ec2/securityGroup:SecurityGroup", c.Type == "aws:ec2/securityGroupRule:SecurityGroupRule",
		strings.HasPrefix(c.Type, "aws:vpc/securityGroup"),
		c.Type == "aws:s3/bucketPolicy:BucketPolicy", c.Type == "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock":
		return targets.Risk{Class: targets.RiskAccess, Reason: fmt.Sprintf("%s would be %s%s", c.ShortType(), c.Verb(), forced)}
	}
	return targets.Risk{}
}

// configOfProperty names the configuration keys behind the properties that force a replacement
// of the program's resources.
var configOfProperty = map[string]string{
	"userData":         "openclaw_image, backup_interval_minutes or another setting the instance's user-data carries",
	"userDataBase64":   "openclaw_image, backup_interval_minutes or another setting the instance's user-data carries",
	"instanceType":     "instance_type (instance_types)",
	"ami":              "ami_id",
	"subnetId":         "availability_zone or subnet_id",
	"availabilityZone": "availability_zone",
	"snapshotId":       "data_volume_snapshot_id",
	// No key sets the Spot options: clawdeploy never caps the Spot price (a cap raises the
	// interruptions), so they change only with clawdeploy's own program.
	"instanceMarketOptions": "none: the Spot options clawdeploy's program sets (one-time, terminate, no price cap)",
}
