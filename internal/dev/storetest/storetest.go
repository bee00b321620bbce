// Package storetest is the contract of metering.Updater: one suite of
// behaviours that every implementation must show, run by each of them
// (the DynamoDB store against DynamoDB Local, memstore in memory). A
// store is correct when its outcomes, usage and ledger are those of
// applying each record alone, in order, whatever the grouping,
// redeliveries, concurrent consumers and changes behind its back.
package storetest

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/metering"

	"github.com/usage-event-service/usage-event-service/usage"
)

// Backend is one implementation under test: fresh, empty tables per call
// of the factory given to Run.
type Backend interface {
	// Store returns a new consumer of the backend's tables, with its own
	// cache, as a separate process would be.
	Store(t *testing.T) metering.Updater
	// Put writes an entitlement item as access-service would (attrs may
	// hold any kind of value, malformed ones included).
	Put(t *testing.T, scope usage.Scope, attrs map[string]usage.Value)
	// Get reads the entitlement item as stored.
	Get(t *testing.T, scope usage.Scope) usage.Item
	// Ledger lists the scope's ledger entries.
	Ledger(t *testing.T, scope usage.Scope) []usage.LedgerEntry
	// Notifications lists the scope's recorded notifications.
	Notifications(t *testing.T, scope usage.Scope) []usage.Notification
}

// Now is the processing time of every decision in the suite.
var Now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

var scope = usage.Scope{UserID: "u", EntitlementKey: "k"}

// Run runs the whole contract against backends made by newBackend.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	t.Run("Decisions", func(t *testing.T) { testDecisions(t, newBackend) })
	t.Run("StateChangedBehindTheCache", func(t *testing.T) { testStateChangedBehindTheCache(t, newBackend) })
	t.Run("RacingConsumers", func(t *testing.T) { testRacingConsumers(t, newBackend) })
	t.Run("ADuplicateSentManyTimesAppliesOnce", func(t *testing.T) { testDuplicateManyTimes(t, newBackend) })
	t.Run("Refunds", func(t *testing.T) { testRefunds(t, newBackend) })
	t.Run("ARefundWaitsForItsTarget", func(t *testing.T) { testRefundWaits(t, newBackend) })
	t.Run("RacingConsumesAndRefunds", func(t *testing.T) { testRacingRefunds(t, newBackend) })
	t.Run("NotificationsUnderRacingConsumers", func(t *testing.T) { testRacingNotifications(t, newBackend) })
	t.Run("Holds", func(t *testing.T) { testHolds(t, newBackend) })
	t.Run("RacingReserves", func(t *testing.T) { testRacingReserves(t, newBackend) })
	t.Run("ACommitRacingTheSweeper", func(t *testing.T) { testCommitRacingSweeper(t, newBackend) })
	t.Run("ADecisionOverSeveralItems", func(t *testing.T) { testSeveralItems(t, newBackend) })
	t.Run("RacingMembersOfOnePool", func(t *testing.T) { testRacingMembersOfOnePool(t, newBackend) })
	t.Run("RacingTeamsOfOnePool", func(t *testing.T) { testRacingTeamsOfOnePool(t, newBackend) })
	t.Run("Grants", func(t *testing.T) { testGrants(t, newBackend) })
	t.Run("RacingDrawsAcrossGrants", func(t *testing.T) { testRacingGrantDraws(t, newBackend) })
}

// Reserve, Commit, Release and Expire are hold records of u/k.
func Reserve(amount, holdID string, seconds int) usage.Record {
	ev := usage.NewEvent(scope.UserID, scope.EntitlementKey)
	ev.Operation, ev.Amount, ev.IdempotencyKey, ev.HoldSeconds = usage.OperationReserve, usage.MustDecimal(amount), holdID, seconds
	return usage.Record{Event: ev}
}

func settle(op usage.Operation, holdID, amount, msg string) usage.Record {
	ev := usage.Event{UserID: scope.UserID, EntitlementKey: scope.EntitlementKey, Operation: op, HoldID: holdID}
	if amount != "" {
		ev.Amount, ev.AmountGiven = usage.MustDecimal(amount), true
	}
	return usage.Record{Event: ev, MessageID: msg}
}

func Commit(holdID, amount string) usage.Record {
	return settle(usage.OperationCommit, holdID, amount, "commit-"+holdID)
}
func Release(holdID string) usage.Record {
	return settle(usage.OperationRelease, holdID, "", "release-"+holdID)
}
func Expire(holdID string) usage.Record {
	return settle(usage.OperationExpire, holdID, "", "expire:"+holdID)
}

// Refund is a refund record of u/k giving back amount ("" for all that
// remains) of the consume applied under target.
func Refund(amount, target, idempotencyKey string) usage.Record {
	ev := usage.NewEvent(scope.UserID, scope.EntitlementKey)
	ev.Operation, ev.RefundOf, ev.IdempotencyKey, ev.Amount = usage.OperationRefund, target, idempotencyKey, usage.Decimal{}
	if amount != "" {
		ev.Amount = usage.MustDecimal(amount)
	}
	return usage.Record{Event: ev, MessageID: "msg-" + idempotencyKey}
}

// step is one Update call of a table-driven case: its records, the
// outcomes wanted, when (zero: Now), and what access-service writes on
// the item before it (nil: nothing).
type step struct {
	records []usage.Record
	want    string
	at      time.Time
	before  map[string]usage.Value
}

