// Package commands holds the clawdeploy commands, one per file, and the flags they share.
package commands

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
)

// Exit codes of the command-line contract.
const (
	// ExitFailed means the operation ran and failed.
	ExitFailed = 1
	// ExitUsage means bad usage or invalid input: nothing was touched.
	ExitUsage = 2
)

// GlobalFlags are accepted before any command.
var GlobalFlags = []cli.Flag{
	&cli.StringFlag{
		Name:    "dir",
		Usage:   "project directory holding Pulumi.yaml and the Pulumi.<stack>.yaml files",
		Value:   ".",
		EnvVars: []string{"CLAWDEPLOY_PROJECT_DIR"},
	},
	&cli.StringFlag{
		Name:    "backend",
		Usage:   "Pulumi state backend URL (file://…, s3://…); default: the one Pulumi.yaml names",
		EnvVars: []string{"PULUMI_BACKEND_URL"},
	},
	&cli.StringFlag{
		Name:    "pulumi-root",
		Usage:   "directory whose bin/pulumi is the Pulumi CLI to run; default: pulumi on PATH",
		EnvVars: []string{"CLAWDEPLOY_PULUMI_ROOT"},
	},
}

// stackFlag names the stack a command works on.
var stackFlag = &cli.StringFlag{
	Name:    "stack",
	Aliases: []string{"s"},
	Usage:   "stack name (one stack per deployment), like dev",
	EnvVars: []string{"CLAWDEPLOY_STACK", "PULUMI_STACK"},
}

// replaceFlag forces the replacement of resources.
var replaceFlag = &cli.StringSliceFlag{
	Name:  "replace",
	Usage: "replace the resource with this URN even if nothing changed (repeatable); see the README's restore path",
}

// upOptions returns the options of up and preview from their flags.
func upOptions(cliContext *cli.Context) *automation.UpOptions {
	return &automation.UpOptions{Replace: cliContext.StringSlice(replaceFlag.Name)}
}

// OnUsageError turns flag parsing errors into usage errors (exit 2).
func OnUsageError(_ *cli.Context, err error, _ bool) error {
	return cli.Exit(err.Error(), ExitUsage)
}

// usageError reports bad usage: exit 2, nothing touched.
func usageError(format string, args ...any) error {
	return cli.Exit(fmt.Sprintf(format, args...), ExitUsage)
}

// stackName returns the --stack value, or a usage error.
func stackName(cliContext *cli.Context) (string, error) {
	name := cliContext.String(stackFlag.Name)
	if name == "" {
		return "", usageError("--stack is required (or set CLAWDEPLOY_STACK)")
	}
	return name, nil
}

// newDriver builds the driver from the global flags, with progress on stdout.
func newDriver(cliContext *cli.Context) (*automation.Driver, error) {
	d, err := automation.New(cliContext.Context, &automation.Options{
		ProjectDir: cliContext.String("dir"),
		BackendURL: cliContext.String("backend"),
		PulumiRoot: cliContext.String("pulumi-root"),
		Progress:   os.Stdout,
	})
	if err != nil {
		return nil, cli.Exit(err.Error(), ExitUsage)
	}
	return d, nil
}
