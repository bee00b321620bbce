package usage

import (
	"errors"
	"maps"
	"slices"
	"time"
)

// Rules are the decision rule's settings.
type Rules struct {
	// Now is the processing time.
	Now time.Time
	// TargetWait is how long, from Record.SentAt, a refund whose target is
	// not applied is RETRY (ErrTargetPending) rather than rejected
	// REFUND_TARGET_NOT_FOUND: a standard queue does not keep order. Zero
	// (synchronous requests) rejects at once.
	TargetWait time.Duration
	// Notify, when set, records notifications in the write that causes
	// them (see Notification); nil records none.
	Notify *Notify
}

// PlanUsage decides a group of records of one scope with Rules{Now: now}.
func PlanUsage(s State, records []Record, now time.Time) Plan {
	return Rules{Now: now}.Plan(s, records)
}

// Plan decides a group of records of one scope, in order, exactly as
// applying them one by one would: first the lazy reset, then each
// operation. A consume that does not fit the limit is rejected and later,
// smaller ones may still fit. A record whose key is already applied (in
// the ledger, or by an earlier record of the group) is a duplicate, or a
// conflict if it asks for something else; that takes precedence over any
// rejection, which is why rejections are confirmed against the ledger too.
func (r Rules) Plan(s State, records []Record) Plan {
	if reads := r.unknownTargets(s, records); len(reads) > 0 {
		return Plan{Outcomes: readFirst(len(records)), Reads: reads}
	}
	if scopes := r.unknownPools(s, records); len(scopes) > 0 {
		return Plan{Outcomes: readFirst(len(records)), ReadScopes: scopes}
	}
	d := newDecider(r, s)
	return d.plan(records)
}

// readFirst are the outcomes of a plan of n records that only asks for
// reads.
func readFirst(n int) []Outcome {
	out := make([]Outcome, n)
	for i := range out {
		out[i] = Outcome{Status: Retry, Err: errNeedsRead}
	}
	return out
}

// errNeedsRead marks the outcomes of a plan that only asks for reads;
// a store never returns them.
var errNeedsRead = rejectionless("the refund targets must be read first")

type rejectionless string

func (e rejectionless) Error() string { return string(e) }

// unknownTargets: the ledger keys the decision needs that are neither
// known nor known absent: refund targets, and the keys of redelivered
// records (a cheap read saves a write that would fail on them).
func (r Rules) unknownTargets(s State, records []Record) []string {
	var keys []string
	seen := map[string]bool{}
	need := func(k string) {
		if seen[k] {
			return
		}
		seen[k] = true
		if _, ok := s.Applied[k]; !ok && !s.Absent[k] {
			keys = append(keys, k)
		}
	}
	for _, rec := range records {
		switch {
		case rec.Event.Is(OperationRefund):
			need(rec.Event.RefundOf)
		case rec.Event.settles():
			need(rec.Event.HoldID)
			continue // a settlement has no entry of its own
		case rec.Event.Is(OperationVoid):
			need(rec.Event.GrantID)
			continue // nor has a void
		}
		if rec.Redelivered {
			need(rec.DedupKey())
		}
	}
	return keys
}

// decider is the state of one Plan call.
type decider struct {
	rules  Rules
	ent    Entitlement
	known  map[string]LedgerEntry
	absent map[string]bool

	reset         bool
	periodStart   string  // the current period's start as stored ("" for entitlements that never reset)
	used          Decimal // running usage, assuming the observed used
	delta         Decimal // sum of the applied consumes
	refunded      bool    // a give-back applied: used is then written exactly, unless it only gave back (given)
	given         Decimal // what the group gave back to the allowance
	givings       int     // how many give-backs to the allowance the group made
	clamped       bool    // a give-back found less used than it returns: used is written exactly (0)
	spilled       bool    // a consume drew the allowance's last room and beyond: used is then written exactly
	dependsOnUsed bool    // a rejection rested on the observed used

	passedAllowance bool                 // a consume found the allowance used up: the write rests on used >= limit
	grants          []Grant              // the grants that count, in draw order, as the group leaves them
	uses            map[string]*grantUse // the grants the group draws from, gives back to or rests on
	gone            map[string]bool      // grants a decision found gone (voided, or removed by hand)
	structural      int                  // grants the group adds or removes: the map is written whole, the version moves on by as many
	dependsOnGrants bool                 // a decision rested on which grants exist
	rolledOver      bool                 // the reset carries unused allowance into a grant
	overageUsed     Decimal              // running overage this period
	overageDrawn    Decimal              // what the group's consumes add to it
	overageExact    bool                 // written exactly, resting on the observed value
	overageStart    *crossing            // the consume that first went into overage this period

	percents, levels []Decimal        // notification thresholds, and the usage they stand for
	crossed          map[int]crossing // threshold index -> the consume that crossed it
	rejection        *Notification    // the period's first LIMIT_EXCEEDED, to record
	notified         map[string]bool  // notification keys known to be recorded
	scope            Scope

	others map[Scope]Entitlement // other scopes' entitlements, as read (State.Others)
	pools  *poolSet              // the pools the group draws from or gives back to (shared by a team's members)
	isPool bool                  // this decides a pool's entitlement for its members

	group       map[string]*LedgerEntry // entries applied by this group, by key
	order       []string                // their keys, in order
	targets     map[string]*target      // refund targets outside the group
	targetOrder []string
}