// runSteps applies the steps in order with one consumer.
func runSteps(t *testing.T, b Backend, s metering.Updater, steps []step) {
	t.Helper()
	for i, st := range steps {
		if st.before != nil {
			item := map[string]usage.Value{}
			maps.Copy(item, b.Get(t, scope).Attrs)
			maps.Copy(item, st.before)
			b.Put(t, scope, item)
		}
		at := st.at
		if at.IsZero() {
			at = Now
		}
		if got := Text(apply(s, at, st.records...)); got != st.want {
			t.Fatalf("step %d: got %q, want %q", i, got, st.want)
		}
	}
}

// Num, Str and attrs build entitlement items.
func Num(s string) usage.Value { return usage.NumberValue(usage.MustDecimal(s)) }
func Str(s string) usage.Value { return usage.StringValue(s) }

// Rec is a consume record of u/k.
func Rec(amount, messageID, idempotencyKey string) usage.Record {
	ev := usage.NewEvent(scope.UserID, scope.EntitlementKey)
	ev.Amount = usage.MustDecimal(amount)
	ev.IdempotencyKey = idempotencyKey
	return usage.Record{Event: ev, MessageID: messageID}
}

func apply(s metering.Updater, now time.Time, records ...usage.Record) []usage.Outcome {
	return applyRules(s, usage.Rules{Now: now}, records...)
}

func applyRules(s metering.Updater, rules usage.Rules, records ...usage.Record) []usage.Outcome {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.Update(ctx, scope, records, rules.Plan)
}

// entry is the scope's ledger entry under key.
func entry(t *testing.T, b Backend, key string) usage.LedgerEntry {
	t.Helper()
	for _, e := range b.Ledger(t, scope) {
		if e.DedupKey == key {
			return e
		}
	}
	t.Fatalf("no ledger entry %q", key)
	return usage.LedgerEntry{}
}

// Text is outcomes as "APPLIED LIMIT_EXCEEDED ...".
func Text(os []usage.Outcome) string {
	s := make([]string, len(os))
	for i, o := range os {
		if o.Status == usage.Rejected {
			s[i] = string(o.Reason())
		} else {
			s[i] = string(o.Status)
		}
	}
	return strings.Join(s, " ")
}

// valueIs: want is "" for absent, a quoted string for a string, else a number.
func valueIs(v usage.Value, want string) bool {
	if want == "" {
		return !v.Present()
	}
	if s, err := strconv.Unquote(want); err == nil {
		return v.Kind == usage.KindString && v.Str == s
	}
	return v.Kind == usage.KindNumber && v.Num.Cmp(usage.MustDecimal(want)) == 0
}

