// Package memstore is an in-memory metering.Store for tests that need no
// DynamoDB: it commits a usage.Plan by evaluating its preconditions and
// assignments exactly as written, one commit at a time. It passes the same
// contract suite (internal/dev/storetest) as the DynamoDB store, through the
// same protocol (metering.Writer), which shows that a plan carries
// everything its write needs.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Store holds entitlement items and ledger entries in memory. The zero
// value is not usable; call New.
type Store struct {
	mu     sync.Mutex
	ents   map[usage.Scope]map[string]usage.Value
	ledger map[usage.Scope]map[string]usage.LedgerEntry
	order  map[usage.Scope][]string // ledger keys in write order
	notes  map[usage.Scope]map[string]usage.Notification
	// pending holds the index time of holds the sweep set aside.
	pending map[usage.Scope]map[string]time.Time
	// Now is the clock for ledger timestamps (time.Now when nil).
	Now func() time.Time
}

// New returns an empty Store.
func New() *Store {
	return &Store{
		ents:    map[usage.Scope]map[string]usage.Value{},
		ledger:  map[usage.Scope]map[string]usage.LedgerEntry{},
		order:   map[usage.Scope][]string{},
		notes:   map[usage.Scope]map[string]usage.Notification{},
		pending: map[usage.Scope]map[string]time.Time{},
	}
}

// Notifications returns the notifications recorded for a scope, by key.
func (m *Store) Notifications(scope usage.Scope) map[string]usage.Notification {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]usage.Notification{}
	for k, n := range m.notes[scope] {
		out[k] = n
	}
	return out
}

// PutEntitlement writes an entitlement item's attributes, as
// access-service would; attributes not given are absent.
func (m *Store) PutEntitlement(scope usage.Scope, attrs map[string]usage.Value) {
	m.mu.Lock()
	defer m.mu.Unlock()
	item := map[string]usage.Value{}
	for k, v := range attrs {
		if v.Present() {
			item[k] = v
		}
	}
	m.ents[scope] = item
}

// Entitlement returns the item as stored.
func (m *Store) Entitlement(scope usage.Scope) usage.Item {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.item(scope)
}

// ActiveHolds lists the scope's active holds, for metering.DecisionStore.
func (m *Store) ActiveHolds(_ context.Context, scope usage.Scope) ([]usage.LedgerEntry, error) {
	var out []usage.LedgerEntry
	for _, e := range m.Ledger(scope) {
		if e.Is(usage.OperationReserve) && e.HoldState == usage.HoldActive {
			out = append(out, e)
		}
	}
	return out, nil
}

// ReadEntitlement is Entitlement, interpreted, for metering.DecisionStore.
func (m *Store) ReadEntitlement(_ context.Context, scope usage.Scope) (usage.Entitlement, error) {
	return usage.ParseEntitlement(m.Entitlement(scope)), nil
}

// Ledger returns the scope's ledger entries in the order they were written.
func (m *Store) Ledger(scope usage.Scope) []usage.LedgerEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]usage.LedgerEntry, 0, len(m.order[scope]))
	for _, k := range m.order[scope] {
		out = append(out, m.ledger[scope][k])
	}
	return out
}

func (m *Store) item(scope usage.Scope) usage.Item {
	attrs, ok := m.ents[scope]
	if !ok {
		return usage.Item{}
	}
	it := usage.Item{Exists: true, Attrs: map[string]usage.Value{}}
	for _, a := range usage.EntitlementAttrs {
		if v, ok := attrs[a]; ok {
			it.Attrs[a] = v
		}
	}
	return it
}

// errInvalid is what DynamoDB's ValidationError is here: an assignment
// that cannot be evaluated (adding to a non-number).
var errInvalid = errors.New("memstore: assignment adds to a value that is not a number")

// Observe reads the scope's entitlement; there is no cache, so every
// read is current.
func (m *Store) Observe(_ context.Context, scope usage.Scope, _ bool) (usage.State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return usage.State{Entitlement: usage.ParseEntitlement(m.item(scope))}, nil
}

// ReadLedger learns whether each key is applied.
func (m *Store) ReadLedger(_ context.Context, scope usage.Scope, keys []string) (usage.Learned, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var l usage.Learned
	for _, k := range keys {
		m.learn(scope, &l, k)
	}
	return l, nil
}

// Verify evaluates a plan's checks without writing.
func (m *Store) Verify(_ context.Context, scope usage.Scope, plan usage.Plan) (usage.Learned, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.failed(scope, plan)
	if !l.Any() {
		return l, true, nil
	}
	// Under the lock every item is read at one instant: a snapshot, as
	// the DynamoDB store's TransactGetItems is.
	for _, w := range plan.Writes {
		if w.Target.Kind != usage.NotificationKind {
			m.learnItem(&l, scope, w.Target)
		}
	}
	l.Snapshot = true
	return l, false, nil
}