// crossing is the event whose consume crossed a threshold, and used right
// after it: what one-at-a-time processing would have reported.
type crossing struct {
	event  string
	member string // the user whose event it was (told in a pool's notifications)
	used   Decimal
	// overage is, for the first draw from the overage, the overage used
	// right after it (used is then the allowance's).
	overage Decimal
}

// target is what the group does to, and relies on of, one stored consume.
type target struct {
	entry     LedgerEntry
	absent    bool
	refund    Decimal      // added to its refunded by the group
	pinned    bool         // a rejection rested on its exact refunded
	relied    bool         // a decision rested on it at all
	settled   *LedgerEntry // a hold as the group settles it
	pinnedSet bool         // a decision rested on the hold's state
	deferTo   time.Time    // the sweeper sets an expired hold it cannot settle aside until then
	voided    *LedgerEntry // a grant as the group voids it
}

func newDecider(r Rules, s State) *decider {
	d := &decider{rules: r, ent: s.Entitlement, known: s.Applied, absent: s.Absent, notified: s.Notified, others: s.Others,
		group: map[string]*LedgerEntry{}, targets: map[string]*target{}, crossed: map[int]crossing{},
		uses: map[string]*grantUse{}, gone: map[string]bool{}, pools: &poolSet{}}
	if d.unusable() == nil {
		if d.ent.ResetPeriod == "" {
			d.ent.ResetPeriod = ResetNone // the zero Entitlement is unlimited and never resets
		}
		d.used = d.ent.Used
		if v := d.ent.Observed.Get(AttrPeriodStart); v.Kind == KindString {
			d.periodStart = v.Str
		}
		d.overageUsed = d.ent.OverageUsed
		d.grants = liveGrants(d.ent.Grants, r.Now)
		if NeedsReset(d.ent.ResetPeriod, d.ent.ResetAnchor, d.ent.PeriodStart, r.Now) {
			d.resetTo(PeriodStart(d.ent.ResetPeriod, d.ent.ResetAnchor, r.Now))
		}
		d.percents, d.levels = r.Notify.thresholds(d.ent)
	}
	return d
}

// resetTo starts the period beginning at start: the allowance and the
// overage start over, and the unused allowance may roll over.
func (d *decider) resetTo(start time.Time) {
	d.reset = true
	d.periodStart = FormatInstant(start)
	d.used, d.overageUsed = Decimal{}, Decimal{}
	if g, ok := d.rollover(start); ok && !slices.ContainsFunc(d.grants, func(h Grant) bool { return h.ID == g.ID }) {
		d.grants = append(d.grants, g)
		slices.SortFunc(d.grants, drawOrder)
		d.rolledOver = true
	}
}

// noEntry: settlements and voids write no ledger entry of their own;
// the hold's or the grant's state is their idempotency.
func noEntry(e Event) bool { return e.settles() || e.Is(OperationVoid) }

func (d *decider) plan(records []Record) Plan {
	p := Plan{Outcomes: make([]Outcome, len(records))}
	if len(records) > 0 {
		d.scope = records[0].Event.Scope()
	}
	for i, r := range records {
		p.Outcomes[i] = d.decide(r)
	}
	p.Writes = d.finish(records, p.Outcomes)
	if len(p.Writes) > 0 {
		p.Writes = append(p.Writes, d.pools.writes()...)
	}
	return p
}

// decide decides one record of the scope, after those before it.
func (d *decider) decide(r Record) Outcome {
	key := r.DedupKey()
	// A settlement has no entry of its own: the hold's state is its
	// idempotency.
	if e, ok := d.known[key]; ok && !noEntry(r.Event) {
		return duplicateOf(e, r)
	}
	if e, ok := d.group[key]; ok && !noEntry(r.Event) {
		return duplicateOf(*e, r)
	}
	var o Outcome
	switch unusable := d.unusable(); {
	case r.Event.Is(OperationBalance): // a balance is read, never planned
		o = Outcome{Status: Rejected, Err: r.Event.CheckQueued()}
	case unusable != nil && !d.expiresOrphan(r):
		o = Outcome{Status: Rejected, Err: unusable}
	case r.Event.Is(OperationRefund):
		o = d.refund(r)
	case r.Event.settles():
		o = d.settle(r)
	case r.Event.Is(OperationGrant):
		o = d.grant(r)
	case r.Event.Is(OperationVoid):
		o = d.void(r)
	default:
		o = d.consume(r)
	}
	if r.Event.Is(OperationExpire) && o.Status == Rejected {
		d.setAside(r.Event.HoldID)
	}
	return o
}

// finish is the scope's part of the write, once its records are
// decided: its item, its ledger entries and its notifications (the
// pools' parts are written once for all their members).
func (d *decider) finish(records []Record, outcomes []Outcome) []Write {
	if d.ent.Observed.Unaddressable {
		return nil // no item can exist: nothing to write or confirm
	}
	writes := d.writes(records, outcomes)
	if len(writes) > 0 {
		return append(writes, d.notifications()...)
	}
	if n := d.notifications(); len(n) > 0 {
		return append([]Write{d.entitlementWrite()}, n...)
	}
	return nil
}

// thresholdKey is the notification key of threshold i in this period.
func (d *decider) thresholdKey(i int) string {
	return newNotification(NotifyThresholdReached, d.scope, d.periodStart, &d.percents[i]).Key
}

