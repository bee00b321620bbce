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

// A team: members a, b and c of pool "team" (key k), and pool "other".
var (
	teamPool  = usage.PoolScope("team", "k")
	otherPool = usage.PoolScope("other", "k")
	members   = []string{"a", "b", "c"}
)

func memberScope(u string) usage.Scope { return usage.Scope{UserID: u, EntitlementKey: "k"} }

func memberRec(u, key, amount string) usage.Record {
	r := keyed("m-"+u+key, key, amount)
	r.Event.UserID = u
	return r
}

func memberOp(u string, op usage.Operation, key, target, amount string) usage.Record {
	r := memberRec(u, key, "1")
	if amount != "" {
		r.Event.Amount = dec(amount)
	}
	r.Event.Operation = op
	switch op {
	case usage.OperationRefund:
		r.Event.RefundOf = target
	case usage.OperationCommit, usage.OperationRelease:
		r.Event.HoldID, r.Event.IdempotencyKey = target, ""
		r.MessageID = "m-" + u + key
		r.Event.AmountGiven = amount != ""
		if amount == "" {
			r.Event.Amount = usage.Decimal{}
		}
	}
	return r
}

func poolRules(now time.Time) usage.Decide {
	return func(st usage.State, r []usage.Record) usage.Plan {
		return usage.Rules{Now: now, Notify: &usage.Notify{Thresholds: []usage.Decimal{dec("50")}, LimitRejected: true}}.Plan(st, r)
	}
}

func team(m *memstore.Store, caps map[string]string, poolLimit string) {
	m.PutEntitlement(teamPool, map[string]usage.Value{usage.AttrLimit: usage.NumberValue(dec(poolLimit)), usage.AttrUsed: usage.NumberValue(dec("0"))})
	for _, u := range members {
		attrs := map[string]usage.Value{usage.AttrUsed: usage.NumberValue(dec("0")), usage.AttrPool: usage.StringValue("team")}
		if c, ok := caps[u]; ok {
			attrs[usage.AttrLimit] = usage.NumberValue(dec(c))
		}
		m.PutEntitlement(memberScope(u), attrs)
	}
}

func usedOf(m *memstore.Store, s usage.Scope) string {
	return m.Entitlement(s).Get(usage.AttrUsed).String()
}

func TestAMemberDrawsWithinItsCapAndItsPool(t *testing.T) {
	m := memstore.New()
	team(m, map[string]string{"a": "5", "b": "5"}, "8")
	do := func(u string, recs ...usage.Record) string {
		return outcomesText(m.Update(context.Background(), memberScope(u), recs, poolRules(now)))
	}
	if got := do("a", memberRec("a", "1", "4"), memberRec("a", "2", "2"), memberRec("a", "3", "1")); got != "APPLIED LIMIT_EXCEEDED APPLIED" {
		t.Fatalf("a: %s (its cap of 5 refuses the second)", got)
	}
	if got := do("b", memberRec("b", "1", "4"), memberRec("b", "2", "1")); got != "POOL_LIMIT_EXCEEDED APPLIED" {
		t.Fatalf("b: %s (the pool of 8 has 3 left)", got)
	}
	if got := do("c", memberRec("c", "1", "3")); got != "POOL_LIMIT_EXCEEDED" {
		t.Fatalf("c, without a cap: %s", got)
	}
	for s, want := range map[usage.Scope]string{memberScope("a"): "5", memberScope("b"): "1", memberScope("c"): "0", teamPool: "6"} {
		if got := usedOf(m, s); got != want {
			t.Errorf("%v used %s, want %s", s, got, want)
		}
	}
	e := m.Ledger(memberScope("a"))[0]
	if e.Pool != "team" {
		t.Errorf("the ledger entry records pool %q, want team", e.Pool)
	}
	notes := m.Notifications(teamPool)
	var types []string
	for _, n := range notes {
		types = append(types, n.Type+":"+n.UserID+":"+n.PoolID)
	}
	sort.Strings(types)
	if got := strings.Join(types, " "); got != "usage.limit.rejected:b:team usage.threshold.reached:a:team" {
		t.Errorf("the pool's notifications: %s", got)
	}
}

