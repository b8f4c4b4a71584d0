// Command clawdeploy deploys OpenClaw with Pulumi: it runs the deployment program inline through
// the Automation API, for operators, provisioning backends and CI alike.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/cmd/clawdeploy/app"
)

func main() {
	if err := app.New().Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "clawdeploy: %v\n", err)
		code := 1
		var exit cli.ExitCoder
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		}
		os.Exit(code)
	}
}
