package automation_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/journal"
)

// greeting is a program of the caller's: one component and one output, which the engine runs
// without a provider plugin.
func greeting(ctx *pulumi.Context) error {
	var c struct{ pulumi.ResourceState }
	if err := ctx.RegisterComponentResource("example:index:Greeting", "greeting", &c); err != nil {
		return err
	}
	ctx.Export("greeting", pulumi.String("hello"))
	return nil
}

// exampleDriver returns a driver in backend mode whose state, journal and work directories are
// in a directory of their own, running greeting with the Pulumi CLI that `make tools` built
// (../bin/pulumi). remove deletes it all.
func exampleDriver() (d *automation.Driver, remove func()) {
	state, err := os.MkdirTemp("", "clawdeploy-example-")
	if err != nil {
		panic(err)
	}
	d, err = automation.New(context.Background(), &automation.Options{
		Program:    greeting, // nil runs the target's own: ec2spot.Program for ec2-spot
		StateDir:   state,    // the journal, the stacks' work directories, the file backend's state
		PulumiRoot: "..",     // bin/pulumi; empty means the pulumi on PATH
		Env:        map[string]string{"PULUMI_CONFIG_PASSPHRASE": "example"},
	})
	if err != nil {
		panic(err)
	}
	return d, func() { _ = d.Close(); _ = os.RemoveAll(state) }
}

// A backend embeds the driver, one stack per customer: New touches nothing until an operation
// needs it, and refuses bad options with an error whose exit code (ExitCode) says nothing was
// written.
func ExampleNew() {
	_, err := automation.New(context.Background(), &automation.Options{Target: "gcp-spot"})
	fmt.Println(err)
	fmt.Println("exit code", automation.ExitCode(err))
	// Output:
	// target "gcp-spot" is not one of ec2-spot, vps
	// exit code 2
}

// Up deploys the stack and waits for its setup (a program of the caller's has none): the
// journal records the deployment READY, and the result carries the stack's outputs.
func ExampleDriver_Up() {
	d, remove := exampleDriver()
	defer remove()
	res, err := d.Up(context.Background(), "customer-42", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Record.Status, res.Outputs["greeting"].Value)
	// Output: READY hello
}

// Status answers from the journal alone, without the Pulumi CLI: what a backend polls. A stack
// the journal does not know is a *NotFoundError.
func ExampleDriver_Status() {
	d, remove := exampleDriver()
	defer remove()
	ctx := context.Background()
	if _, err := d.Up(ctx, "customer-42", nil); err != nil {
		fmt.Println(err)
		return
	}
	rec, err := d.Status(ctx, "customer-42")
	fmt.Println(rec.Stack, rec.Status, rec.Operation, rec.Target, err)
	_, err = d.Status(ctx, "customer-43")
	var notFound *automation.NotFoundError
	fmt.Println(errors.As(err, &notFound), automation.ExitCode(err))
	// Output:
	// customer-42 READY up ec2-spot <nil>
	// true 2
}

// Resume continues whatever a dead process left unfinished, and only that: a deployment that is
// READY and was not interrupted costs no engine run. ResumeAll does the same for every
// deployment the journal knows.
func ExampleDriver_Resume() {
	d, remove := exampleDriver()
	defer remove()
	ctx := context.Background()
	if _, err := d.Up(ctx, "customer-42", nil); err != nil {
		fmt.Println(err)
		return
	}
	res, err := d.Resume(ctx, "customer-42")
	fmt.Println(res.Record.Status == journal.Ready, res.Record.Interrupted, err)
	// Output: true false <nil>
}