func TestRefundsAndSettlementsGiveBackToMemberAndPool(t *testing.T) {
	m := memstore.New()
	team(m, map[string]string{"a": "10"}, "10")
	do := func(recs ...usage.Record) string {
		return outcomesText(m.Update(context.Background(), memberScope("a"), recs, poolRules(now)))
	}
	hold := memberRec("a", "h", "4")
	hold.Event.Operation = usage.OperationReserve
	got := do(memberRec("a", "1", "5"), memberOp("a", usage.OperationRefund, "r1", "1", "2"), hold,
		memberOp("a", usage.OperationCommit, "c", "h", "1"))
	if got != "APPLIED APPLIED APPLIED APPLIED" {
		t.Fatalf("outcomes %s", got)
	}
	for s, want := range map[usage.Scope]string{memberScope("a"): "4", teamPool: "4"} {
		if got := usedOf(m, s); got != want {
			t.Errorf("%v used %s, want %s", s, got, want)
		}
	}
	// Moved to another pool: a refund gives back to the pool the consume
	// counted against, not the new one.
	m.PutEntitlement(otherPool, map[string]usage.Value{usage.AttrLimit: usage.NumberValue(dec("3")), usage.AttrUsed: usage.NumberValue(dec("0"))})
	a := m.Entitlement(memberScope("a")).Attrs
	a[usage.AttrPool] = usage.StringValue("other")
	m.PutEntitlement(memberScope("a"), a)
	if got := do(memberOp("a", usage.OperationRefund, "r2", "1", "1"), memberRec("a", "2", "3"), memberRec("a", "3", "1")); got != "APPLIED APPLIED POOL_LIMIT_EXCEEDED" {
		t.Fatalf("after the move: %s", got)
	}
	for s, want := range map[usage.Scope]string{memberScope("a"): "6", teamPool: "3", otherPool: "3"} {
		if got := usedOf(m, s); got != want {
			t.Errorf("after the move %v used %s, want %s", s, got, want)
		}
	}
}

func TestBadPoolsGetAReasonAndChangeNothing(t *testing.T) {
	for _, c := range []struct {
		name string
		pool map[string]usage.Value // nil: no item
		want string
	}{
		{"no pool item", nil, "POOL_NOT_FOUND"},
		{"unreadable limit", map[string]usage.Value{usage.AttrLimit: usage.StringValue("lots")}, "INVALID_POOL"},
		{"unknown reset period", map[string]usage.Value{usage.AttrLimit: usage.NumberValue(dec("5")), usage.AttrResetPeriod: usage.StringValue("fortnightly")}, "INVALID_POOL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := memstore.New()
			team(m, nil, "5")
			if c.pool == nil {
				m.PutEntitlement(teamPool, nil)
				m = memstore.New()
				m.PutEntitlement(memberScope("a"), map[string]usage.Value{usage.AttrUsed: usage.NumberValue(dec("1")), usage.AttrPool: usage.StringValue("team")})
			} else {
				m.PutEntitlement(teamPool, c.pool)
			}
			before := usedOf(m, memberScope("a"))
			got := outcomesText(m.Update(context.Background(), memberScope("a"), []usage.Record{memberRec("a", "1", "1")}, poolRules(now)))
			if got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
			if after := usedOf(m, memberScope("a")); after != before || len(m.Ledger(memberScope("a"))) != 0 {
				t.Errorf("the member changed: used %s -> %s, ledger %v", before, after, m.Ledger(memberScope("a")))
			}
		})
	}
	m := memstore.New()
	m.PutEntitlement(memberScope("a"), map[string]usage.Value{usage.AttrPool: usage.NumberValue(dec("7"))})
	if got := outcomesText(m.Update(context.Background(), memberScope("a"), []usage.Record{memberRec("a", "1", "1")}, poolRules(now))); got != "INVALID_ENTITLEMENT" {
		t.Errorf("a pool that is not a string: %s", got)
	}
}

// TestPoolsEqualOneByOne: a group of one member's records decides
// exactly as one record at a time, members interleaving, with caps, the
// pool's limit, resets of either, refunds, holds and a member moved to
// another pool mid-stream.
func TestPoolsEqualOneByOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 5))
	counts := map[string]int{}
	for i := range 3000 {
		grouped, single := memstore.New(), memstore.New()
		for _, m := range []*memstore.Store{grouped, single} {
			randomTeam(rand.New(rand.NewPCG(uint64(i), 1)), m)
		}
		clock := now
		for step := range 6 {
			if rng.IntN(4) == 0 {
				clock = clock.Add(time.Duration(rng.IntN(40*24)) * time.Hour) // resets of either
			}
			if rng.IntN(6) == 0 {
				moveAMember(rng, counts, grouped, single)
			}
			u := members[rng.IntN(3)]
			recs := randomMemberRecords(rng, u, fmt.Sprint(step))
			got := grouped.Update(context.Background(), memberScope(u), recs, poolRules(clock))
			if err := equalOneByOne(single, recs, got, clock, counts); err != "" {
				t.Fatalf("case %d step %d: %s", i, step, err)
			}
		}
		if a, b := teamText(grouped), teamText(single); a != b {
			t.Fatalf("case %d: grouped ends at\n%s\none by one at\n%s", i, a, b)
		}
	}
	t.Log(counts)
	for _, k := range []string{"APPLIED  ", "REJECTED LIMIT_EXCEEDED ", "REJECTED POOL_LIMIT_EXCEEDED ", "APPLIED  refund", "APPLIED  release", "APPLIED  commit", "moved"} {
		if counts[k] < 30 {
			t.Errorf("only %d cases of %q: the test exercises too little (%v)", counts[k], k, counts)
		}
	}
}