// rejected notes the period's first LIMIT_EXCEEDED, when notified.
func (d *decider) rejected(r Record, amount Decimal) {
	if d.rules.Notify == nil || !d.rules.Notify.LimitRejected || d.rejection != nil {
		return
	}
	n := newNotification(NotifyLimitRejected, d.scope, d.periodStart, nil)
	a := amount
	n.Amount, n.Limit, n.Used, n.EventID = &a, *d.ent.Limit, d.used, r.DedupKey()
	if d.isPool {
		n.UserID = r.Event.UserID
	}
	d.rejection = &n
}

// notifications are the Puts of what this write records: each threshold
// it crossed and the period's first rejection, unless already recorded.
// A Put fails if the same notification was recorded meanwhile, and the
// decision is taken again knowing it.
func (d *decider) notifications() []Write {
	var notes []Notification
	for i := range d.levels {
		c, ok := d.crossed[i]
		if !ok {
			continue
		}
		p := d.percents[i]
		n := newNotification(NotifyThresholdReached, d.scope, d.periodStart, &p)
		n.Limit, n.Used, n.EventID = *d.ent.Limit, c.used, c.event
		if d.isPool {
			n.UserID = c.member
		}
		notes = append(notes, n)
	}
	if d.rejection != nil {
		notes = append(notes, *d.rejection)
	}
	if o := d.overageStart; o != nil {
		n := newNotification(NotifyOverageStarted, d.scope, d.periodStart, nil)
		over := o.overage
		n.Limit, n.Used, n.OverageUsed, n.EventID = *d.ent.Limit, o.used, &over, o.event
		if d.isPool {
			n.UserID = o.member
		}
		notes = append(notes, n)
	}
	var writes []Write
	for i := range notes {
		n := &notes[i]
		if d.notified[n.Key] {
			continue
		}
		if d.ent.ResetPeriod != ResetNone {
			n.KeepUntil = NextPeriodStart(d.ent.ResetPeriod, d.ent.ResetAnchor, d.rules.Now)
		}
		writes = append(writes, Write{Target: NotificationItem(n.Key), Action: Put, Conds: []Cond{{Op: OpNotExists}}, Notice: n})
	}
	return writes
}

// unusable is the rejection of every record when the entitlement cannot
// be used at all.
func (d *decider) unusable() error {
	switch {
	case d.ent.Observed.Unaddressable:
		return reject(ReasonEntitlementNotFound, "", "userId and entitlementKey are too long to name an entitlement item")
	case !d.ent.Exists:
		return reject(ReasonEntitlementNotFound, "", "no entitlement for this userId and entitlementKey")
	case d.ent.Malformed != nil:
		return reject(ReasonInvalidEntitlement, "", "the stored entitlement cannot be used: %v", d.ent.Malformed)
	}
	return nil
}

// consume decides one amount against the running usage, and, for a
// member of a pool, against the pool's too: it must fit both, or it is
// rejected by the first that refuses (the member's cap first) and
// changes neither.
func (d *decider) consume(r Record) Outcome {
	amount := r.Event.Amount
	draft, err := d.takes(amount)
	if err != nil {
		d.refuse(r, amount, draft, err)
		return Outcome{Status: Rejected, Err: err}
	}
	pool, poolDraft, err := d.poolTakes(r, amount)
	if err != nil {
		// Which limit refused rests on the member's cap having room.
		d.pinAll()
		return Outcome{Status: Rejected, Err: err}
	}
	e := &LedgerEntry{Operation: OperationConsume, Amount: amount, Draws: d.take(r, amount, draft)}
	if pool != nil {
		e.Pool, e.PoolDraws, e.PoolPeriodStart = d.ent.Pool, pool.take(r, amount, poolDraft), pool.periodStart
	}
	if r.Event.Is(OperationReserve) {
		seconds := r.Event.HoldSeconds
		if seconds == 0 {
			seconds = DefaultHoldSeconds
		}
		e.Operation, e.HoldState = OperationReserve, HoldActive
		e.HoldExpiresAt = d.rules.Now.Add(time.Duration(seconds) * time.Second).UTC()
	}
	return d.record(r, e)
}

// draft is how a consume would draw: by adding to used (spill false),
// or bucket by bucket beyond the allowance's room.
type draft struct {
	spill bool
	draws []Draw
}

// takes decides whether amount fits and how it would draw, changing no
// balance; it notes what the answer rests on.
func (d *decider) takes(amount Decimal) (draft, error) {
	if next := d.used.Add(amount); !next.FitsDynamoDB() {
		return draft{}, reject(ReasonInvalidAmount, "amount",
			"adding %s to %s would exceed DynamoDB's 38-digit precision", amount, d.used)
	}
	if d.ent.Limit == nil || amount.Cmp(d.allowanceRoom()) <= 0 {
		return draft{}, nil
	}
	draws, err := d.spill(amount)
	return draft{spill: true, draws: draws}, err
}

// refuse notes what a consume's rejection rests on: used exactly, and
// beyond the allowance every bucket; the period's first LIMIT_EXCEEDED
// is notified.
func (d *decider) refuse(r Record, amount Decimal, f draft, err error) {
	d.dependsOnUsed = true
	if !f.spill {
		return // only the 38 digits of used plus amount
	}
	d.pinAll()
	if errors.Is(err, ErrLimitExceeded) {
		d.rejected(r, amount)
	}
}

