package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/config"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
)

// Options configure a benchmark.
type Options struct {
	Workload WorkloadConfig
	// Concurrency is the single run's concurrency; Sweep, when set, runs
	// every listed concurrency instead.
	Concurrency int
	Sweep       []int
	// BatchSizes and Windows: Lambda's batch size and maximum batching
	// window (in Worker mode Windows are COALESCE_WINDOW); more than one
	// value in one of them (or in Sweep) is a sweep, one run per value.
	BatchSizes       []int
	Windows          []time.Duration
	ApplyConcurrency int
	// Mode, Rate, FIFO and CoalesceMax: see RunConfig.
	Mode        Mode
	Rate        float64
	FIFO        bool
	CoalesceMax int
	// WarmupEvents are run through both systems first and not reported,
	// so that neither is measured on a cold JVM (0: no warm-up).
	WarmupEvents int
	// ColdStarts is how many times the bootstrap is started under the
	// RIE (0: skip).
	ColdStarts int
	// ChartPath is where the PNG goes (with Sweep); "" for none.
	ChartPath string
	JSON      bool
	// JSONPath, when set, also receives the JSON report.
	JSONPath string
	// Calibrate measures DynamoDB Local's CPU cost per request shape first.
	Calibrate bool
	// Grants runs the grants scenario (GrantsConfig, grants.go) instead of
	// the comparison with the baseline: Concurrency and ApplyConcurrency
	// deliver its uncontended arms; a warm-up round runs first unless
	// WarmupEvents is 0.
	Grants         bool
	GrantEvents    int
	GrantRounds    int
	GrantConsumers int
	GrantCounts    []int
	// Pools runs the pools scenario (PoolsConfig, pools.go) instead of the
	// comparison with the baseline: Concurrency and ApplyConcurrency
	// deliver its runs; a warm-up round runs first unless WarmupEvents is
	// 0.
	Pools       bool
	PoolEvents  int
	PoolRounds  int
	PoolMembers []int
	// RTT is a modelled network round trip added to every DynamoDB HTTP
	// attempt of both systems' runs, warm-up included (0: none). Set-up,
	// the correctness check, calibration and the cold start are not
	// delayed.
	RTT time.Duration
}

// Comparison is ours and the baseline at one concurrency. In JSON, ours'
// fields are at the top, the baseline's under "baseline".
type Comparison struct {
	*Result  `json:",omitempty"`
	Ours     *Result `json:"-"`
	Baseline *Result `json:"baseline"`
	// Speedup is ours' events/s over the baseline's.
	Speedup float64 `json:"speedup"`
	// RequestRatio is the baseline's DynamoDB requests per event over
	// ours' (whole run): how many times more requests it makes.
	RequestRatio float64 `json:"requestRatio"`
	// SteadyRequestRatio is the same in the steady state.
	SteadyRequestRatio float64 `json:"steadyRequestRatio"`
	// CostRatio is ours' whole bill per event over the baseline's
	// (TotalUSDPerMillionEvents); DynamoDBCostRatio the DynamoDB part's.
	CostRatio         float64 `json:"costRatio"`
	DynamoDBCostRatio float64 `json:"dynamodbCostRatio"`
}

func compare(ours, base *Result) Comparison {
	return Comparison{Result: ours, Ours: ours, Baseline: base,
		Speedup:            ratio(ours.EventsPerSecond, base.EventsPerSecond),
		RequestRatio:       ratio(base.DDBRequestsPerEvent, ours.DDBRequestsPerEvent),
		SteadyRequestRatio: ratio(base.SteadyState.DDBRequestsPerEvent, ours.SteadyState.DDBRequestsPerEvent),
		CostRatio:          ratio(ours.TotalUSDPerMillionEvents, base.TotalUSDPerMillionEvents),
		DynamoDBCostRatio:  ratio(ours.CostUSDPerMillionEvents, base.CostUSDPerMillionEvents),
	}
}

// point is one run's delivery settings.
type point struct {
	concurrency, batchSize int
	window                 time.Duration
}

