package history

import (
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

func TestGrantState(t *testing.T) {
	now := time.Date(2026, 11, 14, 10, 0, 0, 0, time.UTC)
	later, three := now.Add(time.Hour), usage.MustDecimal("3")
	tests := []struct {
		entry usage.LedgerEntry
		want  string
	}{
		{usage.LedgerEntry{GrantState: usage.GrantActive, GrantExpiresAt: &later}, "active until 2026-11-14T11:00:00Z"},
		{usage.LedgerEntry{GrantState: usage.GrantActive}, "active, never expires"},
		{usage.LedgerEntry{GrantState: usage.GrantActive, GrantExpiresAt: &now}, "expired at 2026-11-14T10:00:00Z"}, // until then, exactly
		{usage.LedgerEntry{GrantState: usage.GrantVoided, GrantExpiresAt: &later, Voided: &three, VoidedAt: now}, "voided at 2026-11-14T10:00:00Z, 3 left"},
		{usage.LedgerEntry{}, "unknown state"},
		{usage.LedgerEntry{GrantState: "frozen"}, "frozen"},
	}
	for _, tt := range tests {
		if got := GrantState(tt.entry, now); got != tt.want {
			t.Errorf("GrantState(%+v) = %q, want %q", tt.entry, got, tt.want)
		}
	}
}
