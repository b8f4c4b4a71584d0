// Command clawdeploy-sim is clawdeploy with the simulated finder and waiter, and optionally the
// six-resource program, for the engine tests that kill it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/clawdeploy/clawdeploy/cmd/clawdeploy/app"
	"github.com/clawdeploy/clawdeploy/internal/simprogram"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := app.NewWith(simprogram.FromEnv()).RunContext(ctx, os.Args)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "clawdeploy: %v\n", err)
		os.Exit(app.ExitCode(err))
	}
}