// sweep is what varies from run to run: "concurrency", "batchSize",
// "window", or "" for a single run.
func (o Options) sweep() (string, []point, error) {
	n := 0
	for _, l := range []int{len(o.Sweep), len(o.BatchSizes), len(o.Windows)} {
		if l > 1 {
			n++
		}
	}
	if n > 1 {
		return "", nil, fmt.Errorf("sweep one setting at a time: concurrency, batch size or window")
	}
	base := point{concurrency: o.Concurrency, batchSize: o.BatchSizes[0], window: o.Windows[0]}
	var pts []point
	switch {
	case len(o.Sweep) > 0:
		for _, c := range o.Sweep {
			p := base
			p.concurrency = c
			pts = append(pts, p)
		}
		return "concurrency", pts, nil
	case len(o.BatchSizes) > 1:
		for _, b := range o.BatchSizes {
			p := base
			p.batchSize = b
			pts = append(pts, p)
		}
		return "batchSize", pts, nil
	case len(o.Windows) > 1:
		for _, w := range o.Windows {
			p := base
			p.window = w
			pts = append(pts, p)
		}
		return "window", pts, nil
	}
	return "", []point{base}, nil
}

// Report is the whole benchmark's output. Without a sweep the run's
// fields are at the top level (Comparison); with one, under "sweep".
type Report struct {
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
	CPUModel  string `json:"cpuModel"`
	NProc     int    `json:"nproc"`
	OS        string `json:"os"`
	Emulator  string `json:"emulator"`
	// RTTMs is Options.RTT in milliseconds.
	RTTMs float64 `json:"rttMs"`

	Workload         WorkloadConfig `json:"workload"`
	Mode             string         `json:"mode"`
	BatchSize        int            `json:"batchSize"`
	WindowMs         float64        `json:"windowMs"`
	RatePerSecond    float64        `json:"ratePerSecond"`
	FIFO             bool           `json:"fifo,omitempty"`
	SweepOf          string         `json:"sweepOf,omitempty"`
	ApplyConcurrency int            `json:"applyConcurrency"`
	Prices           any            `json:"pricesUsdPerMillionUnits"`
	*Comparison      `json:",omitempty"`
	Sweep            []Comparison `json:"sweep,omitempty"`
	Chart            string       `json:"chart,omitempty"`

	ColdStart      *ColdStart `json:"coldStart,omitempty"`
	ColdStartMs    float64    `json:"coldStartMs,omitempty"`
	BootstrapBytes int64      `json:"bootstrapBytes,omitempty"`
	ColdStartError string     `json:"coldStartError,omitempty"`

	EmulatorCost []EmulatorCost `json:"emulatorCost,omitempty"`

	// Grants is the grants scenario's result (Options.Grants), alone.
	Grants *GrantsReport `json:"grants,omitempty"`
	// Pools is the pools scenario's result (Options.Pools), alone.
	Pools *PoolsReport `json:"pools,omitempty"`
}

// Prepare fills in the defaults (concurrency 8 invocations or 2 worker
// processes; the Terraform module's batch size of 100, or 10 for FIFO,
// and window of 1 s, 0 for FIFO; or the worker's COALESCE_WINDOW default) and refuses settings the real
// consumer refuses or the benchmark cannot sweep.
func (o *Options) Prepare() error {
	if o.Mode == "" {
		o.Mode = Lambda
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
		if o.Mode == Worker {
			o.Concurrency = 2
		}
	}
	if len(o.BatchSizes) == 0 {
		o.BatchSizes = []int{100} // the Terraform module's defaults
		if o.FIFO {
			o.BatchSizes = []int{10}
		}
	}
	if len(o.Windows) == 0 {
		switch {
		case o.Mode == Worker:
			o.Windows = []time.Duration{config.DefaultCoalesceWindow}
		case o.FIFO:
			o.Windows = []time.Duration{0}
		default:
			o.Windows = []time.Duration{time.Second}
		}
	}
	if err := o.checkDelivery(); err != nil {
		return err
	}
	if _, _, err := o.sweep(); err != nil {
		return err
	}
	return nil
}

