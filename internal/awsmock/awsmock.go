// Package awsmock answers for AWS in unit tests: the ids and computed outputs the AWS provider
// gives resources, and the data sources the program reads, as pulumitest options. Tests replace
// any answer with pulumitest.WithCall or WithOutputs.
package awsmock

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/clawdeploy/clawdeploy/internal/pulumitest"
)

// Answers the defaults give.
const (
	Region   = "me-central-1"
	Zone     = "me-central-1a"
	AMI      = "ami-0a1b2c3d4e5f60718"
	Snapshot = "snap-0123456789abcdef0"
)

// Data-source tokens the program calls.
const (
	CallerIdentity = "aws:index/getCallerIdentity:getCallerIdentity"
	Partition      = "aws:index/getPartition:getPartition"
	GetAmi         = "aws:ec2/getAmi:getAmi"
	GetSnapshot    = "aws:ebs/getSnapshot:getSnapshot"
	GetEbsVolumes  = "aws:ebs/getEbsVolumes:getEbsVolumes"
	GetVolume      = "aws:ebs/getVolume:getVolume"
	GetSubnet      = "aws:ec2/getSubnet:getSubnet"
)

// hexID is a stable 17-digit hex id derived from a name, as AWS ids look.
func hexID(prefix, name string) string {
	sum := sha256.Sum256([]byte(name))
	return prefix + hex.EncodeToString(sum[:])[:17]
}

// IDPrefixes are how the AWS ids of the program's EC2 and DLM resources begin; the id goes on
// with 17 hex digits. The simulated provider makes its ids the same way.
var IDPrefixes = map[string]string{
	"aws:ebs/volume:Volume":                               "vol-",
	"aws:ec2/instance:Instance":                           "i-",
	"aws:ec2/vpc:Vpc":                                     "vpc-",
	"aws:ec2/subnet:Subnet":                               "subnet-",
	"aws:ec2/securityGroup:SecurityGroup":                 "sg-",
	"aws:ec2/internetGateway:InternetGateway":             "igw-",
	"aws:ec2/routeTable:RouteTable":                       "rtb-",
	"aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc-",
	"aws:ec2/volumeAttachment:VolumeAttachment":           "vai-",
	"aws:dlm/lifecyclePolicy:LifecyclePolicy":             "policy-",
}

// Options are the default answers.
func Options() []pulumitest.Option {
	opts := []pulumitest.Option{}
	for typ, prefix := range IDPrefixes {
		opts = append(opts, pulumitest.WithID(typ, func(name string, _ resource.PropertyMap) string {
			return hexID(prefix, name)
		}))
	}
	// Autonamed resources get their name plus a random-looking suffix, as the provider does.
	autoname := func(name string) string { return strings.ToLower(name) + "-1a2b3c4" }
	opts = append(opts,
		pulumitest.WithID("aws:s3/bucketV2:BucketV2", func(name string, _ resource.PropertyMap) string { return autoname(name) }),
		pulumitest.WithOutputs("aws:s3/bucketV2:BucketV2", func(name string, _ resource.PropertyMap) resource.PropertyMap {
			return resource.PropertyMap{
				"bucket": resource.NewProperty(autoname(name)),
				"arn":    resource.NewProperty("arn:aws:s3:::" + autoname(name)),
			}
		}),
		pulumitest.WithOutputs("aws:iam/role:Role", func(name string, _ resource.PropertyMap) resource.PropertyMap {
			return resource.PropertyMap{
				"name": resource.NewProperty(autoname(name)),
				"arn":  resource.NewProperty("arn:aws:iam::" + pulumitest.Account + ":role/" + autoname(name)),
			}
		}),
		pulumitest.WithOutputs("aws:iam/instanceProfile:InstanceProfile", func(name string, _ resource.PropertyMap) resource.PropertyMap {
			return resource.PropertyMap{"name": resource.NewProperty(autoname(name))}
		}),
		pulumitest.WithOutputs("aws:ec2/instance:Instance", func(string, resource.PropertyMap) resource.PropertyMap {
			return resource.PropertyMap{"privateIp": resource.NewProperty("10.42.0.10")}
		}),
		pulumitest.WithCall(CallerIdentity, answer(resource.PropertyMap{
			"accountId": resource.NewProperty(pulumitest.Account),
			"arn":       resource.NewProperty("arn:aws:iam::" + pulumitest.Account + ":user/ops"),
			"userId":    resource.NewProperty("AIDAEXAMPLE"),
			"id":        resource.NewProperty(pulumitest.Account),
		})),
		pulumitest.WithCall(Partition, answer(resource.PropertyMap{
			"partition": resource.NewProperty("aws"),
			"dnsSuffix": resource.NewProperty("amazonaws.com"),
			"id":        resource.NewProperty("aws"),
		})),
		pulumitest.WithCall(GetAmi, func(args resource.PropertyMap) (resource.PropertyMap, error) {
			return resource.PropertyMap{
				"id":           resource.NewProperty(AMI),
				"architecture": resource.NewProperty(filter(args, "architecture")),
				"name":         resource.NewProperty("al2023-ami-2023.9.20261101.0-kernel-6.12-" + filter(args, "architecture")),
			}, nil
		}),
		pulumitest.WithCall(GetSnapshot, SnapshotIn(Zone, 20)),
		pulumitest.WithCall(GetEbsVolumes, answer(resource.PropertyMap{"ids": resource.NewProperty([]resource.PropertyValue{})})),
		pulumitest.WithCall(GetSubnet, SubnetIn(Zone)),
	)
	return opts
}

