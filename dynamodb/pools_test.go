package dynamodb_test

import (
	"context"
	"strings"
	"testing"
	"time"

	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// snapshotClient runs before once, just before the first TransactGetItems
// (another member writing the pool between the decision and its
// confirmation), and counts the snapshots.
type snapshotClient struct {
	*awsdynamodb.Client
	before    func()
	snapshots int
}

func (c *snapshotClient) TransactGetItems(ctx context.Context, in *awsdynamodb.TransactGetItemsInput, opts ...func(*awsdynamodb.Options)) (*awsdynamodb.TransactGetItemsOutput, error) {
	c.snapshots++
	if f := c.before; f != nil {
		c.before = nil
		f()
	}
	return c.Client.TransactGetItems(ctx, in, opts...)
}

// A rejection by a hot pool is confirmed on one snapshot of the member's
// item, the pool's and the ledger key: when another member moved the
// pool meanwhile, the decision taken again on the snapshot is final, not
// confirmed again (under many members it would never be).
func TestAPoolRejectionIsFinalOnASnapshot(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	ctx := context.Background()
	if err := dynamodb.PutPool(ctx, e.client, e.entitlements, dynamodb.DefaultEntitlementKeys, "team",
		dynamodb.EntitlementItem{EntitlementKey: "k", Limit: dp("10"), Used: dp("9")}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"u", "v"} {
		e.put(t, dynamodb.EntitlementItem{UserID: u, EntitlementKey: "k", Limit: dp("5"), Used: dp("0"), Pool: "team"})
	}
	other := e.store()
	c := &snapshotClient{Client: e.client}
	c.before = func() {
		if got := outcomeText(other.Update(ctx, usage.Scope{UserID: "v", EntitlementKey: "k"}, []usage.Record{rec("v", "k", "1", "m-v", "v-1")}, usage.Rules{Now: e.now}.Plan)); got != "APPLIED" {
			t.Errorf("v's consume in the gap: %s", got)
		}
	}
	w := e.writer(c)
	got := outcomeText(w.Update(ctx, usage.Scope{UserID: "u", EntitlementKey: "k"}, []usage.Record{rec("u", "k", "2", "m-u", "u-1")}, usage.Rules{Now: e.now}.Plan))
	if got != "POOL_LIMIT_EXCEEDED" || c.snapshots != 1 {
		t.Errorf("got %s after %d snapshots, want POOL_LIMIT_EXCEEDED after one", got, c.snapshots)
	}
}

// A grant to a pool comes through the queue as any event (poolId instead
// of userId): it is recorded in the pool's own ledger partition, and the
// members draw from it once the pool's allowance is used.
func TestAGrantToAPoolThroughTheQueue(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	ctx := context.Background()
	if err := dynamodb.PutPool(ctx, e.client, e.entitlements, dynamodb.DefaultEntitlementKeys, "team",
		dynamodb.EntitlementItem{EntitlementKey: "k", Limit: dp("10"), Used: dp("10")}); err != nil {
		t.Fatal(err)
	}
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Used: dp("0"), Pool: "team"})
	p := &metering.Processor{Store: e.store(), Now: func() time.Time { return e.now }}
	handle := func(msgs ...pipeline.Message) string {
		var texts []string
		for _, r := range p.Handle(ctx, msgs) {
			texts = append(texts, string(r.Status)+" "+string(r.Reason()))
		}
		return strings.Join(texts, ", ")
	}
	consume := func(id string) pipeline.Message {
		return pipeline.Message{ID: "m-" + id, Body: `{"userId":"u","entitlementKey":"k","amount":2,"idempotencyKey":"` + id + `"}`, ReceiveCount: 1}
	}
	if got := handle(consume("c-1")); got != "REJECTED POOL_LIMIT_EXCEEDED" {
		t.Fatalf("before the grant: %s", got)
	}
	grant := pipeline.Message{ID: "m-g", Body: `{"poolId":"team","entitlementKey":"k","operation":"grant","grantId":"topup","amount":5}`, ReceiveCount: 1}
	if got := handle(grant); got != "APPLIED " {
		t.Fatalf("the pool's grant: %s", got)
	}
	if got := handle(consume("c-2"), consume("c-3"), consume("c-4")); got != "APPLIED , APPLIED , REJECTED POOL_LIMIT_EXCEEDED" {
		t.Fatalf("after the grant of 5: %s", got)
	}
	entries, err := dynamodb.ListLedger(ctx, e.client, e.ledger, usage.PoolScope("team", "k"))
	if err != nil || len(entries) != 1 || entries[0].Operation != usage.OperationGrant || entries[0].DedupKey != "topup" {
		t.Fatalf("the pool's ledger: %+v, %v", entries, err)
	}
	if mine, _ := dynamodb.ListLedger(ctx, e.client, e.ledger, usage.Scope{UserID: "team", EntitlementKey: "k"}); len(mine) != 0 {
		t.Errorf("a user named like the pool has ledger entries %+v", mine)
	}
}
