package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

// A decision may read and write several entitlements in its one atomic
// write, each with its own preconditions (the shape a member and its pool
// need): the decide below is a test rule, not the service's. An event of
// scope counts against its own item and against pool's, each up to its
// limit, or is rejected and changes neither.

var pool = usage.Scope{UserID: "POOL", EntitlementKey: "k"}

// twoItems decides every record against scope and pool, pinning both.
func twoItems(st usage.State, records []usage.Record) usage.Plan {
	p := usage.Plan{Outcomes: make([]usage.Outcome, len(records))}
	other, ok := st.Others[pool]
	if !ok {
		p.ReadScopes = []usage.Scope{pool}
		for i := range p.Outcomes {
			p.Outcomes[i] = usage.Outcome{Status: usage.Retry}
		}
		return p
	}
	own, shared := st.Entitlement.Used, other.Used
	var delta usage.Decimal
	for i, r := range records {
		a := r.Event.Amount
		if own.Add(a).Cmp(*st.Entitlement.Limit) > 0 || shared.Add(a).Cmp(*other.Limit) > 0 {
			p.Outcomes[i] = usage.Outcome{Status: usage.Rejected, Err: &usage.RejectionError{Reason: usage.ReasonLimitExceeded}}
			continue
		}
		own, shared, delta = own.Add(a), shared.Add(a), delta.Add(a)
		p.Outcomes[i] = usage.Outcome{Status: usage.Applied}
	}
	pin := func(e usage.Entitlement) []usage.Cond {
		return []usage.Cond{{Op: usage.OpExists}, usage.Pin(usage.AttrUsed, e.Observed.Get(usage.AttrUsed))}
	}
	add := []usage.Assign{{Attr: usage.AttrUsed, Value: usage.NumberValue(delta), Add: true}}
	action := usage.Update
	if delta.IsZero() {
		action = usage.Check
	}
	p.Writes = []usage.Write{
		{Target: usage.EntitlementItem, Action: action, Conds: pin(st.Entitlement), Set: add},
		{Target: usage.EntitlementOf(pool), Action: action, Conds: pin(other), Set: add},
	}
	return p
}

func testSeveralItems(t *testing.T, newBackend func(t *testing.T) Backend) {
	b := newBackend(t)
	b.Put(t, scope, map[string]usage.Value{usage.AttrLimit: Num("5"), usage.AttrUsed: Num("0")})
	b.Put(t, pool, map[string]usage.Value{usage.AttrLimit: Num("4"), usage.AttrUsed: Num("0")})
	a, other := b.Store(t), b.Store(t)
	do := func(s interface {
		Update(context.Context, usage.Scope, []usage.Record, usage.Decide) []usage.Outcome
	}, records ...usage.Record) string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return Text(s.Update(ctx, scope, records, twoItems))
	}
	if got := do(a, Rec("2", "m1", ""), Rec("3", "m2", ""), Rec("1", "m3", "")); got != "APPLIED LIMIT_EXCEEDED APPLIED" {
		t.Fatalf("first write: %s", got)
	}
	// Another writer fills the pool between a's read of it and a's write:
	// the pinned pool refuses the write (both items unchanged), and the
	// decision is taken again on the pool as the refusal returned it.
	decisions := 0
	gap := func(st usage.State, records []usage.Record) usage.Plan {
		p := twoItems(st, records)
		if _, read := st.Others[pool]; read {
			if decisions++; decisions == 1 {
				b.Put(t, pool, map[string]usage.Value{usage.AttrLimit: Num("4"), usage.AttrUsed: Num("4")})
			}
		}
		return p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if got := Text(a.Update(ctx, scope, []usage.Record{Rec("1", "m4", "")}, gap)); got != "LIMIT_EXCEEDED" || decisions < 2 {
		t.Errorf("against a pool filled in the gap: %s after %d decisions, want LIMIT_EXCEEDED decided again", got, decisions)
	}
	b.Put(t, pool, map[string]usage.Value{usage.AttrLimit: Num("10"), usage.AttrUsed: Num("4")})
	if got := do(other, Rec("2", "m5", "")); got != "APPLIED" {
		t.Errorf("another process: %s", got)
	}
	for s, want := range map[usage.Scope]string{scope: "5", pool: "6"} {
		if got := b.Get(t, s).Get(usage.AttrUsed); !valueIs(got, want) {
			t.Errorf("%v used %v, want %s: both items change in the one write, or neither", s, got, want)
		}
	}
}
