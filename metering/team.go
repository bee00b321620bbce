package metering

import (
	"context"
	"errors"
	"maps"

	"github.com/usage-event-service/usage-event-service/internal/backoff"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Teamer is an Updater that can decide the members of one pool together
// (Writer): the Processor observes the scopes of a batch that could share
// a pool, decides members that do as a team, and the others from what it
// observed, reading nothing twice.
type Teamer interface {
	Updater
	Observe(ctx context.Context, scope usage.Scope, consistent bool) (usage.State, error)
	// UpdateObserved is Update, starting from st as observed.
	UpdateObserved(ctx context.Context, scope usage.Scope, st usage.State, records []usage.Record, decide usage.Decide) []usage.Outcome
	// UpdateTeam decides and applies the records of several members of
	// one pool, in order, starting from their states as observed, and
	// returns one outcome per record.
	UpdateTeam(ctx context.Context, members map[usage.Scope]usage.State, records []usage.Record, team usage.DecideTeam, decide usage.Decide) []usage.Outcome
}

// UpdateObserved is Update, its first group starting from st.
func (w Writer) UpdateObserved(ctx context.Context, scope usage.Scope, st usage.State, records []usage.Record, decide usage.Decide) []usage.Outcome {
	n := min(len(records), maxGroup)
	out := w.decideGroup(ctx, &group{w: w, scope: scope, records: records[:n], decide: decide, mayFallBack: true, state: st})
	return append(out, w.Update(ctx, scope, records[n:], decide)...)
}

// UpdateTeam decides a team's records with one atomic write per decision
// that writes each pool once; a decision that only rejects is confirmed
// by reads of every item it names. What a team cannot settle alone (an
// invalid write, a write refused again and again) is decided member by
// member instead, in the same order.
func (w Writer) UpdateTeam(ctx context.Context, members map[usage.Scope]usage.State, records []usage.Record, team usage.DecideTeam, decide usage.Decide) []usage.Outcome {
	t := &teamGroup{w: w, records: records, members: maps.Clone(members)}
	for range w.attempts() {
		if err := ctx.Err(); err != nil {
			return All(records, usage.Retry, err)
		}
		plan := team(t.members, t.pools, records)
		switch {
		case plan.NeedsReads():
			if err := t.read(ctx, plan); err != nil {
				return All(records, usage.Retry, err)
			}
		case len(plan.Writes) == 0:
			// Only duplicates known from the ledger: each member's own
			// decision says so without a read.
			return t.alone(ctx, decide)
		case onlyChecks(plan.Plan):
			if out, done := t.confirm(ctx, plan, team); done {
				return out
			}
		default:
			if out, done := t.commit(ctx, plan, decide); done {
				return out
			}
		}
	}
	return All(records, usage.Retry, ErrContention)
}

// teamGroup is one UpdateTeam call: what it knows so far.
type teamGroup struct {
	w         Writer
	records   []usage.Record
	members   map[usage.Scope]usage.State
	pools     usage.State // the pools' entitlements (Others) and recorded notifications
	refusals  int
	conflicts int
}

// read learns what a plan asked for: members' ledger keys, and pools.
func (t *teamGroup) read(ctx context.Context, plan usage.TeamPlan) error {
	for s, keys := range plan.ReadsOf {
		learned, err := t.w.ReadLedger(ctx, s, keys)
		if err != nil {
			return err
		}
		t.members[s] = learned.Apply(t.members[s])
	}
	others, err := t.w.others(ctx, plan.ReadScopes)
	t.pools = usage.Learned{Others: others}.Apply(t.pools)
	return err
}

// commit writes a team's plan; done is false when the team decides
// again on what a refusal taught.
func (t *teamGroup) commit(ctx context.Context, plan usage.TeamPlan, decide usage.Decide) ([]usage.Outcome, bool) {
	err := t.w.Commit(ctx, anyScope(t.members), plan.Plan)
	var r *usage.Refusal
	switch {
	case err == nil:
		for s, st := range t.members {
			after := st
			after.Entitlement = usage.ParseEntitlement(plan.AfterOf(s, st.Entitlement.Observed))
			after.Notified = withNotified(st.Notified, plan.Plan.WritesOf(s))
			t.w.Remember(s, after)
		}
		return plan.Outcomes, true
	case !errors.As(err, &r):
		t.forget()
		return All(t.records, usage.Retry, err), true
	case r.Invalid:
		t.forget()
		return t.alone(ctx, decide), true
	case r.Learned.Any():
		t.refusals++
		if t.refusals >= splitAfter {
			t.forget()
			return t.alone(ctx, decide), true
		}
		t.learn(r.Learned)
	default:
		t.conflicts++
		if err := backoff.Sleep(ctx, conflictBackoff.Full(t.conflicts)); err != nil {
			return All(t.records, usage.Retry, err), true
		}
	}
	return nil, false
}

// confirm verifies a team's plan that writes nothing (rejections, with
// its members' ledger keys) as the one write would have: on one snapshot
// of every item it names, where the store can take one, and then the
// decision taken again on that snapshot is final when it only checks
// the same items too.
func (t *teamGroup) confirm(ctx context.Context, plan usage.TeamPlan, team usage.DecideTeam) ([]usage.Outcome, bool) {
	learned, held, err := t.w.Verify(ctx, anyScope(t.members), plan.Plan)
	switch {
	case err != nil:
		return All(t.records, usage.Retry, err), true
	case held:
		return plan.Outcomes, true
	}
	t.learn(learned)
	if !learned.Snapshot {
		return nil, false
	}
	next := team(t.members, t.pools, t.records)
	if len(next.ReadsOf) > 0 || !finalOnSnapshot(plan.Plan, next.Plan) {
		return nil, false
	}
	return next.Outcomes, true
}

// learn routes what a refusal taught to the members and pools it is of.
func (t *teamGroup) learn(l usage.Learned) {
	others := map[usage.Scope]usage.Item{}
	for s, it := range l.Others {
		if _, member := t.members[s]; member {
			t.members[s] = usage.Learned{Entitlement: &it}.Apply(t.members[s])
			continue
		}
		others[s] = it
	}
	t.pools = usage.Learned{Others: others, Notified: l.Notified}.Apply(t.pools)
	for s, in := range l.Of {
		if st, member := t.members[s]; member {
			t.members[s] = in.Apply(st)
		}
	}
}

// alone decides the team's records member by member, still in message
// order: each run of one member's consecutive records is one group (its
// first from what the team knows of the member, the later ones from what
// the store then knows), so the serial order is the team's whichever way
// it was written.
func (t *teamGroup) alone(ctx context.Context, decide usage.Decide) []usage.Outcome {
	out := make([]usage.Outcome, 0, len(t.records))
	started := map[usage.Scope]bool{}
	for start := 0; start < len(t.records); {
		s := t.records[start].Event.Scope()
		end := start + 1
		for end < len(t.records) && t.records[end].Event.Scope() == s {
			end++
		}
		run := t.records[start:end]
		if started[s] {
			out = append(out, t.w.Update(ctx, s, run, decide)...)
		} else {
			started[s] = true
			st := t.members[s]
			st.Others = t.pools.Others
			out = append(out, t.w.UpdateObserved(ctx, s, st, run, decide)...)
		}
		start = end
	}
	return out
}

func (t *teamGroup) forget() {
	for s := range t.members {
		t.w.Forget(s)
	}
}

// anyScope is one of the members: a team's writes each name their scope,
// so the one a store is handed only has to be one of them.
func anyScope(members map[usage.Scope]usage.State) usage.Scope {
	for s := range members {
		return s
	}
	return usage.Scope{}
}
