package automation

import (
	"errors"
	"fmt"

	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/names"
)

// Exit codes of the command-line contract.
const (
	// ExitOK means the operation succeeded.
	ExitOK = 0
	// ExitFailed means the operation ran and failed.
	ExitFailed = 1
	// ExitUsage means bad usage or invalid configuration: nothing was touched.
	ExitUsage = 2
	// ExitHeld means another live process holds the deployment (its lease or its state lock).
	ExitHeld = 3
	// ExitInterrupted means a signal interrupted the operation; `resume` continues it.
	ExitInterrupted = 4
)

// ExitCode maps an error of the driver to the command-line contract's exit code.
func ExitCode(err error) int {
	var (
		usage       *UsageError
		config      *ConfigError
		notFound    *NotFoundError
		lease       *journal.LeaseHeldError
		lock        *LockHeldError
		interrupted *InterruptedError
		lost        *LeaseLostError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &interrupted):
		return ExitInterrupted
	case errors.As(err, &lease), errors.As(err, &lock), errors.As(err, &lost):
		return ExitHeld
	case errors.As(err, &usage), errors.As(err, &config), errors.As(err, &notFound):
		return ExitUsage
	}
	return ExitFailed
}

// EngineError is an operation the Pulumi engine ran and failed. Err is the Automation API's own
// error, so auto.IsConcurrentUpdateError and its friends still apply to it; classify with those
// before wrapping further.
type EngineError struct {
	// Op is what was being done: "previewing", "updating", "refreshing" or "destroying".
	Op string
	// Stack is the stack it was done to.
	Stack string
	// Err is the error the Automation API returned; its text holds the engine's whole output.
	Err error
	// Streamed reports that the engine's output already went to the driver's Progress writer,
	// so the message need not repeat it.
	Streamed bool
}

func (e *EngineError) Error() string {
	if e.Streamed {
		return fmt.Sprintf("%s stack %s failed: the engine's output is above", e.Op, e.Stack)
	}
	return fmt.Sprintf("%s stack %s: %v", e.Op, e.Stack, e.Err)
}

// Unwrap returns the Automation API's error.
func (e *EngineError) Unwrap() error { return e.Err }

// UsageError is bad usage: nothing was touched.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *UsageError) Unwrap() error { return e.Err }

// NotFoundError is a stack the journal or the backend does not know.
type NotFoundError struct{ Stack string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no deployment named %s: create it with `clawdeploy up --stack %s`", e.Stack, e.Stack)
}

// InterruptedError is an operation a signal interrupted. The journal marks the deployment
// interrupted; `clawdeploy resume` continues it.
type InterruptedError struct {
	Stack     string
	Operation string
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("%s of stack %s was interrupted; `clawdeploy resume --stack %s` continues it", e.Operation, e.Stack, e.Stack)
}

// CheckStackName refuses, with a *UsageError, a stack name that is not a plain Pulumi stack
// name: a qualified name (organization/project/stack) would be a second name for the same
// stack, and . or .. would be read as directories. Every operation checks its stack's name
// before anything else, so that no path is ever built from an unchecked name.
func CheckStackName(name string) error {
	if !names.IsStack(name) {
		return &UsageError{Err: fmt.Errorf("stack name %q is not valid: a stack name is %s", name, names.StackRule)}
	}
	return nil
}

// PolicyError is a preview a mandatory policy refused: exit 1.
type PolicyError struct {
	Stack      string
	Violations int
}

func (e *PolicyError) Error() string {
	return fmt.Sprintf("the preview of %s has %d mandatory policy violation(s)", e.Stack, e.Violations)
}
