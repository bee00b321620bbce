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
}

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

// Plan is the decision for a group of records of one scope against one
// observed state: which are applied, which are rejected, and the write
// that makes it so. The storage adapter turns it into one conditional
// write whose condition holds exactly when the observed state still holds
// in every respect the decision depended on.
type Plan struct {
	// Outcomes has one entry per record, in order: Applied, Duplicate (an
	// earlier record of the same group has the same key), or Rejected.
	Outcomes []Outcome
	// Reset is true when a new period starts: used restarts from 0 and
	// periodStart becomes PeriodStart.
	Reset       bool
	PeriodStart time.Time
	// Delta is the sum of the applied amounts.
	Delta Decimal
	// NewUsed is used after the write, assuming the observed used.
	NewUsed Decimal
	// DependsOnUsed is true when a record was rejected for the limit: the
	// decision then holds only if used is exactly the observed value. When
	// every record fits, any used <= UsedCeiling gives the same outcomes,
	// which lets racing consumers add to the same item without conflicts.
	DependsOnUsed bool
	// UsedCeiling is limit - Delta: the largest used for which the applied
	// records all fit. Meaningful only when the entitlement has a limit,
	// Delta > 0 and !Reset.
	UsedCeiling Decimal
}

// Applied reports whether the plan applies at least one record.
func (p Plan) Applied() bool { return p.Delta.Sign() > 0 }

// Decide is the rule a storage adapter applies under its conditional
// write: given the observed state and the pending records of one scope,
// in order, what happens to each. PlanUsage, with the processing time
// bound, is the rule in production.
type Decide func(Entitlement, []Record) Plan

// PlanUsage decides a group of records of one scope, in order, exactly as
// applying them one by one would: first the lazy reset, then each amount
// against the limit. A record that does not fit is rejected and later,
// smaller ones may still fit. A record whose dedup key an earlier applied
// record of the group already carries is a duplicate (or a conflict, if
// the amounts differ).
func PlanUsage(ent Entitlement, records []Record, now time.Time) Plan {
	p := Plan{Outcomes: make([]Outcome, len(records))}
	if !ent.Exists || ent.Malformed != nil {
		err := error(reject(ReasonEntitlementNotFound, "", "no entitlement for this userId and entitlementKey"))
		if ent.Exists {
			err = reject(ReasonInvalidEntitlement, "", "the stored entitlement cannot be used: %v", ent.Malformed)
		}
		for i := range p.Outcomes {
			p.Outcomes[i] = Outcome{Status: Rejected, Err: err}
		}
		return p
	}

	if ent.ResetPeriod == "" {
		ent.ResetPeriod = ResetNone // the zero Entitlement is unlimited and never resets
	}
	used := ent.Used
	if NeedsReset(ent.ResetPeriod, ent.ResetAnchor, ent.PeriodStart, now) {
		p.Reset = true
		p.PeriodStart = PeriodStart(ent.ResetPeriod, ent.ResetAnchor, now)
		used = Decimal{}
	}
	applied := make(map[string]Decimal, len(records))
	for i, r := range records {
		key := r.DedupKey()
		if prev, ok := applied[key]; ok {
			p.Outcomes[i] = DuplicateOutcome(prev, r.Event.Amount)
			continue
		}
		next := used.Add(r.Event.Amount)
		if !next.FitsDynamoDB() {
			p.Outcomes[i] = Outcome{Status: Rejected, Err: reject(ReasonInvalidAmount, "amount",
				"adding %s to %s would exceed DynamoDB's 38-digit precision", r.Event.Amount, used)}
			continue
		}
		if ent.Limit != nil && next.Cmp(*ent.Limit) > 0 {
			p.DependsOnUsed = true
			p.Outcomes[i] = Outcome{Status: Rejected, Err: reject(ReasonLimitExceeded, "amount",
				"using %s more would exceed the limit of %s (used %s)", r.Event.Amount, *ent.Limit, used)}
			continue
		}
		used = next
		applied[key] = r.Event.Amount
		p.Delta = p.Delta.Add(r.Event.Amount)
		p.Outcomes[i] = Outcome{Status: Applied}
	}
	p.NewUsed = used
	if ent.Limit != nil {
		p.UsedCeiling = ent.Limit.Sub(p.Delta)
		if !p.UsedCeiling.FitsDynamoDB() {
			// The ceiling cannot be written as a condition value; fall
			// back to the exact observed value, which always fits.
			p.DependsOnUsed = true
		}
	}
	return p
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
