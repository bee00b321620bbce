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

	"github.com/usage-event-service/usage-event-service/internal/emulator"
)

// Options configure a benchmark.
type Options struct {
	Workload WorkloadConfig
	// Concurrency is the single run's concurrency; Sweep, when set, runs
	// every listed concurrency instead.
	Concurrency      int
	Sweep            []int
	BatchSize        int
	ApplyConcurrency int
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
	// RTT is a modelled network round trip added to every DynamoDB HTTP
	// attempt of both systems' runs, warm-up included (0: none). Set-up,
	// the correctness check, calibration and the cold start are not
	// delayed.
	RTT time.Duration
	// Notify turns usage notifications on for ours (RunConfig.Notify).
	Notify bool
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
}

func compare(ours, base *Result) Comparison {
	return Comparison{Result: ours, Ours: ours, Baseline: base,
		Speedup:            ratio(ours.EventsPerSecond, base.EventsPerSecond),
		RequestRatio:       ratio(base.DDBRequestsPerEvent, ours.DDBRequestsPerEvent),
		SteadyRequestRatio: ratio(base.SteadyState.DDBRequestsPerEvent, ours.SteadyState.DDBRequestsPerEvent),
	}
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
	BatchSize        int            `json:"batchSize"`
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
}

// Execute runs the benchmark: DynamoDB Local, the workload, both systems
// at each concurrency, the cold start, the chart, and the report on
// stdout. Progress goes to stderr. It fails if a correctness check fails.
func Execute(ctx context.Context, opts Options, stdout, stderr io.Writer) (*Report, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 20
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
		Workload: opts.Workload, BatchSize: opts.BatchSize, ApplyConcurrency: opts.ApplyConcurrency, Prices: Prices,
	}
	if opts.Calibrate {
		if rep.EmulatorCost, err = Calibrate(ctx, ddb.PID, stderr); err != nil {
			return nil, err
		}
	}
	w, err := Generate(opts.Workload, time.Now())
	if err != nil {
		return nil, err
	}
	levels := opts.Sweep
	if len(levels) == 0 {
		levels = []int{opts.Concurrency}
	}
	run := func(sys System, w *Workload, c int, prefix string) (*Result, error) {
		return Run(ctx, sys, w, RunConfig{Concurrency: c, BatchSize: opts.BatchSize, ApplyConcurrency: opts.ApplyConcurrency,
			TablePrefix: prefix, Progress: stderr, EmulatorPID: ddb.PID, RTT: opts.RTT, Notify: opts.Notify})
	}

	if opts.WarmupEvents > 0 {
		wc := opts.Workload
		wc.Events, wc.Seed = opts.WarmupEvents, opts.Workload.Seed+1
		warm, err := Generate(wc, time.Now())
		if err != nil {
			return nil, err
		}
		say("==> warm-up (not reported): %d events through each", wc.Events)
		c := levels[len(levels)-1]
		for _, sys := range []System{Ours, Baseline} {
			if _, err := run(sys, warm, c, fmt.Sprintf("warmup-%s", sys)); err != nil {
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
	for i, c := range levels {
		ours, err := run(Ours, w, c, fmt.Sprintf("run%d-ours-c%d", i, c))
		if err != nil {
			return nil, err
		}
		base, err := run(Baseline, w, c, fmt.Sprintf("run%d-baseline-c%d", i, c))
		if err != nil {
			return nil, err
		}
		comp := compare(ours, base)
		say("    concurrency %2d: ours %.0f events/s, baseline %.0f events/s: %.2fx; requests/event %.3f vs %.3f",
			c, ours.EventsPerSecond, base.EventsPerSecond, comp.Speedup, ours.DDBRequestsPerEvent, base.DDBRequestsPerEvent)
		comps = append(comps, comp)
	}
	if len(opts.Sweep) > 0 {
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
		sub := fmt.Sprintf("usage-event-service vs naive baseline on DynamoDB Local, %d events, %s, %d cores, %s",
			opts.Workload.Events, rep.CPUModel, rep.NProc, rep.Date[:10])
		if opts.RTT > 0 {
			sub = fmt.Sprintf("usage-event-service vs naive baseline on DynamoDB Local + %v modelled RTT per request, %d events, %d cores, %s",
				opts.RTT, opts.Workload.Events, rep.NProc, rep.Date[:10])
		}
		if err := WriteChart(opts.ChartPath, comps, sub); err != nil {
			return nil, fmt.Errorf("chart: %w", err)
		}
		rep.Chart = opts.ChartPath
		say("==> chart written to %s", opts.ChartPath)
	}

	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return rep, err
	}
	js = append(js, '\n')
	if opts.JSONPath != "" {
		if err := os.WriteFile(opts.JSONPath, js, 0o644); err != nil {
			return rep, err
		}
	}
	if opts.JSON {
		_, err := stdout.Write(js)
		return rep, err
	}
	return rep, PrintReport(stdout, rep)
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
	if rep.RTTMs > 0 {
		fmt.Fprintf(out, "modelled network round trip: %g ms added before every DynamoDB HTTP attempt of both systems (a fixed delay, not a measurement of AWS)\n", rep.RTTMs)
	} else {
		fmt.Fprintln(out, "modelled network round trip: none (rttMs 0: DynamoDB Local on loopback)")
	}
	wc := rep.Workload
	fmt.Fprintf(out, "workload: %d events, %d users x %d entitlements, %d hot users with %.0f%% of events, %.0f%% redelivered, %.0f%% invalid, %.0f%% of entitlements under limit pressure, seed %d; batches of %d\n\n",
		wc.Events, wc.Users, wc.EntitlementsPerUser, wc.HotUsers, 100*wc.HotShare, 100*wc.DuplicateShare, 100*wc.InvalidShare, 100*wc.LimitPressure, wc.Seed, rep.BatchSize)
	comps := rep.Sweep
	if rep.Comparison != nil {
		comps = []Comparison{*rep.Comparison}
	}
	for _, c := range comps {
		o, b := c.Ours, c.Baseline
		fmt.Fprintf(out, "concurrency %d (concurrent invocations of %d messages)\n", o.Concurrency, rep.BatchSize)
		row("", "ours", "baseline", "")
		row("modelled RTT per attempt ms (mean actually waited)", fmt.Sprintf("%g (%.2f)", o.RTTMs, o.MeanInjectedDelayMs), fmt.Sprintf("%g (%.2f)", b.RTTMs, b.MeanInjectedDelayMs), "")
		row("events/s", fmt.Sprintf("%.0f", o.EventsPerSecond), fmt.Sprintf("%.0f", b.EventsPerSecond), fmt.Sprintf("%.2fx speedup", c.Speedup))
		row("batch latency p50 ms", fmt.Sprintf("%.1f", o.P50Ms), fmt.Sprintf("%.1f", b.P50Ms), "")
		row("batch latency p99 ms", fmt.Sprintf("%.1f", o.P99Ms), fmt.Sprintf("%.1f", b.P99Ms), "")
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
		row("CPU ms/event: this process (handlers, SDK)", fmt.Sprintf("%.3f", o.BenchCPUMsPerEvent), fmt.Sprintf("%.3f", b.BenchCPUMsPerEvent), "")
		row("CPU ms/event: DynamoDB Local", fmt.Sprintf("%.3f", o.EmulatorCPUMsPerEvent), fmt.Sprintf("%.3f", b.EmulatorCPUMsPerEvent), "")
		row("events per DynamoDB unit of work", fmt.Sprintf("%.2f", o.MeanEventsPerUnit), fmt.Sprintf("%.2f", b.MeanEventsPerUnit), "(ours: per group)")
		row("deliveries (incl. redeliveries)", strconv.Itoa(o.Deliveries), strconv.Itoa(b.Deliveries), "")
		if o.Notifications > 0 {
			row("notifications recorded (--notify)", strconv.Itoa(o.Notifications), "-", "")
		}
		row("correctness check", verdict(o.Check), verdict(b.Check), "")
		tw.Flush()
		fmt.Fprintf(out, "  requests by operation: ours %s; baseline %s\n", kv(o.RequestsByOperation), kv(b.RequestsByOperation))
		fmt.Fprintf(out, "  mean call ms by operation: ours %s; baseline %s\n", kv(round(o.MeanCallMs)), kv(round(b.MeanCallMs)))
		fmt.Fprintf(out, "  final outcomes: ours %s; baseline %s\n", kv(o.FinalOutcomes), kv(b.FinalOutcomes))
		if len(o.FailedCalls)+len(b.FailedCalls) > 0 {
			fmt.Fprintf(out, "  failed calls: ours %s; baseline %s\n", kv(o.FailedCalls), kv(b.FailedCalls))
		}
		fmt.Fprintln(out)
	}
	if len(rep.Sweep) > 0 {
		fmt.Fprintf(out, "sweep (rtt %g ms)\n", rep.RTTMs)
		p("concurrency\tours ev/s\tbaseline ev/s\tspeedup\tours p99 ms\tbaseline p99 ms\tours req/ev\tbaseline req/ev\t")
		for _, c := range rep.Sweep {
			p("%d\t%.0f\t%.0f\t%.2fx\t%.1f\t%.1f\t%.3f\t%.3f\t", c.Ours.Concurrency, c.Ours.EventsPerSecond, c.Baseline.EventsPerSecond,
				c.Speedup, c.Ours.P99Ms, c.Baseline.P99Ms, c.Ours.DDBRequestsPerEvent, c.Baseline.DDBRequestsPerEvent)
		}
		tw.Flush()
		if rep.Chart != "" {
			fmt.Fprintf(out, "chart: %s\n", rep.Chart)
		}
		fmt.Fprintln(out)
	}
	if len(rep.EmulatorCost) > 0 {
		fmt.Fprintln(out, "DynamoDB Local's CPU per request (warm JVM, 4 concurrent callers)")
		for _, e := range rep.EmulatorCost {
			fmt.Fprintf(out, "  %-30s %2d item(s)  %6.0f requests/s  %.3f ms CPU/request  %.2f cores\n", e.Request, e.Items, e.RequestsPerSecond, e.EmulatorCPUMs, e.EmulatorCores)
		}
		fmt.Fprintln(out)
	}
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
