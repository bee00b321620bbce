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

var scopeUK = usage.Scope{UserID: "u", EntitlementKey: "k"}

func grantRec(id, amount string, expires *time.Time, priority *int) usage.Record {
	ev := usage.Event{UserID: "u", EntitlementKey: "k", Operation: usage.OperationGrant, GrantID: id,
		Amount: dec(amount), AmountGiven: true, ExpiresAt: expires, Priority: priority}
	return usage.Record{Event: ev, MessageID: "m-" + id}
}

func voidRec(id string) usage.Record {
	return usage.Record{Event: usage.Event{UserID: "u", EntitlementKey: "k", Operation: usage.OperationVoid, GrantID: id}, MessageID: "void-" + id}
}

func reserveRec(key, amount string) usage.Record {
	r := keyed("m-"+key, key, amount)
	r.Event.Operation = usage.OperationReserve
	return r
}

func at(t time.Time) *time.Time { return &t }
func prio(p int) *int           { return &p }

// grantsText is the grants map as "id=remaining/amount" in draw order
// (as stored; expired ones included).
func grantsText(it usage.Item) string {
	var s []string
	for _, g := range usage.ParseEntitlement(it).Grants {
		s = append(s, fmt.Sprintf("%s=%s/%s", g.ID, g.Remaining, g.Amount))
	}
	return strings.Join(s, " ")
}

func drawsText(ds []usage.Draw) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.String())
	}
	return strings.Join(s, ",")
}

type grantStep struct {
	records []usage.Record
	at      time.Time
	want    string // outcomes
	used    string
	grants  string
	overage string // overageUsed ("" for absent)
}

func runGrantSteps(t *testing.T, attrs map[string]usage.Value, notify *usage.Notify, steps []grantStep) *memstore.Store {
	t.Helper()
	m := memstore.New()
	m.PutEntitlement(scopeUK, attrs)
	for i, st := range steps {
		when := st.at
		if when.IsZero() {
			when = now
		}
		rules := usage.Rules{Now: when, Notify: notify}
		got := m.Update(context.Background(), scopeUK, st.records, rules.Plan)
		if s := outcomesText(got); s != st.want {
			t.Fatalf("step %d: outcomes %q, want %q (%v)", i, s, st.want, got)
		}
		it := m.Entitlement(scopeUK)
		if u := it.Get(usage.AttrUsed); st.used != "" && (u.Kind != usage.KindNumber || u.Num.Cmp(dec(st.used)) != 0) {
			t.Fatalf("step %d: used %v, want %s", i, u, st.used)
		}
		if g := grantsText(it); g != st.grants {
			t.Fatalf("step %d: grants %q, want %q", i, g, st.grants)
		}
		o := it.Get(usage.AttrOverageUsed)
		if (st.overage == "") != !o.Present() || o.Present() && o.Num.Cmp(dec(st.overage)) != 0 {
			t.Fatalf("step %d: overageUsed %v, want %q", i, o, st.overage)
		}
	}
	return m
}

func outcomesText(os []usage.Outcome) string {
	s := make([]string, len(os))
	for i, o := range os {
		s[i] = string(o.Status)
		if o.Status == usage.Rejected {
			s[i] = string(o.Reason())
		}
	}
	return strings.Join(s, " ")
}

func monthlyAttrs(limit, used string, extra ...any) map[string]usage.Value {
	attrs := map[string]usage.Value{
		usage.AttrLimit: usage.NumberValue(dec(limit)), usage.AttrUsed: usage.NumberValue(dec(used)),
		usage.AttrResetPeriod: usage.StringValue("MONTHLY"), usage.AttrPeriodStart: usage.StringValue("2026-11-01T00:00:00Z"),
	}
	for i := 0; i < len(extra); i += 2 {
		attrs[extra[i].(string)] = usage.NumberValue(dec(extra[i+1].(string)))
	}
	return attrs
}

