// Package preview sums a preview up for the people who review it: engine events in (Collector),
// the changes with the risk each carries (the target says which, targets.Target.Risk), and the
// same as Markdown for a pull-request comment (Result.Comment, FleetComment) or as the changes
// event's NDJSON (the types' JSON). It runs nothing: the driver runs the engine.
package preview

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/clawdeploy/clawdeploy/targets"
)

// Result is what a preview found.
type Result struct {
	// Changes sums the preview up for reviewers: counts, risks, ignored configuration.
	Changes *Changes
	// Diff is the engine's own rendering of the changes, property by property.
	Diff string
	// Cost is the monthly cost now and after, when asked for.
	Cost *targets.CostComparison
}

// Changes is what a preview found an up would do, for reviewers: counts, and each resource
// that would change with the risk it carries.
type Changes struct {
	// Counts are the resources per operation: create, update, replace, delete, same.
	Counts map[string]int `json:"counts"`
	// Resources are the ones that would change, the riskiest first.
	Resources []ResourceChange `json:"resources"`
	// Ignored are configuration changes the program ignores on an existing stack: a silent
	// no-op would be a lie.
	Ignored []targets.IgnoredChange `json:"ignored,omitempty"`
	// Policies are the violations the policy packs reported (preview --policy-pack).
	Policies []PolicyViolation `json:"policies,omitempty"`
	// Image says that openclaw_image's tag points elsewhere than the digest the stack runs.
	Image *ImageChange `json:"image,omitempty"`
}

// ImageChange is a tag that moved since the stack pinned it: an upgrade that only
// `up --refresh-image` deploys (the stack keeps running Recorded until then).
type ImageChange struct {
	// Image is openclaw_image: the tag.
	Image string `json:"image"`
	// Recorded is the digest the stack runs; Latest the one the tag points to now.
	Recorded string `json:"recorded"`
	Latest   string `json:"latest"`
	// Followed says this preview is of --refresh-image: its changes deploy Latest.
	Followed bool `json:"followed"`
}

// String says it in a line.
func (i *ImageChange) String() string {
	if i.Followed {
		return fmt.Sprintf("%s moved from %s to %s: this up follows it, an upgrade (downtime, pre-upgrade checkpoint)", i.Image, i.Recorded, i.Latest)
	}
	return fmt.Sprintf("%s moved from %s to %s: not deployed (the stack keeps %s); `up --refresh-image` upgrades (downtime, pre-upgrade checkpoint)",
		i.Image, i.Recorded, i.Latest, i.Recorded)
}

// PolicyViolation is one finding of a policy pack.
type PolicyViolation struct {
	Pack    string `json:"pack"`
	Policy  string `json:"policy"`
	URN     string `json:"urn,omitempty"`
	Message string `json:"message"`
	// Enforcement is advisory, mandatory, remediate or disabled, as the engine reports it.
	Enforcement string `json:"enforcement"`
}

// Mandatory counts the violations that fail the preview.
func (c *Changes) Mandatory() int {
	n := 0
	for _, p := range c.Policies {
		if p.Enforcement == "mandatory" {
			n++
		}
	}
	return n
}

// ResourceChange is one resource an up would change.
type ResourceChange struct {
	URN  string `json:"urn"`
	Type string `json:"type"`
	Op   string `json:"op"`
	// ReplaceKeys are the properties that force a replacement; Diffs every property that changes.
	ReplaceKeys []string `json:"replaceKeys,omitempty"`
	Diffs       []string `json:"diffs,omitempty"`
	// Risk is targets.RiskData, RiskDowntime, RiskAccess or empty; Reason says why, in one line.
	Risk   string `json:"risk,omitempty"`
	Reason string `json:"reason,omitempty"`
	// DowntimeMinutes is the expected time until READY again, for a downtime risk.
	DowntimeMinutes int `json:"downtimeMinutes,omitempty"`
	// ReplacesHost reports that the change replaces the deployment's host (the fleet comment
	// counts the stacks that would).
	ReplacesHost bool `json:"-"`
}

