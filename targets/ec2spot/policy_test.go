package ec2spot

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/components"
	"github.com/clawdeploy/clawdeploy/internal/awsmock"
	"github.com/clawdeploy/clawdeploy/internal/pulumitest"
	"github.com/clawdeploy/clawdeploy/targets/stackconfig"
)

// graph is what the security rules read: the registered resources, the data-source calls made,
// the decoded user-data and the secretness of the outputs that hold secrets.
type graph struct {
	stack         string
	resources     []pulumitest.Resource
	calls         []pulumitest.Call
	userData      string
	secretOutputs map[string]bool
}

// newGraph runs the program on the example stack, restoring from a snapshot so the AZ guard runs.
func newGraph(t *testing.T) *graph {
	t.Helper()
	r := runProgram(t, pulumitest.WithConfig(map[string]string{KeyDataVolumeSnapshotID: awsmock.Snapshot})).must(t)
	return &graph{
		stack:         "dev",
		resources:     r.mocks.Resources(),
		calls:         r.mocks.Calls(),
		userData:      r.userData(t),
		secretOutputs: map[string]bool{"gatewayToken": pulumi.IsSecret(*r.out.GatewayToken)},
	}
}

func (g *graph) ofType(typ string) []*pulumitest.Resource {
	var out []*pulumitest.Resource
	for i := range g.resources {
		if g.resources[i].Type == typ {
			out = append(out, &g.resources[i])
		}
	}
	return out
}

func (g *graph) one(typ string) *pulumitest.Resource {
	if rs := g.ofType(typ); len(rs) > 0 {
		return rs[0]
	}
	return nil
}

// object returns the object at a dotted path of r's inputs, creating it, so breakers can write.
func object(r *pulumitest.Resource, path string) resource.PropertyMap {
	m := r.Inputs
	if path == "" {
		return m
	}
	for _, k := range strings.Split(path, ".") {
		v := m[resource.PropertyKey(k)]
		for v.IsSecret() {
			v = v.SecretValue().Element
		}
		if !v.IsObject() {
			v = resource.NewProperty(resource.PropertyMap{})
			m[resource.PropertyKey(k)] = v
		}
		m = v.ObjectValue()
	}
	return m
}

// set writes one input at a dotted path.
func set(r *pulumitest.Resource, path string, v any) {
	parent, key := "", path
	if i := strings.LastIndex(path, "."); i >= 0 {
		parent, key = path[:i], path[i+1:]
	}
	object(r, parent)[resource.PropertyKey(key)] = resource.NewPropertyValue(v)
}

func truthy(r *pulumitest.Resource, path string) bool {
	v, ok := r.Input(path)
	return ok && v.IsBool() && v.BoolValue()
}

func number(r *pulumitest.Resource, path string) float64 {
	if v, ok := r.Input(path); ok && v.IsNumber() {
		return v.NumberValue()
	}
	return -1
}

// statements returns the Allow statements of every IAM role policy.
func allowStatements(g *graph) []components.Statement {
	var out []components.Statement
	for _, p := range g.ofType("aws:iam/rolePolicy:RolePolicy") {
		var doc components.PolicyDocument
		_ = json.Unmarshal([]byte(p.String("policy")), &doc)
		for _, s := range doc.Statement {
			if s.Effect == "Allow" {
				out = append(out, s)
			}
		}
	}
	return out
}

// editPolicy rewrites the instance role's policy document.
func editPolicy(g *graph, edit func(*components.PolicyDocument)) {
	for _, p := range g.ofType("aws:iam/rolePolicy:RolePolicy") {
		if p.Name != NameInstanceRole+"-policy" {
			continue
		}
		var doc components.PolicyDocument
		_ = json.Unmarshal([]byte(p.String("policy")), &doc)
		edit(&doc)
		b, _ := json.Marshal(doc)
		set(p, "policy", string(b))
	}
}