// moveAMember: access-service moves a member to one of the pools, in
// every store alike.
func moveAMember(rng *rand.Rand, counts map[string]int, stores ...*memstore.Store) {
	u := members[rng.IntN(3)]
	p := []string{"team", "other"}[rng.IntN(2)]
	for _, m := range stores {
		a := m.Entitlement(memberScope(u)).Attrs
		a[usage.AttrPool] = usage.StringValue(p)
		m.PutEntitlement(memberScope(u), a)
	}
	counts["moved"]++
}

// equalOneByOne applies records one at a time to single and compares
// each outcome with got (what a group or a team said); it counts them.
func equalOneByOne(single *memstore.Store, recs []usage.Record, got []usage.Outcome, clock time.Time, counts map[string]int) string {
	for j, r := range recs {
		want := single.Update(context.Background(), r.Event.Scope(), []usage.Record{r}, poolRules(clock))[0]
		if got[j].Status != want.Status || got[j].Reason() != want.Reason() || drawsText(got[j].PoolReturned) != drawsText(want.PoolReturned) {
			return fmt.Sprintf("record %d (%+v): together %s %s %s, one by one %s %s %s", j, r.Event,
				got[j].Status, got[j].Reason(), drawsText(got[j].PoolReturned), want.Status, want.Reason(), drawsText(want.PoolReturned))
		}
		counts[string(got[j].Status)+" "+string(got[j].Reason())+" "+string(r.Event.Operation)]++
	}
	return ""
}

func randomTeam(rng *rand.Rand, m *memstore.Store) {
	start := now.Add(-time.Duration(rng.IntN(20*24)) * time.Hour)
	for _, p := range []usage.Scope{teamPool, otherPool} {
		attrs := map[string]usage.Value{usage.AttrLimit: usage.NumberValue(usage.DecimalFromInt(int64(5 + rng.IntN(20)))),
			usage.AttrUsed: usage.NumberValue(usage.DecimalFromInt(int64(rng.IntN(5))))}
		if rng.IntN(2) == 0 {
			attrs[usage.AttrResetPeriod] = usage.StringValue("MONTHLY")
			attrs[usage.AttrPeriodStart] = usage.StringValue(usage.FormatInstant(usage.PeriodStart(usage.ResetMonthly, nil, start)))
		}
		m.PutEntitlement(p, attrs)
	}
	for _, u := range members {
		attrs := map[string]usage.Value{usage.AttrUsed: usage.NumberValue(usage.Decimal{}), usage.AttrPool: usage.StringValue("team")}
		if rng.IntN(3) > 0 {
			attrs[usage.AttrLimit] = usage.NumberValue(usage.DecimalFromInt(int64(2 + rng.IntN(10))))
		}
		if rng.IntN(2) == 0 {
			attrs[usage.AttrResetPeriod] = usage.StringValue("DAILY")
			attrs[usage.AttrPeriodStart] = usage.StringValue(usage.FormatInstant(usage.PeriodStart(usage.ResetDaily, nil, start)))
		}
		m.PutEntitlement(memberScope(u), attrs)
	}
}

