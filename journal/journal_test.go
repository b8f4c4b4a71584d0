package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clawdeploy/clawdeploy/internal/pgtest"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// engine is a database the journal runs on: the suite runs unchanged on each.
type engine struct {
	name string
	// driver is database/sql's name of its driver.
	driver string
	// fresh returns where a new, empty journal is: a file's path, or a database's URL.
	fresh func(t *testing.T) string
}

// pg is the PostgreSQL server of the package's tests (TestMain starts it); pgErr says why it
// is not there.
var (
	pg    *pgtest.Server
	pgErr error
)

var engines = []engine{
	{name: "sqlite", driver: "sqlite", fresh: func(t *testing.T) string { return filepath.Join(t.TempDir(), "journal.db") }},
	{name: "postgres", driver: "pgx", fresh: func(t *testing.T) string {
		t.Helper()
		if pg == nil {
			t.Fatalf("no PostgreSQL server for the shared journal's tests: %v", pgErr)
		}
		url, err := pg.NewDatabase("journal")
		if err != nil {
			t.Fatal(err)
		}
		return url
	}},
}

// eachEngine runs test on every engine, in parallel.
func eachEngine(t *testing.T, test func(t *testing.T, e engine)) {
	t.Helper()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			test(t, e)
		})
	}
}

// openAt opens the journal at a file's path or a database's URL.
func openAt(ctx context.Context, at string) (*SQL, error) {
	if strings.HasPrefix(at, "postgres://") {
		return OpenPostgres(ctx, at)
	}
	return OpenSQLite(ctx, at)
}

