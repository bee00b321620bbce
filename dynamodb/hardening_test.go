package dynamodb_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/storetest"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/usage"
)

// These tests pin the defects of the hardening review: each scenario ran,
// and failed, against the store as it was before its fix. Each process is
// its own Store (its own cache), as two Lambda execution environments or
// two workers are.

var uk = usage.Scope{UserID: "u", EntitlementKey: "k"}

// do applies records of u/k in one Update with the given rules.
func (e *env) do(s metering.Writer, rules usage.Rules, records ...usage.Record) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if rules.Now.IsZero() {
		rules.Now = e.now
	}
	return outcomeText(s.Update(ctx, uk, records, rules.Plan))
}

// edit runs an UpdateItem on u/k's entitlement behind the stores' backs,
// as access-service may.
func (e *env) edit(t *testing.T, update string, values map[string]types.AttributeValue) {
	t.Helper()
	in := &awsdynamodb.UpdateItemInput{
		TableName: aws.String(e.entitlements),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "USER#u"}, "sk": &types.AttributeValueMemberS{Value: "ENTITLEMENT#k"},
		},
		UpdateExpression:          aws.String(update),
		ExpressionAttributeValues: values,
	}
	if _, err := e.client.UpdateItem(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

// editLedger runs an UpdateItem on u/k's ledger entry under key.
func (e *env) editLedger(t *testing.T, key, update string, values map[string]types.AttributeValue) {
	t.Helper()
	pk, sk := dynamodb.LedgerKey(uk, key)
	in := &awsdynamodb.UpdateItemInput{
		TableName: aws.String(e.ledger),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk},
		},
		UpdateExpression: aws.String(update), ExpressionAttributeValues: values,
	}
	if _, err := e.client.UpdateItem(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

func nums(vs ...string) *types.AttributeValueMemberL {
	l := &types.AttributeValueMemberL{}
	for _, v := range vs {
		l.Value = append(l.Value, &types.AttributeValueMemberN{Value: v})
	}
	return l
}

func holdState(t *testing.T, e *env, id string) string {
	t.Helper()
	holds, err := dynamodb.ListHolds(context.Background(), e.client, e.ledger, uk, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range holds {
		if h.DedupKey == id {
			return h.HoldState
		}
	}
	return "none"
}

// Scenario 1: a settlement rejected on a cached "no entitlement" is
// confirmed by a consistent read, never final on the cache.
func TestASettlementIsNotRejectedOnAStaleCachedEntitlement(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	a, b := e.store(), e.store()
	if got := e.do(a, usage.Rules{}, storetest.Release("unknown")); got != "ENTITLEMENT_NOT_FOUND" {
		t.Fatalf("release before the entitlement exists: %s", got)
	}
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("10")})
	if got := e.do(b, usage.Rules{}, storetest.Reserve("5", "h1", 900)); got != "APPLIED" {
		t.Fatalf("reserve: %s", got)
	}
	if got := e.do(a, usage.Rules{}, storetest.Commit("h1", "3")); got != "APPLIED" {
		t.Errorf("commit on A's stale cache: %s, want APPLIED", got)
	}
	e.usedIs(t, "3")
}

// Scenario 1, second form: A's cached entitlement had a malformed used,
// since repaired; A's sweep must still expire the hold.
func TestASweepIsNotBlockedByAStaleMalformedCache(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("10")})
	a, b := e.store(), e.store()
	if got := e.do(b, usage.Rules{}, storetest.Reserve("5", "h1", 2)); got != "APPLIED" {
		t.Fatal(got)
	}
	e.edit(t, "SET used = :s", map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: "oops"}})
	if got := e.do(a, usage.Rules{}, storetest.Rec("1", "m1", "")); got != "INVALID_ENTITLEMENT" {
		t.Fatalf("consume on a malformed used: %s", got)
	}
	e.edit(t, "SET used = :n", map[string]types.AttributeValue{":n": &types.AttributeValueMemberN{Value: "5"}})
	later := e.now.Add(3 * time.Second)
	sw, err := sweep(a, later, 100)
	if err != nil {
		t.Fatal(err)
	}
	if sw.Expired != 1 {
		t.Errorf("sweep %+v, want the hold expired", sw)
	}
	e.usedIs(t, "0")
}

