package simprovider

import (
	"context"
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// Zone is the zone simulated subnets are in unless CLAWDEPLOY_SIM_ZONE says otherwise.
const Zone = "me-central-1a"

// AMI is the image the simulated AMI lookup finds.
const AMI = "ami-0a1b2c3d4e5f60718"

// Invoke answers the data sources the program calls, from the simulated cloud.
func (p *Provider) Invoke(_ context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	args, err := unmarshal(req.GetArgs())
	if err != nil {
		return nil, err
	}
	c, err := Load(p.cloud)
	if err != nil {
		return nil, err
	}
	ret, err := answer(req.GetTok(), args, c)
	if err != nil {
		return nil, err
	}
	out, err := marshal(resource.NewPropertyMapFromMap(ret))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.InvokeResponse{Return: out}, nil
}

// filters reads the name → values filters of a data source.
func filters(args resource.PropertyMap) map[string][]string {
	out := map[string][]string{}
	if v, ok := args["filters"]; ok && v.IsArray() {
		for _, f := range v.ArrayValue() {
			o := f.ObjectValue()
			for _, val := range o["values"].ArrayValue() {
				out[o["name"].StringValue()] = append(out[o["name"].StringValue()], val.StringValue())
			}
		}
	}
	return out
}

func answer(token string, args resource.PropertyMap, c *Cloud) (map[string]any, error) {
	zone := os.Getenv("CLAWDEPLOY_SIM_ZONE")
	if zone == "" {
		zone = Zone
	}
	switch token {
	case "aws:index/getCallerIdentity:getCallerIdentity":
		return map[string]any{"accountId": Account, "arn": "arn:aws:iam::" + Account + ":user/sim", "userId": "AIDASIM", "id": Account}, nil
	case "aws:index/getPartition:getPartition":
		return map[string]any{"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, nil
	case "aws:ec2/getAmi:getAmi":
		arch := "arm64"
		if a := filters(args)["architecture"]; len(a) > 0 {
			arch = a[0]
		}
		return map[string]any{"id": AMI, "architecture": arch, "name": "al2023-ami-2023-sim-" + arch}, nil
	case "aws:ebs/getSnapshot:getSnapshot":
		ids := args["snapshotIds"].ArrayValue()
		if len(ids) == 0 {
			return nil, fmt.Errorf("getSnapshot without snapshotIds")
		}
		snap, ok := c.Snapshots[ids[0].StringValue()]
		if !ok {
			return nil, fmt.Errorf("no snapshot %s", ids[0].StringValue())
		}
		tags := map[string]any{}
		for k, v := range snap.Tags {
			tags[k] = v
		}
		return map[string]any{"id": ids[0].StringValue(), "snapshotId": ids[0].StringValue(), "volumeSize": snap.SizeGB, "tags": tags}, nil
	case "aws:ebs/getEbsVolumes:getEbsVolumes":
		var ids []any
		for _, r := range c.OfType("aws:ebs/volume:Volume") {
			if matchesTags(r, filters(args)) {
				ids = append(ids, r.ID)
			}
		}
		return map[string]any{"ids": ids, "id": "volumes"}, nil
	case "aws:ebs/getVolume:getVolume":
		for _, id := range filters(args)["volume-id"] {
			if r, ok := c.Resources[Key("aws:ebs/volume:Volume", id)]; ok {
				return map[string]any{"id": id, "volumeId": id, "availabilityZone": r.Inputs["availabilityZone"]}, nil
			}
		}
		return nil, fmt.Errorf("no matching EBS volume found")
	case "aws:ec2/getSubnet:getSubnet":
		id, _ := args["id"].V.(string)
		return map[string]any{"id": id, "vpcId": "vpc-0000000000000sim", "availabilityZone": zone}, nil
	}
	return nil, fmt.Errorf("simulated provider: no answer for data source %s", token)
}

// matchesTags reports whether a resource carries every tag:K=V filter.
func matchesTags(r Resource, f map[string][]string) bool {
	for name, values := range f {
		key, ok := cutPrefix(name, "tag:")
		if !ok {
			continue
		}
		v, has := r.Tags[key]
		if !has || fmt.Sprint(v) != values[0] {
			return false
		}
	}
	return true
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return s, false
}
