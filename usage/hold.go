package usage

import (
	"errors"
	"time"
)

// Hold states: a hold is active from its reserve until it settles once,
// committed, released or (by the sweeper, once expired) expired.
const (
	HoldActive    = "active"
	HoldCommitted = "committed"
	HoldReleased  = "released"
	HoldExpired   = "expired"
)

// The ledger attributes a hold's settlement sets or removes. The pending
// ones key the sparse index of work left to do: an active hold is in it,
// by expiry, until it settles.
const (
	LedgerAttrHoldState = "holdState"
	LedgerAttrActual    = "actual"
	LedgerAttrSettledAt = "settledAt"
	LedgerAttrPendingPK = "pendingPk"
	LedgerAttrPendingAt = "pendingAt"
)

// ErrHoldNotExpired is the outcome of the sweeper's expire for a hold
// that is still active and not yet due: nothing happens.
var ErrHoldNotExpired = errors.New("the hold has not expired yet")

// settle decides a commit, a release or the sweeper's expire of a hold:
// it settles once, and gives back what was held but not used, in the
// period it was reserved in (after that period the usage is gone with
// the reset, so only the hold's state changes).
func (d *decider) settle(r Record) Outcome {
	key := r.Event.HoldID
	entry, t, o := d.targetFor(r, key, OperationReserve, ReasonHoldNotFound, "holdId", "hold")
	if o != nil {
		return *o
	}
	current := *entry
	if t != nil && t.settled != nil {
		current = *t.settled
	}
	state, actual := d.settlement(r, current)
	if current.HoldState != HoldActive {
		if t != nil {
			t.pinnedSet = true
		}
		return sameSettlement(r, current, state, actual)
	}
	if r.Event.Is(OperationExpire) && d.rules.Now.Before(current.HoldExpiresAt) {
		return Outcome{Status: Retry, Err: ErrHoldNotExpired}
	}
	if actual.Cmp(current.Amount) > 0 {
		if t != nil {
			t.pinnedSet = true // it rests on the hold being active
		}
		return Outcome{Status: Rejected, Err: reject(ReasonCommitExceedsHold, "amount",
			"the hold %q is for %s, the commit is for %s", key, current.Amount, actual)}
	}
	back, poolBack := current.Amount.Sub(actual), current.Amount.Sub(actual)
	if !d.ent.Exists {
		back = Decimal{} // the usage is gone with the item (not the pool's)
	}
	inPeriod := d.ent.ResetPeriod == ResetNone || current.PeriodStart == d.periodStart
	gb, err := d.givesBack(current, Decimal{}, back, poolBack, inPeriod)
	if err != nil {
		if t != nil {
			t.pinnedSet = true
		}
		return Outcome{Status: Rejected, Err: err}
	}
	returns, poolReturns := gb.apply(d)
	settled := current
	settled.HoldState, settled.Actual, settled.SettledAt = state, &actual, d.rules.Now.UTC()
	if t == nil {
		*entry = settled // reserved by this group: its Put carries the settlement
	} else {
		t.settled = &settled
	}
	return Outcome{Status: Applied, Entry: &settled, Returned: returns, PoolReturned: poolReturns}
}

// settlement is the state and committed amount a request settles to.
func (d *decider) settlement(r Record, hold LedgerEntry) (string, Decimal) {
	switch {
	case r.Event.Is(OperationCommit) && r.Event.AmountGiven:
		return HoldCommitted, r.Event.Amount
	case r.Event.Is(OperationCommit):
		return HoldCommitted, hold.Amount
	case r.Event.Is(OperationExpire):
		return HoldExpired, Decimal{}
	}
	return HoldReleased, Decimal{}
}

// sameSettlement: a settled hold settled again the same way is a
// DUPLICATE with the original decision; any other settlement is
// HOLD_NOT_ACTIVE.
func sameSettlement(r Record, hold LedgerEntry, state string, actual Decimal) Outcome {
	o := Outcome{Original: &hold}
	same := hold.HoldState == state && (state != HoldCommitted || hold.Actual != nil && hold.Actual.Cmp(actual) == 0)
	switch {
	case r.Event.Is(OperationExpire):
		o.Status = Duplicate // settled before it expired: nothing to release
	case same:
		o.Status = Duplicate
	default:
		o.Status = Rejected
		o.Err = reject(ReasonHoldNotActive, "holdId", "the hold %q is %s", hold.DedupKey, hold.HoldState)
	}
	return o
}

// holdWrite is the write of a hold a decision settled, or whose state a
// rejection rested on: the settlement applies only to a hold still
// active, and takes it out of the sparse index of work left to do.
func (t *target) holdWrite(w Write) Write {
	w.Conds = []Cond{{Op: OpExists}, Pin(LedgerAttrHoldState, StringValue(t.entry.HoldState))}
	if t.settled == nil {
		return t.deferWrite(w)
	}
	s := t.settled
	w.Action = Update
	w.Set = []Assign{
		{Attr: LedgerAttrHoldState, Value: StringValue(s.HoldState)},
		{Attr: LedgerAttrActual, Value: NumberValue(*s.Actual)},
		{Attr: LedgerAttrSettledAt, Value: StringValue(s.SettledAt.Format(time.RFC3339Nano))},
		{Attr: LedgerAttrPendingPK, Remove: true},
		{Attr: LedgerAttrPendingAt, Remove: true},
	}
	return w
}

// HoldDeferral is how long the sweeper sets aside an expired hold it
// cannot settle (its entitlement, or its own entry, cannot be read), so
// that such holds never stand in front of holds it can release; it tries
// again after that.
const HoldDeferral = time.Hour

// expiresOrphan: the sweeper expires a hold whose entitlement no longer
// exists; its usage went with the item, so nothing is given back.
func (d *decider) expiresOrphan(r Record) bool {
	return r.Event.Is(OperationExpire) && !d.ent.Exists && !d.ent.Observed.Unaddressable
}

// setAside moves an expired hold the sweeper could not settle later in
// the pending index, resting on what the rejection rested on.
func (d *decider) setAside(key string) {
	if _, inGroup := d.group[key]; inGroup {
		return
	}
	if _, t := d.targetOf(key); t != nil && !t.absent {
		t.pinnedSet, t.deferTo = true, d.rules.Now.Add(HoldDeferral)
	}
}

// deferWrite is a Check of w's conditions, or, for a hold set aside,
// the move of its pending index key.
func (t *target) deferWrite(w Write) Write {
	if t.deferTo.IsZero() {
		w.Action = Check
		return w
	}
	w.Action = Update
	w.Set = []Assign{{Attr: LedgerAttrPendingAt, Value: StringValue(FormatIndexTime(t.deferTo))}}
	return w
}

// DueHold is an active hold a store's index lists as expired.
type DueHold struct {
	Scope Scope
	Entry LedgerEntry
}
