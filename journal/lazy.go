package journal

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Lazy is the journal a driver opens: a SQLite file (OpenSQLite) or a shared PostgreSQL
// database (OpenPostgres), opened when it is first needed. Reads of a SQLite journal that does not
// exist yet find nothing and create nothing; the first write creates the file and its
// directory. So a command refused before it changes anything leaves no journal behind.
//
// Errors of the file itself (damaged, unreadable, read-only) are *FileError, naming the file and
// what to do.
type Lazy struct {
	path string
	mu   sync.Mutex
	sql  *SQL
	// dial opens a journal that is not a local file (a shared PostgreSQL journal), which
	// always exists; nil for the SQLite file at path.
	dial func(ctx context.Context) (*SQL, error)
}

// NewFile returns the journal at path, without opening it.
func NewFile(path string) *Lazy { return &Lazy{path: path} }

// NewShared returns the shared journal in the PostgreSQL database at url, connected (and its
// schema migrated) when it is first used.
func NewShared(url string) *Lazy {
	return &Lazy{path: Redact(url), dial: func(ctx context.Context) (*SQL, error) { return OpenPostgres(ctx, url) }}
}

// Open returns the journal a --journal URL names: "" for the SQLite file journal.db under
// stateDir, sqlite:PATH for another SQLite file, postgres://… (or postgresql://…) for a shared
// PostgreSQL journal. Nothing is opened yet.
func Open(spec, stateDir string) (*Lazy, error) {
	switch {
	case spec == "":
		return NewFile(filepath.Join(stateDir, "journal.db")), nil
	case strings.HasPrefix(spec, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(spec, "sqlite:"), "//")
		if path == "" {
			return nil, fmt.Errorf("--journal %s names no file: give sqlite:/path/to/journal.db", spec)
		}
		return NewFile(path), nil
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		if _, err := url.Parse(spec); err != nil {
			return nil, fmt.Errorf("--journal %s: %w", Redact(spec), err)
		}
		// What the driver would refuse at the first connection (an sslmode it does not know, a
		// connect_timeout that is no number) is refused here, before anything is done.
		if _, err := pgx.ParseConfig(spec); err != nil {
			return nil, fmt.Errorf("--journal %s: %s", Redact(spec), parseProblem(err))
		}
		return NewShared(spec), nil
	}
	return nil, fmt.Errorf("--journal %q is not a journal URL: give sqlite:/path/to/journal.db, or postgres://user@host/db for a journal "+
		"shared by several hosts (default: journal.db in the state directory)", Redact(spec))
}

// parseProblem is what pgx found wrong in a connection URL, without the URL it quotes (which
// may hold a password).
func parseProblem(err error) string {
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, "`: "); ok {
		return after
	}
	return msg
}

// Path is the journal's file.
func (f *Lazy) Path() string { return f.path }

// FileError is a journal file that cannot be used: damaged, unreadable or read-only. It is an
// operational failure, not bad usage.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string {
	var coded interface{ Code() int }
	code := 0
	if errors.As(e.Err, &coded) {
		code = coded.Code() & 0xff // the primary result code of an extended one
	}
	switch code {
	case 11, 26: // SQLITE_CORRUPT, SQLITE_NOTADB
		return fmt.Sprintf("the journal %s is damaged (%v): move it aside (the deployments' records in it are lost; "+
			"the stacks' state in the backend is not) and run again to start a new one", e.Path, e.Err)
	case 8, 14, 23: // SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_AUTH
		return fmt.Sprintf("the journal %s cannot be written (%v): make it and its directory writable by this user, "+
			"or give another --state-dir", e.Path, e.Err)
	}
	return fmt.Sprintf("the journal %s: %v", e.Path, e.Err)
}

// Unwrap returns the cause.
func (e *FileError) Unwrap() error { return e.Err }

// open returns the open journal; with create false, nil when the file does not exist.
func (f *Lazy) open(ctx context.Context, create bool) (*SQL, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sql != nil {
		return f.sql, nil
	}
	if f.dial != nil {
		j, err := f.dial(ctx)
		if err != nil {
			return nil, &FileError{Path: f.path, Err: err}
		}
		f.sql = j
		return j, nil
	}
	if !create {
		if _, err := os.Stat(f.path); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
	}
	j, err := OpenSQLite(ctx, f.path)
	if err != nil {
		return nil, &FileError{Path: f.path, Err: err}
	}
	f.sql = j
	return j, nil
}

// failed wraps an error of the file; the journal's own answers (not found, held, a transition
// refused) pass as they are.
func (f *Lazy) failed(err error) error {
	var (
		held       *LeaseHeldError
		transition *TransitionError
		file       *FileError
	)
	if err == nil || errors.Is(err, ErrNotFound) || errors.As(err, &held) || errors.As(err, &transition) ||
		errors.As(err, &file) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &FileError{Path: f.path, Err: err}
}

