package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// File is the embedded journal: a SQLite file (OpenSQLite), opened when it is first needed.
// Reads of a journal that does not exist yet find nothing and create nothing; the first write
// creates the file and its directory. So a command refused before it changes anything leaves no
// journal behind.
//
// Errors of the file itself (damaged, unreadable, read-only) are *FileError, naming the file and
// what to do.
type File struct {
	path string
	mu   sync.Mutex
	sql  *SQL
}

// NewFile returns the journal at path, without opening it.
func NewFile(path string) *File { return &File{path: path} }

// Path is the journal's file.
func (f *File) Path() string { return f.path }

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
func (f *File) open(ctx context.Context, create bool) (*SQL, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sql != nil {
		return f.sql, nil
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
func (f *File) failed(err error) error {
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
func (f *File) Get(ctx context.Context, stack string) (Record, error) {
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
func (f *File) List(ctx context.Context) ([]Record, error) {
	j, err := f.open(ctx, false)
	if err != nil || j == nil {
		return nil, err
	}
	rs, err := j.List(ctx)
	return rs, f.failed(err)
}

// Ensure creates the deployment if absent, and the journal with it.
func (f *File) Ensure(ctx context.Context, stack, target string, now time.Time) (Record, error) {
	j, err := f.open(ctx, true)
	if err != nil {
		return Record{}, err
	}
	r, err := j.Ensure(ctx, stack, target, now)
	return r, f.failed(err)
}

// Acquire takes the lease.
func (f *File) Acquire(ctx context.Context, stack, owner string, now, expires time.Time, dead func(string) bool) (Record, error) {
	j, err := f.open(ctx, true)
	if err != nil {
		return Record{}, err
	}
	r, err := j.Acquire(ctx, stack, owner, now, expires, dead)
	return r, f.failed(err)
}

// Renew extends owner's lease.
func (f *File) Renew(ctx context.Context, stack, owner string, now, expires time.Time) error {
	j, err := f.open(ctx, true)
	if err != nil {
		return err
	}
	return f.failed(j.Renew(ctx, stack, owner, now, expires))
}

// Release gives up owner's lease.
func (f *File) Release(ctx context.Context, stack, owner string, now time.Time) error {
	j, err := f.open(ctx, true)
	if err != nil {
		return err
	}
	return f.failed(j.Release(ctx, stack, owner, now))
}

// Update applies change to a deployment owner holds.
func (f *File) Update(ctx context.Context, stack, owner string, now time.Time, change Change) (Record, error) {
	j, err := f.open(ctx, true)
	if err != nil {
		return Record{}, err
	}
	r, err := j.Update(ctx, stack, owner, now, change)
	return r, f.failed(err)
}

// Close closes the journal when it was opened.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sql == nil {
		return nil
	}
	return f.sql.Close()
}