// Scenario 2: thresholds that access-service changes are the ones a
// decision rests on, in a warm process too.
func TestNotificationThresholdsAsStoredWhenWritten(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("10")})
	s := e.store()
	rules := usage.Rules{Notify: &usage.Notify{Thresholds: []usage.Decimal{usage.MustDecimal("80")}}}
	if got := e.do(s, rules, storetest.Rec("1", "m1", "")); got != "APPLIED" {
		t.Fatal(got)
	}
	e.edit(t, "SET notifyThresholds = :l", map[string]types.AttributeValue{":l": nums("50")})
	if got := e.do(s, rules, storetest.Rec("5", "m2", "")); got != "APPLIED" {
		t.Fatal(got)
	}
	e.edit(t, "SET notifyThresholds = :l", map[string]types.AttributeValue{":l": nums()})
	if got := e.do(s, rules, storetest.Rec("3", "m3", "")); got != "APPLIED" {
		t.Fatal(got)
	}
	var got []string
	for _, n := range e.Notifications(t, uk) {
		got = append(got, n.ThresholdPercent.String()+"@"+n.Used.String())
	}
	if strings.Join(got, " ") != "50@6" {
		t.Errorf("notifications %v, want only 50 %% at used 6", got)
	}
}

// Scenario 3: a give-back that would leave used beyond 38 digits is
// INVALID_AMOUNT, as for consumes, and coalesced as one at a time.
func TestAGiveBackBeyond38DigitsIsInvalidAmount(t *testing.T) {
	t.Run("refund", func(t *testing.T) {
		e := newEnv(t, dynamodb.DefaultEntitlementKeys)
		e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Used: dp("100")})
		s := e.store()
		if got := e.do(s, usage.Rules{}, storetest.Rec("1", "m1", "c1")); got != "APPLIED" {
			t.Fatal(got)
		}
		if got := e.do(s, usage.Rules{}, storetest.Refund("1E-36", "c1", "r1")); got != "INVALID_AMOUNT" {
			t.Errorf("refund: %s, want INVALID_AMOUNT", got)
		}
		e.usedIs(t, "101")
	})
	t.Run("commit", func(t *testing.T) {
		e := newEnv(t, dynamodb.DefaultEntitlementKeys)
		e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Used: dp("100")})
		s := e.store()
		if got := e.do(s, usage.Rules{}, storetest.Reserve("5", "h1", 900)); got != "APPLIED" {
			t.Fatal(got)
		}
		if got := e.do(s, usage.Rules{}, storetest.Commit("h1", "1E-36")); got != "INVALID_AMOUNT" {
			t.Errorf("commit: %s, want INVALID_AMOUNT", got)
		}
		e.usedIs(t, "105")
	})
	t.Run("coalesced", func(t *testing.T) {
		e := newEnv(t, dynamodb.DefaultEntitlementKeys)
		e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Used: dp("100")})
		s := e.store()
		if got := e.do(s, usage.Rules{}, storetest.Rec("1", "m1", "c1")); got != "APPLIED" {
			t.Fatal(got)
		}
		got := e.do(s, usage.Rules{}, storetest.Refund("1E-36", "c1", "r1"), storetest.Rec("1", "m2", "c2"), storetest.Refund("", "c1", "r2"))
		if got != "INVALID_AMOUNT APPLIED APPLIED" {
			t.Errorf("coalesced: %s, want INVALID_AMOUNT APPLIED APPLIED", got)
		}
		e.usedIs(t, "101")
	})
}

// Scenario 4: a threshold whose level needs more than 38 digits.
func TestAThresholdLevelBeyond38Digits(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("7")})
	p := "33.333333333333333333333333333333333333"
	e.edit(t, "SET notifyThresholds = :l", map[string]types.AttributeValue{":l": nums(p)})
	rules := usage.Rules{Notify: &usage.Notify{}}
	a, b := e.store(), e.store()
	for i, s := range []metering.Writer{a, b, a, b} {
		if got := e.do(s, rules, storetest.Rec("1", "m"+string(rune('1'+i)), "")); got != "APPLIED" {
			t.Fatalf("consume %d: %s, want APPLIED", i, got)
		}
	}
	notes := e.Notifications(t, uk)
	if len(notes) != 1 || notes[0].Used.Cmp(usage.MustDecimal("3")) != 0 {
		t.Errorf("notifications %+v, want one, at used 3", notes)
	}
}