// Execute runs the benchmark: DynamoDB Local, the workload, both systems
// at each concurrency, the cold start, the chart, and the report on
// stdout. Progress goes to stderr. It fails if a correctness check fails.
func Execute(ctx context.Context, opts Options, stdout, stderr io.Writer) (*Report, error) {
	if err := opts.Prepare(); err != nil {
		return nil, err
	}
	sweepOf, points, err := opts.sweep()
	if err != nil {
		return nil, err
	}
	if opts.ApplyConcurrency <= 0 {
		opts.ApplyConcurrency = 8
	}
	if opts.RTT < 0 {
		return nil, fmt.Errorf("negative RTT %v", opts.RTT)
	}
	if err := opts.Workload.Validate(); err != nil {
		return nil, err
	}
	say := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }

	say("==> starting DynamoDB Local (in memory)")
	ddb, err := emulator.StartDynamoDB(ctx)
	if err != nil {
		return nil, err
	}
	defer ddb.Stop()
	os.Setenv("AWS_ENDPOINT_URL_DYNAMODB", ddb.Endpoint)

	rep := &Report{
		Date: time.Now().UTC().Format(time.RFC3339), GoVersion: runtime.Version(), CPUModel: cpuModel(),
		NProc: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Emulator: "DynamoDB Local 1.25.1 (in memory, -sharedDb)",
		RTTMs:    ms(opts.RTT),
		Workload: opts.Workload, Mode: string(opts.Mode), BatchSize: opts.BatchSizes[0], WindowMs: ms(opts.Windows[0]),
		RatePerSecond: opts.Rate, FIFO: opts.FIFO, SweepOf: sweepOf, ApplyConcurrency: opts.ApplyConcurrency, Prices: Prices,
	}
	if opts.Calibrate {
		if rep.EmulatorCost, err = Calibrate(ctx, ddb.PID, stderr); err != nil {
			return nil, err
		}
	}
	if opts.Grants {
		return rep, executeGrants(ctx, opts, rep, ddb.PID, stdout, stderr)
	}
	if opts.Pools {
		return rep, executePools(ctx, opts, rep, ddb.PID, stdout, stderr)
	}
	w, err := Generate(opts.Workload, time.Now())
	if err != nil {
		return nil, err
	}
	run := func(sys System, w *Workload, p point, prefix string) (*Result, error) {
		return Run(ctx, sys, w, RunConfig{Concurrency: p.concurrency, BatchSize: p.batchSize, Window: p.window,
			ApplyConcurrency: opts.ApplyConcurrency, Mode: opts.Mode, Rate: opts.Rate, Seed: opts.Workload.Seed, FIFO: opts.FIFO, CoalesceMax: opts.CoalesceMax,
			TablePrefix: prefix, Progress: stderr, EmulatorPID: ddb.PID, RTT: opts.RTT})
	}

	if opts.WarmupEvents > 0 {
		wc := opts.Workload
		wc.Events, wc.Seed = opts.WarmupEvents, opts.Workload.Seed+1
		warm, err := Generate(wc, time.Now())
		if err != nil {
			return nil, err
		}
		say("==> warm-up (not reported): %d events through each", wc.Events)
		p := points[len(points)-1]
		for _, sys := range []System{Ours, Baseline} {
			if _, err := run(sys, warm, p, fmt.Sprintf("warmup-%s", sys)); err != nil {
				return nil, err
			}
		}
	}

	if opts.RTT > 0 {
		say("==> modelled network round trip: %v before every DynamoDB HTTP attempt of both systems", opts.RTT)
	}
	say("==> workload: %d events, %d users x %d entitlements, %d hot users with %.0f%% of events, %.0f%% redelivered, %.0f%% invalid, %.0f%% of entitlements under limit pressure, seed %d",
		opts.Workload.Events, opts.Workload.Users, opts.Workload.EntitlementsPerUser, opts.Workload.HotUsers,
		100*opts.Workload.HotShare, 100*opts.Workload.DuplicateShare, 100*opts.Workload.InvalidShare, 100*opts.Workload.LimitPressure, opts.Workload.Seed)
	var comps []Comparison
	for i, p := range points {
		ours, err := run(Ours, w, p, fmt.Sprintf("run%d-ours", i))
		if err != nil {
			return nil, err
		}
		base, err := run(Baseline, w, p, fmt.Sprintf("run%d-baseline", i))
		if err != nil {
			return nil, err
		}
		comp := compare(ours, base)
		say("    %s: ours %.0f events/s, USD %.3f per million, p99 %.0f ms; baseline %.0f events/s, USD %.3f, p99 %.0f ms; cost ratio %.2f",
			settingText(sweepOf, ours), ours.EventsPerSecond, ours.TotalUSDPerMillionEvents, ours.EndToEndP99Ms,
			base.EventsPerSecond, base.TotalUSDPerMillionEvents, base.EndToEndP99Ms, comp.CostRatio)
		comps = append(comps, comp)
	}
	if sweepOf != "" {
		rep.Sweep = comps
	} else {
		rep.Comparison = &comps[0]
	}

	if opts.ColdStarts > 0 {
		say("==> cold start: building the bootstrap and invoking it under the Lambda Runtime Interface Emulator")
		cs, err := MeasureColdStart(ctx, opts.ColdStarts, stderr)
		if err != nil {
			// Reported, not fatal: the throughput runs stand on their own.
			rep.ColdStartError = err.Error()
			say("    cold start not measured: %v", err)
		} else {
			rep.ColdStart, rep.ColdStartMs, rep.BootstrapBytes = cs, cs.MedianInitMs, cs.BootstrapBytes
		}
	}

	if opts.ChartPath != "" && len(comps) > 1 {
		if err := DrawChart(rep, opts.ChartPath); err != nil {
			return nil, fmt.Errorf("chart: %w", err)
		}
		rep.Chart = opts.ChartPath
		say("==> chart written to %s", opts.ChartPath)
	}

	return rep, output(opts, rep, stdout)
}

