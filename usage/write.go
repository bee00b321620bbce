package usage

import (
	"maps"
	"reflect"
	"time"
)

// A decision is data: the outcomes, and the writes that make them so,
// each with the exact preconditions the decision relied on. A store
// translates it into one atomic conditional write mechanically; it adds
// no rule of its own. If any precondition fails, nothing is written and
// the decision is taken again on what the store then knows.

// Op is a precondition's test.
type Op uint8

const (
	OpExists    Op = iota + 1 // the item exists
	OpNotExists               // the item does not exist
	OpAbsent                  // the attribute is not on the item
	OpEquals                  // the attribute equals Value (a number compares numerically)
	OpKind                    // the attribute is of kind Kind (a number, a string, NULL)
	OpLE                      // the attribute is a number <= Value
	OpLT                      // the attribute is a number < Value
	OpGE                      // the attribute is a number >= Value
)

// Cond is one precondition. With OrAbsent, an absent attribute satisfies
// it too (for attributes whose absence means zero).
type Cond struct {
	Op   Op
	Attr string // empty for OpExists and OpNotExists
	// Field is the path below Attr into its maps (nil: Attr itself), so
	// that a write rests on one grant rather than on all of them.
	Field    []string
	Value    Value // OpEquals, OpLE, OpLT
	Kind     Kind  // OpKind
	OrAbsent bool
}

// On is the value the condition tests, in an item's attributes.
func (c Cond) On(attrs map[string]Value) Value { return ValueAt(attrs, c.Attr, c.Field) }

// ValueAt is the value at attr and the path below it (absent when any
// step is missing or not a map).
func ValueAt(attrs map[string]Value, attr string, field []string) Value {
	v := attrs[attr]
	for _, f := range field {
		if v.Fields == nil {
			return Value{}
		}
		v = v.Fields[f]
	}
	return v
}

// SetAt stores v at attr and the path below it, copying the maps along
// the path (values are shared between observed states). It reports false
// when a map on the path is missing.
func SetAt(attrs map[string]Value, attr string, field []string, v Value) bool {
	if len(field) == 0 {
		attrs[attr] = v
		return true
	}
	parent := attrs[attr]
	if parent.Fields == nil {
		return false
	}
	fields := maps.Clone(parent.Fields)
	if !SetAt(fields, field[0], field[1:], v) {
		return false
	}
	attrs[attr] = MapValue(fields)
	return true
}

// Pin is the precondition "attr is still exactly v": absent for absent,
// NULL for NULL, equal for anything else (numbers by value, other values
// as the store compares them, through Value.Raw).
func Pin(attr string, v Value) Cond {
	switch v.Kind {
	case KindAbsent:
		return Cond{Op: OpAbsent, Attr: attr}
	case KindNull:
		return Cond{Op: OpKind, Attr: attr, Kind: KindNull}
	default:
		return Cond{Op: OpEquals, Attr: attr, Value: v}
	}
}

// Holds evaluates the precondition against an item as stored: whether it
// exists, and the value of c.Attr on it. A store that can evaluate it by
// reading (a check that writes nothing) gives the same answer as the
// conditional write would.
func (c Cond) Holds(exists bool, v Value) bool {
	if c.OrAbsent && !v.Present() {
		return true
	}
	switch c.Op {
	case OpExists:
		return exists
	case OpNotExists:
		return !exists
	case OpAbsent:
		return !v.Present()
	case OpEquals:
		return v.equals(c.Value)
	case OpKind:
		return v.Kind == c.Kind
	case OpLE:
		return v.Kind == KindNumber && v.Num.Cmp(c.Value.Num) <= 0
	case OpLT:
		return v.Kind == KindNumber && v.Num.Cmp(c.Value.Num) < 0
	case OpGE:
		return v.Kind == KindNumber && v.Num.Cmp(c.Value.Num) >= 0
	}
	return false
}