// pinAll makes the write rest on every balance exactly.
func (d *decider) pinAll() {
	d.dependsOnUsed, d.dependsOnGrants = true, true
	for _, g := range d.grants {
		d.use(g.ID).exact = true
	}
}

// take applies a draft takes approved, and returns its draws (nil when
// it only added to used).
func (d *decider) take(r Record, amount Decimal, f draft) []Draw {
	before := d.used
	if !f.spill {
		d.used = d.used.Add(amount)
		d.delta = d.delta.Add(amount)
		d.cross(r, before, d.used)
		return nil
	}
	overage := d.overageUsed
	for _, dr := range f.draws {
		d.apply(dr, false)
	}
	// That used plus amount fits 38 digits rested on used as read,
	// which a draw beyond the allowance otherwise only bounds.
	d.dependsOnUsed = true
	if n := d.rules.Notify; n != nil && n.OverageStarted && overage.IsZero() && d.overageUsed.Sign() > 0 && d.overageStart == nil {
		d.overageStart = &crossing{event: r.DedupKey(), member: r.Event.UserID, used: d.used, overage: d.overageUsed}
		d.overageExact = true // it rests on the overage having been 0
	}
	d.cross(r, before, d.used)
	return f.draws
}

// cross notes the thresholds a consume took used across.
func (d *decider) cross(r Record, from, to Decimal) {
	for i, level := range d.levels {
		if _, ok := d.crossed[i]; !ok && !d.notified[d.thresholdKey(i)] && from.Cmp(level) < 0 && to.Cmp(level) >= 0 {
			d.crossed[i] = crossing{event: r.DedupKey(), member: r.Event.UserID, used: to}
		}
	}
}

// limitExceeded is the rejection of a consume that does not fit: the
// allowance alone, or everything beyond it too.
func (d *decider) limitExceeded(amount Decimal) error {
	beyond := d.beyondAllowance()
	if beyond.IsZero() && len(d.grants) == 0 && d.ent.OverageLimit == nil {
		return reject(ReasonLimitExceeded, "amount", "using %s more would exceed the limit of %s (used %s)", amount, *d.ent.Limit, d.used)
	}
	return reject(ReasonLimitExceeded, "amount", "using %s more would exceed what is available: %s (the allowance's %s left of %s, and %s in grants and overage)",
		amount, d.allowanceRoom().Add(beyond), d.allowanceRoom(), *d.ent.Limit, beyond)
}

// record adds an applied entry of the group.
func (d *decider) record(r Record, e *LedgerEntry) Outcome {
	e.DedupKey, e.KeySource, e.MessageID, e.Metadata = r.DedupKey(), r.keySource(), r.MessageID, r.Event.Metadata
	e.PeriodStart = d.periodStart
	d.group[e.DedupKey] = e
	d.order = append(d.order, e.DedupKey)
	return Outcome{Status: Applied, Entry: e}
}

// refund decides giving back (part of) a consume of the scope.
func (d *decider) refund(r Record) Outcome {
	key := r.Event.RefundOf
	entry, t, o := d.targetFor(r, key, OperationConsume, ReasonRefundTargetNotFound, "refundOf", "applied consume")
	switch {
	case o != nil:
		return *o
	case d.ent.ResetPeriod != ResetNone && entry.PeriodStart != d.periodStart:
		return Outcome{Status: Rejected, Err: reject(ReasonPeriodEnded, "refundOf",
			"the consume counted in the period from %s, which has ended (the current one began %s)", entry.PeriodStart, d.periodStart)}
	}
	remaining := entry.Amount.Sub(entry.Refunded)
	if t != nil {
		remaining = remaining.Sub(t.refund)
	}
	amount := r.Event.Amount
	if amount.IsZero() {
		amount = remaining
	}
	if amount.Sign() <= 0 || amount.Cmp(remaining) > 0 {
		if t != nil {
			t.pinned = true
		}
		return Outcome{Status: Rejected, Err: reject(ReasonRefundExceedsApplied, "amount",
			"%s of consume %q remains refundable (amount %s, refunded %s); asked for %s", remaining, key, entry.Amount, entry.Amount.Sub(remaining), amount)}
	}
	if !amount.FitsDynamoDB() {
		if t != nil {
			t.pinned = true
		}
		return Outcome{Status: Rejected, Err: reject(ReasonInvalidAmount, "amount",
			"all that remains refundable of consume %q, %s, has more than DynamoDB's 38-digit precision", key, amount)}
	}
	if refunded := entry.Amount.Sub(remaining).Add(amount); !refunded.FitsDynamoDB() {
		if t != nil {
			t.pinned = true
		}
		return Outcome{Status: Rejected, Err: reject(ReasonInvalidAmount, "amount",
			"the consume's refunded total would be %s, beyond DynamoDB's 38-digit precision", refunded)}
	}
	back, err := d.givesBack(*entry, entry.Amount.Sub(remaining), amount, amount, true)
	if t != nil && (err != nil || len(entry.Draws) > 1 || len(entry.PoolDraws) > 1) {
		// Which buckets a refund gives back to rests on what was given
		// back before, exactly: another refund of the consume meanwhile
		// would make it give back to buckets already given back to.
		t.pinned = true
	}
	if err != nil {
		return Outcome{Status: Rejected, Err: err}
	}
	returns, poolReturns := back.apply(d)
	if t != nil {
		t.refund = t.refund.Add(amount)
	} else {
		entry.Refunded = entry.Refunded.Add(amount) // a consume of this group
	}
	e := &LedgerEntry{Operation: OperationRefund, Amount: amount, RefundOf: key, Draws: returns, Pool: entry.Pool, PoolDraws: poolReturns}
	if back.pool != nil {
		e.PoolPeriodStart = back.pool.periodStart
	}
	applied := d.record(r, e)
	applied.Returned, applied.PoolReturned = returns, poolReturns
	return applied
}

