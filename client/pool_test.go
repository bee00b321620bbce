package client_test

import (
	"context"
	"errors"
	"testing"

	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/usage-event-service/usage-event-service/client"
	"github.com/usage-event-service/usage-event-service/client/local"
	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/usage"
)

// TestPoolResults: a member's results carry its pool's side, and a
// consume the pool refuses is POOL_LIMIT_EXCEEDED (in process, against
// DynamoDB Local).
func TestPoolResults(t *testing.T) {
	emulator.SkipShort(t)
	ctx := context.Background()
	store, put := tables(t)
	ddb := awsdynamodb.NewFromConfig(awsConfig(t), noChecksum)
	d := func(s string) *usage.Decimal { v := usage.MustDecimal(s); return &v }
	if err := dynamodb.PutPool(ctx, ddb, store.EntitlementsTable, dynamodb.DefaultEntitlementKeys, "team",
		dynamodb.EntitlementItem{EntitlementKey: "k", Limit: d("5"), Used: d("3")}); err != nil {
		t.Fatal(err)
	}
	put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: d("4"), Used: d("0"), Pool: "team"})
	c, err := local.New(awsConfig(t), store, noChecksum)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Consume(ctx, client.ConsumeRequest{UserID: "u", EntitlementKey: "k", Amount: usage.MustDecimal("2"), IdempotencyKey: "c-1"})
	if err != nil || res.Pool == nil || res.Pool.ID != "team" || res.Pool.Balance == nil || res.Pool.Balance.Used.String() != "5" || res.Balance.Used.String() != "2" {
		t.Fatalf("consume: %+v (pool %+v), %v; want the member at 2 and pool team at 5", res, res.Pool, err)
	}
	_, err = c.Consume(ctx, client.ConsumeRequest{UserID: "u", EntitlementKey: "k", Amount: usage.MustDecimal("1"), IdempotencyKey: "c-2"})
	if !errors.Is(err, usage.ErrPoolLimitExceeded) {
		t.Errorf("a consume the pool refuses: %v, want POOL_LIMIT_EXCEEDED", err)
	}
	res, err = c.Refund(ctx, client.RefundRequest{UserID: "u", EntitlementKey: "k", RefundOf: "c-1", IdempotencyKey: "r-1"})
	if err != nil || res.Pool == nil || res.Pool.Balance == nil || res.Pool.Balance.Used.String() != "3" || res.Balance.Used.String() != "0" {
		t.Errorf("refund: %+v (pool %+v), %v; want both given back", res, res.Pool, err)
	}
}