func TestAConsumeDrawsTheAllowanceThenGrantsInOrderThenOverage(t *testing.T) {
	year := now.AddDate(1, 0, 0)
	soon := now.Add(48 * time.Hour)
	runGrantSteps(t, monthlyAttrs("10", "8", usage.AttrOverageLimit, "3"), nil, []grantStep{
		// later expiry, default priority; earlier expiry; a low priority
		// number comes first whatever its expiry; no expiry comes last.
		{records: []usage.Record{grantRec("year", "5", &year, nil), grantRec("soon", "2", &soon, nil),
			grantRec("first", "1", nil, prio(1)), grantRec("forever", "4", nil, nil)},
			want: "APPLIED APPLIED APPLIED APPLIED", used: "8", grants: "first=1/1 soon=2/2 year=5/5 forever=4/4"},
		// 2 from the allowance, 1 first, 2 soon, 1 of year
		{records: []usage.Record{keyed("m1", "c1", "6")}, want: "APPLIED", used: "10", grants: "first=0/1 soon=0/2 year=4/5 forever=4/4"},
		// the rest of the grants (8), then 2 of the overage's 3
		{records: []usage.Record{keyed("m2", "c2", "10")}, want: "APPLIED", used: "10", grants: "first=0/1 soon=0/2 year=0/5 forever=0/4", overage: "2"},
		// 2 more do not fit the 1 left; 1 does
		{records: []usage.Record{keyed("m3", "c3", "2"), keyed("m4", "c4", "1")}, want: "LIMIT_EXCEEDED APPLIED", used: "10",
			grants: "first=0/1 soon=0/2 year=0/5 forever=0/4", overage: "3"},
	})
}

func TestAGrantCountsUntilItsExpiryExactly(t *testing.T) {
	exp := now.Add(time.Hour)
	runGrantSteps(t, monthlyAttrs("10", "10"), nil, []grantStep{
		{records: []usage.Record{grantRec("g", "5", &exp, nil)}, want: "APPLIED", grants: "g=5/5"},
		{records: []usage.Record{keyed("m1", "c1", "1")}, at: exp.Add(-time.Nanosecond), want: "APPLIED", grants: "g=4/5"},
		// at its expiresAt it no longer counts; the write prunes it
		{records: []usage.Record{keyed("m2", "c2", "1")}, at: exp, want: "LIMIT_EXCEEDED", grants: "g=4/5"},
		{records: []usage.Record{grantRec("h", "1", nil, nil)}, at: exp, want: "APPLIED", grants: "h=1/1"},
	})
}

func TestRefundsAndSettlementsGiveBackToTheBucketsDrawn(t *testing.T) {
	m := runGrantSteps(t, monthlyAttrs("10", "7", usage.AttrOverageLimit, "5"), nil, []grantStep{
		{records: []usage.Record{grantRec("a", "2", nil, prio(1)), grantRec("b", "2", nil, prio(2))}, want: "APPLIED APPLIED", grants: "a=2/2 b=2/2"},
		// 3 allowance, 2 a, 2 b, 1 overage
		{records: []usage.Record{keyed("m1", "c1", "8")}, want: "APPLIED", used: "10", grants: "a=0/2 b=0/2", overage: "1"},
		// the last drawn first: overage 1, then b 1
		{records: []usage.Record{refund("r1", "c1", "2")}, want: "APPLIED", used: "10", grants: "a=0/2 b=1/2", overage: "0"},
		// b voided meanwhile: its part lapses, a and the allowance take theirs back
		{records: []usage.Record{voidRec("b"), refund("r2", "c1", "")}, want: "APPLIED APPLIED", used: "7", grants: "a=2/2", overage: "0"},
		// a hold drawing 3 allowance and 1 of a, committed at 1: 3 back, a first
		{records: []usage.Record{reserveRec("h", "4"), settle(usage.OperationCommit, "h", "1")}, want: "APPLIED APPLIED", used: "8", grants: "a=2/2", overage: "0"},
	})
	for _, e := range m.Ledger(scopeUK) {
		want := map[string]string{"c1": "allowance:3,a:2,b:2,overage:1", "r1": "overage:1,b:1", "r2": "b(lapsed):1,a:2,allowance:3", "h": "allowance:3,a:1"}[e.DedupKey]
		if got := drawsText(e.Draws); want != "" && got != want {
			t.Errorf("%s draws %q, want %q", e.DedupKey, got, want)
		}
	}
}