// equals compares two stored values as the store's "=" does: numbers by
// value, strings by content, other values by their raw representation.
func (v Value) equals(w Value) bool {
	switch {
	case v.Kind != w.Kind:
		return false
	case v.Kind == KindNumber:
		return v.Num.Cmp(w.Num) == 0
	case v.Kind == KindMap && (v.Raw == nil || w.Raw == nil):
		return fieldsEqual(v.Fields, w.Fields)
	case v.Kind == KindOther || v.Kind == KindMap:
		return reflect.DeepEqual(v.Raw, w.Raw)
	}
	return v.Str == w.Str
}

func fieldsEqual(a, b map[string]Value) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !v.equals(w) {
			return false
		}
	}
	return true
}

// Assign sets one attribute. With Add, the attribute becomes its current
// value (0 when absent) plus Value, evaluated by the store, so that
// concurrent increments compose without reading each other.
type Assign struct {
	Attr string
	// Field is the path below Attr into its maps (nil: Attr itself); an
	// Add there requires the value to exist.
	Field []string
	Value Value
	Add   bool
	// Remove removes the attribute instead (Value and Add unused).
	Remove bool
}

// Action is what a Write does to its item.
type Action uint8

const (
	Update Action = iota + 1 // set the Assigns
	Put                      // create the item (its content is Entry)
	Check                    // write nothing; only the conditions count
)

// ItemKind is the kind of item a write is about.
type ItemKind uint8

const (
	EntitlementKind  ItemKind = iota // the scope's entitlement (access-service's item)
	LedgerKind                       // a ledger entry, by dedup key
	NotificationKind                 // a recorded notification (the outbox), by Notification.Key
)

// Target names the item a write is about, within the scope being decided.
type Target struct {
	Kind ItemKind
	Key  string
	// Scope names, for an entitlement, another scope's item (the pool a
	// member draws from, say): one decision reads and writes several
	// entitlements atomically, each with its own preconditions, through
	// the one write path. Zero is the decided scope's own.
	Scope Scope
}

// EntitlementItem is the Target of the scope's entitlement.
var EntitlementItem = Target{}

// EntitlementOf is the Target of another scope's entitlement.
func EntitlementOf(s Scope) Target { return Target{Kind: EntitlementKind, Scope: s} }

// LedgerItem is the Target of the scope's ledger entry under key.
func LedgerItem(key string) Target { return Target{Kind: LedgerKind, Key: key} }

// NotificationItem is the Target of the scope's notification under key.
func NotificationItem(key string) Target { return Target{Kind: NotificationKind, Key: key} }

// Write is one item's part of the atomic write.
type Write struct {
	Target Target
	Action Action
	Conds  []Cond
	Set    []Assign      // Update
	Entry  *LedgerEntry  // Put of a ledger item
	Notice *Notification // Put of a notification
}

// The ledger attributes a decision reads or sets besides the entry's
// content: how much of a consume has been refunded.
const (
	LedgerAttrRefunded = "refunded"
)

// LedgerEntry is the audit and dedup record of one applied operation.
type LedgerEntry struct {
	DedupKey string
	// Operation is consume or refund ("" in entries written before
	// operations existed: a consume).
	Operation Operation
	Amount    Decimal
	// RefundOf is, for a refund, the dedup key of the consume it gave back.
	RefundOf string
	// Refunded is, for a consume, how much of it refunds have given back.
	Refunded Decimal
	// For a reserve: the hold's state (HoldActive, ...), when it expires,
	// and once settled the committed amount (0 when released) and when.
	HoldState     string
	HoldExpiresAt time.Time
	Actual        *Decimal
	SettledAt     time.Time
	// Draws are, for a consume or a reserve, the buckets it drew from, in
	// order (nil: the allowance alone); for a refund, where what it gave
	// back went.
	Draws []Draw
	// Pool is the pool the operation counted against too ("" for none),
	// PoolDraws the pool's buckets it drew from or gave back to (as
	// Draws), and PoolPeriodStart the pool's period it counted in.
	Pool            string
	PoolDraws       []Draw
	PoolPeriodStart string
	// For a grant: its state (GrantActive, GrantVoided), priority and
	// expiry, and once voided what was left of it and when.
	GrantState     string
	Priority       int
	GrantExpiresAt *time.Time
	Voided         *Decimal
	VoidedAt       time.Time
	// KeySource says where DedupKey came from: "idempotencyKey", "grantId" or "messageId".
	KeySource string
	MessageID string
	// PeriodStart is the period the event counted in, as stored on the
	// entitlement ("" for entitlements that never reset).
	PeriodStart string
	Metadata    []byte
	// AppliedAt is set by the store when it writes or reads the entry;
	// ExpiresAt, when read, is when the store may delete it (the end of the
	// dedup retention).
	AppliedAt, ExpiresAt time.Time
	// Unreadable is set by the store when a stored entry has an attribute
	// it cannot read: a decision that needs the entry rejects
	// INVALID_LEDGER_ENTRY, resting on that value staying as it is.
	Unreadable *Unreadable
}