// Changed counts the resources that would change.
func (c *Changes) Changed() int {
	return c.Counts["create"] + c.Counts["update"] + c.Counts["replace"] + c.Counts["delete"]
}

// Of returns the changes of a risk class.
func (c *Changes) Of(risk string) []ResourceChange {
	var out []ResourceChange
	for _, r := range c.Resources {
		if r.Risk == risk {
			out = append(out, r)
		}
	}
	return out
}

// Verdict is the summary in one line.
func (c *Changes) Verdict() string {
	data, downtime := len(c.Of(targets.RiskData))+len(c.Ignored), len(c.Of(targets.RiskDowntime))
	switch {
	case data > 0:
		return fmt.Sprintf("DATA AT RISK: %d change(s) endanger OpenClaw's data", data)
	case downtime > 0:
		return fmt.Sprintf("downtime: OpenClaw is down about %d minutes while its instance is replaced", c.downtimeMinutes())
	case c.Changed() == 0:
		return "no changes"
	case len(c.Of(targets.RiskAccess)) > 0:
		return "access changes: review the IAM, security group and bucket policy changes"
	}
	return "safe: no data at risk, no downtime"
}

func (c *Changes) downtimeMinutes() int {
	m := 0
	for _, r := range c.Of(targets.RiskDowntime) {
		m = max(m, r.DowntimeMinutes)
	}
	return m
}

// Collector builds Changes from a preview's engine events.
type Collector struct {
	// Risk says what a change puts at risk: the target's Risk.
	Risk    func(targets.Change) targets.Risk
	changes Changes
}

// Handle records one event of the preview.
func (cc *Collector) Handle(e events.EngineEvent) {
	if cc.changes.Counts == nil {
		cc.changes.Counts = map[string]int{}
	}
	switch {
	case e.ResourcePreEvent != nil:
		cc.add(e.ResourcePreEvent.Metadata)
	case e.PolicyEvent != nil:
		p := e.PolicyEvent
		cc.changes.Policies = append(cc.changes.Policies, PolicyViolation{Pack: p.PolicyPackName, Policy: p.PolicyName,
			URN: p.ResourceURN, Message: strings.TrimSpace(p.Message), Enforcement: p.EnforcementLevel})
	}
}

// Result is what the events said, in an order that does not depend on the engine's.
func (cc *Collector) Result() *Changes {
	if cc.changes.Counts == nil {
		cc.changes.Counts = map[string]int{}
	}
	order := map[string]int{targets.RiskData: 0, targets.RiskDowntime: 1, targets.RiskAccess: 2, "": 3}
	// The engine runs steps in parallel: its order says nothing. Riskiest first, then by URN.
	slices.SortFunc(cc.changes.Resources, func(a, b ResourceChange) int {
		return cmp.Or(cmp.Compare(order[a.Risk], order[b.Risk]), strings.Compare(a.URN, b.URN))
	})
	slices.SortFunc(cc.changes.Policies, func(a, b PolicyViolation) int {
		return cmp.Or(strings.Compare(a.Pack, b.Pack), strings.Compare(a.Policy, b.Policy), strings.Compare(a.URN, b.URN))
	})
	return &cc.changes
}

func (cc *Collector) add(m apitype.StepEventMetadata) {
	if m.Type == "pulumi:pulumi:Stack" || strings.HasPrefix(m.Type, "pulumi:providers:") {
		return
	}
	op := string(m.Op)
	switch op {
	case "same", "create", "update", "replace", "delete":
	default:
		return // the halves of a replacement (create-replacement, delete-replaced), reads, refreshes
	}
	cc.changes.Counts[op]++
	if op == "same" {
		return
	}
	rc := ResourceChange{URN: m.URN, Type: m.Type, Op: op, ReplaceKeys: m.Keys, Diffs: m.Diffs}
	risk := cc.Risk(targets.Change{StepEventMetadata: m})
	rc.Risk, rc.Reason, rc.DowntimeMinutes, rc.ReplacesHost = risk.Class, risk.Reason, risk.DowntimeMinutes, risk.ReplacesHost
	cc.changes.Resources = append(cc.changes.Resources, rc)
}
