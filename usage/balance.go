package usage

import "time"

// Balance is an entitlement as a caller sees it at one instant, with the
// lazy reset applied to the view (nothing is written): an ended period
// reads as used 0 from the new period's start.
type Balance struct {
	Used Decimal
	// Limit and Remaining are nil when the entitlement is unlimited.
	// Remaining is never negative (access-service may set used above the
	// limit by hand).
	Limit, Remaining *Decimal
	ResetPeriod      ResetPeriod
	// PeriodStart is nil while no period has started (never for a
	// periodic entitlement, whose view starts the current one).
	PeriodStart *time.Time
	// NextReset is nil for ResetNone.
	NextReset *time.Time
	// Held is the sum of the period's active holds, already in Used (nil
	// when none, or not looked up).
	Held *Decimal
	// Grants are the grants that count now, in draw order (with the
	// rollover a reset would carry, when the period has ended).
	Grants []Grant
	// OverageLimit and OverageUsed are the overage allowed and used this
	// period (OverageLimit nil: none allowed).
	OverageLimit *Decimal
	OverageUsed  Decimal
	// Available is what consumes may still draw now: the allowance's
	// remaining, the grants' and the overage's (nil when unlimited).
	Available *Decimal
}

// BalanceOf is the view of ent at now, or the rejection that a request
// against it would get (no such entitlement, or one that cannot be read).
func BalanceOf(ent Entitlement, now time.Time) (Balance, error) {
	d := newDecider(Rules{Now: now}, State{Entitlement: ent})
	if err := d.unusable(); err != nil {
		return Balance{}, err
	}
	b := Balance{Used: d.used, Limit: ent.Limit, ResetPeriod: d.ent.ResetPeriod, PeriodStart: ent.PeriodStart,
		Grants: d.grants, OverageLimit: ent.OverageLimit, OverageUsed: d.overageUsed}
	if d.reset {
		ps := PeriodStart(ent.ResetPeriod, ent.ResetAnchor, now)
		b.PeriodStart = &ps
	}
	if ent.Limit != nil {
		r := ent.Limit.Sub(d.used)
		if r.Sign() < 0 {
			r = Decimal{}
		}
		b.Remaining = &r
		a := d.allowanceRoom().Add(d.beyondAllowance())
		b.Available = &a
	}
	if d.ent.ResetPeriod != ResetNone {
		next := NextPeriodStart(ent.ResetPeriod, ent.ResetAnchor, now)
		b.NextReset = &next
	}
	return b, nil
}
