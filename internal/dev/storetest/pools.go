package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/pipeline"
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
	tally := poolTally{applied: map[usage.Scope]usage.Decimal{}, counts: map[string]int{}}
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
					tally.add(t, m, batch[j].Event, o)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	tally.check(t, b, teamPool, scopes(members, member), "120", "30")
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

// testRacingTeamsOfOnePool: consumers (each a Processor over its own
// store, as separate workers are) race batches that mix members of one
// pool (consumes, refunds of earlier consumes, redeliveries), which each
// decides as a team in one write. The same totals hold as when each
// member's events are written alone.
func testRacingTeamsOfOnePool(t *testing.T, newBackend func(t *testing.T) Backend) {
	b := newBackend(t)
	const members, consumers, batches, perBatch = 8, 4, 40, 6
	teamPool := usage.PoolScope("team", "k")
	b.Put(t, teamPool, map[string]usage.Value{usage.AttrLimit: Num("150"), usage.AttrUsed: Num("0")})
	member := func(i int) usage.Scope { return usage.Scope{UserID: fmt.Sprint("member-", i), EntitlementKey: "k"} }
	for i := range members {
		b.Put(t, member(i), map[string]usage.Value{usage.AttrLimit: Num("25"), usage.AttrUsed: Num("0"), usage.AttrPool: Str("team")})
	}
	var mu sync.Mutex
	tally := poolTally{applied: map[usage.Scope]usage.Decimal{}, counts: map[string]int{}}
	teams := 0
	var wg sync.WaitGroup
	for c := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			store := teamCounter{b.Store(t), &mu, &teams}
			if _, ok := store.Updater.(metering.Teamer); !ok {
				t.Errorf("the backend's store %T cannot decide teams", store.Updater)
				return
			}
			p := &metering.Processor{Store: store, Now: func() time.Time { return Now },
				Notify: &usage.Notify{Thresholds: []usage.Decimal{usage.MustDecimal("50")}, LimitRejected: true}}
			for n := c; n < batches; n += consumers {
				var msgs []pipeline.Message
				for j := range perBatch {
					i := n*perBatch + j
					// Keys are numbered per member (i/members), so the members
					// of a batch name the same keys, each its own.
					m, key := member(i%members), i/members
					body := fmt.Sprintf(`{"userId":%q,"entitlementKey":"k","amount":%d,"idempotencyKey":"k%d"}`, m.UserID, 1+i%3, key)
					if i%5 == 4 && i >= 2*members { // a refund of this member's consume of an earlier batch
						body = fmt.Sprintf(`{"userId":%q,"entitlementKey":"k","operation":"refund","amount":1,"idempotencyKey":"r%d","refundOf":"k%d"}`, m.UserID, key, key-2)
					}
					msgs = append(msgs, pipeline.Message{ID: fmt.Sprint("m", i), Body: body, ReceiveCount: 1})
					if i%11 == 0 {
						msgs = append(msgs, pipeline.Message{ID: fmt.Sprint("m", i), Body: body, ReceiveCount: 2}) // redelivered
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				results := p.Handle(ctx, msgs)
				cancel()
				mu.Lock()
				for _, r := range results {
					tally.add(t, r.Event.Scope(), r.Event, r.Outcome)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	tally.check(t, b, teamPool, scopes(members, member), "150", "25")
	if notes := b.Notifications(t, teamPool); len(notes) != 2 {
		t.Errorf("the pool's notifications: %+v, want its threshold and its first rejection once each", notes)
	}
	for i := range members {
		crossed := 0
		for _, n := range b.Notifications(t, member(i)) {
			if n.Type == usage.NotifyThresholdReached {
				crossed++
			}
		}
		if crossed > 1 {
			t.Errorf("%v's threshold was recorded %d times", member(i), crossed)
		}
	}
	if teams < batches/2 {
		t.Errorf("only %d team decisions in %d batches", teams, batches)
	}
}

// teamCounter counts the teams a store is asked to decide.
type teamCounter struct {
	metering.Updater
	mu    *sync.Mutex
	teams *int
}

func (c teamCounter) Observe(ctx context.Context, s usage.Scope, consistent bool) (usage.State, error) {
	return c.Updater.(metering.Teamer).Observe(ctx, s, consistent)
}

func (c teamCounter) UpdateObserved(ctx context.Context, s usage.Scope, st usage.State, records []usage.Record, decide usage.Decide) []usage.Outcome {
	return c.Updater.(metering.Teamer).UpdateObserved(ctx, s, st, records, decide)
}

func (c teamCounter) UpdateTeam(ctx context.Context, m map[usage.Scope]usage.State, records []usage.Record, team usage.DecideTeam, decide usage.Decide) []usage.Outcome {
	c.mu.Lock()
	*c.teams++
	c.mu.Unlock()
	return c.Updater.(metering.Teamer).UpdateTeam(ctx, m, records, team, decide)
}

// poolTally is what a race's outcomes applied to each member, and how
// many of each outcome there were (callers hold the race's lock).
type poolTally struct {
	applied map[usage.Scope]usage.Decimal
	counts  map[string]int
}

func (p poolTally) add(t *testing.T, m usage.Scope, ev usage.Event, o usage.Outcome) {
	switch {
	case o.Status == usage.Applied && ev.Is(usage.OperationRefund):
		p.applied[m] = p.applied[m].Sub(ev.Amount)
	case o.Status == usage.Applied:
		p.applied[m] = p.applied[m].Add(ev.Amount)
	case o.Status == usage.Retry:
		t.Errorf("RETRY: %v", o.Err)
	}
	p.counts[string(o.Status)+" "+string(o.Reason())]++
}

// check: each member's used is what its outcomes applied, within its
// cap; the pool's is their sum, within its limit; the race saw
// applications, pool rejections and duplicates.
func (p poolTally) check(t *testing.T, b Backend, pool usage.Scope, members []usage.Scope, limit, memberCap string) {
	t.Helper()
	sum := usage.Decimal{}
	for _, m := range members {
		used, applied := b.Get(t, m).Get(usage.AttrUsed).Num, p.applied[m]
		if used.Cmp(applied) != 0 || used.Cmp(usage.MustDecimal(memberCap)) > 0 {
			t.Errorf("%v used %s: applied outcomes say %s, and its cap is %s", m, used, applied, memberCap)
		}
		sum = sum.Add(used)
	}
	if used := b.Get(t, pool).Get(usage.AttrUsed).Num; used.Cmp(sum) != 0 || used.Cmp(usage.MustDecimal(limit)) > 0 {
		t.Errorf("the pool's used is %s, its members' sum %s (limit %s)", used, sum, limit)
	}
	for _, k := range []string{"APPLIED ", "REJECTED POOL_LIMIT_EXCEEDED", "DUPLICATE "} {
		if p.counts[k] == 0 {
			t.Errorf("no %q outcome: the race exercised too little (%v)", k, p.counts)
		}
	}
}

// scopes are the first n members' scopes.
func scopes(n int, member func(int) usage.Scope) []usage.Scope {
	out := make([]usage.Scope, n)
	for i := range out {
		out[i] = member(i)
	}
	return out
}