func open(t *testing.T, at string) *SQL {
	t.Helper()
	j, err := openAt(t.Context(), at)
	if err != nil {
		t.Fatalf("opening %s: %v", at, err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func status(s Status) *Status { return &s }
func str(s string) *string    { return &s }

func TestLifecycle(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, e engine) {
		ctx := t.Context()
		j := open(t, e.fresh(t))
		if _, err := j.Get(ctx, "dev"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get of an unknown stack: %v", err)
		}
		r, err := j.Ensure(ctx, "dev", "ec2-spot", t0)
		if err != nil || r.Status != Pending || r.Target != "ec2-spot" || !r.Created.Equal(t0) {
			t.Fatalf("Ensure: %+v %v", r, err)
		}
		if again, err := j.Ensure(ctx, "dev", "vps", t0.Add(time.Minute)); err != nil || again.Target != "ec2-spot" || !again.Created.Equal(t0) {
			t.Errorf("a second Ensure changed the record: %+v %v", again, err)
		}

		// Updates need the lease.
		if _, err := j.Update(ctx, "dev", "a", t0, Change{Status: status(Provisioning)}); !isHeld(err) {
			t.Errorf("update without the lease: %v", err)
		}
		if _, err := j.Acquire(ctx, "dev", "a", t0, t0.Add(30*time.Second), nil); err != nil {
			t.Fatal(err)
		}
		r, err = j.Update(ctx, "dev", "a", t0.Add(time.Second), Change{
			Status: status(Provisioning), Stage: str("network_ready"), Operation: str("up"), AddAttempt: true,
		})
		if err != nil || r.Status != Provisioning || r.Stage != "network_ready" || r.Attempts != 1 || r.Operation != "up" {
			t.Fatalf("update: %+v %v", r, err)
		}
		// The same change again is harmless.
		if _, err := j.Update(ctx, "dev", "a", t0.Add(2*time.Second), Change{Status: status(Provisioning)}); err != nil {
			t.Errorf("repeating a transition: %v", err)
		}
		// The last good image and the checkpoint are kept as given, and left alone by other changes.
		if _, err := j.Update(ctx, "dev", "a", t0.Add(2*time.Second), Change{LastGoodImage: str("ghcr.io/openclaw/openclaw:2026.2.26"),
			Checkpoint: str(`{"snapshot":"snap-1"}`), HostOrder: str(`{"cartId":"c-1"}`)}); err != nil {
			t.Fatal(err)
		}
		if _, err := j.Update(ctx, "dev", "a", t0.Add(2*time.Second), Change{Stage: str("network_ready")}); err != nil {
			t.Fatal(err)
		}
		if got, _ := j.Get(ctx, "dev"); got.LastGoodImage != "ghcr.io/openclaw/openclaw:2026.2.26" || got.Checkpoint != `{"snapshot":"snap-1"}` ||
			got.HostOrder != `{"cartId":"c-1"}` {
			t.Errorf("last good image %q, checkpoint %q, host order %q", got.LastGoodImage, got.Checkpoint, got.HostOrder)
		}
		// The replacements an up was asked for, kept until they are cleared.
		replacing := []Replacement{{URN: "urn:pulumi:dev::openclaw::aws:ebs/volume:Volume::data", ID: "vol-1"}, {URN: "urn:x"}}
		if _, err := j.Update(ctx, "dev", "a", t0.Add(2*time.Second), Change{Replacing: &replacing}); err != nil {
			t.Fatal(err)
		}
		if got, _ := j.Get(ctx, "dev"); !slices.Equal(got.Replacing, replacing) {
			t.Errorf("replacing %+v, want %+v", got.Replacing, replacing)
		}
		if got, _ := j.Update(ctx, "dev", "a", t0.Add(2*time.Second), Change{Replacing: &[]Replacement{}}); got.Replacing != nil {
			t.Errorf("replacing after clearing: %+v", got.Replacing)
		}
		// A host being ordered: PROVISIONING → ORDERING → PROVISIONING.
		for _, to := range []Status{Ordering, Provisioning} {
			if _, err := j.Update(ctx, "dev", "a", t0.Add(2*time.Second), Change{Status: status(to)}); err != nil {
				t.Errorf("→ %s: %v", to, err)
			}
		}
		var terr *TransitionError
		if _, err := j.Update(ctx, "dev", "a", t0, Change{Status: status(Destroyed)}); !errors.As(err, &terr) {
			t.Errorf("PROVISIONING → DESTROYED: %v", err)
		}
		got, _ := j.Get(ctx, "dev")
		if got.Status != Provisioning || got.Stage != "network_ready" {
			t.Errorf("a refused transition changed the record: %+v", got)
		}
		if err := j.Release(ctx, "dev", "a", t0); err != nil {
			t.Fatal(err)
		}
		if r, _ := j.Get(ctx, "dev"); r.LeaseOwner != "" || r.Leased(t0) {
			t.Errorf("lease after release: %+v", r)
		}
	})
}

func isHeld(err error) bool {
	var held *LeaseHeldError
	return errors.As(err, &held)
}

func TestLease(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, e engine) {
		ctx := t.Context()
		j := open(t, e.fresh(t))
		if _, err := j.Ensure(ctx, "dev", "ec2-spot", t0); err != nil {
			t.Fatal(err)
		}
		if _, err := j.Acquire(ctx, "dev", "a", t0, t0.Add(30*time.Second), nil); err != nil {
			t.Fatal(err)
		}
		_, err := j.Acquire(ctx, "dev", "b", t0.Add(10*time.Second), t0.Add(40*time.Second), nil)
		var held *LeaseHeldError
		if !errors.As(err, &held) || held.Owner != "a" || !held.Expires.Equal(t0.Add(30*time.Second)) {
			t.Fatalf("a live lease was taken: %v", err)
		}
		if !strings.Contains(err.Error(), "held by a until 2026-11-22T10:00:30Z") {
			t.Errorf("message: %v", err)
		}
		// The holder renews; someone else cannot.
		if err := j.Renew(ctx, "dev", "a", t0.Add(20*time.Second), t0.Add(50*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := j.Renew(ctx, "dev", "b", t0, t0.Add(time.Hour)); !isHeld(err) {
			t.Errorf("renewal by a non-holder: %v", err)
		}
		// A provably dead holder is replaced at once.
		dead := func(owner string) bool { return owner == "a" }
		if r, err := j.Acquire(ctx, "dev", "b", t0.Add(21*time.Second), t0.Add(51*time.Second), dead); err != nil || r.LeaseOwner != "a" {
			t.Fatalf("taking a dead owner's lease: %+v %v (want it taken from a)", r, err)
		}
		// An expired lease is free.
		if r, err := j.Acquire(ctx, "dev", "c", t0.Add(52*time.Second), t0.Add(82*time.Second), nil); err != nil || r.LeaseOwner != "b" {
			t.Fatalf("taking an expired lease: %+v %v (want it taken from b)", r, err)
		}
		if r, _ := j.Get(ctx, "dev"); r.LeaseOwner != "c" || !r.LeaseExpires.Equal(t0.Add(82*time.Second)) {
			t.Fatalf("after c took it: %+v", r)
		}
		// A released lease was taken from nobody.
		if err := j.Release(ctx, "dev", "c", t0.Add(53*time.Second)); err != nil {
			t.Fatal(err)
		}
		if r, err := j.Acquire(ctx, "dev", "c", t0.Add(54*time.Second), t0.Add(84*time.Second), nil); err != nil || r.LeaseOwner != "" {
			t.Fatalf("taking a released lease: %+v %v (want it taken from nobody)", r, err)
		}
		// Releasing someone else's lease does nothing.
		if err := j.Release(ctx, "dev", "a", t0.Add(53*time.Second)); err != nil {
			t.Fatal(err)
		}
		if r, _ := j.Get(ctx, "dev"); r.LeaseOwner != "c" {
			t.Errorf("lease owner after a foreign release: %s", r.LeaseOwner)
		}
		// None of it was news: the deployment's last news is still its creation. An update is.
		if r, _ := j.Get(ctx, "dev"); !r.LastNews().Equal(t0) || !r.Updated.After(t0) {
			t.Errorf("after leases taken, renewed and released: news %s, updated %s; want news %s", r.LastNews(), r.Updated, t0)
		}
		if r, err := j.Update(ctx, "dev", "c", t0.Add(55*time.Second), Change{Stage: str("network_ready")}); err != nil || !r.LastNews().Equal(t0.Add(55*time.Second)) {
			t.Errorf("after an update: news %s, %v", r.LastNews(), err)
		}
		if err := j.Release(ctx, "dev", "c", t0.Add(56*time.Second)); err != nil {
			t.Fatal(err)
		}
		if r, _ := j.Get(ctx, "dev"); !r.LastNews().Equal(t0.Add(55 * time.Second)) {
			t.Errorf("after the update and a release: news %s", r.LastNews())
		}
	})
}

func TestConcurrentAcquireHasOneWinner(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, e engine) {
		path := e.fresh(t)
		if _, err := open(t, path).Ensure(t.Context(), "dev", "ec2-spot", t0); err != nil {
			t.Fatal(err)
		}
		const n = 20
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins []string
		)
		start := make(chan struct{})
		for i := range n {
			j := open(t, path) // a handle each, as separate processes have
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				owner := fmt.Sprintf("owner-%d", i)
				if _, err := j.Acquire(context.Background(), "dev", owner, t0, t0.Add(time.Minute), nil); err == nil {
					mu.Lock()
					wins = append(wins, owner)
					mu.Unlock()
				} else if !isHeld(err) {
					t.Errorf("%s: %v", owner, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(wins) != 1 {
			t.Errorf("winners = %v, want exactly one", wins)
		}
	})
}

// TestMain lets the test binary act as a separate process on a journal, for the tests below.
func TestMain(m *testing.M) {
	if path := os.Getenv("JOURNAL_CHILD_ACQUIRE"); path != "" {
		j, err := openAt(context.Background(), path)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		owner := fmt.Sprintf("pid-%d", os.Getpid())
		if _, err := j.Acquire(context.Background(), "dev", owner, t0, t0.Add(time.Minute), nil); err != nil {
			fmt.Println("held")
			os.Exit(0)
		}
		fmt.Println("won")
		os.Exit(0)
	}
	if path := os.Getenv("JOURNAL_CHILD_CHURN"); path != "" {
		j, err := openAt(context.Background(), path)
		if err != nil {
			os.Exit(2)
		}
		owner := "churner"
		if _, err := j.Acquire(context.Background(), "dev", owner, t0, t0.Add(time.Hour), nil); err != nil {
			os.Exit(2)
		}
		fmt.Println("ready")
		for i := 0; ; i++ {
			stage := "stage-" + strconv.Itoa(i)
			st := Provisioning
			if i%2 == 1 {
				st = Installing
			}
			if _, err := j.Update(context.Background(), "dev", owner, t0, Change{Status: &st, Stage: &stage, AddAttempt: true}); err != nil {
				os.Exit(3)
			}
		}
	}
	pg, pgErr = pgtest.Start()
	code := m.Run()
	if pg != nil {
		pg.Stop()
	}
	os.Exit(code)
}

func TestProcessesRacingForALeaseHaveOneWinner(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, e engine) {
		path := e.fresh(t)
		if _, err := open(t, path).Ensure(t.Context(), "dev", "ec2-spot", t0); err != nil {
			t.Fatal(err)
		}
		const n = 8
		outs := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), "JOURNAL_CHILD_ACQUIRE="+path)
				out, err := cmd.Output()
				if err != nil {
					t.Errorf("child: %v %s", err, out)
				}
				outs[i] = strings.TrimSpace(string(out))
			}()
		}
		wg.Wait()
		won := 0
		for _, o := range outs {
			switch o {
			case "won":
				won++
			case "held":
			default:
				t.Errorf("child said %q", o)
			}
		}
		if won != 1 {
			t.Errorf("%d processes won the lease, want 1: %v", won, outs)
		}
	})
}