// randomMemberRecords: consumes, reserves, and refunds and settlements
// of keys this member may have used at earlier steps.
func randomMemberRecords(rng *rand.Rand, u, step string) []usage.Record {
	var recs []usage.Record
	old := func() string { return fmt.Sprintf("s%dk%d", rng.IntN(6), rng.IntN(4)) }
	for j := range 1 + rng.IntN(5) {
		key := "s" + step + "k" + fmt.Sprint(j)
		amount := fmt.Sprint(1 + rng.IntN(4))
		switch rng.IntN(6) {
		case 0:
			recs = append(recs, memberOp(u, usage.OperationRefund, key, old(), fmt.Sprint(rng.IntN(3))))
		case 1:
			r := memberRec(u, key, amount)
			r.Event.Operation = usage.OperationReserve
			recs = append(recs, r)
		case 2:
			op := []usage.Operation{usage.OperationCommit, usage.OperationRelease}[rng.IntN(2)]
			a := ""
			if op == usage.OperationCommit && rng.IntN(2) == 0 {
				a = fmt.Sprint(rng.IntN(3))
			}
			recs = append(recs, memberOp(u, op, key, old(), a))
		default:
			recs = append(recs, memberRec(u, key, amount))
		}
	}
	return recs
}

func teamText(m *memstore.Store) string {
	var out []string
	for _, s := range []usage.Scope{teamPool, otherPool, memberScope("a"), memberScope("b"), memberScope("c")} {
		it := m.Entitlement(s)
		out = append(out, fmt.Sprintf("%v used %v start %v", s, it.Get(usage.AttrUsed), it.Get(usage.AttrPeriodStart)))
		var ledger []string
		for _, e := range m.Ledger(s) {
			ledger = append(ledger, fmt.Sprintf("%s:%s:%s:%s:%s:%s:%s", e.DedupKey, e.Operation, e.Amount, e.Refunded, e.HoldState, e.Pool, drawsText(e.PoolDraws)))
		}
		sort.Strings(ledger)
		out = append(out, "  "+strings.Join(ledger, " "))
		var notes []string
		for k := range m.Notifications(s) {
			notes = append(notes, k)
		}
		sort.Strings(notes)
		out = append(out, fmt.Sprint("  notes ", notes))
	}
	return strings.Join(out, "\n")
}

// TestADecisionRestsOnThePoolAndTheMembershipAsStored: access-service
// fills the pool, or moves the member, between the decision's read and
// its write: the write is refused and the decision taken again.
func TestADecisionRestsOnThePoolAndTheMembershipAsStored(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(m *memstore.Store)
		want   string
		pools  map[usage.Scope]string
	}{
		{"the pool filled", func(m *memstore.Store) {
			m.PutEntitlement(teamPool, map[string]usage.Value{usage.AttrLimit: usage.NumberValue(dec("8")), usage.AttrUsed: usage.NumberValue(dec("8"))})
		}, "POOL_LIMIT_EXCEEDED", map[usage.Scope]string{teamPool: "8", otherPool: "0"}},
		{"the pool's limit lowered", func(m *memstore.Store) {
			m.PutEntitlement(teamPool, map[string]usage.Value{usage.AttrLimit: usage.NumberValue(dec("1")), usage.AttrUsed: usage.NumberValue(dec("0"))})
		}, "POOL_LIMIT_EXCEEDED", map[usage.Scope]string{teamPool: "0", otherPool: "0"}},
		{"the member moved", func(m *memstore.Store) {
			a := m.Entitlement(memberScope("a")).Attrs
			a[usage.AttrPool] = usage.StringValue("other")
			m.PutEntitlement(memberScope("a"), a)
		}, "APPLIED", map[usage.Scope]string{teamPool: "0", otherPool: "2"}},
		{"the member left its pool", func(m *memstore.Store) {
			a := m.Entitlement(memberScope("a")).Attrs
			delete(a, usage.AttrPool)
			m.PutEntitlement(memberScope("a"), a)
		}, "APPLIED", map[usage.Scope]string{teamPool: "0", otherPool: "0"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := memstore.New()
			team(m, map[string]string{"a": "5"}, "8")
			m.PutEntitlement(otherPool, map[string]usage.Value{usage.AttrLimit: usage.NumberValue(dec("3"))})
			decisions := 0
			gap := func(st usage.State, r []usage.Record) usage.Plan {
				p := poolRules(now)(st, r)
				if len(p.Writes) > 0 {
					if decisions++; decisions == 1 {
						c.change(m)
					}
				}
				return p
			}
			got := outcomesText(m.Update(context.Background(), memberScope("a"), []usage.Record{memberRec("a", "1", "2")}, gap))
			if got != c.want || decisions < 2 {
				t.Errorf("got %s after %d decisions, want %s decided again", got, decisions, c.want)
			}
			for s, want := range c.pools {
				if u := m.Entitlement(s).Get(usage.AttrUsed); !valueIs(u, want) {
					t.Errorf("%v used %v, want %s", s, u, want)
				}
			}
		})
	}
}