// Unreadable is the first attribute of a stored entry that could not be
// read, with the value found there.
type Unreadable struct {
	Attr  string
	Value Value
	Why   string
}

func (u *Unreadable) rejection(key string) error {
	return reject(ReasonInvalidLedgerEntry, "", "the stored entry %q cannot be read: %s %s", key, u.Attr, u.Why)
}

// Is reports whether the entry is of operation op.
func (e LedgerEntry) Is(op Operation) bool {
	if e.Operation == "" {
		return op == OperationConsume
	}
	return e.Operation == op
}

// State is what a store knows when it asks for a decision: the
// entitlement as observed, the ledger entries known to exist (learned
// from failed writes and from the reads a plan asked for), and the keys
// known to have no entry.
type State struct {
	Entitlement Entitlement
	Applied     map[string]LedgerEntry
	Absent      map[string]bool
	// Notified holds the keys of notifications known to be recorded
	// (Notification.Key): they are never recorded twice.
	Notified map[string]bool
	// Others are the entitlements of other scopes the decision asked for
	// (Plan.ReadScopes), as observed; a write to one pins what it relied
	// on, as for the scope's own.
	Others map[Scope]Entitlement
}

// Decide is the rule a store applies under its conditional write: given
// what it knows and the pending records of one scope, in order, what
// happens to each and what must be written. PlanUsage, with the
// processing time bound, is the rule in production.
type Decide func(State, []Record) Plan

// Plan is a decision: one outcome per record, in order, and the writes
// that make them so, in one atomic transaction. No writes means nothing
// needs to be written (every record is a known duplicate, or the
// entitlement cannot exist).
type Plan struct {
	Outcomes []Outcome
	Writes   []Write
	// Reads are ledger keys the decision needs to know first (a refund's
	// target): the store reads them into State.Applied / State.Absent and
	// asks again, writing nothing meanwhile.
	Reads []string
	// ReadScopes are other scopes' entitlements the decision needs to
	// know first: the store reads them into State.Others and asks again.
	ReadScopes []Scope
}

// After returns the entitlement item as it is right after the plan's
// writes committed, assuming the observed values; a value added to is a
// lower bound under concurrent writers, which the next write's
// preconditions check anyway.
func (p Plan) After(it Item) Item { return p.AfterOf(Scope{}, it) }

// AfterOf is After for the entitlement of scope s, which a team's plan
// names (Scope{}: the decided scope's own).
func (p Plan) AfterOf(s Scope, it Item) Item {
	for _, w := range p.Writes {
		if w.Target.Kind != EntitlementKind || w.Target.Scope != s || w.Action != Update {
			continue
		}
		attrs := make(map[string]Value, len(it.Attrs)+len(w.Set))
		for k, v := range it.Attrs {
			attrs[k] = v
		}
		for _, a := range w.Set {
			v := a.Value
			switch {
			case a.Remove:
				delete(attrs, a.Attr)
				continue
			case a.Add:
				v = NumberValue(ValueAt(attrs, a.Attr, a.Field).Num.Add(a.Value.Num))
			}
			SetAt(attrs, a.Attr, a.Field, v)
		}
		it.Attrs = attrs
	}
	return it
}

// WritesOf are the writes of a team's plan that are member s's to know
// of: those naming its scope, and the pools' notifications (known among
// each member's own).
func (p Plan) WritesOf(s Scope) []Write {
	var out []Write
	for _, w := range p.Writes {
		if w.Target.Scope == s || w.Target.Scope.Pool && w.Target.Kind == NotificationKind {
			out = append(out, w)
		}
	}
	return out
}