func TestVoids(t *testing.T) {
	exp := now.Add(time.Hour)
	m := runGrantSteps(t, monthlyAttrs("10", "10"), nil, []grantStep{
		{records: []usage.Record{grantRec("g", "5", nil, nil), grantRec("e", "1", &exp, nil)}, want: "APPLIED APPLIED", grants: "e=1/1 g=5/5"},
		{records: []usage.Record{keyed("m1", "c1", "3")}, want: "APPLIED", grants: "e=0/1 g=3/5"},
		{records: []usage.Record{voidRec("g"), voidRec("g"), voidRec("nope"), keyed("m2", "c2", "1")},
			want: "APPLIED DUPLICATE GRANT_NOT_FOUND LIMIT_EXCEEDED", grants: "e=0/1"},
		{records: []usage.Record{voidRec("g"), voidRec("e"), voidRec("c1")}, at: exp, want: "DUPLICATE GRANT_NOT_ACTIVE GRANT_NOT_FOUND", grants: "e=0/1"},
	})
	for _, e := range m.Ledger(scopeUK) {
		if e.DedupKey == "g" && (e.GrantState != usage.GrantVoided || e.Voided == nil || e.Voided.String() != "3") {
			t.Errorf("the voided grant's entry: %+v", e)
		}
	}
}

func TestBadGrantsChangeNothing(t *testing.T) {
	var many []usage.Record
	var names []string
	for i := range usage.MaxActiveGrants {
		many = append(many, grantRec(fmt.Sprintf("g%02d", i), "1", nil, nil))
		names = append(names, fmt.Sprintf("g%02d=1/1", i))
	}
	past := now.Add(-time.Second)
	outcomes := strings.TrimSpace(strings.Repeat("APPLIED ", usage.MaxActiveGrants))
	runGrantSteps(t, monthlyAttrs("10", "0"), nil, []grantStep{
		{records: []usage.Record{grantRec("p", "1", &past, nil), grantRec("n", "1", at(now), nil), grantRec("rollover:x", "1", nil, nil)},
			want: "INVALID_FIELD INVALID_FIELD INVALID_FIELD", grants: ""},
		{records: many, want: outcomes, grants: strings.Join(names, " ")},
		{records: []usage.Record{grantRec("one-too-many", "1", nil, nil), grantRec("g00", "2", nil, nil), grantRec("g01", "1", nil, nil),
			grantRec("g02", "1", nil, prio(3)), grantRec("g03", "1", &past, nil), grantRec("g04", "1", nil, prio(usage.DefaultGrantPriority))},
			want: "TOO_MANY_GRANTS IDEMPOTENCY_CONFLICT DUPLICATE IDEMPOTENCY_CONFLICT IDEMPOTENCY_CONFLICT DUPLICATE", grants: strings.Join(names, " ")},
	})
}

func TestRolloverCarriesUnusedAllowanceOncePerPeriod(t *testing.T) {
	dec1 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	jan1 := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	runGrantSteps(t, monthlyAttrs("10", "6", usage.AttrRolloverMax, "3"), nil, []grantStep{
		{records: []usage.Record{keyed("m0", "c0", "1")}, want: "APPLIED", used: "7", grants: ""},
		// December: 3 unused of November, capped at 3, expiring at January
		{records: []usage.Record{keyed("m1", "c1", "11"), keyed("m2", "c2", "3")}, at: dec1.Add(time.Hour),
			want: "APPLIED LIMIT_EXCEEDED", used: "10", grants: "rollover:2026-12-01T00:00:00Z=2/3"},
		// March: February passed unused, so its whole limit, capped at 3
		{records: []usage.Record{keyed("m3", "c3", "1")}, at: jan1.AddDate(0, 2, 0),
			want: "APPLIED", used: "1", grants: "rollover:2027-03-01T00:00:00Z=3/3"},
	})
}

func TestOverageIsNotifiedOncePerPeriod(t *testing.T) {
	n := &usage.Notify{OverageStarted: true}
	m := runGrantSteps(t, monthlyAttrs("2", "1", usage.AttrOverageLimit, "10"), n, []grantStep{
		{records: []usage.Record{keyed("m1", "c1", "1"), keyed("m2", "c2", "2"), keyed("m3", "c3", "1")}, want: "APPLIED APPLIED APPLIED", used: "2", overage: "3"},
		{records: []usage.Record{refund("r", "c2", ""), keyed("m4", "c4", "1")}, want: "APPLIED APPLIED", used: "2", overage: "2"},
	})
	notes := m.Notifications(scopeUK)
	if len(notes) != 1 {
		t.Fatalf("notifications %+v, want one", notes)
	}
	for _, n := range notes {
		if n.Type != usage.NotifyOverageStarted || n.EventID != "c2" || n.OverageUsed == nil || n.OverageUsed.String() != "2" {
			t.Errorf("notification %+v", n)
		}
	}
}

