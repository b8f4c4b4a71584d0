// Package fleet is the worker (`clawdeploy worker`): the long-running form of the start-up
// resume and the stale check, for several replicas sharing one journal, and the queue they
// serve (Enqueue). Each sweep takes over the deployments whose owner's lease expired
// (journal.ClaimStale), then queued requests (journal.TakeRequests), at most Concurrency
// operations at once; every StaleEvery it marks ERROR the INSTALLING deployments without news
// for automation.StuckInstalling that nobody live holds; every HealEvery it checks the hosts of
// the deployments it can lease and heals those whose host is gone (automation.Driver.HealDue).
package fleet

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/config"

	"github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/journal"
)

// Defaults of the worker.
const (
	DefaultPoll       = 2 * time.Second
	DefaultStaleEvery = time.Minute
	DefaultHealEvery  = time.Minute
)

// Options configure Work.
type Options struct {
	// Concurrency bounds the operations at once (automation.DefaultConcurrency when 0).
	Concurrency int
	// Poll is how often to look for work (DefaultPoll when 0); a finished operation
	// looks at once.
	Poll time.Duration
	// StaleEvery is how often to sweep for stuck INSTALLING deployments (DefaultStaleEvery).
	StaleEvery time.Duration
	// HealEvery is how often to check the hosts and heal those gone (DefaultHealEvery when 0;
	// negative: never). The checks of one sweep run Concurrency at a time, beside the other
	// operations: a check is a read, and a heal takes the deployment's lease as any operation.
	HealEvery time.Duration
	// Stats, when not nil, is kept up to date for /metrics.
	Stats *Stats
}

// Stats are a worker's counts, read by its /metrics.
type Stats struct {
	InFlight atomic.Int64
	// Operations and Failures count the operations ended and failed, by operation.
	mu         sync.Mutex
	operations map[string]int64
	failures   map[string]int64
	// Healthy is when the journal last answered a sweep; zero before the first.
	healthy atomic.Int64
}

// Operations returns the operations ended and failed so far, by operation.
func (s *Stats) Operations() (ended, failed map[string]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ended, failed = map[string]int64{}, map[string]int64{}
	for k, v := range s.operations {
		ended[k] = v
	}
	for k, v := range s.failures {
		failed[k] = v
	}
	return ended, failed
}

// LastSweep is when the journal last answered a sweep.
func (s *Stats) LastSweep() time.Time {
	if ms := s.healthy.Load(); ms != 0 {
		return time.UnixMilli(ms)
	}
	return time.Time{}
}

func (s *Stats) ended(op string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.operations == nil {
		s.operations, s.failures = map[string]int64{}, map[string]int64{}
	}
	s.operations[op]++
	if err != nil && !cutOff(err) {
		s.failures[op]++
	}
}

// worker is one Work's driver, journal and owner.
type worker struct {
	d       *automation.Driver
	journal journal.Journal
	owner   string
}

