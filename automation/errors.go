package automation

import "fmt"

// EngineError is an operation the Pulumi engine ran and failed. Err is the Automation API's own
// error, so auto.IsConcurrentUpdateError and its friends still apply to it; classify with those
// before wrapping further.
type EngineError struct {
	// Op is what was being done: "previewing", "updating" or "destroying".
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