// Scenario 5: a rejection that rests on a hold's state is pinned to it: a
// hold released in the gap is HOLD_NOT_ACTIVE, as one at a time.
func TestACommitRejectionIsPinnedToTheHoldState(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("10")})
	b := e.store()
	if got := e.do(b, usage.Rules{}, storetest.Reserve("2", "h1", 900)); got != "APPLIED" {
		t.Fatal(got)
	}
	gap := &gapClient{Client: e.client}
	a := e.writer(gap)
	gap.before = func() {
		if got := e.do(b, usage.Rules{}, storetest.Release("h1")); got != "APPLIED" {
			t.Errorf("release in the gap: %s", got)
		}
	}
	if got := e.do(a, usage.Rules{}, storetest.Rec("1", "m1", ""), storetest.Commit("h1", "5")); got != "APPLIED HOLD_NOT_ACTIVE" {
		t.Errorf("got %s, want APPLIED HOLD_NOT_ACTIVE", got)
	}
	e.usedIs(t, "1")
}

// gapClient runs before once, just before the first transaction: another
// writer between the store's read and its write.
type gapClient struct {
	*awsdynamodb.Client
	before func()
}

func (c *gapClient) TransactWriteItems(ctx context.Context, in *awsdynamodb.TransactWriteItemsInput, opts ...func(*awsdynamodb.Options)) (*awsdynamodb.TransactWriteItemsOutput, error) {
	if f := c.before; f != nil {
		c.before = nil
		f()
	}
	return c.Client.TransactWriteItems(ctx, in, opts...)
}

// Scenario 6: expired holds of a deleted or malformed entitlement do not
// block the sweep: the first are expired (their usage went with the
// item), the second set aside for later; another user's hold in the same
// shard is released.
func TestHoldsOfGoneEntitlementsDoNotBlockTheSweep(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	ctx := context.Background()
	s := e.store()
	users := []string{"gone", "bad", "ok"}
	for _, u := range users {
		e.put(t, dynamodb.EntitlementItem{UserID: u, EntitlementKey: "k", Limit: dp("100")})
	}
	// Two holds each for gone and bad, ahead of ok's in every shard.
	for i, u := range users {
		for j := range 8 {
			ev := usage.NewEvent(u, "k")
			ev.Operation, ev.Amount, ev.IdempotencyKey, ev.HoldSeconds = usage.OperationReserve, usage.MustDecimal("1"), u+"-"+string(rune('a'+j)), 1+i
			if got := outcomeText(s.Update(ctx, ev.Scope(), []usage.Record{{Event: ev}}, usage.Rules{Now: e.now}.Plan)); got != "APPLIED" {
				t.Fatal(got)
			}
		}
	}
	if _, err := e.client.DeleteItem(ctx, &awsdynamodb.DeleteItemInput{TableName: aws.String(e.entitlements), Key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "USER#gone"}, "sk": &types.AttributeValueMemberS{Value: "ENTITLEMENT#k"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.UpdateItem(ctx, &awsdynamodb.UpdateItemInput{TableName: aws.String(e.entitlements), Key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "USER#bad"}, "sk": &types.AttributeValueMemberS{Value: "ENTITLEMENT#k"}},
		UpdateExpression: aws.String("SET resetPeriod = :p"), ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: "HOURLY"}}}); err != nil {
		t.Fatal(err)
	}
	later := e.now.Add(10 * time.Second)
	var total metering.Sweep
	for range 20 {
		sw, err := sweep(s, later, 2)
		if err != nil {
			t.Fatal(err)
		}
		if sw.Found == 0 {
			break
		}
		total.Found, total.Expired, total.Deferred = total.Found+sw.Found, total.Expired+sw.Expired, total.Deferred+sw.Deferred
	}
	if total.Expired != 16 || total.Deferred != 8 {
		t.Errorf("sweeps %+v, want 16 expired (gone's and ok's) and 8 set aside (bad's)", total)
	}
	if got := e.get(t, "ok", "k").Used; !got.IsZero() {
		t.Errorf("ok's used %s, want 0", got)
	}
}

