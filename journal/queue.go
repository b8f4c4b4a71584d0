package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Request is an operation queued for the workers (`clawdeploy up|destroy --enqueue`, or a
// backend's own INSERT into the requests table).
type Request struct {
	// ID is the request's identity, chosen by whoever queues it (unique).
	ID        string
	Stack     string
	Target    string
	Operation string // up or destroy
	// Options are the operation's options as JSON ({"retry": true}); Config its configuration
	// as JSON ({"values": {...}, "secrets": {...}}, the secrets encrypted as the stack's are).
	Options string
	Config  string
	// State is queued, running, done or failed; Owner the worker that took it.
	State    string
	Owner    string
	Created  time.Time
	Taken    time.Time
	Finished time.Time
	Error    string
}

// The states of a request.
const (
	RequestQueued  = "queued"
	RequestRunning = "running"
	RequestDone    = "done"
	RequestFailed  = "failed"
)

const requestColumns = `id, stack, target, operation, options, config, state, owner, created_ms, taken_ms, finished_ms, error`

func scanRequest(s scanner) (Request, error) {
	var (
		r                        Request
		created, taken, finished int64
	)
	if err := s.Scan(&r.ID, &r.Stack, &r.Target, &r.Operation, &r.Options, &r.Config, &r.State, &r.Owner,
		&created, &taken, &finished, &r.Error); err != nil {
		return Request{}, err
	}
	r.Created, r.Taken, r.Finished = fromMillis(created), fromMillis(taken), fromMillis(finished)
	return r, nil
}

// Enqueue records a request, queued.
func (j *SQL) Enqueue(ctx context.Context, r Request, now time.Time) error {
	if r.ID == "" || r.Stack == "" || (r.Operation != "up" && r.Operation != "destroy") {
		return fmt.Errorf("journal: a request needs an id, a stack and the operation up or destroy, got %q, %q, %q", r.ID, r.Stack, r.Operation)
	}
	_, err := j.db.ExecContext(ctx, j.q(`INSERT INTO requests (id, stack, target, operation, options, config, state, created_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), r.ID, r.Stack, r.Target, r.Operation, r.Options, r.Config, RequestQueued, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("journal: queueing request %s for %s: %w", r.ID, r.Stack, err)
	}
	return nil
}

// GetRequest returns a request, or ErrNotFound.
func (j *SQL) GetRequest(ctx context.Context, id string) (Request, error) {
	r, err := scanRequest(j.db.QueryRowContext(ctx, j.q(`SELECT `+requestColumns+` FROM requests WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Request{}, fmt.Errorf("%w: request %s", ErrNotFound, id)
	}
	return r, err
}

// Requests lists the requests, oldest first.
func (j *SQL) Requests(ctx context.Context) ([]Request, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT `+requestColumns+` FROM requests ORDER BY created_ms, id`)
	if err != nil {
		return nil, fmt.Errorf("journal: listing the requests: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []Request
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// TakeRequests gives owner up to limit queued requests, oldest first, in one transaction: on
// PostgreSQL the rows other workers are taking are skipped (FOR UPDATE SKIP LOCKED), so workers
// taking at once never wait for one another nor take the same request. A request for a
// deployment waits for the ones queued before it to finish. Only target's requests are taken
// (every target's when it is ""): a worker runs one target's program.
func (j *SQL) TakeRequests(ctx context.Context, owner, target string, now time.Time, limit int) ([]Request, error) {
	if limit <= 0 {
		return nil, nil
	}
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("journal: taking requests: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	// Only the oldest unfinished request of a deployment may be taken, so at most one per
	// deployment: the requests of one deployment run in the order they were queued, one at a time.
	ofTarget, args := targetClause("q.", target, RequestQueued)
	rows, err := tx.QueryContext(ctx, j.q(`SELECT `+requestColumns+` FROM requests q WHERE state = ?`+ofTarget+`
		AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.stack = q.stack AND r.state IN (?, ?)
			AND (r.created_ms < q.created_ms OR (r.created_ms = q.created_ms AND r.id < q.id)))
		ORDER BY created_ms, id LIMIT ?`+j.skipLocked()), append(args, RequestQueued, RequestRunning, limit)...)
	if err != nil {
		return nil, fmt.Errorf("journal: taking requests: %w", err)
	}
	var taken []Request
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("journal: taking requests: %w", err)
		}
		taken = append(taken, r)
	}
	_ = rows.Close()
	for i := range taken {
		if _, err := tx.ExecContext(ctx, j.q(`UPDATE requests SET state = ?, owner = ?, taken_ms = ? WHERE id = ?`),
			RequestRunning, owner, now.UnixMilli(), taken[i].ID); err != nil {
			return nil, fmt.Errorf("journal: taking request %s: %w", taken[i].ID, err)
		}
		taken[i].State, taken[i].Owner, taken[i].Taken = RequestRunning, owner, time.UnixMilli(now.UnixMilli())
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("journal: taking requests: %w", err)
	}
	return taken, nil
}

// FinishRequests records how the running request of stack ended: done, or failed with why.
// Whoever held the deployment when its operation ended finishes it: the worker that took the
// request, or the one that took the deployment over from it.
func (j *SQL) FinishRequests(ctx context.Context, stack string, now time.Time, failure error) error {
	state, why := RequestDone, ""
	if failure != nil {
		state, why = RequestFailed, failure.Error()
	}
	_, err := j.db.ExecContext(ctx, j.q(`UPDATE requests SET state = ?, error = ?, finished_ms = ?
		WHERE stack = ? AND state = ?`), state, why, now.UnixMilli(), stack, RequestRunning)
	if err != nil {
		return fmt.Errorf("journal: finishing the requests of %s: %w", stack, err)
	}
	return nil
}

// Requeue puts a running request owner took back in the queue.
func (j *SQL) Requeue(ctx context.Context, id, owner string) error {
	res, err := j.db.ExecContext(ctx, j.q(`UPDATE requests SET state = ?, owner = '', taken_ms = 0 WHERE id = ? AND owner = ? AND state = ?`),
		RequestQueued, id, owner, RequestRunning)
	if err != nil {
		return fmt.Errorf("journal: queueing request %s again: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("journal: request %s is not running for %s", id, owner)
	}
	return nil
}

// skipLocked is the clause that skips rows another transaction holds; SQLite, which locks the
// whole database for a writing transaction, has none.
func (j *SQL) skipLocked() string {
	if j.dialect.RowLocks {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// Unfinished reports whether ClaimStale takes r over once its lease is free or expired: an
// operation started, and the deployment is not in a final status or the operation was marked
// interrupted. It is the Go form of the SQL condition unfinished.
func Unfinished(r Record) bool {
	started := r.Operation == "up" || r.Operation == "destroy" || r.Operation == "refresh"
	return started && (r.Interrupted || (r.Status != Ready && r.Status != Error && r.Status != Destroyed))
}

// targetClause is the condition " AND <prefix>target = ?" and args with target after them, or
// nothing and args alone when target is "" (every target).
func targetClause(prefix, target string, args ...any) (string, []any) {
	if target == "" {
		return "", args
	}
	return " AND " + prefix + "target = ?", append(args, target)
}

// unfinished is the SQL condition of a deployment whose operation did not finish (Resume's
// resumable, as far as the record says): see Unfinished.
var unfinished = `operation IN ('up', 'destroy', 'refresh') AND (interrupted = 1 OR status NOT IN ('` +
	strings.Join([]string{string(Ready), string(Error), string(Destroyed)}, "', '") + `'))`

// ClaimStale gives owner, until expires, up to limit deployments whose operation did not finish
// and whose lease is free or expired at now: the takeover of what a dead owner left, wherever it
// ran. One transaction; on PostgreSQL it skips the rows other workers are claiming (FOR UPDATE
// SKIP LOCKED), so workers sweeping at once never queue behind one another nor claim the same
// deployment. It returns the deployments as they were claimed from: LeaseOwner is the owner
// they were taken from (empty for a free lease). Only target's deployments are claimed (every
// target's when it is ""): a worker runs one target's program.
func (j *SQL) ClaimStale(ctx context.Context, owner, target string, now, expires time.Time, limit int) ([]Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("journal: claiming: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	ofTarget, args := targetClause("", target)
	rows, err := tx.QueryContext(ctx, j.q(`SELECT `+columns+` FROM deployments WHERE `+unfinished+ofTarget+`
		AND (lease_owner = '' OR lease_expires_ms <= ?) ORDER BY updated_ms, stack LIMIT ?`+j.skipLocked()), append(args, now.UnixMilli(), limit)...)
	if err != nil {
		return nil, fmt.Errorf("journal: claiming: %w", err)
	}
	var claimed []Record
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("journal: claiming: %w", err)
		}
		claimed = append(claimed, r)
	}
	_ = rows.Close()
	for _, r := range claimed {
		if _, err := tx.ExecContext(ctx, j.q(`UPDATE deployments SET lease_owner = ?, lease_expires_ms = ?, updated_ms = ? WHERE stack = ?`),
			owner, expires.UnixMilli(), now.UnixMilli(), r.Stack); err != nil {
			return nil, fmt.Errorf("journal: claiming %s: %w", r.Stack, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("journal: claiming: %w", err)
	}
	return claimed, nil
}
