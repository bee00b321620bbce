// Package clienttest is the contract of client.Client: one suite of
// behaviours that every implementation must show, run by each of them
// (the Lambda client against the real bootstrap under the Runtime
// Interface Emulator, the in-process client against DynamoDB Local).
//
// The suite makes one call at a time, so a backend may be a single
// emulator that serves one invocation at a time.
package clienttest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/client"
	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Backend is one implementation under test, over fresh, empty tables.
type Backend struct {
	Client client.Client
	// Put writes an entitlement as access-service would.
	Put func(t *testing.T, e dynamodb.EntitlementItem)
}

// Run runs the whole contract against backends made by newBackend, one
// per case.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	cases := []struct {
		name string
		test func(t *testing.T, b Backend)
	}{
		{"AConsumeAndItsBalance", testConsume},
		{"AnUnlimitedEntitlement", testUnlimited},
		{"OverTheLimit", testOverTheLimit},
		{"ADuplicateReturnsTheOriginalDecision", testDuplicate},
		{"BadRequestsAreAnsweredWithTheirReason", testBadRequests},
		{"FullAndPartialRefundsAddUp", testRefunds},
		{"ARefundOverWhatRemains", testRefundOverWhatRemains},
		{"ARefundOfAnUnknownTargetIsRejectedAtOnce", testUnknownTarget},
		{"ADuplicateRefund", testDuplicateRefund},
		{"BalanceOfAnUnknownEntitlement", testUnknownBalance},
		{"AnEndedPeriodsBalance", testEndedPeriod},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.test(t, newBackend(t)) })
	}
}

const user, key = "user-1", "api-calls"

func dec(s string) usage.Decimal { return usage.MustDecimal(s) }

func ptr[T any](v T) *T { return &v }

// monthly puts user/key: MONTHLY, calendar periods, in the current one.
func monthly(t *testing.T, b Backend, limit, used string) {
	t.Helper()
	start := usage.PeriodStart(usage.ResetMonthly, nil, time.Now())
	b.Put(t, dynamodb.EntitlementItem{UserID: user, EntitlementKey: key, Limit: ptr(dec(limit)), Used: ptr(dec(used)),
		ResetPeriod: usage.ResetMonthly, PeriodStart: &start})
}

func consume(amount, idempotencyKey string) client.ConsumeRequest {
	r := client.ConsumeRequest{UserID: user, EntitlementKey: key, IdempotencyKey: idempotencyKey}
	if amount != "" {
		r.Amount = dec(amount)
	}
	return r
}

func refund(amount, target, idempotencyKey string) client.RefundRequest {
	r := client.RefundRequest{UserID: user, EntitlementKey: key, RefundOf: target, IdempotencyKey: idempotencyKey}
	if amount != "" {
		r.Amount = dec(amount)
	}
	return r
}

func mustApply(t *testing.T, res client.Result, err error, amount string) client.Result {
	t.Helper()
	if err != nil {
		t.Fatalf("want APPLIED, got %v", err)
	}
	if res.Status != decision.Applied || res.Duplicate() || res.Original != nil {
		t.Fatalf("want APPLIED without an original, got %+v", res)
	}
	if res.Amount.Cmp(dec(amount)) != 0 {
		t.Errorf("amount %s, want %s", res.Amount, amount)
	}
	return res
}

// rejected checks that err is a *client.RejectedError of reason, that
// errors.Is matches usage's sentinel, and returns it.
func rejected(t *testing.T, err error, reason usage.Reason) *client.RejectedError {
	t.Helper()
	var r *client.RejectedError
	if !errors.As(err, &r) {
		t.Fatalf("want a *client.RejectedError %s, got %T %v", reason, err, err)
	}
	if r.Reason != reason || r.Answer.Status != decision.Rejected || r.Message == "" {
		t.Errorf("rejected %s (%q), answer %+v; want %s with a message", r.Reason, r.Message, r.Answer, reason)
	}
	if !errors.Is(err, &usage.RejectionError{Reason: reason}) || errors.Is(err, client.ErrRetry) {
		t.Errorf("errors.Is does not match the reason %s alone", reason)
	}
	return r
}

