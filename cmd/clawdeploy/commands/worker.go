package commands

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"

	"github.com/clawdeploy/clawdeploy/automation"
	"github.com/clawdeploy/clawdeploy/fleet"
	"github.com/clawdeploy/clawdeploy/journal"
)

// Worker runs the long-lived worker of several replicas.
var Worker = &cli.Command{
	Name:      "worker",
	Usage:     "run until SIGTERM: take over deployments whose owner died, run queued requests, heal lost hosts, mark stuck ones ERROR",
	ArgsUsage: " ",
	Description: `The long-running form of resume --all, for several replicas sharing one journal
(--journal postgres://…) and one state backend (--backend s3://…).

At start and every --poll it takes over, at most --concurrency at a time, every
deployment whose operation did not finish and whose owner's lease has expired
(wherever that owner ran: a lease is renewed every third of --lease-ttl, so a dead
host's deployments are taken over one lease TTL after its last renewal), and runs the
queued requests (clawdeploy up|destroy --enqueue, or rows a backend inserts into the
requests table), the requests of one deployment one at a time, in order. It works
on its --target's deployments and requests only (its takeovers, its requests, its
sweeps): run a worker per target on a shared journal. Every minute it marks ERROR
the INSTALLING deployments without news for 45 minutes that no live owner holds.

Every --heal-every (1m; 0: never) it runs the check of heal --all on the deployments
it can lease (READY ones, and ERROR ones whose last heal failed, once their backoff
has passed), --concurrency at a time: a host that runs is left alone; a host that is
gone (a Spot interruption) is brought back under the deployment's lease, as heal
does. With the worker running, no cron line is needed for heal --all.

On SIGTERM it takes no more work and interrupts its operations: each saves its state
within --drain (an engine still running then is killed), is marked interrupted and
its lease ended, so another worker takes it over at once, removing the state lock a
killed engine left; the worker exits when they have.

--listen 127.0.0.1:PORT serves /healthz (200 while the journal answers the sweeps)
and Prometheus /metrics: clawdeploy_deployments{status}, clawdeploy_requests{state},
clawdeploy_operations_in_flight, clawdeploy_takeovers_total,
clawdeploy_operations_total{operation}, clawdeploy_operation_failures_total{operation}.`,
	Flags: []cli.Flag{
		&cli.IntFlag{Name: "concurrency", Usage: "how many operations at once", Value: automation.DefaultConcurrency},
		&cli.DurationFlag{Name: "poll", Usage: "how often to look for work", Value: fleet.DefaultPoll},
		&cli.DurationFlag{Name: "heal-every", Usage: "how often to check the hosts and heal those gone (0: never)", Value: fleet.DefaultHealEvery},
		&cli.StringFlag{Name: "listen", Usage: "serve /healthz and /metrics on this address, like 127.0.0.1:9464"},
	},
	Action: func(cliContext *cli.Context) error {
		if cliContext.Int("concurrency") < 1 {
			return usageError("--concurrency must be 1 or more, got %d", cliContext.Int("concurrency"))
		}
		if p := cliContext.Duration("poll"); p <= 0 {
			return usageError("--poll must be a positive duration like 2s, got %s", p)
		}
		healEvery := cliContext.Duration("heal-every")
		switch {
		case healEvery < 0:
			return usageError("--heal-every must be a duration like 1m, or 0 for never, got %s", healEvery)
		case healEvery == 0:
			healEvery = -1 // never
		}
		var listener net.Listener
		if addr := cliContext.String("listen"); addr != "" {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return usageError("--listen %s: %v", addr, err)
			}
			listener = l
		}
		return withDriver(cliContext, func(d *automation.Driver) error {
			stats := &fleet.Stats{}
			poll := cliContext.Duration("poll")
			if listener != nil {
				srv := &http.Server{Handler: workerHandler(d, stats, poll), ReadHeaderTimeout: 10 * time.Second}
				go func() { _ = srv.Serve(listener) }()
				defer func() { _ = srv.Close() }()
			}
			return fleet.Work(cliContext.Context, d, fleet.Options{
				Concurrency: cliContext.Int("concurrency"), Poll: poll, HealEvery: healEvery, Stats: stats,
			})
		})
	},
}

