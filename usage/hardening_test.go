package usage_test

import (
	"slices"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

// The hardening review's rules, on the decision alone: what each plan
// rests on, with no store (dynamodb/hardening_test.go runs the same
// scenarios through DynamoDB Local).

func hold(key, amount, state string, expires time.Time) usage.LedgerEntry {
	return usage.LedgerEntry{DedupKey: key, Operation: usage.OperationReserve, Amount: dec(amount), HoldState: state, HoldExpiresAt: expires}
}

func settle(op usage.Operation, holdID, amount string) usage.Record {
	ev := usage.Event{UserID: "u", EntitlementKey: "k", Operation: op, HoldID: holdID}
	if amount != "" {
		ev.Amount, ev.AmountGiven = dec(amount), true
	}
	return usage.Record{Event: ev, MessageID: string(op) + "-" + holdID}
}

func refund(key, target, amount string) usage.Record {
	ev := usage.NewEvent("u", "k")
	ev.Operation, ev.RefundOf, ev.IdempotencyKey, ev.Amount = usage.OperationRefund, target, key, usage.Decimal{}
	if amount != "" {
		ev.Amount = dec(amount)
	}
	return usage.Record{Event: ev, MessageID: "m-" + key}
}

func state(e usage.Entitlement, entries ...usage.LedgerEntry) usage.State {
	st := usage.State{Entitlement: e, Applied: map[string]usage.LedgerEntry{}, Absent: map[string]bool{}}
	for _, x := range entries {
		st.Applied[x.DedupKey] = x
	}
	return st
}

// condOn finds the write of target and its condition on attr.
func condOn(p usage.Plan, target usage.Target, attr string) (usage.Write, usage.Cond, bool) {
	for _, w := range p.Writes {
		if w.Target != target {
			continue
		}
		for _, c := range w.Conds {
			if c.Attr == attr {
				return w, c, true
			}
		}
		return w, usage.Cond{}, false
	}
	return usage.Write{}, usage.Cond{}, false
}

func TestEveryRejectionIsConfirmed(t *testing.T) {
	for _, e := range []usage.Entitlement{{}, stored("used", "x")} {
		st := state(e)
		st.Absent["h"] = true
		p := usage.Rules{Now: now}.Plan(st, []usage.Record{settle(usage.OperationRelease, "h", "")})
		if len(p.Writes) == 0 || p.Writes[0].Target != usage.EntitlementItem || p.Writes[0].Action != usage.Check {
			t.Errorf("%s: writes %+v, want a check of the entitlement it rests on", statuses(p), p.Writes)
		}
	}
}

func TestThresholdsArePinnedWhenNotifying(t *testing.T) {
	e := stored("limit", "10")
	for _, notify := range []*usage.Notify{nil, {}} {
		p := usage.Rules{Now: now, Notify: notify}.Plan(state(e), []usage.Record{record("m1", "1")})
		_, c, ok := condOn(p, usage.EntitlementItem, usage.AttrNotifyThresholds)
		if ok != (notify != nil) || ok && c.Op != usage.OpAbsent {
			t.Errorf("notify %v: pinned %v %+v", notify != nil, ok, c)
		}
	}
}

func TestGiveBacksBeyond38DigitsAreInvalidAmount(t *testing.T) {
	e := stored("used", "101")
	consume := usage.LedgerEntry{DedupKey: "c1", Operation: usage.OperationConsume, Amount: dec("1")}
	p := usage.Rules{Now: now}.Plan(state(e, consume), []usage.Record{refund("r1", "c1", "1E-36"), record("m2", "1"), refund("r2", "c1", "")})
	if got := statuses(p); got != "INVALID_AMOUNT APPLIED APPLIED" {
		t.Errorf("got %s", got)
	}
	held := hold("h1", "5", usage.HoldActive, now.Add(time.Hour))
	p = usage.Rules{Now: now}.Plan(state(stored("used", "105"), held), []usage.Record{settle(usage.OperationCommit, "h1", "1E-36")})
	if got := statuses(p); got != "INVALID_AMOUNT" {
		t.Errorf("commit: got %s", got)
	}
}

func TestUnwritableThresholdBoundsPinUsedExactly(t *testing.T) {
	e := stored("limit", "7", "used", "1")
	notify := &usage.Notify{Thresholds: []usage.Decimal{dec("33.333333333333333333333333333333333333")}}
	p := usage.Rules{Now: now, Notify: notify}.Plan(state(e), []usage.Record{record("m1", "1")})
	w, c, _ := condOn(p, usage.EntitlementItem, usage.AttrUsed)
	if statuses(p) != "APPLIED" || c.Op != usage.OpEquals || c.Value.Num.Cmp(dec("1")) != 0 {
		t.Fatalf("%s, used condition %+v", statuses(p), c)
	}
	for _, c := range w.Conds {
		if c.Value.Kind == usage.KindNumber && !c.Value.Num.FitsDynamoDB() {
			t.Errorf("a condition value DynamoDB cannot hold: %+v", c)
		}
	}
}

func TestACommitRejectionPinsTheHoldState(t *testing.T) {
	held := hold("h1", "2", usage.HoldActive, now.Add(time.Hour))
	p := usage.Rules{Now: now}.Plan(state(stored("limit", "10", "used", "2"), held), []usage.Record{settle(usage.OperationCommit, "h1", "5")})
	_, c, ok := condOn(p, usage.LedgerItem("h1"), usage.LedgerAttrHoldState)
	if statuses(p) != "COMMIT_EXCEEDS_HOLD" || !ok || c.Value.Str != usage.HoldActive {
		t.Errorf("%s, hold condition %v %+v", statuses(p), ok, c)
	}
}

func TestTheSweepSettlesOrSetsAside(t *testing.T) {
	due := hold("h1", "2", usage.HoldActive, now.Add(-time.Minute))
	p := usage.Rules{Now: now}.Plan(state(usage.Entitlement{}, due), []usage.Record{settle(usage.OperationExpire, "h1", "")})
	if statuses(p) != "APPLIED" || p.Writes[0].Conds[0].Op != usage.OpNotExists {
		t.Errorf("no entitlement: %s %+v, want expired, resting on the item's absence", statuses(p), p.Writes)
	}
	p = usage.Rules{Now: now}.Plan(state(stored("resetPeriod", "HOURLY"), due), []usage.Record{settle(usage.OperationExpire, "h1", "")})
	w, _, _ := condOn(p, usage.LedgerItem("h1"), usage.LedgerAttrHoldState)
	later := usage.StringValue(usage.FormatIndexTime(now.Add(usage.HoldDeferral)))
	if statuses(p) != "INVALID_ENTITLEMENT" || w.Action != usage.Update ||
		!slices.ContainsFunc(w.Set, func(a usage.Assign) bool { return a.Attr == usage.LedgerAttrPendingAt && a.Value.Str == later.Str }) {
		t.Errorf("malformed entitlement: %s %+v, want the hold set aside", statuses(p), w)
	}
}

func TestUnreadableEntriesAreRejectedAndPinned(t *testing.T) {
	bad := usage.LedgerEntry{DedupKey: "c1", Operation: usage.OperationConsume, Amount: dec("5"),
		Unreadable: &usage.Unreadable{Attr: usage.LedgerAttrRefunded, Value: usage.StringValue("x"), Why: "must be a number"}}
	p := usage.Rules{Now: now}.Plan(state(stored("used", "5"), bad), []usage.Record{refund("r1", "c1", "1"), record("m2", "1")})
	_, c, ok := condOn(p, usage.LedgerItem("c1"), usage.LedgerAttrRefunded)
	if statuses(p) != "INVALID_LEDGER_ENTRY APPLIED" || !ok || c.Op != usage.OpEquals || c.Value.Str != "x" {
		t.Errorf("%s, condition %v %+v", statuses(p), ok, c)
	}
}

func TestANotificationCarriesUsedRightAfterItsEvent(t *testing.T) {
	notify := &usage.Notify{Thresholds: []usage.Decimal{dec("80")}}
	consume := keyed("m1", "c1", "9")
	p := usage.Rules{Now: now, Notify: notify}.Plan(state(stored("limit", "10")), []usage.Record{consume, refund("r1", "c1", "9")})
	for _, w := range p.Writes {
		if w.Notice != nil && (w.Notice.Used.Cmp(dec("9")) != 0 || w.Notice.EventID != "c1") {
			t.Errorf("notification %+v, want used 9 by c1", *w.Notice)
		}
	}
}

func TestIndexTimesSortAsTimes(t *testing.T) {
	a := usage.FormatIndexTime(time.Date(2026, 1, 1, 0, 0, 0, 120_000_000, time.UTC))
	b := usage.FormatIndexTime(time.Date(2026, 1, 1, 0, 0, 0, 123_000_000, time.UTC))
	c := usage.FormatIndexTime(time.Date(2026, 1, 1, 0, 0, 1, 0, time.FixedZone("x", 3600)))
	if !(a < b) || len(a) != len(b) || c != "2025-12-31T23:00:01.000000000Z" {
		t.Errorf("%s %s %s", a, b, c)
	}
}

// All that remains of a consume after a tiny refund (107.5 less 1E-36)
// has 39 digits: recording it would be refused by DynamoDB on every
// delivery, so the refund is rejected INVALID_AMOUNT at once (as is any
// part of a give-back that would need more than 38 digits). (Found by
// the adversarial suite, seed 9193: RETRY forever.)
func TestARefundThatWouldRecordMoreThan38DigitsIsInvalidAmount(t *testing.T) {
	consume := usage.LedgerEntry{DedupKey: "c", Operation: usage.OperationConsume, Amount: dec("107.5"), Refunded: dec("1E-36")}
	limit := dec("1000")
	ent := usage.Entitlement{Exists: true, Limit: &limit, Used: dec("107.5")}
	ent.Observed = usage.Item{Exists: true, Attrs: map[string]usage.Value{usage.AttrLimit: usage.NumberValue(dec("1000")), usage.AttrUsed: usage.NumberValue(dec("107.5"))}}
	for _, tt := range []struct{ name, amount string }{{"all that remains", ""}} {
		p := usage.Rules{Now: time.Now()}.Plan(state(ent, consume), []usage.Record{refund("r", "c", tt.amount)})
		if p.Outcomes[0].Reason() != usage.ReasonInvalidAmount {
			t.Errorf("%s: got %s %v, want INVALID_AMOUNT", tt.name, p.Outcomes[0].Status, p.Outcomes[0].Err)
		}
		for _, w := range p.Writes {
			if w.Action != usage.Check {
				t.Errorf("%s: the rejection writes %+v", tt.name, w)
			}
		}
	}
}
