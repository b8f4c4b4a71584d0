package ec2spot

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/clawdeploy/clawdeploy/targets"
)

// The configuration a risk's reason names is configuration the program reads: a reviewer told
// "config: spot_max_price" looks for a key that does not exist.
func TestRisksNameKeysThatExist(t *testing.T) {
	key := regexp.MustCompile(`\b[a-z]+(?:_[a-z]+)+\b`)
	for property, config := range configOfProperty {
		for _, k := range key.FindAllString(config, -1) {
			if !slices.Contains(Keys, k) {
				t.Errorf("the replacement of %s names config %q, which is not one of the ec2-spot keys %v", property, k, Keys)
			}
		}
	}
}

// TestDataAtRisk: replaced or deleted, the data volume, the backup bucket, the snapshot policy and
// a SecureString parameter are data at risk, each saying what is lost; updated, none is; a plain
// String parameter replaced is not; the instance replaced is downtime, and its Spot options name
// no key.
func TestDataAtRisk(t *testing.T) {
	change := func(op apitype.OpType, typ string, paramType string, keys ...string) targets.Change {
		c := targets.Change{StepEventMetadata: apitype.StepEventMetadata{Op: op, Type: typ, Keys: keys}}
		if paramType != "" {
			state := &apitype.StepEventStateMetadata{Inputs: map[string]any{"type": paramType}}
			c.Old, c.New = state, state
		}
		return c
	}
	for _, c := range []struct {
		typ, param, want string
	}{
		{"aws:ebs/volume:Volume", "", "the data volume, which holds OpenClaw's state, would be"},
		{"aws:s3/bucketV2:BucketV2", "", ": its backups with it"},
		{"aws:dlm/lifecyclePolicy:LifecyclePolicy", "", ": no scheduled snapshots meanwhile"},
		{"aws:ssm/parameter:Parameter", "SecureString", ": its value is lost unless the configuration still holds it"},
	} {
		for _, op := range []apitype.OpType{apitype.OpReplace, apitype.OpDelete} {
			r := Target{}.Risk(change(op, c.typ, c.param))
			verb := map[apitype.OpType]string{apitype.OpReplace: "replaced", apitype.OpDelete: "deleted"}[op]
			if r.Class != targets.RiskData || !strings.Contains(r.Reason, c.want) || !strings.Contains(r.Reason, verb) {
				t.Errorf("%s %s: %+v, want data at risk saying %q and %q", c.typ, op, r, verb, c.want)
			}
		}
		if r := (Target{}).Risk(change(apitype.OpUpdate, c.typ, c.param)); r.Class != "" {
			t.Errorf("%s updated: %+v, want no risk", c.typ, r)
		}
	}
	if r := (Target{}).Risk(change(apitype.OpReplace, "aws:ssm/parameter:Parameter", "String")); r.Class == targets.RiskData {
		t.Errorf("a String parameter replaced: %+v, want no data at risk", r)
	}
	r := Target{}.Risk(change(apitype.OpReplace, "aws:ec2/instance:Instance", "", "instanceMarketOptions"))
	if r.Class != targets.RiskDowntime || !r.ReplacesHost || !strings.Contains(r.Reason, "no price cap") || strings.Contains(r.Reason, "max_price") {
		t.Errorf("the instance replaced for its Spot options: %+v", r)
	}
}
