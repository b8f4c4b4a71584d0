package components

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// TypeInstanceRole is the InstanceRole component's type token.
const TypeInstanceRole = "clawdeploy:security:InstanceRole"

// InstanceRoleArgs configures an InstanceRole. Every permission is scoped to the names given.
type InstanceRoleArgs struct {
	// Partition, Region and AccountID build the ARNs.
	Partition string
	Region    string
	AccountID string
	// ParameterPath is the stack's SSM path, /openclaw/<stack>: the instance may read below it.
	ParameterPath string
	// StatusParameter is the one parameter the instance may write: the setup status.
	StatusParameter string
	// BucketArn is the backup bucket; BackupPrefix the key prefix the instance reads and writes.
	BucketArn    pulumi.StringInput
	BackupPrefix string
	// LogGroupPrefix is the prefix of the stack's log groups, /openclaw/<stack>/.
	LogGroupPrefix string
	// MetricsNamespace is the only CloudWatch namespace the instance may publish to.
	MetricsNamespace string
}

// InstanceRole is the instance's role and profile, least privilege: its SSM parameters, its
// bucket, its log groups, its metrics namespace, Session Manager and ECR pulls. No action is a
// wildcard.
type InstanceRole struct {
	pulumi.ResourceState

	// RoleName and RoleArn identify the role.
	RoleName pulumi.StringOutput `pulumi:"roleName"`
	RoleArn  pulumi.StringOutput `pulumi:"roleArn"`
	// InstanceProfileName is what the instance is launched with.
	InstanceProfileName pulumi.StringOutput `pulumi:"instanceProfileName"`
	// Policy is the role's permissions, as JSON.
	Policy pulumi.StringOutput `pulumi:"policy"`
}

// NewInstanceRole creates the role, its permissions and the instance profile.
func NewInstanceRole(ctx *pulumi.Context, name string, args *InstanceRoleArgs, opts ...pulumi.ResourceOption) (*InstanceRole, error) {
	if args == nil {
		return nil, errors.New("components: NewInstanceRole needs args")
	}
	if args.Partition == "" || args.Region == "" || args.AccountID == "" || args.BucketArn == nil ||
		!strings.HasPrefix(args.StatusParameter, args.ParameterPath+"/") || args.LogGroupPrefix == "" ||
		args.MetricsNamespace == "" || args.BackupPrefix == "" {
		return nil, fmt.Errorf("components: NewInstanceRole %s: partition, region, account, bucket, backup prefix, "+
			"parameter path, a status parameter under it, log group prefix and metrics namespace are required", name)
	}
	c := &InstanceRole{}
	if err := ctx.RegisterComponentResource(TypeInstanceRole, name, c, opts...); err != nil {
		return nil, err
	}
	trust, err := assumeRolePolicy("ec2.amazonaws.com")
	if err != nil {
		return nil, err
	}
	roleName := name + "-role"
	role, err := iam.NewRole(ctx, roleName, &iam.RoleArgs{
		Description:      pulumi.String("OpenClaw instance of stack " + ctx.Stack()),
		AssumeRolePolicy: pulumi.String(trust),
		Tags:             childTags(ctx, c, "aws:iam/role:Role", roleName, nil),
	}, pulumi.Parent(c))
	if err != nil {
		return nil, err
	}
	doc := args.BucketArn.ToStringOutput().ApplyT(func(bucketArn string) (string, error) {
		return instancePolicy(args, bucketArn)
	}).(pulumi.StringOutput)
	if _, err := iam.NewRolePolicy(ctx, name+"-policy", &iam.RolePolicyArgs{
		Role:   role.Name,
		Policy: doc,
	}, pulumi.Parent(c)); err != nil {
		return nil, err
	}
	profileName := name + "-profile"
	profile, err := iam.NewInstanceProfile(ctx, profileName, &iam.InstanceProfileArgs{
		Role: role.Name,
		Tags: childTags(ctx, c, "aws:iam/instanceProfile:InstanceProfile", profileName, nil),
	}, pulumi.Parent(c))
	if err != nil {
		return nil, err
	}
	c.RoleName = role.Name
	c.RoleArn = role.Arn
	c.InstanceProfileName = profile.Name
	c.Policy = doc
	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{
		"roleName":            c.RoleName,
		"roleArn":             c.RoleArn,
		"instanceProfileName": c.InstanceProfileName,
		"policy":              c.Policy,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// instancePolicy is the role's permissions.
func instancePolicy(a *InstanceRoleArgs, bucketArn string) (string, error) {
	arn := func(service, resource string) string {
		return fmt.Sprintf("arn:%s:%s:%s:%s:%s", a.Partition, service, a.Region, a.AccountID, resource)
	}
	return policy(
		Statement{
			Sid:    "ReadThisStacksParameters",
			Effect: "Allow",
			Action: []string{"ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"},
			Resource: []string{
				arn("ssm", "parameter"+a.ParameterPath),
				arn("ssm", "parameter"+a.ParameterPath+"/*"),
			},
		},
		Statement{
			Sid:      "PublishTheSetupStatus",
			Effect:   "Allow",
			Action:   []string{"ssm:PutParameter"},
			Resource: []string{arn("ssm", "parameter"+a.StatusParameter)},
		},
		Statement{
			Sid:      "FindTheBackupBucket",
			Effect:   "Allow",
			Action:   []string{"s3:ListBucket", "s3:GetBucketLocation"},
			Resource: []string{bucketArn},
		},
		Statement{
			// Read and write, never delete: the bucket is versioned and nothing the instance does
			// can remove a backup.
			Sid:      "ReadAndWriteBackups",
			Effect:   "Allow",
			Action:   []string{"s3:GetObject", "s3:PutObject"},
			Resource: []string{bucketArn + "/" + a.BackupPrefix + "*"},
		},
		Statement{
			Sid:      "ShipLogs",
			Effect:   "Allow",
			Action:   []string{"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"},
			Resource: []string{arn("logs", "log-group:"+a.LogGroupPrefix+"*"), arn("logs", "log-group:"+a.LogGroupPrefix+"*:log-stream:*")},
		},
		Statement{
			// PutMetricData takes no resource; the namespace condition scopes it.
			Sid:       "PublishMetrics",
			Effect:    "Allow",
			Action:    []string{"cloudwatch:PutMetricData"},
			Resource:  []string{"*"},
			Condition: map[string]map[string]any{"StringEquals": {"cloudwatch:namespace": a.MetricsNamespace}},
		},
		Statement{
			// Session Manager, in place of SSH. These actions take no resource.
			Sid:    "SessionManager",
			Effect: "Allow",
			Action: []string{
				"ssm:UpdateInstanceInformation",
				"ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
				"ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
				"ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage", "ec2messages:FailMessage",
				"ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply",
			},
			Resource: []string{"*"},
		},
		Statement{
			Sid:      "LogInToECR",
			Effect:   "Allow",
			Action:   []string{"ecr:GetAuthorizationToken"},
			Resource: []string{"*"},
		},
		Statement{
			Sid:      "PullImagesFromECR",
			Effect:   "Allow",
			Action:   []string{"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"},
			Resource: []string{arn("ecr", "repository/*")},
		},
	)
}