// used checks the balance's used and remaining.
func used(t *testing.T, b Backend, want, remaining string) usage.Balance {
	t.Helper()
	bal, err := b.Client.Balance(context.Background(), user, key)
	if err != nil {
		t.Fatalf("balance: %v", err)
	}
	checkUsed(t, &bal, want, remaining)
	return bal
}

func checkUsed(t *testing.T, bal *usage.Balance, want, remaining string) {
	t.Helper()
	if bal == nil {
		t.Fatalf("no balance, want used %s", want)
	}
	if bal.Used.Cmp(dec(want)) != 0 || bal.Remaining == nil || bal.Remaining.Cmp(dec(remaining)) != 0 {
		t.Errorf("used %s, remaining %v; want %s and %s", bal.Used, bal.Remaining, want, remaining)
	}
}

// checkMonthly checks the period fields of a calendar-monthly balance now.
func checkMonthly(t *testing.T, bal *usage.Balance, limit string) {
	t.Helper()
	now := time.Now()
	start, next := usage.PeriodStart(usage.ResetMonthly, nil, now), usage.NextPeriodStart(usage.ResetMonthly, nil, now)
	switch {
	case bal.Limit == nil || bal.Limit.Cmp(dec(limit)) != 0:
		t.Errorf("limit %v, want %s", bal.Limit, limit)
	case bal.ResetPeriod != usage.ResetMonthly:
		t.Errorf("resetPeriod %q, want MONTHLY", bal.ResetPeriod)
	case bal.PeriodStart == nil || !bal.PeriodStart.Equal(start):
		t.Errorf("periodStart %v, want %v", bal.PeriodStart, start)
	case bal.NextReset == nil || !bal.NextReset.Equal(next):
		t.Errorf("nextReset %v, want %v", bal.NextReset, next)
	}
}

func testConsume(t *testing.T, b Backend) {
	ctx := context.Background()
	monthly(t, b, "10", "1")
	res, err := b.Client.Consume(ctx, consume("2.5", "order-1"))
	mustApply(t, res, err, "2.5")
	checkUsed(t, res.Balance, "3.5", "6.5")
	checkMonthly(t, res.Balance, "10")

	// No amount is the contract's default of 1; exact decimals stay exact.
	res, err = b.Client.Consume(ctx, consume("", "order-2"))
	mustApply(t, res, err, "1")
	res, err = b.Client.Consume(ctx, consume("0.1", "order-3"))
	mustApply(t, res, err, "0.1")
	res, err = b.Client.Consume(ctx, consume("0.2", "order-4"))
	mustApply(t, res, err, "0.2")
	checkUsed(t, res.Balance, "4.8", "5.2")
	bal := used(t, b, "4.8", "5.2")
	checkMonthly(t, &bal, "10")
}

func testUnlimited(t *testing.T, b Backend) {
	b.Put(t, dynamodb.EntitlementItem{UserID: user, EntitlementKey: key, Used: ptr(dec("3"))})
	res, err := b.Client.Consume(context.Background(), consume("1E+30", "big-1"))
	mustApply(t, res, err, "1E+30")
	bal := res.Balance
	if bal == nil || bal.Used.Cmp(dec("1000000000000000000000000000003")) != 0 || bal.Limit != nil || bal.Remaining != nil ||
		bal.ResetPeriod != usage.ResetNone || bal.PeriodStart != nil || bal.NextReset != nil {
		t.Errorf("unlimited, never resetting: %+v", bal)
	}
}

func testOverTheLimit(t *testing.T, b Backend) {
	monthly(t, b, "10", "9")
	_, err := b.Client.Consume(context.Background(), consume("2", "order-1"))
	r := rejected(t, err, usage.ReasonLimitExceeded)
	if !errors.Is(err, usage.ErrLimitExceeded) {
		t.Errorf("errors.Is(err, usage.ErrLimitExceeded) is false for %v", err)
	}
	checkUsed(t, r.Balance, "9", "1")
	used(t, b, "9", "1")
	// The same key with an amount that fits is decided anew: a rejection
	// is not recorded under the key.
	res, err := b.Client.Consume(context.Background(), consume("1", "order-1"))
	mustApply(t, res, err, "1")
}

