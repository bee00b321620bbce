package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/client"
	"github.com/usage-event-service/usage-event-service/client/local"
	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Reserve, Commit and Release in process against DynamoDB Local (the
// Lambda client's are driven by usagectl's tests under the emulator).
func TestLocalHolds(t *testing.T) {
	emulator.SkipShort(t)
	store, put := tables(t)
	limit, used := usage.MustDecimal("10"), usage.MustDecimal("2")
	put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: &limit, Used: &used})
	c, err := local.New(awsConfig(t), store, noChecksum)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	before := time.Now()
	res, err := c.Reserve(ctx, client.ReserveRequest{UserID: "u", EntitlementKey: "k", Amount: usage.MustDecimal("5"), HoldID: "job-1", Seconds: 60})
	if err != nil || res.Duplicate() || res.Hold.ID != "job-1" || res.Hold.State != usage.HoldActive || res.Hold.Amount.String() != "5" ||
		res.Held == nil || res.Held.String() != "5" || res.Balance == nil || res.Balance.Used.String() != "7" {
		t.Fatalf("reserve: %+v, %v; want an active hold of 5, used 7 of which 5 held", res, err)
	}
	if exp := res.Hold.ExpiresAt; exp.Before(before.Add(59*time.Second)) || exp.After(time.Now().Add(60*time.Second)) {
		t.Errorf("expires at %v, want 60 s from now", exp)
	}
	if res, err := c.Reserve(ctx, client.ReserveRequest{UserID: "u", EntitlementKey: "k", Amount: usage.MustDecimal("5"), HoldID: "job-1"}); err != nil || !res.Duplicate() || res.Hold.ID != "job-1" {
		t.Errorf("the same reserve again: %+v, %v; want a DUPLICATE with the hold", res, err)
	}
	_, err = c.Reserve(ctx, client.ReserveRequest{UserID: "u", EntitlementKey: "k", Amount: usage.MustDecimal("4"), HoldID: "job-2"})
	if !errors.Is(err, usage.ErrLimitExceeded) {
		t.Errorf("a reserve over the limit: %v, want LIMIT_EXCEEDED", err)
	}

	three := usage.MustDecimal("3")
	res, err = c.Commit(ctx, client.CommitRequest{UserID: "u", EntitlementKey: "k", HoldID: "job-1", Amount: &three})
	if err != nil || res.Hold.State != usage.HoldCommitted || res.Hold.Committed == nil || res.Hold.Committed.String() != "3" ||
		res.Held != nil || res.Balance.Used.String() != "5" {
		t.Errorf("commit 3 of 5: %+v, %v; want committed 3, used 5, nothing held", res, err)
	}
	_, err = c.Release(ctx, client.ReleaseRequest{UserID: "u", EntitlementKey: "k", HoldID: "job-1"})
	var rej *client.RejectedError
	if !errors.As(err, &rej) || !errors.Is(err, usage.ErrHoldNotActive) || rej.Answer.Hold == nil {
		t.Fatalf("a release of a committed hold: %v, want HOLD_NOT_ACTIVE with the hold", err)
	}
	if h, err := client.HoldOf(*rej.Answer.Hold); err != nil || h.State != usage.HoldCommitted || h.Committed.String() != "3" {
		t.Errorf("the rejection's hold: %+v, %v", h, err)
	}
	if _, err := c.Release(ctx, client.ReleaseRequest{UserID: "u", EntitlementKey: "k", HoldID: "never"}); !errors.Is(err, usage.ErrHoldNotFound) {
		t.Errorf("a release of an unknown hold: %v, want HOLD_NOT_FOUND", err)
	}

	if _, err := c.Reserve(ctx, client.ReserveRequest{UserID: "u", EntitlementKey: "k", Amount: usage.MustDecimal("2"), HoldID: "job-3"}); err != nil {
		t.Fatal(err)
	}
	res, err = c.Release(ctx, client.ReleaseRequest{UserID: "u", EntitlementKey: "k", HoldID: "job-3"})
	if err != nil || res.Hold.State != usage.HoldReleased || res.Hold.Committed != nil || res.Balance.Used.String() != "5" {
		t.Errorf("release: %+v, %v; want released, used back to 5", res, err)
	}
}
