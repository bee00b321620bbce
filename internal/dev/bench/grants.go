package bench

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

// The grants scenario (usage-bench --grants) measures what a consume costs
// by where it draws from, on ours alone: the allowance, one grant, or
// several grants after the rest of the allowance, on entitlements with 0,
// 1, 5 or 20 grants on the item, side by side with the reference, today's
// consume from the allowance of an entitlement without grants. Each event
// of an uncontended arm has an entitlement of its own, so every event is
// one transaction of its own (the entitlement's write is not shared) and
// one cold read: what is compared is the cost of one consume, item size
// included. The contended arms race several consumers on one entitlement,
// from its allowance or from one grant.

// GrantDraw is where an arm's consumes draw from.
type GrantDraw string

const (
	// DrawAllowance: the allowance covers the consume (limit - used is
	// ample); grants, if any, are not touched.
	DrawAllowance GrantDraw = "allowance"
	// DrawOneGrant: the allowance is used up (used = limit); the first
	// grant in draw order covers the consume.
	DrawOneGrant GrantDraw = "one grant"
	// DrawSeveral: the allowance has 2 left; the consume takes them, then
	// empties the first grants in draw order (100 each) and takes 3 from
	// the next: across the allowance and up to 3 grants.
	DrawSeveral GrantDraw = "several grants"
)

// The entitlements of the scenario: a limit of a million, grants of 100
// each.
const (
	grantsLimit       = 1_000_000
	grantAmount       = 100
	grantsConsumeSize = 5
)

// GrantsConfig shapes the grants scenario.
type GrantsConfig struct {
	// Events per uncontended arm and round, each on its own entitlement
	// (default 1000).
	Events int
	// ContendedEvents per contended arm and round, all on one entitlement
	// (default Events).
	ContendedEvents int
	// Rounds: each arm runs once a round, the arms in turn (every other
	// round in reverse order); the report takes medians (default 3).
	Rounds int
	// Warmup: a round of every arm first, the same size, not reported, so
	// that DynamoDB Local's JVM is not measured cold.
	Warmup bool
	// GrantCounts: the grants on the item of the uncontended arms (default
	// 0, 1, 5, 20); 0 is the reference and has only the allowance arm.
	GrantCounts []int
	// Concurrency and BatchSize deliver the uncontended arms (Lambda
	// invocations, every message queued at the start; default 8 and 100).
	Concurrency int
	BatchSize   int
	// Consumers race on the contended arms' one entitlement, each a Lambda
	// invocation taking batches of ContendedBatch (default 8 and 1).
	Consumers      int
	ContendedBatch int
	// ApplyConcurrency is the Processor's Parallel (default 8).
	ApplyConcurrency int
	// Settle is each run's pause between its set-up and its measurement
	// (RunConfig.Settle).
	Settle      time.Duration
	TablePrefix string
	EmulatorPID int
	Progress    io.Writer
}