func testDuplicate(t *testing.T, b Backend) {
	ctx := context.Background()
	monthly(t, b, "10", "0")
	first, err := b.Client.Consume(ctx, consume("3", "order-1"))
	mustApply(t, first, err, "3")
	again, err := b.Client.Consume(ctx, consume("3", "order-1"))
	if err != nil {
		t.Fatalf("a duplicate is an answer, not an error: %v", err)
	}
	if !again.Duplicate() || again.Status != decision.Duplicate || again.Amount.Cmp(dec("3")) != 0 {
		t.Errorf("second consume: %+v, want DUPLICATE of amount 3", again)
	}
	o := again.Original
	start := usage.PeriodStart(usage.ResetMonthly, nil, time.Now())
	switch {
	case o == nil:
		t.Fatal("a duplicate without the original decision")
	case o.Status != decision.Applied || o.Operation != usage.OperationConsume || o.Amount.Cmp(dec("3")) != 0 || o.RefundOf != "":
		t.Errorf("original %+v, want an applied consume of 3", o)
	case time.Since(o.AppliedAt) > time.Minute || time.Until(o.AppliedAt) > time.Minute:
		t.Errorf("original applied at %v, want just now", o.AppliedAt)
	case o.PeriodStart == nil || !o.PeriodStart.Equal(start):
		t.Errorf("original period %v, want %v", o.PeriodStart, start)
	}
	checkUsed(t, again.Balance, "3", "7")

	// The key with another amount is no retry: IDEMPOTENCY_CONFLICT,
	// with the original.
	_, err = b.Client.Consume(ctx, consume("4", "order-1"))
	r := rejected(t, err, usage.ReasonIdempotencyConflict)
	if r.Original == nil || r.Original.Amount.Cmp(dec("3")) != 0 {
		t.Errorf("conflict's original %+v, want the consume of 3", r.Original)
	}
	used(t, b, "3", "7")
}

func testBadRequests(t *testing.T, b Backend) {
	ctx := context.Background()
	monthly(t, b, "10", "0")
	tests := []struct {
		name   string
		call   func() error
		reason usage.Reason
		field  string
	}{
		{"consume without idempotency key", func() error { _, err := b.Client.Consume(ctx, consume("1", "")); return err },
			usage.ReasonMissingField, "idempotencyKey"},
		{"refund without idempotency key", func() error { _, err := b.Client.Refund(ctx, refund("1", "order-1", "")); return err },
			usage.ReasonMissingField, "idempotencyKey"},
		{"negative amount", func() error { _, err := b.Client.Consume(ctx, consume("-1", "bad-1")); return err },
			usage.ReasonInvalidAmount, "amount"},
		{"no user", func() error {
			_, err := b.Client.Consume(ctx, client.ConsumeRequest{EntitlementKey: key, IdempotencyKey: "bad-2"})
			return err
		}, usage.ReasonMissingField, "userId"},
		{"refund without refundOf", func() error { _, err := b.Client.Refund(ctx, refund("1", "", "bad-3")); return err },
			usage.ReasonMissingField, "refundOf"},
		{"metadata no object", func() error {
			r := consume("1", "bad-4")
			r.Metadata = []byte(`[1]`)
			_, err := b.Client.Consume(ctx, r)
			return err
		}, usage.ReasonInvalidMetadata, "metadata"},
		{"unknown entitlement", func() error {
			_, err := b.Client.Consume(ctx, client.ConsumeRequest{UserID: user, EntitlementKey: "nope", IdempotencyKey: "bad-5"})
			return err
		}, usage.ReasonEntitlementNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rejected(t, tt.call(), tt.reason)
			if !strings.Contains(r.Message, tt.field) {
				t.Errorf("message %q does not name %s", r.Message, tt.field)
			}
		})
	}
	used(t, b, "0", "10")
}

func testRefunds(t *testing.T, b Backend) {
	ctx := context.Background()
	monthly(t, b, "10", "0")
	res, err := b.Client.Consume(ctx, consume("5", "order-1"))
	mustApply(t, res, err, "5")
	res, err = b.Client.Refund(ctx, refund("2", "order-1", "refund-1"))
	mustApply(t, res, err, "2")
	checkUsed(t, res.Balance, "3", "7")
	res, err = b.Client.Refund(ctx, refund("0.5", "order-1", "refund-2"))
	mustApply(t, res, err, "0.5")
	checkUsed(t, res.Balance, "2.5", "7.5")
	// Without amount: all that remains of the consume.
	res, err = b.Client.Refund(ctx, refund("", "order-1", "refund-3"))
	mustApply(t, res, err, "2.5")
	checkUsed(t, res.Balance, "0", "10")
	checkMonthly(t, res.Balance, "10")
	// Nothing remains now.
	_, err = b.Client.Refund(ctx, refund("", "order-1", "refund-4"))
	rejected(t, err, usage.ReasonRefundExceedsApplied)
	used(t, b, "0", "10")
}

