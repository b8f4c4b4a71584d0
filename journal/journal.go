package journal

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Status is where a deployment is in its life.
type Status string

// The statuses of DESIGN.md: PENDING → PROVISIONING → INSTALLING → READY, or ERROR, with
// ORDERING between PROVISIONING's first steps and the delivery of a host ordered from a provider;
// READY → INTERRUPTED → PROVISIONING → … after a Spot interruption; DESTROYING → DESTROYED.
const (
	Pending      Status = "PENDING"
	Provisioning Status = "PROVISIONING"
	// Ordering is a host ordered from a provider (a VPS), from the checkout to its delivery.
	Ordering   Status = "ORDERING"
	Installing Status = "INSTALLING"
	Ready      Status = "READY"
	Error      Status = "ERROR"
	Destroying Status = "DESTROYING"
	Destroyed  Status = "DESTROYED"
	// HostLost is INTERRUPTED: the deployment's host was taken away (a Spot interruption) and a
	// heal brings it back. Not to be confused with Record.Interrupted, an operation that a
	// signal or a crash cut short.
	HostLost Status = "INTERRUPTED"
)

// Terminal reports whether nothing is left to resume: READY, ERROR (until a retry) and DESTROYED.
func (s Status) Terminal() bool {
	return s == Ready || s == Error || s == Destroyed
}

// transitions lists where each status may go; staying put is always allowed, so every transition
// can be repeated (idempotent).
var transitions = map[Status][]Status{
	Pending:      {Provisioning, Ordering, Destroying, Error},
	Provisioning: {Ordering, Installing, Ready, Error, Destroying},
	Ordering:     {Provisioning, Error, Destroying},
	Installing:   {Ready, Error, Provisioning, Destroying},
	Ready:        {Provisioning, Destroying, HostLost},
	Error:        {Provisioning, Destroying, HostLost},
	HostLost:     {Provisioning, Error, Destroying},
	Destroying:   {Destroyed, Error},
	Destroyed:    {Provisioning},
}

