package usage

import (
	"fmt"
	"time"
)

// The entitlement attributes metering reads; access-service owns the item
// and every other attribute on it is neither read nor written.
const (
	AttrLimit       = "limit"
	AttrUsed        = "used"
	AttrResetPeriod = "resetPeriod"
	AttrResetAnchor = "resetAnchor"
	AttrPeriodStart = "periodStart"
	// Balances beyond the allowance (see grant.go): the top-ups, the
	// overage allowed and used this period, and the rollover's cap.
	AttrGrants       = "grants"
	AttrOverageLimit = "overageLimit"
	AttrOverageUsed  = "overageUsed"
	AttrRolloverMax  = "rolloverMax"
	// AttrPool names, on a member's entitlement, the pool it draws from
	// too (see pool.go).
	AttrPool = "pool"
)

// EntitlementAttrs lists the attributes a decision may depend on: a store
// reads (and a cache keeps) exactly these.
var EntitlementAttrs = []string{AttrLimit, AttrUsed, AttrResetPeriod, AttrResetAnchor, AttrPeriodStart, AttrNotifyThresholds,
	AttrGrants, AttrGrantsVersion, AttrOverageLimit, AttrOverageUsed, AttrRolloverMax, AttrPool}

// Kind is the shape of a stored attribute value, as far as a decision
// needs to tell values apart.
type Kind uint8

const (
	KindAbsent Kind = iota // the attribute is not on the item
	KindNull               // DynamoDB's NULL
	KindNumber             // N
	KindString             // S
	KindMap                // M: its entries in Fields
	KindOther              // any other type (list, bool, binary, sets): opaque, compared through Raw
)

// Value is one stored attribute value in the domain's terms: just enough
// of DynamoDB's data model to state "this attribute is still exactly what
// the decision saw". A number keeps its exact decimal value.
type Value struct {
	Kind Kind
	Num  Decimal // KindNumber
	Str  string  // KindString
	// Nums holds a list's elements when every one is a number (non-nil,
	// possibly empty); nil otherwise.
	Nums []Decimal
	// Fields holds a map's entries (KindMap: non-nil, possibly empty).
	Fields map[string]Value
	// Raw is, for KindOther and KindMap, the store's own representation of the value,
	// opaque to the domain: a precondition can then pin the value exactly
	// (a list of thresholds that changed but kept its type must not pass).
	// A map the domain builds to write has Fields and no Raw.
	Raw any
}

// NumberValue, StringValue and MapValue make Values.
func NumberValue(d Decimal) Value { return Value{Kind: KindNumber, Num: d} }
func StringValue(s string) Value  { return Value{Kind: KindString, Str: s} }
func MapValue(fields map[string]Value) Value {
	if fields == nil {
		fields = map[string]Value{}
	}
	return Value{Kind: KindMap, Fields: fields}
}

// Present reports whether the attribute is on the item.
func (v Value) Present() bool { return v.Kind != KindAbsent }

func (v Value) String() string {
	switch v.Kind {
	case KindAbsent:
		return "absent"
	case KindNull:
		return "NULL"
	case KindNumber:
		return v.Num.String()
	case KindString:
		return fmt.Sprintf("%q", v.Str)
	default:
		return "a value of another type"
	}
}

// Item is a stored item as observed: whether it exists, and the values of
// the attributes that were read (absent ones are simply missing).
type Item struct {
	Exists bool
	// Unaddressable is set when no item can exist under this scope's key
	// (the IDs make a key longer than the store allows): nothing is read
	// and nothing can be written.
	Unaddressable bool
	Attrs         map[string]Value
}

// Get returns the attribute's value (Kind Absent when it is not there).
func (it Item) Get(attr string) Value { return it.Attrs[attr] }

// ParseEntitlement interprets an observed entitlement item. A NULL
// attribute reads as absent, except used, which must be a number to be
// added to. Anything else that cannot be interpreted makes the
// entitlement Malformed: events against it are rejected rather than
// guessed at.
func ParseEntitlement(it Item) Entitlement {
	e := Entitlement{Exists: it.Exists, ResetPeriod: ResetNone, Observed: it}
	if !it.Exists {
		return e
	}
	malformed := func(format string, args ...any) {
		if e.Malformed == nil {
			e.Malformed = fmt.Errorf(format, args...)
		}
	}
	switch v := it.Get(AttrLimit); v.Kind {
	case KindAbsent, KindNull:
	case KindNumber:
		d := v.Num
		e.Limit = &d
	default:
		malformed("limit must be a number")
	}
	switch v := it.Get(AttrUsed); v.Kind {
	case KindAbsent:
	case KindNumber:
		e.Used = v.Num
	default:
		malformed("used must be a number")
	}
	switch v := it.Get(AttrResetPeriod); v.Kind {
	case KindAbsent, KindNull:
	case KindString:
		if p, err := ParseResetPeriod(v.Str); err != nil {
			malformed("resetPeriod %q: %v", v.Str, err)
		} else {
			e.ResetPeriod = p
		}
	default:
		malformed("resetPeriod must be a string")
	}
	switch v := it.Get(AttrPool); {
	case v.Kind == KindAbsent || v.Kind == KindNull:
	case v.Kind != KindString || v.Str == "":
		malformed("pool must be a non-empty string")
	default:
		e.Pool = v.Str
	}
	if err := e.parseBalances(it); err != nil {
		malformed("%v", err)
	}
	if v := it.Get(AttrNotifyThresholds); v.Nums != nil {
		// Notification settings, not usage: a list that is not all
		// numbers is ignored (the defaults apply), never a rejection.
		e.NotifyThresholds = &v.Nums
	}
	var anchorErr, startErr error
	e.ResetAnchor, anchorErr = instantAttr(it, AttrResetAnchor)
	e.PeriodStart, startErr = instantAttr(it, AttrPeriodStart)
	for _, err := range []error{anchorErr, startErr} {
		if err != nil {
			malformed("%v", err)
		}
	}
	return e
}

// instantAttr reads an optional RFC 3339 attribute (absent or NULL: nil).
func instantAttr(it Item, attr string) (*time.Time, error) {
	switch v := it.Get(attr); v.Kind {
	case KindAbsent, KindNull:
		return nil, nil
	case KindString:
		t, err := ParseInstant(v.Str)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %v", attr, v.Str, err)
		}
		return &t, nil
	}
	return nil, fmt.Errorf("%s must be an RFC 3339 string", attr)
}