func (c *GrantsConfig) defaults() {
	if c.Events <= 0 {
		c.Events = 1000
	}
	if c.ContendedEvents <= 0 {
		c.ContendedEvents = c.Events
	}
	if c.Rounds <= 0 {
		c.Rounds = 3
	}
	if len(c.GrantCounts) == 0 {
		c.GrantCounts = []int{0, 1, 5, 20}
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.Consumers <= 0 {
		c.Consumers = 8
	}
	if c.ContendedBatch <= 0 {
		c.ContendedBatch = 1
	}
	if c.ApplyConcurrency <= 0 {
		c.ApplyConcurrency = 8
	}
	if c.TablePrefix == "" {
		c.TablePrefix = "grants"
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Validate refuses grant counts the service refuses.
func (c GrantsConfig) Validate() error {
	for _, n := range c.GrantCounts {
		if n < 0 || n > usage.MaxActiveGrants {
			return fmt.Errorf("grants on an item: %d is not from 0 to %d (usage.MaxActiveGrants)", n, usage.MaxActiveGrants)
		}
	}
	return nil
}

// GrantArm is one arm of the scenario and what it measured.
type GrantArm struct {
	Name      string    `json:"name"`
	Draw      GrantDraw `json:"draw"`
	Grants    int       `json:"grantsOnItem"`
	Contended bool      `json:"contended,omitempty"`
	// Reference is the arm the ratios compare with: the uncontended or
	// the contended consume from the allowance without grants.
	Reference string `json:"reference,omitempty"`
	// Shape is the draw every consume must have made (Check.DrawShapes);
	// the scenario fails if one did not.
	Shape  string `json:"drawShape"`
	Amount string `json:"amount"`
	Events int    `json:"events"`
	// The entitlement item's size as the run started (ItemSize), in
	// bytes, and in the 1 KB steps a write is priced by.
	EntitlementBytes int `json:"entitlementBytes"`
	EntitlementKB    int `json:"entitlementKb"`

	// EntitlementWrites are the run's committed updates of the
	// entitlement items by their update and condition expressions (the
	// arm's last run); SameWriteAsReference: its reference's were the
	// same expressions, but for the grants being pinned as read (absent
	// on the reference's item, the map itself on the arm's).
	EntitlementWrites    map[string]int `json:"entitlementWrites"`
	SameWriteAsReference bool           `json:"sameWriteAsReference,omitempty"`

	Rounds []GrantRound `json:"rounds"`
	// Medians over the rounds.
	Median GrantRound `json:"median"`
	// Ratios to the reference arm: of the medians for units and requests;
	// for CPU the median of the rounds' ratios, each the arm's run over
	// the mean of the reference's runs just before and after it.
	WRURatio         float64 `json:"wruRatio,omitempty"`
	RRURatio         float64 `json:"rruRatio,omitempty"`
	RequestRatio     float64 `json:"requestRatio,omitempty"`
	EmulatorCPURatio float64 `json:"emulatorCpuRatio,omitempty"`
	BenchCPURatio    float64 `json:"benchCpuRatio,omitempty"`
	// The lowest and highest of the rounds' CPU ratios.
	EmulatorCPURatioRange [2]float64 `json:"emulatorCpuRatioRange,omitzero"`
	BenchCPURatioRange    [2]float64 `json:"benchCpuRatioRange,omitzero"`

	// Each round's CPU ratios: the arm's run over the mean of the
	// reference's runs just before and after it.
	emuRatios, ownRatios []float64
}

// GrantRound is one run of an arm, per event (of the arm's Events).
type GrantRound struct {
	WRUPerEvent      float64 `json:"wruPerEvent"`
	RRUPerEvent      float64 `json:"rruPerEvent"`
	RequestsPerEvent float64 `json:"requestsPerEvent"`
	// TransactWriteItems attempts (SDK retries included) and the canceled
	// ones, per event; redeliveries: deliveries beyond one per event.
	WritesPerEvent       float64 `json:"writesPerEvent"`
	CanceledPerEvent     float64 `json:"canceledPerEvent"`
	RedeliveriesPerEvent float64 `json:"redeliveriesPerEvent"`
	FailedWRUShare       float64 `json:"failedWruShare"`
	// CPU per event: DynamoDB Local's (0 when its process is not known)
	// and this process's (handlers, SDK, bookkeeping).
	EmulatorCPUMsPerEvent float64 `json:"emulatorCpuMsPerEvent"`
	BenchCPUMsPerEvent    float64 `json:"benchCpuMsPerEvent"`
	// FailedCalls: canceled transactions by reason.
	FailedCalls map[string]int `json:"failedCalls,omitempty"`
	Applied     int            `json:"applied"`
}

// GrantsReport is the scenario's result.
type GrantsReport struct {
	Config GrantsConfig `json:"config"`
	Arms   []*GrantArm  `json:"arms"`
}

// grantArms lists the arms: the reference first, then by grants on the
// item; the contended ones last.
func grantArms(c GrantsConfig) []*GrantArm {
	var arms []*GrantArm
	counts := slices.Clone(c.GrantCounts)
	slices.Sort(counts)
	counts = slices.Compact(counts)
	if counts[0] != 0 {
		counts = append([]int{0}, counts...) // the reference is always there
	}
	for _, n := range counts {
		draws := []GrantDraw{DrawAllowance, DrawOneGrant, DrawSeveral}
		if n == 0 {
			draws = draws[:1]
		}
		for _, d := range draws {
			arms = append(arms, &GrantArm{Draw: d, Grants: n, Events: c.Events})
		}
	}
	arms = append(arms, &GrantArm{Draw: DrawAllowance, Contended: true, Events: c.ContendedEvents},
		&GrantArm{Draw: DrawOneGrant, Grants: 1, Contended: true, Events: c.ContendedEvents})
	for _, a := range arms {
		a.Name = armName(a)
		a.Amount, a.Shape = armAmount(a).String(), armShape(a)
		switch {
		case a.Contended && !(a.Draw == DrawAllowance && a.Grants == 0):
			a.Reference = armName(&GrantArm{Draw: DrawAllowance, Contended: true})
		case !a.Contended && !(a.Draw == DrawAllowance && a.Grants == 0):
			a.Reference = armName(&GrantArm{Draw: DrawAllowance})
		}
	}
	return arms
}

func armName(a *GrantArm) string {
	grants := fmt.Sprintf("%d grants", a.Grants)
	if a.Grants == 1 {
		grants = "1 grant"
	}
	name := fmt.Sprintf("%s, %s on the item", a.Draw, grants)
	if a.Draw == DrawAllowance && a.Grants == 0 {
		name = "allowance, no grants (today)"
	}
	if a.Contended {
		name = "contended: " + name
	}
	return name
}

// armAmount is what each of the arm's consumes asks for.
func armAmount(a *GrantArm) usage.Decimal {
	switch {
	case a.Contended:
		return usage.DecimalFromInt(1)
	case a.Draw == DrawSeveral:
		// The allowance's 2, the first grants emptied, 3 of the next one.
		emptied := min(a.Grants, 3) - 1
		return usage.DecimalFromInt(int64(2 + emptied*grantAmount + 3))
	}
	return usage.DecimalFromInt(grantsConsumeSize)
}

// armShape is the draw each consume of the arm makes (see drawShape).
func armShape(a *GrantArm) string {
	switch a.Draw {
	case DrawOneGrant:
		return string(usage.BucketGrant)
	case DrawSeveral:
		if n := min(a.Grants, 3); n > 1 {
			return fmt.Sprintf("allowance+%d grants", n)
		}
		return "allowance+grant"
	}
	return string(usage.BucketAllowance)
}

// armWorkload is the arm's entitlements and messages. The messages have
// the same shapes in every arm (half with an idempotency key, all with
// metadata, as the default workload's), from the same seed; only their
// amounts and the entitlements' state differ.
func armWorkload(a *GrantArm, events int, now time.Time) *Workload {
	// Two generators: the messages' do not depend on the grants made.
	rng := rand.New(rand.NewPCG(20, 0x6772616e7473)) // "grants"
	grantRNG := rand.New(rand.NewPCG(21, 0x6772616e7473))
	now = now.UTC()
	monthStart := usage.PeriodStart(usage.ResetMonthly, nil, now)
	limit := usage.DecimalFromInt(grantsLimit)
	used := usage.Decimal{}
	switch a.Draw {
	case DrawOneGrant:
		used = limit
	case DrawSeveral:
		used = limit.Sub(usage.DecimalFromInt(2))
	}
	grantEach := usage.DecimalFromInt(grantAmount)
	if a.Contended {
		grantEach = limit // enough for every contended event
	}
	entitlements := events
	if a.Contended {
		entitlements = 1
	}
	w := &Workload{Now: now, index: map[usage.Scope]int{}}
	for i := range entitlements {
		s := usage.Scope{UserID: UserID(i), EntitlementKey: "API_CALLS"}
		e := Entitlement{Scope: s, Limit: &limit, Used: used, ResetPeriod: usage.ResetMonthly, PeriodStart: &monthStart}
		for g := range a.Grants {
			// Distinct expiries order the draws: the earliest first.
			exp := now.Add(30*24*time.Hour + time.Duration(g)*time.Hour).Truncate(time.Second)
			e.Grants = append(e.Grants, GrantSpec{ID: "topup-" + uuidFrom(grantRNG), Amount: grantEach, ExpiresAt: &exp})
		}
		w.index[s] = len(w.Entitlements)
		w.Entitlements = append(w.Entitlements, e)
	}
	amount := armAmount(a)
	for i := range events {
		e := &w.Entitlements[min(i, len(w.Entitlements)-1)]
		ev := usage.NewEvent(e.Scope.UserID, e.Scope.EntitlementKey)
		ev.Amount = amount
		m, _ := freshMessage(rng, ev)
		w.Messages = append(w.Messages, m)
		e.Offered = e.Offered.Add(amount)
	}
	w.Config = WorkloadConfig{Events: events, Users: entitlements, EntitlementsPerUser: 1}
	return w
}

// RunGrants runs the grants scenario: every arm once a round (after a
// warm-up round, if asked), each run on tables of its own, checked as
// every run is; it fails when a run fails its check or an arm's consumes
// did not all draw as the arm says (so an arm never measures something
// else). Within a round the reference runs before the first arm it is
// the reference of and again after each of them, so that an arm's CPU is
// compared with the reference's runs just before and after it (the
// machine's load and DynamoDB Local's JIT drift within a round).
func RunGrants(ctx context.Context, cfg GrantsConfig) (*GrantsReport, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	arms := grantArms(cfg)
	rep := &GrantsReport{Config: cfg, Arms: arms}
	byName := map[string]*GrantArm{}
	for _, a := range arms {
		byName[a.Name] = a
	}
	say := func(format string, args ...any) { fmt.Fprintf(cfg.Progress, format+"\n", args...) }
	runs := 0
	run := func(a *GrantArm, label string) (*Result, error) {
		runs++
		w := armWorkload(a, a.Events, time.Now())
		rc := RunConfig{Concurrency: cfg.Concurrency, BatchSize: cfg.BatchSize, ApplyConcurrency: cfg.ApplyConcurrency,
			TablePrefix: fmt.Sprintf("%s-%s-%d", cfg.TablePrefix, label, runs), EmulatorPID: cfg.EmulatorPID, Settle: cfg.Settle}
		if a.Contended {
			rc.Concurrency, rc.BatchSize = cfg.Consumers, cfg.ContendedBatch
		}
		fmt.Fprintf(cfg.Progress, "    %-58s", a.Name)
		t0 := time.Now()
		res, err := Run(ctx, Ours, w, rc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.Name, err)
		}
		if err := exercised(a, res); err != nil {
			return nil, err
		}
		fmt.Fprintf(cfg.Progress, "%6.3f WRU/event, %.3f ms DynamoDB Local CPU/event, %s (%.1f s with set-up)\n",
			res.WRUPerEvent, res.EmulatorCPUMsPerEvent, kv(res.Check.DrawShapes), time.Since(t0).Seconds())
		return res, nil
	}
	if cfg.Warmup {
		say("==> grants: warm-up round (not reported)")
		for _, a := range arms {
			if _, err := run(a, "warmup"); err != nil {
				return nil, err
			}
		}
	}
	for r := range cfg.Rounds {
		say("==> grants: round %d of %d", r+1, cfg.Rounds)
		label := fmt.Sprintf("r%d", r)
		var order []*GrantArm
		for _, a := range arms {
			if a.Reference != "" {
				order = append(order, a)
			}
		}
		if r%2 == 1 {
			slices.Reverse(order)
		}
		last := map[*GrantArm]GrantRound{} // each reference's latest run
		measure := func(a *GrantArm) (GrantRound, error) {
			res, err := run(a, label)
			if err != nil {
				return GrantRound{}, err
			}
			a.EntitlementBytes, a.EntitlementKB = res.EntitlementBytesMax, max(1, (res.EntitlementBytesMax+1023)/1024)
			a.EntitlementWrites = res.EntitlementWrites
			g := roundOf(res)
			a.Rounds = append(a.Rounds, g)
			return g, nil
		}
		for _, a := range order {
			ref := byName[a.Reference]
			before, ok := last[ref]
			if !ok {
				var err error
				if before, err = measure(ref); err != nil {
					return nil, err
				}
			}
			g, err := measure(a)
			if err != nil {
				return nil, err
			}
			after, err := measure(ref)
			if err != nil {
				return nil, err
			}
			last[ref] = after
			a.emuRatios = append(a.emuRatios, ratio(g.EmulatorCPUMsPerEvent, (before.EmulatorCPUMsPerEvent+after.EmulatorCPUMsPerEvent)/2))
			a.ownRatios = append(a.ownRatios, ratio(g.BenchCPUMsPerEvent, (before.BenchCPUMsPerEvent+after.BenchCPUMsPerEvent)/2))
		}
	}
	rep.summarize()
	return rep, nil
}

// exercised refuses a run in which not every event was applied and drew
// as its arm says, or whose entitlement items changed their 1 KB step
// (then their writes were priced by the smaller size).
func exercised(a *GrantArm, res *Result) error {
	switch {
	case res.FinalOutcomes["APPLIED"] != a.Events || res.AppliedEvents < a.Events:
		return fmt.Errorf("%s: %d of %d events applied in the end (%v)", a.Name, res.FinalOutcomes["APPLIED"], a.Events, res.FinalOutcomes)
	case len(res.Check.DrawShapes) != 1 || res.Check.DrawShapes[a.Shape] != a.Events:
		return fmt.Errorf("%s: the consumes drew %v; each should have drawn %q", a.Name, res.Check.DrawShapes, a.Shape)
	case res.EntitlementKBChanged > 0:
		return fmt.Errorf("%s: %d entitlement items changed their size in 1 KB steps during the run", a.Name, res.EntitlementKBChanged)
	}
	return nil
}

func roundOf(res *Result) GrantRound {
	ev := float64(res.Events)
	r := GrantRound{WRUPerEvent: res.WRUPerEvent, RRUPerEvent: res.RRUPerEvent, RequestsPerEvent: res.DDBRequestsPerEvent,
		WritesPerEvent:        ratio(float64(res.RequestsByOperation["TransactWriteItems"]), ev),
		RedeliveriesPerEvent:  ratio(float64(res.Deliveries-res.Events), ev),
		FailedWRUShare:        res.FailedWRUShare,
		EmulatorCPUMsPerEvent: res.EmulatorCPUMsPerEvent, BenchCPUMsPerEvent: res.BenchCPUMsPerEvent, Applied: res.AppliedEvents}
	canceled := 0
	for k, n := range res.FailedCalls {
		if strings.HasPrefix(k, "TransactWriteItems: ") {
			canceled += n
			if r.FailedCalls == nil {
				r.FailedCalls = map[string]int{}
			}
			r.FailedCalls[k] = n
		}
	}
	r.CanceledPerEvent = ratio(float64(canceled), ev)
	return r
}

// summarize takes the medians and the ratios to each arm's reference.
func (rep *GrantsReport) summarize() {
	byName := map[string]*GrantArm{}
	for _, a := range rep.Arms {
		byName[a.Name] = a
		med := func(f func(GrantRound) float64) float64 {
			xs := make([]float64, len(a.Rounds))
			for i, r := range a.Rounds {
				xs[i] = f(r)
			}
			return median(xs)
		}
		a.Median = GrantRound{
			WRUPerEvent:           med(func(r GrantRound) float64 { return r.WRUPerEvent }),
			RRUPerEvent:           med(func(r GrantRound) float64 { return r.RRUPerEvent }),
			RequestsPerEvent:      med(func(r GrantRound) float64 { return r.RequestsPerEvent }),
			WritesPerEvent:        med(func(r GrantRound) float64 { return r.WritesPerEvent }),
			CanceledPerEvent:      med(func(r GrantRound) float64 { return r.CanceledPerEvent }),
			RedeliveriesPerEvent:  med(func(r GrantRound) float64 { return r.RedeliveriesPerEvent }),
			FailedWRUShare:        med(func(r GrantRound) float64 { return r.FailedWRUShare }),
			EmulatorCPUMsPerEvent: med(func(r GrantRound) float64 { return r.EmulatorCPUMsPerEvent }),
			BenchCPUMsPerEvent:    med(func(r GrantRound) float64 { return r.BenchCPUMsPerEvent }),
			Applied:               int(med(func(r GrantRound) float64 { return float64(r.Applied) })),
		}
	}
	for _, a := range rep.Arms {
		ref := byName[a.Reference]
		if ref == nil {
			continue
		}
		a.SameWriteAsReference = maps.Equal(writeShapes(a.EntitlementWrites), writeShapes(ref.EntitlementWrites))
		a.WRURatio = ratio(a.Median.WRUPerEvent, ref.Median.WRUPerEvent)
		a.RRURatio = ratio(a.Median.RRUPerEvent, ref.Median.RRUPerEvent)
		a.RequestRatio = ratio(a.Median.RequestsPerEvent, ref.Median.RequestsPerEvent)
		emu, cpu := a.emuRatios, a.ownRatios
		a.EmulatorCPURatio, a.BenchCPURatio = median(emu), median(cpu)
		if len(emu) > 0 {
			a.EmulatorCPURatioRange = [2]float64{slices.Min(emu), slices.Max(emu)}
			a.BenchCPURatioRange = [2]float64{slices.Min(cpu), slices.Max(cpu)}
		}
	}
}

// writeShapes is the set of writes' expressions with the exact pin of
// the grants as read written one way, whether they were absent or a map.
func writeShapes(writes map[string]int) map[string]bool {
	out := make(map[string]bool, len(writes))
	for k := range writes {
		out[strings.ReplaceAll(k, "#grants = :grants", "attribute_not_exists(#grants)")] = true
	}
	return out
}

// median of xs (the mean of the middle two for an even count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// PrintGrants writes the scenario's human-readable report.
func PrintGrants(out io.Writer, rep *GrantsReport) {
	c := rep.Config
	fmt.Fprintf(out, "grants scenario: %d round(s), medians; uncontended arms: %d events each, every event on its own entitlement (one transaction and one cold read each), %d invocations, batches of %d, all queued at the start; contended arms: %d events on one entitlement, %d consumers, batches of %d\n",
		c.Rounds, c.Events, c.Concurrency, c.BatchSize, c.ContendedEvents, c.Consumers, c.ContendedBatch)
	fmt.Fprintf(out, "entitlements: limit %d; grants of %d each (contended: one of %d); consumes of %d (several grants: the allowance's last 2, then the grants)\n\n",
		grantsLimit, grantAmount, grantsLimit, grantsConsumeSize)
	// The entitlement writes' expressions, numbered in the order met.
	var shapes []string
	label := func(m map[string]int) string {
		var ls []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			i := slices.Index(shapes, k)
			if i < 0 {
				shapes, i = append(shapes, k), len(shapes)
			}
			ls = append(ls, fmt.Sprintf("W%d", i+1))
		}
		return strings.Join(ls, ",")
	}
	fmt.Fprintf(out, "  %-58s %-20s %6s %5s  %7s %7s %8s  %7s %7s %7s  %8s %8s  %9s %9s %9s  %s\n",
		"arm", "draw", "bytes", "KB", "WRU/ev", "RRU/ev", "req/ev", "WRU x", "RRU x", "req x", "emu CPU x", "own CPU x", "writes/ev", "cancel/ev", "redeliv/ev", "write")
	for _, a := range rep.Arms {
		ratios := func(x float64) string {
			if a.Reference == "" {
				return "ref"
			}
			return fmt.Sprintf("%.2f", x)
		}
		m := a.Median
		fmt.Fprintf(out, "  %-58s %-20s %6d %5d  %7.3f %7.3f %8.3f  %7s %7s %7s  %8s %8s  %9.3f %9.4f %9.4f  %s\n",
			a.Name, a.Shape, a.EntitlementBytes, a.EntitlementKB, m.WRUPerEvent, m.RRUPerEvent, m.RequestsPerEvent,
			ratios(a.WRURatio), ratios(a.RRURatio), ratios(a.RequestRatio), ratios(a.EmulatorCPURatio), ratios(a.BenchCPURatio),
			m.WritesPerEvent, m.CanceledPerEvent, m.RedeliveriesPerEvent, label(a.EntitlementWrites))
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "  write: the entitlement item's update in each arm's transactions, by its expressions (values are placeholders)")
	for i, sh := range shapes {
		fmt.Fprintf(out, "    W%d: %s\n", i+1, sh)
	}
	fmt.Fprintln(out)
	for _, a := range rep.Arms {
		var failed []string
		for i, r := range a.Rounds {
			if len(r.FailedCalls) > 0 {
				failed = append(failed, fmt.Sprintf("round %d: %s", i+1, kv(r.FailedCalls)))
			}
		}
		if len(failed) > 0 {
			fmt.Fprintf(out, "  %s: canceled transactions %s\n", a.Name, strings.Join(failed, "; "))
		}
	}
	fmt.Fprintln(out, "  x: the arm's median over its reference's (no grants, from the allowance; the contended arms' the contended one); CPU: the median of the rounds' ratios, each the arm's run over the mean of the reference's runs just before and after it")
	for _, a := range rep.Arms {
		if a.Reference != "" && len(a.Rounds) > 1 {
			fmt.Fprintf(out, "  CPU ratios' range over the rounds: %s: DynamoDB Local %.2f-%.2f, this process %.2f-%.2f\n",
				a.Name, a.EmulatorCPURatioRange[0], a.EmulatorCPURatioRange[1], a.BenchCPURatioRange[0], a.BenchCPURatioRange[1])
		}
	}
}