func testDecisions(t *testing.T, newBackend func(t *testing.T) Backend) {
	monthly := map[string]usage.Value{usage.AttrLimit: Num("5"), usage.AttrUsed: Num("5"),
		usage.AttrResetPeriod: Str("MONTHLY"), usage.AttrPeriodStart: Str("2026-10-01T00:00:00Z")}
	tests := []struct {
		name     string
		item     map[string]usage.Value // nil: no item
		steps    []step
		wantUsed string // "" = absent; a number; else a string's contents
		wantPS   string
		ledger   int
	}{
		{name: "applies an event and records it", item: map[string]usage.Value{usage.AttrLimit: Num("10")},
			steps: []step{{records: []usage.Record{Rec("3", "m1", "")}, want: "APPLIED"}}, wantUsed: "3", ledger: 1},
		{name: "no item is ENTITLEMENT_NOT_FOUND and writes nothing",
			steps: []step{{records: []usage.Record{Rec("1", "m1", "")}, want: "ENTITLEMENT_NOT_FOUND"}}},
		{name: "over the limit is rejected and changes nothing", item: map[string]usage.Value{usage.AttrLimit: Num("5"), usage.AttrUsed: Num("4")},
			steps: []step{{records: []usage.Record{Rec("2", "m1", "")}, want: "LIMIT_EXCEEDED"}}, wantUsed: "4"},
		{name: "exactly reaching the limit is allowed", item: map[string]usage.Value{usage.AttrLimit: Num("5"), usage.AttrUsed: Num("4")},
			steps: []step{{records: []usage.Record{Rec("1", "m1", "")}, want: "APPLIED"}}, wantUsed: "5", ledger: 1},
		{name: "a new period resets before consuming", item: monthly,
			steps: []step{{records: []usage.Record{Rec("2", "m1", "")}, want: "APPLIED"}}, wantUsed: "2", wantPS: `"2026-11-01T00:00:00Z"`, ledger: 1},
		{name: "an anchored period resets on the anchor's day",
			item: map[string]usage.Value{usage.AttrLimit: Num("5"), usage.AttrUsed: Num("5"), usage.AttrResetPeriod: Str("MONTHLY"),
				usage.AttrResetAnchor: Str("2026-01-15T10:00:00Z"), usage.AttrPeriodStart: Str("2026-10-15T10:00:00Z")},
			steps: []step{{records: []usage.Record{Rec("1", "m1", "")}, want: "APPLIED"}}, wantUsed: "1", wantPS: `"2026-11-15T10:00:00Z"`, ledger: 1},
		{name: "first use of a periodic entitlement starts the period", item: map[string]usage.Value{usage.AttrLimit: Num("5"), usage.AttrResetPeriod: Str("DAILY")},
			steps: []step{{records: []usage.Record{Rec("1", "m1", "")}, want: "APPLIED"}}, wantUsed: "1", wantPS: `"2026-11-26T00:00:00Z"`, ledger: 1},
		{name: "a redelivered message is a duplicate", item: map[string]usage.Value{},
			steps:    []step{{records: []usage.Record{Rec("1", "m1", "")}, want: "APPLIED"}, {records: []usage.Record{Rec("1", "m1", "")}, want: "DUPLICATE"}},
			wantUsed: "1", ledger: 1},
		{name: "an idempotency key dedups across message IDs", item: map[string]usage.Value{},
			steps:    []step{{records: []usage.Record{Rec("1", "m1", "key-1")}, want: "APPLIED"}, {records: []usage.Record{Rec("1", "m2", "key-1")}, want: "DUPLICATE"}},
			wantUsed: "1", ledger: 1},
		{name: "a reused key with another amount is IDEMPOTENCY_CONFLICT", item: map[string]usage.Value{},
			steps:    []step{{records: []usage.Record{Rec("1", "m1", "key-1")}, want: "APPLIED"}, {records: []usage.Record{Rec("7", "m2", "key-1")}, want: "IDEMPOTENCY_CONFLICT"}},
			wantUsed: "1", ledger: 1},
		{name: "a duplicate stays a duplicate once the limit is reached", item: map[string]usage.Value{usage.AttrLimit: Num("1")},
			steps:    []step{{records: []usage.Record{Rec("1", "m1", "")}, want: "APPLIED"}, {records: []usage.Record{Rec("1", "m1", "")}, want: "DUPLICATE"}},
			wantUsed: "1", ledger: 1},
		{name: "a group is applied in order in one write", item: map[string]usage.Value{usage.AttrLimit: Num("4")},
			steps: []step{{records: []usage.Record{Rec("2", "m1", ""), Rec("3", "m2", ""), Rec("1", "m3", ""), Rec("1", "m3", ""), Rec("1", "m4", ""), Rec("1", "m5", "")},
				want: "APPLIED LIMIT_EXCEEDED APPLIED DUPLICATE APPLIED LIMIT_EXCEEDED"}},
			wantUsed: "4", ledger: 3},
		{name: "decimals add exactly", item: map[string]usage.Value{usage.AttrLimit: Num("0.3")},
			steps:    []step{{records: []usage.Record{Rec("0.1", "m1", ""), Rec("0.1", "m2", ""), Rec("0.1", "m3", "")}, want: "APPLIED APPLIED APPLIED"}},
			wantUsed: "0.3", ledger: 3},
		{name: "an unknown resetPeriod is INVALID_ENTITLEMENT", item: map[string]usage.Value{usage.AttrResetPeriod: Str("FORTNIGHTLY")},
			steps: []step{{records: []usage.Record{Rec("1", "m1", "")}, want: "INVALID_ENTITLEMENT"}}},
		{name: "a NULL limit is unlimited", item: map[string]usage.Value{usage.AttrLimit: {Kind: usage.KindNull}},
			steps: []step{{records: []usage.Record{Rec("1000", "m1", "")}, want: "APPLIED"}}, wantUsed: "1000", ledger: 1},
		{name: "a used stored as a string is INVALID_ENTITLEMENT", item: map[string]usage.Value{usage.AttrUsed: Str("6")},
			steps: []step{{records: []usage.Record{Rec("1", "m1", "")}, want: "INVALID_ENTITLEMENT"}}, wantUsed: `"6"`},
		{name: "a used that became a string is INVALID_ENTITLEMENT, also for a cached consumer", item: map[string]usage.Value{},
			steps: []step{{records: []usage.Record{Rec("1", "m1", "")}, want: "APPLIED"},
				{records: []usage.Record{Rec("1", "m2", "")}, want: "INVALID_ENTITLEMENT", before: map[string]usage.Value{usage.AttrUsed: Str("6")}}},
			wantUsed: `"6"`, ledger: 1},
		{name: "a reset does not overwrite a used that became a string",
			item: map[string]usage.Value{usage.AttrLimit: Num("10"), usage.AttrUsed: Num("5"), usage.AttrResetPeriod: Str("MONTHLY"), usage.AttrPeriodStart: Str("2026-10-01T00:00:00Z")},
			steps: []step{{records: []usage.Record{Rec("1", "m1", "")}, want: "APPLIED", at: time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC)},
				{records: []usage.Record{Rec("1", "m2", "")}, want: "INVALID_ENTITLEMENT", before: map[string]usage.Value{usage.AttrUsed: Str("6")}}},
			wantUsed: `"6"`, wantPS: `"2026-10-01T00:00:00Z"`, ledger: 1},
		{name: "a coalesced delta wider than 38 digits applies as one by one would", item: map[string]usage.Value{usage.AttrUsed: Num("1E-18")},
			steps:    []step{{records: []usage.Record{Rec("9E-18", "m1", ""), Rec("1E20", "m2", "")}, want: "APPLIED APPLIED"}},
			wantUsed: "100000000000000000000.00000000000000001", ledger: 2},
		{name: "a precision rejection rests on exactly the used it saw", item: map[string]usage.Value{usage.AttrUsed: Num("1E30")},
			steps: []step{{records: []usage.Record{Rec("1", "m1", "")}, want: "APPLIED"},
				{records: []usage.Record{Rec("1E-10", "m2", ""), Rec("1", "m3", "")}, want: "APPLIED APPLIED", before: map[string]usage.Value{usage.AttrUsed: Num("0")}}},
			wantUsed: "1.0000000001", ledger: 3},
		{name: "a sum beyond 38 digits after a concurrent write is INVALID_AMOUNT", item: map[string]usage.Value{},
			steps: []step{{records: []usage.Record{Rec("1", "m1", "")}, want: "APPLIED"},
				{records: []usage.Record{Rec("0.5", "m2", ""), Rec("0.25", "m3", "")}, want: "INVALID_AMOUNT INVALID_AMOUNT",
					before: map[string]usage.Value{usage.AttrUsed: Num(strings.Repeat("9", 38))}}},
			wantUsed: strings.Repeat("9", 38), ledger: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t)
			if tt.item != nil {
				b.Put(t, scope, tt.item)
			}
			s := b.Store(t)
			runSteps(t, b, s, tt.steps)
			if got := len(b.Ledger(t, scope)); got != tt.ledger {
				t.Errorf("ledger has %d entries, want %d", got, tt.ledger)
			}
			if tt.item == nil {
				if b.Get(t, scope).Exists {
					t.Error("an entitlement item was created")
				}
				return
			}
			it := b.Get(t, scope)
			if v := it.Get(usage.AttrUsed); !valueIs(v, tt.wantUsed) {
				t.Errorf("used %s, want %q", v, tt.wantUsed)
			}
			if v := it.Get(usage.AttrPeriodStart); !valueIs(v, tt.wantPS) {
				t.Errorf("periodStart %s, want %q", v, tt.wantPS)
			}
		})
	}
}