// output writes the report: JSON to opts.JSONPath if set, and JSON or the
// human-readable report on stdout.
func output(opts Options, rep *Report, stdout io.Writer) error {
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	js = append(js, '\n')
	if opts.JSONPath != "" {
		if err := os.WriteFile(opts.JSONPath, js, 0o644); err != nil {
			return err
		}
	}
	if opts.JSON {
		_, err := stdout.Write(js)
		return err
	}
	return PrintReport(stdout, rep)
}

// executeGrants runs the grants scenario on the started DynamoDB Local
// (process pid) and writes its report: the machine, and the scenario.
func executeGrants(ctx context.Context, opts Options, rep *Report, pid int, stdout, stderr io.Writer) error {
	g, err := RunGrants(ctx, GrantsConfig{Events: opts.GrantEvents, Rounds: opts.GrantRounds, Consumers: opts.GrantConsumers,
		GrantCounts: opts.GrantCounts, Warmup: opts.WarmupEvents > 0, Concurrency: opts.Concurrency, ApplyConcurrency: opts.ApplyConcurrency,
		Settle: 2 * time.Second, EmulatorPID: pid, Progress: stderr})
	if err != nil {
		return err
	}
	*rep = Report{Date: rep.Date, GoVersion: rep.GoVersion, CPUModel: rep.CPUModel, NProc: rep.NProc, OS: rep.OS,
		Emulator: rep.Emulator, Prices: rep.Prices, EmulatorCost: rep.EmulatorCost, Grants: g}
	return output(opts, rep, stdout)
}

// executePools runs the pools scenario on the started DynamoDB Local
// (process pid) and writes its report: the machine, and the scenario.
func executePools(ctx context.Context, opts Options, rep *Report, pid int, stdout, stderr io.Writer) error {
	p, err := RunPools(ctx, PoolsConfig{Events: opts.PoolEvents, Rounds: opts.PoolRounds, Members: opts.PoolMembers,
		Warmup: opts.WarmupEvents > 0, Concurrency: opts.Concurrency, ApplyConcurrency: opts.ApplyConcurrency,
		Settle: 2 * time.Second, EmulatorPID: pid, Progress: stderr})
	if err != nil {
		return err
	}
	*rep = Report{Date: rep.Date, GoVersion: rep.GoVersion, CPUModel: rep.CPUModel, NProc: rep.NProc, OS: rep.OS,
		Emulator: rep.Emulator, Prices: rep.Prices, EmulatorCost: rep.EmulatorCost, Pools: p}
	return output(opts, rep, stdout)
}

