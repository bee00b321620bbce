package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

// testRacingMembersOfOnePool: consumers (each with its own cache, as
// separate processes) race members of one pool, with caps, a pool limit
// well below the caps' sum, refunds and redeliveries. Neither limit is
// ever exceeded, the pool's used is the sum of its members', and each
// member's used is exactly what its applied outcomes say.
func testRacingMembersOfOnePool(t *testing.T, newBackend func(t *testing.T) Backend) {
	b := newBackend(t)
	const members, consumers, events = 6, 6, 180
	teamPool := usage.PoolScope("team", "k")
	b.Put(t, teamPool, map[string]usage.Value{usage.AttrLimit: Num("120"), usage.AttrUsed: Num("0"),
		usage.AttrResetPeriod: Str("DAILY"), usage.AttrPeriodStart: Str("2026-11-25T00:00:00Z")})
	member := func(i int) usage.Scope { return usage.Scope{UserID: fmt.Sprint("member-", i), EntitlementKey: "k"} }
	for i := range members {
		b.Put(t, member(i), map[string]usage.Value{usage.AttrLimit: Num("30"), usage.AttrUsed: Num("0"), usage.AttrPool: Str("team")})
	}
	var mu sync.Mutex
	applied := map[usage.Scope]usage.Decimal{}
	counts := map[string]int{}
	rules := usage.Rules{Now: Now, Notify: &usage.Notify{Thresholds: []usage.Decimal{usage.MustDecimal("50")}, LimitRejected: true}}
	var wg sync.WaitGroup
	for c := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := b.Store(t)
			for i := c; i < events; i += consumers {
				m := member(i % members)
				amount := fmt.Sprint(1 + i%4)
				rec := Rec(amount, fmt.Sprint("m", i), fmt.Sprint("k", i))
				rec.Event.UserID = m.UserID
				batch := []usage.Record{rec}
				if i%7 == 0 { // a refund of an earlier consume of this member, maybe applied
					r := Rec("1", fmt.Sprint("r", i), fmt.Sprint("r", i))
					r.Event.UserID, r.Event.Operation, r.Event.RefundOf = m.UserID, usage.OperationRefund, fmt.Sprint("k", i-members)
					batch = append(batch, r)
				}
				if i%10 == 0 {
					batch = append(batch, rec) // redelivered
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				out := s.Update(ctx, m, batch, rules.Plan)
				cancel()
				mu.Lock()
				for j, o := range out {
					amount := batch[j].Event.Amount
					switch {
					case o.Status == usage.Applied && batch[j].Event.Is(usage.OperationRefund):
						applied[m] = applied[m].Sub(amount)
					case o.Status == usage.Applied:
						applied[m] = applied[m].Add(amount)
					case o.Status == usage.Retry:
						t.Errorf("RETRY: %v", o.Err)
					}
					counts[string(o.Status)+" "+string(o.Reason())]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sum := usage.Decimal{}
	for i := range members {
		used := b.Get(t, member(i)).Get(usage.AttrUsed).Num
		if used.Cmp(applied[member(i)]) != 0 || used.Cmp(usage.MustDecimal("30")) > 0 {
			t.Errorf("%v used %s: applied outcomes say %s, and its cap is 30", member(i), used, applied[member(i)])
		}
		sum = sum.Add(used)
	}
	pool := b.Get(t, teamPool).Get(usage.AttrUsed).Num
	if pool.Cmp(sum) != 0 || pool.Cmp(usage.MustDecimal("120")) > 0 {
		t.Errorf("the pool's used is %s, its members' sum %s (limit 120)", pool, sum)
	}
	for _, k := range []string{"APPLIED ", "REJECTED POOL_LIMIT_EXCEEDED", "DUPLICATE "} {
		if counts[k] == 0 {
			t.Errorf("no %q outcome: the race exercised too little (%v)", k, counts)
		}
	}
	notes := b.Notifications(t, teamPool)
	if len(notes) != 2 {
		t.Errorf("the pool's notifications: %+v, want its threshold and its first rejection once each", notes)
	}
	for _, n := range notes {
		if n.PoolID != "team" || n.UserID == "" {
			t.Errorf("a pool's notification names pool %q and member %q", n.PoolID, n.UserID)
		}
	}
}
