package dynamodb_test

import (
	"context"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/storetest"
	"github.com/usage-event-service/usage-event-service/usage"
)

// TestTheSweeperReleasesExpiredHoldsOnce: the sweeper finds expired
// active holds in the sparse index (no scan), releases each once, and a
// second sweep, or one that finds a hold committed meanwhile, releases
// nothing.
func TestTheSweeperReleasesExpiredHoldsOnce(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	ctx := context.Background()
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("100")})
	s := e.store()
	rules := func(now time.Time) usage.Decide { return usage.Rules{Now: now}.Plan }
	for _, r := range []usage.Record{storetest.Reserve("5", "short", 2), storetest.Reserve("7", "long", 3600), storetest.Reserve("3", "committed", 2)} {
		if got := outcomeText(s.Update(ctx, r.Event.Scope(), []usage.Record{r}, rules(e.now))); got != "APPLIED" {
			t.Fatal(got)
		}
	}
	c := storetest.Commit("committed", "1")
	if got := outcomeText(s.Update(ctx, c.Event.Scope(), []usage.Record{c}, rules(e.now))); got != "APPLIED" {
		t.Fatal(got)
	}
	later := e.now.Add(3 * time.Second)
	sw, err := sweep(s, later, 100)
	if err != nil {
		t.Fatal(err)
	}
	if sw.Found != 1 || sw.Expired != 1 || sw.Failed != 0 || sw.OldestDue != time.Second {
		t.Errorf("first sweep %+v, want the one expired active hold, due for 1s", sw)
	}
	if sw, err := sweep(s, later, 100); err != nil || sw.Found != 0 || sw.Expired != 0 {
		t.Errorf("second sweep %+v, %v: want nothing left", sw, err)
	}
	if used := e.get(t, "u", "k").Used; used.Cmp(usage.MustDecimal("8")) != 0 {
		t.Errorf("used %s, want 8 (7 held, 1 committed)", used)
	}
	holds, err := dynamodb.ListHolds(ctx, e.client, e.ledger, usage.Scope{UserID: "u", EntitlementKey: "k"}, false)
	if err != nil || len(holds) != 3 {
		t.Fatalf("holds %+v, %v", holds, err)
	}
	states := map[string]string{}
	for _, h := range holds {
		states[h.DedupKey] = h.HoldState
	}
	if states["short"] != usage.HoldExpired || states["long"] != usage.HoldActive || states["committed"] != usage.HoldCommitted {
		t.Errorf("states %v", states)
	}
}
