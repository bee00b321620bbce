package bench

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/usage"
)

// The arms, without DynamoDB: each size once, ascending, its reference
// first; a pool arm's workload is its reference's messages with the
// members naming the pool, and the pool's item.
func TestPoolArms(t *testing.T) {
	arms := poolArms(PoolsConfig{Members: []int{10, 1, 10}, Events: 50})
	var names []string
	for _, a := range arms {
		names = append(names, a.Name+" | "+a.Reference)
	}
	want := []string{
		"1 member, no pool (today) | ",
		"pool of 1 member | 1 member, no pool (today)",
		"10 members, no pool (today) | ",
		"pool of 10 members | 10 members, no pool (today)",
	}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Errorf("arms:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	ref, pool := poolsWorkload(10, 50, false, 7, testNow), poolsWorkload(10, 50, true, 7, testNow)
	if len(ref.Pools) != 0 || len(pool.Pools) != 1 || pool.Pools[0].Scope() != usage.PoolScope(poolsPoolID, poolsKey) {
		t.Fatalf("pools: reference %v, pool arm %v", ref.Pools, pool.Pools)
	}
	if len(ref.Entitlements) != 10 || len(pool.Entitlements) != 10 || len(ref.Messages) != 50 || len(pool.Messages) != 50 {
		t.Fatalf("%d and %d entitlements, %d and %d messages", len(ref.Entitlements), len(pool.Entitlements), len(ref.Messages), len(pool.Messages))
	}
	members := map[string]bool{}
	for i := range pool.Messages {
		a, b := ref.Messages[i], pool.Messages[i]
		if a.ID != b.ID || a.Body != b.Body || a.Scope != b.Scope {
			t.Fatalf("message %d differs between the pool arm and its reference", i)
		}
		if a.Amount.String() != "1" || a.Kind != Fresh {
			t.Errorf("message %d: %s of %s", i, a.Kind, a.Amount)
		}
		members[a.Scope.UserID] = true
	}
	if len(members) < 5 {
		t.Errorf("50 events reached only %d of 10 members", len(members))
	}
	for i := range pool.Entitlements {
		if pool.Entitlements[i].Pool != poolsPoolID || ref.Entitlements[i].Pool != "" {
			t.Errorf("entitlement %d: pool %q in the pool arm, %q in the reference", i, pool.Entitlements[i].Pool, ref.Entitlements[i].Pool)
		}
	}
	if other := poolsWorkload(10, 50, true, 8, testNow); other.Messages[0].ID == pool.Messages[0].ID {
		t.Error("another seed, the same messages")
	}
}

// The ceiling is arithmetic: 1,000 WCU a second per partition, 2 WCU per
// KB of the item for each transactional write.
func TestPoolCeiling(t *testing.T) {
	for _, c := range []struct {
		name                                  string
		bytes                                 int
		perEvent, attempts, perTx             float64
		kb                                    int
		writesPerSecond, txPerSecond, evPerSe float64
	}{
		{"every event its own transaction", 120, 1, 1, 1, 1, 500, 500, 500},
		{"1.6 events a transaction, one pool write each", 120, 0.625, 0.625, 1.6, 1, 500, 500, 800},
		{"50 events a transaction", 1024, 0.02, 0.02, 50, 1, 500, 500, 25000},
		{"a 1.5 KB pool item", 1536, 1, 1, 1, 2, 250, 250, 250},
		{"one transaction writing the pool for a whole batch of 100", 300, 0.01, 0.01, 100, 1, 500, 500, 50000},
		{"no pool written", 0, 0, 0, 1.5, 1, 500, 0, 0},
	} {
		got := poolCeiling(c.bytes, c.perEvent, c.attempts, c.perTx)
		if got.PoolItemKB != c.kb || got.PoolWritesPerSecond != c.writesPerSecond || math.Abs(got.TransactionsPerSecond-c.txPerSecond) > 1e-9 || math.Abs(got.EventsPerSecond-c.evPerSe) > 1e-6 {
			t.Errorf("%s: %+v", c.name, got)
		}
	}
	if got := poolCeiling(100, 0.5, 0.6, 2); math.Abs(got.EventsPerSecondWithCanceled-500/0.6) > 1e-9 || got.EventsPerSecond != 1000 {
		t.Errorf("with canceled writes: %+v", got)
	}
}

// A run's tally of one pool arm: medians, ratios to the reference, and
// the ceiling at the measured writes of the pool.
func TestPoolsSummarize(t *testing.T) {
	ref := &PoolArm{Name: "r", Events: 100, Runs: []PoolRun{
		{WRUPerEvent: 4, TotalUSDPerMillion: 3, EventsPerSecond: 500},
		{WRUPerEvent: 4, TotalUSDPerMillion: 3, EventsPerSecond: 400},
	}}
	pool := &PoolArm{Name: "p", Pool: true, Reference: "r", Events: 100, PoolItemBytes: 200,
		Runs:      []PoolRun{{WRUPerEvent: 6, TotalUSDPerMillion: 4.5, EventsPerSecond: 300, PoolItemWritesPerEvent: 0.5, EventsPerTransaction: 2, PoolItemWritesCanceled: 10}},
		epsRatios: []float64{0.7, 0.6, 0.8}, emuRatios: []float64{1.5}, ownRatios: []float64{1.2}}
	rep := &PoolsReport{Arms: []*PoolArm{ref, pool}}
	rep.summarize()
	if ref.Median.EventsPerSecond != 450 || ref.Ceiling != nil {
		t.Errorf("reference: median %v events/s, ceiling %v", ref.Median.EventsPerSecond, ref.Ceiling)
	}
	if pool.WRURatio != 1.5 || pool.USDRatio != 1.5 || pool.EventsPerSecondRatio != 0.7 || pool.EventsPerSecondRatioRange != [2]float64{0.6, 0.8} {
		t.Errorf("ratios: WRU %v, USD %v, events/s %v %v", pool.WRURatio, pool.USDRatio, pool.EventsPerSecondRatio, pool.EventsPerSecondRatioRange)
	}
	c := pool.Ceiling
	if c == nil || c.EventsPerSecond != 1000 || c.TransactionsPerSecond != 500 || math.Abs(c.PoolWriteAttemptsPerEvent-0.6) > 1e-9 {
		t.Errorf("ceiling %+v", c)
	}
}

// The scenario, tiny, end to end on DynamoDB Local: every arm ran (a
// reference twice, before and after its pool), every event was applied,
// the pool's used is its members' sum (the check), the units follow the
// items written (2 WRU each in a transaction), and a pool arm writes the
// pool's item once a transaction.
func TestPoolsScenario(t *testing.T) {
	emulator.Env(t)
	var progress strings.Builder
	rep, err := RunPools(context.Background(), PoolsConfig{Events: 40, Members: []int{1, 4}, Rounds: 1, Concurrency: 3, BatchSize: 10,
		Window: 50 * time.Millisecond, TablePrefix: emulator.UniqueName(t, "pools"), Progress: &progress})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if len(rep.Arms) != 4 {
		t.Fatalf("%d arms", len(rep.Arms))
	}
	for _, a := range rep.Arms {
		runs := 2
		if a.Pool {
			runs = 1
		}
		m := a.Median
		if len(a.Runs) != runs || m.Applied != 40 || m.EventsPerTransaction < 1 || m.EventsPerSecond <= 0 || m.BatchP99Ms <= 0 {
			t.Errorf("%s: %d runs (want %d), median %+v", a.Name, len(a.Runs), runs, m)
		}
		// Units by the items written, when no transaction was canceled:
		// 2 WRU for each ledger entry, member's item and pool's item
		// written in a transaction.
		if want := 2 + 2*m.MemberItemWritesPerEvent + 2*m.PoolItemWritesPerEvent; m.CanceledPerEvent == 0 && math.Abs(m.WRUPerEvent-want) > 1e-9 {
			t.Errorf("%s: %v WRU per event at %v member and %v pool writes per event, want %v", a.Name, m.WRUPerEvent, m.MemberItemWritesPerEvent, m.PoolItemWritesPerEvent, want)
		}
		if m.MemberItemWritesPerEvent <= 0 || m.MemberItemWritesPerEvent > 1 {
			t.Errorf("%s: %v member writes per event", a.Name, m.MemberItemWritesPerEvent)
		}
		switch {
		case !a.Pool && (m.PoolItemWritesPerEvent != 0 || m.PoolItemReadsPerEvent != 0 || a.Ceiling != nil):
			t.Errorf("%s: the reference wrote or read a pool: %+v", a.Name, m)
		case a.Pool && math.Abs(m.PoolItemWritesPerEvent*m.EventsPerTransaction-1) > 1e-9:
			t.Errorf("%s: %v pool writes per event at %v events per transaction: not one a transaction", a.Name, m.PoolItemWritesPerEvent, m.EventsPerTransaction)
		case a.Pool && (m.PoolItemReadsPerEvent <= 0 || a.PoolItemBytes <= 0 || a.PoolItemBytes > 1024):
			t.Errorf("%s: %v pool reads per event, pool item %d bytes", a.Name, m.PoolItemReadsPerEvent, a.PoolItemBytes)
		case a.Pool && (a.Ceiling == nil || a.Ceiling.PoolWritesPerSecond != 500 || math.Abs(a.Ceiling.EventsPerSecond-500/m.PoolItemWritesPerEvent) > 1e-6):
			t.Errorf("%s: ceiling %+v", a.Name, a.Ceiling)
		case a.Pool && (a.EventsPerSecondRatio <= 0 || a.WRURatio <= 1):
			// (No CPU ratio: the test does not know DynamoDB Local's process.)
			t.Errorf("%s: ratios events/s %v, WRU %v", a.Name, a.EventsPerSecondRatio, a.WRURatio)
		}
	}
	var out strings.Builder
	PrintPools(&out, rep)
	for _, want := range []string{"pool of 4 members", "ceiling of one pool item", "transactions/s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
}

// The check holds a pool to its members' applied outcomes: outcomes
// claiming consumes that were never written fail it for the pool too.
func TestVerifyChecksThePool(t *testing.T) {
	emulator.Env(t)
	ctx := context.Background()
	w := poolsWorkload(3, 12, true, 1, time.Now())
	cfg, err := NewAWSConfig(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := dynamodb.NewFromConfig(cfg)
	tb := tables{entitlements: emulator.UniqueName(t, "ent"), ledger: emulator.UniqueName(t, "ledger")}
	defer dropTables(c, tb)
	if err := createTables(ctx, c, tb); err != nil {
		t.Fatal(err)
	}
	if err := seed(ctx, c, tb.entitlements, w); err != nil {
		t.Fatal(err)
	}
	var none, claimed []Delivery
	for i := range w.Messages {
		none = append(none, Delivery{Message: i, Receive: 1, Status: usage.Rejected, Reason: usage.ReasonLimitExceeded})
		claimed = append(claimed, Delivery{Message: i, Receive: 1, Status: usage.Applied})
	}
	if ch := verify(ctx, c, Ours, tb, w, none); !ch.OK || ch.PoolsChecked != 1 {
		t.Fatalf("nothing applied, nothing written: %+v", ch)
	}
	ch := verify(ctx, c, Ours, tb, w, claimed)
	if ch.OK || !strings.Contains(strings.Join(ch.Errors, "\n"), "pool team-bench of API_CALLS: used is 0") {
		t.Errorf("the check did not catch the pool's used:\n%s", strings.Join(ch.Errors, "\n"))
	}
}
