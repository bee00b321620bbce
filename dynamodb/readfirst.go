package dynamodb

import (
	"context"
	"math"
	"sync"

	"github.com/usage-event-service/usage-event-service/usage"
)

// A transaction bills 2 write units per item whether it commits or is
// canceled, so one new event whose key turns out to be applied already
// (a producer's retry under a new message ID: nothing marks it as
// redelivered) wastes the whole transaction of its group. Reading the
// group's new keys first costs half a read unit each (one eventually
// consistent BatchGetItem). Which is cheaper depends on how often new keys
// are found applied, so the store estimates that share from what it sees
// and reads first only where the expected waste is larger than the read.
// The read only ever adds "applied": a key it did not find is still
// guarded by the transaction's attribute_not_exists, which stays the
// arbiter.

// On-demand prices per million units (us-east-1): a write unit costs five
// read units. Only their ratio matters here.
const (
	writeUnitPrice = 0.625
	readUnitPrice  = 0.125
)

// readFirstLean: reading first pays when the expected waste is at least
// half the read's price.
const readFirstLean = 2

// readFirstMemory is how many new keys the estimate mostly rests on: it
// forgets by 1/e over that many.
const readFirstMemory = 256

// readFirst estimates the share of new ledger keys already applied.
type readFirst struct {
	mu   sync.Mutex
	rate float64
}

// observe adds n new keys of which applied were found applied.
func (r *readFirst) observe(n, applied int) {
	if n <= 0 {
		return
	}
	keep := math.Pow(1-1.0/readFirstMemory, float64(n))
	r.mu.Lock()
	r.rate = r.rate*keep + float64(applied)/float64(n)*(1-keep)
	r.mu.Unlock()
}

// pays reports whether reading n new keys (eventually consistent, half a
// read unit each) is worth the transaction of items items it may save:
// that is canceled when any of the n is applied. It leans toward reading,
// by readFirstLean: where the prices alone come out about even, a
// canceled transaction still cost more than its units (it was a
// transaction on the entitlement item, in the way of that entitlement's
// other writers, and a round trip to retry).
func (r *readFirst) pays(n, items int) bool {
	if n == 0 {
		return false
	}
	r.mu.Lock()
	rate := r.rate
	r.mu.Unlock()
	waste := (1 - math.Pow(1-rate, float64(n))) * 2 * float64(items) * writeUnitPrice
	return waste*readFirstLean > 0.5*float64(n)*readUnitPrice
}

// newKeys are the ledger keys a plan puts: the entries of events applied
// now, which fail the transaction if they exist. Holds are left out: a
// repeated reserve answers with the hold's state, which an eventually
// consistent read may show older than it is (the fields of other entries
// that a DUPLICATE reports never change).
func newKeys(plan usage.Plan) []string {
	var keys []string
	for _, w := range plan.Writes {
		if w.Target.Kind == usage.LedgerKind && w.Action == usage.Put && w.Entry != nil && w.Entry.HoldState == "" {
			keys = append(keys, w.Target.Key)
		}
	}
	return keys
}

// findApplied reads keys eventually consistently and returns the entries
// it found. Keys it did not find, or could not read, are simply not known
// to be applied.
func (s *Store) findApplied(ctx context.Context, scope usage.Scope, keys []string) (map[string]usage.LedgerEntry, error) {
	items, err := s.readLedgerItems(ctx, scope, keys, false)
	found := map[string]usage.LedgerEntry{}
	for k, item := range items {
		found[k] = ledgerEntry(item)
	}
	return found, err
}

// ReadFirst reads the new keys of a group's first transaction when the
// store's estimate says that is cheaper than the transaction it may save
// (metering.ReadFirster); ok is false when it did not read. A read that
// fails only leaves the transaction to find out.
func (s *Store) ReadFirst(ctx context.Context, scope usage.Scope, plan usage.Plan) (map[string]usage.LedgerEntry, bool) {
	keys := newKeys(plan)
	if !s.dupes.pays(len(keys), len(plan.Writes)) {
		return nil, false
	}
	found, err := s.findApplied(ctx, scope, keys)
	if err != nil {
		return nil, false
	}
	s.dupes.observe(len(keys), len(found))
	return found, true
}

// Estimate tells the estimate how many of a group's first transaction's
// new keys were found applied.
func (s *Store) Estimate(plan usage.Plan, applied map[string]usage.LedgerEntry) {
	keys := newKeys(plan)
	n := 0
	for _, k := range keys {
		if _, ok := applied[k]; ok {
			n++
		}
	}
	s.dupes.observe(len(keys), n)
}
