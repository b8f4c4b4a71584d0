// Package app builds the clawdeploy command-line application.
package app

import (
	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/cmd/clawdeploy/commands"
)

// Version is set at build time with -ldflags "-X github.com/clawdeploy/clawdeploy/cmd/clawdeploy/app.Version=…".
var Version = "dev"

// New returns the clawdeploy application. Its errors carry exit codes (see commands.ExitUsage);
// it never exits the process itself.
func New() *cli.App {
	cmds := []*cli.Command{commands.Preview, commands.Up, commands.Destroy}
	for _, c := range cmds {
		c.OnUsageError = commands.OnUsageError
	}
	return &cli.App{
		Name:    "clawdeploy",
		Usage:   "deploy OpenClaw on EC2 Spot with Pulumi, and keep its data",
		Version: Version,
		Description: `clawdeploy runs the OpenClaw deployment program (the same one "pulumi up" runs)
inline through the Pulumi Automation API. It needs the Pulumi CLI ("make tools" builds
the pinned version into ./bin) but no Pulumi language plugin.

Stack configuration is read from Pulumi.<stack>.yaml in the project directory; set it
with "pulumi config set" (secrets with --secret). State goes to the backend Pulumi.yaml
names (a local file backend) unless --backend or PULUMI_BACKEND_URL says otherwise.
PULUMI_CONFIG_PASSPHRASE encrypts the stack's secrets on self-managed backends.

Exit codes: 0 success, 1 the operation failed, 2 bad usage.`,
		Flags:                commands.GlobalFlags,
		Commands:             cmds,
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {}, // main reports and exits
		OnUsageError:         commands.OnUsageError,
	}
}
