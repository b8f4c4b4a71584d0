// Package app builds the clawdeploy command-line application.
package app

import (
	"fmt"
	"strings"

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
		commands.Up, commands.Preview, commands.Destroy, commands.Refresh, commands.Resume, commands.Heal,
		commands.Status, commands.Outputs, commands.Cancel, commands.Render, commands.Backup, commands.Snapshots, commands.Restore, commands.Volume, commands.SpotPrices, commands.Comment, commands.Worker,
	}
	for _, cmd := range cmds {
		commands.Prepare(cmd)
	}
	return &cli.App{
		Name:    "clawdeploy",
		Usage:   "deploy OpenClaw on EC2 Spot or any SSH host with Pulumi, resume what was interrupted, and keep its data",
		Version: Version,
		Description: `clawdeploy runs the OpenClaw deployment program (for ec2-spot, the one
"pulumi up" runs) inline through the Pulumi Automation API, and keeps a journal
of every deployment: its status, its last completed stage, and which process
holds it. A deployment that a killed or interrupted process left half done is
continued by "resume", which recovers the state first (dead locks, resources
whose creation was cut short) instead of failing or creating anything twice.

It needs the Pulumi CLI ("make tools" builds the pinned version into ./bin) but no
Pulumi language plugin.

Two ways to run it:
  operator  --dir (or a current directory with Pulumi.yaml): configuration comes
            from Pulumi.<stack>.yaml, state from the backend Pulumi.yaml names.
  backend   no Pulumi.yaml: each stack gets a work directory under --state-dir,
            configuration comes from --config/--secret/--config-file, and state
            goes to file://<state-dir>/state unless --backend says otherwise.

Targets (--target; a deployment keeps the one it was created with):
` + targetList() + `
Each key's meaning and default: Pulumi.yaml and targets/vps/project.yaml, or
docs/reference.md.

Global options go before or after the command: "clawdeploy --json up --stack s"
and "clawdeploy up --stack s --json" are the same.

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
		// A value may hold commas (instance_types=t4g.small,t4g.medium): a repeated flag is
		// repeated, never split.
		DisableSliceFlagSeparator: true,
		ExitErrHandler:            func(*cli.Context, error) {}, // main reports and exits
		OnUsageError:              commands.OnUsageError,
	}
}

// ExitCode returns the process exit code for an error of the application.
func ExitCode(err error) int {
	if coder, ok := err.(cli.ExitCoder); ok { //nolint:errorlint // urfave's own exit errors are never wrapped
		return coder.ExitCode()
	}
	return automation.ExitCode(err)
}

// targetList describes each target and its keys, as the help's Targets section.
func targetList() string {
	const indent = "            "
	var b strings.Builder
	for _, t := range automation.Targets() {
		fmt.Fprintf(&b, "  %-10s%s\n", t.Name, strings.ReplaceAll(t.Summary, "\n", "\n"+indent))
		fmt.Fprintf(&b, "%sKeys: %s.\n", indent, keyList(t.Keys))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// keyList joins config keys with commas, in lines that fit a terminal under the help's indent.
func keyList(keys []string) string {
	const indent, width = "            ", 76
	var b strings.Builder
	line := len(indent) + len("Keys: ")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(",")
			line++
			if line+1+len(k)+1 > width {
				b.WriteString("\n" + indent)
				line = len(indent)
			} else {
				b.WriteString(" ")
				line++
			}
		}
		b.WriteString(k)
		line += len(k)
	}
	return b.String()
}