// TestKilledWriterLeavesAReadableJournal kills a process in the middle of a stream of updates,
// ten times: each time the record reads back whole and the database passes its integrity check.
func TestKilledWriterLeavesAReadableJournal(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, e engine) {
		path := e.fresh(t)
		if _, err := open(t, path).Ensure(t.Context(), "dev", "ec2-spot", t0); err != nil {
			t.Fatal(err)
		}
		for round := 1; round <= 10; round++ {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "JOURNAL_CHILD_CHURN="+path)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 6)
			if _, err := out.Read(buf); err != nil {
				t.Fatalf("round %d: child did not start: %v", round, err)
			}
			time.Sleep(time.Duration(20+round*15) * time.Millisecond)
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()

			j := open(t, path)
			if e.name == "sqlite" {
				var check string
				if err := j.db.QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
					t.Fatalf("round %d: integrity_check = %q %v", round, check, err)
				}
			}
			r, err := j.Get(t.Context(), "dev")
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			// Status and stage are written together: an odd stage number always goes with INSTALLING.
			n, _ := strconv.Atoi(strings.TrimPrefix(r.Stage, "stage-"))
			if want := map[bool]Status{true: Installing, false: Provisioning}[n%2 == 1]; r.Stage != "" && r.Status != want {
				t.Errorf("round %d: torn record %+v", round, r)
			}
			// Free the lease for the next churner.
			if err := j.Release(t.Context(), "dev", "churner", t0); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestDialectPlaceholders(t *testing.T) {
	t.Parallel()
	j := &SQL{dialect: Postgres}
	if got := j.q("UPDATE d SET a = ? WHERE b = ? AND c = ?"); got != "UPDATE d SET a = $1 WHERE b = $2 AND c = $3" {
		t.Errorf("postgres: %s", got)
	}
	j.dialect = SQLite
	if got := j.q("a = ?"); got != "a = ?" {
		t.Errorf("sqlite: %s", got)
	}
}

