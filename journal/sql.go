package journal

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the shared journal's driver ("pgx")
	_ "modernc.org/sqlite"             // the embedded default's driver
)

// Dialect adapts the SQL to a database: SQLite for the embedded default, PostgreSQL (or another
// database/sql driver) for a journal shared by several backend replicas.
type Dialect struct {
	// Placeholder returns the i-th (1-based) parameter placeholder: "?" for SQLite, "$1" for
	// PostgreSQL.
	Placeholder func(i int) string
	// RowLocks reports SELECT … FOR UPDATE (and SKIP LOCKED); SQLite locks the whole database
	// instead.
	RowLocks bool
	// MigrationLock is the statement that serializes the migrations of processes starting at
	// once, inside their transaction; empty when the transaction itself does (SQLite's
	// immediate transactions).
	MigrationLock string
}

// SQLite is the dialect of the embedded default.
var SQLite = Dialect{Placeholder: func(int) string { return "?" }}

// Postgres is the dialect of a PostgreSQL journal.
var Postgres = Dialect{Placeholder: func(i int) string { return fmt.Sprintf("$%d", i) }, RowLocks: true,
	// A transaction-scoped advisory lock: CREATE TABLE IF NOT EXISTS is not safe against a
	// concurrent one in PostgreSQL (both may try to create it), so nobody migrates at once.
	MigrationLock: `SELECT pg_advisory_xact_lock(7355608)`}

// SQL is a Journal in a SQL database. Every change is one statement or one transaction, and
// lease changes are compare-and-swap updates on the owner and expiry observed, so concurrent
// processes (or replicas) never both win.
type SQL struct {
	db      *sql.DB
	dialect Dialect
}

// migrations are the journal's schema, one version each, applied in order and recorded in
// schema_version. Never edit one that has shipped: add the next.
var migrations = []string{
	// 1: the deployments and who holds them.
	`CREATE TABLE IF NOT EXISTS deployments (
	stack TEXT PRIMARY KEY,
	target TEXT NOT NULL,
	status TEXT NOT NULL,
	stage TEXT NOT NULL DEFAULT '',
	interrupted INTEGER NOT NULL DEFAULT 0,
	operation TEXT NOT NULL DEFAULT '',
	attempts INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',
	created_ms BIGINT NOT NULL,
	updated_ms BIGINT NOT NULL,
	lease_owner TEXT NOT NULL DEFAULT '',
	lease_expires_ms BIGINT NOT NULL DEFAULT 0
)`,
	// 2: interruptions of the host, and the heals' backoff.
	`ALTER TABLE deployments ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE deployments ADD COLUMN interrupted_ms BIGINT NOT NULL DEFAULT 0`,
	`ALTER TABLE deployments ADD COLUMN interrupted_host TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE deployments ADD COLUMN recovered_ms BIGINT NOT NULL DEFAULT 0`,
	`ALTER TABLE deployments ADD COLUMN heal_failures INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE deployments ADD COLUMN heal_after_ms BIGINT NOT NULL DEFAULT 0`,
	// 3: upgrades that can be undone: the last image that reached READY, the pre-upgrade checkpoint.
	`ALTER TABLE deployments ADD COLUMN last_good_image TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE deployments ADD COLUMN checkpoint TEXT NOT NULL DEFAULT ''`,
	// 4: hosts ordered from a provider: where the order stands.
	`ALTER TABLE deployments ADD COLUMN host_order TEXT NOT NULL DEFAULT ''`,
	// 5: operations queued for the workers (clawdeploy up|destroy --enqueue, or a backend's
	// own INSERT): see docs/backend.md, "Running several replicas".
	`CREATE TABLE IF NOT EXISTS requests (
	id TEXT PRIMARY KEY,
	stack TEXT NOT NULL,
	target TEXT NOT NULL DEFAULT 'ec2-spot',
	operation TEXT NOT NULL,
	options TEXT NOT NULL DEFAULT '',
	config TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL DEFAULT 'queued',
	owner TEXT NOT NULL DEFAULT '',
	created_ms BIGINT NOT NULL,
	taken_ms BIGINT NOT NULL DEFAULT 0,
	finished_ms BIGINT NOT NULL DEFAULT 0,
	error TEXT NOT NULL DEFAULT ''
)`,
	`CREATE INDEX IF NOT EXISTS requests_by_state ON requests (state, created_ms)`,
	// 6: the replacements an up was asked for (JSON), which its resume makes again.
	`ALTER TABLE deployments ADD COLUMN replacing TEXT NOT NULL DEFAULT ''`,
	// 7: when the deployment last had news (an Update), which a lease taken or given back is not.
	`ALTER TABLE deployments ADD COLUMN news_ms BIGINT NOT NULL DEFAULT 0`,
}

