package usage

import "slices"

// A team is members of one pool whose records meet in one batch: they
// are decided together, in the batch's order, exactly as one at a time,
// and written in one atomic write in which each pool they draw from is
// written once, whatever the number of members. The pool is the hot
// item; one write of it for many members' events is what lets a pool
// serve more events than one item's writes a second.

// TeamPlan is a team's decision: a Plan whose writes each name their
// member's scope (Target.Scope), with the reads it needs first by member.
type TeamPlan struct {
	Plan
	// ReadsOf are the ledger keys of each member the decision needs to
	// know first (State.Applied / State.Absent of that member).
	ReadsOf map[Scope][]string
}

// NeedsReads reports whether the plan only asks for reads.
func (p TeamPlan) NeedsReads() bool { return len(p.ReadsOf) > 0 || len(p.ReadScopes) > 0 }

// DecideTeam is the rule over a team: what is known of each member, what
// is known of its pools (Others and the pools' recorded notifications),
// and the records of all members, in order.
type DecideTeam func(members map[Scope]State, pools State, records []Record) TeamPlan

// PlanTeam decides the records of several members together: each record
// as one-at-a-time processing in this order would, against its member's
// entitlement and the pools, shared by all. A member's writes (its item,
// its ledger entries, its notifications) name its scope; each pool's are
// written once. Members may name the same ledger keys: each is under
// its member's scope, where a store also reports what it learned of it
// (Learned.Of).
func (r Rules) PlanTeam(members map[Scope]State, pools State, records []Record) TeamPlan {
	byMember := map[Scope][]Record{}
	var order []Scope
	for _, rec := range records {
		s := rec.Event.Scope()
		if _, ok := byMember[s]; !ok {
			order = append(order, s)
		}
		byMember[s] = append(byMember[s], rec)
	}
	var tp TeamPlan
	for _, s := range order {
		st := members[s]
		st.Others = pools.Others
		if keys := r.unknownTargets(st, byMember[s]); len(keys) > 0 {
			if tp.ReadsOf == nil {
				tp.ReadsOf = map[Scope][]string{}
			}
			tp.ReadsOf[s] = keys
		}
		for _, p := range r.unknownPools(st, byMember[s]) {
			if !slices.Contains(tp.ReadScopes, p) {
				tp.ReadScopes = append(tp.ReadScopes, p)
			}
		}
	}
	if tp.NeedsReads() {
		tp.Outcomes = readFirst(len(records))
		return tp
	}
	shared := &poolSet{}
	deciders := map[Scope]*decider{}
	for _, s := range order {
		st := members[s]
		st.Others, st.Notified = pools.Others, withPoolNotified(st.Notified, pools.Notified)
		d := newDecider(r, st)
		d.scope, d.pools = s, shared
		deciders[s] = d
	}
	tp.Outcomes = make([]Outcome, len(records))
	outcomes := map[Scope][]Outcome{}
	for i, rec := range records {
		s := rec.Event.Scope()
		tp.Outcomes[i] = deciders[s].decide(rec)
		outcomes[s] = append(outcomes[s], tp.Outcomes[i])
	}
	for _, s := range order {
		for _, w := range deciders[s].finish(byMember[s], outcomes[s]) {
			if w.Target.Scope == (Scope{}) {
				w.Target.Scope = s
			}
			tp.Writes = append(tp.Writes, w)
		}
	}
	if len(tp.Writes) > 0 {
		tp.Writes = append(tp.Writes, shared.writes()...)
	}
	return tp
}

// withPoolNotified is a member's recorded notifications with its pools'
// (their keys name the pool, so they never meet a member's own).
func withPoolNotified(member, pools map[string]bool) map[string]bool {
	if len(pools) == 0 {
		return member
	}
	out := make(map[string]bool, len(member)+len(pools))
	for k := range member {
		out[k] = true
	}
	for k := range pools {
		out[k] = true
	}
	return out
}