func valueIs(v usage.Value, want string) bool {
	if !v.Present() {
		return want == "0"
	}
	return v.Kind == usage.KindNumber && v.Num.Cmp(dec(want)) == 0
}

// TestAGiveBackComposesWithOtherMembers: the pool is written by every
// member; a refund that only gives back rests on there being that much
// to give back, not on the pool's used exactly, so another member's
// consume in the gap does not refuse it.
func TestAGiveBackComposesWithOtherMembers(t *testing.T) {
	m := memstore.New()
	team(m, nil, "10")
	if got := outcomesText(m.Update(context.Background(), memberScope("a"), []usage.Record{memberRec("a", "1", "4")}, poolRules(now))); got != "APPLIED" {
		t.Fatalf("consume: %s", got)
	}
	decisions := 0
	gap := func(st usage.State, r []usage.Record) usage.Plan {
		p := poolRules(now)(st, r)
		if len(p.Writes) > 0 {
			if decisions++; decisions == 1 { // b consumes 1 meanwhile
				m.PutEntitlement(teamPool, map[string]usage.Value{usage.AttrLimit: usage.NumberValue(dec("10")), usage.AttrUsed: usage.NumberValue(dec("5"))})
			}
		}
		return p
	}
	got := outcomesText(m.Update(context.Background(), memberScope("a"), []usage.Record{memberOp("a", usage.OperationRefund, "r", "1", "2")}, gap))
	if got != "APPLIED" || decisions != 1 {
		t.Errorf("refund: %s after %d decisions, want APPLIED at once", got, decisions)
	}
	for s, want := range map[usage.Scope]string{memberScope("a"): "2", teamPool: "3"} {
		if u := usedOf(m, s); u != want {
			t.Errorf("%v used %s, want %s", s, u, want)
		}
	}
}

// A grant to the pool (an event naming poolId) tops the pool up: its
// members draw from it once the pool's allowance is used, and refunds
// give back to it; a void ends it for all of them.
func TestAGrantToThePoolTopsUpEveryMember(t *testing.T) {
	m := memstore.New()
	team(m, map[string]string{"a": "10"}, "4")
	grant := func(op usage.Operation, id, amount string) string {
		ev := usage.Event{PoolID: "team", EntitlementKey: "k", Operation: op, GrantID: id}
		if amount != "" {
			ev.Amount, ev.AmountGiven = dec(amount), true
		}
		if err := ev.Validate(); err != nil {
			t.Fatal(err)
		}
		if ev.Scope() != teamPool {
			t.Fatalf("a pool's event addresses %v, want %v", ev.Scope(), teamPool)
		}
		return outcomesText(m.Update(context.Background(), ev.Scope(), []usage.Record{{Event: ev}}, poolRules(now)))
	}
	do := func(u string, recs ...usage.Record) []usage.Outcome {
		return m.Update(context.Background(), memberScope(u), recs, poolRules(now))
	}
	if got := outcomesText(do("a", memberRec("a", "1", "5"))); got != "POOL_LIMIT_EXCEEDED" {
		t.Fatalf("before the grant: %s", got)
	}
	if got := grant(usage.OperationGrant, "topup", "3"); got != "APPLIED" {
		t.Fatalf("the pool's grant: %s", got)
	}
	out := do("a", memberRec("a", "2", "5"))
	if outcomesText(out) != "APPLIED" || drawsText(out[0].Entry.PoolDraws) != "allowance:4,topup:1" {
		t.Fatalf("a member's consume after the pool's grant: %s, pool draws %s", outcomesText(out), drawsText(out[0].Entry.PoolDraws))
	}
	if got := outcomesText(do("b", memberRec("b", "1", "3"))); got != "POOL_LIMIT_EXCEEDED" {
		t.Fatalf("b, beyond the pool's grant too: %s", got)
	}
	if got := outcomesText(do("b", memberRec("b", "2", "2"))); got != "APPLIED" {
		t.Fatalf("b, within what is left of the grant: %s", got)
	}
	if got := grant(usage.OperationVoid, "topup", ""); got != "APPLIED" {
		t.Fatalf("the void: %s", got)
	}
	if got := outcomesText(do("c", memberRec("c", "1", "1"))); got != "POOL_LIMIT_EXCEEDED" {
		t.Fatalf("after the void: %s", got)
	}
	if len(m.Ledger(teamPool)) != 1 {
		t.Errorf("the pool's ledger: %+v, want its grant", m.Ledger(teamPool))
	}
}