// Work runs d's worker until ctx is cancelled: it takes over abandoned deployments and queued requests,
// at most Concurrency operations at once, renewing their leases as every operation does, and
// sweeps stuck INSTALLING deployments. Cancelled (SIGTERM), it takes no more work and its
// operations are interrupted: each gets the drain window to save its state, is marked interrupted
// and its lease ended, so another worker takes it over at once. Work returns once they have.
func Work(ctx context.Context, d *automation.Driver, opts Options) error {
	concurrency := cmp.Or(opts.Concurrency, automation.DefaultConcurrency)
	if concurrency < 1 {
		return &automation.UsageError{Err: fmt.Errorf("--concurrency must be 1 or more, got %d", concurrency)}
	}
	poll, staleEvery, healEvery := cmp.Or(opts.Poll, DefaultPoll), cmp.Or(opts.StaleEvery, DefaultStaleEvery), cmp.Or(opts.HealEvery, DefaultHealEvery)
	stats := opts.Stats
	if stats == nil {
		stats = &Stats{}
	}
	w := &worker{d: d, journal: d.Journal(), owner: d.Owner()}
	host, _ := os.Hostname()
	d.Note("", "worker %s on %s: up to %d operations at once, a lease lasts %s", w.owner, host, concurrency, d.LeaseTTL())
	var (
		wg       sync.WaitGroup
		freed    = make(chan struct{}, concurrency)
		lastSwep time.Time
		lastHeal time.Time
		healing  atomic.Bool // a heal sweep is under way
		mu       sync.Mutex
		busy     = map[string]bool{} // the deployments this worker runs an operation of
	)
	// claim marks a deployment busy unless it is; release undoes it.
	claim := func(stack string) bool {
		mu.Lock()
		defer mu.Unlock()
		if busy[stack] {
			return false
		}
		busy[stack] = true
		return true
	}
	release := func(stack string) {
		mu.Lock()
		delete(busy, stack)
		mu.Unlock()
	}
	running := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(busy)
	}
	start := func(op, stack string, run func() error) {
		mu.Lock()
		busy[stack] = true
		mu.Unlock()
		stats.InFlight.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := run()
			mu.Lock()
			delete(busy, stack)
			mu.Unlock()
			stats.ended(op, err)
			stats.InFlight.Add(-1)
			freed <- struct{}{}
		}()
	}
	for ctx.Err() == nil {
		now := d.Now()
		if now.Sub(lastSwep) >= staleEvery {
			d.SweepStuck(ctx)
			lastSwep = now
		}
		if healEvery > 0 && now.Sub(lastHeal) >= healEvery && healing.CompareAndSwap(false, true) {
			lastHeal = now
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer healing.Store(false)
				w.healSweep(ctx, concurrency, stats, claim, release)
			}()
		}
		claimed, err := w.journal.ClaimStale(ctx, w.owner, d.Target(), now, now.Add(d.LeaseTTL()), concurrency-running())
		if err != nil && ctx.Err() == nil {
			d.Warn("", "the worker's sweep: %v", err)
		}
		for _, r := range claimed {
			start(r.Operation, r.Stack, func() error { return w.takeOver(ctx, r) })
		}
		requests, err := w.journal.TakeRequests(ctx, w.owner, d.Target(), now, concurrency-running())
		if err != nil && ctx.Err() == nil {
			d.Warn("", "the worker's sweep: %v", err)
		}
		if err == nil {
			stats.healthy.Store(d.Now().UnixMilli())
		}
		for _, q := range requests {
			mu.Lock()
			mine := busy[q.Stack]
			mu.Unlock()
			if mine {
				// This worker is taking the deployment over: the request waits for that.
				_ = w.journal.Requeue(ctx, q.ID, w.owner)
				continue
			}
			start(q.Operation, q.Stack, func() error { return w.serve(ctx, q) })
		}
		w.requeueOrphans(ctx)
		select {
		case <-ctx.Done():
		case <-freed:
		case <-time.After(poll):
		}
	}
	d.Note("", "worker %s stopping: %d operations in flight are interrupted and left to the next worker", w.owner, running())
	wg.Wait()
	return nil
}

// healSweep checks the host of each deployment HealDue names that this worker runs nothing of,
// concurrency at a time, and heals those whose host is gone (Heal, under the deployment's
// lease, with the backoff of a failed heal). A heal cut short (its operation unfinished) is left
// to the takeovers, which continue it. A check that finds the host running is no operation; a
// heal, done or failed, is counted as one.
func (w *worker) healSweep(ctx context.Context, concurrency int, stats *Stats, claim func(string) bool, release func(string)) {
	due, err := w.d.HealDue(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.d.Warn("", "the worker's heal sweep: %v", err)
		}
		return
	}
	slots := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for _, r := range due {
		stack := r.Stack
		finished := !r.Interrupted && (r.Status == journal.Ready || r.Status == journal.Error)
		if ctx.Err() != nil || !finished || !claim(stack) {
			continue
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			defer release(stack)
			res, err := w.d.Heal(ctx, stack)
			if err != nil || res != nil && res.Healed {
				stats.ended("heal", err)
			}
		}()
	}
	wg.Wait()
}

// takeOver continues a deployment a sweep claimed from a dead owner, and finishes the request
// that owner was running for it. Stopped (SIGTERM) before the operation ended, it leaves the
// request running: the deployment is still to continue (interrupted, or its claim given back),
// and the worker that continues it finishes the request.
func (w *worker) takeOver(ctx context.Context, r journal.Record) error {
	_, err := w.d.TakeOver(ctx, r)
	if err != nil && ctx.Err() != nil {
		return err
	}
	if err != nil && !cutOff(err) {
		// Nobody else says it: the next sweep claims the deployment again.
		w.d.Warn(r.Stack, "the takeover of %s failed: %v", r.Stack, err)
	}
	w.finishRequests(r.Stack, err)
	return err
}

