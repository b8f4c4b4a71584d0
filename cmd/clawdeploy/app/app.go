// Package app builds the clawdeploy command-line application.
package app

import (
	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/cmd/clawdeploy/commands"
)

// Version is set at build time with -ldflags "-X github.com/clawdeploy/clawdeploy/cmd/clawdeploy/app.Version=…".
var Version = "dev"

// New returns the clawdeploy application with the default program. Its errors carry exit codes
// (see automation.ExitCode); it never exits the process itself.
func New() *cli.App {
	return NewWith(commands.Config{})
}

// NewWith returns the application with part of the driver replaced: the test harness runs the
// same commands on a simulated program, finder and waiter.
func NewWith(c commands.Config) *cli.App {
	cmds := []*cli.Command{
		commands.Up, commands.Preview, commands.Destroy, commands.Refresh, commands.Resume,
		commands.Status, commands.Outputs, commands.Cancel, commands.Render,
	}
	for _, cmd := range cmds {
		cmd.OnUsageError = commands.OnUsageError
		for _, sub := range cmd.Subcommands {
			sub.OnUsageError = commands.OnUsageError
		}
	}
	return &cli.App{
		Name:    "clawdeploy",
		Usage:   "deploy OpenClaw on EC2 Spot with Pulumi, resume what was interrupted, and keep its data",
		Version: Version,
		Description: `clawdeploy runs the OpenClaw deployment program (the same one "pulumi up" runs)
inline through the Pulumi Automation API, and keeps a journal of every deployment:
its status, its last completed stage, and which process holds it. A deployment
that a killed or interrupted process left half done is continued by "resume",
which recovers the state first (dead locks, resources whose creation was cut
short) instead of failing or creating anything twice.

It needs the Pulumi CLI ("make tools" builds the pinned version into ./bin) but no
Pulumi language plugin.

Two ways to run it:
  operator  --dir (or a current directory with Pulumi.yaml): configuration comes
            from Pulumi.<stack>.yaml, state from the backend Pulumi.yaml names.
  backend   no Pulumi.yaml: each stack gets a work directory under --state-dir,
            configuration comes from --config/--secret/--config-file, and state
            goes to file://<state-dir>/state unless --backend says otherwise.

PULUMI_CONFIG_PASSPHRASE encrypts the stack's secrets on self-managed backends.

Exit codes:
  0  success
  1  the operation failed (the journal says why)
  2  bad usage or invalid configuration: nothing was touched
  3  another live process holds the deployment (lease or state lock)
  4  interrupted by a signal: "clawdeploy resume" continues it`,
		Flags:                commands.GlobalFlags,
		Commands:             cmds,
		Metadata:             map[string]any{commands.ConfigKey: c},
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {}, // main reports and exits
		OnUsageError:         commands.OnUsageError,
	}
}

// ExitCode returns the process exit code for an error of the application.
func ExitCode(err error) int {
	if coder, ok := err.(cli.ExitCoder); ok { //nolint:errorlint // urfave's own exit errors are never wrapped
		return coder.ExitCode()
	}
	return automation.ExitCode(err)
}
