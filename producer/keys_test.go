package producer

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestGeneratedKeysAreUUIDv7(t *testing.T) {
	before := time.Now().Truncate(time.Millisecond)
	key, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	u, err := uuid.Parse(key)
	if err != nil {
		t.Fatalf("%q: %v", key, err)
	}
	if u.Version() != 7 || u.Variant() != uuid.RFC4122 {
		t.Errorf("%s: version %d, variant %s; want 7, RFC4122", key, u.Version(), u.Variant())
	}
	if key != u.String() {
		t.Errorf("%s: want the canonical lower-case form %s, so that text order is time order", key, u)
	}
	sec, nsec := u.Time().UnixTime()
	if at := time.Unix(sec, nsec); at.Before(before) || at.After(after.Add(time.Millisecond)) {
		t.Errorf("%s: time %v, want within [%v, %v]", key, at, before, after)
	}
}

// Keys sort in the order they were made, across goroutines too, and
// never repeat: more than 4096 per millisecond, so the sub-millisecond
// counter is exercised.
func TestGeneratedKeysAreUniqueAndTimeOrdered(t *testing.T) {
	const goroutines, perGoroutine = 4, 20_000
	keys := make([][]string, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for range perGoroutine {
				k, err := newKey()
				if err != nil {
					t.Error(err)
					return
				}
				keys[g] = append(keys[g], k)
			}
		})
	}
	wg.Wait()
	seen := make(map[string]bool, goroutines*perGoroutine)
	for g, ks := range keys {
		if !slices.IsSorted(ks) {
			t.Errorf("goroutine %d: keys not in the order they were made", g)
		}
		for _, k := range ks {
			if seen[k] {
				t.Fatalf("%s twice", k)
			}
			seen[k] = true
		}
	}
	later, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	for g, ks := range keys {
		if last := ks[len(ks)-1]; later <= last {
			t.Errorf("a key made after goroutine %d finished, %s, sorts before its last, %s", g, later, last)
		}
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

// TestGroupID: one group per entitlement; no two entitlements share one,
// however their IDs contain the separator.
func TestGroupID(t *testing.T) {
	tests := []struct{ user, key, want string }{
		{"user-123", "AI_TUTOR_ACCESS", "user-123#AI_TUTOR_ACCESS"},
		{"a#b", "c", "a%23b#c"},
		{"a", "b#c", "a#b%23c"},
		{"50%", "k", "50%25#k"},
	}
	for _, tt := range tests {
		if got := GroupID(tt.user, tt.key); got != tt.want {
			t.Errorf("GroupID(%q, %q) = %q, want %q", tt.user, tt.key, got, tt.want)
		}
	}
	if GroupID("a#b", "c") == GroupID("a", "b#c") {
		t.Error("two entitlements share a group")
	}
	long := GroupID(strings.Repeat("u", 100), strings.Repeat("k", 100))
	if !strings.HasPrefix(long, "sha256:") || long == GroupID(strings.Repeat("u", 101), strings.Repeat("k", 99)) {
		t.Errorf("long IDs: %q", long)
	}
}
