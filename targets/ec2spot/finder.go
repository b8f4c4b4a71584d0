package ec2spot

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dlm"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/clawdeploy/clawdeploy/awsapi"
	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/targets"
)

// Finder looks up, in AWS, resources whose creation was interrupted: EC2 resources by their
// clawdeploy:urn tag, named resources (buckets, roles, parameters, log groups) by the name the
// checkpoint holds, and the rest (attachments, associations, bucket settings) by the inputs that
// identify them. It returns the id in the form the provider imports.
type Finder struct {
	// Config is the AWS configuration; nil loads the default one (environment, shared files,
	// instance role).
	Config *aws.Config

	once sync.Once
	err  error
	ec2  *ec2.Client
	s3   *s3.Client
	iam  *iam.Client
	ssm  *ssm.Client
	logs *cloudwatchlogs.Client
	dlm  *dlm.Client
}

func (f *Finder) clients(ctx context.Context) error {
	f.once.Do(func() {
		cfg, err := awsapi.Config(ctx, f.Config, "")
		if err != nil {
			f.err = err
			return
		}
		f.ec2 = ec2.NewFromConfig(cfg)
		f.s3 = s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
		f.iam = iam.NewFromConfig(cfg)
		f.ssm = ssm.NewFromConfig(cfg)
		f.logs = cloudwatchlogs.NewFromConfig(cfg)
		f.dlm = dlm.NewFromConfig(cfg)
	})
	return f.err
}

// ec2Tagged are the EC2 types found by their clawdeploy:urn tag.
var ec2Tagged = map[string]bool{
	"aws:ebs/volume:Volume":                   true,
	"aws:ec2/instance:Instance":               true,
	"aws:ec2/vpc:Vpc":                         true,
	"aws:ec2/subnet:Subnet":                   true,
	"aws:ec2/securityGroup:SecurityGroup":     true,
	"aws:ec2/internetGateway:InternetGateway": true,
	"aws:ec2/routeTable:RouteTable":           true,
}

// Find looks a pending create up.
func (f *Finder) Find(ctx context.Context, pc targets.PendingCreate) (string, bool, error) {
	if err := f.clients(ctx); err != nil {
		return "", false, err
	}
	switch {
	case ec2Tagged[pc.Type]:
		return f.byTag(ctx, pc)
	case pc.Type == "aws:ec2/volumeAttachment:VolumeAttachment":
		return f.attachment(ctx, pc)
	case pc.Type == "aws:ec2/routeTableAssociation:RouteTableAssociation":
		return f.association(ctx, pc)
	case pc.Type == "aws:s3/bucketV2:BucketV2":
		_, err := f.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(pc.Input("bucket"))})
		return found(pc.Input("bucket"), err, "NotFound", "NoSuchBucket")
	case strings.HasPrefix(pc.Type, "aws:s3/bucket"):
		return f.bucketSetting(ctx, pc)
	case pc.Type == "aws:iam/role:Role":
		_, err := f.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(pc.Input("name"))})
		return found(pc.Input("name"), err, "NoSuchEntity")
	case pc.Type == "aws:iam/instanceProfile:InstanceProfile":
		_, err := f.iam.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(pc.Input("name"))})
		return found(pc.Input("name"), err, "NoSuchEntity")
	case pc.Type == "aws:iam/rolePolicy:RolePolicy":
		_, err := f.iam.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(pc.Input("role")), PolicyName: aws.String(pc.Input("name"))})
		return found(pc.Input("role")+":"+pc.Input("name"), err, "NoSuchEntity")
	case pc.Type == "aws:ssm/parameter:Parameter":
		_, err := f.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(pc.Input("name"))})
		return found(pc.Input("name"), err, "ParameterNotFound")
	case pc.Type == "aws:cloudwatch/logGroup:LogGroup":
		name := pc.Input("name")
		out, err := f.logs.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(name)})
		if err != nil {
			return "", false, err
		}
		for _, g := range out.LogGroups {
			if aws.ToString(g.LogGroupName) == name {
				return name, true, nil
			}
		}
		return "", false, nil
	case pc.Type == "aws:dlm/lifecyclePolicy:LifecyclePolicy":
		return f.lifecyclePolicy(ctx, pc)
	}
	return "", false, fmt.Errorf("the AWS finder has no way to look up a %s", pc.Type)
}

// found turns a lookup's error into the finder's answer.
func found(id string, err error, absent ...string) (string, bool, error) {
	switch {
	case err == nil:
		return id, true, nil
	case awsapi.NotFound(err, absent...):
		return "", false, nil
	}
	return "", false, err
}

