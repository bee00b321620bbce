package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

// The pools scenario (usage-bench --pools) measures what a team pool
// costs ours: one pool with 1, 10 or 100 members (the entitlements of one
// key that name the pool in their pool attribute, as usagectl entitlement
// put --pool and the playground seed them; the pool's own item written as
// dynamodb.PutPool writes it), every event a consume of 1 by a member
// drawn at random, well within the members' caps and the pool's limit.
// Each pool arm runs side by side with its reference: the same members
// and the same messages without the pool, today's single-entitlement
// path. Both go through Run, the processor and store every other scenario
// uses, delivered as make bench delivers by default (Lambda invocations,
// batches of up to 100 within 1 s, every message queued at the start).
//
// What a rerun shows when the service changes how a pool's members are
// written: events per committed transaction, and writes of the pool's
// item per event (today every member's group is a transaction of its own
// that writes the pool).

// The scenario's pool, key and limits: caps and the pool's limit far
// above what a run consumes, so that every event is applied and every
// draw is from the allowance (the writes that compose with other
// members' writes).
const (
	poolsPoolID = "team-bench"
	poolsKey    = "API_CALLS"
	poolsLimit  = 1_000_000_000
)

// DynamoDB's documented limits the ceiling of one pool item is computed
// from (arithmetic, not a measurement): a partition serves at most 1,000
// write capacity units a second, and a transactional write of an item
// costs 2 units per KB of it.
const (
	partitionWCUPerSecond = 1000
	transactionalWCUPerKB = 2
)

// PoolsConfig shapes the pools scenario.
type PoolsConfig struct {
	// Events per run (default 3000), the same in every arm.
	Events int
	// Members: the pool sizes (default 1, 10, 100); each is a pool arm and
	// its reference.
	Members []int
	// Rounds: in each, every size runs its reference, its pool arm and its
	// reference again (every other round the sizes in reverse order); the
	// report takes medians (default 5).
	Rounds int
	// Warmup: a round of every arm first, not reported.
	Warmup bool
	// Concurrency, BatchSize and Window deliver every arm (Lambda
	// invocations; default 8, 100 and 1 s, the Terraform module's).
	Concurrency int
	BatchSize   int
	Window      time.Duration
	// ApplyConcurrency is the Processor's Parallel (default 8).
	ApplyConcurrency int
	// Seed draws the messages' members, IDs and keys (default 1).
	Seed uint64
	// Settle is each run's pause between its set-up and its measurement
	// (RunConfig.Settle).
	Settle      time.Duration
	TablePrefix string
	EmulatorPID int
	Progress    io.Writer
}