// checkGiveBack: used lowered by amount must still be a DynamoDB number,
// as for consumes; a rejection for it rests on the observed used.
func (d *decider) checkGiveBack(amount Decimal) error {
	next := d.used.Sub(amount)
	if next.Sign() < 0 || next.FitsDynamoDB() {
		return nil
	}
	d.dependsOnUsed = true
	return reject(ReasonInvalidAmount, "amount", "giving back %s from %s would exceed DynamoDB's 38-digit precision", amount, d.used)
}

// giveBack lowers the running usage (a refund, or the unused part of a
// hold), never below 0 should access-service have lowered used by hand;
// used is then written exactly. checkGiveBack has passed.
func (d *decider) giveBack(amount Decimal) {
	d.refunded = true
	d.given, d.givings = d.given.Add(amount), d.givings+1
	d.used = d.used.Sub(amount)
	if d.used.Sign() < 0 {
		d.used, d.clamped = Decimal{}, true
	}
}

// targetOf finds a refund's target: a consume applied earlier in the
// group (t nil), else the stored entry (tracked in t), else nil.
func (d *decider) targetOf(key string) (*LedgerEntry, *target) {
	if e, ok := d.group[key]; ok {
		return e, nil
	}
	t := d.targets[key]
	if t == nil {
		e, ok := d.known[key]
		t = &target{entry: e, absent: !ok}
		d.targets[key] = t
		d.targetOrder = append(d.targetOrder, key)
	}
	t.relied = true
	if t.absent {
		return nil, t
	}
	return &t.entry, t
}

// targetFor finds the stored entry a refund or a settlement names, or
// the outcome that rests on it, in the documented order of reasons: not
// applied (RETRY while a queued message may still see it arrive, then
// notFound), unreadable (INVALID_LEDGER_ENTRY), not of kind (notFound).
func (d *decider) targetFor(r Record, key string, kind Operation, notFound Reason, field, missing string) (*LedgerEntry, *target, *Outcome) {
	entry, t := d.targetOf(key)
	var o Outcome
	switch {
	case entry == nil && d.waiting(r):
		o = Outcome{Status: Retry, Err: ErrTargetPending}
	case entry == nil:
		o = Outcome{Status: Rejected, Err: reject(notFound, field, "no %s %q in this scope", missing, key)}
	case entry.Unreadable != nil:
		o = Outcome{Status: Rejected, Err: entry.Unreadable.rejection(key)}
	case !entry.Is(kind):
		o = Outcome{Status: Rejected, Err: reject(notFound, field, "%q is a %s, not a %s", key, operationName(entry.Operation), kind)}
	default:
		return entry, t, nil
	}
	return entry, t, &o
}

// waiting: a queued refund may still see its target arrive.
func (d *decider) waiting(r Record) bool {
	return d.rules.TargetWait > 0 && !r.SentAt.IsZero() && d.rules.Now.Sub(r.SentAt) < d.rules.TargetWait
}

// writes: the entitlement first (an Update when something changes, else
// a Check of the state the rejections rest on), then the ledger: a Put
// per applied entry, the refunded consumes' updates, and a Check that the
// key is not applied for each rejection that a redelivery of an applied
// event could be mistaken for. An item appears once: Puts win over
// target writes over Checks.
func (d *decider) writes(records []Record, outcomes []Outcome) []Write {
	var ledger []Write
	seen := map[string]bool{}
	for _, key := range d.order {
		seen[key] = true
		ledger = append(ledger, Write{Target: LedgerItem(key), Action: Put, Conds: []Cond{{Op: OpNotExists}}, Entry: d.group[key]})
	}
	for _, key := range d.targetOrder {
		if w, ok := d.targets[key].write(key); ok && !seen[key] {
			seen[key] = true
			ledger = append(ledger, w)
		}
	}
	for i, r := range records {
		key := r.DedupKey()
		if seen[key] || !confirmable(outcomes[i]) || noEntry(r.Event) {
			continue
		}
		seen[key] = true
		ledger = append(ledger, Write{Target: LedgerItem(key), Action: Check, Conds: []Cond{{Op: OpNotExists}}})
	}
	if len(ledger) == 0 && !slices.ContainsFunc(outcomes, confirmable) {
		return nil // every record is a duplicate or waits: nothing to write or confirm
	}
	return append([]Write{d.entitlementWrite()}, ledger...)
}

// confirmable: a rejection that a redelivery of an applied event could
// have been mistaken for, so it is confirmed against the ledger. A
// conflict is not: its key is there.
func confirmable(o Outcome) bool {
	return o.Status == Rejected && o.Reason() != ReasonIdempotencyConflict
}

