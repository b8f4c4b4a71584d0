package automation

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
)

// Risk classes of a change, most serious first.
const (
	RiskData     = "data"
	RiskDowntime = "downtime"
	RiskAccess   = "access"
)

// ReadyAgainMinutes is the expected time until READY again after the instance is replaced: a
// new instance, its attachment, the boot and the setup.
const ReadyAgainMinutes = 6

// Changes is what a preview found an up would do, for reviewers: counts, and each resource
// that would change with the risk it carries.
type Changes struct {
	// Counts are the resources per operation: create, update, replace, delete, same.
	Counts map[string]int `json:"counts"`
	// Resources are the ones that would change, the riskiest first.
	Resources []ResourceChange `json:"resources"`
	// Ignored are configuration changes the program ignores on an existing stack: a silent
	// no-op would be a lie.
	Ignored []IgnoredChange `json:"ignored,omitempty"`
	// Policies are the violations the policy packs reported (preview --policy-pack).
	Policies []PolicyViolation `json:"policies,omitempty"`
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
	// Risk is RiskData, RiskDowntime, RiskAccess or empty; Reason says why, in one line.
	Risk   string `json:"risk,omitempty"`
	Reason string `json:"reason,omitempty"`
	// DowntimeMinutes is the expected time until READY again, for a downtime risk.
	DowntimeMinutes int `json:"downtimeMinutes,omitempty"`
}

// IgnoredChange is a configuration key whose new value the program does not apply to an existing
// stack, and what to do instead.
type IgnoredChange struct {
	Key     string `json:"key"`
	From    string `json:"from"`
	To      string `json:"to"`
	Reason  string `json:"reason"`
	Instead string `json:"instead"`
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
	data, downtime := len(c.Of(RiskData))+len(c.Ignored), len(c.Of(RiskDowntime))
	switch {
	case data > 0:
		return fmt.Sprintf("DATA AT RISK: %d change(s) endanger OpenClaw's data", data)
	case downtime > 0:
		return fmt.Sprintf("downtime: OpenClaw is down about %d minutes while its instance is replaced", c.downtimeMinutes())
	case c.Changed() == 0:
		return "no changes"
	case len(c.Of(RiskAccess)) > 0:
		return "access changes: review the IAM, security group and bucket policy changes"
	}
	return "safe: no data at risk, no downtime"
}

func (c *Changes) downtimeMinutes() int {
	m := 0
	for _, r := range c.Of(RiskDowntime) {
		m = max(m, r.DowntimeMinutes)
	}
	return m
}

// changesCollector builds Changes from a preview's engine events.
type changesCollector struct {
	changes Changes
}

