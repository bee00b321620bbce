package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/usage"
)

func TestMain(m *testing.M) { emulator.Main(m) }

func smallWorkload(t *testing.T) *Workload {
	t.Helper()
	w, err := Generate(WorkloadConfig{Events: 300, Users: 20, EntitlementsPerUser: 2, HotUsers: 2, HotShare: 0.5,
		DuplicateShare: 0.1, InvalidShare: 0.05, LimitPressure: 0.2, Seed: 3}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// Both systems, end to end on DynamoDB Local: the correctness check
// passes, they agree on the outcomes that do not depend on the order in
// which racing invocations reach a limit, and ours makes fewer requests.
func TestRunBothSystems(t *testing.T) {
	emulator.Env(t)
	ctx := context.Background()
	w := smallWorkload(t)
	results := map[System]*Result{}
	for _, sys := range []System{Ours, Baseline} {
		res, err := Run(ctx, sys, w, RunConfig{Concurrency: 3, TablePrefix: emulator.UniqueName(t, string(sys))})
		if err != nil {
			t.Fatalf("%s: %v", sys, err)
		}
		if !res.Check.OK || res.Check.EntitlementsChecked != len(w.Entitlements) {
			t.Fatalf("%s: check %+v", sys, res.Check)
		}
		if res.Events != 300 || res.DDBRequests == 0 || res.WRU == 0 || res.P99Ms <= 0 {
			t.Errorf("%s: implausible result %+v", sys, res)
		}
		results[sys] = res
	}
	ours, base := results[Ours], results[Baseline]
	valid := func(r *Result) int {
		return r.FinalOutcomes["APPLIED"] + r.FinalOutcomes["DUPLICATE"] + r.FinalOutcomes["REJECTED:LIMIT_EXCEEDED"]
	}
	if valid(ours) != valid(base) || ours.FinalOutcomes["REJECTED:ENTITLEMENT_NOT_FOUND"] != base.FinalOutcomes["REJECTED:ENTITLEMENT_NOT_FOUND"] {
		t.Errorf("final outcomes differ: ours %v, baseline %v", ours.FinalOutcomes, base.FinalOutcomes)
	}
	if ours.FinalOutcomes["APPLIED"] == 0 || ours.FinalOutcomes["DUPLICATE"] == 0 || ours.FinalOutcomes["REJECTED:LIMIT_EXCEEDED"] == 0 {
		t.Errorf("the workload did not exercise every outcome: %v", ours.FinalOutcomes)
	}
	if ours.Check.LedgerEntries != ours.Check.AppliedEvents {
		t.Errorf("ledger %d, applied %d", ours.Check.LedgerEntries, ours.Check.AppliedEvents)
	}
	if ours.DDBRequests >= base.DDBRequests {
		t.Errorf("ours made %d requests, the baseline %d", ours.DDBRequests, base.DDBRequests)
	}
}

// With a modelled round trip, every measured attempt waits for it and the
// run reports it; the correctness check is unaffected.
func TestRunWithRTT(t *testing.T) {
	emulator.Env(t)
	w := smallWorkload(t)
	res, err := Run(context.Background(), Ours, w, RunConfig{Concurrency: 3, RTT: 2 * time.Millisecond, TablePrefix: emulator.UniqueName(t, "rtt")})
	if err != nil {
		t.Fatal(err)
	}
	if res.RTTMs != 2 || res.MeanInjectedDelayMs < 2 {
		t.Fatalf("rttMs %v, meanInjectedDelayMs %v; want 2 and at least 2", res.RTTMs, res.MeanInjectedDelayMs)
	}
	if ms := res.MeanCallMs["TransactWriteItems"]; ms < 2 {
		t.Fatalf("mean TransactWriteItems call %.2f ms, want at least the 2 ms round trip", ms)
	}
}

// The check fails loudly when the outcomes claim what the tables do not
// hold.
func TestVerifyCatchesAMismatch(t *testing.T) {
	emulator.Env(t)
	ctx := context.Background()
	w := smallWorkload(t)
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
	// One delivery per message, each claimed applied (or rejected, for
	// malformed ones), while nothing was written.
	var deliveries []Delivery
	for i, m := range w.Messages {
		d := Delivery{Message: i, Receive: 1, Status: usage.Applied}
		if m.Kind == Malformed {
			d.Status, d.Reason = usage.Rejected, usage.ReasonInvalidJSON
		}
		if m.Kind == Unknown {
			d.Status, d.Reason = usage.Rejected, usage.ReasonEntitlementNotFound
		}
		deliveries = append(deliveries, d)
	}
	ch := verify(ctx, c, Ours, tb, w, deliveries)
	if ch.OK {
		t.Fatal("the check passed although nothing was applied")
	}
	joined := strings.Join(ch.Errors, "\n")
	for _, want := range []string{"applied more than once", "the applied outcomes say", "ledger entries"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no %q among the errors:\n%s", want, joined)
		}
	}
}

// The delivery models, both systems, end to end on DynamoDB Local: the
// worker processes on the fake SQS in an open loop, Lambda from a FIFO
// queue, Lambda with a batching window in an open loop. The correctness
// check passes and the bill adds up.
func TestRunDeliveryModes(t *testing.T) {
	emulator.Env(t)
	w := smallWorkload(t)
	for _, c := range []struct {
		name string
		cfg  RunConfig
	}{
		{"worker, open loop", RunConfig{Mode: Worker, Concurrency: 2, Window: 25 * time.Millisecond, Rate: 1000}},
		{"lambda, FIFO", RunConfig{Concurrency: 3, BatchSize: 10, FIFO: true}},
		{"lambda, window, open loop", RunConfig{Concurrency: 3, BatchSize: 100, Window: 100 * time.Millisecond, Rate: 1500}},
	} {
		for _, sys := range []System{Ours, Baseline} {
			t.Run(c.name+"/"+string(sys), func(t *testing.T) {
				cfg := c.cfg
				cfg.TablePrefix = emulator.UniqueName(t, string(sys))
				res, err := Run(context.Background(), sys, w, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if res.SQSRequestsByOperation["ReceiveMessage"] == 0 || res.SQSRequestsByOperation["SendMessageBatch (producer)"] != 30 {
					t.Errorf("SQS requests %v", res.SQSRequestsByOperation)
				}
				if res.TotalUSDPerMillionEvents <= res.CostUSDPerMillionEvents || res.EndToEndP99Ms <= 0 {
					t.Errorf("bill %v (DynamoDB %v), end-to-end p99 %v", res.TotalUSDPerMillionEvents, res.CostUSDPerMillionEvents, res.EndToEndP99Ms)
				}
				switch {
				case cfg.Mode == Worker && (res.Invocations != 0 || res.LambdaUSDPerMillionEvents != 0):
					t.Errorf("a worker has no Lambda bill: %d invocations, USD %v", res.Invocations, res.LambdaUSDPerMillionEvents)
				case cfg.Mode != Worker && (res.Invocations != res.Batches || res.LambdaGBSeconds <= 0):
					t.Errorf("%d invocations for %d batches, %v GB-s", res.Invocations, res.Batches, res.LambdaGBSeconds)
				}
				if cfg.FIFO && res.MeanBatchSize > 10 {
					t.Errorf("FIFO batches of %v on average, more than 10", res.MeanBatchSize)
				}
			})
		}
	}
}
