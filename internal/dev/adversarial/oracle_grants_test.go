package adversarial

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

// The oracle's balances beyond the allowance, written from the README's
// "Grants, rollover and overage" (and issue 20), one event at a time:
//
//   - a consume (or a reserve) the allowance's limit - used does not
//     cover draws the allowance's rest, then the grants counting at its
//     processing time (now < expiresAt, exactly) in draw order (lower
//     priority, earliest expiresAt, never-expiring last, oldest, then
//     ID), then the overage's room (overageLimit - overageUsed);
//     together they cover it or it is LIMIT_EXCEEDED;
//   - a refund gives back to those buckets, the last drawn first; a
//     settlement gives back a hold's unused part the same way; a part
//     due to a grant that expired or was voided meanwhile lapses, and a
//     hold settled after its period ended gives its allowance and
//     overage parts to nobody;
//   - a grant counts from its write until its expiresAt (none: never),
//     is not reset by the period; at most 20 count at a time;
//   - a void removes what is left of a grant, records it on the grant's
//     entry; voided again: DUPLICATE; expired: GRANT_NOT_ACTIVE;
//   - at the lazy reset, with rolloverMax, min(unused allowance of the
//     period just ended (limit - used if the item's period is the one
//     just ended, else the whole limit), rolloverMax) becomes the grant
//     rollover:<new periodStart>, priority 100, expiring at the new
//     period's end, once;
//   - the first consume of a period that draws from the overage records
//     usage.overage.started.
//
// A lazy reset is stored by the next write that changes the item; until
// then every decision sees the rollover it would add ("pending"), and a
// reader sees the stored item.

const (
	bucketAllowance = "allowance"
	bucketGrant     = "grant"
	bucketOverage   = "overage"
)

// maxGrants is the README's bound on grants counting at a time.
const maxGrants = 20

const rolloverPrefix = "rollover:"

// oGrant is one grant on the entitlement item.
type oGrant struct {
	id                string
	amount, remaining usage.Decimal
	priority          int
	grantedAt         time.Time
	expiresAt         *time.Time
	// pending: a rollover the lazy reset adds, not written yet (it goes
	// when the event that saw it writes nothing).
	pending bool
}

func (g *oGrant) activeAt(now time.Time) bool { return g.expiresAt == nil || now.Before(*g.expiresAt) }

// oDraw is one bucket's part of a draw or of a give-back.
type oDraw struct {
	bucket  string
	grantID string
	amount  usage.Decimal
	lapsed  bool
}

func (d oDraw) String() string {
	s := d.bucket
	if d.grantID != "" {
		s += "(" + d.grantID + ")"
	}
	s += " " + d.amount.String()
	if d.lapsed {
		s += " lapsed"
	}
	return s
}

