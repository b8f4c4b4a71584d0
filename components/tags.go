package components

import (
	"maps"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Tag keys.
const (
	// TagStack names the stack a resource belongs to.
	TagStack = "OpenClawStack"
	// TagURN is a resource's own URN: its deterministic identity.
	TagURN = "clawdeploy:urn"
	// TagData marks the data volume and its snapshots.
	TagData = "OpenClawData"
	// TagAz is the availability zone a data volume or snapshot belongs to; the AZ guard reads it.
	TagAz = "OpenClawAz"
)

// ChildURN returns the URN a child of parent gets: the one the engine will give it.
func ChildURN(parent pulumi.URN, childType, childName string) string {
	u := resource.URN(parent)
	return string(resource.NewURN(u.Stack(), u.Project(), u.QualifiedType(), tokens.Type(childType), childName))
}

// childTags returns the tags of an AWS resource a component creates: its stack, its URN, a Name
// for the console, and extra.
//
// The URN comes from the parent's URN output, but the tags must not depend on the parent: the SDK
// expands a dependency on a component into one on all its children, the child being registered
// included, which would then wait for itself. So the value goes through an output of its own,
// resolved from the parent's URN and carrying no dependency.
func childTags(ctx *pulumi.Context, parent pulumi.Resource, childType, childName string, extra map[string]string) pulumi.StringMapOutput {
	stack := ctx.Stack()
	tags, resolve, _ := ctx.NewOutput()
	parent.URN().ApplyT(func(urn pulumi.URN) pulumi.URN {
		t := map[string]string{
			TagStack: stack,
			TagURN:   ChildURN(urn, childType, childName),
			"Name":   childName,
		}
		maps.Copy(t, extra)
		resolve(t)
		return urn
	})
	return tags.ApplyT(func(v any) map[string]string { return v.(map[string]string) }).(pulumi.StringMapOutput)
}
