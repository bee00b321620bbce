package metering

import (
	"context"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

// HoldIndex is what the hold sweep needs of a store besides writing:
// the active holds that are due, oldest first, at most limit a part of
// the index.
type HoldIndex interface {
	DueHolds(ctx context.Context, now time.Time, limit int) ([]usage.DueHold, error)
}

// Sweep is what one sweep of expired holds did.
type Sweep struct {
	// Found is how many expired active holds the index listed; Expired how
	// many this sweep released (others settled meanwhile, or were
	// released by another sweeper: exactly one of them wins).
	Found, Expired int
	// OldestDue is how long the oldest expired hold found had been due.
	OldestDue time.Duration
	// Failed is how many could not be released now (RETRY): the next
	// sweep finds them again.
	Failed int
	// Deferred is how many cannot be settled now (their entitlement or
	// their own entry cannot be read): each is set aside in the index for
	// usage.HoldDeferral, so that it never stands in front of holds that
	// can be released.
	Deferred int
}

// SweepExpiredHolds releases the active holds index lists as due before
// now, each through the one write path with the sweeper's expire
// operation, decided by decide: a commit that won the race stops the
// release, and a sweeper killed mid-run releases nothing twice, because a
// hold settles once.
func SweepExpiredHolds(ctx context.Context, w Writer, index HoldIndex, now time.Time, limit int, decide usage.Decide) (Sweep, error) {
	var sw Sweep
	due, err := index.DueHolds(ctx, now, limit)
	if err != nil {
		return sw, err
	}
	byScope := map[usage.Scope][]usage.Record{}
	var order []usage.Scope
	for _, h := range due {
		if _, seen := byScope[h.Scope]; !seen {
			order = append(order, h.Scope)
		}
		ev := usage.Event{UserID: h.Scope.UserID, EntitlementKey: h.Scope.EntitlementKey, Operation: usage.OperationExpire, HoldID: h.Entry.DedupKey}
		byScope[h.Scope] = append(byScope[h.Scope], usage.Record{Event: ev, MessageID: "expire:" + h.Entry.DedupKey})
		sw.Found++
		sw.OldestDue = max(sw.OldestDue, now.Sub(h.Entry.HoldExpiresAt))
	}
	for _, scope := range order {
		for _, o := range w.Update(ctx, scope, byScope[scope], decide) {
			switch o.Status {
			case usage.Applied:
				sw.Expired++
			case usage.Retry:
				sw.Failed++
			case usage.Rejected:
				sw.Deferred++
			}
		}
	}
	return sw, nil
}
