// Package decision answers callers that need an answer now: a consume or
// refund decided and written synchronously, or a balance read, through
// the same store and decision rule as queued events, so synchronous and
// queued traffic on one entitlement race safely. Every request gets an
// Answer, never an error: a bad request is a REJECTED answer with its
// reason, a transient failure a RETRY answer.
package decision

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Store is what the engine needs of storage: the atomic decide-and-write
// of pipeline.Store, and a consistent read of an entitlement.
type Store interface {
	Update(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome
	ReadEntitlement(ctx context.Context, scope usage.Scope) (usage.Entitlement, error)
	// ActiveHolds lists a scope's holds not settled yet.
	ActiveHolds(ctx context.Context, scope usage.Scope) ([]usage.LedgerEntry, error)
}

// Status is an answer's status: an outcome's, or OK for a balance.
type Status string

const (
	Applied   Status = "APPLIED"
	Duplicate Status = "DUPLICATE"
	Rejected  Status = "REJECTED"
	Retry     Status = "RETRY"
	OK        Status = "OK"
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

func holdOf(e usage.LedgerEntry) *Hold {
	if !e.Is(usage.OperationReserve) {
		return nil
	}
	h := &Hold{HoldID: e.DedupKey, Amount: json.Number(e.Amount.String()), ExpiresAt: usage.FormatInstant(e.HoldExpiresAt), State: e.HoldState}
	if e.HoldState == usage.HoldCommitted && e.Actual != nil {
		h.Committed = number(*e.Actual)
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

// Engine decides synchronous requests.
type Engine struct {
	Store Store
	// Now is the decision clock (time.Now when nil).
	Now func() time.Time
	// Logger, when set, gets one line per answer (DEBUG for APPLIED and
	// OK): request ID, status, reason, user and entitlement; never the
	// request's metadata.
	Logger *slog.Logger
	// Observe, when set, is told every decided request's outcome (for
	// metrics).
	Observe func(ctx context.Context, ev usage.Event, o usage.Outcome)
	// Notify, when set, has the decisions that cross a threshold or first
	// hit the limit record a notification, as queued events do
	// (usage.Rules.Notify).
	Notify *usage.Notify
}

// Handle parses one JSON request and answers it.
func (e *Engine) Handle(ctx context.Context, body []byte) Answer {
	ev, err := usage.ParseEvent(body)
	var a Answer
	if err != nil {
		a = rejected(err)
	} else {
		a = e.Decide(ctx, ev)
	}
	e.log(ctx, ev, a)
	return a
}

func (e *Engine) log(ctx context.Context, ev usage.Event, a Answer) {
	if e.Logger == nil {
		return
	}
	level := slog.LevelInfo
	if a.Status == Applied || a.Status == OK {
		level = slog.LevelDebug
	}
	e.Logger.LogAttrs(ctx, level, "request answered", slog.String("requestId", pipeline.RequestID(ctx)),
		slog.String("operation", string(operation(ev))), slog.String("status", string(a.Status)), slog.String("reason", string(a.Reason)),
		slog.String("message", a.Message), slog.String("userId", ev.UserID), slog.String("entitlementKey", ev.EntitlementKey),
		slog.String("idempotencyKey", ev.IdempotencyKey))
}

// Decide answers one validated request.
func (e *Engine) Decide(ctx context.Context, ev usage.Event) Answer {
	if err := ev.Validate(); err != nil {
		return rejected(err)
	}
	if ev.Is(usage.OperationBalance) {
		return e.balance(ctx, ev.Scope())
	}
	if ev.IdempotencyKey == "" && (ev.Is(usage.OperationConsume) || ev.Is(usage.OperationRefund)) {
		// The key is the only way a retry after a timeout learns what
		// happened, so the synchronous door insists on one. (A reserve's
		// is its hold ID, required by validation; a settlement's
		// idempotency is its hold's state.)
		return rejected(&usage.RejectionError{Reason: usage.ReasonMissingField, Field: "idempotencyKey",
			Message: "is required for a synchronous " + string(operation(ev))})
	}
	now := e.now()
	rules := usage.Rules{Now: now, Notify: e.Notify} // no wait: a target not applied now is not found
	o := e.Store.Update(ctx, ev.Scope(), []usage.Record{{Event: ev}}, rules.Plan)[0]
	if e.Observe != nil {
		e.Observe(ctx, ev, o)
	}
	a := answerOf(o)
	if a.Status == Retry || a.Reason == usage.ReasonEntitlementNotFound || a.Reason == usage.ReasonInvalidEntitlement {
		return a
	}
	return e.withBalance(ctx, ev.Scope(), a)
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Engine) balance(ctx context.Context, scope usage.Scope) Answer {
	return e.withBalance(ctx, scope, Answer{Status: OK})
}

// withBalance adds the entitlement's current balance, read consistently
// after the decision.
func (e *Engine) withBalance(ctx context.Context, scope usage.Scope, a Answer) Answer {
	ent, err := e.Store.ReadEntitlement(ctx, scope)
	if err != nil {
		if a.Status == OK {
			return Answer{Status: Retry, Message: err.Error()}
		}
		return a // decided and written; only the balance is missing
	}
	b, err := usage.BalanceOf(ent, e.now())
	if err != nil {
		if a.Status == OK {
			return rejected(err)
		}
		return a
	}
	a.Used = number(b.Used)
	if held, err := e.held(ctx, scope, b); err == nil {
		a.Held = held
	}
	if b.Limit != nil {
		a.Limit, a.Remaining = number(*b.Limit), number(*b.Remaining)
	}
	a.ResetPeriod = string(b.ResetPeriod)
	if b.PeriodStart != nil {
		a.PeriodStart = usage.FormatInstant(*b.PeriodStart)
	}
	if b.NextReset != nil {
		a.NextReset = usage.FormatInstant(*b.NextReset)
	}
	return a
}

// held sums the active holds of the balance's period (absent when
// there are none).
func (e *Engine) held(ctx context.Context, scope usage.Scope, b usage.Balance) (*json.Number, error) {
	holds, err := e.Store.ActiveHolds(ctx, scope)
	if err != nil || len(holds) == 0 {
		return nil, err
	}
	period := ""
	if b.PeriodStart != nil {
		period = usage.FormatInstant(*b.PeriodStart)
	}
	var sum usage.Decimal
	for _, h := range holds {
		if b.ResetPeriod == usage.ResetNone || h.PeriodStart == period {
			sum = sum.Add(h.Amount)
		}
	}
	if sum.IsZero() {
		return nil, nil
	}
	return number(sum), nil
}

func answerOf(o usage.Outcome) Answer {
	var a Answer
	switch o.Status {
	case usage.Applied:
		a.Status = Applied
		if o.Entry != nil {
			a.Amount = number(o.Entry.Amount)
			a.Hold = holdOf(*o.Entry)
		}
	case usage.Duplicate:
		a.Status = Duplicate
	case usage.Rejected:
		a = rejected(o.Err)
	default:
		a.Status = Retry
		if o.Err != nil {
			a.Message = o.Err.Error()
		}
	}
	if o.Original != nil {
		a.Original = original(*o.Original)
		if a.Hold == nil {
			a.Hold = holdOf(*o.Original)
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

func rejected(err error) Answer {
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

func number(d usage.Decimal) *json.Number {
	n := json.Number(d.String())
	return &n
}

func operation(ev usage.Event) usage.Operation {
	if ev.Operation == "" {
		return usage.OperationConsume
	}
	return ev.Operation
}