// Commit applies a plan atomically when every precondition holds, as the
// DynamoDB store's transaction does; otherwise it is a *usage.Refusal
// with the items whose preconditions failed.
func (m *Store) Commit(_ context.Context, scope usage.Scope, plan usage.Plan) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.failed(scope, plan); l.Any() {
		return &usage.Refusal{Learned: l}
	}
	if err := m.apply(scope, plan); err != nil {
		return &usage.Refusal{Invalid: true, Cause: err}
	}
	return nil
}

// Remember and Forget do nothing: there is no cache.
func (m *Store) Remember(usage.Scope, usage.State) {}
func (m *Store) Forget(usage.Scope)                {}

// DueHolds lists the active holds due before now, for the hold sweep.
func (m *Store) DueHolds(_ context.Context, now time.Time, limit int) ([]usage.DueHold, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var due []usage.DueHold
	for scope, keys := range m.order {
		for _, k := range keys {
			e := m.ledger[scope][k]
			at, set := m.pending[scope][k]
			if !set {
				at = e.HoldExpiresAt
			}
			if e.Is(usage.OperationReserve) && e.HoldState == usage.HoldActive && at.Before(now) && len(due) < limit {
				due = append(due, usage.DueHold{Scope: scope, Entry: e})
			}
		}
	}
	return due, nil
}

// failed returns what the items whose preconditions fail hold now
// (nothing when all hold).
func (m *Store) failed(scope usage.Scope, plan usage.Plan) usage.Learned {
	var l usage.Learned
	for _, w := range plan.Writes {
		if m.holds(scope, w) {
			continue
		}
		m.learnItem(&l, scope, w.Target)
	}
	return l
}

// learnItem adds what the target's item holds now to l: a notification
// known recorded, a ledger key applied or absent (in its member's part,
// for a team's), an entitlement.
func (m *Store) learnItem(l *usage.Learned, scope usage.Scope, t usage.Target) {
	in := l
	if s, ok := t.Member(); ok {
		in = l.In(s)
	}
	switch {
	case t.Kind == usage.NotificationKind:
		in.Notified = with(in.Notified, t.Key, true)
	case t.Kind == usage.LedgerKind:
		m.learn(entitlementScope(scope, t), in, t.Key)
	case t.Scope == (usage.Scope{}):
		it := m.item(scope)
		l.Entitlement = &it
	default:
		if l.Others == nil {
			l.Others = map[usage.Scope]usage.Item{}
		}
		l.Others[t.Scope] = m.item(t.Scope)
	}
}

// entitlementScope is the scope whose item a write is about: the one its
// target names, else the decided scope.
func entitlementScope(scope usage.Scope, t usage.Target) usage.Scope {
	if t.Scope != (usage.Scope{}) {
		return t.Scope
	}
	return scope
}

func with[V any](m map[string]V, k string, v V) map[string]V {
	if m == nil {
		m = map[string]V{}
	}
	m[k] = v
	return m
}

// updateEntry applies a ledger update's assignments to an entry: the
// attributes a decision may set on one (refunded, a hold's settlement).
func updateEntry(e *usage.LedgerEntry, set []usage.Assign) error {
	for _, a := range set {
		switch {
		case a.Attr == usage.LedgerAttrRefunded && a.Add:
			e.Refunded = e.Refunded.Add(a.Value.Num)
		case a.Attr == usage.LedgerAttrHoldState:
			e.HoldState = a.Value.Str
		case a.Attr == usage.LedgerAttrActual:
			v := a.Value.Num
			e.Actual = &v
		case a.Attr == usage.LedgerAttrSettledAt:
			e.SettledAt, _ = time.Parse(time.RFC3339Nano, a.Value.Str)
		case a.Attr == usage.LedgerAttrGrantState:
			e.GrantState = a.Value.Str
		case a.Attr == usage.LedgerAttrVoided:
			v := a.Value.Num
			e.Voided = &v
		case a.Attr == usage.LedgerAttrVoidedAt:
			e.VoidedAt, _ = time.Parse(time.RFC3339Nano, a.Value.Str)
		case a.Remove && (a.Attr == usage.LedgerAttrPendingPK || a.Attr == usage.LedgerAttrPendingAt):
		case a.Attr == usage.LedgerAttrPendingAt: // set aside: applied by apply
		default:
			return fmt.Errorf("memstore: a ledger update cannot set %s", a.Attr)
		}
	}
	return nil
}

// learn records what the ledger holds under key.
func (m *Store) learn(scope usage.Scope, l *usage.Learned, key string) {
	if e, ok := m.ledger[scope][key]; ok {
		l.Applied = with(l.Applied, key, e)
	} else {
		l.Absent = with(l.Absent, key, true)
	}
}

