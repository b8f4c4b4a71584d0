package automation

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/internal/enginetest"
)

// component is the smallest resource the engine creates without a provider plugin.
type component struct {
	pulumi.ResourceState
}

func pipelineProgram(ctx *pulumi.Context) error {
	parent := &component{}
	if err := ctx.RegisterComponentResource("clawdeploy:test:Parent", "parent", parent); err != nil {
		return err
	}
	child := &component{}
	if err := ctx.RegisterComponentResource("clawdeploy:test:Child", "parent-child", child,
		pulumi.Parent(parent)); err != nil {
		return err
	}
	ctx.Export("greeting", pulumi.String("hello from "+ctx.Stack()))
	ctx.Export("token", pulumi.ToSecret(pulumi.String("s3cr3t")))
	return nil
}

// TestEnginePipeline proves the toolchain end to end: the CLI built by `make tools`, an inline
// program through the Automation API, a file backend in a temporary directory, up then destroy.
func TestEnginePipeline(t *testing.T) {
	t.Parallel()
	dir, env := enginetest.Project(t, "pipeline")
	var progress bytes.Buffer
	d, err := New(t.Context(), &Options{
		Program:    pipelineProgram,
		ProjectDir: dir,
		PulumiRoot: enginetest.PulumiRoot(t),
		Env:        env,
		Progress:   &progress,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}

	up, err := d.Up(t.Context(), "ci", nil)
	if err != nil {
		t.Fatalf("Up: %v\n%s", err, progress.String())
	}
	if got := (*up.Summary.ResourceChanges)["create"]; got != 3 { // stack, parent, child
		t.Errorf("up created %d resources, want 3; summary %+v", got, up.Summary.ResourceChanges)
	}
	if got := up.Outputs["greeting"].Value; got != "hello from ci" {
		t.Errorf("output greeting = %v", got)
	}
	if !up.Outputs["token"].Secret {
		t.Errorf("output token is not a secret")
	}
	if !strings.Contains(progress.String(), "clawdeploy:test:Child") {
		t.Errorf("progress did not show the child resource:\n%s", progress.String())
	}

	again, err := d.Up(t.Context(), "ci", nil)
	if err != nil {
		t.Fatalf("second Up: %v", err)
	}
	if got := (*again.Summary.ResourceChanges)["same"]; got != 3 {
		t.Errorf("second up: %d unchanged, want 3; summary %+v", got, again.Summary.ResourceChanges)
	}

	child := "urn:pulumi:ci::pipeline::clawdeploy:test:Parent$clawdeploy:test:Child::parent-child"
	replaced, err := d.Up(t.Context(), "ci", &UpOptions{Replace: []string{child}})
	if err != nil {
		t.Fatalf("Up with Replace: %v", err)
	}
	if got := (*replaced.Summary.ResourceChanges)["replace"]; got != 1 {
		t.Errorf("up with Replace replaced %d, want 1; summary %+v", got, replaced.Summary.ResourceChanges)
	}

	destroyed, err := d.Destroy(t.Context(), "ci")
	if err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if destroyed.Summary.Result != string(apitype.StatusSucceeded) {
		t.Errorf("destroy result = %s", destroyed.Summary.Result)
	}
	if got := (*destroyed.Summary.ResourceChanges)["delete"]; got != 3 {
		t.Errorf("destroy deleted %d, want 3", got)
	}
}

func TestNewRequiresAProject(t *testing.T) {
	t.Parallel()
	_, err := New(context.Background(), &Options{ProjectDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "has no Pulumi.yaml") {
		t.Fatalf("New in an empty directory: %v", err)
	}
}
