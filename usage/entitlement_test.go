package usage_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/dev/memstore"
	"github.com/usage-event-service/usage-event-service/usage"
)

var now = time.Date(2026, 11, 26, 15, 4, 5, 0, time.UTC)

func dec(s string) usage.Decimal { return usage.MustDecimal(s) }

func record(id, amount string) usage.Record {
	ev := usage.NewEvent("u", "k")
	ev.Amount = dec(amount)
	return usage.Record{Event: ev, MessageID: id}
}

func keyed(id, key, amount string) usage.Record {
	r := record(id, amount)
	r.Event.IdempotencyKey = key
	return r
}

func statuses(p usage.Plan) string {
	s := ""
	for _, o := range p.Outcomes {
		if s != "" {
			s += " "
		}
		if o.Status == usage.Rejected {
			s += string(o.Reason())
		} else {
			s += string(o.Status)
		}
	}
	return s
}

// stored builds an observed entitlement item from attribute/value pairs:
// a value that parses as a number is stored as N, anything else as S.
func stored(pairs ...string) usage.Entitlement {
	it := usage.Item{Exists: true, Attrs: map[string]usage.Value{}}
	for i := 0; i < len(pairs); i += 2 {
		if d, err := usage.ParseDecimal(pairs[i+1]); err == nil {
			it.Attrs[pairs[i]] = usage.NumberValue(d)
		} else {
			it.Attrs[pairs[i]] = usage.StringValue(pairs[i+1])
		}
	}
	return usage.ParseEntitlement(it)
}

func monthly(limit, used, periodStart string) usage.Entitlement {
	pairs := []string{usage.AttrUsed, used, usage.AttrResetPeriod, "MONTHLY", usage.AttrPeriodStart, periodStart}
	if limit != "" {
		pairs = append(pairs, usage.AttrLimit, limit)
	}
	return stored(pairs...)
}

// usedAfterIs reports whether used, as the plan's writes leave the
// observed item, is want: "absent", a number, or a string's contents.
func usedAfterIs(e usage.Entitlement, p usage.Plan, want string) (usage.Value, bool) {
	v := p.After(e.Observed).Get(usage.AttrUsed)
	switch d, err := usage.ParseDecimal(want); {
	case want == "absent":
		return v, !v.Present()
	case err == nil:
		return v, v.Kind == usage.KindNumber && v.Num.Cmp(d) == 0
	default:
		return v, v.Kind == usage.KindString && v.Str == want
	}
}

// entitlementWrite is the plan's write of the entitlement item.
func entitlementWrite(p usage.Plan) (usage.Write, bool) {
	for _, w := range p.Writes {
		if w.Target == usage.EntitlementItem {
			return w, true
		}
	}
	return usage.Write{}, false
}

// pinsUsed: a precondition that holds only for exactly the observed used.
func pinsUsed(w usage.Write) bool {
	for _, c := range w.Conds {
		if c.Attr == usage.AttrUsed && (c.Op == usage.OpEquals || c.Op == usage.OpAbsent || c.Op == usage.OpKind && !c.OrAbsent) {
			return true
		}
	}
	return false
}

func resets(w usage.Write) bool {
	for _, a := range w.Set {
		if a.Attr == usage.AttrPeriodStart {
			return true
		}
	}
	return false
}