// write is what the group writes to, or checks of, a stored consume it
// refunds: refunded grows by what the group gives back, and may not pass
// the consume's amount; a rejection that rested on refunded pins it.
// Entries never change otherwise, so a refund naming a refund or a
// consume of an ended period rests on nothing that can move.
func (t *target) write(key string) (Write, bool) {
	w := Write{Target: LedgerItem(key)}
	switch {
	case t.absent:
		w.Action, w.Conds = Check, []Cond{{Op: OpNotExists}}
		return w, true
	case t.entry.Unreadable != nil:
		u := t.entry.Unreadable
		w.Conds = []Cond{{Op: OpExists}, Pin(u.Attr, u.Value)}
		return t.deferWrite(w), true
	case t.voided != nil || t.pinnedSet && t.entry.Is(OperationGrant):
		return t.grantWrite(w), true
	case t.settled != nil || t.pinnedSet:
		return t.holdWrite(w), true
	case t.refund.Sign() == 0 && !t.pinned:
		return w, false
	}
	ceiling := t.entry.Amount.Sub(t.refund)
	refunded := Cond{Op: OpLE, Attr: LedgerAttrRefunded, Value: NumberValue(ceiling), OrAbsent: true}
	if t.pinned || !ceiling.FitsDynamoDB() { // a bound DynamoDB cannot hold: the exact value always can
		refunded = pinRefunded(t.entry.Refunded)
	}
	w.Conds = []Cond{{Op: OpExists}, refunded}
	if t.refund.Sign() == 0 {
		w.Action = Check
		return w, true
	}
	w.Action, w.Set = Update, []Assign{{Attr: LedgerAttrRefunded, Value: NumberValue(t.refund), Add: true}}
	return w, true
}

// pinRefunded: refunded is exactly r (absent counts as 0; it never
// shrinks, so "at most 0" is "exactly 0").
func pinRefunded(r Decimal) Cond {
	if r.IsZero() {
		return Cond{Op: OpLE, Attr: LedgerAttrRefunded, Value: NumberValue(r), OrAbsent: true}
	}
	return Cond{Op: OpEquals, Attr: LedgerAttrRefunded, Value: NumberValue(r)}
}

// entitlementWrite states what the decision relied on. Confirming
// rejections rests on everything observed; changing usage rests on the
// configuration (limit, resetPeriod, resetAnchor, overageLimit,
// rolloverMax), the period, and used: exactly when a rejection depended
// on it, a refund lowered it or a consume drew beyond the allowance,
// otherwise only "used is at most limit minus what we add", which
// concurrent increments by other consumers do not disturb. The grants
// and the overage are written exactly, resting on them as observed.
func (d *decider) entitlementWrite() Write {
	if !d.ent.Exists {
		return Write{Target: EntitlementItem, Action: Check, Conds: []Cond{{Op: OpNotExists}}}
	}
	obs := d.ent.Observed
	conds := []Cond{{Op: OpExists}}
	// The pool a member draws from (or that it draws from none) is
	// configuration as well: a decision rests on the membership as stored.
	for _, a := range []string{AttrLimit, AttrResetPeriod, AttrResetAnchor, AttrOverageLimit, AttrRolloverMax, AttrPool} {
		conds = append(conds, Pin(a, obs.Get(a)))
	}
	if d.rules.Notify != nil {
		// Which thresholds a write crosses rests on the list as stored.
		conds = append(conds, Pin(AttrNotifyThresholds, obs.Get(AttrNotifyThresholds)))
	}
	if !d.changed() || d.ent.Malformed != nil {
		for _, a := range []string{AttrUsed, AttrPeriodStart, AttrGrants, AttrGrantsVersion, AttrOverageUsed} {
			conds = append(conds, Pin(a, obs.Get(a)))
		}
		return Write{Target: EntitlementItem, Action: Check, Conds: conds}
	}
	if d.reset || d.ent.ResetPeriod != ResetNone {
		conds = append(conds, Pin(AttrPeriodStart, obs.Get(AttrPeriodStart)))
	}
	conds, set := d.balanceWrites(conds)
	switch {
	case d.reset && d.ent.RolloverMax != nil:
		// What rolls over (or that nothing does) rests on the ended
		// period's used exactly.
		conds = append(conds, Pin(AttrUsed, obs.Get(AttrUsed)))
		set = append(set, Assign{Attr: AttrUsed, Value: NumberValue(d.used)}, Assign{Attr: AttrPeriodStart, Value: StringValue(d.periodStart)})
	case d.reset:
		// used restarts from the new value; it only has to still be a
		// number (or absent), or the entitlement is malformed.
		conds = append(conds, Cond{Op: OpKind, Attr: AttrUsed, Kind: KindNumber, OrAbsent: true})
		set = append(set, Assign{Attr: AttrUsed, Value: NumberValue(d.used)}, Assign{Attr: AttrPeriodStart, Value: StringValue(d.periodStart)})
	case !d.usageChanged():
		switch {
		case d.dependsOnUsed:
			conds = append(conds, Pin(AttrUsed, obs.Get(AttrUsed)))
		case d.passedAllowance:
			conds = append(conds, Cond{Op: OpGE, Attr: AttrUsed, Value: NumberValue(*d.ent.Limit)})
		}
	case d.composesGivingBack():
		// Giving back composes with other writers (a member's pool is
		// written by all its members): used goes down by what was given,
		// resting only on there being at least that much to give back.
		conds = append(conds, Cond{Op: OpGE, Attr: AttrUsed, Value: NumberValue(d.given)})
		set = append(set, Assign{Attr: AttrUsed, Value: NumberValue(Decimal{}.Sub(d.given)), Add: true})
	default:
		used, assign := d.usedCond()
		if used.Op != OpEquals && used.Op != OpAbsent {
			notCrossing, ok := d.notCrossing()
			if !ok {
				used = Pin(AttrUsed, obs.Get(AttrUsed))
			}
			conds = append(conds, notCrossing...)
		}
		conds, set = append(conds, used), append(set, assign)
	}
	return Write{Target: EntitlementItem, Action: Update, Conds: d.wellFormed(conds), Set: set}
}