// OpenSQLite opens (creating it if need be) the embedded journal at path: SQLite in WAL mode with
// full synchronous writes, so a crash at any point leaves the file readable and each record whole,
// and with a busy timeout, so processes that share the file wait for each other instead of
// failing.
func OpenSQLite(ctx context.Context, path string) (*SQL, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("journal: creating %s: %w", filepath.Dir(path), err)
	}
	// A file: URI with the path escaped: a ?, # or % in a directory's name stays part of the path
	// instead of starting the parameters (or a fragment) and opening another database.
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("journal: %s: %w", path, err)
	}
	dsn := "file:" + (&url.URL{Path: abs}).EscapedPath() +
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(15000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("journal: opening %s: %w", path, err)
	}
	j, err := NewSQL(ctx, db, SQLite)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("journal: %s: %w", path, err)
	}
	return j, nil
}

// OpenPostgres opens the shared journal in the PostgreSQL database at url (postgres://…), with
// pgx through database/sql, and brings its schema to the current version: processes starting at
// once migrate one after the other.
func OpenPostgres(ctx context.Context, url string) (*SQL, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("journal: opening %s: %w", Redact(url), err)
	}
	db.SetMaxOpenConns(8)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("journal: connecting to %s: %w", Redact(url), err)
	}
	j, err := NewSQL(ctx, db, Postgres)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("journal: %s: %w", Redact(url), err)
	}
	return j, nil
}

// Redact returns a database URL without its password, for messages.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a database URL that does not parse)"
	}
	return u.Redacted()
}

// NewSQL makes a Journal of an open database, bringing its schema to the current version.
func NewSQL(ctx context.Context, db *sql.DB, dialect Dialect) (*SQL, error) {
	j := &SQL{db: db, dialect: dialect}
	if err := j.migrate(ctx); err != nil {
		return nil, err
	}
	return j, nil
}

