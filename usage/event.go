package usage

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of the message contract. They are documented in the README and
// enforced before anything is read from DynamoDB.
const (
	MaxIDLength = 256 // userId, entitlementKey and idempotencyKey, in characters (Unicode code points)
	// MaxMetadataBytes bounds the compacted metadata JSON. The ledger keeps
	// it as the audit record: a group of 50 events, the most one DynamoDB
	// transaction carries here, stays well inside its 4 MB, and each ledger
	// item far below DynamoDB's 400 KB.
	MaxMetadataBytes = 32 << 10
)

// Event is one usage event: "user consumed Amount of entitlement".
// The same type is validated by the service and by the producer library,
// so a producer learns about a bad event before sending it.
type Event struct {
	UserID string
	// PoolID, instead of UserID, addresses a team pool's own entitlement
	// (PoolScope): a grant to the pool, a void of one, or a balance.
	PoolID         string
	EntitlementKey string
	// Amount is always positive once validated; NewEvent and ParseEvent
	// default it to 1.
	Amount Decimal
	// IdempotencyKey, when set, is the dedup key; otherwise the SQS
	// message ID is.
	IdempotencyKey string
	// Metadata is a compact JSON object, or nil. It is stored verbatim in
	// the ledger and never interpreted.
	Metadata json.RawMessage
	// Operation is "" or OperationConsume for a consume.
	Operation Operation
	// RefundOf is, for a refund, the dedup key of the consume it gives
	// back. A refund's Amount may be zero: all that remains refundable.
	RefundOf string
	// HoldID names the hold a commit or release settles (the reserve's
	// idempotencyKey).
	HoldID string
	// HoldSeconds is how long a reserve's hold lasts (0: the default).
	HoldSeconds int
	// AmountGiven is set when the request named an amount; a commit
	// without one commits the whole hold, and one of 0 commits nothing.
	AmountGiven bool
	// GrantID names a grant: the one a grant creates (it is the grant's
	// idempotency key) or the one a void ends.
	GrantID string
	// ExpiresAt is when a grant stops counting (nil: never).
	ExpiresAt *time.Time
	// Priority orders a grant's draws: lower first (nil: the default).
	Priority *int
}

// Operation is what a request asks of an entitlement. The zero value is
// a consume: every event written before operations existed is one.
type Operation string

const (
	OperationConsume Operation = "consume" // add amount to used, within the limit
	OperationRefund  Operation = "refund"  // give back (part of) an applied consume
	OperationBalance Operation = "balance" // read used, limit, remaining: synchronous only
	OperationReserve Operation = "reserve" // hold an amount before long work: synchronous only
	OperationCommit  Operation = "commit"  // settle a hold with what was really used
	OperationRelease Operation = "release" // settle a hold by giving all of it back
	OperationGrant   Operation = "grant"   // add a top-up that consumes draw from after the allowance
	OperationVoid    Operation = "void"    // end a grant: what is left of it stops counting
	// OperationExpire is the sweeper's release of an expired hold; no
	// request can ask for it.
	OperationExpire Operation = "expire"
)

// Operations lists every operation a request may name, in documentation order.
var Operations = []Operation{OperationConsume, OperationRefund, OperationBalance, OperationReserve, OperationCommit, OperationRelease, OperationGrant, OperationVoid}

// Hold limits: a hold lasts holdSeconds, 900 by default.
const (
	DefaultHoldSeconds = 900
	MaxHoldSeconds     = 86400
)

// Grant limits: a grant's priority is a whole number, lower drawn first.
const (
	DefaultGrantPriority = 100
	MaxGrantPriority     = 1000
)

// settles reports whether the operation settles a hold.
func (e Event) settles() bool {
	return e.Is(OperationCommit) || e.Is(OperationRelease) || e.Is(OperationExpire)
}

// Is reports whether the event's operation is op (an empty one is a consume).
func (e Event) Is(op Operation) bool {
	if e.Operation == "" {
		return op == OperationConsume
	}
	return e.Operation == op
}

// NewEvent returns an event of amount 1, the contract's default.
func NewEvent(userID, entitlementKey string) Event {
	return Event{UserID: userID, EntitlementKey: entitlementKey, Amount: DecimalFromInt(1)}
}

// Scope is the unit of dedup and of atomicity: one user's entitlement,
// or, with Pool set, a pool's (UserID is then the pool's ID): the
// entitlement its members draw from together.
type Scope struct {
	UserID         string
	EntitlementKey string
	Pool           bool
}

