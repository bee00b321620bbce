package usage

import (
	"time"
)

// Entitlement is the part of access-service's item that metering reads:
// the state as observed at one moment. Attributes it does not list are
// never read or written.
type Entitlement struct {
	// Exists is false when no item was found.
	Exists bool
	// Limit is nil when the entitlement is unlimited (usage is still counted).
	Limit       *Decimal
	Used        Decimal // 0 when the attribute is absent
	ResetPeriod ResetPeriod
	ResetAnchor *time.Time
	PeriodStart *time.Time
	// Malformed is set when the stored item cannot be interpreted (a
	// non-numeric limit, an unknown resetPeriod...). Events against it are
	// rejected INVALID_ENTITLEMENT rather than guessed at.
	Malformed error
	// NotifyThresholds overrides the default notification thresholds
	// (percentages of Limit) when the item lists its own; nil otherwise.
	NotifyThresholds *[]Decimal
	// Grants are the top-ups on the item, in draw order, expired ones
	// included (they count for nothing).
	Grants []Grant
	// OverageLimit is how far consumes may go beyond the allowance and
	// the grants (nil: not at all); OverageUsed is how far they went this
	// period.
	OverageLimit *Decimal
	OverageUsed  Decimal
	// RolloverMax caps the unused allowance carried into the next period
	// as a grant (nil: none is carried).
	RolloverMax *Decimal
	// Pool is the ID of the pool the entitlement draws from too ("" for
	// none): its Limit is then the member's cap.
	Pool string
	// Observed is the item as read: the exact values a decision pins in
	// its preconditions (see ParseEntitlement).
	Observed Item
}

// DefaultDedupRetention is how long applied keys are remembered unless
// configured (DEDUP_RETENTION): 14 days, the longest SQS keeps a message
// and the dead-letter queue's retention in the Terraform module, so that
// any message that can still be redriven is still deduplicated.
const DefaultDedupRetention = 14 * 24 * time.Hour

// Record is an event as received: the event plus the queue's message ID,
// which is the dedup key when the producer gave no idempotency key.
type Record struct {
	Event     Event
	MessageID string
	// SentAt is when the message was first sent (zero: unknown, as for a
	// synchronous request); a refund waits for its target from then on.
	SentAt time.Time
	// Redelivered marks a message received before (or replayed): its key
	// is looked up before it joins a write, since it is likely applied
	// already and a write that fails on it costs write units for nothing.
	Redelivered bool
}

// DedupKey is the key under which the event is applied at most once in
// its scope.
// A grant's key is its grantId.
func (r Record) DedupKey() string {
	switch {
	case r.Event.IdempotencyKey != "":
		return r.Event.IdempotencyKey
	case r.Event.Is(OperationGrant):
		return r.Event.GrantID
	}
	return r.MessageID
}

func (r Record) keySource() string {
	switch {
	case r.Event.IdempotencyKey != "":
		return "idempotencyKey"
	case r.Event.Is(OperationGrant):
		return "grantId"
	}
	return "messageId"
}
