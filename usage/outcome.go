package usage

import (
	"errors"
	"fmt"
)

// Status is what finally happened to one event. Every message ends in
// exactly one of these; nothing is silently dropped.
type Status string

const (
	// Applied: the amount was added to the entitlement's usage and the
	// ledger holds the audit record.
	Applied Status = "APPLIED"
	// Duplicate: an event with the same dedup key was already applied in
	// the same scope. Nothing changed; it counts as a success.
	Duplicate Status = "DUPLICATE"
	// Rejected: the event can never be applied as sent (see Reason).
	// Retrying it would give the same answer.
	Rejected Status = "REJECTED"
	// Retry: a transient failure (throttling, conflicts that exhausted
	// their retries, network, deadline). The message goes back to SQS.
	Retry Status = "RETRY"
)

// Succeeded reports whether the message may be deleted from the queue.
func (s Status) Succeeded() bool { return s == Applied || s == Duplicate }

// Reason is a stable, machine-readable code saying why an event was
// rejected. The codes are part of the public contract: producers, alarms
// and dashboards match on them, so they are never renamed.
type Reason string

const (
	// Message contract violations, found before anything is read.
	ReasonInvalidJSON     Reason = "INVALID_JSON"     // body is not a JSON object, or not valid JSON/UTF-8
	ReasonMissingField    Reason = "MISSING_FIELD"    // a required field is absent or null
	ReasonInvalidField    Reason = "INVALID_FIELD"    // a string field has the wrong type, is blank or too long
	ReasonInvalidAmount   Reason = "INVALID_AMOUNT"   // amount is not a positive finite number DynamoDB can hold
	ReasonInvalidMetadata Reason = "INVALID_METADATA" // metadata is not a JSON object or is too large

	// Decisions made against the stored entitlement.
	ReasonEntitlementNotFound  Reason = "ENTITLEMENT_NOT_FOUND"   // no item for (userId, entitlementKey)
	ReasonLimitExceeded        Reason = "LIMIT_EXCEEDED"          // used + amount would exceed limit
	ReasonInvalidEntitlement   Reason = "INVALID_ENTITLEMENT"     // the stored item is malformed (e.g. unknown resetPeriod)
	ReasonIdempotencyConflict  Reason = "IDEMPOTENCY_CONFLICT"    // key already applied with a different amount
	ReasonRefundTargetNotFound Reason = "REFUND_TARGET_NOT_FOUND" // refundOf names no applied consume of this scope
	ReasonRefundExceedsApplied Reason = "REFUND_EXCEEDS_APPLIED"  // more than remains refundable of that consume
	ReasonPeriodEnded          Reason = "PERIOD_ENDED"            // the consume's period has ended (a reset happened since)
	ReasonHoldNotFound         Reason = "HOLD_NOT_FOUND"          // holdId names no hold of this scope
	ReasonHoldNotActive        Reason = "HOLD_NOT_ACTIVE"         // the hold is settled or expired
	ReasonCommitExceedsHold    Reason = "COMMIT_EXCEEDS_HOLD"     // a commit for more than was held
	ReasonInvalidLedgerEntry   Reason = "INVALID_LEDGER_ENTRY"    // the stored entry a refund or settlement names cannot be read
	ReasonGrantNotFound        Reason = "GRANT_NOT_FOUND"         // grantId names no grant of this scope
	ReasonGrantNotActive       Reason = "GRANT_NOT_ACTIVE"        // the grant has expired
	ReasonTooManyGrants        Reason = "TOO_MANY_GRANTS"         // the entitlement has MaxActiveGrants active grants already
	ReasonPoolLimitExceeded    Reason = "POOL_LIMIT_EXCEEDED"     // the member's cap has room, its pool has not
	ReasonPoolNotFound         Reason = "POOL_NOT_FOUND"          // the entitlement names a pool that has no entitlement of this key
	ReasonInvalidPool          Reason = "INVALID_POOL"            // the pool's stored entitlement is malformed
)

// Reasons lists every rejection reason, in documentation order.
var Reasons = []Reason{
	ReasonInvalidJSON, ReasonMissingField, ReasonInvalidField, ReasonInvalidAmount, ReasonInvalidMetadata,
	ReasonEntitlementNotFound, ReasonLimitExceeded, ReasonInvalidEntitlement, ReasonIdempotencyConflict,
	ReasonRefundTargetNotFound, ReasonRefundExceedsApplied, ReasonPeriodEnded,
	ReasonHoldNotFound, ReasonHoldNotActive, ReasonCommitExceedsHold, ReasonInvalidLedgerEntry,
	ReasonGrantNotFound, ReasonGrantNotActive, ReasonTooManyGrants,
	ReasonPoolLimitExceeded, ReasonPoolNotFound, ReasonInvalidPool,
}