// holds evaluates a write's preconditions against the stored item.
func (m *Store) holds(scope usage.Scope, w usage.Write) bool {
	var exists bool
	var attrs map[string]usage.Value
	if w.Target.Kind == usage.NotificationKind {
		_, exists = m.notes[entitlementScope(scope, w.Target)][w.Target.Key]
	} else if w.Target.Kind == usage.LedgerKind {
		e, ok := m.ledger[entitlementScope(scope, w.Target)][w.Target.Key]
		exists, attrs = ok, map[string]usage.Value{"amount": usage.NumberValue(e.Amount)}
		if !e.Refunded.IsZero() {
			attrs[usage.LedgerAttrRefunded] = usage.NumberValue(e.Refunded)
		}
		if e.HoldState != "" {
			attrs[usage.LedgerAttrHoldState] = usage.StringValue(e.HoldState)
		}
		if e.GrantState != "" {
			attrs[usage.LedgerAttrGrantState] = usage.StringValue(e.GrantState)
		}
	} else {
		attrs, exists = m.ents[entitlementScope(scope, w.Target)]
	}
	for _, c := range w.Conds {
		if !c.Holds(exists, c.On(attrs)) {
			return false
		}
	}
	return true
}

// apply performs a plan whose preconditions hold, all or nothing.
func (m *Store) apply(scope usage.Scope, plan usage.Plan) error {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	next := map[usage.Scope]map[string]usage.Value{} // the entitlements the plan updates, as it leaves them
	type ledgerKey struct {
		scope usage.Scope
		key   string
	}
	type put struct {
		scope usage.Scope
		entry usage.LedgerEntry
	}
	var puts []put
	notes := map[usage.Scope][]usage.Notification{} // by the scope they are recorded under (a pool's own)
	updates := map[ledgerKey][]usage.Assign{}
	var updateOrder []ledgerKey
	for _, w := range plan.Writes {
		switch {
		case w.Action == usage.Put && w.Notice != nil:
			n := *w.Notice
			n.OccurredAt = now().UTC()
			s := entitlementScope(scope, w.Target)
			notes[s] = append(notes[s], n)
		case w.Action == usage.Put && w.Entry != nil:
			e := *w.Entry
			e.AppliedAt = now().UTC()
			puts = append(puts, put{entitlementScope(scope, w.Target), e})
		case w.Action == usage.Update && w.Target.Kind == usage.LedgerKind:
			k := ledgerKey{entitlementScope(scope, w.Target), w.Target.Key}
			updates[k] = w.Set
			updateOrder = append(updateOrder, k)
		case w.Action == usage.Update && w.Target.Kind == usage.EntitlementKind:
			s := entitlementScope(scope, w.Target)
			if next[s] == nil {
				next[s] = maps.Clone(m.ents[s])
			}
			if err := assign(next[s], w.Set); err != nil {
				return err
			}
		}
	}
	for s, attrs := range next {
		if _, ok := m.ents[s]; ok {
			m.ents[s] = attrs
		}
	}
	for _, k := range updateOrder {
		e := m.ledger[k.scope][k.key]
		if err := updateEntry(&e, updates[k]); err != nil {
			return err
		}
		m.ledger[k.scope][k.key] = e
		m.setAside(k.scope, k.key, updates[k])
	}
	for _, p := range puts {
		if m.ledger[p.scope] == nil {
			m.ledger[p.scope] = map[string]usage.LedgerEntry{}
		}
		m.ledger[p.scope][p.entry.DedupKey] = p.entry
		m.order[p.scope] = append(m.order[p.scope], p.entry.DedupKey)
	}
	for s, ns := range notes {
		if m.notes[s] == nil {
			m.notes[s] = map[string]usage.Notification{}
		}
		for _, n := range ns {
			m.notes[s][n.Key] = n
		}
	}
	return nil
}

// setAside keeps the index time a ledger update sets.
func (m *Store) setAside(scope usage.Scope, key string, set []usage.Assign) {
	for _, a := range set {
		if a.Attr != usage.LedgerAttrPendingAt || a.Remove {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, a.Value.Str)
		if err != nil {
			continue
		}
		if m.pending[scope] == nil {
			m.pending[scope] = map[string]time.Time{}
		}
		m.pending[scope][key] = at
	}
}

// Update runs the one decide-and-write protocol (metering.Writer) over
// the memory store: tests use a memstore wherever the service uses a
// writer over DynamoDB.
func (m *Store) Update(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome {
	return metering.Writer{Store: m}.Update(ctx, scope, records, decide)
}

// assign evaluates an entitlement update's assignments on attrs.
func assign(attrs map[string]usage.Value, set []usage.Assign) error {
	for _, a := range set {
		v := a.Value
		if a.Remove {
			delete(attrs, a.Attr)
			continue
		}
		if a.Add {
			old := usage.ValueAt(attrs, a.Attr, a.Field)
			if old.Present() && old.Kind != usage.KindNumber || !old.Present() && len(a.Field) > 0 {
				return errInvalid
			}
			v = usage.NumberValue(old.Num.Add(a.Value.Num))
			if !v.Num.FitsDynamoDB() {
				return errInvalid
			}
		}
		if !usage.SetAt(attrs, a.Attr, a.Field, v) {
			return errInvalid
		}
	}
	return nil
}
