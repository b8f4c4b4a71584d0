package automation_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/internal/pgtest"
	"github.com/clawdeploy/clawdeploy/internal/simprovider"
	"github.com/clawdeploy/clawdeploy/journal"
	"github.com/clawdeploy/clawdeploy/targets/ec2spot"
)

// BenchmarkTakeover measures how long after a worker's death its deployments are taken over, as
// a multiple of the lease TTL (the floor: a lease outlives its last renewal by at most the TTL).
// Two workers on hosts of their own, a PostgreSQL journal, an S3 backend; the one killed runs two
// operations.
func BenchmarkTakeover(b *testing.B) {
	const ttl = 3 * time.Second
	var ratios []float64
	for range b.N {
		f := newFleet(b, ttl)
		control(b, f.sim, simprovider.Control{DefaultDelay: "400ms"})
		stacks := []string{"t-0", "t-1", "t-2", "t-3"}
		f.enqueue(b, stacks)
		dead := f.worker(b, "host-a", "--concurrency", "2", "--poll", "200ms")
		for len(stacksIn(dead)) < 2 {
			time.Sleep(20 * time.Millisecond)
		}
		held := stacksIn(dead)
		killed := time.Now()
		_ = syscall.Kill(-dead.cmd.Process.Pid, syscall.SIGKILL)
		dead.wait(time.Minute)
		heir := f.worker(b, "host-b", "--concurrency", "4", "--poll", "200ms")
		var last time.Time
		for _, s := range held {
			e := heir.waitFor("the takeover of "+s, func(e Event) bool { return e.Stack == s && strings.HasPrefix(e.TakenFrom, "host-a/") })
			if e.Time.After(last) {
				last = e.Time
			}
		}
		ratios = append(ratios, last.Sub(killed).Seconds()/ttl.Seconds())
		f.awaitReady(b, stacks, 5*time.Minute)
		_ = syscall.Kill(heir.cmd.Process.Pid, syscall.SIGTERM)
		heir.wait(time.Minute)
	}
	sum := 0.0
	for _, r := range ratios {
		sum += r
	}
	b.ReportMetric(sum/float64(len(ratios)), "TTLs/takeover")
}

// BenchmarkClaims measures the sweep of abandoned deployments on PostgreSQL: claims per second of
// one worker alone (the baseline), then of three sweeping at once (FOR UPDATE SKIP LOCKED), and
// their ratio. Each claim takes up to four deployments, as a worker with four free slots does.
func BenchmarkClaims(b *testing.B) {
	pg, err := pgtest.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer pg.Stop()
	const deployments = 600
	rate := func(workers int) float64 {
		dsn, err := pg.NewDatabase("claims")
		if err != nil {
			b.Fatal(err)
		}
		seed, err := journal.OpenPostgres(context.Background(), dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = seed.Close() }()
		t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
		for i := range deployments {
			stack := fmt.Sprintf("d-%04d", i)
			if _, err := seed.Ensure(context.Background(), stack, ec2spot.Name, t0); err != nil {
				b.Fatal(err)
			}
			if _, err := seed.Acquire(context.Background(), stack, "dead", t0, t0.Add(time.Second), nil); err != nil {
				b.Fatal(err)
			}
			up := OpUp
			if _, err := seed.Update(context.Background(), stack, "dead", t0, journal.Change{Operation: &up, Status: ptrStatus(journal.Provisioning)}); err != nil {
				b.Fatal(err)
			}
		}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			total int
		)
		start := time.Now()
		for w := range workers {
			j, err := journal.OpenPostgres(context.Background(), dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = j.Close() }()
			wg.Add(1)
			go func() {
				defer wg.Done()
				now := t0.Add(time.Hour)
				for {
					got, err := j.ClaimStale(context.Background(), fmt.Sprintf("w%d", w), "", now, now.Add(time.Hour), 4)
					if err != nil {
						b.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					total += len(got)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if total != deployments {
			b.Fatalf("%d workers claimed %d of %d deployments", workers, total, deployments)
		}
		return float64(total) / time.Since(start).Seconds()
	}
	oneAndThree(b, rate, "claims/s")
}

// oneAndThree reports measure with one worker (the baseline) and with three, averaged over b.N,
// and their ratio.
func oneAndThree(b *testing.B, measure func(workers int) float64, unit string) {
	var one, three float64
	for range b.N {
		one += measure(1)
		three += measure(3)
	}
	b.ReportMetric(one/float64(b.N), unit+"-1worker")
	b.ReportMetric(three/float64(b.N), unit+"-3workers")
	b.ReportMetric(three/one, "ratio-3:1")
}

func ptrStatus(s journal.Status) *journal.Status { return &s }

// BenchmarkThroughput measures deployments per hour through the simulated provider on this
// machine: twelve queued ups run by one worker (the baseline), then by three, and their ratio.
func BenchmarkThroughput(b *testing.B) {
	perHour := func(workers int) float64 {
		f := newFleet(b, 10*time.Second)
		stacks := make([]string, 12)
		for i := range stacks {
			stacks[i] = fmt.Sprintf("tp-%02d", i)
		}
		f.enqueue(b, stacks)
		start := time.Now()
		var procs []*proc
		for i := range workers {
			procs = append(procs, f.worker(b, fmt.Sprintf("host-%d", i), "--concurrency", "2", "--poll", "200ms"))
		}
		f.awaitReady(b, stacks, 20*time.Minute)
		elapsed := time.Since(start)
		for _, p := range procs {
			_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
			p.wait(time.Minute)
		}
		return float64(len(stacks)) / elapsed.Hours()
	}
	oneAndThree(b, perHour, "deploys/h")
}
