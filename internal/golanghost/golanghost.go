// Package golanghost is a stand-in for Pulumi's Go language host (pulumi-language-go), which
// cannot be installed on these machines, so that `pulumi preview`, `up` and `destroy` run from a
// shell in a test, through the real CLI. It serves the LanguageRuntime gRPC service as the real
// host does for a Go program that is not prebuilt: Run builds the project's main package with
// `go build` in the program directory and runs the binary with the engine's settings in the
// environment the Go SDK reads (PULUMI_MONITOR, PULUMI_ENGINE, PULUMI_PROJECT, PULUMI_STACK,
// PULUMI_CONFIG, PULUMI_CONFIG_SECRET_KEYS, PULUMI_DRY_RUN, PULUMI_PARALLEL, PULUMI_ORGANIZATION,
// PULUMI_ROOT_DIRECTORY); a program that exits with 32 has reported its error already (the SDK's
// bail). It declares no required plugins: the tests' providers are ambient, on PATH.
//
// It is not the real host: it does not install dependencies, read a prebuilt `binary` option,
// or answer `pulumi about`'s questions. Real use needs the official CLI and its Go language host.
package golanghost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
)

// bailExitCode is the Go SDK's exit code for a program error it has already reported.
const bailExitCode = 32

// Host is the LanguageRuntime server.
type Host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	// Engine is the engine's address, the host's last argument.
	Engine string
}

// GetPluginInfo implements the service.
func (h *Host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: "3.259.0-clawdeploy-standin"}, nil
}

// Handshake implements the service.
func (h *Host) Handshake(_ context.Context, req *pulumirpc.LanguageHandshakeRequest) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.Engine = req.GetEngineAddress()
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

// GetRequiredPlugins implements the service: none, the providers are ambient.
func (h *Host) GetRequiredPlugins(context.Context, *pulumirpc.GetRequiredPluginsRequest) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

// GetRequiredPackages implements the service: none, the providers are ambient.
func (h *Host) GetRequiredPackages(context.Context, *pulumirpc.GetRequiredPackagesRequest) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

// Run implements the service: build the program, run it, say how it ended.
func (h *Host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	dir := req.GetInfo().GetProgramDirectory()
	if dir == "" {
		dir = req.GetPwd()
	}
	entry := req.GetInfo().GetEntryPoint()
	if entry == "" {
		entry = "."
	}
	bin, err := os.MkdirTemp("", "pulumi-go-standin-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(bin) }()
	program := filepath.Join(bin, "program")
	build := exec.CommandContext(ctx, "go", "build", "-o", program, entry)
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("building %s in %s: %v\n%s", entry, dir, err, out)}, nil
	}
	config, err := json.Marshal(req.GetConfig())
	if err != nil {
		return nil, err
	}
	secretKeys, err := json.Marshal(req.GetConfigSecretKeys())
	if err != nil {
		return nil, err
	}
	run := exec.CommandContext(ctx, program, req.GetArgs()...)
	run.Dir = req.GetPwd()
	run.Stdout, run.Stderr = os.Stdout, os.Stderr
	run.Env = append(os.Environ(),
		"PULUMI_MONITOR="+req.GetMonitorAddress(),
		"PULUMI_ENGINE="+h.Engine,
		"PULUMI_PROJECT="+req.GetProject(),
		"PULUMI_STACK="+req.GetStack(),
		"PULUMI_ORGANIZATION="+req.GetOrganization(),
		"PULUMI_ROOT_DIRECTORY="+req.GetInfo().GetRootDirectory(),
		"PULUMI_CONFIG="+string(config),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretKeys),
		"PULUMI_DRY_RUN="+strconv.FormatBool(req.GetDryRun()),
		"PULUMI_PARALLEL="+strconv.Itoa(int(req.GetParallel())),
	)
	err = run.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return &pulumirpc.RunResponse{}, nil
	case errors.As(err, &exit) && exit.ExitCode() == bailExitCode:
		return &pulumirpc.RunResponse{Bail: true}, nil
	default:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("running the program: %v", err)}, nil
	}
}