// PoolScope is the scope of pool id's entitlement of key.
func PoolScope(id, key string) Scope { return Scope{UserID: id, EntitlementKey: key, Pool: true} }

func (e Event) Scope() Scope {
	if e.PoolID != "" {
		return PoolScope(e.PoolID, e.EntitlementKey)
	}
	return Scope{UserID: e.UserID, EntitlementKey: e.EntitlementKey}
}

// poolOperations are what a request may ask of a pool's own entitlement:
// its members consume, refund and hold against it through their own.
var poolOperations = []Operation{OperationGrant, OperationVoid, OperationBalance}

// Validate checks an event against the contract. ParseEvent calls it; the
// producer library calls it before sending.
func (e Event) Validate() error {
	if err := e.checkOwner(); err != nil {
		return err
	}
	if err := checkID("entitlementKey", e.EntitlementKey, true); err != nil {
		return err
	}
	if err := e.checkOperation(); err != nil {
		return err
	}
	if e.PoolID != "" && !slices.ContainsFunc(poolOperations, e.Is) {
		return reject(ReasonInvalidField, "poolId", "is only for operations grant, void and balance: a pool's members consume from it through their own entitlements")
	}
	optional := e.Is(OperationRefund) || e.Is(OperationBalance) || e.settles() || e.Is(OperationVoid)
	if e.Amount.Sign() < 0 || e.Amount.Sign() == 0 && !optional {
		return reject(ReasonInvalidAmount, "amount", "must be greater than 0, got %s", e.Amount)
	}
	if !e.Amount.FitsDynamoDB() {
		return reject(ReasonInvalidAmount, "amount", "must have at most 38 significant digits and lie within DynamoDB's number range")
	}
	if e.IdempotencyKey != "" {
		if err := checkID("idempotencyKey", e.IdempotencyKey, false); err != nil {
			return err
		}
	}
	if e.Metadata != nil {
		if err := checkMetadata(e.Metadata); err != nil {
			return err
		}
	}
	return nil
}

// checkOwner checks whose entitlement the event addresses: a user's
// (userId) or a pool's (poolId), never both.
func (e Event) checkOwner() error {
	switch {
	case e.PoolID != "" && e.UserID != "":
		return errBothOwners()
	case e.PoolID != "":
		return checkID("poolId", e.PoolID, true)
	}
	return checkID("userId", e.UserID, true)
}

// errBothOwners is the rejection of an event naming a user and a pool.
func errBothOwners() error {
	return reject(ReasonInvalidField, "poolId", "names a pool's entitlement instead of a user's: give userId or poolId, not both")
}

func checkID(name, value string, required bool) error {
	n := utf8.RuneCountInString(value)
	switch {
	case n == 0 && required:
		return reject(ReasonMissingField, name, "is required")
	case n == 0:
		return reject(ReasonInvalidField, name, "must be 1 to %d characters, got an empty string", MaxIDLength)
	case strings.TrimSpace(value) == "":
		return reject(ReasonInvalidField, name, "must not be only whitespace")
	case strings.IndexFunc(value, isControl) >= 0:
		r, _ := utf8.DecodeRuneInString(value[strings.IndexFunc(value, isControl):])
		return reject(ReasonInvalidField, name, "must not contain control characters (U+0000 to U+001F, U+007F), found U+%04X", r)
	case n > MaxIDLength:
		return reject(ReasonInvalidField, name, "must be at most %d characters, got %d", MaxIDLength, n)
	case !utf8.ValidString(value):
		return reject(ReasonInvalidField, name, "is not valid UTF-8")
	}
	return nil
}

