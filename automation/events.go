package automation

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"

	"github.com/clawdeploy/clawdeploy/ordering"
)

// Event types of the NDJSON stream.
const (
	EventStage      = "stage"
	EventResource   = "resource"
	EventDiagnostic = "diagnostic"
	EventStatus     = "status"
	EventResult     = "result"
)

// Event is one line of the driver's NDJSON stream. Every event has Time, Type and Stack; the
// other fields depend on the type.
type Event struct {
	Time  time.Time `json:"time"`
	Type  string    `json:"type"`
	Stack string    `json:"stack"`

	// stage
	Stage string `json:"stage,omitempty"`
	// status
	Status      string `json:"status,omitempty"`
	Interrupted bool   `json:"interrupted,omitempty"`
	// resource: Phase is start, done or failed; Op is the engine's step (create, update, delete,
	// replace, refresh, …).
	Phase        string `json:"phase,omitempty"`
	Op           string `json:"op,omitempty"`
	URN          string `json:"urn,omitempty"`
	ResourceType string `json:"resourceType,omitempty"`
	// diagnostic: severity is info, warning or error.
	Severity string `json:"severity,omitempty"`
	Message  string `json:"message,omitempty"`
	// result
	Operation string         `json:"operation,omitempty"`
	OK        *bool          `json:"ok,omitempty"`
	ExitCode  *int           `json:"exitCode,omitempty"`
	Error     string         `json:"error,omitempty"`
	Outputs   map[string]any `json:"outputs,omitempty"`
	// Checkpoint, on an up's result, is the checkpoint taken before it deployed a new image.
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	// Released is what a destroy of an ordered VPS did at its provider, and what the account
	// holder still has to confirm.
	Released *ordering.Release `json:"released,omitempty"`
	// TakenFrom is the owner a deployment was taken over from, and LeaseExpired when its lease
	// had expired (a diagnostic).
	TakenFrom    string     `json:"takenFrom,omitempty"`
	LeaseExpired *time.Time `json:"leaseExpired,omitempty"`
}

// Sink receives the driver's events. It must be safe for concurrent use.
type Sink interface {
	Emit(Event)
}

// SinkFunc is a Sink.
type SinkFunc func(Event)

// Emit calls f.
func (f SinkFunc) Emit(e Event) { f(e) }

// NDJSON writes each event as one line of JSON.
func NDJSON(w io.Writer) Sink {
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	return SinkFunc(func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(e)
	})
}

// Human writes the driver's own events (stages, statuses, recovery steps) as lines a person
// reads; the engine's progress goes to Options.Progress.
func Human(w io.Writer) Sink {
	var mu sync.Mutex
	return SinkFunc(func(e Event) {
		var line string
		switch e.Type {
		case EventStage:
			line = fmt.Sprintf("stage %s", e.Stage)
		case EventStatus:
			line = fmt.Sprintf("status %s", e.Status)
			if e.Interrupted {
				line += " (interrupted)"
			}
		case EventDiagnostic:
			if e.Severity != "info" {
				return // the engine's own display shows its diagnostics
			}
			line = e.Message
		default:
			return
		}
		mu.Lock()
		defer mu.Unlock()
		_, _ = fmt.Fprintf(w, "clawdeploy: %s: %s\n", e.Stack, line) // progress is best effort
	})
}

// discard drops events.
var discard = SinkFunc(func(Event) {})

// engineEvent turns an engine event into the driver's, when it is one the stream carries.
func engineEvent(e events.EngineEvent) (Event, bool) {
	switch {
	case e.ResourcePreEvent != nil:
		m := e.ResourcePreEvent.Metadata
		if m.Op == "same" || m.Type == "pulumi:pulumi:Stack" {
			return Event{}, false
		}
		return Event{Type: EventResource, Phase: "start", Op: string(m.Op), URN: m.URN, ResourceType: m.Type}, true
	case e.ResOutputsEvent != nil:
		m := e.ResOutputsEvent.Metadata
		if m.Op == "same" || m.Type == "pulumi:pulumi:Stack" {
			return Event{}, false
		}
		return Event{Type: EventResource, Phase: "done", Op: string(m.Op), URN: m.URN, ResourceType: m.Type}, true
	case e.ResOpFailedEvent != nil:
		m := e.ResOpFailedEvent.Metadata
		return Event{Type: EventResource, Phase: "failed", Op: string(m.Op), URN: m.URN, ResourceType: m.Type}, true
	case e.DiagnosticEvent != nil:
		d := e.DiagnosticEvent
		if d.Ephemeral || d.Severity == "debug" || d.Severity == "info#err" && d.Message == "" {
			return Event{}, false
		}
		sev := d.Severity
		if sev == "info#err" {
			sev = "info"
		}
		return Event{Type: EventDiagnostic, Severity: sev, Message: d.Message, URN: d.URN}, true
	}
	return Event{}, false
}

// stageOf returns the stage an engine event completes: a resource of a type that marks one,
// finished (its outputs registered) whatever the step, the unchanged ones included.
func (t *stageTracker) stageOf(e events.EngineEvent) (string, bool) {
	if e.ResOutputsEvent == nil {
		return "", false
	}
	return t.forType(e.ResOutputsEvent.Metadata.Type)
}

// engineEvents consumes the engine's events for one operation: it forwards them as the
// driver's and advances the stage. It returns the channel to give the engine, and wait, to call
// once the engine returned: it waits for the last events. The Automation API closes the channel
// only when the CLI streamed to it; a CLI that failed before it began (a configuration the
// engine refuses) never does, so wait stops after eventsGrace.
func (d *Driver) engineEvents(h *hold) (ch chan events.EngineEvent, wait func()) {
	tracker := newStageTracker(d.profile.Stages(), h.record.Stage)
	return streamEvents(func(e events.EngineEvent) {
		if ev, ok := engineEvent(e); ok {
			d.emit(h.stack, ev)
		}
		if s, ok := tracker.stageOf(e); ok {
			h.completed(tracker, s)
		}
	})
}

// streamEvents hands each engine event to handle, one at a time. It returns the channel to give
// the engine, and wait, to call once the engine returned: it waits for the last events, at most
// eventsGrace (see engineEvents).
func streamEvents(handle func(events.EngineEvent)) (ch chan events.EngineEvent, wait func()) {
	ch = make(chan events.EngineEvent)
	done, stop := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case e, open := <-ch:
				if !open {
					return
				}
				handle(e)
			case <-stop:
				return
			}
		}
	}()
	return ch, func() {
		select {
		case <-done:
		case <-time.After(eventsGrace):
			close(stop)
			<-done
		}
	}
}

// eventsGrace is how long the last events may take once the engine returned: its CLI has
// exited, so its stream ends at once when there was one.
const eventsGrace = 5 * time.Second