// Scenario 7: an unreadable ledger entry is rejected with its own reason
// at once, and holds back no neighbour.
func TestAnUnreadableLedgerEntryIsRejectedAtOnce(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("100")})
	s := e.store()
	if got := e.do(s, usage.Rules{}, storetest.Reserve("5", "h1", 900), storetest.Rec("2", "m1", "c1")); got != "APPLIED APPLIED" {
		t.Fatal(got)
	}
	e.editLedger(t, "h1", "REMOVE holdState", nil)
	e.editLedger(t, "c1", "SET refunded = :s", map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: "x"}})
	counter := &opCounter{Client: e.client}
	fresh := e.writer(counter)
	got := e.do(fresh, usage.Rules{}, storetest.Release("h1"), storetest.Refund("3", "c1", "r1"), storetest.Rec("1", "m2", "c2"))
	if got != "INVALID_LEDGER_ENTRY INVALID_LEDGER_ENTRY APPLIED" {
		t.Errorf("got %s, want INVALID_LEDGER_ENTRY INVALID_LEDGER_ENTRY APPLIED", got)
	}
	if _, txs := counter.reset(); txs > 2 {
		t.Errorf("%d transactions, want at most 2", txs)
	}
	e.usedIs(t, "8")
}

// Scenario 8: a notification carries used right after the event that
// crossed, as one at a time would.
func TestANotificationCarriesUsedAtTheCrossing(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("10")})
	s := e.store()
	rules := usage.Rules{Notify: &usage.Notify{Thresholds: []usage.Decimal{usage.MustDecimal("80")}}}
	if got := e.do(s, rules, storetest.Rec("9", "m1", "c1"), storetest.Refund("9", "c1", "r1")); got != "APPLIED APPLIED" {
		t.Fatal(got)
	}
	notes := e.Notifications(t, uk)
	if len(notes) != 1 || notes[0].Used.Cmp(usage.MustDecimal("9")) != 0 || notes[0].EventID != "c1" {
		t.Errorf("notifications %+v, want one at used 9 by c1", notes)
	}
}

// Scenario 9: the pending index orders times as times.
func TestThePendingIndexOrdersTimesAsTimes(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("10")})
	s := e.store()
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	reserve := usage.Rules{Now: at.Add(120 * time.Millisecond).Add(-time.Second)} // expires at :00.12
	if got := e.do(s, reserve, storetest.Reserve("1", "h1", 1)); got != "APPLIED" {
		t.Fatal(got)
	}
	now := at.Add(123 * time.Millisecond)
	sw, err := sweep(s, now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if sw.Found != 1 || sw.Expired != 1 {
		t.Errorf("sweep at :00.123 of a hold due at :00.12: %+v, want it expired", sw)
	}
	if st := holdState(t, e, "h1"); st != usage.HoldExpired {
		t.Errorf("hold %s", st)
	}
}

// Scenario 10: which reason wins, whatever the store looked at first.
func TestTheOrderOfReasons(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	s := e.store()
	for _, r := range []usage.Record{storetest.Commit("nope", "1"), storetest.Release("nope"), storetest.Refund("1", "nope", "r1")} {
		if got := e.do(s, usage.Rules{TargetWait: time.Hour}, r); got != "ENTITLEMENT_NOT_FOUND" {
			t.Errorf("%s of an unknown target, no entitlement: %s", r.Event.Operation, got)
		}
	}
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("10")})
	e.edit(t, "SET used = :s", map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: "x"}})
	for _, r := range []usage.Record{storetest.Commit("nope", "1"), storetest.Release("nope"), storetest.Refund("1", "nope", "r1")} {
		if got := e.do(s, usage.Rules{}, r); got != "INVALID_ENTITLEMENT" {
			t.Errorf("%s of an unknown target, malformed entitlement: %s", r.Event.Operation, got)
		}
	}
}
