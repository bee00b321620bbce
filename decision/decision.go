// Package decision is the wire form of a synchronous decision: the
// Answer object a caller gets for one request (status, reason, the hold,
// the original decision of a duplicate, the balance), and how an outcome
// becomes one. The use case that decides (metering.Decisions) and the
// clients that ask (package client) share it; it depends on the domain
// alone.
package decision

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

// Status is an answer's status: an outcome's (usage.Status), or OK for a
// balance.
type Status string

const (
	Applied   = Status(usage.Applied)
	Duplicate = Status(usage.Duplicate)
	Rejected  = Status(usage.Rejected)
	Retry     = Status(usage.Retry)
	OK        = Status("OK")
)

// Answer is the JSON answer to one request. Numbers are exact JSON
// numbers. The balance fields show the entitlement no earlier than the
// decision: under concurrent writers they may already include later
// usage; in a quiet system they are exact.
type Answer struct {
	Status  Status       `json:"status"`
	Reason  usage.Reason `json:"reason,omitempty"`
	Message string       `json:"message,omitempty"`
	// Amount is, for an applied consume or refund, the amount it moved (a
	// refund without amount: what remained).
	Amount *json.Number `json:"amount,omitempty"`
	// Original is, for a DUPLICATE (or an IDEMPOTENCY_CONFLICT), the
	// decision first taken under the idempotency key.
	Original *Original `json:"original,omitempty"`
	// Hold is, for a reserve, commit or release, the hold as it now is.
	Hold *Hold        `json:"hold,omitempty"`
	Used *json.Number `json:"used,omitempty"`
	// Held is the sum of the current period's active holds (already
	// counted in used).
	Held        *json.Number `json:"held,omitempty"`
	Limit       *json.Number `json:"limit,omitempty"`
	Remaining   *json.Number `json:"remaining,omitempty"`
	ResetPeriod string       `json:"resetPeriod,omitempty"`
	PeriodStart string       `json:"periodStart,omitempty"`
	NextReset   string       `json:"nextReset,omitempty"`
}

// Hold is a hold as an answer shows it.
type Hold struct {
	HoldID    string       `json:"holdId"`
	Amount    json.Number  `json:"amount"`
	ExpiresAt string       `json:"expiresAt"`
	State     string       `json:"state"`
	Committed *json.Number `json:"committed,omitempty"`
}

// HoldOf is a ledger entry as an answer shows a hold (nil if it is none).
func HoldOf(e usage.LedgerEntry) *Hold {
	if !e.Is(usage.OperationReserve) {
		return nil
	}
	h := &Hold{HoldID: e.DedupKey, Amount: json.Number(e.Amount.String()), ExpiresAt: usage.FormatInstant(e.HoldExpiresAt), State: e.HoldState}
	if e.HoldState == usage.HoldCommitted && e.Actual != nil {
		h.Committed = Number(*e.Actual)
	}
	return h
}

// Original is a decision as the ledger recorded it.
type Original struct {
	Status      Status      `json:"status"`
	Operation   string      `json:"operation"`
	Amount      json.Number `json:"amount"`
	RefundOf    string      `json:"refundOf,omitempty"`
	AppliedAt   string      `json:"appliedAt,omitempty"`
	PeriodStart string      `json:"periodStart,omitempty"`
}

// AnswerOf is the answer to a decided request's outcome (without the
// balance, which the use case reads after the decision).
func AnswerOf(o usage.Outcome) Answer {
	var a Answer
	switch o.Status {
	case usage.Applied:
		a.Status = Applied
		if o.Entry != nil {
			a.Amount = Number(o.Entry.Amount)
			a.Hold = HoldOf(*o.Entry)
		}
	case usage.Duplicate:
		a.Status = Duplicate
	case usage.Rejected:
		a = RejectedAnswer(o.Err)
	default:
		a.Status = Retry
		if o.Err != nil {
			a.Message = o.Err.Error()
		}
	}
	if o.Original != nil {
		a.Original = original(*o.Original)
		if a.Hold == nil {
			a.Hold = HoldOf(*o.Original)
		}
	}
	return a
}

func original(e usage.LedgerEntry) *Original {
	o := &Original{Status: Applied, Operation: string(usage.OperationConsume), Amount: json.Number(e.Amount.String()),
		RefundOf: e.RefundOf, PeriodStart: e.PeriodStart}
	if e.Operation != "" {
		o.Operation = string(e.Operation)
	}
	if !e.AppliedAt.IsZero() {
		o.AppliedAt = e.AppliedAt.UTC().Format(time.RFC3339Nano)
	}
	return o
}

// RejectedAnswer is the answer to a request rejected with err (a
// *usage.RejectionError), or RETRY for any other error.
func RejectedAnswer(err error) Answer {
	var r *usage.RejectionError
	if !errors.As(err, &r) {
		return Answer{Status: Retry, Message: err.Error()}
	}
	msg := r.Message
	if r.Field != "" {
		msg = r.Field + ": " + msg
	}
	return Answer{Status: Rejected, Reason: r.Reason, Message: msg}
}

// Number is an exact JSON number.
func Number(d usage.Decimal) *json.Number {
	n := json.Number(d.String())
	return &n
}

// Operation is ev's operation, consume when it names none.
func Operation(ev usage.Event) usage.Operation {
	if ev.Operation == "" {
		return usage.OperationConsume
	}
	return ev.Operation
}
