package commands

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/journal"
)

// Status prints the journal.
var Status = &cli.Command{
	Name:      "status",
	Usage:     "print the journal's record of a deployment, or of all",
	ArgsUsage: " ",
	Description: `Prints status, last completed stage, attempts, last error, who holds the
deployment and until when. Reads the journal only: no engine, no cloud.`,
	Flags: []cli.Flag{stackFlag},
	Action: func(cliContext *cli.Context) error {
		var stack string
		if cliContext.IsSet(stackFlag.Name) {
			var err error
			if stack, err = stackName(cliContext); err != nil {
				return err
			}
		}
		return withDriver(cliContext, func(d *automation.Driver) error {
			var records []journal.Record
			if stack != "" {
				r, err := d.Status(cliContext.Context, stack)
				if err != nil {
					return err
				}
				records = append(records, r)
			} else {
				var err error
				if records, err = d.List(cliContext.Context); err != nil {
					return err
				}
			}
			if cliContext.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				for _, r := range records {
					_ = enc.Encode(statusEvent(r))
				}
				return nil
			}
			// The tabwriter buffers: a write error surfaces at Flush.
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			_, _ = fmt.Fprintln(w, "STACK\tTARGET\tSTATUS\tSTAGE\tATTEMPTS\tUPDATED\tHELD BY\tINTERRUPTIONS\tLAST ERROR")
			for _, r := range records {
				status := string(r.Status)
				if r.Interrupted {
					status += " (interrupted)"
				}
				held := "-"
				if r.Leased(time.Now()) {
					held = r.LeaseOwner + " until " + r.LeaseExpires.UTC().Format(time.RFC3339)
				}
				_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", r.Stack, r.Target, status, dash(r.Stage),
					r.Attempts, r.Updated.UTC().Format(time.RFC3339), held, interruptions(r), dash(r.LastError))
			}
			return w.Flush()
		})
	},
}

// interruptions sums a deployment's interruptions up for the table: how many, and the last one's
// instance and downtime.
func interruptions(r journal.Record) string {
	if r.Interruptions == 0 {
		return "-"
	}
	return fmt.Sprintf("%d (last: %s, down %s)", r.Interruptions, r.InterruptedHost, r.Downtime(time.Now()).Round(time.Second))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// statusRecord is a journal record as the status command prints it with --json.
type statusRecord struct {
	Time         time.Time  `json:"time"`
	Type         string     `json:"type"`
	Stack        string     `json:"stack"`
	Target       string     `json:"target"`
	Status       string     `json:"status"`
	Interrupted  bool       `json:"interrupted"`
	Stage        string     `json:"stage"`
	Operation    string     `json:"operation"`
	Attempts     int        `json:"attempts"`
	LastError    string     `json:"lastError"`
	Created      time.Time  `json:"created"`
	Updated      time.Time  `json:"updated"`
	LeaseOwner   string     `json:"leaseOwner,omitempty"`
	LeaseExpires *time.Time `json:"leaseExpires,omitempty"`
	// The host's interruptions: how many, the last one (when, which instance), when the
	// deployment was READY again, and the downtime (until then, or until now).
	Interruptions       int        `json:"interruptions"`
	InterruptedAt       *time.Time `json:"interruptedAt,omitempty"`
	InterruptedInstance string     `json:"interruptedInstance,omitempty"`
	RecoveredAt         *time.Time `json:"recoveredAt,omitempty"`
	DowntimeSeconds     *float64   `json:"downtimeSeconds,omitempty"`
	// A failed heal: how many in a row, and when the next may try.
	HealFailures int        `json:"healFailures,omitempty"`
	HealAfter    *time.Time `json:"healAfter,omitempty"`
	// The last image that reached READY (what `up --rollback` deploys), and the checkpoint
	// taken before the last upgrade from it.
	LastGoodImage string          `json:"lastGoodImage,omitempty"`
	Checkpoint    json.RawMessage `json:"checkpoint,omitempty"`
	// HostOrder is where the order of a VPS ordered from a provider stands: its plan, cart,
	// order id, service name, address and rebuild task (ordering.State).
	HostOrder json.RawMessage `json:"hostOrder,omitempty"`
	// Replacing are the replacements an unfinished up was asked for (a restore's volume and
	// instance, say), each resource with its id before: what its resume replaces if still so.
	Replacing []journal.Replacement `json:"replacing,omitempty"`
}

func statusEvent(r journal.Record) statusRecord {
	s := statusRecord{
		Time: time.Now().UTC(), Type: automation.EventStatus, Stack: r.Stack, Target: r.Target, Status: string(r.Status),
		Interrupted: r.Interrupted, Stage: r.Stage, Operation: r.Operation, Attempts: r.Attempts, LastError: r.LastError,
		Created: r.Created.UTC(), Updated: r.Updated.UTC(), LeaseOwner: r.LeaseOwner,
	}
	if r.LeaseOwner != "" {
		e := r.LeaseExpires.UTC()
		s.LeaseExpires = &e
	}
	s.Interruptions, s.InterruptedInstance, s.HealFailures = r.Interruptions, r.InterruptedHost, r.HealFailures
	s.InterruptedAt, s.RecoveredAt, s.HealAfter = utcOrNil(r.InterruptedAt), utcOrNil(r.RecoveredAt), utcOrNil(r.HealAfter)
	s.LastGoodImage, s.Replacing = r.LastGoodImage, r.Replacing
	if json.Valid([]byte(r.Checkpoint)) {
		s.Checkpoint = json.RawMessage(r.Checkpoint)
	}
	if json.Valid([]byte(r.HostOrder)) {
		s.HostOrder = json.RawMessage(r.HostOrder)
	}
	if !r.InterruptedAt.IsZero() {
		seconds := r.Downtime(time.Now()).Seconds()
		s.DowntimeSeconds = &seconds
	}
	return s
}

// utcOrNil is a time for JSON: absent when zero.
func utcOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
