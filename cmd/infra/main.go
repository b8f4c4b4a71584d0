// Command infra is the program `pulumi up` runs (Pulumi.yaml: main: ./cmd/infra).
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/targets/ec2spot"
)

func main() {
	pulumi.Run(ec2spot.Program)
}