// Get returns a deployment; ErrNotFound when the journal does not exist yet.
func (f *Lazy) Get(ctx context.Context, stack string) (Record, error) {
	j, err := f.open(ctx, false)
	if err != nil {
		return Record{}, err
	}
	if j == nil {
		return Record{}, fmt.Errorf("%w: %s", ErrNotFound, stack)
	}
	r, err := j.Get(ctx, stack)
	return r, f.failed(err)
}

// List returns every deployment; none when the journal does not exist yet.
func (f *Lazy) List(ctx context.Context) ([]Record, error) {
	j, err := f.open(ctx, false)
	if err != nil || j == nil {
		return nil, err
	}
	rs, err := j.List(ctx)
	return rs, f.failed(err)
}

// Ensure creates the deployment if absent, and the journal with it.
func (f *Lazy) Ensure(ctx context.Context, stack, target string, now time.Time) (Record, error) {
	j, err := f.open(ctx, true)
	if err != nil {
		return Record{}, err
	}
	r, err := j.Ensure(ctx, stack, target, now)
	return r, f.failed(err)
}

// Acquire takes the lease.
func (f *Lazy) Acquire(ctx context.Context, stack, owner string, now, expires time.Time, dead func(string) bool) (Record, error) {
	j, err := f.open(ctx, true)
	if err != nil {
		return Record{}, err
	}
	r, err := j.Acquire(ctx, stack, owner, now, expires, dead)
	return r, f.failed(err)
}

// Renew extends owner's lease.
func (f *Lazy) Renew(ctx context.Context, stack, owner string, now, expires time.Time) error {
	j, err := f.open(ctx, true)
	if err != nil {
		return err
	}
	return f.failed(j.Renew(ctx, stack, owner, now, expires))
}

// Release gives up owner's lease.
func (f *Lazy) Release(ctx context.Context, stack, owner string, now time.Time) error {
	j, err := f.open(ctx, true)
	if err != nil {
		return err
	}
	return f.failed(j.Release(ctx, stack, owner, now))
}

// Update applies change to a deployment owner holds.
func (f *Lazy) Update(ctx context.Context, stack, owner string, now time.Time, change Change) (Record, error) {
	j, err := f.open(ctx, true)
	if err != nil {
		return Record{}, err
	}
	r, err := j.Update(ctx, stack, owner, now, change)
	return r, f.failed(err)
}

// Close closes the journal when it was opened.
func (f *Lazy) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sql == nil {
		return nil
	}
	return f.sql.Close()
}

// ClaimStale takes over deployments left by dead owners; none when the journal does not exist.
func (f *Lazy) ClaimStale(ctx context.Context, owner, target string, now, expires time.Time, limit int) ([]Record, error) {
	j, err := f.open(ctx, false)
	if err != nil || j == nil {
		return nil, err
	}
	rs, err := j.ClaimStale(ctx, owner, target, now, expires, limit)
	return rs, f.failed(err)
}

// Enqueue queues a request, creating the journal.
func (f *Lazy) Enqueue(ctx context.Context, r Request, now time.Time) error {
	j, err := f.open(ctx, true)
	if err != nil {
		return err
	}
	return f.failed(j.Enqueue(ctx, r, now))
}

// TakeRequests takes queued requests; none when the journal does not exist.
func (f *Lazy) TakeRequests(ctx context.Context, owner, target string, now time.Time, limit int) ([]Request, error) {
	j, err := f.open(ctx, false)
	if err != nil || j == nil {
		return nil, err
	}
	rs, err := j.TakeRequests(ctx, owner, target, now, limit)
	return rs, f.failed(err)
}

// FinishRequests records how requests ended.
func (f *Lazy) FinishRequests(ctx context.Context, stack string, now time.Time, failure error) error {
	j, err := f.open(ctx, false)
	if err != nil || j == nil {
		return err
	}
	return f.failed(j.FinishRequests(ctx, stack, now, failure))
}

// Requeue queues a request again.
func (f *Lazy) Requeue(ctx context.Context, id, owner string) error {
	j, err := f.open(ctx, false)
	if err != nil || j == nil {
		return err
	}
	return f.failed(j.Requeue(ctx, id, owner))
}

// GetRequest returns a request; ErrNotFound when the journal does not exist.
func (f *Lazy) GetRequest(ctx context.Context, id string) (Request, error) {
	j, err := f.open(ctx, false)
	if err != nil {
		return Request{}, err
	}
	if j == nil {
		return Request{}, fmt.Errorf("%w: request %s", ErrNotFound, id)
	}
	r, err := j.GetRequest(ctx, id)
	return r, f.failed(err)
}

// Requests lists the requests; none when the journal does not exist.
func (f *Lazy) Requests(ctx context.Context) ([]Request, error) {
	j, err := f.open(ctx, false)
	if err != nil || j == nil {
		return nil, err
	}
	rs, err := j.Requests(ctx)
	return rs, f.failed(err)
}
