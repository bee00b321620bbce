package usage

import (
	"errors"
	"slices"
)

// A member's entitlement names its pool (AttrPool): the pool's own
// entitlement of the same key, addressed by PoolScope, which its members
// draw from together. A member's consume must fit both its own balance
// (its limit is then its cap) and the pool's; both items change, with
// the ledger entry, in the one atomic write, each resting on what the
// decision took from it. The pool is decided by a decider of its own
// that records no ledger entries: only its item and its notifications.

// pool returns the decider of pool id's entitlement, from the state the
// plan read (an entitlement not read is taken as absent: the write's
// check that it does not exist then refuses, and the decision is taken
// again knowing it).
func (d *decider) pool(id string) *decider {
	if p, ok := d.pools.byID[id]; ok {
		return p
	}
	scope := PoolScope(id, d.scope.EntitlementKey)
	p := newDecider(d.rules, State{Entitlement: d.others[scope], Notified: d.notified})
	p.scope, p.isPool = scope, true
	if d.pools.byID == nil {
		d.pools.byID = map[string]*decider{}
	}
	d.pools.byID[id] = p
	d.pools.order = append(d.pools.order, id)
	return p
}

// poolSet is the pools a decision draws from or gives back to, by ID,
// and their IDs in first use. The members of a team share one, so that
// each pool is decided, and written, once for all of them.
type poolSet struct {
	byID  map[string]*decider
	order []string
}

// unusablePool is the rejection of a draw from a pool that cannot be
// drawn from.
func (p *decider) unusablePool() error {
	switch {
	case p.ent.Observed.Unaddressable || !p.ent.Exists:
		return reject(ReasonPoolNotFound, "", "the entitlement's pool %q has no entitlement of this key", p.scope.UserID)
	case p.ent.Malformed != nil:
		return reject(ReasonInvalidPool, "", "the stored entitlement of pool %q cannot be used: %v", p.scope.UserID, p.ent.Malformed)
	}
	return nil
}

// poolTakes decides a member's consume against its pool (none: nil
// decider, no error). A rejection says that the pool refused.
func (d *decider) poolTakes(r Record, amount Decimal) (*decider, draft, error) {
	if d.ent.Pool == "" {
		return nil, draft{}, nil
	}
	p := d.pool(d.ent.Pool)
	if err := p.unusablePool(); err != nil {
		return nil, draft{}, err
	}
	f, err := p.takes(amount)
	if err == nil {
		return p, f, nil
	}
	p.refuse(r, amount, f, err)
	var rej *RejectionError
	if errors.As(err, &rej) && rej.Reason == ReasonLimitExceeded {
		err = reject(ReasonPoolLimitExceeded, "amount", "the pool %q: %s", d.ent.Pool, rej.Message)
	} else if errors.As(err, &rej) {
		err = reject(rej.Reason, rej.Field, "in the pool %q: %s", d.ent.Pool, rej.Message)
	}
	return nil, f, err
}

// giveBack is a decided give-back to a member's buckets and its pool's.
type giveBack struct {
	returns, poolReturns   []Draw
	inPeriod, poolInPeriod bool
	pool                   *decider
}

// givesBack decides giving back amount of entry e (already given back
// before) to the member, and poolAmount to the pool e counted against
// (the one it recorded, whatever the member's pool is now), changing no
// balance: both are possible, or neither happens. A pool whose item is
// gone took its usage with it: the pool's part lapses.
func (d *decider) givesBack(e LedgerEntry, already, amount, poolAmount Decimal, inPeriod bool) (giveBack, error) {
	g := giveBack{inPeriod: inPeriod}
	var err error
	if g.returns, err = d.backs(DrawsOf(e), already, amount, inPeriod); err != nil || e.Pool == "" || poolAmount.Sign() == 0 {
		return g, err
	}
	p := d.pool(e.Pool)
	draws := PoolDrawsOf(e)
	switch {
	case p.ent.Observed.Unaddressable || !p.ent.Exists:
		g.poolReturns = returnsOf(draws, already, poolAmount)
		if err := partsFit(g.poolReturns); err != nil {
			return g, err
		}
		for i := range g.poolReturns {
			g.poolReturns[i].Lapsed = true
		}
		return g, nil
	case p.ent.Malformed != nil:
		return g, p.unusablePool()
	}
	g.pool = p
	g.poolInPeriod = p.ent.ResetPeriod == ResetNone || e.PoolPeriodStart == p.periodStart
	g.poolReturns, err = p.backs(draws, already, poolAmount, g.poolInPeriod)
	return g, err
}

// apply carries a decided give-back out on both.
func (g giveBack) apply(d *decider) (returns, poolReturns []Draw) {
	returns = d.applyBacks(g.returns, g.inPeriod)
	if g.pool != nil {
		return returns, g.pool.applyBacks(g.poolReturns, g.poolInPeriod)
	}
	return returns, g.poolReturns
}

// PoolDrawsOf are the buckets of its pool an entry drew from: the pool's
// allowance alone when it recorded none.
func PoolDrawsOf(e LedgerEntry) []Draw {
	if len(e.PoolDraws) > 0 {
		return e.PoolDraws
	}
	return []Draw{{Bucket: BucketAllowance, Amount: e.Amount}}
}

// writes are the pools' parts of the write: each pool a decision took
// anything from, its item (an update, or a check of what the decision
// rested on) and the notifications it records.
func (ps *poolSet) writes() []Write {
	var writes []Write
	for _, id := range ps.order {
		p := ps.byID[id]
		if p.ent.Observed.Unaddressable {
			continue // no item can exist there: nothing to rest on
		}
		w := p.entitlementWrite()
		w.Target = EntitlementOf(p.scope)
		writes = append(writes, w)
		for _, n := range p.notifications() {
			n.Target.Scope = p.scope
			writes = append(writes, n)
		}
	}
	return writes
}

// unknownPools are the pools the decision needs that the state has not
// read: the member's own, for its consumes, and the pool each refunded
// or settled entry recorded.
func (r Rules) unknownPools(s State, records []Record) []Scope {
	if len(records) == 0 {
		return nil
	}
	key := records[0].Event.EntitlementKey
	var scopes []Scope
	need := func(id string) {
		scope := PoolScope(id, key)
		if _, ok := s.Others[scope]; !ok && !slices.Contains(scopes, scope) {
			scopes = append(scopes, scope)
		}
	}
	for _, rec := range records {
		var target string
		switch {
		case rec.Event.Is(OperationRefund):
			target = rec.Event.RefundOf
		case rec.Event.settles():
			target = rec.Event.HoldID
		case rec.Event.Is(OperationConsume) || rec.Event.Is(OperationReserve):
			if s.Entitlement.Exists && s.Entitlement.Malformed == nil && s.Entitlement.Pool != "" {
				need(s.Entitlement.Pool)
			}
			continue
		default:
			continue
		}
		if e, ok := s.Applied[target]; ok && e.Pool != "" {
			need(e.Pool)
		}
	}
	return scopes
}
