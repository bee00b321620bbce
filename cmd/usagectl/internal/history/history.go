// Package history orders a scope's ledger entries for reading. The
// ledger is keyed by dedup key, not time, so time order needs every
// entry read; Latest keeps only the ones it will return, so that the
// tail of a long ledger costs memory for the tail alone.
package history

import (
	"cmp"
	"container/heap"
	"iter"
	"slices"

	"github.com/usage-event-service/usage-event-service/usage"
)

// Latest reads entries to the end and returns the last n applied (all
// of them when n is 0), oldest first, with how many entries there were.
// Entries applied at the same instant are ordered by dedup key; an entry
// whose appliedAt is missing or malformed (zero) sorts first.
func Latest(entries iter.Seq2[usage.LedgerEntry, error], n int) ([]usage.LedgerEntry, int, error) {
	var kept newest
	total := 0
	for e, err := range entries {
		if err != nil {
			return nil, total, err
		}
		total++
		heap.Push(&kept, e)
		if n > 0 && kept.Len() > n {
			heap.Pop(&kept) // the oldest kept
		}
	}
	out := []usage.LedgerEntry(kept)
	slices.SortFunc(out, compare)
	return out, total, nil
}

func compare(a, b usage.LedgerEntry) int {
	if c := a.AppliedAt.Compare(b.AppliedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.DedupKey, b.DedupKey)
}

// newest is a min-heap of entries by time: its root is the oldest kept.
type newest []usage.LedgerEntry

func (h newest) Len() int           { return len(h) }
func (h newest) Less(i, j int) bool { return compare(h[i], h[j]) < 0 }
func (h newest) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *newest) Push(x any)        { *h = append(*h, x.(usage.LedgerEntry)) }
func (h *newest) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