func testRefundOverWhatRemains(t *testing.T, b Backend) {
	ctx := context.Background()
	monthly(t, b, "10", "0")
	res, err := b.Client.Consume(ctx, consume("5", "order-1"))
	mustApply(t, res, err, "5")
	res, err = b.Client.Refund(ctx, refund("4", "order-1", "refund-1"))
	mustApply(t, res, err, "4")
	_, err = b.Client.Refund(ctx, refund("1.5", "order-1", "refund-2"))
	r := rejected(t, err, usage.ReasonRefundExceedsApplied)
	checkUsed(t, r.Balance, "1", "9")
	used(t, b, "1", "9")
}

func testUnknownTarget(t *testing.T, b Backend) {
	monthly(t, b, "10", "2")
	start := time.Now()
	_, err := b.Client.Refund(context.Background(), refund("1", "never-applied", "refund-1"))
	rejected(t, err, usage.ReasonRefundTargetNotFound)
	// A queued refund may wait for its consume; a synchronous one cannot.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("answered after %v", d)
	}
	used(t, b, "2", "8")
}

func testDuplicateRefund(t *testing.T, b Backend) {
	ctx := context.Background()
	monthly(t, b, "10", "0")
	res, err := b.Client.Consume(ctx, consume("5", "order-1"))
	mustApply(t, res, err, "5")
	res, err = b.Client.Refund(ctx, refund("", "order-1", "refund-1"))
	mustApply(t, res, err, "5")
	again, err := b.Client.Refund(ctx, refund("", "order-1", "refund-1"))
	if err != nil {
		t.Fatalf("a duplicate refund is an answer, not an error: %v", err)
	}
	o := again.Original
	if !again.Duplicate() || o == nil || o.Operation != usage.OperationRefund || o.RefundOf != "order-1" ||
		o.Amount.Cmp(dec("5")) != 0 || again.Amount.Cmp(dec("5")) != 0 {
		t.Errorf("second refund: %+v (original %+v), want DUPLICATE of the refund of 5 of order-1", again, o)
	}
	checkUsed(t, again.Balance, "0", "10")
	// The consume itself is still consumed once: its duplicate says so.
	dup, err := b.Client.Consume(ctx, consume("5", "order-1"))
	if err != nil || !dup.Duplicate() {
		t.Errorf("the refunded consume again: %+v, %v; want DUPLICATE", dup, err)
	}
	used(t, b, "0", "10")
}

func testUnknownBalance(t *testing.T, b Backend) {
	monthly(t, b, "10", "0")
	_, err := b.Client.Balance(context.Background(), user, "nope")
	rejected(t, err, usage.ReasonEntitlementNotFound)
	_, err = b.Client.Balance(context.Background(), "nobody", key)
	rejected(t, err, usage.ReasonEntitlementNotFound)
	_, err = b.Client.Balance(context.Background(), "", key)
	rejected(t, err, usage.ReasonMissingField)
}

func testEndedPeriod(t *testing.T, b Backend) {
	now := time.Now()
	old := usage.PeriodStart(usage.ResetMonthly, nil, now.AddDate(0, -3, 0))
	b.Put(t, dynamodb.EntitlementItem{UserID: user, EntitlementKey: key, Limit: ptr(dec("10")), Used: ptr(dec("7")),
		ResetPeriod: usage.ResetMonthly, PeriodStart: &old})
	bal := used(t, b, "0", "10")
	checkMonthly(t, &bal, "10")
	if !bal.PeriodStart.After(old) {
		t.Errorf("periodStart %v, want the current period, not %v", bal.PeriodStart, old)
	}
	// A consume starts the new period from 0.
	res, err := b.Client.Consume(context.Background(), consume("4", "order-1"))
	mustApply(t, res, err, "4")
	checkUsed(t, res.Balance, "4", "6")
	checkMonthly(t, res.Balance, "10")
}
