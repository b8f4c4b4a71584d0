package components

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ssm"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/names"
)

// TypeSecrets is the Secrets component's type token.
const TypeSecrets = "clawdeploy:security:Secrets"

// StatusNotStarted is the setup status parameter's value until the instance publishes its own.
const StatusNotStarted = "NOT_STARTED"

// SecretsArgs configures Secrets.
type SecretsArgs struct {
	// Path is the stack's SSM path, /openclaw/<stack>.
	Path string
	// Values are the gateway's secrets by environment variable name.
	Values map[string]pulumi.StringInput
}

// Secrets are the stack's SSM parameters under Path: one SecureString per secret under Path/env,
// which the instance reads into tmpfs at every start of the gateway, and Path/setup-status,
// where the instance publishes how its setup went.
type Secrets struct {
	pulumi.ResourceState

	// EnvPath is the path whose parameters become the gateway's environment.
	EnvPath pulumi.StringOutput `pulumi:"envPath"`
	// StatusParameter is the setup status parameter's name.
	StatusParameter pulumi.StringOutput `pulumi:"statusParameter"`
}

// NewSecrets creates the parameters.
func NewSecrets(ctx *pulumi.Context, name string, args *SecretsArgs, opts ...pulumi.ResourceOption) (*Secrets, error) {
	if args == nil {
		return nil, errors.New("components: NewSecrets needs args")
	}
	if !strings.HasPrefix(args.Path, "/") || strings.HasSuffix(args.Path, "/") {
		return nil, fmt.Errorf("components: NewSecrets %s: path %q must start with / and not end with one", name, args.Path)
	}
	c := &Secrets{}
	if err := ctx.RegisterComponentResource(TypeSecrets, name, c, opts...); err != nil {
		return nil, err
	}
	envPath := args.Path + "/env"
	for _, key := range slices.Sorted(maps.Keys(args.Values)) {
		if !names.IsEnvVar(key) {
			return nil, fmt.Errorf("components: NewSecrets %s: %q is not an environment variable name", name, key)
		}
		paramName := name + "-" + strings.ToLower(strings.ReplaceAll(key, "_", "-"))
		if _, err := ssm.NewParameter(ctx, paramName, &ssm.ParameterArgs{
			Name:        pulumi.String(envPath + "/" + key),
			Type:        pulumi.String("SecureString"),
			Description: pulumi.String(key + " of OpenClaw stack " + ctx.Stack()),
			Value:       pulumi.ToSecret(args.Values[key]).(pulumi.StringOutput),
			Tags:        childTags(ctx, c, "aws:ssm/parameter:Parameter", paramName, nil),
		}, pulumi.Parent(c)); err != nil {
			return nil, err
		}
	}
	statusName := name + "-setup-status"
	status, err := ssm.NewParameter(ctx, statusName, &ssm.ParameterArgs{
		Name:        pulumi.String(args.Path + "/setup-status"),
		Type:        pulumi.String("SecureString"),
		Description: pulumi.String("setup status of OpenClaw stack " + ctx.Stack() + ", published by its instance"),
		Value:       pulumi.String(StatusNotStarted),
		Tags:        childTags(ctx, c, "aws:ssm/parameter:Parameter", statusName, nil),
	}, pulumi.Parent(c), pulumi.IgnoreChanges([]string{"value"}))
	if err != nil {
		return nil, err
	}
	c.EnvPath = pulumi.String(envPath).ToStringOutput()
	c.StatusParameter = status.Name
	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{"envPath": c.EnvPath, "statusParameter": c.StatusParameter}); err != nil {
		return nil, err
	}
	return c, nil
}