// CanMove reports whether a deployment may go from one status to another.
func CanMove(from, to Status) bool {
	if from == to {
		return true
	}
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Record is one deployment.
type Record struct {
	Stack  string
	Target string
	Status Status
	// Stage is the last completed stage (DESIGN.md's list for the target).
	Stage string
	// Interrupted reports that the last operation was interrupted and must be resumed.
	Interrupted bool
	// Operation is the operation under way or last run: up, destroy, refresh.
	Operation string
	Attempts  int
	LastError string
	Created   time.Time
	// Updated is when the record last changed, a lease taken or given back included; News is
	// when the deployment last had news: created, or an Update (a status, a stage, an error).
	// What has been silent too long is judged by News (LastNews).
	Updated time.Time
	News    time.Time
	// LeaseOwner holds the deployment until LeaseExpires; empty when nobody does.
	LeaseOwner   string
	LeaseExpires time.Time
	// Interruptions counts the times the deployment's host was taken away (Spot interruptions);
	// InterruptedAt and InterruptedHost are the last one: when it was seen, which instance.
	Interruptions   int
	InterruptedAt   time.Time
	InterruptedHost string
	// RecoveredAt is when the deployment was READY again after its last interruption; zero
	// until then.
	RecoveredAt time.Time
	// HealFailures counts the heals that failed in a row; HealAfter is when the next may try
	// (backoff). Both are cleared when the deployment is READY.
	HealFailures int
	HealAfter    time.Time
	// LastGoodImage is the OpenClaw image the deployment last reached READY with: what
	// `up --rollback` deploys again. Checkpoint describes the checkpoint taken before the last
	// upgrade from it (JSON, as the driver wrote it); empty when none was.
	LastGoodImage string
	Checkpoint    string
	// HostOrder is where the order of the deployment's host stands (JSON, as the driver wrote
	// it: cart, order, service, rebuild task); empty for a host the user brings.
	HostOrder string
	// Replacing are the replacements the up under way was asked for (`up --replace`, a restore,
	// `up --retry`), each resource with the id it had when the up began: a resume makes again
	// those whose resource still has that id, and no other. Empty once the engine's update is
	// done.
	Replacing []Replacement
}

// Replacement is a resource an up must replace: its URN, and its id before the replacement
// ("" when the state held none).
type Replacement struct {
	URN string `json:"urn"`
	ID  string `json:"id,omitempty"`
}

// LastNews is when the deployment last had news: News, or for a record written before the
// journal kept it, Updated.
func (r Record) LastNews() time.Time {
	if r.News.IsZero() {
		return r.Updated
	}
	return r.News
}

// Downtime is how long the last interruption kept the deployment from READY: until it was READY
// again, or until now while it is not.
func (r Record) Downtime(now time.Time) time.Duration {
	switch {
	case r.InterruptedAt.IsZero():
		return 0
	case r.RecoveredAt.Before(r.InterruptedAt):
		return now.Sub(r.InterruptedAt)
	}
	return r.RecoveredAt.Sub(r.InterruptedAt)
}

// Leased reports whether someone holds the lease at now.
func (r Record) Leased(now time.Time) bool {
	return r.LeaseOwner != "" && now.Before(r.LeaseExpires)
}

// Change is what an Update sets; nil fields are left alone.
type Change struct {
	Status      *Status
	Stage       *string
	Interrupted *bool
	Operation   *string
	LastError   *string
	// AddAttempt counts one more attempt.
	AddAttempt bool
	// Interruption records that the host was taken away: counted, with its time and instance.
	Interruption *Interruption
	// HealFailed records a failed heal and when the next may try.
	HealFailed *time.Time
	// LastGoodImage, Checkpoint, HostOrder and Replacing set the fields of the same names.
	LastGoodImage *string
	Checkpoint    *string
	HostOrder     *string
	Replacing     *[]Replacement
}

// Interruption is a host taken away.
type Interruption struct {
	At   time.Time
	Host string
}

// ErrNotFound is returned for a stack the journal does not know.
var ErrNotFound = errors.New("journal: no such deployment")

// LeaseHeldError says another owner holds the deployment.
type LeaseHeldError struct {
	Stack   string
	Owner   string
	Expires time.Time
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("deployment %s is held by %s until %s", e.Stack, e.Owner, e.Expires.UTC().Format(time.RFC3339))
}

// TransitionError says a status change is not one the life cycle allows.
type TransitionError struct {
	Stack    string
	From, To Status
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("deployment %s cannot go from %s to %s", e.Stack, e.From, e.To)
}

// Journal records deployments and who holds them. Every method is atomic: a process that dies at
// any point leaves each record as it was before the call or as the call left it.
type Journal interface {
	// Get returns a deployment, or ErrNotFound.
	Get(ctx context.Context, stack string) (Record, error)
	// List returns every deployment, by stack name.
	List(ctx context.Context) ([]Record, error)
	// Ensure creates the deployment (PENDING) if the journal does not know it, and returns it.
	Ensure(ctx context.Context, stack, target string, now time.Time) (Record, error)
	// Acquire gives owner the lease until expires when nobody holds it, it has expired, owner
	// already holds it, or dead says its holder is provably dead. Otherwise it returns a
	// *LeaseHeldError. It returns the deployment as it was when owner took it: its LeaseOwner is
	// the holder the lease was taken from, empty when the lease was free. What was read before,
	// while waiting, may be stale: a holder that finished and released since is no longer there.
	Acquire(ctx context.Context, stack, owner string, now, expires time.Time, dead func(owner string) bool) (Record, error)
	// Renew sets owner's lease to end at expires: later, to extend it; now, to end it with the
	// owner's name left on it (an interrupted operation's). A *LeaseHeldError when owner no
	// longer holds it.
	Renew(ctx context.Context, stack, owner string, now, expires time.Time) error
	// Release gives up owner's lease; a no-op when owner does not hold it.
	Release(ctx context.Context, stack, owner string, now time.Time) error
	// Update applies change to a deployment owner holds, checking the status transition. A
	// deployment that becomes READY after an interruption is recovered (RecoveredAt), and its
	// heal failures are cleared.
	Update(ctx context.Context, stack, owner string, now time.Time, change Change) (Record, error)
	// ClaimStale takes over, for owner until expires, up to limit deployments of target ("":
	// of every target) whose operation did not finish and whose lease is free or expired at now,
	// skipping those other claimers are taking; it returns them as they were claimed from.
	ClaimStale(ctx context.Context, owner, target string, now, expires time.Time, limit int) ([]Record, error)
	// Enqueue queues a request; TakeRequests gives owner up to limit of the queued ones for
	// target ("": every target; the oldest of each deployment only); FinishRequests records how
	// the running request of a deployment ended; Requeue queues again one owner took; GetRequest
	// and Requests read them.
	Enqueue(ctx context.Context, r Request, now time.Time) error
	TakeRequests(ctx context.Context, owner, target string, now time.Time, limit int) ([]Request, error)
	FinishRequests(ctx context.Context, stack string, now time.Time, failure error) error
	Requeue(ctx context.Context, id, owner string) error
	GetRequest(ctx context.Context, id string) (Request, error)
	Requests(ctx context.Context) ([]Request, error)
	// Close releases the journal's resources.
	Close() error
}
