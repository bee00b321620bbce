package faultinjection_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/internal/dev/faultinjection"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/usage"
)

// TestTransactionConflictsAreRetriedWithoutLossOrDoubleCount covers what
// DynamoDB Local never does: cancel a transaction because another one is
// in flight on the same item. Racing consumers on one entitlement meet
// such conflicts on a third of their transactions; the store retries
// them, and used still ends at exactly the applied total.
func TestTransactionConflictsAreRetriedWithoutLossOrDoubleCount(t *testing.T) {
	emulator.Env(t)
	proxy, err := faultinjection.Start(emulator.DynamoDB(t), 7, faultinjection.Faults{TransactionConflict: 0.33})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.URL)
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := awsdynamodb.NewFromConfig(cfg)
	ent, ledger := emulator.UniqueName(t, "ent"), emulator.UniqueName(t, "ledger")
	if _, err := dynamodb.CreateEntitlementsTable(ctx, client, ent, dynamodb.DefaultEntitlementKeys); err != nil {
		t.Fatal(err)
	}
	if _, err := dynamodb.CreateLedgerTable(ctx, client, ledger); err != nil {
		t.Fatal(err)
	}
	limit := usage.MustDecimal("120")
	if err := dynamodb.PutEntitlement(ctx, client, ent, dynamodb.DefaultEntitlementKeys, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: &limit}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			store := metering.Writer{Store: dynamodb.NewStore(client, dynamodb.Config{EntitlementsTable: ent, LedgerTable: ledger})}
			for i := range 40 {
				ev := usage.NewEvent("u", "k")
				ev.IdempotencyKey = fmt.Sprintf("c%d-e%d", c, i)
				records := []usage.Record{{Event: ev, MessageID: ev.IdempotencyKey}}
				o := store.Update(ctx, ev.Scope(), records, func(e usage.State, r []usage.Record) usage.Plan {
					return usage.PlanUsage(e, r, time.Now())
				})[0]
				mu.Lock()
				counts[string(o.Status)+string(o.Reason())]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	stats := proxy.Stats()
	if stats.Conflicts == 0 {
		t.Fatal("no conflict was injected: the test exercises nothing")
	}
	t.Logf("%d transactions cancelled for a conflict; outcomes %v", stats.Conflicts, counts)
	got, err := dynamodb.ListEntitlements(ctx, client, ent, dynamodb.DefaultEntitlementKeys, "u", "k")
	if err != nil || len(got) != 1 {
		t.Fatal(got, err)
	}
	entries, err := dynamodb.ListLedger(ctx, client, ledger, usage.Scope{UserID: "u", EntitlementKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	applied := counts[string(usage.Applied)]
	if got[0].Used.Cmp(usage.DecimalFromInt(int64(applied))) != 0 || len(entries) != applied {
		t.Errorf("used %s and %d ledger entries, but %d events were reported applied", got[0].Used, len(entries), applied)
	}
	if applied != 120 || counts[string(usage.Rejected)+string(usage.ReasonLimitExceeded)] != 40 {
		t.Errorf("outcomes %v, want 120 applied and 40 LIMIT_EXCEEDED (a RETRY would mean 12 conflicts in a row)", counts)
	}
}
