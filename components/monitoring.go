package components

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ssm"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// TypeMonitoring is the Monitoring component's type token.
const TypeMonitoring = "clawdeploy:observability:Monitoring"

// LogRetentionDays are the retentions CloudWatch Logs accepts.
var LogRetentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

// LogFile is a log on the instance: its name (the log group is <LogGroupPrefix><Name>) and path.
type LogFile struct {
	Name string
	Path string
}

// MonitoringArgs configures Monitoring.
type MonitoringArgs struct {
	// LogGroupPrefix starts every log group's name, like /openclaw/<stack>/.
	LogGroupPrefix string
	// RetentionDays is how long logs are kept: one of LogRetentionDays.
	RetentionDays int
	// Logs are the files the agent ships.
	Logs []LogFile
	// ConfigParameter is the SSM parameter that holds the agent's configuration.
	ConfigParameter string
	// MetricsNamespace is where disk and memory metrics go.
	MetricsNamespace string
	// DiskPaths are the mountpoints whose use is measured.
	DiskPaths []string
}

// Monitoring is a log group per instance log, with a retention, and the CloudWatch agent's
// configuration, which the instance loads from SSM.
type Monitoring struct {
	pulumi.ResourceState

	// LogGroupNames are the log groups, in the order of Logs.
	LogGroupNames pulumi.StringArrayOutput `pulumi:"logGroupNames"`
	// ConfigParameter is the agent configuration's parameter name.
	ConfigParameter pulumi.StringOutput `pulumi:"configParameter"`
}

// NewMonitoring creates the log groups and the agent configuration.
func NewMonitoring(ctx *pulumi.Context, name string, args *MonitoringArgs, opts ...pulumi.ResourceOption) (*Monitoring, error) {
	if args == nil {
		return nil, errors.New("components: NewMonitoring needs args")
	}
	if !slices.Contains(LogRetentionDays, args.RetentionDays) {
		return nil, fmt.Errorf("components: NewMonitoring %s: retention %d days is not one CloudWatch accepts", name, args.RetentionDays)
	}
	if len(args.Logs) == 0 || args.ConfigParameter == "" || args.MetricsNamespace == "" || args.LogGroupPrefix == "" {
		return nil, fmt.Errorf("components: NewMonitoring %s: logs, log group prefix, config parameter and namespace are required", name)
	}
	c := &Monitoring{}
	if err := ctx.RegisterComponentResource(TypeMonitoring, name, c, opts...); err != nil {
		return nil, err
	}
	var groups pulumi.StringArray
	for _, l := range args.Logs {
		groupName := name + "-" + l.Name
		g, err := cloudwatch.NewLogGroup(ctx, groupName, &cloudwatch.LogGroupArgs{
			Name:            pulumi.String(args.LogGroupPrefix + l.Name),
			RetentionInDays: pulumi.Int(args.RetentionDays),
			Tags:            childTags(ctx, c, "aws:cloudwatch/logGroup:LogGroup", groupName, nil),
		}, pulumi.Parent(c))
		if err != nil {
			return nil, err
		}
		groups = append(groups, g.Name)
	}
	config, err := AgentConfig(args)
	if err != nil {
		return nil, err
	}
	paramName := name + "-agent-config"
	param, err := ssm.NewParameter(ctx, paramName, &ssm.ParameterArgs{
		Name:        pulumi.String(args.ConfigParameter),
		Type:        pulumi.String("String"),
		Description: pulumi.String("CloudWatch agent configuration of OpenClaw stack " + ctx.Stack()),
		Value:       pulumi.String(config),
		Tags:        childTags(ctx, c, "aws:ssm/parameter:Parameter", paramName, nil),
	}, pulumi.Parent(c))
	if err != nil {
		return nil, err
	}
	c.LogGroupNames = groups.ToStringArrayOutput()
	c.ConfigParameter = param.Name
	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{
		"logGroupNames":   c.LogGroupNames,
		"configParameter": c.ConfigParameter,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// AgentConfig is the CloudWatch agent's configuration: each log file to its log group, one
// stream per instance; disk use of DiskPaths and memory use as metrics.
func AgentConfig(args *MonitoringArgs) (string, error) {
	type file struct {
		FilePath      string `json:"file_path"`
		LogGroupName  string `json:"log_group_name"`
		LogStreamName string `json:"log_stream_name"`
		Timezone      string `json:"timezone"`
	}
	files := make([]file, 0, len(args.Logs))
	for _, l := range args.Logs {
		files = append(files, file{FilePath: l.Path, LogGroupName: args.LogGroupPrefix + l.Name,
			LogStreamName: "{instance_id}", Timezone: "UTC"})
	}
	config := map[string]any{
		"agent": map[string]any{"metrics_collection_interval": 60, "run_as_user": "root"},
		"logs":  map[string]any{"logs_collected": map[string]any{"files": map[string]any{"collect_list": files}}},
		"metrics": map[string]any{
			"namespace":         args.MetricsNamespace,
			"append_dimensions": map[string]string{"InstanceId": "${aws:InstanceId}"},
			"metrics_collected": map[string]any{
				"disk": map[string]any{"measurement": []string{"used_percent"}, "resources": args.DiskPaths},
				"mem":  map[string]any{"measurement": []string{"mem_used_percent"}},
			},
		},
	}
	b, err := json.Marshal(config)
	if err != nil {
		return "", fmt.Errorf("encoding the CloudWatch agent configuration: %w", err)
	}
	return string(b), nil
}
