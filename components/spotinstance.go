package components

import (
	"errors"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// TypeSpotInstance is the SpotInstance component's type token.
const TypeSpotInstance = "clawdeploy:compute:SpotInstance"

// MetadataHopLimit is the instance's IMDSv2 hop limit. One hop lets processes on the host reach
// the metadata service (the backup, the spot watcher, the CloudWatch agent) and stops the
// gateway's containers, one bridge hop further: the gateway runs agent tools that execute
// commands, and with a limit of 1 none of them can take the instance role's credentials.
const MetadataHopLimit = 1

// SpotInstanceArgs configures a SpotInstance.
type SpotInstanceArgs struct {
	// InstanceType is the EC2 instance type.
	InstanceType string
	// AMI is the image id.
	AMI string
	// KeepAMI keeps the image the instance was launched with when AMI changes, for an AMI that
	// came from a "latest" lookup: a newer image must never replace a running instance by itself.
	// Leave it false for a pinned AMI, whose change is the operator's explicit choice.
	KeepAMI bool
	// VpcID is the VPC of the security group.
	VpcID pulumi.StringInput
	// SubnetID is the subnet the instance runs in; its zone is the data volume's.
	SubnetID pulumi.StringInput
	// AssociatePublicIP gives the instance a public address for outbound traffic, in a subnet
	// without NAT. No inbound rule opens any port.
	AssociatePublicIP bool
	// InstanceProfile is the instance profile's name.
	InstanceProfile pulumi.StringInput
	// UserDataBase64 is the gzipped user-data, base64-encoded.
	UserDataBase64 pulumi.StringInput
	// RootVolumeSizeGB is the root volume's size; 0 means DefaultRootVolumeSizeGB.
	RootVolumeSizeGB int
	// MaxPrice caps the Spot price (USD per hour); empty means the on-demand price.
	MaxPrice string
}

// SpotInstance is a one-time Spot instance that terminates on interruption, with no inbound
// access: operators reach it through SSM Session Manager.
type SpotInstance struct {
	pulumi.ResourceState

	// InstanceID is the instance's id.
	InstanceID pulumi.StringOutput `pulumi:"instanceId"`
	// PrivateIP is the instance's private address.
	PrivateIP pulumi.StringOutput `pulumi:"privateIp"`
	// SecurityGroupID is the instance's security group.
	SecurityGroupID pulumi.StringOutput `pulumi:"securityGroupId"`
}

// DefaultRootVolumeSizeGB is the root volume of an instance unless told: room for container images.
const DefaultRootVolumeSizeGB = 20

// NewSpotInstance launches the instance and its security group.
func NewSpotInstance(ctx *pulumi.Context, name string, args *SpotInstanceArgs, opts ...pulumi.ResourceOption) (*SpotInstance, error) {
	if args == nil {
		return nil, errors.New("components: NewSpotInstance needs args")
	}
	if args.InstanceType == "" || args.AMI == "" || args.SubnetID == nil || args.VpcID == nil ||
		args.InstanceProfile == nil || args.UserDataBase64 == nil {
		return nil, fmt.Errorf("components: NewSpotInstance %s: instance type, AMI, VPC, subnet, profile and user-data are required", name)
	}
	rootSize := args.RootVolumeSizeGB
	if rootSize == 0 {
		rootSize = DefaultRootVolumeSizeGB
	}

	c := &SpotInstance{}
	if err := ctx.RegisterComponentResource(TypeSpotInstance, name, c, opts...); err != nil {
		return nil, err
	}
	sgName := name + "-sg"
	sg, err := ec2.NewSecurityGroup(ctx, sgName, &ec2.SecurityGroupArgs{
		Description: pulumi.String("OpenClaw " + ctx.Stack() + ": no inbound access (SSM Session Manager); outbound for updates, registries, model APIs and AWS"),
		VpcId:       args.VpcID,
		// Empty, and managed: any inbound rule added by hand is removed by the next up.
		Ingress: ec2.SecurityGroupIngressArray{},
		Egress: ec2.SecurityGroupEgressArray{ec2.SecurityGroupEgressArgs{
			Description: pulumi.String("all outbound: package mirrors, container registries, model provider APIs, messaging channels, SSM, S3, CloudWatch"),
			Protocol:    pulumi.String("-1"),
			FromPort:    pulumi.Int(0),
			ToPort:      pulumi.Int(0),
			CidrBlocks:  pulumi.StringArray{pulumi.String("0.0.0.0/0")},
		}},
		Tags: childTags(ctx, c, "aws:ec2/securityGroup:SecurityGroup", sgName, nil),
	}, pulumi.Parent(c))
	if err != nil {
		return nil, err
	}

	spot := &ec2.InstanceInstanceMarketOptionsSpotOptionsArgs{
		// One-time: no request outlives the instance, so nothing relaunches after destroy.
		SpotInstanceType:             pulumi.String("one-time"),
		InstanceInterruptionBehavior: pulumi.String("terminate"),
	}
	if args.MaxPrice != "" {
		spot.MaxPrice = pulumi.String(args.MaxPrice)
	}
	instanceName := name + "-instance"
	instanceOpts := []pulumi.ResourceOption{
		pulumi.Parent(c),
		// The old instance terminates first: that is what frees the data volume for the new one.
		pulumi.DeleteBeforeReplace(true),
		// A one-time Spot instance cannot be stopped, so a type change cannot be made in place.
		pulumi.ReplaceOnChanges([]string{"instanceType"}),
	}
	if args.KeepAMI {
		instanceOpts = append(instanceOpts, pulumi.IgnoreChanges([]string{"ami"}))
	}
	instance, err := ec2.NewInstance(ctx, instanceName, &ec2.InstanceArgs{
		Ami:          pulumi.String(args.AMI),
		InstanceType: pulumi.String(args.InstanceType),
		InstanceMarketOptions: &ec2.InstanceInstanceMarketOptionsArgs{
			MarketType:  pulumi.String("spot"),
			SpotOptions: spot,
		},
		SubnetId:                 args.SubnetID,
		VpcSecurityGroupIds:      pulumi.StringArray{sg.ID()},
		AssociatePublicIpAddress: pulumi.Bool(args.AssociatePublicIP),
		IamInstanceProfile:       args.InstanceProfile,
		MetadataOptions: &ec2.InstanceMetadataOptionsArgs{
			HttpEndpoint:            pulumi.String("enabled"),
			HttpTokens:              pulumi.String("required"),
			HttpPutResponseHopLimit: pulumi.Int(MetadataHopLimit),
			InstanceMetadataTags:    pulumi.String("disabled"),
		},
		RootBlockDevice: &ec2.InstanceRootBlockDeviceArgs{
			VolumeType:          pulumi.String("gp3"),
			VolumeSize:          pulumi.Int(rootSize),
			Encrypted:           pulumi.Bool(true),
			DeleteOnTermination: pulumi.Bool(true),
			Tags:                childTags(ctx, c, "aws:ec2/instance:Instance", instanceName+"-root", nil),
		},
		UserDataBase64: args.UserDataBase64,
		// A one-time Spot instance cannot be stopped to take new user-data: replace it instead.
		UserDataReplaceOnChange: pulumi.Bool(true),
		Tags:                    childTags(ctx, c, "aws:ec2/instance:Instance", instanceName, nil),
	}, instanceOpts...)
	if err != nil {
		return nil, err
	}
	c.InstanceID = instance.ID().ToStringOutput()
	c.PrivateIP = instance.PrivateIp
	c.SecurityGroupID = sg.ID().ToStringOutput()
	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{
		"instanceId":      c.InstanceID,
		"privateIp":       c.PrivateIP,
		"securityGroupId": c.SecurityGroupID,
	}); err != nil {
		return nil, err
	}
	return c, nil
}