// wellFormed adds what a write rests on by the entitlement being
// interpretable at all: each attribute the decision read and the write
// does not already rest on must still be of a kind it reads (periodStart,
// which only a reset writes, exactly), so that a value access-service
// wrote odd meanwhile refuses the write, and the decision taken again on
// it rejects INVALID_ENTITLEMENT. The grants, whose entries a kind does
// not describe, rest on their value as read: exactly, or, when the write
// draws from some of them, each other grant exactly.
func (d *decider) wellFormed(conds []Cond) []Cond {
	obs := d.ent.Observed
	conds = d.grantsAsRead(conds)
	for _, k := range []struct {
		attr string
		kind Kind
	}{{AttrUsed, KindNumber}, {AttrOverageUsed, KindNumber}, {AttrGrants, KindMap}, {AttrPeriodStart, KindString}} {
		if slices.ContainsFunc(conds, func(c Cond) bool { return c.Attr == k.attr && len(c.Field) == 0 }) {
			continue
		}
		if v := obs.Get(k.attr); v.Kind == KindNull || k.attr == AttrPeriodStart {
			conds = append(conds, Pin(k.attr, v))
		} else {
			conds = append(conds, Cond{Op: OpKind, Attr: k.attr, Kind: k.kind, OrAbsent: true})
		}
	}
	return conds
}

// grantsAsRead pins the grants a write does not already rest on as a
// whole: the attribute exactly when the write leaves them alone, else
// each grant it neither draws from nor finds gone, exactly.
func (d *decider) grantsAsRead(conds []Cond) []Cond {
	if slices.ContainsFunc(conds, func(c Cond) bool { return c.Attr == AttrGrants && len(c.Field) == 0 }) {
		return conds
	}
	grants := d.ent.Observed.Get(AttrGrants)
	touched := map[string]bool{}
	for _, c := range conds {
		if c.Attr == AttrGrants && len(c.Field) > 0 {
			touched[c.Field[0]] = true
		}
	}
	if len(touched) == 0 || grants.Kind != KindMap {
		return append(conds, Pin(AttrGrants, grants))
	}
	for _, id := range slices.Sorted(maps.Keys(grants.Fields)) {
		if !touched[id] {
			conds = append(conds, Cond{Op: OpEquals, Attr: AttrGrants, Field: []string{id}, Value: grants.Fields[id]})
		}
	}
	return conds
}

// composesGivingBack: the group's one change to used is one give-back
// (never below 0), no decision rested on used exactly: it composes with
// other writers', resting on used being at least what it returns. With
// more than one change, a running total the store never computes could
// need more than 38 digits where one at a time would reject, so those
// groups write used exactly.
func (d *decider) composesGivingBack() bool {
	return d.refunded && d.givings == 1 && d.delta.IsZero() && !d.clamped && !d.spilled && !d.passedAllowance &&
		!d.dependsOnUsed && len(d.crossed) == 0 && d.given.FitsDynamoDB()
}

// usageChanged: the group changes used; changed: anything on the item.
func (d *decider) usageChanged() bool { return d.delta.Sign() > 0 || d.refunded || d.spilled }
func (d *decider) changed() bool {
	return d.usageChanged() || d.structural > 0 || d.grantsDrawn() || d.overageDrawn.Sign() > 0 || d.overageExact
}

// balanceWrites adds what the group writes to, or rests on, of the
// grants and the overage (at a reset, the overage only has to be a
// number to start over; drawing from it composes with other consumers,
// as increments of used do).
func (d *decider) balanceWrites(conds []Cond) ([]Cond, []Assign) {
	conds, set := d.grantWrites(conds, nil)
	obs := d.ent.Observed
	overage := obs.Get(AttrOverageUsed)
	switch {
	case d.reset && (d.overageDrawn.Sign() > 0 || d.overageExact || overage.Present() || d.ent.OverageLimit != nil):
		// With an overage limit, another process may have drawn from the
		// overage since this item was observed without overageUsed: the
		// new period's starts over whatever it holds (the write rests on
		// the limit as read).
		conds = append(conds, Cond{Op: OpKind, Attr: AttrOverageUsed, Kind: KindNumber, OrAbsent: true})
		set = append(set, Assign{Attr: AttrOverageUsed, Value: NumberValue(d.overageUsed)})
	case d.overageExact || d.overageDrawn.Sign() > 0 && !d.ent.OverageLimit.Sub(d.overageDrawn).FitsDynamoDB():
		conds = append(conds, Pin(AttrOverageUsed, overage))
		set = append(set, Assign{Attr: AttrOverageUsed, Value: NumberValue(d.overageUsed)})
	case d.overageDrawn.Sign() > 0:
		ceiling := d.ent.OverageLimit.Sub(d.overageDrawn)
		conds = append(conds, Cond{Op: OpLE, Attr: AttrOverageUsed, Value: NumberValue(ceiling), OrAbsent: true})
		set = append(set, Assign{Attr: AttrOverageUsed, Value: NumberValue(d.overageDrawn), Add: true})
		if d.dependsOnUsed {
			conds = append(conds, Pin(AttrOverageUsed, overage))
		}
	case d.dependsOnUsed:
		conds = append(conds, Pin(AttrOverageUsed, overage))
	}
	return conds, set
}

