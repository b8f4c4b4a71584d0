package automation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/infra"
)

// CLIVersion is the Pulumi CLI version the driver is built and tested against; `make tools` builds
// exactly this version into ./bin.
var CLIVersion = semver.MustParse("3.259.0")

// Options configures a Driver. The zero value (or nil) means defaults.
type Options struct {
	// Program is the Pulumi program run inline. Nil means infra.Program.
	Program pulumi.RunFunc
	// ProjectDir holds Pulumi.yaml and the Pulumi.<stack>.yaml stack files. Empty means the
	// current directory.
	ProjectDir string
	// BackendURL overrides the project's backend, as PULUMI_BACKEND_URL does. Empty keeps the
	// environment's PULUMI_BACKEND_URL, or else the backend Pulumi.yaml names.
	BackendURL string
	// PulumiRoot is a directory whose bin/pulumi is the CLI to run (the repository root after
	// `make tools`). Empty means the `pulumi` found on PATH.
	PulumiRoot string
	// Env is added to the environment of every CLI run.
	Env map[string]string
	// Progress receives the engine's human-readable progress. Nil discards it.
	Progress io.Writer
}

// Driver runs stack operations through the Automation API, with the program inline.
type Driver struct {
	program    pulumi.RunFunc
	projectDir string
	env        map[string]string
	progress   io.Writer
	cli        auto.PulumiCommand
}

// New returns a Driver for opts, after checking that the Pulumi CLI is the pinned version.
func New(ctx context.Context, opts *Options) (*Driver, error) {
	if opts == nil {
		opts = &Options{}
	}
	d := &Driver{
		program:    opts.Program,
		projectDir: opts.ProjectDir,
		env:        map[string]string{"PULUMI_SKIP_UPDATE_CHECK": "true"},
		progress:   opts.Progress,
	}
	if d.program == nil {
		d.program = infra.Program
	}
	if d.projectDir == "" {
		d.projectDir = "."
	}
	abs, err := filepath.Abs(d.projectDir)
	if err != nil {
		return nil, fmt.Errorf("resolving project directory %s: %w", d.projectDir, err)
	}
	d.projectDir = abs
	if _, err := os.Stat(filepath.Join(abs, "Pulumi.yaml")); err != nil {
		return nil, fmt.Errorf("project directory %s has no Pulumi.yaml: %w", abs, err)
	}
	if d.progress == nil {
		d.progress = io.Discard
	}
	if opts.BackendURL != "" {
		d.env["PULUMI_BACKEND_URL"] = opts.BackendURL
	}
	maps.Copy(d.env, opts.Env)
	if err := d.checkPassphrase(); err != nil {
		return nil, err
	}

	cli, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: opts.PulumiRoot, Version: CLIVersion})
	if err != nil {
		return nil, fmt.Errorf("checking the Pulumi CLI (need v%s or later; `make tools` builds it into ./bin): %w",
			CLIVersion, err)
	}
	d.cli = cli
	return d, nil
}

// checkPassphrase fails early, with the fix, when a self-managed backend would need a passphrase
// that nobody set: the CLI would otherwise stop half-way through stack creation.
func (d *Driver) checkPassphrase() error {
	for _, k := range []string{"PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"} {
		if _, ok := d.env[k]; ok {
			return nil
		}
		if _, ok := os.LookupEnv(k); ok {
			return nil
		}
	}
	backend := d.env["PULUMI_BACKEND_URL"]
	if backend == "" {
		backend = os.Getenv("PULUMI_BACKEND_URL")
	}
	if backend != "" && !strings.HasPrefix(backend, "file://") && !strings.HasPrefix(backend, "s3://") &&
		!strings.HasPrefix(backend, "gs://") && !strings.HasPrefix(backend, "azblob://") {
		return nil // Pulumi Cloud manages secrets itself
	}
	return errors.New("PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) is not set: " +
		"the self-managed state backend encrypts stack secrets with it; set it before running")
}

// stack selects the named stack, creating it when create is true.
func (d *Driver) stack(ctx context.Context, name string, create bool) (auto.Stack, error) {
	opts := []auto.LocalWorkspaceOption{
		auto.WorkDir(d.projectDir),
		auto.Pulumi(d.cli),
		auto.EnvVars(d.env),
	}
	var (
		s   auto.Stack
		err error
	)
	if create {
		s, err = auto.UpsertStackInlineSource(ctx, name, "", d.program, opts...)
	} else {
		s, err = auto.SelectStackInlineSource(ctx, name, "", d.program, opts...)
	}
	if err != nil {
		return auto.Stack{}, fmt.Errorf("opening stack %s: %w", name, err)
	}
	return s, nil
}

// engineError wraps a failed engine run.
func (d *Driver) engineError(op, stack string, err error) error {
	return &EngineError{Op: op, Stack: stack, Err: err, Streamed: d.progress != io.Discard}
}

// UpOptions adjust Up and Preview. Nil means none.
type UpOptions struct {
	// Replace forces the replacement of these URNs, as `pulumi up --replace` does: the explicit
	// way to restore the data volume from a snapshot (see the README).
	Replace []string
}

// Preview shows what Up would change, creating the stack when it does not exist yet.
func (d *Driver) Preview(ctx context.Context, stack string, opts *UpOptions) (auto.PreviewResult, error) {
	s, err := d.stack(ctx, stack, true)
	if err != nil {
		return auto.PreviewResult{}, err
	}
	popts := []optpreview.Option{optpreview.ProgressStreams(d.progress), optpreview.ErrorProgressStreams(d.progress)}
	if opts != nil && len(opts.Replace) > 0 {
		popts = append(popts, optpreview.Replace(opts.Replace))
	}
	res, err := s.Preview(ctx, popts...)
	if err != nil {
		return res, d.engineError("previewing", stack, err)
	}
	return res, nil
}

// Up creates or updates the stack's resources.
func (d *Driver) Up(ctx context.Context, stack string, opts *UpOptions) (auto.UpResult, error) {
	s, err := d.stack(ctx, stack, true)
	if err != nil {
		return auto.UpResult{}, err
	}
	uopts := []optup.Option{optup.ProgressStreams(d.progress), optup.ErrorProgressStreams(d.progress)}
	if opts != nil && len(opts.Replace) > 0 {
		uopts = append(uopts, optup.Replace(opts.Replace))
	}
	res, err := s.Up(ctx, uopts...)
	if err != nil {
		return res, d.engineError("updating", stack, err)
	}
	return res, nil
}

// Destroy deletes every resource of an existing stack; the stack itself and its history remain.
func (d *Driver) Destroy(ctx context.Context, stack string) (auto.DestroyResult, error) {
	s, err := d.stack(ctx, stack, false)
	if err != nil {
		return auto.DestroyResult{}, err
	}
	res, err := s.Destroy(ctx, optdestroy.ProgressStreams(d.progress), optdestroy.ErrorProgressStreams(d.progress))
	if err != nil {
		return res, d.engineError("destroying", stack, err)
	}
	return res, nil
}
