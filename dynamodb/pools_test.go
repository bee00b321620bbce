package dynamodb_test

import (
	"context"
	"testing"

	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/usage-event-service/usage-event-service/dynamodb"
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