// testStateChangedBehindTheCache: access-service lowers the limit and
// then the usage behind a consumer's back; the consumer decides on what
// is stored, not on what it saw last.
func testStateChangedBehindTheCache(t *testing.T, newBackend func(t *testing.T) Backend) {
	b := newBackend(t)
	b.Put(t, scope, map[string]usage.Value{usage.AttrLimit: Num("100")})
	s := b.Store(t)
	if got := Text(apply(s, Now, Rec("1", "m1", ""))); got != "APPLIED" {
		t.Fatal(got)
	}
	b.Put(t, scope, map[string]usage.Value{usage.AttrLimit: Num("2"), usage.AttrUsed: Num("2")})
	if got := Text(apply(s, Now, Rec("1", "m2", ""))); got != "LIMIT_EXCEEDED" {
		t.Fatalf("got %s after the limit was lowered", got)
	}
	b.Put(t, scope, map[string]usage.Value{usage.AttrLimit: Num("2"), usage.AttrUsed: Num("0")})
	if got := Text(apply(s, Now, Rec("1", "m3", ""))); got != "APPLIED" {
		t.Fatalf("got %s after usage was lowered", got)
	}
}

// testRacingConsumers is the product: many consumers, each with its own
// cache, race on one entitlement. used equals exactly the sum of applied
// amounts, never exceeds the limit, and every applied event has one
// ledger entry.
func testRacingConsumers(t *testing.T, newBackend func(t *testing.T) Backend) {
	tests := []struct {
		name      string
		limit     string
		consumers int
		events    int
	}{
		{"limited entitlement under pressure", "150", 8, 240},
		{"unlimited entitlement", "", 8, 240},
		{"sixteen consumers", "100", 16, 160},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t)
			item := map[string]usage.Value{usage.AttrResetPeriod: Str("DAILY"), usage.AttrPeriodStart: Str("2026-11-25T00:00:00Z"), usage.AttrUsed: Num("40")}
			if tt.limit != "" {
				item[usage.AttrLimit] = Num(tt.limit)
			}
			b.Put(t, scope, item)
			var mu sync.Mutex
			applied, appliedCount, rejected := usage.Decimal{}, 0, 0
			var wg sync.WaitGroup
			for c := range tt.consumers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := b.Store(t)
					for i := c; i < tt.events; i += tt.consumers {
						amount := fmt.Sprint(1 + i%3)
						// A few are sent twice, as SQS redeliveries would be.
						batch := []usage.Record{Rec(amount, fmt.Sprint("m", i), "")}
						if i%10 == 0 {
							batch = append(batch, batch[0])
						}
						o := apply(s, Now, batch...)[0]
						mu.Lock()
						switch {
						case o.Status == usage.Applied:
							applied = applied.Add(usage.MustDecimal(amount))
							appliedCount++
						case o.Reason() == usage.ReasonLimitExceeded:
							rejected++
						default:
							t.Errorf("unexpected outcome %s %v", o.Status, o.Err)
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			used := b.Get(t, scope).Get(usage.AttrUsed).Num
			if used.Cmp(applied) != 0 {
				t.Errorf("used %s, but the applied events add up to %s", used, applied)
			}
			if tt.limit != "" && used.Cmp(usage.MustDecimal(tt.limit)) > 0 {
				t.Errorf("used %s exceeds the limit %s", used, tt.limit)
			}
			if tt.limit != "" && rejected == 0 {
				t.Errorf("the limit was never reached: the test exercises nothing")
			}
			if n := len(b.Ledger(t, scope)); n != appliedCount {
				t.Errorf("ledger has %d entries for %d applied events", n, appliedCount)
			}
		})
	}
}