func (e Event) checkOperation() error {
	known := e.Operation == ""
	for _, op := range Operations {
		known = known || e.Operation == op
	}
	if !known { // OperationExpire too: only the sweeper, never a request, expires a hold
		return reject(ReasonInvalidField, "operation", "must be one of consume, refund, balance, reserve, commit, release, grant, void; got %q", e.Operation)
	}
	if err := e.checkGrantFields(); err != nil {
		return err
	}
	switch {
	case e.RefundOf != "" && !e.Is(OperationRefund):
		return reject(ReasonInvalidField, "refundOf", "is only for operation refund")
	case e.HoldID != "" && !e.settles():
		return reject(ReasonInvalidField, "holdId", "is only for operations commit and release")
	case e.HoldSeconds != 0 && !e.Is(OperationReserve):
		return reject(ReasonInvalidField, "holdSeconds", "is only for operation reserve")
	case e.Is(OperationRefund):
		return checkID("refundOf", e.RefundOf, true)
	case e.settles():
		return checkID("holdId", e.HoldID, true)
	case e.Is(OperationReserve) && e.IdempotencyKey == "":
		return reject(ReasonMissingField, "idempotencyKey", "is required for a reserve: it is the hold's ID")
	case e.HoldSeconds < 0 || e.HoldSeconds > MaxHoldSeconds:
		return reject(ReasonInvalidField, "holdSeconds", "must be a whole number from 1 to %d, got %d", MaxHoldSeconds, e.HoldSeconds)
	}
	return nil
}

// checkGrantFields: grantId exactly on grants and voids, expiresAt and
// priority only on grants, and a grant's idempotency key is its ID.
func (e Event) checkGrantFields() error {
	grant, void := e.Is(OperationGrant), e.Is(OperationVoid)
	switch {
	case e.GrantID != "" && !grant && !void:
		return reject(ReasonInvalidField, "grantId", "is only for operations grant and void")
	case e.ExpiresAt != nil && !grant:
		return reject(ReasonInvalidField, "expiresAt", "is only for operation grant")
	case e.Priority != nil && !grant:
		return reject(ReasonInvalidField, "priority", "is only for operation grant")
	case !grant && !void:
		return nil
	}
	if err := checkID("grantId", e.GrantID, true); err != nil {
		return err
	}
	switch {
	case grant && e.IdempotencyKey != "" && e.IdempotencyKey != e.GrantID:
		return reject(ReasonInvalidField, "idempotencyKey", "must equal grantId for a grant (the grant's ID is its idempotency key) or be left out")
	case grant && e.ExpiresAt != nil && !rfc3339Year(e.ExpiresAt.UTC().Year()):
		return reject(ReasonInvalidField, "expiresAt", "must be within the years 0000 to 9999 in UTC, got %s", FormatInstant(*e.ExpiresAt))
	case grant && e.Priority != nil && (*e.Priority < 0 || *e.Priority > MaxGrantPriority):
		return reject(ReasonInvalidField, "priority", "must be a whole number from 0 to %d, got %d", MaxGrantPriority, *e.Priority)
	case void && (e.AmountGiven || !e.Amount.IsZero()):
		return reject(ReasonInvalidField, "amount", "is not for operation void (what is left of the grant is voided)")
	}
	return nil
}

// rfc3339Year: RFC 3339 writes four-digit years. The body carries
// expiresAt in UTC, so an instant outside them (built in Go, or read with
// an offset that crosses year 0 or 9999) would be written as text the
// service cannot read back.
func rfc3339Year(y int) bool { return y >= 0 && y <= 9999 }

// CheckQueued rejects what only a synchronous caller can ask: from a
// queue, nobody would receive a balance, or learn whether a hold was
// granted.
func (e Event) CheckQueued() error {
	if e.Is(OperationBalance) || e.Is(OperationReserve) {
		return reject(ReasonInvalidField, "operation", "%s is answered only synchronously (invoke the decisions function)", e.Operation)
	}
	return nil
}

// isControl: the C0 controls and DEL. They are invisible in logs and
// consoles, and NUL in particular has meant "end of string" to too many
// tools to be allowed in an ID.
func isControl(r rune) bool { return r <= 0x1F || r == 0x7F }

func checkMetadata(raw json.RawMessage) error {
	if firstByte(raw) != '{' {
		return reject(ReasonInvalidMetadata, "metadata", "must be a JSON object, got %s", rawKind(raw))
	}
	if len(raw) <= MaxMetadataBytes {
		// Compacting can only shrink it: checking it is JSON is enough,
		// and cheaper on the hot path (ParseEvent has compacted it already).
		if !json.Valid(raw) {
			return reject(ReasonInvalidMetadata, "metadata", "is not valid JSON")
		}
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return reject(ReasonInvalidMetadata, "metadata", "is not valid JSON: %v", err)
	}
	if b.Len() > MaxMetadataBytes {
		return reject(ReasonInvalidMetadata, "metadata", "must be at most %d bytes of JSON, got %d", MaxMetadataBytes, b.Len())
	}
	return nil
}
