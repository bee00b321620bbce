package producer

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// decode returns the 16 bytes of a canonical UUID string.
func decode(t *testing.T, s string) [16]byte {
	t.Helper()
	var b [16]byte
	raw, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(raw) != 16 || len(s) != 36 {
		t.Fatalf("%q is not a canonical UUID", s)
	}
	copy(b[:], raw)
	return b
}

func unixMilli(b [16]byte) int64 {
	var ms int64
	for _, x := range b[:6] {
		ms = ms<<8 | int64(x)
	}
	return ms
}

func TestUUIDv7Layout(t *testing.T) {
	before := time.Now().UnixMilli()
	s := NewUUIDv7()
	after := time.Now().UnixMilli()
	b := decode(t, s)
	if v := b[6] >> 4; v != 7 {
		t.Errorf("%s: version %d, want 7", s, v)
	}
	if b[8]>>6 != 0b10 {
		t.Errorf("%s: variant bits %02b, want 10", s, b[8]>>6)
	}
	if ms := unixMilli(b); ms < before || ms > after+1 {
		t.Errorf("%s: timestamp %d, want within [%d, %d]", s, ms, before, after)
	}
	if s != strings.ToLower(s) {
		t.Errorf("%s: want lower case, so that text order is time order", s)
	}
}

func TestUUIDv7IsStrictlyIncreasingAndUnique(t *testing.T) {
	const n = 50_000 // far more than 4096 per millisecond: the counter overflows
	seen := make(map[string]bool, n)
	prev := ""
	for range n {
		s := NewUUIDv7()
		if s <= prev {
			t.Fatalf("%s after %s: not increasing", s, prev)
		}
		if seen[s] {
			t.Fatalf("%s twice", s)
		}
		seen[s] = true
		prev = s
	}
}

func TestUUIDv7StaysOrderedWhenTheClockStandsStillOrStepsBack(t *testing.T) {
	tests := []struct {
		name  string
		clock []int64 // successive readings, in ms
	}{
		{"frozen clock: the counter orders the IDs", []int64{1000, 1000, 1000, 1000}},
		{"clock steps back: the last timestamp is kept", []int64{5000, 4000, 3000, 5000}},
		{"clock moves on: a new random counter", []int64{1000, 1001, 1002}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := 0
			g := &uuidV7{now: func() time.Time {
				ms := tt.clock[min(i, len(tt.clock)-1)]
				i++
				return time.UnixMilli(ms)
			}}
			prev := ""
			for range tt.clock {
				s := g.next()
				if s <= prev {
					t.Errorf("%s after %s", s, prev)
				}
				if ms := unixMilli(decode(t, s)); ms < tt.clock[0] {
					t.Errorf("%s: timestamp %d went back before %d", s, ms, tt.clock[0])
				}
				prev = s
			}
		})
	}
}

func TestUUIDv7CounterOverflowAdvancesTheTimestamp(t *testing.T) {
	g := &uuidV7{now: func() time.Time { return time.UnixMilli(7000) }}
	prev := ""
	for range 5000 { // more than the 12-bit counter holds
		s := g.next()
		if s <= prev {
			t.Fatalf("%s after %s", s, prev)
		}
		prev = s
	}
	if ms := unixMilli(decode(t, prev)); ms <= 7000 {
		t.Errorf("after 5000 IDs in one millisecond the timestamp is %d, want advanced past 7000", ms)
	}
}

func TestFIFOID(t *testing.T) {
	tests := []struct {
		in   string
		keep bool
	}{
		{"user-123", true},
		{"order:7/line#2!", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"has space", false},
		{"ünïcode", false},
		{"", false},
	}
	for _, tt := range tests {
		got := FIFOID(tt.in)
		if tt.keep && got != tt.in {
			t.Errorf("FIFOID(%q) = %q, want it unchanged", tt.in, got)
		}
		if !tt.keep && (!strings.HasPrefix(got, "sha256:") || len(got) != 71 || got != FIFOID(tt.in)) {
			t.Errorf("FIFOID(%q) = %q, want a stable sha256: form", tt.in, got)
		}
	}
}