// DrawChart draws a sweep's chart from its report: events/s and p99 batch
// latency against concurrency, or the whole bill and p99 end-to-end
// latency against the batch size or window.
func DrawChart(rep *Report, path string) error {
	if len(rep.Sweep) < 2 {
		return fmt.Errorf("the report holds no sweep")
	}
	wc := rep.Workload
	date := rep.Date
	if len(date) >= 10 {
		date = date[:10]
	}
	sub := fmt.Sprintf("ours vs naive baseline on DynamoDB Local, %d events %s, %d users x %d, %d hot with %.0f%%, %d cores, %s",
		wc.Events, rateText(rep.RatePerSecond), wc.Users, wc.EntitlementsPerUser, wc.HotUsers, 100*wc.HotShare, rep.NProc, date)
	if rep.RTTMs > 0 {
		sub += fmt.Sprintf(", +%g ms RTT", rep.RTTMs)
	}
	if rep.SweepOf == "concurrency" || rep.SweepOf == "" {
		return WriteChart(path, rep.Sweep, sub)
	}
	return WriteSettingChart(path, rep.Sweep, rep.SweepOf, Mode(rep.Mode), sub)
}

// LoadReport reads a JSON report (--json-out), for redrawing its chart.
func LoadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i := range rep.Sweep {
		rep.Sweep[i].Ours = rep.Sweep[i].Result
	}
	if rep.Comparison != nil {
		rep.Comparison.Ours = rep.Comparison.Result
	}
	return &rep, nil
}

// checkDelivery refuses settings that the real consumer refuses.
func (o Options) checkDelivery() error {
	if o.Rate < 0 {
		return fmt.Errorf("negative arrival rate %v", o.Rate)
	}
	for _, w := range o.Windows {
		switch {
		case w < 0:
			return fmt.Errorf("negative window %v", w)
		case o.Mode == Lambda && (w%time.Second != 0 || w > 300*time.Second):
			return fmt.Errorf("window %v: Lambda's batching window is whole seconds from 0 to 300", w)
		case o.Mode == Worker && w > time.Second:
			return fmt.Errorf("window %v: COALESCE_WINDOW is at most 1s", w)
		}
	}
	for _, b := range o.BatchSizes {
		if b < 1 || b > 10000 {
			return fmt.Errorf("batch size %d: from 1 to 10000", b)
		}
	}
	switch {
	case o.Mode == Worker && len(o.BatchSizes) > 1:
		return fmt.Errorf("the worker has no batch size to sweep (it receives 10 a call and coalesces up to 100)")
	case o.Mode != Lambda:
		return nil
	}
	for _, b := range o.BatchSizes {
		for _, w := range o.Windows {
			switch {
			case o.FIFO && (b > 10 || w > 0):
				return fmt.Errorf("batch size %d, window %v: Lambda takes at most 10 messages and no batching window from a FIFO queue", b, w)
			case b > 10 && w < time.Second:
				return fmt.Errorf("batch size %d, window %v: Lambda takes more than 10 only with a batching window of at least 1s", b, w)
			}
		}
	}
	return nil
}

// settingText names a run by what its sweep varies.
func settingText(sweepOf string, r *Result) string {
	switch sweepOf {
	case "batchSize":
		return fmt.Sprintf("batch size %4d", r.BatchSize)
	case "window":
		return fmt.Sprintf("window %6v", time.Duration(r.WindowMs*float64(time.Millisecond)))
	}
	return fmt.Sprintf("concurrency %2d", r.Concurrency)
}