func TestBalanceShowsTheBreakdown(t *testing.T) {
	exp := now.Add(-time.Second)
	item := usage.Item{Exists: true, Attrs: monthlyAttrs("10", "4", usage.AttrOverageLimit, "5", usage.AttrOverageUsed, "1")}
	live := usage.Grant{ID: "live", Amount: dec("5"), Remaining: dec("3"), Priority: 100, GrantedAt: now}
	gone := usage.Grant{ID: "gone", Amount: dec("5"), Remaining: dec("5"), Priority: 100, GrantedAt: now, ExpiresAt: &exp}
	item.Attrs[usage.AttrGrants] = usage.GrantsValue([]usage.Grant{live, gone})
	b, err := usage.BalanceOf(usage.ParseEntitlement(item), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Grants) != 1 || b.Grants[0].ID != "live" || b.Available.String() != "13" || b.Remaining.String() != "6" || b.OverageUsed.String() != "1" {
		t.Errorf("balance %+v", b)
	}
}

// TestGrantsEqualOneByOne is the coalescing guarantee for the balances:
// groups mixing grants, voids, consumes spanning buckets, refunds back to
// them, holds drawing from grants and settling, grants that expire at the
// processing time, a reset with rollover and overage, give exactly the
// outcomes, usage, grants, overage and ledger of one record at a time.
func TestGrantsEqualOneByOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	decide := func(st usage.State, r []usage.Record) usage.Plan {
		return usage.Rules{Now: now, Notify: &usage.Notify{OverageStarted: true}}.Plan(st, r)
	}
	counts := map[string]int{}
	defer func() {
		for _, k := range []string{"spanning", "refund to grant", "lapsed", "void", "rollover", "overage", "hold from grant"} {
			if counts[k] < 20 {
				t.Errorf("only %d cases of %s: the test exercises too little (%v)", counts[k], k, counts)
			}
		}
	}()
	for i := range 6000 {
		attrs := randomBalances(rng)
		recs := randomGrantRecords(rng)
		group, single := memstore.New(), memstore.New()
		group.PutEntitlement(scopeUK, attrs)
		single.PutEntitlement(scopeUK, attrs)
		got := group.Update(context.Background(), scopeUK, recs, decide)
		for j, r := range recs {
			want := single.Update(context.Background(), scopeUK, []usage.Record{r}, decide)[0]
			if got[j].Status != want.Status || got[j].Reason() != want.Reason() || drawsText(got[j].Returned) != drawsText(want.Returned) {
				t.Fatalf("case %d record %d (%+v): group says %s %s %s, one by one says %s %s %s", i, j, r.Event,
					got[j].Status, got[j].Reason(), drawsText(got[j].Returned), want.Status, want.Reason(), drawsText(want.Returned))
			}
			countCase(counts, r, got[j])
		}
		if a, b := balancesText(group), balancesText(single); a != b {
			t.Fatalf("case %d: group ends at\n%s\none by one at\n%s", i, a, b)
		}
		if strings.Contains(grantsText(group.Entitlement(scopeUK)), "rollover:") {
			counts["rollover"]++
		}
	}
}

func countCase(counts map[string]int, r usage.Record, o usage.Outcome) {
	if o.Status != usage.Applied {
		return
	}
	for _, d := range o.Returned {
		if d.Lapsed {
			counts["lapsed"]++
		}
	}
	for _, d := range o.Entry.Draws {
		switch {
		case r.Event.Is(usage.OperationRefund) && d.Bucket == usage.BucketGrant:
			counts["refund to grant"]++
		case r.Event.Is(usage.OperationReserve) && d.Bucket == usage.BucketGrant:
			counts["hold from grant"]++
		case d.Bucket == usage.BucketOverage:
			counts["overage"]++
		}
	}
	if len(o.Entry.Draws) > 1 && r.Event.Is(usage.OperationConsume) {
		counts["spanning"]++
	}
	if r.Event.Is(usage.OperationVoid) {
		counts["void"]++
	}
}