func TestTransitions(t *testing.T) {
	t.Parallel()
	allowed := [][2]Status{
		{Pending, Provisioning}, {Provisioning, Installing}, {Installing, Ready}, {Ready, Provisioning},
		{Error, Provisioning}, {Ready, Destroying}, {Destroying, Destroyed}, {Destroyed, Provisioning},
		{Installing, Error}, {Ready, Ready},
	}
	for _, p := range allowed {
		if !CanMove(p[0], p[1]) {
			t.Errorf("%s → %s refused", p[0], p[1])
		}
	}
	refused := [][2]Status{{Pending, Ready}, {Destroyed, Ready}, {Ready, Installing}, {Destroying, Provisioning}, {Error, Ready}}
	for _, p := range refused {
		if CanMove(p[0], p[1]) {
			t.Errorf("%s → %s allowed", p[0], p[1])
		}
	}
}

// TestSQLiteOpensByPath opens journals in directories whose names read as URL syntax (a ?, a #,
// a %): each journal is the file at its path, never another, and every connection of the pool
// runs in WAL mode with full synchronous writes.
func TestSQLiteOpensByPath(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"plain", "state?mode=memory", "a#b", "100%25", "spa ce"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), name)
			path := filepath.Join(dir, "journal.db")
			j := open(t, path)
			if _, err := j.Ensure(t.Context(), "dev", "ec2-spot", t0); err != nil {
				t.Fatal(err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if !slices.Contains(names, "journal.db") || !slices.Contains(names, "journal.db-wal") {
				t.Errorf("the directory holds %v, want journal.db and its WAL", names)
			}
			// Several connections at once, so that each one's settings are seen.
			conns := make([]*sql.Conn, 3)
			for i := range conns {
				c, err := j.db.Conn(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = c.Close() }()
				conns[i] = c
			}
			for i, c := range conns {
				var mode string
				var sync int
				if err := c.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil {
					t.Fatal(err)
				}
				if err := c.QueryRowContext(t.Context(), "PRAGMA synchronous").Scan(&sync); err != nil {
					t.Fatal(err)
				}
				if mode != "wal" || sync != 2 {
					t.Errorf("connection %d: journal_mode %s, synchronous %d; want wal and 2 (FULL)", i, mode, sync)
				}
			}
		})
	}
}