func TestPlanUsage(t *testing.T) {
	missing := usage.ParseEntitlement(usage.Item{})
	tests := []struct {
		name    string
		ent     usage.Entitlement
		records []usage.Record
		want    string
		used    string // used after the plan's writes: every row, rejected rows unchanged
		reset   bool
		pinned  bool // the decision holds only for exactly the observed used
	}{
		{"no item", missing, []usage.Record{record("a", "1")}, "ENTITLEMENT_NOT_FOUND", "absent", false, false},
		{"malformed item", stored(usage.AttrLimit, "text"), []usage.Record{record("a", "1")}, "INVALID_ENTITLEMENT", "absent", false, true},
		{"used stored as a string", stored(usage.AttrUsed, "six"), []usage.Record{record("a", "1")}, "INVALID_ENTITLEMENT", "six", false, true},
		{"unlimited counts usage", stored(usage.AttrUsed, "5"), []usage.Record{record("a", "2.5")}, "APPLIED", "7.5", false, false},
		{"exactly at the limit fits", monthly("10", "9", "2026-11-01T00:00:00Z"), []usage.Record{record("a", "1")}, "APPLIED", "10", false, false},
		{"one over the limit is rejected", monthly("10", "10", "2026-11-01T00:00:00Z"), []usage.Record{record("a", "1")}, "LIMIT_EXCEEDED", "10", false, true},
		{"a smaller later event still fits", monthly("10", "7", "2026-11-01T00:00:00Z"), []usage.Record{record("a", "5"), record("b", "3")}, "LIMIT_EXCEEDED APPLIED", "10", false, true},
		{"prefix of equal amounts", monthly("3", "0", "2026-11-01T00:00:00Z"), []usage.Record{record("a", "1"), record("b", "1"), record("c", "1"), record("d", "1")}, "APPLIED APPLIED APPLIED LIMIT_EXCEEDED", "3", false, true},
		{"new month resets before consuming", monthly("10", "10", "2026-10-01T00:00:00Z"), []usage.Record{record("a", "4")}, "APPLIED", "4", true, false},
		{"first use starts a period", stored(usage.AttrLimit, "10", usage.AttrResetPeriod, "DAILY"), []usage.Record{record("a", "1")}, "APPLIED", "1", true, false},
		{"reset then over the limit", monthly("5", "5", "2026-10-01T00:00:00Z"), []usage.Record{record("a", "6")}, "LIMIT_EXCEEDED", "5", false, true},
		{"duplicate key in the batch counts once", monthly("10", "0", "2026-11-01T00:00:00Z"), []usage.Record{keyed("a", "k1", "2"), keyed("b", "k1", "2")}, "APPLIED DUPLICATE", "2", false, false},
		{"same message ID redelivered in the batch", monthly("10", "0", "2026-11-01T00:00:00Z"), []usage.Record{record("a", "2"), record("a", "2")}, "APPLIED DUPLICATE", "2", false, false},
		{"reused key with another amount conflicts", monthly("10", "0", "2026-11-01T00:00:00Z"), []usage.Record{keyed("a", "k1", "2"), keyed("b", "k1", "3")}, "APPLIED IDEMPOTENCY_CONFLICT", "2", false, false},
		{"a rejected key may be applied later in the batch", monthly("3", "0", "2026-11-01T00:00:00Z"), []usage.Record{keyed("a", "k1", "5"), keyed("b", "k1", "1")}, "LIMIT_EXCEEDED APPLIED", "1", false, true},
		{"decimals are exact", monthly("0.3", "0.1", "2026-11-01T00:00:00Z"), []usage.Record{record("a", "0.1"), record("b", "0.1"), record("c", "0.1")}, "APPLIED APPLIED LIMIT_EXCEEDED", "0.3", false, true},
		{"precision overflow is rejected, not rounded, and pinned to used", stored(usage.AttrUsed, "1E+30"), []usage.Record{record("a", "1E-10")}, "INVALID_AMOUNT", "1E+30", false, true},
		{"precision overflow beside an applied event pins used", stored(usage.AttrUsed, "1E+30"), []usage.Record{record("a", "1E-10"), record("b", "1")}, "INVALID_AMOUNT APPLIED", "1000000000000000000000000000001", false, true},
		// Each running total fits in 38 digits, the delta does not: the
		// new value is written exactly, for exactly the observed used.
		{"a delta wider than 38 digits writes the total", stored(usage.AttrUsed, "1E-18"), []usage.Record{record("a", "9E-18"), record("b", "1E+20")}, "APPLIED APPLIED", "100000000000000000000.00000000000000001", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := usage.PlanUsage(usage.State{Entitlement: tt.ent}, tt.records, now)
			if got := statuses(p); got != tt.want {
				t.Errorf("outcomes %q, want %q", got, tt.want)
			}
			if got, ok := usedAfterIs(tt.ent, p, tt.used); !ok {
				t.Errorf("used after %s, want %s", got, tt.used)
			}
			w, _ := entitlementWrite(p)
			if got := resets(w); got != tt.reset {
				t.Errorf("reset %v, want %v", got, tt.reset)
			}
			if got := pinsUsed(w); got != tt.pinned {
				t.Errorf("pins used %v, want %v (conditions %+v)", got, tt.pinned, w.Conds)
			}
		})
	}
}

