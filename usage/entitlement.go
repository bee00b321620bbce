package usage

import (
	"time"
)

// Entitlement is the part of access-service's item that metering reads:
// the state as observed at one moment. Attributes it does not list are
// never read or written.
type Entitlement struct {
	// Exists is false when no item was found.
	Exists bool
	// Limit is nil when the entitlement is unlimited (usage is still counted).
	Limit       *Decimal
	Used        Decimal // 0 when the attribute is absent
	ResetPeriod ResetPeriod
	ResetAnchor *time.Time
	PeriodStart *time.Time
	// Malformed is set when the stored item cannot be interpreted (a
	// non-numeric limit, an unknown resetPeriod...). Events against it are
	// rejected INVALID_ENTITLEMENT rather than guessed at.
	Malformed error
	// Observed is the item as read: the exact values a decision pins in
	// its preconditions (see ParseEntitlement).
	Observed Item
}

// DefaultDedupRetention is how long applied keys are remembered unless
// configured (DEDUP_RETENTION): 14 days, the longest SQS keeps a message
// and the dead-letter queue's retention in the Terraform module, so that
// any message that can still be redriven is still deduplicated.
const DefaultDedupRetention = 14 * 24 * time.Hour

// Record is an event as received: the event plus the queue's message ID,
// which is the dedup key when the producer gave no idempotency key.
type Record struct {
	Event     Event
	MessageID string
}

// DedupKey is the key under which the event is applied at most once in
// its scope.
func (r Record) DedupKey() string {
	if r.Event.IdempotencyKey != "" {
		return r.Event.IdempotencyKey
	}
	return r.MessageID
}

func (r Record) keySource() string {
	if r.Event.IdempotencyKey != "" {
		return "idempotencyKey"
	}
	return "messageId"
}

// PlanUsage decides a group of consume records of one scope, in order,
// exactly as applying them one by one would: first the lazy reset, then
// each amount against the limit. A record that does not fit is rejected
// and later, smaller ones may still fit. A record whose key is already
// applied (in the ledger, or by an earlier record of the group) is a
// duplicate, or a conflict if the amounts differ; that takes precedence
// over any rejection, which is why rejections are confirmed against the
// ledger too.
func PlanUsage(s State, records []Record, now time.Time) Plan {
	c := consume{ent: s.Entitlement, known: s.Applied, now: now}
	return c.plan(records)
}

// consume is the state of one PlanUsage call.
type consume struct {
	ent   Entitlement
	known map[string]LedgerEntry
	now   time.Time

	reset         bool
	periodStart   time.Time // the new period's start, when reset
	used          Decimal   // running usage, assuming the observed used
	delta         Decimal   // sum of the applied amounts
	dependsOnUsed bool      // a rejection rested on the observed used
}

func (c *consume) plan(records []Record) Plan {
	p := Plan{Outcomes: make([]Outcome, len(records))}
	unusable := c.unusable()
	if unusable == nil {
		if c.ent.ResetPeriod == "" {
			c.ent.ResetPeriod = ResetNone // the zero Entitlement is unlimited and never resets
		}
		c.used = c.ent.Used
		if NeedsReset(c.ent.ResetPeriod, c.ent.ResetAnchor, c.ent.PeriodStart, c.now) {
			c.reset = true
			c.periodStart = PeriodStart(c.ent.ResetPeriod, c.ent.ResetAnchor, c.now)
			c.used = Decimal{}
		}
	}
	applied := make(map[string]Decimal, len(records))
	for i, r := range records {
		key := r.DedupKey()
		if e, ok := c.known[key]; ok {
			p.Outcomes[i] = DuplicateOutcome(e.Amount, r.Event.Amount)
			continue
		}
		if prev, ok := applied[key]; ok {
			p.Outcomes[i] = DuplicateOutcome(prev, r.Event.Amount)
			continue
		}
		if unusable != nil {
			p.Outcomes[i] = Outcome{Status: Rejected, Err: unusable}
			continue
		}
		p.Outcomes[i] = c.add(r.Event.Amount)
		if p.Outcomes[i].Status == Applied {
			applied[key] = r.Event.Amount
		}
	}
	if c.ent.Observed.Unaddressable {
		return p // no item can exist: nothing to write or confirm
	}
	p.Writes = c.writes(records, p.Outcomes)
	return p
}

// unusable is the rejection of every record when the entitlement cannot
// be consumed from at all.
func (c *consume) unusable() error {
	switch {
	case c.ent.Observed.Unaddressable:
		return reject(ReasonEntitlementNotFound, "", "userId and entitlementKey are too long to name an entitlement item")
	case !c.ent.Exists:
		return reject(ReasonEntitlementNotFound, "", "no entitlement for this userId and entitlementKey")
	case c.ent.Malformed != nil:
		return reject(ReasonInvalidEntitlement, "", "the stored entitlement cannot be used: %v", c.ent.Malformed)
	}
	return nil
}

// add decides one amount against the running usage.
func (c *consume) add(amount Decimal) Outcome {
	next := c.used.Add(amount)
	if !next.FitsDynamoDB() {
		c.dependsOnUsed = true
		return Outcome{Status: Rejected, Err: reject(ReasonInvalidAmount, "amount",
			"adding %s to %s would exceed DynamoDB's 38-digit precision", amount, c.used)}
	}
	if c.ent.Limit != nil && next.Cmp(*c.ent.Limit) > 0 {
		c.dependsOnUsed = true
		return Outcome{Status: Rejected, Err: reject(ReasonLimitExceeded, "amount",
			"using %s more would exceed the limit of %s (used %s)", amount, *c.ent.Limit, c.used)}
	}
	c.used = next
	c.delta = c.delta.Add(amount)
	return Outcome{Status: Applied}
}