func (c *PoolsConfig) defaults() {
	if c.Events <= 0 {
		c.Events = 3000
	}
	if len(c.Members) == 0 {
		c.Members = []int{1, 10, 100}
	}
	if c.Rounds <= 0 {
		c.Rounds = 5
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.Window <= 0 {
		c.Window = time.Second
	}
	if c.ApplyConcurrency <= 0 {
		c.ApplyConcurrency = 8
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.TablePrefix == "" {
		c.TablePrefix = "pools"
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Validate refuses pool sizes of no member.
func (c PoolsConfig) Validate() error {
	for _, n := range c.Members {
		if n < 1 {
			return fmt.Errorf("members of a pool: %d is not at least 1", n)
		}
	}
	return nil
}

// PoolArm is one configuration of the scenario and what it measured: a
// pool of Members members, or (Pool false) its reference, the same
// members without the pool.
type PoolArm struct {
	Name    string `json:"name"`
	Members int    `json:"members"`
	Pool    bool   `json:"pool"`
	// Reference is the arm the ratios compare with (a pool arm's).
	Reference string `json:"reference,omitempty"`
	Events    int    `json:"events"`
	// PoolItemBytes: the pool's item as the run started (ItemSize), by
	// which its writes are priced.
	PoolItemBytes int `json:"poolItemBytes,omitempty"`

	// Runs: a pool arm's, one a round; a reference's, two a round (before
	// and after its pool arm). Median: the medians over them.
	Runs   []PoolRun `json:"runs"`
	Median PoolRun   `json:"median"`

	// Ratios to the reference, of a pool arm: of the medians for units,
	// requests and dollars; for events/s and CPU the median of the
	// rounds' ratios, each the pool arm's run over the mean of the
	// reference's runs just before and after it, and their range.
	WRURatio                  float64    `json:"wruRatio,omitempty"`
	RRURatio                  float64    `json:"rruRatio,omitempty"`
	RequestRatio              float64    `json:"requestRatio,omitempty"`
	USDRatio                  float64    `json:"usdRatio,omitempty"`
	EventsPerSecondRatio      float64    `json:"eventsPerSecondRatio,omitempty"`
	EventsPerSecondRatioRange [2]float64 `json:"eventsPerSecondRatioRange,omitzero"`
	EmulatorCPURatio          float64    `json:"emulatorCpuRatio,omitempty"`
	EmulatorCPURatioRange     [2]float64 `json:"emulatorCpuRatioRange,omitzero"`
	BenchCPURatio             float64    `json:"benchCpuRatio,omitempty"`

	// Ceiling: the arithmetic of one pool item's ceiling at this arm's
	// measured writes of the pool per event (a pool arm's).
	Ceiling *PoolCeiling `json:"ceiling,omitempty"`

	epsRatios, emuRatios, ownRatios []float64
}

// PoolRun is one run of an arm, per event (of the arm's Events) unless
// named otherwise.
type PoolRun struct {
	WRUPerEvent      float64 `json:"wruPerEvent"`
	RRUPerEvent      float64 `json:"rruPerEvent"`
	RequestsPerEvent float64 `json:"requestsPerEvent"`
	// DynamoDBUSDPerMillion: the request units at on-demand prices;
	// TotalUSDPerMillion: the whole bill (SQS and Lambda added).
	DynamoDBUSDPerMillion float64 `json:"dynamodbUsdPerMillionEvents"`
	TotalUSDPerMillion    float64 `json:"totalUsdPerMillionEvents"`
	// EventsPerSecond on DynamoDB Local, CPU-bound on the machine's cores:
	// compare as ratios only.
	EventsPerSecond       float64 `json:"eventsPerSecond"`
	EmulatorCPUMsPerEvent float64 `json:"emulatorCpuMsPerEvent"`
	BenchCPUMsPerEvent    float64 `json:"benchCpuMsPerEvent"`
	EmulatorCores         float64 `json:"emulatorCores"`
	// Batch (invocation) latency; with every message queued at the start
	// the end-to-end latency is the wait in the queue, not reported here.
	BatchP50Ms    float64 `json:"batchP50Ms"`
	BatchP99Ms    float64 `json:"batchP99Ms"`
	MeanBatchSize float64 `json:"meanBatchSize"`
	// EventsPerTransaction: applied events per committed transaction.
	EventsPerTransaction float64 `json:"eventsPerTransaction"`
	// PoolItemWritesPerEvent: the committed transactions' writes of the
	// pool's item; PoolItemReadsPerEvent: GetItems of it;
	// MemberItemWritesPerEvent: their writes of the members' items.
	PoolItemWritesPerEvent   float64 `json:"poolItemWritesPerEvent"`
	PoolItemReadsPerEvent    float64 `json:"poolItemReadsPerEvent"`
	MemberItemWritesPerEvent float64 `json:"memberItemWritesPerEvent"`
	// Contention: canceled transactions (per event, and by reason), the
	// failed conditions by item, the pool's writes in canceled
	// transactions, write units spent on failed writes; RETRY outcomes
	// (deliveries, by cause) and redeliveries (deliveries beyond one an
	// event).
	CanceledPerEvent       float64        `json:"canceledPerEvent"`
	CanceledTransactions   map[string]int `json:"canceledTransactions,omitempty"`
	FailedConditions       map[string]int `json:"failedConditions,omitempty"`
	PoolItemWritesCanceled int            `json:"poolItemWritesCanceled"`
	FailedWRUShare         float64        `json:"failedWruShare"`
	Retries                int            `json:"retries"`
	RetryCauses            map[string]int `json:"retryCauses,omitempty"`
	Redeliveries           int            `json:"redeliveries"`
	Applied                int            `json:"applied"`
}

// PoolCeiling is one pool item's ceiling, computed (not measured) from
// DynamoDB's documented limits and an arm's measured writes of the pool:
// a partition takes partitionWCUPerSecond, a transactional write of the
// item (under each started KB) transactionalWCUPerKB, so the item takes
// PoolWritesPerSecond transactional writes a second; at the measured
// writes per event and per transaction that is TransactionsPerSecond and
// EventsPerSecond. WithCanceled counts the writes of canceled
// transactions too (DynamoDB charges them).
type PoolCeiling struct {
	PoolItemKB               int     `json:"poolItemKb"`
	WCUPerPoolWrite          float64 `json:"wcuPerPoolWrite"`
	PoolWritesPerSecond      float64 `json:"poolWritesPerSecond"`
	PoolWritesPerEvent       float64 `json:"poolWritesPerEvent"`
	EventsPerTransaction     float64 `json:"eventsPerTransaction"`
	PoolWritesPerTransaction float64 `json:"poolWritesPerTransaction"`
	TransactionsPerSecond    float64 `json:"transactionsPerSecond"`
	EventsPerSecond          float64 `json:"eventsPerSecond"`
	// With the canceled transactions' writes of the pool too.
	PoolWriteAttemptsPerEvent   float64 `json:"poolWriteAttemptsPerEvent"`
	EventsPerSecondWithCanceled float64 `json:"eventsPerSecondWithCanceled"`
}

// poolCeiling computes the ceiling for a pool item of itemBytes written
// poolWritesPerEvent times an event (attemptsPerEvent with canceled
// transactions) at eventsPerTransaction applied events per committed
// transaction. Zero rates give a zero ceiling (no pool written).
func poolCeiling(itemBytes int, poolWritesPerEvent, attemptsPerEvent, eventsPerTransaction float64) PoolCeiling {
	kb := max(1, (itemBytes+1023)/1024)
	c := PoolCeiling{PoolItemKB: kb, WCUPerPoolWrite: float64(transactionalWCUPerKB * kb),
		PoolWritesPerEvent: poolWritesPerEvent, EventsPerTransaction: eventsPerTransaction, PoolWriteAttemptsPerEvent: attemptsPerEvent}
	c.PoolWritesPerSecond = partitionWCUPerSecond / c.WCUPerPoolWrite
	c.PoolWritesPerTransaction = poolWritesPerEvent * eventsPerTransaction
	c.TransactionsPerSecond = ratio(c.PoolWritesPerSecond, c.PoolWritesPerTransaction)
	c.EventsPerSecond = ratio(c.PoolWritesPerSecond, poolWritesPerEvent)
	c.EventsPerSecondWithCanceled = ratio(c.PoolWritesPerSecond, attemptsPerEvent)
	return c
}

// PoolsReport is the scenario's result.
type PoolsReport struct {
	Config PoolsConfig `json:"config"`
	Arms   []*PoolArm  `json:"arms"`
}

// poolArms lists the arms: for each pool size (ascending, once), its
// reference, then the pool.
func poolArms(c PoolsConfig) []*PoolArm {
	sizes := slices.Clone(c.Members)
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	var arms []*PoolArm
	for _, n := range sizes {
		ref := &PoolArm{Members: n, Events: c.Events}
		pool := &PoolArm{Members: n, Pool: true, Events: c.Events}
		ref.Name, pool.Name = poolArmName(ref), poolArmName(pool)
		pool.Reference = ref.Name
		arms = append(arms, ref, pool)
	}
	return arms
}

func poolArmName(a *PoolArm) string {
	members := fmt.Sprintf("%d members", a.Members)
	if a.Members == 1 {
		members = "1 member"
	}
	if a.Pool {
		return "pool of " + members
	}
	return members + ", no pool (today)"
}

// poolsWorkload is an arm's entitlements and messages: members
// entitlements of poolsKey (naming the pool when pooled, and the pool's
// item then), and events consumes of 1, each by a member drawn at random.
// The messages depend on members, events and seed alone: a pool arm and
// its reference get the same ones.
func poolsWorkload(members, events int, pooled bool, seed uint64, now time.Time) *Workload {
	rng := rand.New(rand.NewPCG(seed, 0x706f6f6c73)) // "pools"
	now = now.UTC()
	monthStart := usage.PeriodStart(usage.ResetMonthly, nil, now)
	limit := usage.DecimalFromInt(poolsLimit)
	w := &Workload{Now: now, index: map[usage.Scope]int{}}
	for i := range members {
		s := usage.Scope{UserID: UserID(i), EntitlementKey: poolsKey}
		e := Entitlement{Scope: s, Limit: &limit, ResetPeriod: usage.ResetMonthly, PeriodStart: &monthStart}
		if pooled {
			e.Pool = poolsPoolID
		}
		w.index[s] = len(w.Entitlements)
		w.Entitlements = append(w.Entitlements, e)
	}
	if pooled {
		w.Pools = []Pool{{ID: poolsPoolID, EntitlementKey: poolsKey, Limit: &limit, ResetPeriod: usage.ResetMonthly, PeriodStart: &monthStart}}
	}
	one := usage.DecimalFromInt(1)
	for range events {
		e := &w.Entitlements[rng.IntN(members)]
		ev := usage.NewEvent(e.Scope.UserID, e.Scope.EntitlementKey)
		ev.Amount = one
		m, _ := freshMessage(rng, ev)
		w.Messages = append(w.Messages, m)
		e.Offered = e.Offered.Add(one)
	}
	w.Config = WorkloadConfig{Events: events, Users: members, EntitlementsPerUser: 1, Seed: seed}
	return w
}

// RunPools runs the pools scenario: every arm (after a warm-up round, if
// asked) once a round, a reference before and after its pool arm, each
// run on tables of its own and checked as every run is (the pool's used
// included); it fails when a run fails its check or did not exercise
// what its arm says (every event applied; a pool arm's ledger entries all
// recording the pool, its item written; a reference's pool never).
func RunPools(ctx context.Context, cfg PoolsConfig) (*PoolsReport, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	arms := poolArms(cfg)
	rep := &PoolsReport{Config: cfg, Arms: arms}
	say := func(format string, args ...any) { fmt.Fprintf(cfg.Progress, format+"\n", args...) }
	runs := 0
	run := func(a *PoolArm, label string) (*Result, error) {
		runs++
		w := poolsWorkload(a.Members, a.Events, a.Pool, cfg.Seed, time.Now())
		rc := RunConfig{Concurrency: cfg.Concurrency, BatchSize: cfg.BatchSize, Window: cfg.Window, ApplyConcurrency: cfg.ApplyConcurrency,
			TablePrefix: fmt.Sprintf("%s-%s-%d", cfg.TablePrefix, label, runs), EmulatorPID: cfg.EmulatorPID, Settle: cfg.Settle, Seed: cfg.Seed}
		fmt.Fprintf(cfg.Progress, "    %-32s", a.Name)
		t0 := time.Now()
		res, err := Run(ctx, Ours, w, rc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.Name, err)
		}
		if err := poolExercised(a, res); err != nil {
			return nil, err
		}
		fmt.Fprintf(cfg.Progress, "%7.0f events/s, %.3f WRU/event, %.2f events/transaction, %.3f pool writes/event, %.3f ms DynamoDB Local CPU/event (%.1f s with set-up)\n",
			res.EventsPerSecond, res.WRUPerEvent, res.AppliedPerTransaction, res.PoolItemWritesPerEvent, res.EmulatorCPUMsPerEvent, time.Since(t0).Seconds())
		return res, nil
	}
	if cfg.Warmup {
		say("==> pools: warm-up round (not reported)")
		for _, a := range arms {
			if _, err := run(a, "warmup"); err != nil {
				return nil, err
			}
		}
	}
	for r := range cfg.Rounds {
		say("==> pools: round %d of %d", r+1, cfg.Rounds)
		label := fmt.Sprintf("r%d", r)
		var pairs [][2]*PoolArm // reference, pool
		for i := 0; i+1 < len(arms); i += 2 {
			pairs = append(pairs, [2]*PoolArm{arms[i], arms[i+1]})
		}
		if r%2 == 1 {
			slices.Reverse(pairs)
		}
		measure := func(a *PoolArm) (PoolRun, error) {
			res, err := run(a, label)
			if err != nil {
				return PoolRun{}, err
			}
			if a.Pool {
				a.PoolItemBytes = res.PoolItemBytesMax
			}
			p := poolRunOf(res)
			a.Runs = append(a.Runs, p)
			return p, nil
		}
		for _, pair := range pairs {
			ref, pool := pair[0], pair[1]
			before, err := measure(ref)
			if err != nil {
				return nil, err
			}
			p, err := measure(pool)
			if err != nil {
				return nil, err
			}
			after, err := measure(ref)
			if err != nil {
				return nil, err
			}
			mean := func(f func(PoolRun) float64) float64 { return (f(before) + f(after)) / 2 }
			pool.epsRatios = append(pool.epsRatios, ratio(p.EventsPerSecond, mean(func(r PoolRun) float64 { return r.EventsPerSecond })))
			pool.emuRatios = append(pool.emuRatios, ratio(p.EmulatorCPUMsPerEvent, mean(func(r PoolRun) float64 { return r.EmulatorCPUMsPerEvent })))
			pool.ownRatios = append(pool.ownRatios, ratio(p.BenchCPUMsPerEvent, mean(func(r PoolRun) float64 { return r.BenchCPUMsPerEvent })))
		}
	}
	rep.summarize()
	return rep, nil
}

// poolExercised refuses a run that did not measure what its arm says.
func poolExercised(a *PoolArm, res *Result) error {
	switch {
	case res.FinalOutcomes["APPLIED"] != a.Events:
		return fmt.Errorf("%s: %d of %d events applied in the end (%v)", a.Name, res.FinalOutcomes["APPLIED"], a.Events, res.FinalOutcomes)
	case a.Pool && (res.Check.PoolsChecked != 1 || res.Check.PoolEntries != a.Events || res.PoolItemWrites == 0):
		return fmt.Errorf("%s: %d pools checked, %d of %d ledger entries recorded the pool, %d writes of the pool's item",
			a.Name, res.Check.PoolsChecked, res.Check.PoolEntries, a.Events, res.PoolItemWrites)
	case !a.Pool && (res.Check.PoolEntries != 0 || res.PoolItemWrites != 0):
		return fmt.Errorf("%s: without a pool, %d ledger entries recorded one and its item was written %d times", a.Name, res.Check.PoolEntries, res.PoolItemWrites)
	case res.EntitlementKBChanged > 0:
		return fmt.Errorf("%s: %d entitlement items changed their size in 1 KB steps during the run", a.Name, res.EntitlementKBChanged)
	}
	return nil
}

// poolRunOf takes a run's measurements.
func poolRunOf(res *Result) PoolRun {
	ev := float64(res.Events)
	p := PoolRun{WRUPerEvent: res.WRUPerEvent, RRUPerEvent: res.RRUPerEvent, RequestsPerEvent: res.DDBRequestsPerEvent,
		DynamoDBUSDPerMillion: res.CostUSDPerMillionEvents, TotalUSDPerMillion: res.TotalUSDPerMillionEvents,
		EventsPerSecond: res.EventsPerSecond, EmulatorCPUMsPerEvent: res.EmulatorCPUMsPerEvent, BenchCPUMsPerEvent: res.BenchCPUMsPerEvent,
		EmulatorCores: res.EmulatorCores, BatchP50Ms: res.P50Ms, BatchP99Ms: res.P99Ms, MeanBatchSize: res.MeanBatchSize,
		EventsPerTransaction: res.AppliedPerTransaction, PoolItemWritesPerEvent: res.PoolItemWritesPerEvent,
		PoolItemReadsPerEvent: ratio(float64(res.PoolItemReads), ev), PoolItemWritesCanceled: res.PoolItemWritesCanceled,
		MemberItemWritesPerEvent: res.EntitlementItemWritesPerEvent,
		FailedWRUShare:           res.FailedWRUShare, Redeliveries: res.Deliveries - res.Events, Applied: res.AppliedEvents}
	canceled := 0
	for k, n := range res.FailedCalls {
		if strings.HasPrefix(k, "TransactWriteItems: ") {
			canceled += n
			if p.CanceledTransactions == nil {
				p.CanceledTransactions = map[string]int{}
			}
			p.CanceledTransactions[strings.TrimPrefix(k, "TransactWriteItems: ")] = n
		}
	}
	p.CanceledPerEvent = ratio(float64(canceled), ev)
	for k, n := range res.FailedConditions {
		if n > 0 {
			if p.FailedConditions == nil {
				p.FailedConditions = map[string]int{}
			}
			p.FailedConditions[k] = n
		}
	}
	for k, n := range res.Outcomes {
		if cause, ok := strings.CutPrefix(k, string(usage.Retry)); ok {
			p.Retries += n
			if p.RetryCauses == nil {
				p.RetryCauses = map[string]int{}
			}
			p.RetryCauses[strings.TrimPrefix(cause, ":")] += n
		}
	}
	return p
}

// summarize takes the medians, the ratios to each pool arm's reference
// and the pool arms' ceilings.
func (rep *PoolsReport) summarize() {
	byName := map[string]*PoolArm{}
	for _, a := range rep.Arms {
		byName[a.Name] = a
		a.Median = medianPoolRun(a.Runs)
	}
	for _, a := range rep.Arms {
		ref := byName[a.Reference]
		if ref == nil {
			continue
		}
		a.WRURatio = ratio(a.Median.WRUPerEvent, ref.Median.WRUPerEvent)
		a.RRURatio = ratio(a.Median.RRUPerEvent, ref.Median.RRUPerEvent)
		a.RequestRatio = ratio(a.Median.RequestsPerEvent, ref.Median.RequestsPerEvent)
		a.USDRatio = ratio(a.Median.TotalUSDPerMillion, ref.Median.TotalUSDPerMillion)
		a.EventsPerSecondRatio, a.EmulatorCPURatio, a.BenchCPURatio = median(a.epsRatios), median(a.emuRatios), median(a.ownRatios)
		if len(a.epsRatios) > 0 {
			a.EventsPerSecondRatioRange = [2]float64{slices.Min(a.epsRatios), slices.Max(a.epsRatios)}
			a.EmulatorCPURatioRange = [2]float64{slices.Min(a.emuRatios), slices.Max(a.emuRatios)}
		}
		if a.Pool {
			attempts := a.Median.PoolItemWritesPerEvent + ratio(float64(a.Median.PoolItemWritesCanceled), float64(a.Events))
			c := poolCeiling(a.PoolItemBytes, a.Median.PoolItemWritesPerEvent, attempts, a.Median.EventsPerTransaction)
			a.Ceiling = &c
		}
	}
}

// medianPoolRun is the runs' medians, field by field; the counts'
// medians too, and the maps of the run with the median canceled
// transactions per event.
func medianPoolRun(runs []PoolRun) PoolRun {
	if len(runs) == 0 {
		return PoolRun{}
	}
	med := func(f func(PoolRun) float64) float64 {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = f(r)
		}
		return median(xs)
	}
	m := PoolRun{
		WRUPerEvent:              med(func(r PoolRun) float64 { return r.WRUPerEvent }),
		RRUPerEvent:              med(func(r PoolRun) float64 { return r.RRUPerEvent }),
		RequestsPerEvent:         med(func(r PoolRun) float64 { return r.RequestsPerEvent }),
		DynamoDBUSDPerMillion:    med(func(r PoolRun) float64 { return r.DynamoDBUSDPerMillion }),
		TotalUSDPerMillion:       med(func(r PoolRun) float64 { return r.TotalUSDPerMillion }),
		EventsPerSecond:          med(func(r PoolRun) float64 { return r.EventsPerSecond }),
		EmulatorCPUMsPerEvent:    med(func(r PoolRun) float64 { return r.EmulatorCPUMsPerEvent }),
		BenchCPUMsPerEvent:       med(func(r PoolRun) float64 { return r.BenchCPUMsPerEvent }),
		EmulatorCores:            med(func(r PoolRun) float64 { return r.EmulatorCores }),
		BatchP50Ms:               med(func(r PoolRun) float64 { return r.BatchP50Ms }),
		BatchP99Ms:               med(func(r PoolRun) float64 { return r.BatchP99Ms }),
		MeanBatchSize:            med(func(r PoolRun) float64 { return r.MeanBatchSize }),
		EventsPerTransaction:     med(func(r PoolRun) float64 { return r.EventsPerTransaction }),
		PoolItemWritesPerEvent:   med(func(r PoolRun) float64 { return r.PoolItemWritesPerEvent }),
		PoolItemReadsPerEvent:    med(func(r PoolRun) float64 { return r.PoolItemReadsPerEvent }),
		MemberItemWritesPerEvent: med(func(r PoolRun) float64 { return r.MemberItemWritesPerEvent }),
		CanceledPerEvent:         med(func(r PoolRun) float64 { return r.CanceledPerEvent }),
		PoolItemWritesCanceled:   int(med(func(r PoolRun) float64 { return float64(r.PoolItemWritesCanceled) })),
		FailedWRUShare:           med(func(r PoolRun) float64 { return r.FailedWRUShare }),
		Retries:                  int(med(func(r PoolRun) float64 { return float64(r.Retries) })),
		Redeliveries:             int(med(func(r PoolRun) float64 { return float64(r.Redeliveries) })),
		Applied:                  int(med(func(r PoolRun) float64 { return float64(r.Applied) })),
	}
	return m
}

// PrintPools writes the scenario's human-readable report.
func PrintPools(out io.Writer, rep *PoolsReport) {
	c := rep.Config
	fmt.Fprintf(out, "pools scenario: %d round(s), medians; %d events a run, consumes of 1 by members drawn at random (seed %d); %d invocations, batches of up to %d within %v, all queued at the start\n",
		c.Rounds, c.Events, c.Seed, c.Concurrency, c.BatchSize, c.Window)
	fmt.Fprintf(out, "each pool arm: one pool (%s of %s, limit %d) whose members (caps of %d) name it; its reference: the same members and messages without the pool; a round runs reference, pool, reference for each size\n\n",
		poolsPoolID, poolsKey, poolsLimit, poolsLimit)
	fmt.Fprintf(out, "  %-28s %7s %7s %7s %8s %8s %9s %9s %9s %11s %8s %11s %9s %10s %10s %9s %7s %7s\n",
		"arm", "WRU/ev", "RRU/ev", "req/ev", "USD/M db", "USD/M", "ev/s x", "emu ms/ev", "emu x", "p50/p99 ms", "ev/tx", "member w/ev", "pool w/ev", "pool r/ev", "cancel/ev", "failedWRU", "RETRY", "redeliv")
	for _, a := range rep.Arms {
		m := a.Median
		x := func(v float64) string {
			if a.Reference == "" {
				return "ref"
			}
			return fmt.Sprintf("%.2f", v)
		}
		fmt.Fprintf(out, "  %-28s %7.3f %7.3f %7.3f %8.3f %8.3f %9s %9.3f %9s %11s %8.2f %11.3f %9.3f %10.3f %10.4f %8.1f%% %7d %7d\n",
			a.Name, m.WRUPerEvent, m.RRUPerEvent, m.RequestsPerEvent, m.DynamoDBUSDPerMillion, m.TotalUSDPerMillion,
			x(a.EventsPerSecondRatio), m.EmulatorCPUMsPerEvent, x(a.EmulatorCPURatio), fmt.Sprintf("%.0f/%.0f", m.BatchP50Ms, m.BatchP99Ms),
			m.EventsPerTransaction, m.MemberItemWritesPerEvent, m.PoolItemWritesPerEvent, m.PoolItemReadsPerEvent, m.CanceledPerEvent, 100*m.FailedWRUShare, m.Retries, m.Redeliveries)
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "  USD/M db: DynamoDB request units per million events at on-demand prices; USD/M: the whole bill (SQS, Lambda added)")
	fmt.Fprintln(out, "  x: the pool arm's over its reference's; events/s and CPU: the median of the rounds' ratios, each the pool run over the mean of the reference's runs just before and after it")
	fmt.Fprintln(out, "  ev/tx: applied events per committed transaction; member w/ev, pool w/ev: the committed transactions' writes of members' items and of the pool's item per event; pool r/ev: reads of the pool's item per event")
	fmt.Fprintln(out, "  RETRY: deliveries that came back RETRY (median over the runs); redeliv: deliveries beyond one an event")
	for _, a := range rep.Arms {
		if a.Reference != "" && len(a.epsRatios) > 1 {
			fmt.Fprintf(out, "  %s: events/s ratio over the rounds %.2f-%.2f, DynamoDB Local CPU ratio %.2f-%.2f\n",
				a.Name, a.EventsPerSecondRatioRange[0], a.EventsPerSecondRatioRange[1], a.EmulatorCPURatioRange[0], a.EmulatorCPURatioRange[1])
		}
	}
	for _, a := range rep.Arms {
		var parts []string
		for i, r := range a.Runs {
			var bits []string
			if len(r.CanceledTransactions) > 0 {
				bits = append(bits, "canceled "+kv(r.CanceledTransactions))
			}
			if len(r.FailedConditions) > 0 {
				bits = append(bits, "failed conditions "+kv(r.FailedConditions))
			}
			if len(r.RetryCauses) > 0 {
				bits = append(bits, "RETRY "+kv(r.RetryCauses))
			}
			if len(bits) > 0 {
				parts = append(parts, fmt.Sprintf("run %d: %s", i+1, strings.Join(bits, ", ")))
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(out, "  %s: %s\n", a.Name, strings.Join(parts, "; "))
		}
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "  ceiling of one pool item: arithmetic from DynamoDB's documented limits (%d WCU a second per partition; a transactional write: %d WCU per KB of the item), at each pool arm's measured writes of the pool\n",
		partitionWCUPerSecond, transactionalWCUPerKB)
	for _, a := range rep.Arms {
		if a.Ceiling == nil {
			continue
		}
		ce := a.Ceiling
		fmt.Fprintf(out, "    %-20s item %d bytes (%d KB): %.0f WCU a write, %.0f pool writes/s; %.3f pool writes/event, %.2f events/transaction: %.0f transactions/s, %.0f events/s",
			a.Name, a.PoolItemBytes, ce.PoolItemKB, ce.WCUPerPoolWrite, ce.PoolWritesPerSecond, ce.PoolWritesPerEvent, ce.EventsPerTransaction, ce.TransactionsPerSecond, ce.EventsPerSecond)
		if ce.PoolWriteAttemptsPerEvent > ce.PoolWritesPerEvent {
			fmt.Fprintf(out, " (%.0f counting canceled transactions' writes)", ce.EventsPerSecondWithCanceled)
		}
		fmt.Fprintln(out)
	}
}
