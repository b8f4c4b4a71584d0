package components

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/dlm"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// TypeSnapshotPolicy is the SnapshotPolicy component's type token.
const TypeSnapshotPolicy = "clawdeploy:storage:SnapshotPolicy"

// DLMIntervals are the intervals, in hours, a DLM create rule accepts.
var DLMIntervals = []int{1, 2, 3, 4, 6, 8, 12, 24}

// SnapshotPolicyArgs configures a SnapshotPolicy.
type SnapshotPolicyArgs struct {
	// IntervalHours is the time between snapshots: one of DLMIntervals.
	IntervalHours int
	// RetainCount is how many snapshots are kept: 1 to 1000.
	RetainCount int
	// TargetTags select the volumes to snapshot; they must include the stack's tag.
	TargetTags map[string]string
}

// SnapshotPolicy is a DLM lifecycle policy that snapshots the stack's data volume on a schedule
// and keeps the last RetainCount snapshots, with the volume's tags copied (the zone among them,
// for the AZ guard), and its own execution role, which can snapshot only this stack's volumes.
type SnapshotPolicy struct {
	pulumi.ResourceState

	// PolicyID is the DLM policy's id.
	PolicyID pulumi.StringOutput `pulumi:"policyId"`
	// RoleArn is the policy's execution role.
	RoleArn pulumi.StringOutput `pulumi:"roleArn"`
}

// NewSnapshotPolicy creates the policy and its role.
func NewSnapshotPolicy(ctx *pulumi.Context, name string, args *SnapshotPolicyArgs, opts ...pulumi.ResourceOption) (*SnapshotPolicy, error) {
	if args == nil {
		return nil, errors.New("components: NewSnapshotPolicy needs args")
	}
	if !slices.Contains(DLMIntervals, args.IntervalHours) {
		return nil, fmt.Errorf("components: NewSnapshotPolicy %s: interval %d hours is not one of %v", name, args.IntervalHours, DLMIntervals)
	}
	if args.RetainCount < 1 || args.RetainCount > 1000 {
		return nil, fmt.Errorf("components: NewSnapshotPolicy %s: retain count %d is not between 1 and 1000", name, args.RetainCount)
	}
	if args.TargetTags[TagStack] != ctx.Stack() {
		return nil, fmt.Errorf("components: NewSnapshotPolicy %s: target tags must include %s=%s", name, TagStack, ctx.Stack())
	}
	c := &SnapshotPolicy{}
	if err := ctx.RegisterComponentResource(TypeSnapshotPolicy, name, c, opts...); err != nil {
		return nil, err
	}
	trust, err := assumeRolePolicy("dlm.amazonaws.com")
	if err != nil {
		return nil, err
	}
	roleName := name + "-role"
	role, err := iam.NewRole(ctx, roleName, &iam.RoleArgs{
		Description:      pulumi.String("DLM snapshots of OpenClaw stack " + ctx.Stack()),
		AssumeRolePolicy: pulumi.String(trust),
		Tags:             childTags(ctx, c, "aws:iam/role:Role", roleName, nil),
	}, pulumi.Parent(c))
	if err != nil {
		return nil, err
	}
	permissions, err := dlmPolicy(ctx.Stack())
	if err != nil {
		return nil, err
	}
	rolePolicy, err := iam.NewRolePolicy(ctx, name+"-role-policy", &iam.RolePolicyArgs{
		Role:   role.Name,
		Policy: pulumi.String(permissions),
	}, pulumi.Parent(c))
	if err != nil {
		return nil, err
	}
	policyName := name + "-policy"
	lifecycle, err := dlm.NewLifecyclePolicy(ctx, policyName, &dlm.LifecyclePolicyArgs{
		Description:      pulumi.String("OpenClaw data volume of stack " + ctx.Stack()),
		ExecutionRoleArn: role.Arn,
		State:            pulumi.String("ENABLED"),
		PolicyDetails: &dlm.LifecyclePolicyPolicyDetailsArgs{
			ResourceTypes: pulumi.StringArray{pulumi.String("VOLUME")},
			TargetTags:    pulumi.ToStringMap(maps.Clone(args.TargetTags)),
			Schedules: dlm.LifecyclePolicyPolicyDetailsScheduleArray{dlm.LifecyclePolicyPolicyDetailsScheduleArgs{
				Name: pulumi.Sprintf("every %d hours, keep %d", args.IntervalHours, args.RetainCount),
				CreateRule: &dlm.LifecyclePolicyPolicyDetailsScheduleCreateRuleArgs{
					Interval:     pulumi.Int(args.IntervalHours),
					IntervalUnit: pulumi.String("HOURS"),
				},
				RetainRule: &dlm.LifecyclePolicyPolicyDetailsScheduleRetainRuleArgs{
					Count: pulumi.Int(args.RetainCount),
				},
				CopyTags:  pulumi.Bool(true),
				TagsToAdd: pulumi.StringMap{"SnapshotCreator": pulumi.String("dlm")},
			}},
		},
		Tags: childTags(ctx, c, "aws:dlm/lifecyclePolicy:LifecyclePolicy", policyName, nil),
	}, pulumi.Parent(c), pulumi.DependsOn([]pulumi.Resource{rolePolicy}))
	if err != nil {
		return nil, err
	}
	c.PolicyID = lifecycle.ID().ToStringOutput()
	c.RoleArn = role.Arn
	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{"policyId": c.PolicyID, "roleArn": c.RoleArn}); err != nil {
		return nil, err
	}
	return c, nil
}

// dlmPolicy lets DLM snapshot this stack's volumes, tag the snapshots it makes and delete only
// this stack's snapshots.
func dlmPolicy(stack string) (string, error) {
	thisStack := map[string]map[string]any{"StringEquals": {"aws:ResourceTag/" + TagStack: stack}}
	return policy(
		Statement{
			Sid:       "SnapshotThisStacksVolumes",
			Effect:    "Allow",
			Action:    []string{"ec2:CreateSnapshot", "ec2:CreateSnapshots"},
			Resource:  []string{"arn:*:ec2:*:*:volume/*", "arn:*:ec2:*:*:instance/*"},
			Condition: thisStack,
		},
		Statement{
			Sid:      "CreateTheSnapshots",
			Effect:   "Allow",
			Action:   []string{"ec2:CreateSnapshot", "ec2:CreateSnapshots"},
			Resource: []string{"arn:*:ec2:*::snapshot/*"},
		},
		Statement{
			Sid:       "TagTheSnapshotsItMakes",
			Effect:    "Allow",
			Action:    []string{"ec2:CreateTags"},
			Resource:  []string{"arn:*:ec2:*::snapshot/*"},
			Condition: map[string]map[string]any{"StringEquals": {"ec2:CreateAction": []string{"CreateSnapshot", "CreateSnapshots"}}},
		},
		Statement{
			Sid:       "DeleteOnlyThisStacksSnapshots",
			Effect:    "Allow",
			Action:    []string{"ec2:DeleteSnapshot"},
			Resource:  []string{"arn:*:ec2:*::snapshot/*"},
			Condition: thisStack,
		},
		Statement{
			Sid:      "Describe",
			Effect:   "Allow",
			Action:   []string{"ec2:DescribeInstances", "ec2:DescribeVolumes", "ec2:DescribeSnapshots"},
			Resource: []string{"*"},
		},
	)
}
