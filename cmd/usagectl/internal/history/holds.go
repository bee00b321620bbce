package history

import (
	"cmp"
	"slices"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

// SortHolds orders holds as an operator scans them: the next to expire
// first (ties by hold ID).
func SortHolds(holds []usage.LedgerEntry) {
	slices.SortFunc(holds, func(a, b usage.LedgerEntry) int {
		return cmp.Or(a.HoldExpiresAt.Compare(b.HoldExpiresAt), cmp.Compare(a.DedupKey, b.DedupKey))
	})
}

// Due says when an active hold expires, seen at now, to the second:
// "in 14m59s", or "overdue 3s" once expired but not released yet (the
// sweeper releases it within about a sweep interval). A hold is expired
// from its expiresAt on.
func Due(expiresAt, now time.Time) string {
	if d := expiresAt.Sub(now); d > 0 {
		return "in " + max(d.Round(time.Second), time.Second).String()
	}
	return "overdue " + now.Sub(expiresAt).Round(time.Second).String()
}

// Settlement is a hold's state in a few words: "active until T",
// "committed 3.2 at T", "released at T", or "expired at T" (released by
// the sweeper).
func Settlement(state string, expiresAt time.Time, committed *usage.Decimal, settledAt time.Time) string {
	at := usage.FormatInstant(settledAt)
	switch state {
	case usage.HoldActive:
		return "active until " + usage.FormatInstant(expiresAt)
	case usage.HoldCommitted:
		amount := "?"
		if committed != nil {
			amount = committed.String()
		}
		return "committed " + amount + " at " + at
	case usage.HoldReleased, usage.HoldExpired:
		return state + " at " + at
	case "":
		return "unknown state"
	}
	return state
}