// testDuplicateManyTimes: the same event, delivered 40 times to 8
// consumers at once, is applied exactly once; every other delivery is a
// DUPLICATE, a success.
func testDuplicateManyTimes(t *testing.T, newBackend func(t *testing.T) Backend) {
	b := newBackend(t)
	b.Put(t, scope, map[string]usage.Value{usage.AttrLimit: Num("100")})
	var mu sync.Mutex
	counts := map[usage.Status]int{}
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := b.Store(t)
			for i := range 5 {
				o := apply(s, Now, Rec("3", fmt.Sprintf("delivery-%d-%d", c, i), "the-one-key"))[0]
				mu.Lock()
				counts[o.Status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if counts[usage.Applied] != 1 || counts[usage.Duplicate] != 39 {
		t.Errorf("outcomes %v, want 1 APPLIED and 39 DUPLICATE", counts)
	}
	if used := b.Get(t, scope).Get(usage.AttrUsed); !valueIs(used, "3") {
		t.Errorf("used %s, want 3", used)
	}
	if n := len(b.Ledger(t, scope)); n != 1 {
		t.Errorf("%d ledger entries", n)
	}
}

func testRefunds(t *testing.T, newBackend func(t *testing.T) Backend) {
	limited := map[string]usage.Value{usage.AttrLimit: Num("10")}
	monthly := map[string]usage.Value{usage.AttrLimit: Num("10"), usage.AttrResetPeriod: Str("MONTHLY"), usage.AttrPeriodStart: Str("2026-10-01T00:00:00Z")}
	october := time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		item     map[string]usage.Value
		steps    []step
		wantUsed string
		refunded map[string]string // consume key -> refunded
		ledger   int
	}{
		{name: "a full refund gives back all that remains", item: limited,
			steps:    []step{{records: []usage.Record{Rec("3", "m1", "c1")}, want: "APPLIED"}, {records: []usage.Record{Refund("", "c1", "r1")}, want: "APPLIED"}},
			wantUsed: "0", refunded: map[string]string{"c1": "3"}, ledger: 2},
		{name: "partial refunds add up, then nothing remains", item: limited,
			steps: []step{{records: []usage.Record{Rec("5", "m1", "c1")}, want: "APPLIED"},
				{records: []usage.Record{Refund("2", "c1", "r1")}, want: "APPLIED"},
				{records: []usage.Record{Refund("3", "c1", "r2"), Refund("1", "c1", "r3")}, want: "APPLIED REFUND_EXCEEDS_APPLIED"},
				{records: []usage.Record{Refund("", "c1", "r4")}, want: "REFUND_EXCEEDS_APPLIED"}},
			wantUsed: "0", refunded: map[string]string{"c1": "5"}, ledger: 3},
		{name: "a refund over what remains changes nothing", item: limited,
			steps:    []step{{records: []usage.Record{Rec("2", "m1", "c1")}, want: "APPLIED"}, {records: []usage.Record{Refund("2.5", "c1", "r1")}, want: "REFUND_EXCEEDS_APPLIED"}},
			wantUsed: "2", refunded: map[string]string{"c1": "0"}, ledger: 1},
		{name: "a refund after a reset is PERIOD_ENDED", item: monthly,
			steps: []step{{records: []usage.Record{Rec("4", "m1", "c1")}, want: "APPLIED", at: october},
				{records: []usage.Record{Refund("1", "c1", "r1")}, want: "PERIOD_ENDED"}},
			wantUsed: "4", refunded: map[string]string{"c1": "0"}, ledger: 1},
		{name: "a refund in the same period applies", item: monthly,
			steps: []step{{records: []usage.Record{Rec("4", "m1", "c1")}, want: "APPLIED", at: october},
				{records: []usage.Record{Refund("1", "c1", "r1")}, want: "APPLIED", at: october}},
			wantUsed: "3", refunded: map[string]string{"c1": "1"}, ledger: 2},
		{name: "an unknown target is REFUND_TARGET_NOT_FOUND", item: limited,
			steps: []step{{records: []usage.Record{Refund("1", "nope", "r1")}, want: "REFUND_TARGET_NOT_FOUND"}}, wantUsed: "", ledger: 0},
		{name: "a refund of a refund is REFUND_TARGET_NOT_FOUND", item: limited,
			steps: []step{{records: []usage.Record{Rec("3", "m1", "c1")}, want: "APPLIED"}, {records: []usage.Record{Refund("1", "c1", "r1")}, want: "APPLIED"},
				{records: []usage.Record{Refund("1", "r1", "r2")}, want: "REFUND_TARGET_NOT_FOUND"}},
			wantUsed: "2", refunded: map[string]string{"c1": "1"}, ledger: 2},
		{name: "a duplicate refund is DUPLICATE, another target or amount a conflict", item: limited,
			steps: []step{{records: []usage.Record{Rec("3", "m1", "c1"), Rec("3", "m2", "c2")}, want: "APPLIED APPLIED"},
				{records: []usage.Record{Refund("1", "c1", "r1")}, want: "APPLIED"},
				{records: []usage.Record{Refund("1", "c1", "r1"), Refund("", "c1", "r1"), Refund("1", "c2", "r1"), Refund("2", "c1", "r1")},
					want: "DUPLICATE DUPLICATE IDEMPOTENCY_CONFLICT IDEMPOTENCY_CONFLICT"},
				{records: []usage.Record{Rec("1", "m3", "r1"), Refund("1", "c2", "c1")}, want: "IDEMPOTENCY_CONFLICT IDEMPOTENCY_CONFLICT"}},
			wantUsed: "5", refunded: map[string]string{"c1": "1", "c2": "0"}, ledger: 3},
		{name: "a consume and its refund in one group", item: limited,
			steps: []step{{records: []usage.Record{Rec("4", "m1", "c1"), Refund("1", "c1", "r1"), Rec("7", "m2", "c2"), Refund("", "c1", "r2")},
				want: "APPLIED APPLIED APPLIED APPLIED"}},
			wantUsed: "7", refunded: map[string]string{"c1": "4", "c2": "0"}, ledger: 4},
		{name: "a refund never takes used below 0", item: limited,
			steps: []step{{records: []usage.Record{Rec("4", "m1", "c1")}, want: "APPLIED"},
				{records: []usage.Record{Refund("3", "c1", "r1")}, want: "APPLIED", before: map[string]usage.Value{usage.AttrUsed: Num("1")}}},
			wantUsed: "0", refunded: map[string]string{"c1": "3"}, ledger: 2},
		{name: "a refund lets a consume that did not fit apply", item: limited,
			steps: []step{{records: []usage.Record{Rec("8", "m1", "c1"), Rec("5", "m2", "c2"), Refund("6", "c1", "r1"), Rec("5", "m3", "c3")},
				want: "APPLIED LIMIT_EXCEEDED APPLIED APPLIED"}},
			wantUsed: "7", refunded: map[string]string{"c1": "6", "c3": "0"}, ledger: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t)
			b.Put(t, scope, tt.item)
			s := b.Store(t)
			runSteps(t, b, s, tt.steps)
			if v := b.Get(t, scope).Get(usage.AttrUsed); !valueIs(v, tt.wantUsed) {
				t.Errorf("used %s, want %q", v, tt.wantUsed)
			}
			if got := len(b.Ledger(t, scope)); got != tt.ledger {
				t.Errorf("ledger has %d entries, want %d", got, tt.ledger)
			}
			for key, want := range tt.refunded {
				if e := entry(t, b, key); e.Refunded.Cmp(usage.MustDecimal(want)) != 0 {
					t.Errorf("consume %s refunded %s, want %s", key, e.Refunded, want)
				}
			}
		})
	}
}