func randomBalances(rng *rand.Rand) map[string]usage.Value {
	attrs := monthlyAttrs(fmt.Sprint(rng.IntN(8)), fmt.Sprint(rng.IntN(6)))
	if rng.IntN(3) == 0 {
		attrs[usage.AttrPeriodStart] = usage.StringValue("2026-10-01T00:00:00Z") // a reset is due
	}
	if rng.IntN(2) == 0 {
		attrs[usage.AttrRolloverMax] = usage.NumberValue(usage.DecimalFromInt(rng.Int64N(5)))
	}
	if rng.IntN(2) == 0 {
		attrs[usage.AttrOverageLimit] = usage.NumberValue(usage.DecimalFromInt(rng.Int64N(5)))
		attrs[usage.AttrOverageUsed] = usage.NumberValue(usage.DecimalFromInt(rng.Int64N(3)))
	}
	var gs []usage.Grant
	for j := range rng.IntN(4) {
		amount := usage.DecimalFromInt(1 + rng.Int64N(4))
		g := usage.Grant{ID: fmt.Sprint("g", j), Amount: amount, Remaining: usage.DecimalFromInt(rng.Int64N(5)), Priority: rng.IntN(3), GrantedAt: now.Add(-time.Hour)}
		g.Remaining = minDec(g.Remaining, amount)
		switch rng.IntN(4) {
		case 0:
			g.ExpiresAt = at(now) // expires exactly at the processing time
		case 1:
			g.ExpiresAt = at(now.Add(time.Nanosecond))
		}
		gs = append(gs, g)
	}
	if len(gs) > 0 {
		attrs[usage.AttrGrants] = usage.GrantsValue(gs)
	}
	return attrs
}

func minDec(a, b usage.Decimal) usage.Decimal {
	if a.Cmp(b) < 0 {
		return a
	}
	return b
}

func randomGrantRecords(rng *rand.Rand) []usage.Record {
	var recs []usage.Record
	for j := range 1 + rng.IntN(16) {
		amount := fmt.Sprint(1 + rng.IntN(5))
		r := keyed(fmt.Sprint("m", j), fmt.Sprint("k", rng.IntN(8)), amount)
		switch rng.IntN(9) {
		case 0: // a grant, perhaps a known ID, perhaps expiring already
			var exp *time.Time
			if rng.IntN(4) == 0 {
				exp = at(now.Add(time.Duration(rng.IntN(2)) * time.Hour))
			}
			r = grantRec(fmt.Sprint("g", rng.IntN(6)), amount, exp, prio(rng.IntN(3)))
		case 1, 6:
			r = voidRec(fmt.Sprint("g", rng.IntN(3)))
		case 2, 3:
			r = refund(fmt.Sprint("r", rng.IntN(6)), fmt.Sprint("k", rng.IntN(8)), []string{"", "1", "2"}[rng.IntN(3)])
		case 4:
			r = reserveRec(fmt.Sprint("h", rng.IntN(3)), amount)
		case 5:
			ops := []usage.Operation{usage.OperationCommit, usage.OperationRelease}
			r = settle(ops[rng.IntN(2)], fmt.Sprint("h", rng.IntN(3)), []string{"", "0", "1", "2"}[rng.IntN(4)])
		}
		recs = append(recs, r)
	}
	if rng.IntN(3) == 0 { // a grant drawn from voided, then the draw given back
		recs = append(recs, voidRec(fmt.Sprint("g", rng.IntN(3))), refund("rv", fmt.Sprint("k", rng.IntN(8)), ""))
	}
	return recs
}

// balancesText is everything the balances leave behind.
func balancesText(m *memstore.Store) string {
	it := m.Entitlement(scopeUK)
	var ledger []string
	for _, e := range m.Ledger(scopeUK) {
		voided := ""
		if e.Voided != nil {
			voided = e.Voided.String()
		}
		ledger = append(ledger, fmt.Sprintf("%s:%s:%s:%s:%s:%s:%s:%s", e.DedupKey, e.Operation, e.Amount, e.Refunded, e.HoldState, e.GrantState, voided, drawsText(e.Draws)))
	}
	sort.Strings(ledger)
	var notes []string
	for k := range m.Notifications(scopeUK) {
		notes = append(notes, k)
	}
	sort.Strings(notes)
	return fmt.Sprintf("used %v overage %v grants %s version %v\nledger %s\nnotes %v", it.Get(usage.AttrUsed), it.Get(usage.AttrOverageUsed),
		grantsText(it), it.Get(usage.AttrGrantsVersion), strings.Join(ledger, " "), notes)
}
