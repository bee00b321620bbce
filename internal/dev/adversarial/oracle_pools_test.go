package adversarial

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

// The oracle's team pools, written from the README's "Team pools" (and
// the reason codes and "Which reason wins"), one event at a time:
//
//   - a pool is an entitlement of its own (the scope "POOL#<id>" of the
//     oracle, with the same oEnt and notifications as a user's, and no
//     ledger); a member's entitlement names it in the string attribute
//     pool (anything else there: INVALID_ENTITLEMENT);
//   - a member's consume or reserve must fit its own balance (its limit
//     is then its cap; none: the pool alone limits it) and then the
//     pool's, after each one's lazy reset: the cap first (LIMIT_EXCEEDED,
//     or INVALID_AMOUNT, whatever the pool would say), then the pool:
//     POOL_NOT_FOUND (no pool item), INVALID_POOL (unreadable pool),
//     the pool's INVALID_AMOUNT, POOL_LIMIT_EXCEEDED (what the pool has
//     left: its allowance, grants and overage, drawn in the same order as
//     a member's); either way nothing changes, and only the refusing one
//     records its usage.limit.rejected;
//   - an applied one changes both, and its ledger entry records the pool,
//     what it drew from the pool (poolDraws, nil within the pool's
//     allowance) and the pool's period;
//   - refunds, commits, releases and the sweep's expiries give back to the
//     member and to the pool the entry recorded, whatever the member's
//     pool is now, the last drawn first as for the member; the pool's part
//     lapses when the pool's period has ended or its item is gone (a pool
//     deleted and written again is another pool: the sums below skip it);
//     a pool that cannot be read refuses the give-back (INVALID_POOL; the
//     sweep sets such a hold aside); the expiry of a hold whose member
//     item is gone gives back the pool's part alone;
//   - a pool's thresholds, first limit rejection and overage are notified
//     once per pool period, under the pool, naming the member.
//
// The suite writes pools without grants or rolloverMax (the pool's
// buckets are its allowance and its overage).

// poolKey is the oracle's scope name of pool id.
func poolKey(id string) string { return "POOL#" + id }

func isPoolKey(name string) bool { return strings.HasPrefix(name, "POOL#") }

// pools are the oracle's pool scopes, by name.
func (o *oracle) pools() []*oScope {
	var out []*oScope
	for _, k := range slices.Sorted(maps.Keys(o.scopes)) {
		if isPoolKey(k) {
			out = append(out, o.scopes[k])
		}
	}
	return out
}

// poolAttrOK: a member's pool attribute is absent, NULL or a non-empty
// string.
func poolAttrOK(a attr) bool {
	switch a.kind {
	case "", "NULL":
		return true
	case "S":
		return a.str != ""
	}
	return false
}

// poolID is the pool the entitlement names ("" for none).
func (e *oEnt) poolID() string {
	if e.pool.kind == "S" {
		return e.pool.str
	}
	return ""
}

// pool is pool id's scope, lazily reset at now.
func (o *oracle) pool(id string, now time.Time) *oScope {
	p := o.scope(poolKey(id))
	p.lazyReset(now)
	return p
}

// poolTakes decides a member's consume against its pool, after its own
// balance agreed (none: p nil and ok).
func (o *oracle) poolTakes(user string, s *oScope, e ev, amount usage.Decimal, now time.Time) (p *oScope, draws []oDraw, out outcome, ok bool) {
	id := s.ent.poolID()
	if id == "" {
		return nil, nil, outcome{}, true
	}
	p = o.pool(id, now)
	switch {
	case !p.ent.exists:
		o.cover["pool: POOL_NOT_FOUND"]++
		return nil, nil, rejected("POOL_NOT_FOUND"), false
	case p.ent.malformed():
		o.cover["pool: INVALID_POOL"]++
		return nil, nil, rejected("INVALID_POOL"), false
	}
	draws, reason := p.takes(amount, now)
	switch reason {
	case "":
		return p, draws, outcome{}, true
	case "LIMIT_EXCEEDED":
		o.noteRejection(p, e, amount, user)
		o.cover["pool: POOL_LIMIT_EXCEEDED"]++
		if s.ent.limitNum() == nil {
			o.cover["pool: POOL_LIMIT_EXCEEDED of a member without a cap"]++
		}
		return nil, nil, rejected("POOL_LIMIT_EXCEEDED"), false
	}
	o.cover["pool: INVALID_AMOUNT (the pool's 38 digits)"]++
	return nil, nil, rejected(reason), false
}

// coverBothRefuse counts a member's LIMIT_EXCEEDED its pool would have
// refused too (the cap is asked first).
func (o *oracle) coverBothRefuse(s *oScope, amount usage.Decimal, now time.Time) {
	id := s.ent.poolID()
	if id == "" {
		return
	}
	o.cover["pool: LIMIT_EXCEEDED by the cap"]++
	if p := o.pool(id, now); p.ent.exists && !p.ent.malformed() {
		if _, reason := p.takes(amount, now); reason == "LIMIT_EXCEEDED" {
			o.cover["pool: LIMIT_EXCEEDED when both refuse"]++
		}
	}
}

