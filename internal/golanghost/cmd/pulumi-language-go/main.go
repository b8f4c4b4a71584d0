// Command pulumi-language-go is the tests' stand-in for Pulumi's Go language host (package
// golanghost): on PATH, the CLI starts it with the engine's address as its last argument, reads
// the port it prints, and asks it to run the project's Go program.
package main

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"

	"github.com/clawdeploy/clawdeploy/internal/golanghost"
)

func main() {
	host := &golanghost.Host{}
	if len(os.Args) > 1 {
		host.Engine = os.Args[len(os.Args)-1]
	}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(s *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(s, host)
			return nil
		},
		Options: rpcutil.OpenTracingServerInterceptorOptions(nil),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-go (stand-in): %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-go (stand-in): %v\n", err)
		os.Exit(1)
	}
}
