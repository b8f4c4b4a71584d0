// Command pulumi-resource-sim is the simulated provider plugin. Built as pulumi-resource-<pkg>, it
// serves <pkg>: aws, tls, command or sim.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"

	"github.com/clawdeploy/clawdeploy/internal/simprovider"
)

func main() {
	pkg := strings.TrimPrefix(filepath.Base(os.Args[0]), "pulumi-resource-")
	if _, ok := simprovider.Versions[pkg]; !ok {
		fmt.Fprintf(os.Stderr, "pulumi-resource-sim: no simulated package %q\n", pkg)
		os.Exit(1)
	}
	err := provider.Main(pkg, func(*provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return simprovider.New(pkg)
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-%s: %v\n", pkg, err)
		os.Exit(1)
	}
}