// writes: the entitlement first (an Update when something is applied,
// else a Check of the state the rejections rest on), then one ledger item
// per distinct dedup key: a Put for an applied record, a Check that the
// key is not applied for a rejected one. Puts come first, so that a key
// applied and also rejected in the group gets the Put (an item may appear
// only once in a transaction).
func (c *consume) writes(records []Record, outcomes []Outcome) []Write {
	var ledger []Write
	seen := map[string]bool{}
	for pass := 0; pass < 2; pass++ {
		for i, r := range records {
			o, key := outcomes[i], r.DedupKey()
			put := o.Status == Applied
			if seen[key] || (pass == 0) != put || o.Status != Applied && !confirmable(o) {
				continue
			}
			seen[key] = true
			w := Write{Target: LedgerItem(key), Action: Check, Conds: []Cond{{Op: OpNotExists}}}
			if put {
				w.Action, w.Entry = Put, c.entry(r)
			}
			ledger = append(ledger, w)
		}
	}
	if len(ledger) == 0 {
		return nil // every record is a duplicate: nothing to write or confirm
	}
	return append([]Write{c.entitlementWrite()}, ledger...)
}

// confirmable: a rejection that a redelivery of an applied event could
// have been mistaken for, so it is confirmed against the ledger. A
// conflict with an earlier record of the group is not: its key is there.
func confirmable(o Outcome) bool {
	return o.Status == Rejected && o.Reason() != ReasonIdempotencyConflict
}

func (c *consume) entry(r Record) *LedgerEntry {
	e := &LedgerEntry{
		DedupKey: r.DedupKey(), Amount: r.Event.Amount, KeySource: r.keySource(),
		MessageID: r.MessageID, Metadata: r.Event.Metadata,
	}
	if c.reset {
		e.PeriodStart = FormatInstant(c.periodStart)
	} else if v := c.ent.Observed.Get(AttrPeriodStart); v.Kind == KindString {
		e.PeriodStart = v.Str
	}
	return e
}

// entitlementWrite states what the decision relied on. Confirming
// rejections rests on everything observed; applying rests on the
// configuration (limit, resetPeriod, resetAnchor), the period, and used:
// exactly when a rejection depended on it, otherwise only "used is at most
// limit minus what we add", which concurrent increments by other
// consumers do not disturb.
func (c *consume) entitlementWrite() Write {
	if !c.ent.Exists {
		return Write{Target: EntitlementItem, Action: Check, Conds: []Cond{{Op: OpNotExists}}}
	}
	obs := c.ent.Observed
	conds := []Cond{{Op: OpExists}, Pin(AttrLimit, obs.Get(AttrLimit)),
		Pin(AttrResetPeriod, obs.Get(AttrResetPeriod)), Pin(AttrResetAnchor, obs.Get(AttrResetAnchor))}
	if c.delta.Sign() <= 0 || c.ent.Malformed != nil {
		conds = append(conds, Pin(AttrUsed, obs.Get(AttrUsed)), Pin(AttrPeriodStart, obs.Get(AttrPeriodStart)))
		return Write{Target: EntitlementItem, Action: Check, Conds: conds}
	}
	if c.reset || c.ent.ResetPeriod != ResetNone {
		conds = append(conds, Pin(AttrPeriodStart, obs.Get(AttrPeriodStart)))
	}
	if c.reset {
		// used restarts from the new value; it only has to still be a
		// number (or absent), or the entitlement is malformed.
		conds = append(conds, Cond{Op: OpType, Attr: AttrUsed, Type: "N", OrAbsent: true})
		return Write{Target: EntitlementItem, Action: Update, Conds: conds, Set: []Assign{
			{Attr: AttrUsed, Value: NumberValue(c.used)},
			{Attr: AttrPeriodStart, Value: StringValue(FormatInstant(c.periodStart))},
		}}
	}
	used, set := c.usedCond()
	return Write{Target: EntitlementItem, Action: Update, Conds: append(conds, used), Set: []Assign{set}}
}

// usedCond is the precondition on used and its new value for an
// increment without reset.
func (c *consume) usedCond() (Cond, Assign) {
	pinned := Pin(AttrUsed, c.ent.Observed.Get(AttrUsed))
	exact := Assign{Attr: AttrUsed, Value: NumberValue(c.used)}
	if !c.delta.FitsDynamoDB() {
		// Each running total fits but their difference does not: write the
		// new value itself, which holds only for exactly the observed used.
		return pinned, exact
	}
	add := Assign{Attr: AttrUsed, Value: NumberValue(c.delta), Add: true}
	switch {
	case c.dependsOnUsed:
		return pinned, add
	case c.ent.Limit == nil:
		return Cond{Op: OpType, Attr: AttrUsed, Type: "N", OrAbsent: true}, add
	}
	ceiling := c.ent.Limit.Sub(c.delta)
	if !ceiling.FitsDynamoDB() {
		// The ceiling cannot be written as a condition value; the exact
		// observed value always can.
		return pinned, add
	}
	return Cond{Op: OpLE, Attr: AttrUsed, Value: NumberValue(ceiling), OrAbsent: ceiling.Sign() >= 0}, add
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