func (f *Finder) byTag(ctx context.Context, pc targets.PendingCreate) (string, bool, error) {
	out, err := f.ec2.DescribeTags(ctx, &ec2.DescribeTagsInput{Filters: []ec2types.Filter{
		{Name: aws.String("key"), Values: []string{components.TagURN}},
		{Name: aws.String("value"), Values: []string{pc.URN}},
	}})
	if err != nil {
		return "", false, err
	}
	var ids []string
	for _, t := range out.Tags {
		if id := aws.ToString(t.ResourceId); !slices.Contains(pc.Known, id) {
			ids = append(ids, id) // not the original a replacement replaces
		}
	}
	if pc.Type == "aws:ec2/instance:Instance" && len(ids) > 0 {
		// A terminated instance keeps its tags for a while: only a live one counts.
		live, err := f.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
		if err != nil {
			return "", false, err
		}
		ids = ids[:0]
		for _, r := range live.Reservations {
			for _, i := range r.Instances {
				if i.State != nil && i.State.Name != ec2types.InstanceStateNameTerminated &&
					i.State.Name != ec2types.InstanceStateNameShuttingDown {
					ids = append(ids, aws.ToString(i.InstanceId))
				}
			}
		}
	}
	switch len(ids) {
	case 0:
		return "", false, nil
	case 1:
		return ids[0], true, nil
	}
	sort.Strings(ids)
	return "", false, fmt.Errorf("%d resources carry the identity of %s (%s): resolve by hand", len(ids), pc.URN, strings.Join(ids, ", "))
}

func (f *Finder) attachment(ctx context.Context, pc targets.PendingCreate) (string, bool, error) {
	volume, instance, device := pc.Input("volumeId"), pc.Input("instanceId"), pc.Input("deviceName")
	out, err := f.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{volume}})
	if err != nil {
		return found("", err, "InvalidVolume.NotFound")
	}
	for _, v := range out.Volumes {
		for _, a := range v.Attachments {
			if aws.ToString(a.InstanceId) == instance && (a.State == ec2types.VolumeAttachmentStateAttached ||
				a.State == ec2types.VolumeAttachmentStateAttaching) {
				return device + ":" + volume + ":" + instance, true, nil
			}
		}
	}
	return "", false, nil
}

func (f *Finder) association(ctx context.Context, pc targets.PendingCreate) (string, bool, error) {
	subnet, table := pc.Input("subnetId"), pc.Input("routeTableId")
	out, err := f.ec2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{table}})
	if err != nil {
		return found("", err, "InvalidRouteTableID.NotFound")
	}
	for _, t := range out.RouteTables {
		for _, a := range t.Associations {
			if aws.ToString(a.SubnetId) == subnet {
				return subnet + "/" + table, true, nil
			}
		}
	}
	return "", false, nil
}

// bucketSetting finds one of a bucket's settings; its id is the bucket's name.
func (f *Finder) bucketSetting(ctx context.Context, pc targets.PendingCreate) (string, bool, error) {
	bucket := aws.String(pc.Input("bucket"))
	var err error
	switch pc.Type {
	case "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock":
		_, err = f.s3.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: bucket})
	case "aws:s3/bucketOwnershipControls:BucketOwnershipControls":
		_, err = f.s3.GetBucketOwnershipControls(ctx, &s3.GetBucketOwnershipControlsInput{Bucket: bucket})
	case "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2":
		_, err = f.s3.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: bucket})
	case "aws:s3/bucketVersioningV2:BucketVersioningV2":
		var out *s3.GetBucketVersioningOutput
		if out, err = f.s3.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: bucket}); err == nil && out.Status == "" {
			return "", false, nil
		}
	case "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2":
		_, err = f.s3.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: bucket})
	case "aws:s3/bucketPolicy:BucketPolicy":
		_, err = f.s3.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: bucket})
	default:
		return "", false, fmt.Errorf("the AWS finder has no way to look up a %s", pc.Type)
	}
	return found(*bucket, err, "NoSuchBucket", "NoSuchPublicAccessBlockConfiguration", "OwnershipControlsNotFoundError",
		"ServerSideEncryptionConfigurationNotFoundError", "NoSuchLifecycleConfiguration", "NoSuchBucketPolicy")
}

// lifecyclePolicy finds a DLM policy by its target tags and its clawdeploy:urn tag.
func (f *Finder) lifecyclePolicy(ctx context.Context, pc targets.PendingCreate) (string, bool, error) {
	var targets []string
	if details, ok := pc.Inputs["policyDetails"].(map[string]any); ok {
		if tags, ok := details["targetTags"].(map[string]any); ok {
			for k, v := range tags {
				targets = append(targets, fmt.Sprintf("%s=%v", k, v))
			}
		}
	}
	sort.Strings(targets)
	out, err := f.dlm.GetLifecyclePolicies(ctx, &dlm.GetLifecyclePoliciesInput{TargetTags: targets})
	if err != nil {
		return found("", err, "ResourceNotFoundException")
	}
	for _, p := range out.Policies {
		if p.Tags[components.TagURN] == pc.URN {
			return aws.ToString(p.PolicyId), true, nil
		}
	}
	return "", false, nil
}
