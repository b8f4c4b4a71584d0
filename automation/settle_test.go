package automation

import (
	"slices"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

func TestSettlePendingPlacesFoundCreatesAfterWhatTheyNeed(t *testing.T) {
	t.Parallel()
	prov := "urn:pulumi:dev::openclaw::pulumi:providers:sim::default"
	res := func(name string, deps ...string) apitype.ResourceV3 {
		r := apitype.ResourceV3{URN: resource.URN("urn:pulumi:dev::openclaw::sim:index:Thing::" + name), Type: "sim:index:Thing",
			Custom: true, Provider: prov + "::prov-id", Inputs: map[string]any{"value": name}}
		for _, d := range deps {
			r.Dependencies = append(r.Dependencies, resource.URN("urn:pulumi:dev::openclaw::sim:index:Thing::"+d))
		}
		return r
	}
	state := apitype.DeploymentV3{
		Resources: []apitype.ResourceV3{
			{URN: "urn:pulumi:dev::openclaw::pulumi:pulumi:Stack::openclaw-dev", Type: "pulumi:pulumi:Stack"},
			{URN: resource.URN(prov), Type: "pulumi:providers:sim", Custom: true, ID: "prov-id"},
			res("base"), res("left", "base"), res("right", "base"),
		},
		PendingOperations: []apitype.OperationV2{
			{Type: apitype.OperationTypeCreating, Resource: res("left-2", "left")},
			{Type: apitype.OperationTypeCreating, Resource: res("right-2", "right")},
			{Type: apitype.OperationTypeUpdating, Resource: res("base")},
		},
	}
	settlePending(&state, map[string]string{"urn:pulumi:dev::openclaw::sim:index:Thing::left-2": "thing-l2"})
	if len(state.PendingOperations) != 0 {
		t.Errorf("pending operations left: %v", state.PendingOperations)
	}
	var names []string
	for _, r := range state.Resources {
		names = append(names, r.URN.Name())
	}
	if want := []string{"openclaw-dev", "default", "base", "left", "left-2", "right"}; !slices.Equal(names, want) {
		t.Errorf("resources = %v, want %v (right-2 was not found: dropped)", names, want)
	}
	l2 := state.Resources[4]
	if l2.ID != "thing-l2" || l2.Outputs["value"] != "left-2" || !l2.Custom {
		t.Errorf("imported resource: %+v", l2)
	}
}
