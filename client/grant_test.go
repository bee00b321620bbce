package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/client"
	"github.com/usage-event-service/usage-event-service/client/local"
	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/usage"
)

// granter is what both clients answer: the interface and the grants.
type granter interface {
	client.Client
	Grant(ctx context.Context, r client.GrantRequest) (client.GrantResult, error)
	Void(ctx context.Context, r client.VoidRequest) (client.GrantResult, error)
}

var (
	_ granter = (*client.Local)(nil)
	_ granter = (*client.Lambda)(nil)
)

// Grant and Void, and the draws, give-backs and balance beyond the
// allowance they lead to, from both clients: in process against DynamoDB
// Local, and through the real bootstrap under the Runtime Interface
// Emulator.
func TestGrants(t *testing.T) {
	emulator.SkipShort(t)
	t.Run("local", func(t *testing.T) {
		store, put := tables(t)
		c, err := local.New(awsConfig(t), store, noChecksum)
		if err != nil {
			t.Fatal(err)
		}
		testGrants(t, c, put)
	})
	t.Run("lambda", func(t *testing.T) {
		store, put := tables(t)
		startFunction(t, emulator.LambdaBootstrap(t), "ENTITLEMENTS_TABLE="+store.EntitlementsTable, "USAGE_LEDGER_TABLE="+store.LedgerTable)
		c, err := client.NewLambda(awsConfig(t), rieFunction)
		if err != nil {
			t.Fatal(err)
		}
		testGrants(t, c, put)
	})
}