// serve runs a request this worker took. One that cannot begin (a live owner elsewhere holds
// the deployment, or the worker is being stopped) is queued again for later or for another
// worker; otherwise how it ended is recorded.
func (w *worker) serve(ctx context.Context, q journal.Request) error {
	err := w.runRequest(ctx, q)
	var (
		held        *journal.LeaseHeldError
		interrupted *automation.InterruptedError
	)
	switch {
	case errors.As(err, &held):
		w.d.Note(q.Stack, "request %s waits: %v", q.ID, err)
		_ = w.journal.Requeue(context.Background(), q.ID, w.owner)
		return nil
	case err != nil && ctx.Err() != nil && !errors.As(err, &interrupted):
		// Stopped (SIGTERM) before its operation began: another worker runs it.
		_ = w.journal.Requeue(context.Background(), q.ID, w.owner)
		return nil
	}
	w.finishRequests(q.Stack, err)
	return err
}

// finishRequests records how the requests running for stack ended, unless the operation was
// interrupted: then it goes on elsewhere, and whoever finishes it records them.
func (w *worker) finishRequests(stack string, err error) {
	if cutOff(err) {
		return
	}
	if ferr := w.journal.FinishRequests(context.Background(), stack, w.d.Now(), err); ferr != nil {
		w.d.Warn(stack, "recording how the requests of %s ended: %v", stack, ferr)
	}
}

// cutOff reports whether err ended an operation before it finished, leaving it to go on
// elsewhere: interrupted (a signal), or its lease lost to another owner.
func cutOff(err error) bool {
	var (
		interrupted *automation.InterruptedError
		lost        *automation.LeaseLostError
	)
	return errors.As(err, &interrupted) || errors.As(err, &lost)
}

// requeueOrphans puts back in the queue a request whose worker took it and died before its
// operation was recorded as begun (it may have taken the deployment's lease already): nobody
// live holds the deployment and the takeover would not continue anything. A request whose
// operation began is finished by the worker that takes the deployment over.
func (w *worker) requeueOrphans(ctx context.Context) {
	requests, err := w.journal.Requests(ctx)
	if err != nil {
		return
	}
	now := w.d.Now()
	for _, q := range requests {
		if q.State != journal.RequestRunning || q.Owner == w.owner || now.Sub(q.Taken) < w.d.LeaseTTL() {
			continue
		}
		r, err := w.journal.Get(ctx, q.Stack)
		switch {
		case err == nil && (r.Leased(now) || journal.Unfinished(r)):
			continue // someone holds it, or the takeover continues its operation and finishes the request
		case err != nil && !errors.Is(err, journal.ErrNotFound):
			continue
		}
		if err := w.journal.Requeue(ctx, q.ID, q.Owner); err == nil {
			w.d.Note(q.Stack, "request %s was taken by %s, which never began it: queued again", q.ID, q.Owner)
		}
	}
}

// requestOptions are a request's operation options.
type requestOptions struct {
	Retry    bool     `json:"retry,omitempty"`
	Rollback bool     `json:"rollback,omitempty"`
	Replace  []string `json:"replace,omitempty"`
	// RefreshImage is up --refresh-image.
	RefreshImage bool `json:"refreshImage,omitempty"`
}

// requestConfig is a request's configuration: plain values as given, secrets encrypted as the
// stack's are (the passphrase secrets provider's AES-256-GCM, keyed from PULUMI_CONFIG_PASSPHRASE
// with a salt of the request's own).
type requestConfig struct {
	Values  map[string]string `json:"values,omitempty"`
	Salt    string            `json:"salt,omitempty"`
	Secrets map[string]string `json:"secrets,omitempty"`
}

