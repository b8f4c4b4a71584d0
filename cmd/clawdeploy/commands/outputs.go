package commands

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
)

// Outputs prints the stack's outputs.
var Outputs = &cli.Command{
	Name:      "outputs",
	Usage:     "print the deployment's outputs (secrets hidden unless --show-secrets)",
	ArgsUsage: " ",
	Flags:     []cli.Flag{stackFlag, &cli.BoolFlag{Name: "show-secrets", Usage: "print secret outputs in clear"}},
	Action: func(cliContext *cli.Context) error {
		stack, err := stackName(cliContext)
		if err != nil {
			return err
		}
		return withDriver(cliContext, func(d *automation.Driver) error {
			out, err := d.Outputs(cliContext.Context, stack)
			if err != nil {
				return err
			}
			values := map[string]any{}
			for k, v := range out {
				values[k] = v.Value
				if v.Secret && !cliContext.Bool("show-secrets") {
					values[k] = "[secret]"
				}
			}
			if cliContext.Bool("json") {
				return json.NewEncoder(os.Stdout).Encode(values)
			}
			keys := make([]string, 0, len(values))
			for k := range values {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				fmt.Printf("%s: %v\n", k, values[k])
			}
			return nil
		})
	},
}