// TestMigratesAnOlderJournal opens a journal made before the schema had versions (only the
// first table), from several processes' worth of connections at once: the record it held
// survives, the new fields read as none, and the schema is at the current version once.
func TestMigratesAnOlderJournal(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, e engine) {
		path := e.fresh(t)
		at := path
		if e.name == "sqlite" {
			at = "file:" + path
		}
		old, err := sql.Open(e.driver, at)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := old.Exec(migrations[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := old.Exec(`INSERT INTO deployments (stack, target, status, created_ms, updated_ms) VALUES ('dev', 'ec2-spot', 'READY', 1, 2)`); err != nil {
			t.Fatal(err)
		}
		_ = old.Close()

		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				j, err := openAt(t.Context(), path)
				if err == nil {
					_ = j.Close()
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("opening while others migrate: %v", err)
			}
		}
		j := open(t, path)
		r, err := j.Get(t.Context(), "dev")
		if err != nil || r.Status != Ready || r.Interruptions != 0 || !r.InterruptedAt.IsZero() || !r.HealAfter.IsZero() ||
			!r.News.IsZero() || !r.LastNews().Equal(time.UnixMilli(2)) || r.Replacing != nil {
			t.Errorf("the older record reads %+v, %v", r, err)
		}
		var version, rows int
		if err := j.db.QueryRow(`SELECT version, (SELECT COUNT(*) FROM schema_version) FROM schema_version`).Scan(&version, &rows); err != nil ||
			version != len(migrations) || rows != 1 {
			t.Errorf("schema version %d in %d rows (%v), want %d in 1", version, rows, err, len(migrations))
		}
	})
}

// TestInterruptionAndRecovery records a host taken away, a failed heal, and the READY that ends
// it: the count, the time, the instance, the backoff, and the downtime.
func TestInterruptionAndRecovery(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, e engine) {
		ctx := t.Context()
		j := open(t, e.fresh(t))
		if _, err := j.Ensure(ctx, "dev", "ec2-spot", t0); err != nil {
			t.Fatal(err)
		}
		if _, err := j.Acquire(ctx, "dev", "me", t0, t0.Add(time.Hour), nil); err != nil {
			t.Fatal(err)
		}
		step := func(at time.Time, c Change) Record {
			t.Helper()
			r, err := j.Update(ctx, "dev", "me", at, c)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		step(t0, Change{Status: status(Provisioning)})
		step(t0, Change{Status: status(Ready)})
		lost := t0.Add(time.Hour)
		r := step(lost, Change{Status: status(HostLost), Interruption: &Interruption{At: lost, Host: "i-0abc"}})
		if r.Interruptions != 1 || !r.InterruptedAt.Equal(lost) || r.InterruptedHost != "i-0abc" || !r.RecoveredAt.IsZero() {
			t.Errorf("after the interruption: %+v", r)
		}
		retry := lost.Add(2 * time.Minute)
		r = step(lost.Add(time.Minute), Change{Status: status(Error), LastError: str("no capacity"), HealFailed: &retry})
		if r.HealFailures != 1 || !r.HealAfter.Equal(retry) || r.Downtime(lost.Add(time.Minute)) != time.Minute {
			t.Errorf("after a failed heal: %+v, downtime %s", r, r.Downtime(lost.Add(time.Minute)))
		}
		step(retry, Change{Status: status(Provisioning)})
		back := lost.Add(7 * time.Minute)
		r = step(back, Change{Status: status(Ready)})
		if !r.RecoveredAt.Equal(back) || r.Downtime(back.Add(time.Hour)) != 7*time.Minute || r.HealFailures != 0 || !r.HealAfter.IsZero() {
			t.Errorf("after the recovery: %+v, downtime %s", r, r.Downtime(back.Add(time.Hour)))
		}
		if got, _ := j.Get(ctx, "dev"); got.Interruptions != 1 || !got.RecoveredAt.Equal(back) || got.InterruptedHost != "i-0abc" {
			t.Errorf("read back: %+v", got)
		}
	})
}