// workerHandler serves /healthz and /metrics.
func workerHandler(d *automation.Driver, stats *fleet.Stats, poll time.Duration) http.Handler {
	registry := prometheus.NewRegistry()
	registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "clawdeploy_operations_in_flight", Help: "Operations this worker runs now."},
			func() float64 { return float64(stats.InFlight.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "clawdeploy_takeovers_total",
			Help: "Deployments this worker took over from an owner whose lease had expired or whose process was gone."},
			func() float64 { return float64(d.Takeovers()) }),
		&journalCollector{d: d, stats: stats},
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		last := stats.LastSweep()
		if last.IsZero() || time.Since(last) > 3*poll+10*time.Second {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "unhealthy: the journal has not answered a sweep since %s\n", last.UTC().Format(time.RFC3339))
			return
		}
		_, _ = fmt.Fprintf(w, "ok: %s, last sweep %s\n", d.Owner(), last.UTC().Format(time.RFC3339))
	})
	return mux
}

// journalCollector reports what the journal holds (deployments by status, requests by state)
// and the worker's operation counts, read at each scrape.
type journalCollector struct {
	d     *automation.Driver
	stats *fleet.Stats
}

var (
	deploymentsDesc = prometheus.NewDesc("clawdeploy_deployments", "Deployments in the journal, by status.", []string{"status"}, nil)
	requestsDesc    = prometheus.NewDesc("clawdeploy_requests", "Queued operations in the journal, by state.", []string{"state"}, nil)
	operationsDesc  = prometheus.NewDesc("clawdeploy_operations_total", "Operations this worker ended, by operation.", []string{"operation"}, nil)
	failuresDesc    = prometheus.NewDesc("clawdeploy_operation_failures_total", "Operations this worker ended in failure, by operation.", []string{"operation"}, nil)
)

func (c *journalCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- deploymentsDesc
	ch <- requestsDesc
	ch <- operationsDesc
	ch <- failuresDesc
}

func (c *journalCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	counts := map[string]int{}
	for _, s := range []journal.Status{journal.Pending, journal.Provisioning, journal.Ordering, journal.Installing, journal.Ready,
		journal.Error, journal.HostLost, journal.Destroying, journal.Destroyed} {
		counts[string(s)] = 0
	}
	records, err := c.d.Journal().List(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(deploymentsDesc, err)
	}
	for _, r := range records {
		counts[string(r.Status)]++
	}
	for status, n := range counts {
		ch <- prometheus.MustNewConstMetric(deploymentsDesc, prometheus.GaugeValue, float64(n), status)
	}
	states := map[string]int{journal.RequestQueued: 0, journal.RequestRunning: 0, journal.RequestDone: 0, journal.RequestFailed: 0}
	requests, err := c.d.Journal().Requests(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		ch <- prometheus.NewInvalidMetric(requestsDesc, err)
	}
	for _, q := range requests {
		states[q.State]++
	}
	for state, n := range states {
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.GaugeValue, float64(n), state)
	}
	ended, failed := c.stats.Operations()
	for _, op := range []string{automation.OpUp, automation.OpDestroy, automation.OpRefresh} {
		ch <- prometheus.MustNewConstMetric(operationsDesc, prometheus.CounterValue, float64(ended[op]), op)
		ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.CounterValue, float64(failed[op]), op)
	}
}

// enqueue queues an operation for the workers and prints its request: with --json a "request"
// event, then the result line.
func enqueue(cliContext *cli.Context, d *automation.Driver, stack, operation string, opts *automation.UpOptions) error {
	q, err := fleet.Enqueue(cliContext.Context, d, stack, operation, opts)
	if err == nil {
		if cliContext.Bool("json") {
			printEvent("request", stack, struct {
				ID        string `json:"id"`
				Operation string `json:"operation"`
				State     string `json:"state"`
			}{q.ID, q.Operation, journal.RequestQueued})
		} else {
			fmt.Printf("queued request %s: %s of %s\n", q.ID, operation, stack)
		}
	}
	return finish(cliContext, stack, operation+" --enqueue", nil, err)
}
