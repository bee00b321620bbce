// Command usage-bench measures usage-event-service against a naive
// per-event baseline on DynamoDB Local, which it starts itself. It lives in
// the benchmark's own module (internal/dev/bench), so that the service module
// does not carry the chart's dependencies; from the repository root:
//
//	make bench                                                  # default workload, concurrency 8
//	make bench BENCH_FLAGS="--sweep 1,2,4,8,16"                 # one run per concurrency, and a chart
//	make bench BENCH_FLAGS="--rate 400 --batch-size 20,50,100"  # Lambda batch sizes at 400 events/s, and a chart
//	make bench BENCH_FLAGS="--worker --rate 400 --window 0,10ms,25ms,50ms"  # the worker's COALESCE_WINDOW
//	go -C internal/dev/bench run ./cmd/usage-bench --json           # machine-readable report only on stdout
//	go -C internal/dev/bench run ./cmd/usage-bench --rtt 5ms        # model a 5 ms network round trip per DynamoDB request
//	make bench BENCH_FLAGS="--grants"                           # what a consume costs by where it draws from (allowance, grants)
//	make bench BENCH_FLAGS="--pools"                            # a team pool of 1, 10 and 100 members against the same members without it
//
// The default chart path is in the repository's docs/images wherever the
// command runs; paths given with --chart and --json-out are relative to the
// working directory as usual (internal/dev/bench under go -C, the repository
// root under make bench). See docs/performance.md. Exit codes: 0 done, 1 a
// failure (a correctness check included), 2 bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/dev/bench"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("usage-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.Options
	w := &o.Workload
	fs.IntVar(&w.Events, "events", 15000, "events (messages) in the workload")
	fs.IntVar(&w.Users, "users", 500, "users")
	fs.IntVar(&w.EntitlementsPerUser, "entitlements", 2, "entitlements per user")
	fs.IntVar(&w.HotUsers, "hot-users", 2, "hot users (the first users)")
	fs.Float64Var(&w.HotShare, "hot-share", 0.5, "share of events sent by the hot users")
	fs.Float64Var(&w.DuplicateShare, "duplicate-share", 0.05, "share of messages that redeliver an earlier one (same message ID or idempotency key)")
	fs.Float64Var(&w.InvalidShare, "invalid-share", 0.02, "share of invalid messages (3/4 break the contract, 1/4 name a missing entitlement)")
	fs.Float64Var(&w.LimitPressure, "limit-pressure", 0.1, "share of entitlements whose limit is below the usage sent to them")
	fs.Uint64Var(&w.Seed, "seed", 1, "workload seed (same seed, same workload)")
	fs.IntVar(&o.Concurrency, "concurrency", 0, "concurrent invocations (default 8), or worker processes with --worker (default 2)")
	sweep := fs.String("sweep", "", "comma-separated concurrencies to run in turn, e.g. 1,2,4,8,16 (writes the chart)")
	batchSizes := fs.String("batch-size", "", "Lambda's batch size (default 100, the Terraform module's; 10 with --fifo), or a comma-separated list to sweep, e.g. 20,50,100 (writes the chart)")
	windows := fs.String("window", "", "Lambda's maximum batching window, whole seconds (default 1s, the module's; 0 with --fifo), or with --worker COALESCE_WINDOW (default the service's); a comma-separated list sweeps, e.g. 1s,2s,5s (writes the chart)")
	fs.Float64Var(&o.Rate, "rate", 0, "mean arrival rate in events/s, Poisson (0: every message queued at the start)")
	worker := fs.Bool("worker", false, "consume with worker processes (sqs.Worker, coalescing across receives) instead of Lambda invocations")
	fs.BoolVar(&o.FIFO, "fifo", false, "deliver as a FIFO queue grouped by entitlement (producer.GroupID)")
	fs.IntVar(&o.CoalesceMax, "coalesce-max", 0, "with --worker: the most messages of one batch (0: the worker's default)")
	chartFrom := fs.String("chart-from", "", "draw the chart of a sweep's JSON report (--json-out) to --chart, and run nothing")
	fs.IntVar(&o.ApplyConcurrency, "apply-concurrency", 8, "entitlements applied in parallel within a batch (APPLY_CONCURRENCY)")
	fs.IntVar(&o.WarmupEvents, "warmup", 5000, "events run through both systems first, not reported (0: none)")
	fs.IntVar(&o.ColdStarts, "cold-starts", 3, "cold starts of the bootstrap under the Lambda RIE (0: skip)")
	chart := fs.String("chart", "", "PNG chart path (default with --sweep: the repository's docs/images/performance.png, or docs/images/performance-rtt<RTT>.png with --rtt)")
	fs.BoolVar(&o.JSON, "json", false, "print only the JSON report on stdout")
	fs.StringVar(&o.JSONPath, "json-out", "", "also write the JSON report to this file")
	fs.BoolVar(&o.Calibrate, "calibrate", false, "first measure DynamoDB Local's CPU time per request shape")
	fs.BoolVar(&o.Grants, "grants", false, "run the grants scenario instead of the comparison: what a consume costs drawing from the allowance, one grant or several, with 0, 1, 5 and 20 grants on the item, side by side with today's consume, and with consumers racing on one entitlement (--concurrency: its invocations; --warmup 0: no warm-up round)")
	grantCounts := fs.String("grant-counts", "0,1,5,20", "with --grants: the grants on the item of the uncontended arms, comma-separated (0 to 20)")
	fs.IntVar(&o.GrantEvents, "grant-events", 1000, "with --grants: events an arm and round")
	fs.IntVar(&o.GrantRounds, "grant-rounds", 3, "with --grants: rounds (the report takes medians)")
	fs.IntVar(&o.GrantConsumers, "grant-consumers", 8, "with --grants: consumers racing on the contended arms' one entitlement")
	fs.BoolVar(&o.Pools, "pools", false, "run the pools scenario instead of the comparison: one team pool with 1, 10 and 100 members, side by side with the same members and messages without the pool (today's single-entitlement path); costs, events/s and CPU as ratios, events per transaction, writes of the pool per event, contention, and one pool item's ceiling (--concurrency: its invocations; --warmup 0: no warm-up round)")
	poolMembers := fs.String("pool-members", "1,10,100", "with --pools: the pools' sizes in members, comma-separated")
	fs.IntVar(&o.PoolEvents, "pool-events", 3000, "with --pools: events a run")
	fs.IntVar(&o.PoolRounds, "pool-rounds", 5, "with --pools: rounds (the report takes medians)")
	fs.DurationVar(&o.RTT, "rtt", 0, "modelled network round trip added before every DynamoDB HTTP attempt (SDK retries included) of both systems, e.g. 5ms (0: none)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "usage-bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if o.RTT < 0 {
		fmt.Fprintf(stderr, "usage-bench: --rtt: %v is negative\n", o.RTT)
		return 2
	}
	if *chartFrom != "" {
		return redraw(*chartFrom, *chart, stderr)
	}
	if o.Grants && o.Pools {
		fmt.Fprintln(stderr, "usage-bench: --grants and --pools are scenarios of their own; run one at a time")
		return 2
	}
	if o.Pools {
		// The scenario delivers its arms itself, on ours alone.
		var clash []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "sweep", "batch-size", "window", "rate", "worker", "fifo", "coalesce-max", "rtt", "chart",
				"events", "users", "entitlements", "hot-users", "hot-share", "duplicate-share", "invalid-share", "limit-pressure", "seed":
				clash = append(clash, "--"+f.Name)
			}
		})
		if len(clash) > 0 {
			fmt.Fprintf(stderr, "usage-bench: --pools runs its own workload and delivery; not with %s\n", strings.Join(clash, ", "))
			return 2
		}
		if o.PoolEvents < 1 || o.PoolRounds < 1 {
			fmt.Fprintln(stderr, "usage-bench: --pool-events and --pool-rounds must be at least 1")
			return 2
		}
		var err error
		if o.PoolMembers, err = list(*poolMembers, positive); err != nil {
			fmt.Fprintf(stderr, "usage-bench: --pool-members: %v\n", err)
			return 2
		}
	}
	if o.Grants {
		// The scenario delivers its arms itself, on ours alone.
		var clash []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "sweep", "batch-size", "window", "rate", "worker", "fifo", "coalesce-max", "rtt", "chart",
				"events", "users", "entitlements", "hot-users", "hot-share", "duplicate-share", "invalid-share", "limit-pressure", "seed":
				clash = append(clash, "--"+f.Name)
			}
		})
		if len(clash) > 0 {
			fmt.Fprintf(stderr, "usage-bench: --grants runs its own workload and delivery; not with %s\n", strings.Join(clash, ", "))
			return 2
		}
		if o.GrantEvents < 1 || o.GrantRounds < 1 || o.GrantConsumers < 1 {
			fmt.Fprintln(stderr, "usage-bench: --grant-events, --grant-rounds and --grant-consumers must be at least 1")
			return 2
		}
		var err error
		if o.GrantCounts, err = list(*grantCounts, strconv.Atoi); err == nil {
			err = (bench.GrantsConfig{GrantCounts: o.GrantCounts}).Validate()
		}
		if err != nil {
			fmt.Fprintf(stderr, "usage-bench: --grant-counts: %v\n", err)
			return 2
		}
	}
	if *worker {
		o.Mode = bench.Worker
	}
	var err error
	if o.Sweep, err = list(*sweep, positive); err != nil {
		fmt.Fprintf(stderr, "usage-bench: --sweep: %v\n", err)
		return 2
	}
	if o.BatchSizes, err = list(*batchSizes, positive); err != nil {
		fmt.Fprintf(stderr, "usage-bench: --batch-size: %v\n", err)
		return 2
	}
	if o.Windows, err = list(*windows, duration); err != nil {
		fmt.Fprintf(stderr, "usage-bench: --window: %v\n", err)
		return 2
	}
	if o.Rate < 0 {
		fmt.Fprintf(stderr, "usage-bench: --rate: %v is negative\n", o.Rate)
		return 2
	}
	if kind := sweepOf(o); kind != "" && *chart == "" {
		root, err := emulator.ModuleRoot()
		if err != nil {
			fmt.Fprintf(stderr, "usage-bench: --chart: no default outside the repository: %v\n", err)
			return 2
		}
		*chart = filepath.Join(root, defaultChartFor(kind, o.Mode, o.FIFO, o.RTT))
	}
	o.ChartPath = *chart
	if err := o.Prepare(); err != nil {
		fmt.Fprintf(stderr, "usage-bench: %v\n", err)
		return 2
	}
	if err := w.Validate(); err != nil {
		fmt.Fprintf(stderr, "usage-bench: %v\n", err)
		return 2
	}

	// The SDK finds DynamoDB Local through the standard variables; the
	// endpoint is set once the emulator is up. Dummy credentials.
	for k, v := range map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"} {
		os.Setenv(k, v)
	}
	os.Unsetenv("AWS_PROFILE")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := bench.Execute(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "usage-bench: %v\n", err)
		return 1
	}
	return 0
}