func TestPlanUsageWrites(t *testing.T) {
	ent := monthly("10", "4", "2026-11-01T00:00:00Z")
	p := usage.PlanUsage(usage.State{Entitlement: ent}, []usage.Record{record("a", "2"), record("b", "9"), keyed("c", "k", "1")}, now)
	if got := statuses(p); got != "APPLIED LIMIT_EXCEEDED APPLIED" {
		t.Fatalf("outcomes %q", got)
	}
	want := []usage.Target{usage.EntitlementItem, usage.LedgerItem("a"), usage.LedgerItem("k"), usage.LedgerItem("b")}
	actions := []usage.Action{usage.Update, usage.Put, usage.Put, usage.Check}
	if len(p.Writes) != len(want) {
		t.Fatalf("%d writes, want %d: %+v", len(p.Writes), len(want), p.Writes)
	}
	for i, w := range p.Writes {
		if w.Target != want[i] || w.Action != actions[i] {
			t.Errorf("write %d: %+v %v, want %+v %v", i, w.Target, w.Action, want[i], actions[i])
		}
	}
	if e := p.Writes[2].Entry; e == nil || e.KeySource != "idempotencyKey" || e.PeriodStart != "2026-11-01T00:00:00Z" || e.Amount.String() != "1" {
		t.Errorf("ledger entry %+v", e)
	}

	// A key known to be applied is a duplicate, takes precedence over the
	// limit, and is neither written nor confirmed.
	known := map[string]usage.LedgerEntry{"b": {DedupKey: "b", Amount: dec("9")}}
	p = usage.PlanUsage(usage.State{Entitlement: ent, Applied: known}, []usage.Record{record("b", "9")}, now)
	if got := statuses(p); got != "DUPLICATE" || len(p.Writes) != 0 {
		t.Errorf("known duplicate: %q with %d writes", got, len(p.Writes))
	}

	// Too long to name an item: rejected, nothing to write.
	p = usage.PlanUsage(usage.State{Entitlement: usage.ParseEntitlement(usage.Item{Unaddressable: true})}, []usage.Record{record("a", "1")}, now)
	if got := statuses(p); got != "ENTITLEMENT_NOT_FOUND" || len(p.Writes) != 0 {
		t.Errorf("unaddressable: %q with %d writes", got, len(p.Writes))
	}
}

// TestPlanUsageEqualsOneByOne is the coalescing guarantee: a group of
// consumes and refunds decided and written at once gives exactly the
// outcomes, usage and ledger of deciding and writing each record alone,
// in order. Both run through
// memstore, which evaluates the plans' preconditions and assignments as
// written.
func TestPlanUsageEqualsOneByOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	scope := usage.Scope{UserID: "u", EntitlementKey: "k"}
	decide := func(st usage.State, r []usage.Record) usage.Plan { return usage.PlanUsage(st, r, now) }
	refundsApplied := 0
	defer func() {
		if refundsApplied < 500 {
			t.Errorf("only %d refunds applied: the test exercises too little", refundsApplied)
		}
	}()
	for i := range 2000 {
		attrs := map[string]usage.Value{usage.AttrUsed: usage.NumberValue(usage.DecimalFromInt(rng.Int64N(6)))}
		if rng.IntN(4) > 0 {
			attrs[usage.AttrLimit] = usage.NumberValue(dec(fmt.Sprint(rng.IntN(12))))
		}
		if rng.IntN(2) == 0 {
			attrs[usage.AttrResetPeriod] = usage.StringValue("DAILY")
			attrs[usage.AttrPeriodStart] = usage.StringValue([]string{"2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z"}[rng.IntN(2)])
		}
		var recs []usage.Record
		for j := range 1 + rng.IntN(20) {
			r := keyed(fmt.Sprint("m", j), fmt.Sprint("k", rng.IntN(8)), fmt.Sprint(1+rng.IntN(4)))
			switch rng.IntN(6) {
			case 0, 1: // a refund of some key, perhaps applied, perhaps a refund itself
				r.Event.Operation, r.Event.RefundOf = usage.OperationRefund, fmt.Sprint("k", rng.IntN(8))
				if rng.IntN(4) > 0 {
					r.Event.IdempotencyKey = fmt.Sprint("r", rng.IntN(8))
				}
				if rng.IntN(2) == 0 {
					r.Event.Amount = usage.Decimal{} // all that remains
				}
			case 2: // a hold
				r.Event.Operation, r.Event.IdempotencyKey = usage.OperationReserve, fmt.Sprint("h", rng.IntN(4))
			case 3: // settling some hold, perhaps none
				ops := []usage.Operation{usage.OperationCommit, usage.OperationRelease}
				r.Event = usage.Event{UserID: "u", EntitlementKey: "k", Operation: ops[rng.IntN(2)], HoldID: fmt.Sprint("h", rng.IntN(5))}
				if rng.IntN(2) == 0 {
					r.Event.Amount, r.Event.AmountGiven = usage.DecimalFromInt(rng.Int64N(4)), true
				}
			}
			recs = append(recs, r)
		}
		group, single := memstore.New(), memstore.New()
		group.PutEntitlement(scope, attrs)
		single.PutEntitlement(scope, attrs)
		got := group.Update(context.Background(), scope, recs, decide)
		for j, r := range recs {
			if r.Event.Is(usage.OperationRefund) && got[j].Status == usage.Applied {
				refundsApplied++
			}
			want := single.Update(context.Background(), scope, []usage.Record{r}, decide)[0]
			if got[j].Status != want.Status || got[j].Reason() != want.Reason() {
				t.Fatalf("case %d record %d: group says %s %s, one by one says %s %s", i, j, got[j].Status, got[j].Reason(), want.Status, want.Reason())
			}
		}
		g, s := group.Entitlement(scope).Get(usage.AttrUsed), single.Entitlement(scope).Get(usage.AttrUsed)
		if g.Num.Cmp(s.Num) != 0 || ledgerText(group.Ledger(scope)) != ledgerText(single.Ledger(scope)) {
			t.Fatalf("case %d: group ends at used %s with %s, one by one at %s with %s",
				i, g, ledgerText(group.Ledger(scope)), s, ledgerText(single.Ledger(scope)))
		}
	}
}

