package dynamodb

import (
	"math"
	"testing"
)

// TestReadFirstPays: reading n new keys (half a read unit each) pays when
// the expected canceled transaction (2 write units an item, a write unit
// five read units) costs at least half as much.
func TestReadFirstPays(t *testing.T) {
	for _, tc := range []struct {
		rate     float64
		n, items int
		want     bool
	}{
		{0, 1, 2, false},      // clean traffic never reads first
		{0, 99, 100, false},   // not even in a large group
		{0.01, 1, 2, false},   // alone: 1 % x 4 WRU x 2 < 0.5 RRU
		{0.015, 1, 2, true},   // 1.5 % x 4 WRU x 2 > 0.5 RRU
		{0.01, 2, 3, true},    // 2 % x 6 WRU x 2 > 1 RRU
		{0.003, 10, 11, true}, // 3 % x 22 WRU x 2 > 5 RRU
		{0.002, 2, 3, false},
		{1, 0, 1, false}, // no new key: nothing to read
	} {
		r := readFirst{rate: tc.rate}
		if got := r.pays(tc.n, tc.items); got != tc.want {
			t.Errorf("rate %v, %d new keys in %d items: pays %v, want %v", tc.rate, tc.n, tc.items, got, tc.want)
		}
	}
}

// TestReadFirstEstimate: the share moves toward what is observed, over
// about readFirstMemory keys, and a batch counts as its keys one by one.
func TestReadFirstEstimate(t *testing.T) {
	var r readFirst
	r.observe(0, 0)
	if r.rate != 0 {
		t.Fatalf("no keys moved the rate to %v", r.rate)
	}
	r.observe(4, 4)
	one := readFirst{}
	for range 4 {
		one.observe(1, 1)
	}
	if math.Abs(r.rate-one.rate) > 1e-12 {
		t.Fatalf("a batch of 4 gave %v, four singles %v", r.rate, one.rate)
	}
	for range 100 {
		r.observe(100, 5)
	}
	if math.Abs(r.rate-0.05) > 0.001 {
		t.Fatalf("after 10,000 keys at 5 %%: %v", r.rate)
	}
	for range 10 {
		r.observe(256, 0)
	}
	if r.rate > 0.05*math.Exp(-9) {
		t.Fatalf("clean traffic left the rate at %v", r.rate)
	}
}