func drawsString(ds []oDraw) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.String())
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// drawOrder: lower priority first, then the earliest expiresAt (one that
// never expires last), then the oldest, then by ID.
func drawOrder(a, b *oGrant) int {
	if a.priority != b.priority {
		return a.priority - b.priority
	}
	switch {
	case a.expiresAt != nil && b.expiresAt == nil:
		return -1
	case a.expiresAt == nil && b.expiresAt != nil:
		return 1
	case a.expiresAt != nil && !a.expiresAt.Equal(*b.expiresAt):
		return a.expiresAt.Compare(*b.expiresAt)
	}
	if c := a.grantedAt.Compare(b.grantedAt); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

// live are the grants counting at now, in draw order (a pending rollover
// included).
func (s *oScope) live(now time.Time) []*oGrant {
	var out []*oGrant
	for _, g := range s.ent.grants {
		if g.activeAt(now) {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, drawOrder)
	return out
}

// begin prepares the model for one decision at now: the lazy reset and
// the rollover it carries (pending until a write stores the reset).
func (s *oScope) begin(now time.Time) {
	s.lazyReset(now)
	e := &s.ent
	if !e.exists || e.malformed() || !s.resetPending(now) {
		return
	}
	if g := s.rollover(now); g != nil {
		if e.grants == nil {
			e.grants = map[string]*oGrant{}
		}
		if _, ok := e.grants[g.id]; !ok {
			g.pending = true
			e.grants[g.id] = g
		}
	}
}

// end forgets a rollover no write stored.
func (s *oScope) end() {
	for id, g := range s.ent.grants {
		if g.pending {
			delete(s.ent.grants, id)
		}
	}
}

// store: the decision wrote the item, and with it any pending reset and
// its rollover (the whole grants map, without the expired ones).
func (s *oScope) store(now time.Time) {
	s.ent.stored = s.ent.periodStart
	rolled := false
	for _, g := range s.ent.grants {
		if g.pending {
			g.pending, rolled = false, true
		}
	}
	if rolled {
		s.prune(now)
		s.cover["rollover"]++
	}
}

// prune drops the grants that no longer count: a write of the whole
// grants map (a grant, a void, a rollover) leaves them out.
func (s *oScope) prune(now time.Time) {
	for id, g := range s.ent.grants {
		if !g.activeAt(now) {
			delete(s.ent.grants, id)
		}
	}
}

// rollover is the grant the reset to the period containing now carries
// the unused allowance into, or nil.
func (s *oScope) rollover(now time.Time) *oGrant {
	e := &s.ent
	if e.resetPeriod != "DAILY" || e.rolloverMax.kind != "N" || e.limit.kind != "N" || e.stored == "" {
		return nil
	}
	start := now.UTC().Truncate(24 * time.Hour)
	unused := e.limit.num // no event counted in the period just ended
	if e.stored == start.Add(-24*time.Hour).Format(time.RFC3339) {
		used := usage.Decimal{}
		if e.rollUsed.kind == "N" {
			used = e.rollUsed.num
		}
		unused = unused.Sub(used)
	}
	amount := unused
	if e.rolloverMax.num.Cmp(amount) < 0 {
		amount = e.rolloverMax.num
	}
	if amount.Sign() <= 0 {
		return nil
	}
	end := start.Add(24 * time.Hour)
	return &oGrant{id: rolloverPrefix + start.Format(time.RFC3339Nano), amount: amount, remaining: amount,
		priority: 100, grantedAt: start, expiresAt: &end}
}

func minDec(a, b usage.Decimal) usage.Decimal {
	if a.Cmp(b) <= 0 {
		return a
	}
	return b
}

func nonNegative(d usage.Decimal) usage.Decimal {
	if d.Sign() < 0 {
		return usage.Decimal{}
	}
	return d
}

// spill is the draws of a consume of amount the allowance alone does
// not cover; ok is false when all the buckets together do not.
func (s *oScope) spill(amount usage.Decimal, now time.Time) (draws []oDraw, ok bool) {
	need := amount
	take := func(bucket, id string, room usage.Decimal) {
		if x := minDec(room, need); x.Sign() > 0 {
			draws = append(draws, oDraw{bucket: bucket, grantID: id, amount: x})
			need = need.Sub(x)
		}
	}
	take(bucketAllowance, "", nonNegative(s.ent.limitNum().Sub(s.ent.usedNum())))
	for _, g := range s.live(now) {
		take(bucketGrant, g.id, g.remaining)
	}
	if s.ent.overageLimit.kind == "N" {
		take(bucketOverage, "", nonNegative(s.ent.overageLimit.num.Sub(s.ent.overageUsed)))
	}
	return draws, need.Sign() <= 0
}

// drawsFit: every bucket a draw changes stays a DynamoDB number.
func (s *oScope) drawsFit(draws []oDraw) bool {
	for _, d := range draws {
		switch d.bucket {
		case bucketGrant:
			if !fits(s.ent.grants[d.grantID].remaining.Sub(d.amount)) {
				return false
			}
		case bucketOverage:
			if !fits(s.ent.overageUsed.Add(d.amount)) {
				return false
			}
		}
	}
	return true
}

// drawsOf is what an applied consume or reserve drew: its draws, or the
// allowance alone.
func drawsOf(e *oEntry) []oDraw {
	if len(e.draws) > 0 {
		return e.draws
	}
	return []oDraw{{bucket: bucketAllowance, amount: e.amount}}
}

// returnsOf is where giving back amount of draws goes when already was
// given back before: the last drawn first, so that what stays drawn is
// always the first part.
func returnsOf(draws []oDraw, already, amount usage.Decimal) []oDraw {
	var out []oDraw
	for i := len(draws) - 1; i >= 0 && amount.Sign() > 0; i-- {
		part := draws[i].amount
		skip := minDec(part, already)
		already, part = already.Sub(skip), part.Sub(skip)
		if x := minDec(part, amount); x.Sign() > 0 {
			out = append(out, oDraw{bucket: draws[i].bucket, grantID: draws[i].grantID, amount: x})
			amount = amount.Sub(x)
		}
	}
	return out
}

// giveBackFits: each part given back, and used lowered by what goes back
// to the allowance, is still a DynamoDB number (or used clamps at 0).
func (s *oScope) giveBackFits(returns []oDraw, inPeriod bool) bool {
	for _, r := range returns {
		if !fits(r.amount) { // each part is recorded on the entry
			return false
		}
	}
	if !inPeriod {
		return true
	}
	to := usage.Decimal{}
	for _, r := range returns {
		if r.bucket == bucketAllowance {
			to = to.Add(r.amount)
		}
	}
	next := s.ent.usedNum().Sub(to)
	return to.IsZero() || next.Sign() < 0 || fits(next)
}

// giveBack returns each part to its bucket, or marks it lapsed; it
// returns the parts as recorded.
func (o *oracle) giveBack(s *oScope, returns []oDraw, inPeriod bool, now time.Time) []oDraw {
	changed := false
	for i, r := range returns {
		switch {
		case r.bucket != bucketGrant && !inPeriod:
			returns[i].lapsed = true
			o.cover["give-back lapsed (period ended)"]++
		case r.bucket == bucketAllowance:
			s.ent.used = num(nonNegative(s.ent.usedNum().Sub(r.amount)))
			changed = true
		case r.bucket == bucketOverage:
			s.ent.overageUsed = nonNegative(s.ent.overageUsed.Sub(r.amount))
			changed = true
			o.cover["give-back to overage"]++
		default:
			g := s.ent.grants[r.grantID]
			if g == nil || !g.activeAt(now) {
				returns[i].lapsed = true
				o.cover["give-back lapsed (grant voided or expired)"]++
				continue
			}
			g.remaining = minDec(g.remaining.Add(r.amount), g.amount)
			changed = true
			o.cover["give-back to grant"]++
		}
	}
	if changed {
		s.store(now)
	}
	return returns
}

// grant decides a top-up (the entitlement's reasons have passed).
func (o *oracle) grant(s *oScope, e ev, now time.Time) outcome {
	switch {
	case e.expiresAt != nil && !now.Before(*e.expiresAt):
		o.cover["grant expiresAt not in the future"]++
		return rejected("INVALID_FIELD")
	case strings.HasPrefix(e.grantID, rolloverPrefix):
		o.cover["grant named rollover:"]++
		return rejected("INVALID_FIELD")
	}
	live := s.live(now)
	if slices.ContainsFunc(live, func(g *oGrant) bool { return g.id == e.grantID }) {
		return rejected("INVALID_FIELD")
	}
	if len(live) >= maxGrants {
		return rejected("TOO_MANY_GRANTS")
	}
	priority := usage.DefaultGrantPriority
	if e.priority != nil {
		priority = *e.priority
	}
	if s.ent.grants == nil {
		s.ent.grants = map[string]*oGrant{}
	}
	amount := e.amountDec()
	s.ent.grants[e.grantID] = &oGrant{id: e.grantID, amount: amount, remaining: amount, priority: priority, grantedAt: now, expiresAt: e.expiresAt}
	s.store(now)
	s.prune(now)
	s.ledger[e.key] = &oEntry{op: "grant", amount: amount, periodStart: s.period(), grantState: "active", priority: priority, grantExpiresAt: e.expiresAt}
	if e.expiresAt != nil {
		o.cover["grant with expiresAt"]++
	}
	return applied
}

// void ends a grant: what is left of it stops counting.
func (o *oracle) void(s *oScope, e ev, now time.Time) outcome {
	target := s.ledger[e.grantID]
	return precedence(&s.ent, func() (outcome, bool) {
		switch {
		case target == nil:
			return rejected("GRANT_NOT_FOUND"), true
		case target.unreadable:
			return rejected(reasonUnreadableEntry), true
		case target.op != "grant":
			return rejected("GRANT_NOT_FOUND"), true
		}
		return outcome{}, false
	}, func() outcome {
		switch {
		case target.grantState == "voided":
			return duplicate
		case target.grantExpiresAt != nil && !now.Before(*target.grantExpiresAt):
			return rejected("GRANT_NOT_ACTIVE")
		}
		left := usage.Decimal{}
		if g := s.ent.grants[e.grantID]; g != nil {
			left = g.remaining
			delete(s.ent.grants, e.grantID)
		}
		s.store(now)
		s.prune(now)
		target.grantState, target.voided = "voided", &left
		if left.Cmp(target.amount) < 0 {
			o.cover["void of a grant partly drawn"]++
		}
		return applied
	})
}

// sameGrantTerms: a grant sent again asks for the same expiry and
// priority (the amount is compared as for every operation).
func sameGrantTerms(prior *oEntry, e ev) bool {
	priority := usage.DefaultGrantPriority
	if e.priority != nil {
		priority = *e.priority
	}
	sameExpiry := prior.grantExpiresAt == nil && e.expiresAt == nil ||
		prior.grantExpiresAt != nil && e.expiresAt != nil && prior.grantExpiresAt.Equal(*e.expiresAt)
	return sameExpiry && priority == prior.priority
}

// coverDraws counts the kinds of draws beyond the allowance.
func (o *oracle) coverDraws(draws []oDraw) {
	grants := 0
	for _, d := range draws {
		switch d.bucket {
		case bucketAllowance:
			o.cover["draw: allowance's rest"]++
		case bucketGrant:
			grants++
			o.cover["draw: grant"]++
			if strings.HasPrefix(d.grantID, rolloverPrefix) {
				o.cover["draw: rollover grant"]++
			}
		case bucketOverage:
			o.cover["draw: overage"]++
		}
	}
	if grants > 1 {
		o.cover["draw: across grants"]++
	}
}

// kept is how much of an entry stays drawn: a consume less its refunds,
// an active hold, a committed hold's actual; nothing of a hold released
// or expired.
func (e *oEntry) kept() usage.Decimal {
	switch {
	case e.op == "consume":
		return e.amount.Sub(e.refunded)
	case e.op == "reserve" && e.holdState == "active":
		return e.amount
	case e.op == "reserve" && e.holdState == "committed":
		return e.actual
	}
	return usage.Decimal{}
}

// keptIn sums, over the ledger, the part of each entry's draws that
// stays drawn (the first part) from one bucket: the allowance and the
// overage count the current period's entries, a grant every entry.
func (s *oScope) keptIn(bucket, grantID string) usage.Decimal {
	var sum usage.Decimal
	for _, k := range slices.Sorted(maps.Keys(s.ledger)) {
		e := s.ledger[k]
		if e.op != "consume" && e.op != "reserve" || e.unreadable && e.op == "reserve" {
			continue
		}
		if bucket != bucketGrant && s.ent.resetPeriod == "DAILY" && e.periodStart != s.period() {
			continue
		}
		left := e.kept()
		for _, d := range drawsOf(e) {
			x := minDec(d.amount, left)
			left = left.Sub(x)
			if d.bucket == bucket && d.grantID == grantID {
				sum = sum.Add(x)
			}
		}
	}
	return sum
}

// shownAs is an applied outcome whose synchronous answer shows ds under
// name (README, synchronous answers: draws or returned, when a bucket
// beyond the allowance is involved or a part lapsed; absent otherwise).
func shownAs(name string, ds []oDraw) outcome {
	o := applied
	for _, d := range ds {
		if d.bucket != bucketAllowance || d.lapsed {
			o.shown = name + " " + drawsString(ds)
			break
		}
	}
	return o
}
