package history

import (
	"strings"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

func TestSortHolds(t *testing.T) {
	at := func(s string) time.Time {
		return time.Date(2026, 11, 14, 10, 0, 0, 0, time.UTC).Add(time.Duration(len(s)) * time.Minute)
	}
	holds := []usage.LedgerEntry{
		{DedupKey: "c", HoldExpiresAt: at("xx")},
		{DedupKey: "b", HoldExpiresAt: at("x")},
		{DedupKey: "a", HoldExpiresAt: at("xx")},
		{DedupKey: "d", HoldExpiresAt: at("")},
	}
	SortHolds(holds)
	var got []string
	for _, h := range holds {
		got = append(got, h.DedupKey)
	}
	if s := strings.Join(got, ","); s != "d,b,a,c" {
		t.Errorf("order %s, want d,b,a,c (by expiry, ties by ID)", s)
	}
}

func TestDue(t *testing.T) {
	now := time.Date(2026, 11, 14, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   time.Duration
		want string
	}{
		{15 * time.Minute, "in 15m0s"},
		{14*time.Minute + 59*time.Second + 400*time.Millisecond, "in 14m59s"},
		{300 * time.Millisecond, "in 1s"}, // not "in 0s" while it is still active
		{0, "overdue 0s"},                 // expired from its expiresAt on
		{-3 * time.Second, "overdue 3s"},
		{-2*time.Hour - 500*time.Millisecond, "overdue 2h0m1s"},
	}
	for _, tt := range tests {
		if got := Due(now.Add(tt.in), now); got != tt.want {
			t.Errorf("Due(now%+v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSettlement(t *testing.T) {
	expires := time.Date(2026, 11, 14, 10, 15, 0, 0, time.UTC)
	settled := time.Date(2026, 11, 14, 10, 3, 0, 250_000_000, time.UTC)
	three := usage.MustDecimal("3.2")
	var zero usage.Decimal
	tests := []struct {
		state     string
		committed *usage.Decimal
		want      string
	}{
		{usage.HoldActive, nil, "active until 2026-11-14T10:15:00Z"},
		{usage.HoldCommitted, &three, "committed 3.2 at 2026-11-14T10:03:00.25Z"},
		{usage.HoldCommitted, nil, "committed ? at 2026-11-14T10:03:00.25Z"},
		{usage.HoldReleased, &zero, "released at 2026-11-14T10:03:00.25Z"},
		{usage.HoldExpired, &zero, "expired at 2026-11-14T10:03:00.25Z"},
		{"", nil, "unknown state"},
		{"frozen", nil, "frozen"},
	}
	for _, tt := range tests {
		if got := Settlement(tt.state, expires, tt.committed, settled); got != tt.want {
			t.Errorf("Settlement(%q) = %q, want %q", tt.state, got, tt.want)
		}
	}
}