// draws writes draws as "bucket[:grant] amount[ lapsed]", comma separated.
func draws(ds []usage.Draw) string {
	var parts []string
	for _, d := range ds {
		s := string(d.Bucket)
		if d.GrantID != "" {
			s += ":" + d.GrantID
		}
		s += " " + d.Amount.String()
		if d.Lapsed {
			s += " lapsed"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// grants writes a balance's grants as "id remaining/amount", in order.
func grants(b *usage.Balance) string {
	if b == nil {
		return "no balance"
	}
	var parts []string
	for _, g := range b.Grants {
		parts = append(parts, fmt.Sprintf("%s %s/%s", g.ID, g.Remaining, g.Amount))
	}
	return strings.Join(parts, ", ")
}

func available(b *usage.Balance) string {
	if b == nil || b.Available == nil {
		return "none"
	}
	return b.Available.String()
}

func testGrants(t *testing.T, c granter, put func(*testing.T, dynamodb.EntitlementItem)) {
	ctx := context.Background()
	now := time.Now()
	start := usage.PeriodStart(usage.ResetMonthly, nil, now)
	limit, used, overage := usage.MustDecimal("10"), usage.MustDecimal("8"), usage.MustDecimal("3")
	put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: &limit, Used: &used, OverageLimit: &overage,
		ResetPeriod: usage.ResetMonthly, PeriodStart: &start})
	const u, k = "u", "k"
	inAYear := now.Add(365 * 24 * time.Hour).Truncate(time.Second).UTC()
	ten := 10

	res, err := c.Grant(ctx, client.GrantRequest{UserID: u, EntitlementKey: k, GrantID: "year", Amount: usage.MustDecimal("50"), ExpiresAt: &inAYear})
	if err != nil || res.Duplicate() || res.Amount.String() != "50" {
		t.Fatalf("grant: %+v, %v; want 50 applied", res, err)
	}
	if g := res.Grant; g.ID != "year" || g.Amount.String() != "50" || g.Priority != usage.DefaultGrantPriority || g.ExpiresAt == nil ||
		!g.ExpiresAt.Equal(inAYear) || g.State != usage.GrantActive || g.Voided != nil {
		t.Errorf("the grant: %+v, want year: 50, priority 100, active until %s", g, inAYear)
	}
	if b := res.Balance; grants(b) != "year 50/50" || available(b) != "55" || b.OverageLimit == nil || b.OverageLimit.String() != "3" || !b.OverageUsed.IsZero() {
		t.Errorf("balance after the grant: grants %s, available %s, %+v; want year 50/50, 2 + 50 + 3 overage = 55", grants(b), available(b), b)
	}
	res, err = c.Grant(ctx, client.GrantRequest{UserID: u, EntitlementKey: k, GrantID: "first", Amount: usage.MustDecimal("5"), Priority: &ten})
	if err != nil || res.Grant.Priority != 10 || res.Grant.ExpiresAt != nil || grants(res.Balance) != "first 5/5, year 50/50" {
		t.Fatalf("a grant of priority 10 that never expires: %+v, %v; want it drawn first", res, err)
	}
	res, err = c.Grant(ctx, client.GrantRequest{UserID: u, EntitlementKey: k, GrantID: "year", Amount: usage.MustDecimal("50"), ExpiresAt: &inAYear})
	if err != nil || !res.Duplicate() || res.Grant.ID != "year" || res.Amount.String() != "50" || res.Original == nil || res.Original.Operation != usage.OperationGrant {
		t.Errorf("the same grant again: %+v, %v; want a DUPLICATE with the original grant", res, err)
	}
	past := now.Add(-time.Minute)
	var rej *client.RejectedError
	_, err = c.Grant(ctx, client.GrantRequest{UserID: u, EntitlementKey: k, GrantID: "late", Amount: usage.MustDecimal("1"), ExpiresAt: &past})
	if !errors.As(err, &rej) || rej.Reason != usage.ReasonInvalidField || !strings.HasPrefix(rej.Message, "expiresAt: ") {
		t.Errorf("a grant expiring in the past: %v, want INVALID_FIELD expiresAt", err)
	}
	if _, err := c.Grant(ctx, client.GrantRequest{UserID: u, EntitlementKey: k, GrantID: "nothing"}); !errors.As(err, &rej) || rej.Reason != usage.ReasonMissingField {
		t.Errorf("a grant without an amount: %v, want MISSING_FIELD", err)
	}

	// The allowance's 2, then the grants in order, then the overage.
	cres, err := c.Consume(ctx, client.ConsumeRequest{UserID: u, EntitlementKey: k, Amount: usage.MustDecimal("4"), IdempotencyKey: "c-1"})
	if err != nil || draws(cres.Draws) != "allowance 2, grant:first 2" || cres.Returned != nil {
		t.Fatalf("a consume spilling into the first grant: %+v, %v", cres, err)
	}
	if b := cres.Balance; b.Used.String() != "10" || b.Remaining.String() != "0" || grants(b) != "first 3/5, year 50/50" || available(b) != "56" {
		t.Errorf("after it: used %s, remaining %v, grants %s, available %s; want 10, 0, first 3/5, year 50/50, 56", b.Used, b.Remaining, grants(b), available(b))
	}
	cres, err = c.Consume(ctx, client.ConsumeRequest{UserID: u, EntitlementKey: k, Amount: usage.MustDecimal("55"), IdempotencyKey: "c-2"})
	if err != nil || draws(cres.Draws) != "grant:first 3, grant:year 50, overage 2" {
		t.Fatalf("a consume into the overage: %+v, %v", cres, err)
	}
	if b := cres.Balance; grants(b) != "first 0/5, year 0/50" || b.OverageUsed.String() != "2" || available(b) != "1" {
		t.Errorf("after it: grants %s, overage used %s, available %s; want both grants empty, 2 of the overage used, 1 available", grants(b), b.OverageUsed, available(b))
	}
	cres, err = c.Consume(ctx, client.ConsumeRequest{UserID: u, EntitlementKey: k, Amount: usage.MustDecimal("2"), IdempotencyKey: "c-3"})
	if !errors.Is(err, usage.ErrLimitExceeded) || !errors.As(err, &rej) || available(rej.Balance) != "1" {
		t.Errorf("a consume beyond every bucket: %+v, %v; want LIMIT_EXCEEDED with 1 available", cres, err)
	}
	// A refund gives back the last drawn first.
	rres, err := c.Refund(ctx, client.RefundRequest{UserID: u, EntitlementKey: k, RefundOf: "c-2", Amount: usage.MustDecimal("4"), IdempotencyKey: "r-1"})
	if err != nil || draws(rres.Returned) != "overage 2, grant:year 2" || rres.Draws != nil || grants(rres.Balance) != "first 0/5, year 2/50" {
		t.Errorf("a refund of 4 of c-2: %+v, %v; want the overage's 2, then 2 to year", rres, err)
	}

	res, err = c.Void(ctx, client.VoidRequest{UserID: u, EntitlementKey: k, GrantID: "first"})
	if err != nil || res.Duplicate() || res.Grant.State != usage.GrantVoided || res.Grant.Voided == nil || !res.Grant.Voided.IsZero() ||
		res.Amount.String() != "5" || grants(res.Balance) != "year 2/50" {
		t.Fatalf("void: %+v, %v; want first voided with 0 left, year alone counting", res, err)
	}
	if res, err := c.Void(ctx, client.VoidRequest{UserID: u, EntitlementKey: k, GrantID: "first"}); err != nil || !res.Duplicate() || res.Grant.State != usage.GrantVoided {
		t.Errorf("the same void again: %+v, %v; want a DUPLICATE, voided", res, err)
	}
	// c-1's 2 from the voided grant lapse; the allowance's 2 come back.
	rres, err = c.Refund(ctx, client.RefundRequest{UserID: u, EntitlementKey: k, RefundOf: "c-1", IdempotencyKey: "r-2"})
	if err != nil || draws(rres.Returned) != "grant:first 2 lapsed, allowance 2" || rres.Amount.String() != "4" || rres.Balance.Used.String() != "8" {
		t.Errorf("a refund of c-1: %+v, %v; want first's 2 lapsed and 2 back to the allowance, used 8", rres, err)
	}
	if _, err := c.Void(ctx, client.VoidRequest{UserID: u, EntitlementKey: k, GrantID: "never"}); !errors.Is(err, usage.ErrGrantNotFound) {
		t.Errorf("a void of an unknown grant: %v, want GRANT_NOT_FOUND", err)
	}

	soon := time.Now().Add(1500 * time.Millisecond)
	if _, err := c.Grant(ctx, client.GrantRequest{UserID: u, EntitlementKey: k, GrantID: "soon", Amount: usage.MustDecimal("1"), ExpiresAt: &soon}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(soon) + 100*time.Millisecond)
	if _, err := c.Void(ctx, client.VoidRequest{UserID: u, EntitlementKey: k, GrantID: "soon"}); !errors.Is(err, usage.ErrGrantNotActive) {
		t.Errorf("a void of an expired grant: %v, want GRANT_NOT_ACTIVE", err)
	}
	b, err := c.Balance(ctx, u, k)
	if err != nil || grants(&b) != "year 2/50" || available(&b) != "7" || b.Grants[0].Priority != usage.DefaultGrantPriority ||
		b.Grants[0].ExpiresAt == nil || !b.Grants[0].ExpiresAt.Equal(inAYear) || b.Grants[0].Rollover() {
		t.Errorf("balance: %+v, %v; want year alone (2 of 50, until %s), 2 + 2 + 3 available", b, err, inAYear)
	}
}
