package adversarial

import (
	"maps"
	"slices"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

// The oracle: a model of one entitlement group written from the README
// (Behaviour, Refunds, Holds, Periods, Grants, rollover and overage) and
// docs/notifications.md, applying one event at a time. It does not call
// usage.Plan or any of the service's decision code; it borrows only
// usage.Decimal for exact arithmetic. The grants, voids, draws,
// give-backs, rollover and overage live in oracle_grants_test.go.

// outcome is what the oracle (or the service) says of one event.
type outcome struct {
	Status string // APPLIED, DUPLICATE, REJECTED, RETRY
	Reason string // for REJECTED
	why    string // the service's cause of a RETRY (not compared)
	// shown is what a synchronous answer shows of the buckets:
	// "draws [...]" for a consume or reserve, "returned [...]" for a
	// refund or settlement, when a bucket beyond the allowance (or a
	// lapsed part) is involved; "" otherwise.
	shown string
}

func (o outcome) String() string {
	if o.why != "" {
		return o.Status + " (" + o.why + ")"
	}
	if o.Reason != "" {
		return o.Status + " " + o.Reason
	}
	return o.Status
}

var (
	applied   = outcome{Status: "APPLIED"}
	duplicate = outcome{Status: "DUPLICATE"}
)

func rejected(reason string) outcome { return outcome{Status: "REJECTED", Reason: reason} }

// ---- Odd ledger values. ----
//
// An entry the service cannot read (a reserve without holdState, a
// consume whose refunded is not a number) cannot be decided on: the
// operation naming it is rejected INVALID_LEDGER_ENTRY (README, reason
// codes), never RETRY, and the other events of the batch are decided as
// usual.
const reasonUnreadableEntry = "INVALID_LEDGER_ENTRY"

// acceptUnreadable is the one answer for an operation on an unreadable
// entry.
func acceptUnreadable(o outcome) bool {
	return o.Status == "REJECTED" && o.Reason == reasonUnreadableEntry
}

// A settlement (commit, release) of a hold that exists while its
// entitlement does not: the entitlement's reason comes first (README,
// which reason wins).
const reasonHoldOfMissingEntitlement = "ENTITLEMENT_NOT_FOUND"

// The sweep's expiry of a due hold whose entitlement is missing (the hold
// expires, giving nothing back) or cannot be interpreted (the hold is set
// aside for an hour, usage.HoldDeferral): oracle.sweep models both.

// ---- Which rejection wins when several apply (defect 10). ----
//
// The order: validation reasons (the generator only sends valid
// events), then ENTITLEMENT_NOT_FOUND, then INVALID_ENTITLEMENT, then the
// target's reasons (..._NOT_FOUND, an unreadable entry), then the
// operation's own reasons. precedence is the one place that order lives.
func precedence(ent *oEnt, target func() (outcome, bool), own func() outcome) outcome {
	switch {
	case !ent.exists:
		return rejected("ENTITLEMENT_NOT_FOUND")
	case ent.malformed():
		return rejected("INVALID_ENTITLEMENT")
	}
	if target != nil {
		if o, bad := target(); bad {
			return o
		}
	}
	return own()
}

// attr is an entitlement attribute as access-service left it.
type attr struct {
	kind string // "" absent, "N", "S", "NULL", "M", "L"
	num  usage.Decimal
	str  string
	list []attr // for L
}

func num(d usage.Decimal) attr { return attr{kind: "N", num: d} }

// oEnt is the entitlement item.
type oEnt struct {
	exists      bool
	limit, used attr
	resetPeriod string // "DAILY" or "NONE" (the generator writes only these)
	periodStart string // the current period's start ("" when absent), lazily reset
	stored      string // periodStart as stored: a lazy reset is stored by the next write that changes the item
	thresholds  attr   // notifyThresholds

	// Balances beyond the allowance (oracle_grants_test.go).
	overageLimit, rolloverMax attr
	overageUsed               usage.Decimal      // this period's (metering's own)
	grants                    map[string]*oGrant // as on the item (expired ones until a write drops them)
	grantsOdd                 bool               // access-service wrote grants as a value metering cannot read
	// rollUsed is used as the item stores it for the stored period while
	// its reset is pending: the rollover's "unused allowance" is limit
	// minus it.
	rollUsed attr
	// pool is a member's pool attribute (oracle_pools_test.go).
	pool attr
}

func (e *oEnt) malformed() bool {
	if !e.exists {
		return false
	}
	switch e.limit.kind {
	case "", "NULL", "N":
	default:
		return true
	}
	switch e.used.kind {
	case "", "N":
	default:
		return true
	}
	return e.grantsOdd || !amountAttrOK(e.overageLimit) || !amountAttrOK(e.rolloverMax) || !poolAttrOK(e.pool)
}

// amountAttrOK: overageLimit and rolloverMax are absent, NULL or a number
// that is not negative.
func amountAttrOK(a attr) bool {
	switch a.kind {
	case "", "NULL":
		return true
	case "N":
		return a.num.Sign() >= 0
	}
	return false
}

func (e *oEnt) usedNum() usage.Decimal {
	if e.used.kind == "N" {
		return e.used.num
	}
	return usage.Decimal{}
}

func (e *oEnt) limitNum() *usage.Decimal {
	if e.limit.kind == "N" {
		d := e.limit.num
		return &d
	}
	return nil
}

// oEntry is a ledger entry.
type oEntry struct {
	op          string // consume, refund, reserve
	amount      usage.Decimal
	refunded    usage.Decimal
	refundOf    string
	holdState   string
	expiresAt   time.Time
	asideUntil  time.Time // a hold the sweep set aside is due again then (README, Holds)
	actual      usage.Decimal
	periodStart string
	unreadable  bool // written odd by the harness (defect 7)

	// draws: for a consume or a reserve, the buckets it drew from (nil:
	// the allowance alone); for a refund, where it gave back.
	draws []oDraw
	// A grant's entry.
	grantState     string // active, voided
	priority       int
	grantExpiresAt *time.Time
	voided         *usage.Decimal

	// A member's consume or reserve: the pool it counted against, what it
	// drew from the pool (nil: the pool's allowance alone) and the pool's
	// period; a refund: the same pool, where its pool part went.
	pool            string
	poolDraws       []oDraw
	poolPeriodStart string
}

// oNote is a recorded notification.
type oNote struct {
	typ       string
	period    string
	threshold usage.Decimal // threshold notifications
	level     usage.Decimal // the usage the threshold stands for
	limit     usage.Decimal
	amount    usage.Decimal // rejection notifications
	eventID   string
	member    string          // a pool's notification: the member whose event it was
	used      usage.Decimal   // one at a time: right after the crossing event (or at the rejection)
	usedAlso  []usage.Decimal // coalesced: used after each later event of the same write, when at or above the level
	open      bool            // still collecting usedAlso in this round
	overage   usage.Decimal   // usage.overage.started: overageUsed right after the event
}

func (n *oNote) key() string {
	if n.typ != usage.NotifyThresholdReached {
		return n.period + "#" + n.typ + "#-"
	}
	return n.period + "#" + n.typ + "#" + n.threshold.String()
}

// oScope is one (user, entitlement): the item, its ledger and its
// notifications.
type oScope struct {
	ent    oEnt
	ledger map[string]*oEntry
	notes  map[string]*oNote
	// edited: access-service wrote used (or the limit) in the current
	// period, so used no longer has to equal the ledger's sum, nor stay
	// under the limit.
	edited       bool
	editedPeriod string
	// overageEdited: access-service wrote overageLimit in the current
	// period, so overageUsed may be above it.
	overageEdited       bool
	overageEditedPeriod string
	cover               map[string]int // the oracle's
}

// oracle holds every scope of a scenario.
type oracle struct {
	scopes          map[string]*oScope
	thresholds      []usage.Decimal // NOTIFY_THRESHOLDS
	notifyRejection bool
	notifyOverage   bool
	// cover counts what the scenarios made happen (a draw from a grant,
	// a lapsed give-back, a rollover, ...): the run refuses to pass if
	// one of the new rules was never exercised.
	cover map[string]int
}

func newOracle() *oracle {
	return &oracle{scopes: map[string]*oScope{}, notifyRejection: true, notifyOverage: true, cover: map[string]int{},
		thresholds: []usage.Decimal{usage.MustDecimal("80"), usage.MustDecimal("100")}}
}

func (o *oracle) scope(user string) *oScope {
	s := o.scopes[user]
	if s == nil {
		s = &oScope{ledger: map[string]*oEntry{}, notes: map[string]*oNote{}, cover: o.cover}
		o.scopes[user] = s
	}
	return s
}

// periodOf is the start of the UTC day containing now, as stored.
func periodOf(resetPeriod string, now time.Time) string {
	if resetPeriod != "DAILY" {
		return ""
	}
	return now.UTC().Truncate(24 * time.Hour).Format(time.RFC3339)
}

// lazyReset applies the README's step 3 to the model (it is stored by
// the next write; a reader of the item applies it on read).
func (s *oScope) lazyReset(now time.Time) {
	e := &s.ent
	if !e.exists || e.malformed() || e.resetPeriod != "DAILY" {
		return
	}
	cur := periodOf("DAILY", now)
	if e.periodStart == "" || e.periodStart < cur {
		if e.periodStart == e.stored {
			e.rollUsed = e.used // the stored period ends: its used stays on the item until the reset is written
		}
		e.periodStart = cur
		e.used = num(usage.Decimal{})
		e.overageUsed = usage.Decimal{}
		if s.editedPeriod != cur {
			s.edited = false
		}
		if s.overageEditedPeriod != cur {
			s.overageEdited = false
		}
	}
}

// resetPending: the stored item is of an ended period; whatever used
// access-service writes into it, the next write resets it.
func (s *oScope) resetPending(now time.Time) bool {
	return s.ent.resetPeriod == "DAILY" && (s.ent.stored == "" || s.ent.stored < periodOf("DAILY", now))
}

// period is the current period as the ledger records it.
func (s *oScope) period() string {
	if s.ent.resetPeriod != "DAILY" {
		return ""
	}
	return s.ent.periodStart
}

// thresholdLevels are the thresholds in force and the usage each stands
// for.
func (o *oracle) thresholdLevels(e *oEnt) (percents, levels []usage.Decimal) {
	limit := e.limitNum()
	if limit == nil {
		return nil, nil
	}
	ps := o.thresholds
	if e.thresholds.kind == "L" {
		var list []usage.Decimal
		ok := true
		for _, a := range e.thresholds.list {
			if a.kind != "N" {
				ok = false
				break
			}
			list = append(list, a.num)
		}
		if ok {
			ps = list
		}
	}
	hundred := usage.DecimalFromInt(100)
	for _, p := range ps {
		if p.Sign() <= 0 || p.Cmp(hundred) > 0 || slices.ContainsFunc(percents, func(q usage.Decimal) bool { return q.Cmp(p) == 0 }) {
			continue
		}
		percents = append(percents, p)
		levels = append(levels, limit.Mul(p).Shift(-2))
	}
	return percents, levels
}

// fits: a usage DynamoDB can hold (38 significant digits).
func fits(d usage.Decimal) bool { return d.SignificantDigits() <= 38 }

// ev is one event as the oracle sees it.
type ev struct {
	op       string // consume, refund, reserve, commit, release, expire, grant, void
	key      string // dedup key (settlements and voids: none; a grant: its grantId)
	amount   string // "" absent
	refundOf string
	holdID   string
	seconds  int
	// grants and voids
	grantID   string
	expiresAt *time.Time
	zone      int  // expiresAt written with this offset in minutes (the same instant)
	priority  *int // nil: absent (the default)
	withKey   bool // a grant also sends idempotencyKey (= grantId)
}

func (e ev) amountDec() usage.Decimal {
	if e.amount == "" {
		return usage.Decimal{}
	}
	return usage.MustDecimal(e.amount)
}

// apply decides one event at now and changes the model; it returns the
// outcome.
func (o *oracle) apply(user string, e ev, now time.Time) outcome {
	s := o.scope(user)
	s.begin(now)
	defer s.end()
	out := o.decide(s, user, e, now)
	switch {
	case out.Reason == "INVALID_ENTITLEMENT" && s.ent.grantsOdd:
		o.cover["INVALID_ENTITLEMENT: grants unreadable"]++
	case out.Reason == "IDEMPOTENCY_CONFLICT" && e.op == "grant":
		o.cover["grant: IDEMPOTENCY_CONFLICT"]++
	case out.Reason == "INVALID_ENTITLEMENT" && !poolAttrOK(s.ent.pool):
		o.cover["pool: INVALID_ENTITLEMENT (pool attribute)"]++
	}
	o.afterEvent(s)
	for _, p := range o.pools() {
		o.afterEvent(p) // a pool's crossing, coalesced with the member's later events
	}
	return out
}

func (o *oracle) decide(s *oScope, user string, e ev, now time.Time) outcome {
	if e.op != "commit" && e.op != "release" && e.op != "expire" && e.op != "void" {
		if prior, ok := s.ledger[e.key]; ok {
			return duplicateOf(prior, e)
		}
	}
	switch e.op {
	case "consume", "reserve":
		return precedence(&s.ent, nil, func() outcome { return o.consume(user, s, e, now) })
	case "refund":
		return o.refund(s, e, now)
	case "grant":
		return precedence(&s.ent, nil, func() outcome { return o.grant(s, e, now) })
	case "void":
		return o.void(s, e, now)
	}
	return o.settle(s, e, now)
}

// afterEvent lets the notifications of the current write see the usage
// after each later event of the same write.
func (o *oracle) afterEvent(s *oScope) {
	for _, n := range s.notes {
		if n.open && n.typ == usage.NotifyThresholdReached && s.ent.usedNum().Cmp(n.level) >= 0 {
			n.usedAlso = append(n.usedAlso, s.ent.usedNum())
		}
	}
}

// closeRound ends a write: notifications stop collecting.
func (o *oracle) closeRound() {
	for _, s := range o.scopes {
		for _, n := range s.notes {
			n.open = false
		}
	}
}

func duplicateOf(prior *oEntry, e ev) outcome {
	op := e.op
	switch {
	case prior.op != op:
		return rejected("IDEMPOTENCY_CONFLICT")
	case op == "refund" && prior.refundOf != e.refundOf:
		return rejected("IDEMPOTENCY_CONFLICT")
	case op == "refund" && e.amount == "":
		return duplicate
	case prior.amount.Cmp(e.amountDec()) != 0:
		return rejected("IDEMPOTENCY_CONFLICT")
	case op == "grant" && !sameGrantTerms(prior, e):
		return rejected("IDEMPOTENCY_CONFLICT") // another expiry or priority under the grant's ID
	}
	return duplicate
}

// consume decides a consume or a reserve (README, Behaviour step 4, and
// Grants, rollover and overage): used + amount must be a DynamoDB
// number (as before grants: the precision is checked first); what the
// allowance's limit - used covers is the allowance's; beyond it the
// consume draws the allowance's rest, then the grants counting now in
// draw order, then the overage's room, or is LIMIT_EXCEEDED. A member of
// a pool must then fit its pool the same way (oracle_pools_test.go).
func (o *oracle) consume(user string, s *oScope, e ev, now time.Time) outcome {
	amount := e.amountDec()
	draws, reason := s.takes(amount, now)
	if reason == "LIMIT_EXCEEDED" {
		o.noteRejection(s, e, amount, "")
		o.coverBothRefuse(s, amount, now)
	}
	if reason != "" {
		return rejected(reason)
	}
	pool, poolDraws, out, ok := o.poolTakes(user, s, e, amount, now)
	if !ok {
		return out
	}
	o.take(s, e, amount, draws, "", now)
	o.coverDraws(draws)
	entry := &oEntry{op: e.op, amount: amount, periodStart: s.period(), draws: draws}
	if pool != nil {
		o.take(pool, e, amount, poolDraws, user, now)
		o.coverPoolDraw(s, pool, poolDraws)
		entry.pool, entry.poolDraws, entry.poolPeriodStart = s.ent.poolID(), poolDraws, pool.period()
	}
	if e.op == "reserve" {
		secs := e.seconds
		if secs == 0 {
			secs = 900
		}
		entry.holdState = "active"
		entry.expiresAt = now.Add(time.Duration(secs) * time.Second)
	}
	s.ledger[e.key] = entry
	return withPoolShown(shownAs("draws", draws), "draws", poolDraws)
}

// takes decides whether amount fits s (an entitlement's own balance, or
// a pool's), changing nothing: nil draws within the allowance, the
// draws beyond it, or the reason it does not fit.
func (s *oScope) takes(amount usage.Decimal, now time.Time) (draws []oDraw, reason string) {
	next := s.ent.usedNum().Add(amount)
	if !fits(next) {
		return nil, "INVALID_AMOUNT"
	}
	limit := s.ent.limitNum()
	if limit == nil || next.Cmp(*limit) <= 0 {
		return nil, ""
	}
	draws, ok := s.spill(amount, now)
	if !ok {
		return nil, "LIMIT_EXCEEDED"
	}
	if !s.drawsFit(draws) {
		return nil, "INVALID_AMOUNT"
	}
	return draws, ""
}

// noteRejection records the period's first usage.limit.rejected (a
// pool's names the member).
func (o *oracle) noteRejection(s *oScope, e ev, amount usage.Decimal, member string) {
	if !o.notifyRejection {
		return
	}
	n := &oNote{typ: usage.NotifyLimitRejected, period: s.period(), limit: *s.ent.limitNum(), amount: amount, eventID: e.key, member: member, used: s.ent.usedNum()}
	if _, ok := s.notes[n.key()]; !ok {
		s.notes[n.key()] = n
		o.coverPoolNote(n)
	}
}

// take applies what takes approved to s, with the notifications it
// causes (a pool's name the member whose event it was).
func (o *oracle) take(s *oScope, e ev, amount usage.Decimal, draws []oDraw, member string, now time.Time) {
	used := s.ent.usedNum()
	next := used.Add(amount)
	if draws != nil {
		next = used
		overageBefore := s.ent.overageUsed
		for _, d := range draws {
			switch d.bucket {
			case bucketAllowance:
				next = next.Add(d.amount)
			case bucketGrant:
				g := s.ent.grants[d.grantID]
				g.remaining = g.remaining.Sub(d.amount)
			case bucketOverage:
				s.ent.overageUsed = s.ent.overageUsed.Add(d.amount)
			}
		}
		if overageBefore.IsZero() && s.ent.overageUsed.Sign() > 0 && o.notifyOverage {
			n := &oNote{typ: usage.NotifyOverageStarted, period: s.period(), limit: *s.ent.limitNum(), eventID: e.key, member: member, used: next, overage: s.ent.overageUsed}
			if _, ok := s.notes[n.key()]; !ok {
				s.notes[n.key()] = n
				o.cover["overage notification"]++
				o.coverPoolNote(n)
			}
		}
	}
	percents, levels := o.thresholdLevels(&s.ent)
	for i, level := range levels {
		n := &oNote{typ: usage.NotifyThresholdReached, period: s.period(), threshold: percents[i], level: level,
			limit: *s.ent.limitNum(), eventID: e.key, member: member, used: next, open: true}
		if _, ok := s.notes[n.key()]; ok {
			continue
		}
		if used.Cmp(level) < 0 && next.Cmp(level) >= 0 {
			s.notes[n.key()] = n
			o.coverPoolNote(n)
		}
	}
	s.ent.used = num(next)
	s.store(now)
}

// refund gives back (part of) a consume to the buckets it drew from, the
// last drawn first; a part due to a grant that no longer counts lapses.
func (o *oracle) refund(s *oScope, e ev, now time.Time) outcome {
	target := s.ledger[e.refundOf]
	return precedence(&s.ent, func() (outcome, bool) {
		switch {
		case target == nil || target.op != "consume":
			return rejected("REFUND_TARGET_NOT_FOUND"), true
		case target.unreadable:
			return rejected(reasonUnreadableEntry), true
		}
		return outcome{}, false
	}, func() outcome {
		if s.ent.resetPeriod == "DAILY" && target.periodStart != s.period() {
			return rejected("PERIOD_ENDED")
		}
		remaining := target.amount.Sub(target.refunded)
		amount := e.amountDec()
		if e.amount == "" {
			amount = remaining
		}
		if amount.Sign() <= 0 || amount.Cmp(remaining) > 0 {
			return rejected("REFUND_EXCEEDS_APPLIED")
		}
		if !fits(amount) || !fits(target.refunded.Add(amount)) {
			return rejected("INVALID_AMOUNT")
		}
		returns := returnsOf(drawsOf(target), target.refunded, amount)
		if !s.giveBackFits(returns, true) {
			return rejected("INVALID_AMOUNT")
		}
		pg, out, ok := o.poolGivesBack(s, target, target.refunded, amount, now)
		if !ok {
			return out
		}
		returns = o.giveBack(s, returns, true, now)
		poolReturns := pg.apply(o, now)
		target.refunded = target.refunded.Add(amount)
		s.ledger[e.key] = &oEntry{op: "refund", amount: amount, refundOf: e.refundOf, periodStart: s.period(), draws: returns,
			pool: target.pool, poolDraws: poolReturns, poolPeriodStart: pg.periodStart()}
		return withPoolShown(shownAs("returned", returns), "returned", poolReturns)
	})
}

func (o *oracle) settle(s *oScope, e ev, now time.Time) outcome {
	hold := s.ledger[e.holdID]
	if !s.ent.exists && hold != nil && hold.op == "reserve" {
		if e.op == "expire" && !hold.unreadable {
			// The sweep's expiry of a hold whose entitlement is gone: the
			// usage went with the item, the pool's part goes back to the
			// pool (oracle_pools_test.go).
			return o.settleHold(s, hold, e, now)
		}
		return rejected(reasonHoldOfMissingEntitlement)
	}
	return precedence(&s.ent, func() (outcome, bool) {
		switch {
		case hold == nil || hold.op != "reserve":
			return rejected("HOLD_NOT_FOUND"), true
		case hold.unreadable:
			return rejected(reasonUnreadableEntry), true
		}
		return outcome{}, false
	}, func() outcome { return o.settleHold(s, hold, e, now) })
}

// settleHold settles a hold found (its entitlement's reasons have
// passed): once; the unused part goes back to the member and to the
// pool the hold counted against.
func (o *oracle) settleHold(s *oScope, hold *oEntry, e ev, now time.Time) outcome {
	state, actual := "released", usage.Decimal{}
	switch e.op {
	case "commit":
		state, actual = "committed", hold.amount
		if e.amount != "" {
			actual = e.amountDec()
		}
	case "expire":
		state = "expired"
	}
	if hold.holdState != "active" {
		if e.op == "expire" || hold.holdState == state && (state != "committed" || hold.actual.Cmp(actual) == 0) {
			return duplicate
		}
		return rejected("HOLD_NOT_ACTIVE")
	}
	if actual.Cmp(hold.amount) > 0 {
		return rejected("COMMIT_EXCEEDS_HOLD")
	}
	// The unused part goes back the same way as a refund's; after the
	// hold's period ended only its grants still counting take theirs.
	// Of a hold whose entitlement is gone, only the pool's part.
	back := hold.amount.Sub(actual)
	inPeriod := s.ent.resetPeriod != "DAILY" || hold.periodStart == s.period()
	var returns []oDraw
	if s.ent.exists {
		returns = returnsOf(drawsOf(hold), usage.Decimal{}, back)
		if !s.giveBackFits(returns, inPeriod) {
			return rejected("INVALID_AMOUNT")
		}
	}
	pg, out, ok := o.poolGivesBack(s, hold, usage.Decimal{}, back, now)
	if !ok {
		return out
	}
	if s.ent.exists {
		returns = o.giveBack(s, returns, inPeriod, now)
	}
	poolReturns := pg.apply(o, now)
	hold.holdState, hold.actual = state, actual
	return withPoolShown(shownAs("returned", returns), "returned", poolReturns)
}

// sweep does what the README says of every active hold due before now:
// it expires it (a hold whose entitlement is gone is expired giving
// nothing back), or, when the entitlement cannot be interpreted, sets it
// aside for usage.HoldDeferral, still active.
func (o *oracle) sweep(now time.Time) {
	for _, user := range slices.Sorted(maps.Keys(o.scopes)) {
		s := o.scopes[user]
		for _, key := range slices.Sorted(maps.Keys(s.ledger)) {
			h := s.ledger[key]
			due := h.expiresAt
			if h.asideUntil.After(due) {
				due = h.asideUntil
			}
			if h.op != "reserve" || h.unreadable || h.holdState != "active" || !due.Before(now) {
				continue
			}
			s.begin(now)
			switch {
			case s.ent.malformed():
				h.asideUntil = now.Add(usage.HoldDeferral)
			default:
				// (a hold whose entitlement is gone expires giving back
				// only its pool's part)
				if out := o.settle(s, ev{op: "expire", holdID: key}, now); out.Status == "REJECTED" {
					h.asideUntil = now.Add(usage.HoldDeferral) // its pool cannot be read (INVALID_POOL)
					o.cover["pool: hold set aside (INVALID_POOL)"]++
				}
			}
			s.end()
		}
	}
}

// ledgerSum is the current period's usage of the allowance as the
// ledger records it: of each consume, active hold and committed hold,
// the allowance's part of what stays drawn.
func (s *oScope) ledgerSum() usage.Decimal {
	return s.keptIn(bucketAllowance, "")
}