// ledgerText lists entries as key:operation:amount:refunded, sorted.
func ledgerText(es []usage.LedgerEntry) string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = fmt.Sprintf("%s:%s:%s:%s:%s", e.DedupKey, e.Operation, e.Amount, e.Refunded, e.HoldState)
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

// TestCondHolds: the preconditions evaluated in Go agree with DynamoDB's
// reading of the same expressions (the translation test pins those).
func TestCondHolds(t *testing.T) {
	n := func(s string) usage.Value { return usage.NumberValue(dec(s)) }
	absent := usage.Value{}
	tests := []struct {
		cond   usage.Cond
		exists bool
		v      usage.Value
		want   bool
	}{
		{usage.Cond{Op: usage.OpExists}, true, absent, true},
		{usage.Cond{Op: usage.OpExists}, false, absent, false},
		{usage.Cond{Op: usage.OpNotExists}, false, absent, true},
		{usage.Pin("used", absent), true, absent, true},
		{usage.Pin("used", absent), true, n("0"), false},
		{usage.Pin("used", n("5")), true, n("5.0"), true},
		{usage.Pin("used", n("5")), true, usage.StringValue("5"), false},
		{usage.Pin("periodStart", usage.StringValue("x")), true, usage.StringValue("x"), true},
		{usage.Pin("limit", usage.Value{Kind: usage.KindNull}), true, usage.Value{Kind: usage.KindNull}, true},
		{usage.Pin("limit", usage.Value{Kind: usage.KindOther, Raw: "M"}), true, usage.Value{Kind: usage.KindOther, Raw: "L"}, false},
		{usage.Cond{Op: usage.OpKind, Attr: "used", Kind: usage.KindNumber, OrAbsent: true}, true, absent, true},
		{usage.Cond{Op: usage.OpKind, Attr: "used", Kind: usage.KindNumber, OrAbsent: true}, true, usage.StringValue("6"), false},
		{usage.Cond{Op: usage.OpLE, Attr: "used", Value: n("7")}, true, n("7"), true},
		{usage.Cond{Op: usage.OpLE, Attr: "used", Value: n("7")}, true, absent, false},
		{usage.Cond{Op: usage.OpLE, Attr: "used", Value: n("7"), OrAbsent: true}, true, absent, true},
		{usage.Cond{Op: usage.OpLT, Attr: "used", Value: n("7")}, true, n("7"), false},
		{usage.Cond{Op: usage.OpGE, Attr: "used", Value: n("7")}, true, n("7"), true},
		{usage.Cond{Op: usage.OpGE, Attr: "used", Value: n("7")}, true, usage.StringValue("9"), false},
	}
	for i, tt := range tests {
		if got := tt.cond.Holds(tt.exists, tt.v); got != tt.want {
			t.Errorf("%d: %+v on %v (exists %v) = %v, want %v", i, tt.cond, tt.v, tt.exists, got, tt.want)
		}
	}
}