// redraw draws the chart of a saved report: to path, or the default path
// of its sweep.
func redraw(report, path string, stderr io.Writer) int {
	rep, err := bench.LoadReport(report)
	if err != nil {
		fmt.Fprintf(stderr, "usage-bench: --chart-from: %v\n", err)
		return 1
	}
	if path == "" {
		root, err := emulator.ModuleRoot()
		if err != nil {
			fmt.Fprintf(stderr, "usage-bench: --chart: no default outside the repository: %v\n", err)
			return 2
		}
		path = filepath.Join(root, defaultChartFor(rep.SweepOf, bench.Mode(rep.Mode), rep.FIFO, time.Duration(rep.RTTMs*float64(time.Millisecond))))
	}
	if err := bench.DrawChart(rep, path); err != nil {
		fmt.Fprintf(stderr, "usage-bench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "==> chart written to %s\n", path)
	return 0
}

// defaultChart is the chart's path for a concurrency sweep, relative to
// the repository root: the zero-latency chart is not overwritten by a
// sweep with a modelled round trip.
func defaultChart(rtt time.Duration) string {
	if rtt <= 0 {
		return "docs/images/performance.png"
	}
	return "docs/images/performance-rtt" + strings.ReplaceAll(rtt.String(), "µ", "u") + ".png"
}

// defaultChartFor is the chart's path for a sweep of kind: the
// concurrency sweep's as defaultChart, the others named after what they
// vary, e.g. docs/images/performance-batch-size.png or
// docs/images/performance-worker-window-rtt5ms.png.
func defaultChartFor(kind string, mode bench.Mode, fifo bool, rtt time.Duration) string {
	if kind == "concurrency" {
		return defaultChart(rtt)
	}
	name := "docs/images/performance"
	if mode == bench.Worker {
		name += "-worker"
	}
	if fifo {
		name += "-fifo"
	}
	name += map[string]string{"batchSize": "-batch-size", "window": "-window"}[kind]
	if rtt > 0 {
		name += "-rtt" + strings.ReplaceAll(rtt.String(), "µ", "u")
	}
	return name + ".png"
}

// sweepOf is what the flags sweep ("" for none).
func sweepOf(o bench.Options) string {
	switch {
	case len(o.Sweep) > 0:
		return "concurrency"
	case len(o.BatchSizes) > 1:
		return "batchSize"
	case len(o.Windows) > 1:
		return "window"
	}
	return ""
}

// list parses a comma-separated flag value ("" is none).
func list[T any](s string, parse func(string) (T, error)) ([]T, error) {
	if s == "" {
		return nil, nil
	}
	var out []T
	for _, f := range strings.Split(s, ",") {
		v, err := parse(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func positive(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%q is not a positive integer", s)
	}
	return n, nil
}

// duration is a Go duration; a bare 0 is accepted too.
func duration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration of at least 0 (e.g. 0, 25ms, 1s)", s)
	}
	return d, nil
}