// RejectionError is a permanent rejection: a reason code for machines and
// a message naming the field or rule for people.
type RejectionError struct {
	Reason  Reason
	Field   string // the message field at fault, if any
	Message string
}

func (e *RejectionError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Reason, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Reason, e.Message)
}

// Is lets errors.Is(err, ErrLimitExceeded) match any rejection with the same reason.
func (e *RejectionError) Is(target error) bool {
	var t *RejectionError
	return errors.As(target, &t) && t.Reason == e.Reason && t.Field == "" && t.Message == ""
}

// Sentinels for errors.Is. They carry only the reason.
var (
	ErrInvalidJSON          = &RejectionError{Reason: ReasonInvalidJSON}
	ErrMissingField         = &RejectionError{Reason: ReasonMissingField}
	ErrInvalidField         = &RejectionError{Reason: ReasonInvalidField}
	ErrInvalidAmount        = &RejectionError{Reason: ReasonInvalidAmount}
	ErrInvalidMetadata      = &RejectionError{Reason: ReasonInvalidMetadata}
	ErrEntitlementNotFound  = &RejectionError{Reason: ReasonEntitlementNotFound}
	ErrLimitExceeded        = &RejectionError{Reason: ReasonLimitExceeded}
	ErrInvalidEntitlement   = &RejectionError{Reason: ReasonInvalidEntitlement}
	ErrIdempotencyConflict  = &RejectionError{Reason: ReasonIdempotencyConflict}
	ErrRefundTargetNotFound = &RejectionError{Reason: ReasonRefundTargetNotFound}
	ErrRefundExceedsApplied = &RejectionError{Reason: ReasonRefundExceedsApplied}
	ErrPeriodEnded          = &RejectionError{Reason: ReasonPeriodEnded}
	ErrHoldNotFound         = &RejectionError{Reason: ReasonHoldNotFound}
	ErrHoldNotActive        = &RejectionError{Reason: ReasonHoldNotActive}
	ErrCommitExceedsHold    = &RejectionError{Reason: ReasonCommitExceedsHold}
	ErrGrantNotFound        = &RejectionError{Reason: ReasonGrantNotFound}
	ErrGrantNotActive       = &RejectionError{Reason: ReasonGrantNotActive}
	ErrTooManyGrants        = &RejectionError{Reason: ReasonTooManyGrants}
	ErrPoolLimitExceeded    = &RejectionError{Reason: ReasonPoolLimitExceeded}
	ErrPoolNotFound         = &RejectionError{Reason: ReasonPoolNotFound}
	ErrInvalidPool          = &RejectionError{Reason: ReasonInvalidPool}
)

// ErrTargetPending is the cause of RETRY for a queued refund, settlement
// or void whose target (the consume, the hold, the grant) is not applied
// yet: a standard queue does not keep order, so it may still arrive. It
// is rejected once the message is older than the wait (Rules.TargetWait).
var ErrTargetPending = errors.New("the target (the refunded consume, the hold, the grant) is not applied (yet); waiting for it")

func reject(reason Reason, field, format string, args ...any) *RejectionError {
	return &RejectionError{Reason: reason, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Outcome is the result for one event.
type Outcome struct {
	Status Status
	// Err is set for Rejected (a *RejectionError) and Retry (the cause).
	Err error
	// Original is, for a Duplicate (and an IDEMPOTENCY_CONFLICT), the
	// entry first applied under the key: the original decision.
	Original *LedgerEntry
	// Entry is, for Applied, what was recorded (a refund's resolved amount).
	Entry *LedgerEntry
	// Returned is, for an applied refund or settlement, where what it gave
	// back went, bucket by bucket (a lapsed part went nowhere).
	Returned []Draw
	// PoolReturned is, likewise, where the pool's part went.
	PoolReturned []Draw
}

// Reason returns the rejection reason, or "" when the outcome is not a rejection.
func (o Outcome) Reason() Reason {
	var r *RejectionError
	if errors.As(o.Err, &r) {
		return r.Reason
	}
	return ""
}
