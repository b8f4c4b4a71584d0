package simprogram

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/internal/simprovider"
)

// Finder looks resources up in the simulated cloud by the identities ec2spot.Finder uses
// in AWS: the clawdeploy:urn tag for tagged types, the name for named ones, the identifying
// inputs for the rest.
type Finder struct {
	// Cloud is the cloud file.
	Cloud string
}

// named are the types AWS finds by a name input.
var named = map[string]string{
	"aws:s3/bucketV2:BucketV2":                "bucket",
	"aws:iam/role:Role":                       "name",
	"aws:iam/instanceProfile:InstanceProfile": "name",
	"aws:ssm/parameter:Parameter":             "name",
	"aws:cloudwatch/logGroup:LogGroup":        "name",
}

// identifying are the types AWS finds by several inputs together.
var identifying = map[string][]string{
	"aws:ec2/volumeAttachment:VolumeAttachment":           {"volumeId", "instanceId"},
	"aws:ec2/routeTableAssociation:RouteTableAssociation": {"subnetId", "routeTableId"},
	"aws:iam/rolePolicy:RolePolicy":                       {"role", "name"},
}

// Find implements automation.Finder.
func (f Finder) Find(_ context.Context, pc automation.PendingCreate) (string, bool, error) {
	c, err := simprovider.Load(f.Cloud)
	if err != nil {
		return "", false, err
	}
	var hits []string
	for _, r := range c.Resources {
		if r.Type != pc.Type {
			continue
		}
		if f.same(r, pc) && !slices.Contains(pc.Known, r.ID) {
			hits = append(hits, r.ID)
		}
	}
	switch len(hits) {
	case 0:
		return "", false, nil
	case 1:
		return hits[0], true, nil
	}
	return "", false, fmt.Errorf("%d resources carry the identity of %s: %s", len(hits), pc.URN, strings.Join(hits, ", "))
}

func (f Finder) same(r simprovider.Resource, pc automation.PendingCreate) bool {
	if key, ok := named[pc.Type]; ok {
		return fmt.Sprint(r.Inputs[key]) == fmt.Sprint(pc.Inputs[key])
	}
	if keys, ok := identifying[pc.Type]; ok {
		for _, k := range keys {
			if fmt.Sprint(r.Inputs[k]) != fmt.Sprint(pc.Inputs[k]) {
				return false
			}
		}
		return true
	}
	if strings.HasPrefix(pc.Type, "aws:s3/bucket") {
		return fmt.Sprint(r.Inputs["bucket"]) == fmt.Sprint(pc.Inputs["bucket"])
	}
	return fmt.Sprint(r.Tags[components.TagURN]) == pc.URN
}