// testRefundWaits: from a queue, a refund may overtake its consume. It is
// RETRY while the message is younger than the wait, and rejected after.
func testRefundWaits(t *testing.T, newBackend func(t *testing.T) Backend) {
	b := newBackend(t)
	b.Put(t, scope, map[string]usage.Value{usage.AttrLimit: Num("10")})
	s := b.Store(t)
	r := Refund("1", "c1", "r1")
	r.SentAt = Now.Add(-time.Minute)
	queued := usage.Rules{Now: Now, TargetWait: 15 * time.Minute}
	o := applyRules(s, queued, r)[0]
	if o.Status != usage.Retry || o.Err != usage.ErrTargetPending {
		t.Fatalf("before its consume: %s %v, want RETRY %v", o.Status, o.Err, usage.ErrTargetPending)
	}
	if got := Text(applyRules(s, queued, Rec("2", "m1", "c1"))); got != "APPLIED" {
		t.Fatal(got)
	}
	if got := Text(applyRules(s, queued, r)); got != "APPLIED" {
		t.Fatalf("after its consume: %s", got)
	}
	late := Refund("1", "c-never", "r2")
	late.SentAt = Now.Add(-16 * time.Minute)
	if got := Text(applyRules(s, queued, late)); got != "REFUND_TARGET_NOT_FOUND" {
		t.Fatalf("after the wait: %s", got)
	}
	if v := b.Get(t, scope).Get(usage.AttrUsed); !valueIs(v, "1") {
		t.Errorf("used %s, want 1", v)
	}
}