// handle records one event of the preview.
func (cc *changesCollector) handle(e events.EngineEvent) {
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

// result is what the events said, in an order that does not depend on the engine's.
func (cc *changesCollector) result() *Changes {
	if cc.changes.Counts == nil {
		cc.changes.Counts = map[string]int{}
	}
	order := map[string]int{RiskData: 0, RiskDowntime: 1, RiskAccess: 2, "": 3}
	// The engine runs steps in parallel: its order says nothing. Riskiest first, then by URN.
	slices.SortFunc(cc.changes.Resources, func(a, b ResourceChange) int {
		return cmp.Or(cmp.Compare(order[a.Risk], order[b.Risk]), strings.Compare(a.URN, b.URN))
	})
	slices.SortFunc(cc.changes.Policies, func(a, b PolicyViolation) int {
		return cmp.Or(strings.Compare(a.Pack, b.Pack), strings.Compare(a.Policy, b.Policy), strings.Compare(a.URN, b.URN))
	})
	return &cc.changes
}

func (cc *changesCollector) add(m apitype.StepEventMetadata) {
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
	rc.Risk, rc.Reason, rc.DowntimeMinutes = classify(m)
	cc.changes.Resources = append(cc.changes.Resources, rc)
}

// classify says what a change puts at risk.
func classify(m apitype.StepEventMetadata) (risk, reason string, minutes int) {
	op := string(m.Op)
	gone := op == "replace" || op == "delete"
	verb := map[string]string{"replace": "replaced", "delete": "deleted", "update": "updated", "create": "created"}[op]
	switch {
	case gone && m.Type == "aws:ebs/volume:Volume":
		return RiskData, "the data volume, which holds OpenClaw's state, would be " + verb + forcedBy(m.Keys), 0
	case gone && m.Type == "aws:s3/bucketV2:BucketV2":
		return RiskData, "the backup bucket would be " + verb + forcedBy(m.Keys) + ": its backups with it", 0
	case gone && m.Type == "aws:dlm/lifecyclePolicy:LifecyclePolicy":
		return RiskData, "the snapshot policy would be " + verb + forcedBy(m.Keys) + ": no scheduled snapshots meanwhile", 0
	case gone && m.Type == "aws:ssm/parameter:Parameter" && secureString(m):
		return RiskData, "a secret parameter would be " + verb + forcedBy(m.Keys) + ": its value is lost unless the configuration still holds it", 0
	case gone && m.Type == "aws:ec2/instance:Instance":
		return RiskDowntime, "the instance would be " + verb + forcedBy(m.Keys), ReadyAgainMinutes
	case gone && m.Type == "aws:ec2/volumeAttachment:VolumeAttachment":
		return RiskDowntime, "the data volume would be detached and attached again" + forcedBy(m.Keys), ReadyAgainMinutes
	case gone && m.Type == "command:remote:Command" && strings.HasSuffix(m.URN, "-launch"):
		return RiskDowntime, "the setup runs again on the host: the gateway restarts" + forcedBy(m.Keys), 1
	case strings.HasPrefix(m.Type, "aws:iam/"),
		m.Type == "aws:ec2/securityGroup:SecurityGroup", m.Type == "aws:ec2/securityGroupRule:SecurityGroupRule",
		strings.HasPrefix(m.Type, "aws:vpc/securityGroup"),
		m.Type == "aws:s3/bucketPolicy:BucketPolicy", m.Type == "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock":
		return RiskAccess, fmt.Sprintf("%s would be %s%s", shortType(m.Type), verb, forcedBy(m.Keys)), 0
	}
	return "", "", 0
}

// configOfProperty names the configuration keys behind the properties that force a replacement
// of the program's resources.
var configOfProperty = map[string]string{
	"userData":              "openclaw_image, backup_interval_minutes or another setting the instance's user-data carries",
	"userDataBase64":        "openclaw_image, backup_interval_minutes or another setting the instance's user-data carries",
	"instanceType":          "instance_type (instance_types)",
	"ami":                   "ami_id",
	"subnetId":              "availability_zone or subnet_id",
	"availabilityZone":      "availability_zone",
	"snapshotId":            "data_volume_snapshot_id",
	"instanceMarketOptions": "spot_max_price",
}

// forcedBy says which properties force a replacement, and the configuration behind them.
func forcedBy(keys []string) string {
	if len(keys) == 0 {
		return ""
	}
	var parts []string
	for _, k := range keys {
		if c, ok := configOfProperty[k]; ok {
			parts = append(parts, fmt.Sprintf("%s (config: %s)", k, c))
		} else {
			parts = append(parts, k)
		}
	}
	return ", forced by " + strings.Join(parts, "; ")
}

func secureString(m apitype.StepEventMetadata) bool {
	for _, s := range []*apitype.StepEventStateMetadata{m.Old, m.New} {
		if s != nil && fmt.Sprint(s.Inputs["type"]) == "SecureString" {
			return true
		}
	}
	return false
}

// shortType is a resource type as people say it: aws:iam/rolePolicy:RolePolicy is "RolePolicy".
func shortType(t string) string {
	if i := strings.LastIndexByte(t, ':'); i >= 0 {
		return t[i+1:]
	}
	return t
}

// PolicyError is a preview a mandatory policy refused: exit 1.
type PolicyError struct {
	Stack      string
	Violations int
}

func (e *PolicyError) Error() string {
	return fmt.Sprintf("the preview of %s has %d mandatory policy violation(s)", e.Stack, e.Violations)
}