// PrintReport writes the human-readable report.
func PrintReport(out io.Writer, rep *Report) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	row := func(label, ours, base, note string) {
		fmt.Fprintf(out, "  %-60s %22s %22s  %s\n", label, ours, base, note)
	}
	fmt.Fprintf(out, "usage-event-service benchmark, %s, %s, %d cores (%s), %s, %s\n",
		rep.Date, rep.CPUModel, rep.NProc, rep.OS, rep.GoVersion, rep.Emulator)
	if rep.Grants != nil {
		fmt.Fprintln(out)
		PrintGrants(out, rep.Grants)
		fmt.Fprintln(out)
		printEmulatorCost(out, rep.EmulatorCost)
		return nil
	}
	if rep.Pools != nil {
		fmt.Fprintln(out)
		PrintPools(out, rep.Pools)
		fmt.Fprintln(out)
		printEmulatorCost(out, rep.EmulatorCost)
		return nil
	}
	if rep.RTTMs > 0 {
		fmt.Fprintf(out, "modelled network round trip: %g ms added before every DynamoDB HTTP attempt of both systems (a fixed delay, not a measurement of AWS)\n", rep.RTTMs)
	} else {
		fmt.Fprintln(out, "modelled network round trip: none (rttMs 0: DynamoDB Local on loopback)")
	}
	wc := rep.Workload
	fmt.Fprintf(out, "workload: %d events, %d users x %d entitlements, %d hot users with %.0f%% of events, %.0f%% redelivered, %.0f%% invalid, %.0f%% of entitlements under limit pressure, seed %d; %s\n\n",
		wc.Events, wc.Users, wc.EntitlementsPerUser, wc.HotUsers, 100*wc.HotShare, 100*wc.DuplicateShare, 100*wc.InvalidShare, 100*wc.LimitPressure, wc.Seed, rateText(rep.RatePerSecond))
	comps := rep.Sweep
	if rep.Comparison != nil {
		comps = []Comparison{*rep.Comparison}
	}
	for _, c := range comps {
		o, b := c.Ours, c.Baseline
		cfg := RunConfig{Mode: Mode(o.Mode), Concurrency: o.Concurrency, BatchSize: o.BatchSize, Window: time.Duration(o.WindowMs * float64(time.Millisecond)), FIFO: o.FIFO}
		fmt.Fprintf(out, "%s\n", cfg.describe())
		row("", "ours", "baseline", "")
		row("modelled RTT per attempt ms (mean actually waited)", fmt.Sprintf("%g (%.2f)", o.RTTMs, o.MeanInjectedDelayMs), fmt.Sprintf("%g (%.2f)", b.RTTMs, b.MeanInjectedDelayMs), "")
		row("events/s", fmt.Sprintf("%.0f", o.EventsPerSecond), fmt.Sprintf("%.0f", b.EventsPerSecond), fmt.Sprintf("%.2fx speedup", c.Speedup))
		row("batch latency p50 ms", fmt.Sprintf("%.1f", o.P50Ms), fmt.Sprintf("%.1f", b.P50Ms), "")
		row("batch latency p99 ms", fmt.Sprintf("%.1f", o.P99Ms), fmt.Sprintf("%.1f", b.P99Ms), "")
		row("end-to-end latency p50 / p99 ms (arrival to done)", fmt.Sprintf("%.0f / %.0f", o.EndToEndP50Ms, o.EndToEndP99Ms), fmt.Sprintf("%.0f / %.0f", b.EndToEndP50Ms, b.EndToEndP99Ms), "")
		row("mean batch size", fmt.Sprintf("%.1f", o.MeanBatchSize), fmt.Sprintf("%.1f", b.MeanBatchSize), "")
		row("DynamoDB requests/event (whole run)", fmt.Sprintf("%.3f", o.DDBRequestsPerEvent), fmt.Sprintf("%.3f", b.DDBRequestsPerEvent), fmt.Sprintf("%.1fx fewer", c.RequestRatio))
		row("DynamoDB requests/applied event (whole run)", fmt.Sprintf("%.3f", o.DDBRequestsPerAppliedEvent), fmt.Sprintf("%.3f", b.DDBRequestsPerAppliedEvent), "")
		row("DynamoDB requests/event (steady state: warm caches)", fmt.Sprintf("%.3f", o.SteadyState.DDBRequestsPerEvent), fmt.Sprintf("%.3f", b.SteadyState.DDBRequestsPerEvent), "")
		row("DynamoDB requests/applied event (steady state: warm caches)", fmt.Sprintf("%.3f", o.SteadyState.DDBRequestsPerAppliedEvent), fmt.Sprintf("%.3f", b.SteadyState.DDBRequestsPerAppliedEvent), "")
		row("write request units/event (DynamoDB pricing)", fmt.Sprintf("%.3f", o.WRUPerEvent), fmt.Sprintf("%.3f", b.WRUPerEvent), "")
		row("read request units/event (DynamoDB pricing)", fmt.Sprintf("%.3f", o.RRUPerEvent), fmt.Sprintf("%.3f", b.RRUPerEvent), "")
		row("WCU/event (ConsumedCapacity, DynamoDB Local)", fmt.Sprintf("%.3f", o.WCUPerEvent), fmt.Sprintf("%.3f", b.WCUPerEvent), "")
		row("RCU/event (ConsumedCapacity, DynamoDB Local)", fmt.Sprintf("%.3f", o.RCUPerEvent), fmt.Sprintf("%.3f", b.RCUPerEvent), "")
		row("USD per million events (on-demand)", fmt.Sprintf("%.3f", o.CostUSDPerMillionEvents), fmt.Sprintf("%.3f", b.CostUSDPerMillionEvents), "")
		row("USD per million events (steady state)", fmt.Sprintf("%.3f", o.SteadyState.CostUSDPerMillionEvents), fmt.Sprintf("%.3f", b.SteadyState.CostUSDPerMillionEvents), "")
		row("write units on failed writes (share of WRU)", fmt.Sprintf("%.1f%%", 100*o.FailedWRUShare), fmt.Sprintf("%.1f%%", 100*b.FailedWRUShare), "")
		row("SQS requests/event", fmt.Sprintf("%.3f", o.SQSRequestsPerEvent), fmt.Sprintf("%.3f", b.SQSRequestsPerEvent), "")
		row("SQS USD per million events", fmt.Sprintf("%.3f", o.SQSUSDPerMillionEvents), fmt.Sprintf("%.3f", b.SQSUSDPerMillionEvents), "")
		row("Lambda invocations, GB-seconds", fmt.Sprintf("%d, %.1f", o.Invocations, o.LambdaGBSeconds), fmt.Sprintf("%d, %.1f", b.Invocations, b.LambdaGBSeconds), "")
		row("Lambda USD per million events", fmt.Sprintf("%.3f", o.LambdaUSDPerMillionEvents), fmt.Sprintf("%.3f", b.LambdaUSDPerMillionEvents), "")
		row("whole bill USD per million events", fmt.Sprintf("%.3f", o.TotalUSDPerMillionEvents), fmt.Sprintf("%.3f", b.TotalUSDPerMillionEvents), fmt.Sprintf("ours %.2fx the baseline's", c.CostRatio))
		row("CPU ms/event: this process (handlers, SDK)", fmt.Sprintf("%.3f", o.BenchCPUMsPerEvent), fmt.Sprintf("%.3f", b.BenchCPUMsPerEvent), "")
		row("CPU ms/event: DynamoDB Local (cores busy)", fmt.Sprintf("%.3f (%.2f)", o.EmulatorCPUMsPerEvent, o.EmulatorCores), fmt.Sprintf("%.3f (%.2f)", b.EmulatorCPUMsPerEvent, b.EmulatorCores), "")
		row("events per DynamoDB unit of work", fmt.Sprintf("%.2f", o.MeanEventsPerUnit), fmt.Sprintf("%.2f", b.MeanEventsPerUnit), "(ours: per group)")
		if o.GroupsOver50 > 0 {
			row("groups over 50 records (transactions fewer at 99)", fmt.Sprintf("%d (%d)", o.GroupsOver50, o.TransactionsSavedAt99), "", "")
		}
		row("deliveries (incl. redeliveries)", strconv.Itoa(o.Deliveries), strconv.Itoa(b.Deliveries), "")
		row("correctness check", verdict(o.Check), verdict(b.Check), "")
		tw.Flush()
		fmt.Fprintf(out, "  requests by operation: ours %s; baseline %s\n", kv(o.RequestsByOperation), kv(b.RequestsByOperation))
		fmt.Fprintf(out, "  mean call ms by operation: ours %s; baseline %s\n", kv(round(o.MeanCallMs)), kv(round(b.MeanCallMs)))
		fmt.Fprintf(out, "  final outcomes: ours %s; baseline %s\n", kv(o.FinalOutcomes), kv(b.FinalOutcomes))
		if len(o.FailedCalls)+len(b.FailedCalls) > 0 {
			fmt.Fprintf(out, "  failed calls: ours %s; baseline %s\n", kv(o.FailedCalls), kv(b.FailedCalls))
		}
		if len(o.FailedConditions) > 0 {
			fmt.Fprintf(out, "  ours' canceled transactions, failed conditions by item: %s\n", kv(o.FailedConditions))
		}
		fmt.Fprintln(out)
	}
	if len(rep.Sweep) > 0 {
		fmt.Fprintf(out, "sweep of %s (rtt %g ms)\n", rep.SweepOf, rep.RTTMs)
		p("setting\tours ev/s\tbaseline ev/s\tours p99 e2e ms\tbaseline p99 e2e ms\tours batch\tours ev/tx\tours WRU/ev\tbaseline WRU/ev\tours failed WRU\tours USD/M\tbaseline USD/M\tratio\tours emu ms/ev\tbaseline emu ms/ev\t")
		for _, c := range rep.Sweep {
			o, b := c.Ours, c.Baseline
			p("%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%.2f\t%.3f\t%.3f\t%.1f%%\t%.3f\t%.3f\t%.2f\t%.3f\t%.3f\t", settingText(rep.SweepOf, o),
				o.EventsPerSecond, b.EventsPerSecond, o.EndToEndP99Ms, b.EndToEndP99Ms, o.MeanBatchSize, o.MeanEventsPerUnit,
				o.WRUPerEvent, b.WRUPerEvent, 100*o.FailedWRUShare, o.TotalUSDPerMillionEvents, b.TotalUSDPerMillionEvents, c.CostRatio,
				o.EmulatorCPUMsPerEvent, b.EmulatorCPUMsPerEvent)
		}
		tw.Flush()
		if rep.Chart != "" {
			fmt.Fprintf(out, "chart: %s\n", rep.Chart)
		}
		fmt.Fprintln(out)
	}
	printEmulatorCost(out, rep.EmulatorCost)
	switch {
	case rep.ColdStart != nil:
		cs := rep.ColdStart
		fmt.Fprintf(out, "cold start (%d fresh bootstraps under the Lambda RIE): first invocation median %.1f ms, second %.1f ms, cold-start overhead median %.1f ms %v (the RIE's own \"Init Duration\" %v ms times only an asynchronous hand-off); bootstrap %d bytes (%s)",
			len(cs.InitMs), cs.MedianColdInvokeMs, cs.MedianWarmInvokeMs, cs.MedianInitMs, round1(cs.InitMs), cs.RIEInitDurationMs, cs.BootstrapBytes, cs.GOARCH)
		if cs.BootstrapBytesArm64 > 0 {
			fmt.Fprintf(out, ", %d bytes for arm64", cs.BootstrapBytesArm64)
		}
		fmt.Fprintln(out)
	case rep.ColdStartError != "":
		fmt.Fprintf(out, "cold start not measured: %s\n", rep.ColdStartError)
	}
	return nil
}

// printEmulatorCost writes the calibration's result (--calibrate), if any.
func printEmulatorCost(out io.Writer, cost []EmulatorCost) {
	if len(cost) == 0 {
		return
	}
	fmt.Fprintln(out, "DynamoDB Local's CPU per request (warm JVM, 4 concurrent callers)")
	for _, e := range cost {
		fmt.Fprintf(out, "  %-30s %2d item(s)  %6.0f requests/s  %.3f ms CPU/request  %.2f cores\n", e.Request, e.Items, e.RequestsPerSecond, e.EmulatorCPUMs, e.EmulatorCores)
	}
	fmt.Fprintln(out)
}

func round(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		out[k] = math.Round(v*100) / 100
	}
	return out
}

func round1(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = math.Round(x*10) / 10
	}
	return out
}

func verdict(c Check) string {
	if c.OK {
		return fmt.Sprintf("OK (%d entitlements)", c.EntitlementsChecked)
	}
	return "FAILED"
}

func kv[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, m[k])
	}
	return strings.Join(parts, " ")
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