// migrate applies the migrations the database has not seen, in one transaction, so that
// processes starting at once apply each exactly once (the first to write waits out the others;
// SQLite's immediate transactions and PostgreSQL's row lock on schema_version serialize them).
func (j *SQL) migrate(ctx context.Context) error {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrating the journal: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if j.dialect.MigrationLock != "" {
		if _, err := tx.ExecContext(ctx, j.dialect.MigrationLock); err != nil {
			return fmt.Errorf("migrating the journal: waiting for the migration lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("creating the schema version table: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version)`); err != nil {
		return fmt.Errorf("migrating the journal: %w", err)
	}
	var version int
	lock := ""
	if j.dialect.RowLocks {
		lock = " FOR UPDATE"
	}
	if err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`+lock).Scan(&version); err != nil {
		return fmt.Errorf("reading the journal's schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("the journal's schema is version %d, newer than this clawdeploy knows (%d): upgrade clawdeploy", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrating the journal to version %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, j.q(`UPDATE schema_version SET version = ?`), len(migrations)); err != nil {
		return fmt.Errorf("migrating the journal: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrating the journal: %w", err)
	}
	return nil
}

// Close closes the database.
func (j *SQL) Close() error { return j.db.Close() }

// q rewrites ? placeholders into the dialect's.
func (j *SQL) q(query string) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString(j.dialect.Placeholder(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

const columns = `stack, target, status, stage, interrupted, operation, attempts, last_error,
	created_ms, updated_ms, lease_owner, lease_expires_ms,
	interruptions, interrupted_ms, interrupted_host, recovered_ms, heal_failures, heal_after_ms,
	last_good_image, checkpoint, host_order, replacing, news_ms`

type scanner interface{ Scan(...any) error }

func scan(s scanner) (Record, error) {
	var (
		r                                     Record
		status                                string
		interrupted                           int
		created, updated, leaseExpires, news  int64
		interruptedAt, recoveredAt, healAfter int64
		replacing                             string
	)
	err := s.Scan(&r.Stack, &r.Target, &status, &r.Stage, &interrupted, &r.Operation, &r.Attempts, &r.LastError,
		&created, &updated, &r.LeaseOwner, &leaseExpires,
		&r.Interruptions, &interruptedAt, &r.InterruptedHost, &recoveredAt, &r.HealFailures, &healAfter,
		&r.LastGoodImage, &r.Checkpoint, &r.HostOrder, &replacing, &news)
	if err != nil {
		return Record{}, err
	}
	if replacing != "" {
		if err := json.Unmarshal([]byte(replacing), &r.Replacing); err != nil {
			return Record{}, fmt.Errorf("the replacements of %s: %w", r.Stack, err)
		}
	}
	r.Status = Status(status)
	r.Interrupted = interrupted != 0
	r.Created = time.UnixMilli(created)
	r.Updated = time.UnixMilli(updated)
	r.LeaseExpires = time.UnixMilli(leaseExpires)
	r.News = fromMillis(news)
	r.InterruptedAt, r.RecoveredAt, r.HealAfter = fromMillis(interruptedAt), fromMillis(recoveredAt), fromMillis(healAfter)
	return r, nil
}

// fromMillis is a stored time: 0 is none.
func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// millis is a time to store: none is 0.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// Get returns a deployment.
func (j *SQL) Get(ctx context.Context, stack string) (Record, error) {
	r, err := scan(j.db.QueryRowContext(ctx, j.q(`SELECT `+columns+` FROM deployments WHERE stack = ?`), stack))
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, fmt.Errorf("%w: %s", ErrNotFound, stack)
	}
	if err != nil {
		return Record{}, fmt.Errorf("journal: reading %s: %w", stack, err)
	}
	return r, nil
}

// List returns every deployment.
func (j *SQL) List(ctx context.Context) ([]Record, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT `+columns+` FROM deployments ORDER BY stack`)
	if err != nil {
		return nil, fmt.Errorf("journal: listing: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []Record
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("journal: listing: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Ensure creates the deployment if absent.
func (j *SQL) Ensure(ctx context.Context, stack, target string, now time.Time) (Record, error) {
	ms := now.UnixMilli()
	_, err := j.db.ExecContext(ctx, j.q(`INSERT INTO deployments (stack, target, status, created_ms, updated_ms, news_ms)
		SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM deployments WHERE stack = ?)`),
		stack, target, string(Pending), ms, ms, ms, stack)
	if err != nil {
		return Record{}, fmt.Errorf("journal: creating %s: %w", stack, err)
	}
	return j.Get(ctx, stack)
}

// Acquire takes the lease by compare-and-swap on the record it observed.
func (j *SQL) Acquire(ctx context.Context, stack, owner string, now, expires time.Time, dead func(string) bool) (Record, error) {
	for {
		r, err := j.Get(ctx, stack)
		if err != nil {
			return Record{}, err
		}
		free := r.LeaseOwner == "" || !now.Before(r.LeaseExpires) || r.LeaseOwner == owner ||
			(dead != nil && dead(r.LeaseOwner))
		if !free {
			return Record{}, &LeaseHeldError{Stack: stack, Owner: r.LeaseOwner, Expires: r.LeaseExpires}
		}
		// The record is replaced only as it was read (every write moves its lease or its update
		// time), so r is exactly what the lease was taken from. When it moved in between, judge
		// it again as it is now.
		res, err := j.db.ExecContext(ctx, j.q(`UPDATE deployments SET lease_owner = ?, lease_expires_ms = ?, updated_ms = ?
			WHERE stack = ? AND lease_owner = ? AND lease_expires_ms = ? AND updated_ms = ?`),
			owner, expires.UnixMilli(), now.UnixMilli(), stack, r.LeaseOwner, r.LeaseExpires.UnixMilli(), r.Updated.UnixMilli())
		if err != nil {
			return Record{}, fmt.Errorf("journal: taking the lease of %s: %w", stack, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return r, nil
		}
	}
}

// Renew extends owner's lease.
func (j *SQL) Renew(ctx context.Context, stack, owner string, now, expires time.Time) error {
	res, err := j.db.ExecContext(ctx, j.q(`UPDATE deployments SET lease_expires_ms = ?
		WHERE stack = ? AND lease_owner = ?`), expires.UnixMilli(), stack, owner)
	if err != nil {
		return fmt.Errorf("journal: renewing the lease of %s: %w", stack, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		r, _ := j.Get(ctx, stack)
		return &LeaseHeldError{Stack: stack, Owner: r.LeaseOwner, Expires: r.LeaseExpires}
	}
	return nil
}

// Release gives up owner's lease.
func (j *SQL) Release(ctx context.Context, stack, owner string, now time.Time) error {
	_, err := j.db.ExecContext(ctx, j.q(`UPDATE deployments SET lease_owner = '', lease_expires_ms = 0, updated_ms = ?
		WHERE stack = ? AND lease_owner = ?`), now.UnixMilli(), stack, owner)
	if err != nil {
		return fmt.Errorf("journal: releasing the lease of %s: %w", stack, err)
	}
	return nil
}

// Update applies change to a deployment owner holds, in one transaction.
func (j *SQL) Update(ctx context.Context, stack, owner string, now time.Time, change Change) (Record, error) {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return Record{}, fmt.Errorf("journal: updating %s: %w", stack, err)
	}
	defer func() { _ = tx.Rollback() }()
	r, err := scan(tx.QueryRowContext(ctx, j.q(`SELECT `+columns+` FROM deployments WHERE stack = ?`), stack))
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, fmt.Errorf("%w: %s", ErrNotFound, stack)
	}
	if err != nil {
		return Record{}, fmt.Errorf("journal: updating %s: %w", stack, err)
	}
	if r.LeaseOwner != owner {
		return Record{}, &LeaseHeldError{Stack: stack, Owner: r.LeaseOwner, Expires: r.LeaseExpires}
	}
	if change.Status != nil {
		if !CanMove(r.Status, *change.Status) {
			return Record{}, &TransitionError{Stack: stack, From: r.Status, To: *change.Status}
		}
		r.Status = *change.Status
	}
	if change.Stage != nil {
		r.Stage = *change.Stage
	}
	if change.Interrupted != nil {
		r.Interrupted = *change.Interrupted
	}
	if change.Operation != nil {
		r.Operation = *change.Operation
	}
	if change.LastError != nil {
		r.LastError = *change.LastError
	}
	if change.AddAttempt {
		r.Attempts++
	}
	if i := change.Interruption; i != nil {
		r.Interruptions++
		r.InterruptedAt, r.InterruptedHost = i.At, i.Host
	}
	if change.LastGoodImage != nil {
		r.LastGoodImage = *change.LastGoodImage
	}
	if change.Checkpoint != nil {
		r.Checkpoint = *change.Checkpoint
	}
	if change.HostOrder != nil {
		r.HostOrder = *change.HostOrder
	}
	if change.Replacing != nil {
		r.Replacing = nil
		if len(*change.Replacing) > 0 {
			r.Replacing = slices.Clone(*change.Replacing)
		}
	}
	replacing := ""
	if len(r.Replacing) > 0 {
		b, err := json.Marshal(r.Replacing)
		if err != nil {
			return Record{}, fmt.Errorf("journal: updating %s: %w", stack, err)
		}
		replacing = string(b)
	}
	if change.HealFailed != nil {
		r.HealFailures++
		r.HealAfter = *change.HealFailed
	}
	if r.Status == Ready {
		if r.RecoveredAt.Before(r.InterruptedAt) {
			r.RecoveredAt = now
		}
		r.HealFailures, r.HealAfter = 0, time.Time{}
	}
	interrupted := 0
	if r.Interrupted {
		interrupted = 1
	}
	if _, err := tx.ExecContext(ctx, j.q(`UPDATE deployments SET status = ?, stage = ?, interrupted = ?, operation = ?,
		attempts = ?, last_error = ?, updated_ms = ?, interruptions = ?, interrupted_ms = ?, interrupted_host = ?,
		recovered_ms = ?, heal_failures = ?, heal_after_ms = ?, last_good_image = ?, checkpoint = ?,
		host_order = ?, replacing = ?, news_ms = ? WHERE stack = ? AND lease_owner = ?`),
		string(r.Status), r.Stage, interrupted, r.Operation, r.Attempts, r.LastError, now.UnixMilli(),
		r.Interruptions, millis(r.InterruptedAt), r.InterruptedHost, millis(r.RecoveredAt), r.HealFailures, millis(r.HealAfter),
		r.LastGoodImage, r.Checkpoint, r.HostOrder, replacing, now.UnixMilli(), stack, owner); err != nil {
		return Record{}, fmt.Errorf("journal: updating %s: %w", stack, err)
	}
	if err := tx.Commit(); err != nil {
		return Record{}, fmt.Errorf("journal: updating %s: %w", stack, err)
	}
	r.Updated = time.UnixMilli(now.UnixMilli())
	r.News = r.Updated
	return r, nil
}
