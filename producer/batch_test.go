package producer

import (
	"slices"
	"strings"
	"testing"
)

func traced(es []entry) []entry {
	for i := range es {
		es[i].traceparent = "00-5f3a9c014bd862e3fe1be46a99427279-53995c3f42cd8ad8-01"
		es[i].xray = "Root=1-5f3a9c01-4bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8;Sampled=1"
	}
	return es
}

func TestCallsStayWithinTheEntryAndByteLimits(t *testing.T) {
	entries := func(n, size int) []entry {
		es := make([]entry, n)
		for i := range es {
			es[i] = entry{index: i, body: strings.Repeat("x", size)}
		}
		return es
	}
	tests := []struct {
		name    string
		entries []entry
		want    []int // entries per call
	}{
		{"none", nil, nil},
		{"one", entries(1, 100), []int{1}},
		{"small ones: ten per call", entries(25, 300), []int{10, 10, 5}},
		{"exactly ten", entries(10, 300), []int{10}},
		{"30 KiB each: eight fit in 256 KiB", entries(10, 30<<10), []int{8, 2}},
		{"one of the whole limit each", entries(3, MaxBatchBytes), []int{1, 1, 1}},
		{"mixed: the byte limit closes a call of fewer than ten", append(entries(9, 30<<10), entries(12, 10)...), []int{8, 10, 3}},
		// 32 KiB bodies fit eight to a call alone, but not with their
		// traceparent attribute (72 bytes each), which SQS counts too.
		{"the trace context counts towards the byte limit", traced(entries(10, 32<<10)), []int{7, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := calls(tt.entries)
			var sizes []int
			var flat []entry
			for _, c := range got {
				sizes = append(sizes, len(c))
				n := 0
				for _, e := range c {
					n += e.size()
				}
				if n > MaxBatchBytes {
					t.Errorf("a call of %d bytes, more than %d", n, MaxBatchBytes)
				}
				flat = append(flat, c...)
			}
			if !slices.Equal(sizes, tt.want) {
				t.Errorf("entries per call = %v, want %v", sizes, tt.want)
			}
			if !slices.EqualFunc(flat, tt.entries, func(a, b entry) bool { return a.index == b.index }) {
				t.Errorf("calls do not hold every entry once, in order")
			}
		})
	}
}