// testRacingRefunds: consumers race consumes and refunds of earlier
// consumes on one limited entitlement. used ends exactly at applied minus
// refunded, never above the limit, and no consume is refunded beyond its
// amount.
func testRacingRefunds(t *testing.T, newBackend func(t *testing.T) Backend) {
	b := newBackend(t)
	b.Put(t, scope, map[string]usage.Value{usage.AttrLimit: Num("60")})
	const consumers, rounds = 6, 30
	var mu sync.Mutex
	applied, refunded := usage.Decimal{}, usage.Decimal{}
	var wg sync.WaitGroup
	for c := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := b.Store(t)
			for i := range rounds {
				key := fmt.Sprintf("c-%d-%d", c, i)
				// Consume, then refund 1 of this or of another consumer's
				// consume (which may not exist, or be refunded already).
				other := fmt.Sprintf("c-%d-%d", (c+1)%consumers, i)
				out := apply(s, Now, Rec(fmt.Sprint(1+i%3), "m-"+key, key), Refund("1", other, "r-"+key), Refund("", key, "rr-"+key))
				mu.Lock()
				for j, o := range out {
					switch {
					case o.Status == usage.Applied && j == 0:
						applied = applied.Add(usage.MustDecimal(fmt.Sprint(1 + i%3)))
					case o.Status == usage.Applied:
						refunded = refunded.Add(o.Entry.Amount)
					case o.Status == usage.Retry:
						t.Errorf("record %d of %s: RETRY %v", j, key, o.Err)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	used := b.Get(t, scope).Get(usage.AttrUsed).Num
	if want := applied.Sub(refunded); used.Cmp(want) != 0 {
		t.Errorf("used %s, applied %s - refunded %s = %s", used, applied, refunded, want)
	}
	if used.Cmp(usage.MustDecimal("60")) > 0 {
		t.Errorf("used %s exceeds the limit", used)
	}
	for _, e := range b.Ledger(t, scope) {
		if e.Refunded.Cmp(e.Amount) > 0 {
			t.Errorf("consume %s refunded %s of %s", e.DedupKey, e.Refunded, e.Amount)
		}
	}
	if refunded.IsZero() {
		t.Error("nothing was refunded: the test exercises nothing")
	}
}

// testRacingNotifications: consumers race one entitlement across 80 %
// and 100 %, with redeliveries and a flood of rejections: exactly one
// notification per threshold and one usage.limit.rejected, each recorded
// by the write that caused it, with the exact used it crossed to.
func testRacingNotifications(t *testing.T, newBackend func(t *testing.T) Backend) {
	for run := range 3 {
		t.Run(fmt.Sprint("run ", run), func(t *testing.T) {
			b := newBackend(t)
			b.Put(t, scope, map[string]usage.Value{usage.AttrLimit: Num("100"), usage.AttrUsed: Num("50"),
				usage.AttrResetPeriod: Str("MONTHLY"), usage.AttrPeriodStart: Str("2026-11-01T00:00:00Z")})
			rules := usage.Rules{Now: Now, Notify: &usage.Notify{Thresholds: []usage.Decimal{usage.MustDecimal("80"), usage.MustDecimal("100")}, LimitRejected: true}}
			var wg sync.WaitGroup
			var mu sync.Mutex
			applied := map[string]usage.Decimal{}
			for c := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := b.Store(t)
					for i := range 12 {
						key := fmt.Sprintf("c-%d-%d-%d", run, c, i)
						batch := []usage.Record{Rec(fmt.Sprint(1+(c+i)%2), "m-"+key, key)}
						if i%3 == 0 {
							batch = append(batch, batch[0]) // a redelivery in the same batch
						}
						o := applyRules(s, rules, batch...)[0]
						if o.Status == usage.Retry {
							t.Errorf("%s: RETRY %v", key, o.Err)
						}
						if o.Status == usage.Applied {
							mu.Lock()
							applied[key] = batch[0].Event.Amount
							mu.Unlock()
						}
					}
				}()
			}
			wg.Wait()
			notes := b.Notifications(t, scope)
			byKey := map[string]usage.Notification{}
			for _, n := range notes {
				if _, dup := byKey[n.Key]; dup {
					t.Errorf("notification %s recorded twice", n.Key)
				}
				byKey[n.Key] = n
			}
			want := []string{"2026-11-01T00:00:00Z#usage.threshold.reached#80", "2026-11-01T00:00:00Z#usage.threshold.reached#100", "2026-11-01T00:00:00Z#usage.limit.rejected#-"}
			if len(notes) != len(want) {
				t.Errorf("%d notifications %v, want %v", len(notes), byKey, want)
			}
			for _, k := range want {
				n, ok := byKey[k]
				if !ok {
					t.Errorf("no notification %s", k)
					continue
				}
				if n.ThresholdPercent != nil {
					if _, ok := applied[n.EventID]; !ok {
						t.Errorf("%s names event %s, which was not applied", k, n.EventID)
					}
					level := n.Limit.Mul(*n.ThresholdPercent).Shift(-2)
					if n.Used.Cmp(level) < 0 || n.Used.Sub(applied[n.EventID]).Cmp(level) >= 0 {
						t.Errorf("%s: used %s after %s's write does not cross %s", k, n.Used, n.EventID, level)
					}
				}
			}
		})
	}
}

func testHolds(t *testing.T, newBackend func(t *testing.T) Backend) {
	limited := map[string]usage.Value{usage.AttrLimit: Num("10")}
	monthly := map[string]usage.Value{usage.AttrLimit: Num("10"), usage.AttrResetPeriod: Str("MONTHLY"), usage.AttrPeriodStart: Str("2026-10-01T00:00:00Z")}
	october := time.Date(2026, 10, 31, 23, 50, 0, 0, time.UTC)
	tests := []struct {
		name     string
		item     map[string]usage.Value
		steps    []step
		wantUsed string
		state    string // of hold h1 at the end
	}{
		{name: "reserve then a partial commit leaves exactly the actual amount used", item: limited,
			steps:    []step{{records: []usage.Record{Reserve("5", "h1", 0)}, want: "APPLIED"}, {records: []usage.Record{Commit("h1", "3.2")}, want: "APPLIED"}},
			wantUsed: "3.2", state: usage.HoldCommitted},
		{name: "reserve then release leaves nothing", item: limited,
			steps:    []step{{records: []usage.Record{Reserve("5", "h1", 0)}, want: "APPLIED"}, {records: []usage.Record{Release("h1")}, want: "APPLIED"}},
			wantUsed: "0", state: usage.HoldReleased},
		{name: "a commit without amount commits the whole hold; commit 0 gives it all back", item: limited,
			steps: []step{{records: []usage.Record{Reserve("4", "h1", 0), Reserve("3", "h2", 0)}, want: "APPLIED APPLIED"},
				{records: []usage.Record{Commit("h1", ""), Commit("h2", "0")}, want: "APPLIED APPLIED"}},
			wantUsed: "4", state: usage.HoldCommitted},
		{name: "a reserve that does not fit is LIMIT_EXCEEDED and changes nothing", item: limited,
			steps:    []step{{records: []usage.Record{Reserve("8", "h1", 0)}, want: "APPLIED"}, {records: []usage.Record{Reserve("3", "h2", 0)}, want: "LIMIT_EXCEEDED"}},
			wantUsed: "8", state: usage.HoldActive},
		{name: "a duplicate reserve returns the original; another amount conflicts", item: limited,
			steps: []step{{records: []usage.Record{Reserve("5", "h1", 0)}, want: "APPLIED"},
				{records: []usage.Record{Reserve("5", "h1", 0), Reserve("6", "h1", 0)}, want: "DUPLICATE IDEMPOTENCY_CONFLICT"}},
			wantUsed: "5", state: usage.HoldActive},
		{name: "a hold settles once: the same settlement again is DUPLICATE, another HOLD_NOT_ACTIVE", item: limited,
			steps: []step{{records: []usage.Record{Reserve("5", "h1", 0)}, want: "APPLIED"},
				{records: []usage.Record{Commit("h1", "2")}, want: "APPLIED"},
				{records: []usage.Record{Commit("h1", "2"), Commit("h1", "3"), Release("h1"), Expire("h1")}, want: "DUPLICATE HOLD_NOT_ACTIVE HOLD_NOT_ACTIVE DUPLICATE"}},
			wantUsed: "2", state: usage.HoldCommitted},
		{name: "release after release is DUPLICATE", item: limited,
			steps: []step{{records: []usage.Record{Reserve("5", "h1", 0)}, want: "APPLIED"},
				{records: []usage.Record{Release("h1"), Release("h1")}, want: "APPLIED DUPLICATE"}},
			wantUsed: "0", state: usage.HoldReleased},
		{name: "a commit for more than the hold is COMMIT_EXCEEDS_HOLD", item: limited,
			steps:    []step{{records: []usage.Record{Reserve("5", "h1", 0)}, want: "APPLIED"}, {records: []usage.Record{Commit("h1", "5.5")}, want: "COMMIT_EXCEEDS_HOLD"}},
			wantUsed: "5", state: usage.HoldActive},
		{name: "an unknown hold is HOLD_NOT_FOUND, a consume is no hold", item: limited,
			steps: []step{{records: []usage.Record{Rec("1", "m1", "c1")}, want: "APPLIED"},
				{records: []usage.Record{Commit("nope", ""), Release("c1")}, want: "HOLD_NOT_FOUND HOLD_NOT_FOUND"}},
			wantUsed: "1"},
		{name: "an expired hold is released by the sweeper's expire, and a late commit is HOLD_NOT_ACTIVE", item: limited,
			steps: []step{{records: []usage.Record{Reserve("5", "h1", 2)}, want: "APPLIED"},
				{records: []usage.Record{Expire("h1")}, want: "RETRY"}, // not due yet
				{records: []usage.Record{Expire("h1")}, want: "APPLIED", at: Now.Add(3 * time.Second)},
				{records: []usage.Record{Commit("h1", "1")}, want: "HOLD_NOT_ACTIVE", at: Now.Add(4 * time.Second)}},
			wantUsed: "0", state: usage.HoldExpired},
		{name: "a reserve before a reset settled after it changes no usage but settles", item: monthly,
			steps: []step{{records: []usage.Record{Reserve("5", "h1", 3600)}, want: "APPLIED", at: october},
				{records: []usage.Record{Rec("2", "m1", "c1")}, want: "APPLIED"}, // November: reset, used 2
				{records: []usage.Record{Commit("h1", "1")}, want: "APPLIED"}},
			wantUsed: "2", state: usage.HoldCommitted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t)
			b.Put(t, scope, tt.item)
			s := b.Store(t)
			runSteps(t, b, s, tt.steps)
			if v := b.Get(t, scope).Get(usage.AttrUsed); !valueIs(v, tt.wantUsed) {
				t.Errorf("used %s, want %q", v, tt.wantUsed)
			}
			if tt.state != "" {
				if e := entry(t, b, "h1"); e.HoldState != tt.state {
					t.Errorf("hold h1 is %s, want %s", e.HoldState, tt.state)
				}
			}
		})
	}
}

