package history

import (
	"errors"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

func entries(list []usage.LedgerEntry, err error) iter.Seq2[usage.LedgerEntry, error] {
	return func(yield func(usage.LedgerEntry, error) bool) {
		for _, e := range list {
			if !yield(e, nil) {
				return
			}
		}
		if err != nil {
			yield(usage.LedgerEntry{}, err)
		}
	}
}

func keys(es []usage.LedgerEntry) string {
	var s []string
	for _, e := range es {
		s = append(s, e.DedupKey)
	}
	return strings.Join(s, ",")
}

func TestLatest(t *testing.T) {
	// In key order, as the ledger returns them; times out of order, with
	// fractions of every length, a tie and a malformed one.
	ledger := []usage.LedgerEntry{
		{DedupKey: "a", AppliedAt: at("2026-11-14T10:00:00.5Z")},
		{DedupKey: "b", AppliedAt: at("2026-11-14T09:00:00Z")},
		{DedupKey: "c", AppliedAt: at("2026-11-14T10:00:00.123456789Z")},
		{DedupKey: "d", AppliedAt: at("2026-11-14T10:00:00.5Z")},
		{DedupKey: "e", AppliedAt: at("yesterday")},
		{DedupKey: "f", AppliedAt: at("2026-11-15T00:00:00Z")},
	}
	tests := []struct {
		n    int
		want string
	}{
		{0, "e,b,c,a,d,f"},
		{1, "f"},
		{3, "a,d,f"},
		{6, "e,b,c,a,d,f"},
		{100, "e,b,c,a,d,f"},
	}
	for _, tt := range tests {
		got, total, err := Latest(entries(ledger, nil), tt.n)
		if err != nil || total != len(ledger) || keys(got) != tt.want {
			t.Errorf("Latest(%d) = %s, %d, %v; want %s, %d", tt.n, keys(got), total, err, tt.want, len(ledger))
		}
	}
	if got, _, _ := Latest(entries(ledger, nil), 0); !got[0].AppliedAt.IsZero() || got[1].AppliedAt.IsZero() {
		t.Errorf("times: %v", got)
	}
	if got, total, err := Latest(entries(nil, nil), 5); err != nil || total != 0 || len(got) != 0 {
		t.Errorf("empty ledger: %v, %d, %v", got, total, err)
	}
	boom := errors.New("boom")
	if _, _, err := Latest(entries(ledger[:2], boom), 0); !errors.Is(err, boom) {
		t.Errorf("error %v, want boom", err)
	}
}

// at is an appliedAt as the store reads it: zero when malformed.
func at(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