// ingressRules returns every inbound rule: inline on security groups and standalone.
func ingressRules(g *graph) []resource.PropertyMap {
	var out []resource.PropertyMap
	for _, sg := range g.ofType("aws:ec2/securityGroup:SecurityGroup") {
		if v, ok := sg.Input("ingress"); ok && v.IsArray() {
			for _, r := range v.ArrayValue() {
				out = append(out, r.ObjectValue())
			}
		}
	}
	for _, typ := range []string{"aws:ec2/securityGroupRule:SecurityGroupRule", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"} {
		for _, r := range g.ofType(typ) {
			if typ == "aws:ec2/securityGroupRule:SecurityGroupRule" && r.String("type") != "ingress" {
				continue
			}
			out = append(out, r.Inputs)
		}
	}
	return out
}

func strs(v resource.PropertyValue) []string {
	var out []string
	if v.IsString() {
		return []string{v.StringValue()}
	}
	if v.IsArray() {
		for _, x := range v.ArrayValue() {
			if x.IsString() {
				out = append(out, x.StringValue())
			}
		}
	}
	return out
}

// taggable lists the AWS types the program creates that take tags.
var taggable = []string{
	"aws:ebs/volume:Volume", "aws:ec2/instance:Instance", "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet",
	"aws:ec2/internetGateway:InternetGateway", "aws:ec2/routeTable:RouteTable", "aws:ec2/securityGroup:SecurityGroup",
	"aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile", "aws:s3/bucketV2:BucketV2",
	"aws:dlm/lifecyclePolicy:LifecyclePolicy", "aws:cloudwatch/logGroup:LogGroup", "aws:ssm/parameter:Parameter",
}

type rule struct {
	name    string
	check   func(*graph) []string
	breakIt func(*graph)
}

var rules = []rule{
	{"instance requires IMDSv2 tokens", func(g *graph) []string {
		var v []string
		for _, i := range g.ofType("aws:ec2/instance:Instance") {
			if i.String("metadataOptions.httpTokens") != "required" {
				v = append(v, i.Name+" allows IMDSv1")
			}
		}
		return v
	}, func(g *graph) { set(g.one("aws:ec2/instance:Instance"), "metadataOptions.httpTokens", "optional") }},

	{"IMDS hop limit keeps containers out", func(g *graph) []string {
		var v []string
		for _, i := range g.ofType("aws:ec2/instance:Instance") {
			if number(i, "metadataOptions.httpPutResponseHopLimit") != components.MetadataHopLimit {
				v = append(v, fmt.Sprintf("%s hop limit %v", i.Name, number(i, "metadataOptions.httpPutResponseHopLimit")))
			}
		}
		return v
	}, func(g *graph) { set(g.one("aws:ec2/instance:Instance"), "metadataOptions.httpPutResponseHopLimit", 2) }},

	{"data volume encrypted", func(g *graph) []string {
		var v []string
		for _, vol := range g.ofType("aws:ebs/volume:Volume") {
			if !truthy(vol, "encrypted") {
				v = append(v, vol.Name+" unencrypted")
			}
		}
		return v
	}, func(g *graph) { set(g.one("aws:ebs/volume:Volume"), "encrypted", false) }},

	{"root volume encrypted", func(g *graph) []string {
		var v []string
		for _, i := range g.ofType("aws:ec2/instance:Instance") {
			if !truthy(i, "rootBlockDevice.encrypted") {
				v = append(v, i.Name+" root volume unencrypted")
			}
		}
		return v
	}, func(g *graph) { set(g.one("aws:ec2/instance:Instance"), "rootBlockDevice.encrypted", false) }},

	{"no SSH, RDP or gateway port open to the internet", func(g *graph) []string {
		var v []string
		for _, r := range ingressRules(g) {
			from, to := r["fromPort"].NumberValue(), r["toPort"].NumberValue()
			open := slices.Contains(strs(r["cidrBlocks"]), "0.0.0.0/0") || slices.Contains(strs(r["ipv6CidrBlocks"]), "::/0") ||
				slices.Contains(strs(r["cidrIpv4"]), "0.0.0.0/0") || slices.Contains(strs(r["cidrIpv6"]), "::/0")
			all := r["protocol"].IsString() && r["protocol"].StringValue() == "-1"
			for _, port := range []float64{22, 3389, 18789} {
				if open && (all || (from <= port && port <= to)) {
					v = append(v, fmt.Sprintf("port %v open to the internet", port))
				}
			}
		}
		return v
	}, func(g *graph) {
		set(g.one("aws:ec2/securityGroup:SecurityGroup"), "ingress", []any{map[string]any{
			"protocol": "tcp", "fromPort": 18789, "toPort": 18789, "ipv6CidrBlocks": []any{"::/0"}, "description": "oops"}})
	}},

	{"every security group rule described", func(g *graph) []string {
		var v []string
		for _, sg := range g.ofType("aws:ec2/securityGroup:SecurityGroup") {
			for _, dir := range []string{"ingress", "egress"} {
				rs, _ := sg.Input(dir)
				for _, r := range rs.ArrayValue() {
					if d := r.ObjectValue()["description"]; !d.IsString() || d.StringValue() == "" {
						v = append(v, sg.Name+" has an undescribed "+dir+" rule")
					}
				}
			}
		}
		return v
	}, func(g *graph) {
		eg, _ := g.one("aws:ec2/securityGroup:SecurityGroup").Input("egress")
		eg.ArrayValue()[0].ObjectValue()["description"] = resource.NewProperty("")
	}},
}