// testRacingReserves: many concurrent reserves of equal amounts on one
// limit: exactly floor(limit / amount) succeed.
func testRacingReserves(t *testing.T, newBackend func(t *testing.T) Backend) {
	b := newBackend(t)
	b.Put(t, scope, map[string]usage.Value{usage.AttrLimit: Num("100")})
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted, rejected := 0, 0
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := b.Store(t)
			for i := range 8 {
				o := apply(s, Now, Reserve("7", fmt.Sprintf("h-%d-%d", c, i), 0))[0]
				mu.Lock()
				switch {
				case o.Status == usage.Applied:
					granted++
				case o.Reason() == usage.ReasonLimitExceeded:
					rejected++
				default:
					t.Errorf("reserve: %s %v", o.Status, o.Err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if granted != 14 || rejected != 50 {
		t.Errorf("%d reserves of 7 granted on a limit of 100 (%d rejected), want exactly 14", granted, rejected)
	}
	if v := b.Get(t, scope).Get(usage.AttrUsed); !valueIs(v, "98") {
		t.Errorf("used %s, want 98", v)
	}
}

// testCommitRacingSweeper: commits race the sweeper's expire of the same
// holds from several consumers: exactly one wins each hold, and used
// agrees with the winners.
func testCommitRacingSweeper(t *testing.T, newBackend func(t *testing.T) Backend) {
	b := newBackend(t)
	b.Put(t, scope, map[string]usage.Value{usage.AttrLimit: Num("1000")})
	s := b.Store(t)
	const holds = 20
	for i := range holds {
		if got := Text(apply(s, Now, Reserve("10", fmt.Sprint("h", i), 1))); got != "APPLIED" {
			t.Fatal(got)
		}
	}
	later := Now.Add(2 * time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners := map[string][]string{}
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := b.Store(t)
			for i := range holds {
				id := fmt.Sprint("h", i)
				r, name := Commit(id, "4"), "commit"
				if (c+i)%2 == 0 {
					r, name = Expire(id), "expire"
				}
				o := apply(s, later, r)[0]
				if o.Status == usage.Applied {
					mu.Lock()
					winners[id] = append(winners[id], name)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	want := usage.Decimal{}
	for i := range holds {
		id := fmt.Sprint("h", i)
		if len(winners[id]) != 1 {
			t.Errorf("hold %s settled by %v, want exactly one", id, winners[id])
			continue
		}
		e := entry(t, b, id)
		if winners[id][0] == "commit" {
			want = want.Add(usage.MustDecimal("4"))
			if e.HoldState != usage.HoldCommitted {
				t.Errorf("hold %s committed but is %s", id, e.HoldState)
			}
		} else if e.HoldState != usage.HoldExpired {
			t.Errorf("hold %s expired but is %s", id, e.HoldState)
		}
	}
	if v := b.Get(t, scope).Get(usage.AttrUsed); v.Num.Cmp(want) != 0 {
		t.Errorf("used %s, the winners say %s", v, want)
	}
}
