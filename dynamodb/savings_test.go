package dynamodb_test

import (
	"context"
	"sync"
	"testing"
	"time"

	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/usage"
)

// opCounter counts the store's requests by kind.
type opCounter struct {
	*awsdynamodb.Client
	mu                    sync.Mutex
	gets, consistent, txs int
}

func (c *opCounter) GetItem(ctx context.Context, in *awsdynamodb.GetItemInput, opts ...func(*awsdynamodb.Options)) (*awsdynamodb.GetItemOutput, error) {
	c.mu.Lock()
	c.gets++
	if in.ConsistentRead != nil && *in.ConsistentRead {
		c.consistent++
	}
	c.mu.Unlock()
	return c.Client.GetItem(ctx, in, opts...)
}

func (c *opCounter) TransactWriteItems(ctx context.Context, in *awsdynamodb.TransactWriteItemsInput, opts ...func(*awsdynamodb.Options)) (*awsdynamodb.TransactWriteItemsOutput, error) {
	c.mu.Lock()
	c.txs++
	c.mu.Unlock()
	return c.Client.TransactWriteItems(ctx, in, opts...)
}

func (c *opCounter) reset() (gets, txs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gets, txs = c.gets, c.txs
	c.gets, c.consistent, c.txs = 0, 0, 0
	return gets, txs
}

// TestPredictableFailuresCostNoWrites: a rejection that reads prove is
// confirmed by consistent reads, not a transaction; a redelivered event
// whose key is applied is found by a read and never joins a write; the
// duplicate still wins over the rejection.
func TestPredictableFailuresCostNoWrites(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	ctx := context.Background()
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("3")})
	c := &opCounter{Client: e.client}
	s := dynamodb.NewStore(c, dynamodb.Config{EntitlementsTable: e.entitlements, LedgerTable: e.ledger, Now: func() time.Time { return e.now }})
	apply := func(records ...usage.Record) string {
		return outcomeText(s.Update(ctx, records[0].Event.Scope(), records, func(st usage.State, r []usage.Record) usage.Plan {
			return usage.PlanUsage(st, r, e.now)
		}))
	}
	if got := apply(rec("u", "k", "3", "m1", "c-1")); got != "APPLIED" {
		t.Fatal(got)
	}
	c.reset()

	if got := apply(rec("u", "k", "1", "m2", "c-2")); got != "LIMIT_EXCEEDED" {
		t.Fatal(got)
	}
	if gets, txs := c.reset(); txs != 0 || gets != 2 {
		t.Errorf("a provable rejection took %d transactions and %d reads, want 0 and 2 (entitlement, ledger key)", txs, gets)
	}

	redelivered := rec("u", "k", "3", "m1", "c-1")
	redelivered.Redelivered = true
	if got := apply(redelivered); got != "DUPLICATE" {
		t.Fatalf("a redelivery of an applied event: %s", got)
	}
	if gets, txs := c.reset(); txs != 0 || gets != 1 {
		t.Errorf("a redelivered duplicate took %d transactions and %d reads, want 0 and 1", txs, gets)
	}

	// Over the limit now, but applied before: DUPLICATE, never LIMIT_EXCEEDED,
	// even when it does not say it is a redelivery.
	if got := apply(rec("u", "k", "3", "m9", "c-1")); got != "DUPLICATE" {
		t.Fatalf("an applied key over the limit: %s", got)
	}
	if _, txs := c.reset(); txs != 0 {
		t.Errorf("%d transactions to find a duplicate over the limit", txs)
	}
}
