package targets

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
)

// Risk classes of a change, most serious first.
const (
	RiskData     = "data"
	RiskDowntime = "downtime"
	RiskAccess   = "access"
)

// Risk is what a change of one resource puts at risk, for a preview's reviewers.
type Risk struct {
	// Class is RiskData, RiskDowntime, RiskAccess or empty; Reason says why, in one line.
	Class  string
	Reason string
	// DowntimeMinutes is the expected time until READY again, for a downtime risk.
	DowntimeMinutes int
	// ReplacesHost reports that the change replaces the deployment's host: a new instance.
	ReplacesHost bool
}

// Change is a resource's change in an engine's step event, as a target's Risk reads it.
type Change struct {
	apitype.StepEventMetadata
}

// Gone reports whether the resource would be replaced or deleted.
func (c Change) Gone() bool { return c.Op == apitype.OpReplace || c.Op == apitype.OpDelete }

// Verb is what would happen to the resource: replaced, deleted, updated or created.
func (c Change) Verb() string {
	return map[apitype.OpType]string{apitype.OpReplace: "replaced", apitype.OpDelete: "deleted",
		apitype.OpUpdate: "updated", apitype.OpCreate: "created"}[c.Op]
}

// ForcedBy says which properties force the replacement, and the configuration keys behind them
// (configOf: property → the keys, in words); empty when none does.
func (c Change) ForcedBy(configOf map[string]string) string {
	if len(c.Keys) == 0 {
		return ""
	}
	var parts []string
	for _, k := range c.Keys {
		if config, ok := configOf[k]; ok {
			parts = append(parts, fmt.Sprintf("%s (config: %s)", k, config))
		} else {
			parts = append(parts, k)
		}
	}
	return ", forced by " + strings.Join(parts, "; ")
}

// ShortType is the resource's type as people say it: aws:iam/rolePolicy:RolePolicy is
// "RolePolicy".
func (c Change) ShortType() string {
	if i := strings.LastIndexByte(c.Type, ':'); i >= 0 {
		return c.Type[i+1:]
	}
	return c.Type
}

// SecureString reports whether the resource is an SSM SecureString parameter, before or after.
func (c Change) SecureString() bool {
	for _, s := range []*apitype.StepEventStateMetadata{c.Old, c.New} {
		if s != nil && fmt.Sprint(s.Inputs["type"]) == "SecureString" {
			return true
		}
	}
	return false
}