// notCrossing: an increment that did not see itself cross a threshold
// must provably not cross it, whatever used really is: still below it
// after the increment, or at or above it already. Thresholds recorded
// this period need nothing. Contention around a crossing is rare, so the
// crossing write itself pins used exactly instead. ok is false when a
// bound cannot be written as a DynamoDB number (a level of more than 38
// digits): then only used exactly as observed proves it.
func (d *decider) notCrossing() (conds []Cond, ok bool) {
	for i, level := range d.levels {
		if d.notified[d.thresholdKey(i)] {
			continue
		}
		c := Cond{Op: OpGE, Attr: AttrUsed, Value: NumberValue(level)}
		if d.ent.Used.Cmp(level) < 0 {
			below := level.Sub(d.delta)
			c = Cond{Op: OpLT, Attr: AttrUsed, Value: NumberValue(below), OrAbsent: below.Sign() > 0}
		}
		if !c.Value.Num.FitsDynamoDB() {
			return nil, false
		}
		conds = append(conds, c)
	}
	return conds, true
}

// usedCond is the precondition on used and its new value without reset.
func (d *decider) usedCond() (Cond, Assign) {
	pinned := Pin(AttrUsed, d.ent.Observed.Get(AttrUsed))
	exact := Assign{Attr: AttrUsed, Value: NumberValue(d.used)}
	if d.refunded || d.spilled || d.passedAllowance || !d.delta.FitsDynamoDB() || len(d.crossed) > 0 {
		// A refund's "never below 0", a draw beyond the allowance (which
		// rests on how much of it is left), a delta wider than 38 digits
		// while each running total fits, or a notification that must know
		// the exact value it crossed from: write the new value itself,
		// which holds only for exactly the observed used.
		return pinned, exact
	}
	add := Assign{Attr: AttrUsed, Value: NumberValue(d.delta), Add: true}
	switch {
	case d.dependsOnUsed:
		return pinned, add
	case d.ent.Limit == nil:
		return Cond{Op: OpKind, Attr: AttrUsed, Kind: KindNumber, OrAbsent: true}, add
	}
	ceiling := d.ent.Limit.Sub(d.delta)
	if !ceiling.FitsDynamoDB() {
		// The ceiling cannot be written as a condition value; the exact
		// observed value always can.
		return pinned, add
	}
	return Cond{Op: OpLE, Attr: AttrUsed, Value: NumberValue(ceiling), OrAbsent: ceiling.Sign() >= 0}, add
}

// duplicateOf compares a record with the entry first applied under its
// key: the same request again is a harmless redelivery; another one
// reusing the key must not pass silently.
func duplicateOf(e LedgerEntry, r Record) Outcome {
	o := DuplicateOutcome(e.Amount, r.Event.Amount)
	op := r.Event.Operation
	if op == "" {
		op = OperationConsume
	}
	switch {
	case !e.Is(op):
		o = Outcome{Status: Rejected, Err: reject(ReasonIdempotencyConflict, "idempotencyKey",
			"was already applied to a %s, this is a %s", operationName(e.Operation), op)}
	case op == OperationRefund && e.RefundOf != r.Event.RefundOf:
		o = Outcome{Status: Rejected, Err: reject(ReasonIdempotencyConflict, "idempotencyKey",
			"was already applied to a refund of %q, this one refunds %q", e.RefundOf, r.Event.RefundOf)}
	case op == OperationRefund && r.Event.Amount.IsZero():
		o = Outcome{Status: Duplicate} // "all that remained", as the original asked
	case op == OperationGrant && o.Status == Duplicate && !sameGrantTerms(e, r.Event):
		o = Outcome{Status: Rejected, Err: reject(ReasonIdempotencyConflict, "grantId",
			"was already granted with another expiry or priority (expiresAt %s, priority %d)", expiryText(e.GrantExpiresAt), e.Priority)}
	}
	o.Original = &e
	return o
}

func operationName(op Operation) Operation {
	if op == "" {
		return OperationConsume
	}
	return op
}

// DuplicateOutcome compares a repeated event with the amount first
// applied under its key. The same amount is a harmless redelivery; a
// different amount means the producer reused a key for another event,
// which must not pass silently.
func DuplicateOutcome(appliedAmount, amount Decimal) Outcome {
	if appliedAmount.Cmp(amount) == 0 {
		return Outcome{Status: Duplicate}
	}
	return Outcome{Status: Rejected, Err: reject(ReasonIdempotencyConflict, "idempotencyKey",
		"was already applied with amount %s, this event has amount %s", appliedAmount, amount)}
}