// publicAccessRule checks one of the four public access block flags.
func publicAccessRule(flag string) rule {
	return rule{"bucket " + flag, func(g *graph) []string {
		pabs := g.ofType("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
		if len(pabs) == 0 {
			return []string{"no public access block"}
		}
		var v []string
		for _, p := range pabs {
			if !truthy(p, flag) {
				v = append(v, flag+" off")
			}
		}
		return v
	}, func(g *graph) { set(g.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"), flag, false) }}
}

func init() {
	for _, flag := range []string{"blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"} {
		rules = append(rules, publicAccessRule(flag))
	}
	rules = append(rules, moreRules...)
}

var moreRules = []rule{
	{"bucket encrypted at rest", func(g *graph) []string {
		e := g.one("aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")
		if e == nil {
			return []string{"no encryption configuration"}
		}
		rules, _ := e.Input("rules")
		for _, r := range rules.ArrayValue() {
			if alg := r.ObjectValue()["applyServerSideEncryptionByDefault"].ObjectValue()["sseAlgorithm"]; alg.IsString() &&
				(alg.StringValue() == "AES256" || strings.HasPrefix(alg.StringValue(), "aws:kms")) {
				return nil
			}
		}
		return []string{"no default encryption"}
	}, func(g *graph) {
		set(g.one("aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2"), "rules", []any{})
	}},

	{"bucket versioned", func(g *graph) []string {
		v := g.one("aws:s3/bucketVersioningV2:BucketVersioningV2")
		if v == nil || v.String("versioningConfiguration.status") != "Enabled" {
			return []string{"versioning off"}
		}
		return nil
	}, func(g *graph) {
		set(g.one("aws:s3/bucketVersioningV2:BucketVersioningV2"), "versioningConfiguration.status", "Suspended")
	}},

	{"bucket refuses plain HTTP", func(g *graph) []string {
		for _, p := range g.ofType("aws:s3/bucketPolicy:BucketPolicy") {
			var doc components.PolicyDocument
			_ = json.Unmarshal([]byte(p.String("policy")), &doc)
			for _, s := range doc.Statement {
				if s.Effect == "Deny" && s.Condition["Bool"]["aws:SecureTransport"] == "false" && slices.Contains(s.Action, "s3:*") {
					return nil
				}
			}
		}
		return []string{"no TLS-only bucket policy"}
	}, func(g *graph) {
		set(g.one("aws:s3/bucketPolicy:BucketPolicy"), "policy", `{"Version":"2012-10-17","Statement":[]}`)
	}},

	{"bucket lifecycle expires old versions and abandoned uploads", func(g *graph) []string {
		l := g.one("aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2")
		if l == nil {
			return []string{"no lifecycle"}
		}
		rules, _ := l.Input("rules")
		expire, abort := false, false
		for _, r := range rules.ArrayValue() {
			o := r.ObjectValue()
			if o["status"].StringValue() != "Enabled" {
				continue
			}
			expire = expire || o["noncurrentVersionExpiration"].IsObject()
			abort = abort || o["abortIncompleteMultipartUpload"].IsObject()
		}
		if !expire || !abort {
			return []string{fmt.Sprintf("noncurrent expiration %v, abort uploads %v", expire, abort)}
		}
		return nil
	}, func(g *graph) {
		rules, _ := g.one("aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2").Input("rules")
		rules.ArrayValue()[1].ObjectValue()["status"] = resource.NewProperty("Disabled")
	}},

	{"bucket retained on destroy", func(g *graph) []string {
		var v []string
		for _, r := range g.resources {
			if r.Custom && strings.HasPrefix(r.Type, "aws:s3/") && !r.Request.GetRetainOnDelete() {
				v = append(v, r.Name+" is deleted on destroy")
			}
		}
		return v
	}, func(g *graph) { g.one("aws:s3/bucketV2:BucketV2").Request.RetainOnDelete = nil }},

	{"no IAM action is a wildcard", func(g *graph) []string {
		var v []string
		for _, s := range allowStatements(g) {
			for _, a := range s.Action {
				if strings.Contains(a, "*") {
					v = append(v, s.Sid+" allows "+a)
				}
			}
		}
		return v
	}, func(g *graph) {
		editPolicy(g, func(d *components.PolicyDocument) { d.Statement[0].Action = append(d.Statement[0].Action, "ssm:*") })
	}},

	{"S3 access only to this stack's bucket", func(g *graph) []string {
		bucket := g.one("aws:s3/bucketV2:BucketV2").ID
		var v []string
		for _, s := range allowStatements(g) {
			if !slices.ContainsFunc(s.Action, func(a string) bool { return strings.HasPrefix(a, "s3:") }) {
				continue
			}
			for _, r := range s.Resource {
				if r != "arn:aws:s3:::"+bucket && !strings.HasPrefix(r, "arn:aws:s3:::"+bucket+"/") {
					v = append(v, s.Sid+" reaches "+r)
				}
			}
		}
		return v
	}, func(g *graph) {
		editPolicy(g, func(d *components.PolicyDocument) {
			for i, s := range d.Statement {
				if s.Sid == "ReadAndWriteBackups" {
					d.Statement[i].Resource = []string{"arn:aws:s3:::*/*"}
				}
			}
		})
	}},

	{"SSM access only to this stack's parameters", func(g *graph) []string {
		prefix := "arn:aws:ssm:" + awsmock.Region + ":" + pulumitest.Account + ":parameter" + ParameterPath(g.stack)
		var v []string
		for _, s := range allowStatements(g) {
			scoped := !slices.ContainsFunc(s.Action, func(a string) bool {
				return strings.HasPrefix(a, "ssm:Get") || strings.HasPrefix(a, "ssm:Put")
			})
			if scoped {
				continue
			}
			for _, r := range s.Resource {
				if r != prefix && !strings.HasPrefix(r, prefix+"/") {
					v = append(v, s.Sid+" reaches "+r)
				}
			}
			if slices.Contains(s.Action, "ssm:PutParameter") && !slices.Equal(s.Resource, []string{prefix + "/setup-status"}) {
				v = append(v, s.Sid+" may write "+strings.Join(s.Resource, ", "))
			}
		}
		return v
	}, func(g *graph) {
		editPolicy(g, func(d *components.PolicyDocument) {
			for i, s := range d.Statement {
				if s.Sid == "PublishTheSetupStatus" {
					d.Statement[i].Resource = []string{"arn:aws:ssm:" + awsmock.Region + ":" + pulumitest.Account + ":parameter/openclaw/dev/*"}
				}
			}
		})
	}},

	{"no secret value in the user-data", func(g *graph) []string {
		var v []string
		for key, secret := range testSecrets {
			if strings.Contains(g.userData, secret) {
				v = append(v, "the user-data holds "+key)
			}
		}
		return v
	}, func(g *graph) { g.userData += "\nOPENCLAW_GATEWAY_TOKEN=" + testSecrets[stackconfig.KeyGatewayToken] }},

	{"secret outputs are Pulumi secrets", func(g *graph) []string {
		var v []string
		for name, secret := range g.secretOutputs {
			if !secret {
				v = append(v, "output "+name+" is not a secret")
			}
		}
		return v
	}, func(g *graph) { g.secretOutputs["gatewayToken"] = false }},

	{"secrets stored as SecureStrings holding Pulumi secrets", func(g *graph) []string {
		var v []string
		for _, p := range g.ofType("aws:ssm/parameter:Parameter") {
			if !strings.Contains(p.String("name"), "/env/") {
				continue
			}
			if p.String("type") != "SecureString" || !p.Inputs["value"].IsSecret() {
				v = append(v, p.Name+" is not a secret SecureString")
			}
		}
		return v
	}, func(g *graph) {
		for _, p := range g.ofType("aws:ssm/parameter:Parameter") {
			if strings.Contains(p.String("name"), "/env/") {
				set(p, "value", p.String("value"))
				return
			}
		}
	}},

	{"log groups have a retention", func(g *graph) []string {
		var v []string
		for _, l := range g.ofType("aws:cloudwatch/logGroup:LogGroup") {
			if !slices.Contains(components.LogRetentionDays, int(number(l, "retentionInDays"))) {
				v = append(v, l.Name+" keeps logs forever")
			}
		}
		return v
	}, func(g *graph) { delete(g.one("aws:cloudwatch/logGroup:LogGroup").Inputs, "retentionInDays") }},

	{"DLM interval is one DLM accepts", func(g *graph) []string {
		var v []string
		for _, p := range g.ofType("aws:dlm/lifecyclePolicy:LifecyclePolicy") {
			s, _ := p.Input("policyDetails.schedules")
			for _, sch := range s.ArrayValue() {
				rule := sch.ObjectValue()["createRule"].ObjectValue()
				if rule["intervalUnit"].StringValue() != "HOURS" || !slices.Contains(components.DLMIntervals, int(rule["interval"].NumberValue())) {
					v = append(v, fmt.Sprintf("interval %v %v", rule["interval"], rule["intervalUnit"]))
				}
			}
		}
		return v
	}, func(g *graph) {
		s, _ := g.one("aws:dlm/lifecyclePolicy:LifecyclePolicy").Input("policyDetails.schedules")
		s.ArrayValue()[0].ObjectValue()["createRule"].ObjectValue()["interval"] = resource.NewProperty(5.0)
	}},

	{"DLM retention between 1 and 1000", func(g *graph) []string {
		var v []string
		for _, p := range g.ofType("aws:dlm/lifecyclePolicy:LifecyclePolicy") {
			s, _ := p.Input("policyDetails.schedules")
			for _, sch := range s.ArrayValue() {
				if c := sch.ObjectValue()["retainRule"].ObjectValue()["count"].NumberValue(); c < 1 || c > 1000 {
					v = append(v, fmt.Sprintf("retain count %v", c))
				}
			}
		}
		return v
	}, func(g *graph) {
		s, _ := g.one("aws:dlm/lifecyclePolicy:LifecyclePolicy").Input("policyDetails.schedules")
		s.ArrayValue()[0].ObjectValue()["retainRule"].ObjectValue()["count"] = resource.NewProperty(0.0)
	}},

	{"DLM snapshots this stack's data volume only", func(g *graph) []string {
		p := g.one("aws:dlm/lifecyclePolicy:LifecyclePolicy")
		if p == nil || p.String("policyDetails.targetTags."+components.TagStack) != g.stack ||
			p.String("policyDetails.targetTags."+components.TagData) != "true" {
			return []string{"DLM targets more than this stack's data volume"}
		}
		return nil
	}, func(g *graph) {
		delete(object(g.one("aws:dlm/lifecyclePolicy:LifecyclePolicy"), "policyDetails.targetTags"), components.TagStack)
	}},

	{"attachment replaced delete-first", func(g *graph) []string {
		a := g.one("aws:ec2/volumeAttachment:VolumeAttachment")
		if a == nil || !a.Request.GetDeleteBeforeReplace() {
			return []string{"the attachment is not delete-before-replace"}
		}
		return nil
	}, func(g *graph) { g.one("aws:ec2/volumeAttachment:VolumeAttachment").Request.DeleteBeforeReplace = false }},

	{"attachment never detaches a live volume", func(g *graph) []string {
		a := g.one("aws:ec2/volumeAttachment:VolumeAttachment")
		if a == nil || !truthy(a, "skipDestroy") || !truthy(a, "stopInstanceBeforeDetaching") {
			return []string{"the attachment may detach a mounted volume"}
		}
		return nil
	}, func(g *graph) { set(g.one("aws:ec2/volumeAttachment:VolumeAttachment"), "skipDestroy", false) }},

	{"instance replaced delete-first so the volume comes free", func(g *graph) []string {
		i := g.one("aws:ec2/instance:Instance")
		if i == nil || !i.Request.GetDeleteBeforeReplace() {
			return []string{"a replacement instance would be created while the old one holds the volume"}
		}
		return nil
	}, func(g *graph) { g.one("aws:ec2/instance:Instance").Request.DeleteBeforeReplace = false }},

	{"AZ guard looked the snapshot up before the volume", func(g *graph) []string {
		for _, c := range g.calls {
			if c.Token == awsmock.GetSnapshot && strings.Contains(fmt.Sprint(c.Args), awsmock.Snapshot) {
				return nil
			}
		}
		return []string{"the snapshot to restore from was never checked"}
	}, func(g *graph) {
		g.calls = slices.DeleteFunc(g.calls, func(c pulumitest.Call) bool { return c.Token == awsmock.GetSnapshot })
	}},

	{"no up can replace the data volume", func(g *graph) []string {
		v := g.one("aws:ebs/volume:Volume")
		var out []string
		for _, p := range []string{"snapshotId", "availabilityZone", "encrypted", "kmsKeyId"} {
			if !slices.Contains(v.Request.GetIgnoreChanges(), p) {
				out = append(out, "a change of "+p+" replaces the volume")
			}
		}
		if !truthy(v, "finalSnapshot") {
			out = append(out, "destroy deletes the volume without a final snapshot")
		}
		return out
	}, func(g *graph) { g.one("aws:ebs/volume:Volume").Request.IgnoreChanges = []string{"snapshotId"} }},

	{"one-time Spot request that terminates", func(g *graph) []string {
		i := g.one("aws:ec2/instance:Instance")
		if i.String("instanceMarketOptions.marketType") != "spot" ||
			i.String("instanceMarketOptions.spotOptions.spotInstanceType") != "one-time" ||
			i.String("instanceMarketOptions.spotOptions.instanceInterruptionBehavior") != "terminate" {
			return []string{"a Spot request that could outlive destroy"}
		}
		return nil
	}, func(g *graph) {
		set(g.one("aws:ec2/instance:Instance"), "instanceMarketOptions.spotOptions.spotInstanceType", "persistent")
	}},

	{"every AWS resource tagged with its stack and URN", func(g *graph) []string {
		var v []string
		for i := range g.resources {
			r := &g.resources[i]
			if !slices.Contains(taggable, r.Type) {
				continue
			}
			if r.String("tags."+components.TagStack) != g.stack || r.String("tags."+components.TagURN) != r.URN {
				v = append(v, r.Name+" lacks its identity tags")
			}
		}
		return v
	}, func(g *graph) { delete(g.one("aws:iam/role:Role").Inputs, "tags") }},
}

// TestSecurityRules runs every rule on the program's graph (no violation allowed), then on a graph
// broken for that rule (the rule must catch it), so no rule passes vacuously.
func TestSecurityRules(t *testing.T) {
	t.Parallel()
	if len(rules) < 20 {
		t.Fatalf("%d rules, want at least 20", len(rules))
	}
	good := newGraph(t)
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			if v := r.check(good); len(v) > 0 {
				t.Errorf("the program violates the rule: %v", v)
			}
			broken := newGraph(t)
			r.breakIt(broken)
			if v := r.check(broken); len(v) == 0 {
				t.Errorf("the rule does not catch the broken graph")
			}
		})
	}
	t.Logf("%d rules, each proven on a broken graph", len(rules))
}
