package history

import (
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

// GrantState is a grant's ledger entry's state in a few words, seen at
// now: "active until T", "active, never expires", "expired at T", or
// "voided at T, 3 left" (what was left of it when voided).
func GrantState(e usage.LedgerEntry, now time.Time) string {
	switch {
	case e.GrantState == usage.GrantVoided:
		s := "voided at " + usage.FormatInstant(e.VoidedAt)
		if e.Voided != nil {
			s += ", " + e.Voided.String() + " left"
		}
		return s
	case e.GrantState != usage.GrantActive:
		if e.GrantState == "" {
			return "unknown state"
		}
		return e.GrantState
	case e.GrantExpiresAt == nil:
		return "active, never expires"
	case now.Before(*e.GrantExpiresAt):
		return "active until " + usage.FormatInstant(*e.GrantExpiresAt)
	}
	return "expired at " + usage.FormatInstant(*e.GrantExpiresAt)
}
