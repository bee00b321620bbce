package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

// Grant and Void are grant records of u/k.
func Grant(id, amount string, expiresAt *time.Time, priority int) usage.Record {
	ev := usage.Event{UserID: scope.UserID, EntitlementKey: scope.EntitlementKey, Operation: usage.OperationGrant,
		GrantID: id, Amount: usage.MustDecimal(amount), AmountGiven: true, ExpiresAt: expiresAt, Priority: &priority}
	return usage.Record{Event: ev, MessageID: "grant-" + id}
}

func Void(id string) usage.Record {
	return usage.Record{Event: usage.Event{UserID: scope.UserID, EntitlementKey: scope.EntitlementKey, Operation: usage.OperationVoid, GrantID: id},
		MessageID: "void-" + id}
}

// grantsOf is the grants as stored, "id=remaining" in draw order.
func grantsOf(it usage.Item) string {
	s := ""
	for _, g := range usage.ParseEntitlement(it).Grants {
		if s != "" {
			s += " "
		}
		s += g.ID + "=" + g.Remaining.String()
	}
	return s
}

// testGrants: grants, draws across buckets, give-backs and voids, as
// stored: the grants map written and pinned exactly, the draws recorded.
func testGrants(t *testing.T, newBackend func(t *testing.T) Backend) {
	b := newBackend(t)
	b.Put(t, scope, map[string]usage.Value{usage.AttrLimit: Num("10"), usage.AttrUsed: Num("8"), usage.AttrOverageLimit: Num("2"),
		usage.AttrResetPeriod: Str("MONTHLY"), usage.AttrPeriodStart: Str("2026-11-01T00:00:00Z")})
	s := b.Store(t)
	year := Now.AddDate(1, 0, 0)
	steps := []struct {
		records []usage.Record
		want    string
		grants  string
		used    string
		overage string
	}{
		{[]usage.Record{Grant("late", "5", nil, 100), Grant("early", "3", &year, 100)}, "APPLIED APPLIED", "early=3 late=5", "8", ""},
		{[]usage.Record{Rec("6", "m1", "c1")}, "APPLIED", "early=0 late=4", "10", ""},
		{[]usage.Record{Rec("6", "m2", "c2"), Rec("1", "m3", "c3")}, "APPLIED LIMIT_EXCEEDED", "early=0 late=0", "10", "2"},
		{[]usage.Record{Refund("1", "c2", "r1"), Void("late"), Refund("", "c2", "r2")}, "APPLIED APPLIED APPLIED", "early=0", "10", "0"},
		{[]usage.Record{Refund("", "c1", "r3"), Void("late"), Void("none")}, "APPLIED DUPLICATE GRANT_NOT_FOUND", "early=3", "8", "0"},
	}
	for i, st := range steps {
		if got := Text(apply(s, Now, st.records...)); got != st.want {
			t.Fatalf("step %d: got %q, want %q", i, got, st.want)
		}
		it := b.Get(t, scope)
		if got := grantsOf(it); got != st.grants {
			t.Fatalf("step %d: grants %q, want %q", i, got, st.grants)
		}
		if !valueIs(it.Get(usage.AttrUsed), st.used) || !valueIs(it.Get(usage.AttrOverageUsed), st.overage) {
			t.Fatalf("step %d: used %v overage %v, want %s and %q", i, it.Get(usage.AttrUsed), it.Get(usage.AttrOverageUsed), st.used, st.overage)
		}
	}
	wantDraws := map[string]string{"c1": "allowance:2 early:3 late:1", "c2": "late:4 overage:2", "r2": "overage:1 late(lapsed):4", "r3": "late(lapsed):1 early:3 allowance:2"}
	for key, want := range wantDraws {
		if got := drawText(entry(t, b, key).Draws); got != want {
			t.Errorf("%s draws %q, want %q", key, got, want)
		}
	}
	if e := entry(t, b, "late"); e.GrantState != usage.GrantVoided || e.Voided == nil || !e.Voided.IsZero() {
		t.Errorf("the voided grant's entry %+v", e)
	}
}

func drawText(ds []usage.Draw) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.String()
	}
	return strings.Join(s, " ")
}

// testRacingGrantDraws: consumers racing on one entitlement with grants
// and overage never draw more than the allowance, the grants and the
// overage together, and every bucket ends exactly at what the applied
// events' recorded draws took from it.
func testRacingGrantDraws(t *testing.T, newBackend func(t *testing.T) Backend) {
	b := newBackend(t)
	b.Put(t, scope, map[string]usage.Value{usage.AttrLimit: Num("40"), usage.AttrUsed: Num("0"), usage.AttrOverageLimit: Num("15"),
		usage.AttrResetPeriod: Str("DAILY"), usage.AttrPeriodStart: Str("2026-11-26T00:00:00Z")})
	year := Now.AddDate(1, 0, 0)
	if got := Text(apply(b.Store(t), Now, Grant("a", "20", &year, 1), Grant("b", "25", nil, 2))); got != "APPLIED APPLIED" {
		t.Fatalf("grants: %s", got)
	}
	const consumers, events = 6, 120
	var mu sync.Mutex
	drawn := map[string]usage.Decimal{}
	var wg sync.WaitGroup
	for c := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := b.Store(t)
			for i := c; i < events; i += consumers {
				o := apply(s, Now, Rec(fmt.Sprint(1+i%2), fmt.Sprint("m", i), ""))[0]
				mu.Lock()
				switch {
				case o.Status == usage.Applied:
					for _, d := range o.Entry.Draws {
						drawn[d.GrantID+string(d.Bucket)] = drawn[d.GrantID+string(d.Bucket)].Add(d.Amount)
					}
					if len(o.Entry.Draws) == 0 {
						drawn["allowance"] = drawn["allowance"].Add(o.Entry.Amount)
					}
				case o.Reason() != usage.ReasonLimitExceeded:
					t.Errorf("unexpected outcome %s %v", o.Status, o.Err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	it := b.Get(t, scope)
	total := usage.Decimal{}
	for _, v := range drawn {
		total = total.Add(v)
	}
	if total.Cmp(usage.MustDecimal("100")) != 0 {
		t.Errorf("drawn %s in all (%v), want exactly 100: 40 allowance, 45 in grants, 15 overage (the events ask for 180)", total, drawn)
	}
	if got := grantsOf(it); got != "a=0 b=0" || drawn["agrant"].String() != "20" || drawn["bgrant"].String() != "25" {
		t.Errorf("grants %q, drawn from them %v", got, drawn)
	}
	if !valueIs(it.Get(usage.AttrUsed), drawn["allowance"].String()) || !valueIs(it.Get(usage.AttrOverageUsed), drawn["overage"].String()) {
		t.Errorf("used %v overage %v, drawn %v", it.Get(usage.AttrUsed), it.Get(usage.AttrOverageUsed), drawn)
	}
}
