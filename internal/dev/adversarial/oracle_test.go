package adversarial

import (
	"maps"
	"slices"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

// The oracle: a model of one entitlement group written from the README
// (Behaviour, Refunds, Holds, Periods) and docs/notifications.md, applying
// one event at a time. It does not call usage.Plan or any of the
// service's decision code; it borrows only usage.Decimal for exact
// arithmetic.

// outcome is what the oracle (or the service) says of one event.
type outcome struct {
	Status string // APPLIED, DUPLICATE, REJECTED, RETRY
	Reason string // for REJECTED
	why    string // the service's cause of a RETRY (not compared)
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
	stored      string // periodStart as stored: a lazy reset is stored by the next write that changes used
	thresholds  attr   // notifyThresholds
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
	used      usage.Decimal   // one at a time: right after the crossing event (or at the rejection)
	usedAlso  []usage.Decimal // coalesced: used after each later event of the same write, when at or above the level
	open      bool            // still collecting usedAlso in this round
}

func (n *oNote) key() string {
	if n.typ == usage.NotifyLimitRejected {
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
}

// oracle holds every scope of a scenario.
type oracle struct {
	scopes          map[string]*oScope
	thresholds      []usage.Decimal // NOTIFY_THRESHOLDS
	notifyRejection bool
}

func newOracle() *oracle {
	return &oracle{scopes: map[string]*oScope{}, notifyRejection: true,
		thresholds: []usage.Decimal{usage.MustDecimal("80"), usage.MustDecimal("100")}}
}

func (o *oracle) scope(user string) *oScope {
	s := o.scopes[user]
	if s == nil {
		s = &oScope{ledger: map[string]*oEntry{}, notes: map[string]*oNote{}}
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
		e.periodStart = cur
		e.used = num(usage.Decimal{})
		if s.editedPeriod != cur {
			s.edited = false
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
	op       string // consume, refund, reserve, commit, release, expire
	key      string // dedup key (settlements: none)
	amount   string // "" absent
	refundOf string
	holdID   string
	seconds  int
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
	s.lazyReset(now)
	if e.op != "commit" && e.op != "release" && e.op != "expire" {
		if prior, ok := s.ledger[e.key]; ok {
			return duplicateOf(prior, e)
		}
	}
	var out outcome
	switch e.op {
	case "consume", "reserve":
		out = precedence(&s.ent, nil, func() outcome { return o.consume(user, s, e, now) })
	case "refund":
		out = o.refund(s, e)
	default:
		out = o.settle(s, e, now)
	}
	o.afterEvent(s)
	return out
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
	}
	return duplicate
}

func (o *oracle) consume(user string, s *oScope, e ev, now time.Time) outcome {
	amount := e.amountDec()
	used := s.ent.usedNum()
	next := used.Add(amount)
	if !fits(next) {
		return rejected("INVALID_AMOUNT")
	}
	if limit := s.ent.limitNum(); limit != nil && next.Cmp(*limit) > 0 {
		if o.notifyRejection {
			n := &oNote{typ: usage.NotifyLimitRejected, period: s.period(), limit: *limit, amount: amount, eventID: e.key, used: used}
			if _, ok := s.notes[n.key()]; !ok {
				s.notes[n.key()] = n
			}
		}
		return rejected("LIMIT_EXCEEDED")
	}
	percents, levels := o.thresholdLevels(&s.ent)
	for i, level := range levels {
		n := &oNote{typ: usage.NotifyThresholdReached, period: s.period(), threshold: percents[i], level: level,
			limit: *s.ent.limitNum(), eventID: e.key, used: next, open: true}
		if _, ok := s.notes[n.key()]; ok {
			continue
		}
		if used.Cmp(level) < 0 && next.Cmp(level) >= 0 {
			s.notes[n.key()] = n
		}
	}
	s.ent.used, s.ent.stored = num(next), s.ent.periodStart
	entry := &oEntry{op: e.op, amount: amount, periodStart: s.period()}
	if e.op == "reserve" {
		secs := e.seconds
		if secs == 0 {
			secs = 900
		}
		entry.holdState = "active"
		entry.expiresAt = now.Add(time.Duration(secs) * time.Second)
	}
	s.ledger[e.key] = entry
	return applied
}

// giveBack lowers used, never below 0; false when the result would need
// more than 38 digits.
func giveBack(s *oScope, amount usage.Decimal) bool {
	next := s.ent.usedNum().Sub(amount)
	if next.Sign() < 0 {
		next = usage.Decimal{}
	}
	if !fits(next) {
		return false
	}
	s.ent.used, s.ent.stored = num(next), s.ent.periodStart
	return true
}

func (o *oracle) refund(s *oScope, e ev) outcome {
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
		if !giveBack(s, amount) {
			return rejected("INVALID_AMOUNT")
		}
		target.refunded = target.refunded.Add(amount)
		s.ledger[e.key] = &oEntry{op: "refund", amount: amount, refundOf: e.refundOf, periodStart: s.period()}
		return applied
	})
}

func (o *oracle) settle(s *oScope, e ev, now time.Time) outcome {
	hold := s.ledger[e.holdID]
	if !s.ent.exists && hold != nil && hold.op == "reserve" {
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
	}, func() outcome {
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
		if s.ent.resetPeriod != "DAILY" || hold.periodStart == s.period() {
			if back := hold.amount.Sub(actual); back.Sign() > 0 && !giveBack(s, back) {
				return rejected("INVALID_AMOUNT")
			}
		}
		hold.holdState, hold.actual = state, actual
		return applied
	})
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
			s.lazyReset(now)
			switch {
			case !s.ent.exists:
				h.holdState, h.actual = "expired", usage.Decimal{}
			case s.ent.malformed():
				h.asideUntil = now.Add(usage.HoldDeferral)
			default:
				o.settle(s, ev{op: "expire", holdID: key}, now)
			}
		}
	}
}

// ledgerSum is the current period's usage as the ledger records it:
// consumes less their refunds, active holds, committed amounts.
func (s *oScope) ledgerSum() usage.Decimal {
	var sum usage.Decimal
	for _, e := range s.ledger {
		if e.unreadable && e.op == "reserve" || (s.ent.resetPeriod == "DAILY" && e.periodStart != s.period()) {
			continue
		}
		switch {
		case e.op == "consume":
			sum = sum.Add(e.amount).Sub(e.refunded)
		case e.op == "reserve" && e.holdState == "active":
			sum = sum.Add(e.amount)
		case e.op == "reserve" && e.holdState == "committed":
			sum = sum.Add(e.actual)
		}
	}
	return sum
}