// Learned is what a store learned of a scope beyond what a decision saw:
// from a refused write, a read of ledger keys, or a verification by
// reads. The decision is then taken again on State plus Learned.
type Learned struct {
	// Entitlement is the item as it now is, when that was learned.
	Entitlement *Item
	Applied     map[string]LedgerEntry
	Absent      map[string]bool
	Notified    map[string]bool
	// Others are other scopes' entitlements as they now are.
	Others map[Scope]Item
	// Of is what was learned of other scopes' ledger entries and
	// notifications (a team's members: TeamPlan), by scope.
	Of map[Scope]*Learned
	// Snapshot: every item a plan of checks named was read at one
	// instant (Store.Verify, where the store can). A decision taken
	// again on it that only checks those items is then final: it is
	// what one at a time would have decided at that instant.
	Snapshot bool
}

// In is what was learned of scope s's ledger entries and notifications
// by a write naming it (Target.Scope), created on first use.
func (l *Learned) In(s Scope) *Learned {
	if l.Of == nil {
		l.Of = map[Scope]*Learned{}
	}
	if l.Of[s] == nil {
		l.Of[s] = &Learned{}
	}
	return l.Of[s]
}

// Member is the other scope whose ledger entry or notification a write
// names (a team's member), whose learning goes to Learned.In; false for
// the decided scope's own items, entitlements (Learned.Others) and a
// pool's notifications (their keys name the pool: Learned.Notified).
func (t Target) Member() (Scope, bool) {
	if t.Scope == (Scope{}) || t.Scope.Pool || t.Kind == EntitlementKind {
		return Scope{}, false
	}
	return t.Scope, true
}

// Any reports whether anything was learned.
func (l Learned) Any() bool {
	return l.Entitlement != nil || len(l.Applied) > 0 || len(l.Absent) > 0 || len(l.Notified) > 0 || len(l.Others) > 0 || len(l.Of) > 0
}

// Apply adds what was learned to a state; a key learned to exist is no
// longer absent and the other way round. st is not modified.
func (l Learned) Apply(st State) State {
	if l.Entitlement != nil {
		st.Entitlement = ParseEntitlement(*l.Entitlement)
	}
	applied, absent := maps.Clone(st.Applied), maps.Clone(st.Absent)
	for k, v := range l.Applied {
		applied = withKey(applied, k, v)
		delete(absent, k)
	}
	for k := range l.Absent {
		absent = withKey(absent, k, true)
		delete(applied, k)
	}
	st.Applied, st.Absent = applied, absent
	if len(l.Others) > 0 {
		others := maps.Clone(st.Others)
		if others == nil {
			others = map[Scope]Entitlement{}
		}
		for s, it := range l.Others {
			others[s] = ParseEntitlement(it)
		}
		st.Others = others
	}
	if len(l.Notified) > 0 {
		st.Notified = maps.Clone(st.Notified)
		for k := range l.Notified {
			st.Notified = withKey(st.Notified, k, true)
		}
	}
	return st
}

func withKey[V any](m map[string]V, k string, v V) map[string]V {
	if m == nil {
		m = map[string]V{}
	}
	m[k] = v
	return m
}

// Refusal is a store's error when it refused a plan's atomic write:
// nothing was written. Learned holds what the refusal taught (a failed
// precondition returns the item as it is); Invalid is set when the store
// found a write it cannot carry out (a value it cannot hold, a sum beyond
// its precision) rather than a failed precondition. A refusal that taught
// nothing and is not invalid is contention: try again after a pause.
type Refusal struct {
	Learned Learned
	Invalid bool
	Cause   error
}

func (r *Refusal) Error() string {
	switch {
	case r.Invalid:
		return "the store refused the write as invalid: " + errorText(r.Cause)
	case r.Learned.Any():
		return "a precondition of the write failed"
	}
	return "the write conflicted with another: " + errorText(r.Cause)
}

func (r *Refusal) Unwrap() error { return r.Cause }

func errorText(err error) string {
	if err == nil {
		return "no detail"
	}
	return err.Error()
}
