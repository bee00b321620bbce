package dynamodb_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/usage"
)

// opCounter counts the store's requests by kind; reset counts GetItem
// and BatchGetItem requests together as reads.
type opCounter struct {
	*awsdynamodb.Client
	mu                    sync.Mutex
	gets, consistent, txs int
	batchGets, canceled   int
}

func (c *opCounter) BatchGetItem(ctx context.Context, in *awsdynamodb.BatchGetItemInput, opts ...func(*awsdynamodb.Options)) (*awsdynamodb.BatchGetItemOutput, error) {
	c.mu.Lock()
	c.batchGets++
	c.mu.Unlock()
	return c.Client.BatchGetItem(ctx, in, opts...)
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
	out, err := c.Client.TransactWriteItems(ctx, in, opts...)
	c.mu.Lock()
	c.txs++
	if err != nil {
		c.canceled++
	}
	c.mu.Unlock()
	return out, err
}

func (c *opCounter) reset() (gets, txs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gets, txs = c.gets+c.batchGets, c.txs
	c.gets, c.consistent, c.txs, c.batchGets, c.canceled = 0, 0, 0, 0, 0
	return gets, txs
}

func (c *opCounter) writes() (batchGets, txs, canceled int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.batchGets, c.txs, c.canceled
}

// countedStore is a store on u/k (limit limit) whose requests c counts,
// and apply, which runs records through it and prints their outcomes.
func countedStore(t *testing.T, limit string) (e *env, c *opCounter, apply func(...usage.Record) string) {
	e = newEnv(t, dynamodb.DefaultEntitlementKeys)
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp(limit)})
	c = &opCounter{Client: e.client}
	s := metering.Writer{Store: dynamodb.NewStore(c, dynamodb.Config{EntitlementsTable: e.entitlements, LedgerTable: e.ledger, Now: func() time.Time { return e.now }})}
	apply = func(records ...usage.Record) string {
		return outcomeText(s.Update(context.Background(), records[0].Event.Scope(), records, func(st usage.State, r []usage.Record) usage.Plan {
			return usage.PlanUsage(st, r, e.now)
		}))
	}
	return e, c, apply
}

// TestPredictableFailuresCostNoWrites: a rejection that reads prove is
// confirmed by consistent reads, not a transaction; a redelivered event
// whose key is applied is found by a read and never joins a write; the
// duplicate still wins over the rejection.
func TestPredictableFailuresCostNoWrites(t *testing.T) {
	_, c, apply := countedStore(t, "3")
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

// TestRetriesAreReadFirstOnceSeen: a producer's retry (the same
// idempotency key under a new message ID) is not marked redelivered, so
// the first ones cancel a transaction each. Once the store has seen them,
// groups read their new keys first (one BatchGetItem) and skip the
// applied ones; clean traffic never pays for that read.
func TestRetriesAreReadFirstOnceSeen(t *testing.T) {
	e, c, apply := countedStore(t, "1000")
	group := func(prefix string, from, to int, idem func(int) string) []usage.Record {
		var rs []usage.Record
		for i := from; i < to; i++ {
			rs = append(rs, rec("u", "k", "1", fmt.Sprintf("%s-%d", prefix, i), idem(i)))
		}
		return rs
	}
	key := func(i int) string { return fmt.Sprintf("c-%d", i) }

	for i := 0; i < 40; i += 4 {
		if got := apply(group("m", i, i+4, key)...); got != "APPLIED APPLIED APPLIED APPLIED" {
			t.Fatal(got)
		}
	}
	if b, txs, canceled := c.writes(); b != 0 || txs != 10 || canceled != 0 {
		t.Fatalf("clean traffic: %d batch reads, %d transactions (%d canceled), want 0, 10, 0", b, txs, canceled)
	}
	c.reset()

	// The first retried group is found by its canceled transaction.
	if got := apply(group("retry", 0, 4, key)...); got != "DUPLICATE DUPLICATE DUPLICATE DUPLICATE" {
		t.Fatal(got)
	}
	if b, _, canceled := c.writes(); b != 0 || canceled != 1 {
		t.Fatalf("first retries: %d batch reads, %d canceled, want 0 and 1", b, canceled)
	}
	c.reset()

	// Now the next ones are read first: no transaction at all, then one
	// that writes only the new events of a mixed group.
	if got := apply(group("retry", 4, 8, key)...); got != "DUPLICATE DUPLICATE DUPLICATE DUPLICATE" {
		t.Fatal(got)
	}
	if b, txs, _ := c.writes(); b != 1 || txs != 0 {
		t.Fatalf("known retries: %d batch reads, %d transactions, want 1 and 0", b, txs)
	}
	c.reset()
	mixed := func(i int) string { // c-9, c-50, c-11, c-52: two applied, two new
		if i%2 == 1 {
			return key(i)
		}
		return key(i + 40)
	}
	if got := apply(group("mixed", 9, 13, mixed)...); got != "DUPLICATE APPLIED DUPLICATE APPLIED" {
		t.Fatal(got)
	}
	if b, txs, canceled := c.writes(); b != 1 || txs != 1 || canceled != 0 {
		t.Fatalf("mixed group: %d batch reads, %d transactions (%d canceled), want 1, 1, 0", b, txs, canceled)
	}
	ent := e.get(t, "u", "k")
	if got := ent.Used.String(); got != "42" {
		t.Fatalf("used %s, want 42", got)
	}
}
