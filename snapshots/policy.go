package snapshots

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dlm"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/clawdeploy/clawdeploy/components"
)

// Policy is a stack's DLM lifecycle policy as the runbook shows it.
type Policy struct {
	ID            string            `json:"id"`
	Description   string            `json:"description,omitempty"`
	State         string            `json:"state"`
	StatusMessage string            `json:"statusMessage,omitempty"`
	TargetTags    map[string]string `json:"targetTags"`
	// IntervalHours and Times are when it snapshots, RetainCount how many it keeps.
	IntervalHours int32     `json:"intervalHours"`
	Times         []string  `json:"times,omitempty"`
	RetainCount   int32     `json:"retainCount"`
	CopyTags      bool      `json:"copyTags"`
	Created       time.Time `json:"created,omitzero"`
	// Newest are the newest snapshots it made of the stack's volume, newest first.
	Newest []Snapshot `json:"newest"`
}

// ErrNoPolicy is GetPolicy's error when no policy targets the stack's volume.
var ErrNoPolicy = errors.New("no DLM policy")

// GetPolicy reads the stack's DLM policy: id when it is known (the stack's snapshot_policy_id
// output), else the one whose target tags name the stack; with the newest snapshots it made.
func GetPolicy(ctx context.Context, lifecycle *dlm.Client, client *ec2.Client, stack, id, zone string, newest int) (*Policy, error) {
	if id == "" {
		out, err := lifecycle.GetLifecyclePolicies(ctx, &dlm.GetLifecyclePoliciesInput{TargetTags: []string{components.TagStack + "=" + stack}})
		if err != nil {
			return nil, fmt.Errorf("looking for the DLM policy of %s: %w", stack, err)
		}
		if len(out.Policies) == 0 {
			return nil, fmt.Errorf("%w targets %s=%s", ErrNoPolicy, components.TagStack, stack)
		}
		id = aws.ToString(out.Policies[0].PolicyId)
	}
	out, err := lifecycle.GetLifecyclePolicy(ctx, &dlm.GetLifecyclePolicyInput{PolicyId: aws.String(id)})
	if err != nil {
		return nil, fmt.Errorf("reading the DLM policy %s of %s: %w", id, stack, err)
	}
	p := out.Policy
	policy := &Policy{ID: aws.ToString(p.PolicyId), Description: aws.ToString(p.Description), State: string(p.State),
		StatusMessage: aws.ToString(p.StatusMessage), Created: aws.ToTime(p.DateCreated).UTC(), TargetTags: map[string]string{}}
	if d := p.PolicyDetails; d != nil {
		for _, t := range d.TargetTags {
			policy.TargetTags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		if len(d.Schedules) > 0 {
			s := d.Schedules[0]
			policy.CopyTags = aws.ToBool(s.CopyTags)
			if s.CreateRule != nil {
				policy.IntervalHours, policy.Times = aws.ToInt32(s.CreateRule.Interval), s.CreateRule.Times
			}
			if s.RetainRule != nil {
				policy.RetainCount = aws.ToInt32(s.RetainRule.Count)
			}
		}
	}
	all, err := List(ctx, client, stack, zone)
	if err != nil {
		return nil, err
	}
	policy.Newest = []Snapshot{}
	for _, s := range all {
		if s.Origin == OriginDLM && len(policy.Newest) < newest {
			policy.Newest = append(policy.Newest, s)
		}
	}
	return policy, nil
}