func (o *oracle) coverPoolDraw(s, p *oScope, draws []oDraw) {
	o.cover["pool: draw"]++
	if s.ent.limitNum() == nil {
		o.cover["pool: draw by a member without a cap"]++
	}
	for _, d := range draws {
		o.cover["pool: draw beyond the pool's allowance: "+d.bucket]++
	}
}

func (o *oracle) coverPoolNote(n *oNote) {
	if n.member != "" {
		o.cover["pool notification: "+n.typ]++
	}
}

// poolDrawsOf is what an entry drew from its pool: its poolDraws, or the
// pool's allowance alone.
func poolDrawsOf(e *oEntry) []oDraw {
	if len(e.poolDraws) > 0 {
		return e.poolDraws
	}
	return []oDraw{{bucket: bucketAllowance, amount: e.amount}}
}

// poolGive is a decided give-back to a pool: p nil when there is none,
// or when the pool's item is gone (returns are then lapsed).
type poolGive struct {
	p        *oScope
	returns  []oDraw
	inPeriod bool
}

// poolGivesBack decides giving back amount of entry e (already given back
// before) to the pool e recorded, changing nothing; ok is false with the
// rejection when the pool cannot be read.
func (o *oracle) poolGivesBack(s *oScope, e *oEntry, already, amount usage.Decimal, now time.Time) (g poolGive, out outcome, ok bool) {
	if e.pool == "" || amount.Sign() == 0 {
		return poolGive{}, outcome{}, true
	}
	if s.ent.exists && e.pool != s.ent.poolID() {
		o.cover["pool: give-back to a pool the member left"]++
	}
	p := o.pool(e.pool, now)
	g.returns = returnsOf(poolDrawsOf(e), already, amount)
	switch {
	case !p.ent.exists:
		for i := range g.returns {
			g.returns[i].lapsed = true
		}
		o.cover["pool: give-back lapsed (pool gone)"]++
		return g, outcome{}, true
	case p.ent.malformed():
		o.cover["pool: INVALID_POOL on a give-back"]++
		return poolGive{}, rejected("INVALID_POOL"), false
	}
	g.p = p
	g.inPeriod = p.ent.resetPeriod != "DAILY" || e.poolPeriodStart == p.period()
	if !p.giveBackFits(g.returns, g.inPeriod) {
		o.cover["pool: INVALID_AMOUNT (the pool's 38 digits)"]++
		return poolGive{}, rejected("INVALID_AMOUNT"), false
	}
	if !s.ent.exists {
		o.cover["pool: give-back of a hold whose member is gone"]++
	}
	return g, outcome{}, true
}

// apply carries a pool's give-back out; it returns its parts as recorded.
func (g poolGive) apply(o *oracle, now time.Time) []oDraw {
	if g.p == nil {
		return g.returns
	}
	s := g.p
	changed := false
	for i, r := range g.returns {
		switch {
		case r.bucket != bucketGrant && !g.inPeriod:
			g.returns[i].lapsed = true
			o.cover["pool: give-back lapsed (pool period ended)"]++
		case r.bucket == bucketAllowance:
			s.ent.used = num(nonNegative(s.ent.usedNum().Sub(r.amount)))
			changed = true
			o.cover["pool: give-back"]++
		case r.bucket == bucketOverage:
			s.ent.overageUsed = nonNegative(s.ent.overageUsed.Sub(r.amount))
			changed = true
			o.cover["pool: give-back to the pool's overage"]++
		default: // pools have no grants here: whatever it is, it is gone
			g.returns[i].lapsed = true
		}
	}
	if changed {
		s.store(now)
	}
	return g.returns
}

// periodStart is the pool's period a give-back's entry records ("" when
// the pool is gone, or never resets).
func (g poolGive) periodStart() string {
	if g.p == nil {
		return ""
	}
	return g.p.period()
}

// withPoolShown adds to an answer what it shows of the pool: the pool's
// draws (or returned) when a bucket beyond the pool's allowance, or a
// lapsed part, is involved.
func withPoolShown(o outcome, name string, ds []oDraw) outcome {
	for _, d := range ds {
		if d.bucket != bucketAllowance || d.lapsed {
			o.shown = strings.TrimSpace(o.shown + " pool " + name + " " + drawsString(ds))
			break
		}
	}
	return o
}

// poolKept sums, over every member's ledger, the part of the draws from
// pool id that stays drawn from bucket, in the pool's current period:
// what the pool's used (the allowance) and overageUsed must be.
func (o *oracle) poolKept(id, bucket string) usage.Decimal {
	p := o.scope(poolKey(id))
	var sum usage.Decimal
	for _, u := range slices.Sorted(maps.Keys(o.scopes)) {
		if isPoolKey(u) {
			continue
		}
		s := o.scopes[u]
		for _, k := range slices.Sorted(maps.Keys(s.ledger)) {
			e := s.ledger[k]
			if e.pool != id || e.op != "consume" && e.op != "reserve" || e.unreadable && e.op == "reserve" {
				continue
			}
			if p.ent.resetPeriod == "DAILY" && e.poolPeriodStart != p.period() {
				continue
			}
			left := e.kept()
			for _, d := range poolDrawsOf(e) {
				x := minDec(d.amount, left)
				left = left.Sub(x)
				if d.bucket == bucket {
					sum = sum.Add(x)
				}
			}
		}
	}
	return sum
}
