// Command clawdeploy deploys OpenClaw with Pulumi: it runs the deployment program inline through
// the Automation API, for operators, provisioning backends and CI alike.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/clawdeploy/clawdeploy/cmd/clawdeploy/app"
)

func main() {
	// SIGTERM and SIGINT cancel the operation: the engine checkpoints within the drain window,
	// the journal marks the deployment interrupted, and the exit code is 4.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := app.New().RunContext(ctx, os.Args)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "clawdeploy: %v\n", err)
		os.Exit(app.ExitCode(err))
	}
}
