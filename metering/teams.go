package metering

import (
	"context"
	"slices"
	"sync"

	"github.com/usage-event-service/usage-event-service/usage"
)

// teamRecords bounds the records of one team, so that its write (an
// entry each, a refunded target each at most, each member's item and
// notifications, the pool's) stays well inside a transaction's 100
// items; a write DynamoDB refuses as too large is decided member by
// member anyway.
const teamRecords = 30

// teams forms the batch's teams: the scopes of one entitlement key that
// more than one group shares are observed (as each group would be
// first), and the groups of members of one pool are merged, in message
// order, into teams of up to teamRecords records. Groups observed and
// not merged keep their observation, so nothing is read twice.
func (p *Processor) teams(ctx context.Context, t Teamer, groups []*scopeGroup) []*scopeGroup {
	perKey := map[string]int{}
	for _, g := range groups {
		perKey[g.scope.EntitlementKey]++
	}
	var candidates []*scopeGroup
	for _, g := range groups {
		if perKey[g.scope.EntitlementKey] > 1 {
			candidates = append(candidates, g)
		}
	}
	if len(candidates) == 0 {
		return groups
	}
	p.observe(ctx, t, candidates)
	type poolKey struct{ key, pool string }
	byPool := map[poolKey][]*scopeGroup{}
	var order []poolKey
	for _, g := range candidates {
		st, ok := g.observed[g.scope]
		if !ok || !st.Entitlement.Exists || st.Entitlement.Malformed != nil || st.Entitlement.Pool == "" {
			continue
		}
		k := poolKey{g.scope.EntitlementKey, st.Entitlement.Pool}
		if byPool[k] == nil {
			order = append(order, k)
		}
		byPool[k] = append(byPool[k], g)
	}
	merged := map[*scopeGroup]bool{}
	var out []*scopeGroup
	for _, k := range order {
		for _, team := range formTeams(byPool[k]) {
			for _, g := range team {
				merged[g] = true
			}
			out = append(out, mergeGroups(team))
		}
	}
	for _, g := range groups {
		if !merged[g] {
			out = append(out, g)
		}
	}
	return out
}

// observe observes each group's scope, several at once.
func (p *Processor) observe(ctx context.Context, t Teamer, groups []*scopeGroup) {
	sem := make(chan struct{}, cmpOr(p.Parallel, DefaultParallel))
	var wg sync.WaitGroup
	for _, g := range groups {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if st, err := t.Observe(ctx, g.scope, false); err == nil {
				g.observed = map[usage.Scope]usage.State{g.scope: st}
			}
		}()
	}
	wg.Wait()
}

// formTeams splits the groups of one pool's members into teams of at
// least two members, none over teamRecords records. (Members may name
// the same ledger keys: each key is its member's, and a store learns of
// a refused team write per member, usage.Learned.Of.)
func formTeams(groups []*scopeGroup) [][]*scopeGroup {
	var teams [][]*scopeGroup
	var cur []*scopeGroup
	records := 0
	flush := func() {
		if len(cur) > 1 {
			teams = append(teams, cur)
		}
		cur, records = nil, 0
	}
	for _, g := range groups {
		if len(g.records) > teamRecords {
			continue
		}
		if records+len(g.records) > teamRecords {
			flush()
		}
		cur = append(cur, g)
		records += len(g.records)
	}
	flush()
	return teams
}

// mergeGroups is one group of a team's records, in message order.
func mergeGroups(team []*scopeGroup) *scopeGroup {
	m := &scopeGroup{scope: team[0].scope, observed: map[usage.Scope]usage.State{}}
	type at struct {
		index  int
		record usage.Record
	}
	var all []at
	for _, g := range team {
		m.observed[g.scope] = g.observed[g.scope]
		for j, i := range g.index {
			all = append(all, at{i, g.records[j]})
		}
	}
	slices.SortFunc(all, func(a, b at) int { return a.index - b.index })
	for _, a := range all {
		m.index, m.records = append(m.index, a.index), append(m.records, a.record)
	}
	return m
}
