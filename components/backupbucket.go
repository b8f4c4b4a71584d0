package components

import (
	"errors"
	"slices"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// TypeBackupBucket is the BackupBucket component's type token.
const TypeBackupBucket = "clawdeploy:storage:BackupBucket"

// BackupBucketArgs configures a BackupBucket.
type BackupBucketArgs struct {
	// NoncurrentVersionDays is how long a replaced backup is kept; 0 means 14 days.
	NoncurrentVersionDays int
	// KeepNoncurrentVersions replaced backups are kept whatever their age; 0 means 24.
	KeepNoncurrentVersions int
}

// BackupBucket is the S3 bucket backups go to: private (all four public access blocks, ACLs
// disabled), encrypted, versioned, TLS only, with a lifecycle that expires old versions and
// aborts abandoned uploads.
//
// It is retained on destroy, with its settings: backups outlive the stack, so an operator's
// mistaken destroy loses nothing. A stack created again under the same name gets a new bucket
// (the name has a random suffix), so it never collides with a retained one. Delete a retained
// bucket deliberately: aws s3 rb s3://<bucket> --force (after removing its versions).
type BackupBucket struct {
	pulumi.ResourceState

	// BucketName is the bucket's name.
	BucketName pulumi.StringOutput `pulumi:"bucketName"`
	// BucketArn is the bucket's ARN.
	BucketArn pulumi.StringOutput `pulumi:"bucketArn"`
}

// The backups a bucket keeps unless told: replaced ones for 14 days, and at least the 24 newest.
const (
	DefaultNoncurrentVersionDays  = 14
	DefaultKeepNoncurrentVersions = 24
)

// NewBackupBucket creates the bucket and its settings.
func NewBackupBucket(ctx *pulumi.Context, name string, args *BackupBucketArgs, opts ...pulumi.ResourceOption) (*BackupBucket, error) {
	if args == nil {
		return nil, errors.New("components: NewBackupBucket needs args")
	}
	days, keep := args.NoncurrentVersionDays, args.KeepNoncurrentVersions
	if days == 0 {
		days = DefaultNoncurrentVersionDays
	}
	if keep == 0 {
		keep = DefaultKeepNoncurrentVersions
	}
	c := &BackupBucket{}
	if err := ctx.RegisterComponentResource(TypeBackupBucket, name, c, opts...); err != nil {
		return nil, err
	}
	// Retained on destroy, every setting with the bucket: a retained bucket must stay private.
	keepIt := []pulumi.ResourceOption{pulumi.Parent(c), pulumi.RetainOnDelete(true)}

	bucketName := name + "-bucket"
	bucket, err := s3.NewBucketV2(ctx, bucketName, &s3.BucketV2Args{
		// Autonamed (name plus a random suffix): globally unique, and recorded in the checkpoint
		// before creation, so an interrupted creation is found again by name.
		ForceDestroy: pulumi.Bool(false),
		Tags:         childTags(ctx, c, "aws:s3/bucketV2:BucketV2", bucketName, nil),
	}, keepIt...)
	if err != nil {
		return nil, err
	}
	after := slices.Concat(keepIt, []pulumi.ResourceOption{pulumi.DependsOn([]pulumi.Resource{bucket})})
	if _, err := s3.NewBucketPublicAccessBlock(ctx, name+"-public-access-block", &s3.BucketPublicAccessBlockArgs{
		Bucket:                bucket.ID(),
		BlockPublicAcls:       pulumi.Bool(true),
		BlockPublicPolicy:     pulumi.Bool(true),
		IgnorePublicAcls:      pulumi.Bool(true),
		RestrictPublicBuckets: pulumi.Bool(true),
	}, after...); err != nil {
		return nil, err
	}
	if _, err := s3.NewBucketOwnershipControls(ctx, name+"-ownership", &s3.BucketOwnershipControlsArgs{
		Bucket: bucket.ID(),
		Rule:   &s3.BucketOwnershipControlsRuleArgs{ObjectOwnership: pulumi.String("BucketOwnerEnforced")},
	}, after...); err != nil {
		return nil, err
	}
	if _, err := s3.NewBucketServerSideEncryptionConfigurationV2(ctx, name+"-encryption", &s3.BucketServerSideEncryptionConfigurationV2Args{
		Bucket: bucket.ID(),
		Rules: s3.BucketServerSideEncryptionConfigurationV2RuleArray{s3.BucketServerSideEncryptionConfigurationV2RuleArgs{
			ApplyServerSideEncryptionByDefault: &s3.BucketServerSideEncryptionConfigurationV2RuleApplyServerSideEncryptionByDefaultArgs{
				SseAlgorithm: pulumi.String("AES256"),
			},
		}},
	}, after...); err != nil {
		return nil, err
	}
	versioning, err := s3.NewBucketVersioningV2(ctx, name+"-versioning", &s3.BucketVersioningV2Args{
		Bucket:                  bucket.ID(),
		VersioningConfiguration: &s3.BucketVersioningV2VersioningConfigurationArgs{Status: pulumi.String("Enabled")},
	}, after...)
	if err != nil {
		return nil, err
	}
	if _, err := s3.NewBucketLifecycleConfigurationV2(ctx, name+"-lifecycle", &s3.BucketLifecycleConfigurationV2Args{
		Bucket: bucket.ID(),
		Rules: s3.BucketLifecycleConfigurationV2RuleArray{
			s3.BucketLifecycleConfigurationV2RuleArgs{
				Id:     pulumi.String("expire-replaced-backups"),
				Status: pulumi.String("Enabled"),
				Filter: &s3.BucketLifecycleConfigurationV2RuleFilterArgs{Prefix: pulumi.String("")},
				NoncurrentVersionExpiration: &s3.BucketLifecycleConfigurationV2RuleNoncurrentVersionExpirationArgs{
					NoncurrentDays:          pulumi.Int(days),
					NewerNoncurrentVersions: pulumi.Int(keep),
				},
			},
			s3.BucketLifecycleConfigurationV2RuleArgs{
				Id:     pulumi.String("abort-abandoned-uploads"),
				Status: pulumi.String("Enabled"),
				Filter: &s3.BucketLifecycleConfigurationV2RuleFilterArgs{Prefix: pulumi.String("")},
				AbortIncompleteMultipartUpload: &s3.BucketLifecycleConfigurationV2RuleAbortIncompleteMultipartUploadArgs{
					DaysAfterInitiation: pulumi.Int(1),
				},
			},
		},
	}, slices.Concat(after, []pulumi.ResourceOption{pulumi.DependsOn([]pulumi.Resource{versioning})})...); err != nil {
		return nil, err
	}
	tlsOnly := bucket.Arn.ApplyT(func(arn string) (string, error) {
		return policy(Statement{
			Sid:       "DenyInsecureTransport",
			Effect:    "Deny",
			Principal: "*",
			Action:    []string{"s3:*"},
			Resource:  []string{arn, arn + "/*"},
			Condition: map[string]map[string]any{"Bool": {"aws:SecureTransport": "false"}},
		})
	}).(pulumi.StringOutput)
	if _, err := s3.NewBucketPolicy(ctx, name+"-policy", &s3.BucketPolicyArgs{
		Bucket: bucket.ID(),
		Policy: tlsOnly,
	}, after...); err != nil {
		return nil, err
	}
	c.BucketName = bucket.Bucket
	c.BucketArn = bucket.Arn
	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{"bucketName": c.BucketName, "bucketArn": c.BucketArn}); err != nil {
		return nil, err
	}
	return c, nil
}
