package components

import (
	"errors"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// TypeNetwork is the Network component's type token.
const TypeNetwork = "clawdeploy:network:Network"

// NetworkArgs configures a Network.
type NetworkArgs struct {
	// AvailabilityZone is the zone of the subnet.
	AvailabilityZone string
	// Existing, when set, is a subnet to use instead of creating a VPC (accounts with many
	// deployments stay under the VPC quota this way); LookupSubnetInZone finds and checks it.
	Existing *ExistingSubnet
	// CidrBlock is the new VPC's range; empty means 10.42.0.0/16.
	CidrBlock string
	// SubnetCidrBlock is the new subnet's range; empty means 10.42.0.0/24.
	SubnetCidrBlock string
}

// Network is where the instance runs: a VPC of its own with one public subnet in the zone (no
// NAT gateway to pay for; no inbound rule anywhere), or an existing subnet.
type Network struct {
	pulumi.ResourceState

	// VpcID is the VPC.
	VpcID pulumi.StringOutput `pulumi:"vpcId"`
	// SubnetID is the subnet.
	SubnetID pulumi.StringOutput `pulumi:"subnetId"`
	// Public reports whether the instance needs a public address for outbound traffic (a subnet
	// created here) or not (an existing subnet, which has its own way out).
	Public bool
}

// ExistingSubnet is a subnet of the account's, in the right zone.
type ExistingSubnet struct {
	ID    string
	VpcID string
}

// LookupSubnetInZone finds subnet id and checks it is in zone: the instance must run where its
// data volume is. It registers nothing, so a program can call it before anything else.
func LookupSubnetInZone(ctx *pulumi.Context, id, zone string) (*ExistingSubnet, error) {
	subnet, err := ec2.LookupSubnet(ctx, &ec2.LookupSubnetArgs{Id: pulumi.StringRef(id)})
	if err != nil {
		return nil, fmt.Errorf("looking up subnet_id %s: %w", id, err)
	}
	if subnet.AvailabilityZone != zone {
		return nil, fmt.Errorf("subnet_id %s is in %s but availability_zone is %s: the instance must run "+
			"where its data volume is; choose a subnet in %s", id, subnet.AvailabilityZone, zone, zone)
	}
	return &ExistingSubnet{ID: subnet.Id, VpcID: subnet.VpcId}, nil
}

// NewNetwork creates the network, or wraps the existing subnet.
func NewNetwork(ctx *pulumi.Context, name string, args *NetworkArgs, opts ...pulumi.ResourceOption) (*Network, error) {
	if args == nil {
		return nil, errors.New("components: NewNetwork needs args")
	}
	if args.Existing != nil {
		c := &Network{}
		if err := ctx.RegisterComponentResource(TypeNetwork, name, c, opts...); err != nil {
			return nil, err
		}
		c.VpcID = pulumi.String(args.Existing.VpcID).ToStringOutput()
		c.SubnetID = pulumi.String(args.Existing.ID).ToStringOutput()
		return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"vpcId": c.VpcID, "subnetId": c.SubnetID})
	}

	cidr, subnetCidr := args.CidrBlock, args.SubnetCidrBlock
	if cidr == "" {
		cidr = "10.42.0.0/16"
	}
	if subnetCidr == "" {
		subnetCidr = "10.42.0.0/24"
	}
	c := &Network{Public: true}
	if err := ctx.RegisterComponentResource(TypeNetwork, name, c, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(c)
	vpc, err := ec2.NewVpc(ctx, name+"-vpc", &ec2.VpcArgs{
		CidrBlock:          pulumi.String(cidr),
		EnableDnsHostnames: pulumi.Bool(true),
		EnableDnsSupport:   pulumi.Bool(true),
		Tags:               childTags(ctx, c, "aws:ec2/vpc:Vpc", name+"-vpc", nil),
	}, parent)
	if err != nil {
		return nil, err
	}
	igw, err := ec2.NewInternetGateway(ctx, name+"-igw", &ec2.InternetGatewayArgs{
		VpcId: vpc.ID(),
		Tags:  childTags(ctx, c, "aws:ec2/internetGateway:InternetGateway", name+"-igw", nil),
	}, parent)
	if err != nil {
		return nil, err
	}
	subnet, err := ec2.NewSubnet(ctx, name+"-subnet", &ec2.SubnetArgs{
		VpcId:               vpc.ID(),
		CidrBlock:           pulumi.String(subnetCidr),
		AvailabilityZone:    pulumi.String(args.AvailabilityZone),
		MapPublicIpOnLaunch: pulumi.Bool(false),
		Tags:                childTags(ctx, c, "aws:ec2/subnet:Subnet", name+"-subnet", nil),
	}, parent)
	if err != nil {
		return nil, err
	}
	routes, err := ec2.NewRouteTable(ctx, name+"-routes", &ec2.RouteTableArgs{
		VpcId: vpc.ID(),
		Routes: ec2.RouteTableRouteArray{ec2.RouteTableRouteArgs{
			CidrBlock: pulumi.String("0.0.0.0/0"),
			GatewayId: igw.ID(),
		}},
		Tags: childTags(ctx, c, "aws:ec2/routeTable:RouteTable", name+"-routes", nil),
	}, parent)
	if err != nil {
		return nil, err
	}
	if _, err := ec2.NewRouteTableAssociation(ctx, name+"-routes-subnet", &ec2.RouteTableAssociationArgs{
		SubnetId:     subnet.ID(),
		RouteTableId: routes.ID(),
	}, parent); err != nil {
		return nil, err
	}
	c.VpcID = vpc.ID().ToStringOutput()
	c.SubnetID = subnet.ID().ToStringOutput()
	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{"vpcId": c.VpcID, "subnetId": c.SubnetID}); err != nil {
		return nil, err
	}
	return c, nil
}