// Enqueue queues an up or a destroy of stack for the workers, after checking it as the
// operation would (bad input is refused here, exit 2, nothing queued), and returns the request.
func Enqueue(ctx context.Context, d *automation.Driver, stack, operation string, opts *automation.UpOptions) (journal.Request, error) {
	if err := automation.CheckStackName(stack); err != nil {
		return journal.Request{}, err
	}
	if opts == nil {
		opts = &automation.UpOptions{}
	}
	if operation == automation.OpUp {
		if err := d.CheckConfig(ctx, stack, opts.Config); err != nil {
			return journal.Request{}, err
		}
	}
	if err := d.CheckTarget(ctx, stack); err != nil {
		return journal.Request{}, err
	}
	cfg := requestConfig{Values: opts.Config.Values}
	if len(opts.Config.Secrets) > 0 {
		crypter, salt, err := requestCrypter(d, nil)
		if err != nil {
			return journal.Request{}, err
		}
		cfg.Salt, cfg.Secrets = base64.StdEncoding.EncodeToString(salt), map[string]string{}
		for k, v := range opts.Config.Secrets {
			if cfg.Secrets[k], err = crypter.EncryptValue(ctx, v); err != nil {
				return journal.Request{}, fmt.Errorf("encrypting the secret %s: %w", k, err)
			}
		}
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	options, _ := json.Marshal(requestOptions{Retry: opts.Retry, Rollback: opts.Rollback, Replace: opts.Replace, RefreshImage: opts.RefreshImage})
	config, _ := json.Marshal(cfg)
	q := journal.Request{ID: d.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(id), Stack: stack, Target: d.Target(),
		Operation: operation, Options: string(options), Config: string(config)}
	if err := d.Journal().Enqueue(ctx, q, d.Now()); err != nil {
		return journal.Request{}, err
	}
	d.Note(stack, "queued request %s: %s of %s, for the workers", q.ID, operation, stack)
	return q, nil
}

// requestCrypter returns the crypter of a request's secrets: the passphrase's, with salt (a new
// one when nil).
func requestCrypter(d *automation.Driver, salt []byte) (config.Crypter, []byte, error) {
	phrase, err := passphrase(d)
	if err != nil {
		return nil, nil, err
	}
	if salt == nil {
		salt = make([]byte, 8)
		_, _ = rand.Read(salt)
	}
	return config.NewSymmetricCrypterFromPassphrase(phrase, salt), salt, nil
}

// passphrase is PULUMI_CONFIG_PASSPHRASE, or the contents of PULUMI_CONFIG_PASSPHRASE_FILE.
func passphrase(d *automation.Driver) (string, error) {
	if v, ok := d.LookupEnv("PULUMI_CONFIG_PASSPHRASE"); ok {
		return v, nil
	}
	if f, ok := d.LookupEnv("PULUMI_CONFIG_PASSPHRASE_FILE"); ok {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("reading PULUMI_CONFIG_PASSPHRASE_FILE: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", &automation.UsageError{Err: errors.New("PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) is not set: a request's secrets are encrypted with it")}
}

// runRequest runs a queued request as its command would.
func (w *worker) runRequest(ctx context.Context, q journal.Request) error {
	var (
		opts requestOptions
		cfg  requestConfig
	)
	if q.Options != "" {
		if err := json.Unmarshal([]byte(q.Options), &opts); err != nil {
			return fmt.Errorf("request %s: its options are not JSON: %w", q.ID, err)
		}
	}
	if q.Config != "" {
		if err := json.Unmarshal([]byte(q.Config), &cfg); err != nil {
			return fmt.Errorf("request %s: its config is not JSON: %w", q.ID, err)
		}
	}
	in := automation.ConfigInput{Values: cfg.Values}
	if len(cfg.Secrets) > 0 {
		salt, err := base64.StdEncoding.DecodeString(cfg.Salt)
		if err != nil {
			return fmt.Errorf("request %s: its salt: %w", q.ID, err)
		}
		crypter, _, err := requestCrypter(w.d, salt)
		if err != nil {
			return err
		}
		in.Secrets = map[string]string{}
		for k, v := range cfg.Secrets {
			if in.Secrets[k], err = crypter.DecryptValue(ctx, v); err != nil {
				return fmt.Errorf("request %s: decrypting the secret %s (is this worker's PULUMI_CONFIG_PASSPHRASE the one it was queued with?): %w", q.ID, k, err)
			}
		}
	}
	w.d.Note(q.Stack, "running request %s: %s of %s", q.ID, q.Operation, q.Stack)
	switch q.Operation {
	case automation.OpUp:
		_, err := w.d.Up(ctx, q.Stack, &automation.UpOptions{Config: in, Retry: opts.Retry, Rollback: opts.Rollback, Replace: opts.Replace,
			RefreshImage: opts.RefreshImage})
		return err
	case automation.OpDestroy:
		_, err := w.d.Destroy(ctx, q.Stack)
		return err
	}
	return fmt.Errorf("request %s: no operation %q (up or destroy)", q.ID, q.Operation)
}