func answer(m resource.PropertyMap) pulumitest.CallFunc {
	return func(resource.PropertyMap) (resource.PropertyMap, error) { return m, nil }
}

// filter returns the first value of a data source's filter by name.
func filter(args resource.PropertyMap, name string) string {
	v, ok := args["filters"]
	if !ok || !v.IsArray() {
		return ""
	}
	for _, f := range v.ArrayValue() {
		if f.IsObject() && f.ObjectValue()["name"].StringValue() == name {
			if vals := f.ObjectValue()["values"]; vals.IsArray() && len(vals.ArrayValue()) > 0 {
				return vals.ArrayValue()[0].StringValue()
			}
		}
	}
	return ""
}

// SnapshotIn answers getSnapshot with a snapshot of sizeGB tagged for zone; an empty zone means
// no OpenClawAz tag at all.
func SnapshotIn(zone string, sizeGB int) pulumitest.CallFunc {
	return func(resource.PropertyMap) (resource.PropertyMap, error) {
		tags := resource.PropertyMap{"OpenClawData": resource.NewProperty("true")}
		if zone != "" {
			tags["OpenClawAz"] = resource.NewProperty(zone)
		}
		return resource.PropertyMap{
			"id":         resource.NewProperty(Snapshot),
			"snapshotId": resource.NewProperty(Snapshot),
			"volumeSize": resource.NewProperty(float64(sizeGB)),
			"tags":       resource.NewProperty(tags),
		}, nil
	}
}

// ExistingVolumeIn answers the data-volume lookups with one volume of the stack, in zone.
func ExistingVolumeIn(zone string) []pulumitest.Option {
	return []pulumitest.Option{
		pulumitest.WithCall(GetEbsVolumes, answer(resource.PropertyMap{
			"ids": resource.NewProperty([]resource.PropertyValue{resource.NewProperty("vol-0feedfacecafe0001")}),
		})),
		pulumitest.WithCall(GetVolume, answer(resource.PropertyMap{
			"id":               resource.NewProperty("vol-0feedfacecafe0001"),
			"volumeId":         resource.NewProperty("vol-0feedfacecafe0001"),
			"availabilityZone": resource.NewProperty(zone),
		})),
	}
}

// SubnetIn answers getSubnet with a subnet in zone.
func SubnetIn(zone string) pulumitest.CallFunc {
	return func(args resource.PropertyMap) (resource.PropertyMap, error) {
		id := "subnet-0123456789abcdef0"
		if v, ok := args["id"]; ok && v.IsString() {
			id = v.StringValue()
		}
		return resource.PropertyMap{
			"id":               resource.NewProperty(id),
			"vpcId":            resource.NewProperty("vpc-0123456789abcdef0"),
			"availabilityZone": resource.NewProperty(zone),
		}, nil
	}
}
