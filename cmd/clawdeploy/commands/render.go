package commands

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/cloudinit"
	"github.com/clawdeploy/clawdeploy/infra"
)

// Render prints generated files.
var Render = &cli.Command{
	Name:  "render",
	Usage: "print files the program generates, for inspection",
	Subcommands: []*cli.Command{{
		Name:      "user-data",
		Usage:     "print the ec2-spot instance's user-data for a stack's configuration",
		ArgsUsage: " ",
		Description: `Prints the cloud-config the program would pass to the instance (uncompressed), for
the stack's configuration with --config/--secret/--config-file applied. The user-data
never holds a secret: the header lists each one by the SSM parameter the instance
reads it from. A deployed stack's real volume and bucket are used; otherwise
placeholders stand in.`,
		Flags: []cli.Flag{stackFlag, configFlag, secretFlag, configFileFlag},
		Action: func(cliContext *cli.Context) error {
			if target := cliContext.String("target"); target == automation.TargetVPS {
				return usageError("render user-data is for the %s target: a %s host gets no user-data, its setup script is launched over SSH",
					automation.TargetEC2Spot, target)
			}
			stack, in, err := stackAndConfig(cliContext)
			if err != nil {
				return err
			}
			return withDriver(cliContext, func(d *automation.Driver) error {
				values, secrets, err := d.Config(cliContext.Context, stack, in)
				if err != nil {
					return err
				}
				cfg, err := infra.LoadConfig("openclaw", stack, values, secrets)
				if err != nil {
					return &automation.ConfigError{Err: err}
				}
				volume, bucket := "vol-00000000000000000", "openclaw-"+strings.ToLower(stack)+"-backup-placeholder"
				if out, err := d.Outputs(cliContext.Context, stack); err == nil {
					if v, ok := out["dataVolumeId"].Value.(string); ok && v != "" {
						volume = v
					}
					if b, ok := out["backupBucket"].Value.(string); ok && b != "" {
						bucket = b
					}
				}
				doc, err := cloudinit.Render(infra.UserDataArgs(cfg, volume, bucket))
				if err != nil {
					return err
				}
				// #cloud-config stays the first line: the output is a user-data as it would be passed.
				first, rest, _ := strings.Cut(string(doc), "\n")
				var out strings.Builder
				out.WriteString(first + "\n")
				fmt.Fprintf(&out, "# user-data of stack %s (data volume %s, backup bucket %s)\n", stack, volume, bucket)
				keys := make([]string, 0, len(cfg.Secrets))
				for k := range cfg.Secrets {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				for _, k := range keys {
					fmt.Fprintf(&out, "# secret %s: SSM SecureString %s/%s, read into /run/openclaw/.env at start\n",
						k, infra.SecretsPath(stack), infra.SecretKeys[k])
				}
				out.WriteString(rest + "\n")
				_, err = os.Stdout.WriteString(out.String())
				return err
			})
		},
	}},
}
