// Package client is the Go client of synchronous decisions: consume,
// refund and balance requests answered now, by the same decision rule and
// store as queued usage events; and the holds of long-running work
// (Reserve, Commit, Release) and the grants that top an allowance up
// (Grant, Void), which both implementations answer too.
//
// Two implementations serve one interface, Client:
//
//   - Lambda invokes the decisions function (the service's bootstrap
//     answering direct invocations). The caller needs only
//     lambda:InvokeFunction on it.
//   - Local decides in process against DynamoDB, for services that hold
//     the tables' permissions themselves.
//
// Both send the request through the message contract's JSON form, so both
// see exactly the same validation and defaults.
//
// An applied or DUPLICATE request is a Result; a DUPLICATE is the answer
// to a retry (after a timeout, say) and carries the decision first taken
// under its idempotency key. Everything else is an error: a
// *RejectedError (the request can never succeed as sent), a *RetryError
// (errors.Is(err, ErrRetry): transient, retry with the same idempotency
// key), a *FunctionError (the function failed: a bug), or an error of the
// AWS SDK or the context, which leaves the outcome unknown; retrying with
// the same idempotency key is safe then too. A retry of a request that had
// been decided (the SDK's own, after a lost response, or the caller's)
// answers DUPLICATE: treat it as the original decision it carries.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Client asks for synchronous decisions. Implementations are safe for
// concurrent use.
type Client interface {
	// Consume adds an amount to the entitlement's usage, within its limit.
	Consume(ctx context.Context, r ConsumeRequest) (Result, error)
	// Refund gives back (part of) an applied consume.
	Refund(ctx context.Context, r RefundRequest) (Result, error)
	// Balance reads the entitlement's used, limit and remaining now, with
	// an ended period read as used 0 (the reset is lazy: nothing is
	// written). An unknown entitlement is a *RejectedError
	// (ENTITLEMENT_NOT_FOUND).
	Balance(ctx context.Context, userID, entitlementKey string) (usage.Balance, error)
}

// ConsumeRequest asks to consume Amount of an entitlement.
type ConsumeRequest struct {
	UserID, EntitlementKey string
	// Amount is a positive exact decimal; zero means 1, the contract's
	// default.
	Amount usage.Decimal
	// IdempotencyKey is required: it is how a retry after a timeout learns
	// what happened (a DUPLICATE with the original decision). Derive it
	// from the business action.
	IdempotencyKey string
	// Metadata is an optional JSON object kept verbatim in the ledger.
	Metadata json.RawMessage
}

// RefundRequest asks to give back (part of) the consume applied under
// RefundOf, that consume's idempotency key.
type RefundRequest struct {
	UserID, EntitlementKey string
	RefundOf               string
	// Amount is what to give back; zero means all that remains refundable.
	Amount usage.Decimal
	// IdempotencyKey is required, as for a consume: the refund's own key.
	IdempotencyKey string
	Metadata       json.RawMessage
}

// Result is an applied or duplicate consume or refund.
type Result struct {
	// Status is decision.Applied, or decision.Duplicate when the
	// idempotency key had already been decided: nothing changed now.
	Status decision.Status
	// Amount is what the operation moved (a refund without amount: what
	// remained). For a DUPLICATE, what the original moved.
	Amount usage.Decimal
	// Original is, for a DUPLICATE, the decision first taken under the key.
	Original *Original
	// Draws are, for an applied consume or reserve that drew beyond the
	// allowance, the buckets it drew from, in order (nil when the
	// allowance alone covered it). Returned is, for an applied refund,
	// commit or release whose give-back involved a bucket beyond the
	// allowance or went nowhere in part, where it went, the last drawn
	// first; a part that went to a grant expired or voided meanwhile, or
	// to an ended period, is Lapsed: nothing was given back (nil when only
	// the allowance was involved and nothing lapsed).
	Draws, Returned []usage.Draw
	// Balance is the entitlement read after the decision, or nil when that
	// read failed (the decision stands; ask Balance again).
	Balance *usage.Balance
	// Pool is, for a member of a pool, the pool's side (nil otherwise).
	Pool *Pool
	// Answer is the answer as received.
	Answer decision.Answer
}

// Pool is a member's pool as a result shows it: what the operation drew
// from it or gave back to it beyond the pool's allowance (as Draws and
// Returned), and the pool's balance read after the decision (nil when
// that read failed or the pool has no item).
type Pool struct {
	ID              string
	Draws, Returned []usage.Draw
	Balance         *usage.Balance
}

func poolOf(p *decision.Pool) (*Pool, error) {
	if p == nil {
		return nil, nil
	}
	out := &Pool{ID: p.PoolID}
	var err error
	if out.Draws, err = drawsOf("pool.draws", p.Draws); err != nil {
		return nil, err
	}
	if out.Returned, err = drawsOf("pool.returned", p.Returned); err != nil {
		return nil, err
	}
	if p.Used == nil {
		return out, nil
	}
	out.Balance, err = balanceOf(decision.Answer{Used: p.Used, Limit: p.Limit, Remaining: p.Remaining, Available: p.Available,
		PeriodStart: p.PeriodStart, NextReset: p.NextReset})
	return out, err
}

// Duplicate reports whether the request had already been decided.
func (r Result) Duplicate() bool { return r.Status == decision.Duplicate }

// Original is a decision as the ledger recorded it.
type Original struct {
	Status    decision.Status
	Operation usage.Operation
	Amount    usage.Decimal
	RefundOf  string    // a refund's consume
	AppliedAt time.Time // zero when not recorded
	// PeriodStart is the period it counted in; nil for an entitlement
	// that never resets.
	PeriodStart *time.Time
}

// RejectedError is a REJECTED answer: the request can never succeed as
// sent. errors.Is(err, usage.ErrLimitExceeded) and the other usage
// sentinels match it by reason.
type RejectedError struct {
	Reason  usage.Reason
	Message string
	// Original is, for IDEMPOTENCY_CONFLICT, the decision first taken
	// under the key.
	Original *Original
	// Balance is the entitlement the request was checked against, when
	// the answer carries it (LIMIT_EXCEEDED, refund rejections).
	Balance *usage.Balance
	Answer  decision.Answer
}

func (e *RejectedError) Error() string {
	if e.Message == "" {
		return "rejected: " + string(e.Reason)
	}
	return fmt.Sprintf("rejected: %s: %s", e.Reason, e.Message)
}

// Is matches a usage sentinel (a *usage.RejectionError with only a
// reason) of the same reason.
func (e *RejectedError) Is(target error) bool {
	t, ok := target.(*usage.RejectionError)
	return ok && t.Reason == e.Reason && t.Field == "" && t.Message == ""
}

// ErrRetry matches a *RetryError.
var ErrRetry = errors.New("transient failure: retry with the same idempotency key")

// RetryError is a RETRY answer: nothing was decided (the store kept
// failing or conflicting). Retry with the same idempotency key.
type RetryError struct {
	Message string
	Answer  decision.Answer
}

func (e *RetryError) Error() string {
	if e.Message == "" {
		return ErrRetry.Error()
	}
	return "transient failure: " + e.Message
}

// Is makes errors.Is(err, ErrRetry) true.
func (e *RetryError) Is(target error) bool { return target == ErrRetry }

// FunctionError is a failed invocation of the decisions function: it
// crashed, timed out or could not start (missing configuration, say). The
// function answers every request, bad ones included, so this is a bug or
// a deployment fault, not something the request can fix.
type FunctionError struct {
	Type    string // errorType, or Lambda's FunctionError header when no type was given
	Message string
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("the decisions function failed: %s: %s", e.Type, e.Message)
}

// answerer answers one request, given as the event and its body in the
// message contract's JSON form: the transport of an implementation.
type answerer func(ctx context.Context, ev usage.Event, body []byte) (decision.Answer, error)

// core is what both implementations share: requests to bodies, answers
// to results and errors.
type core struct{ answer answerer }

// Consume implements Client.
func (c core) Consume(ctx context.Context, r ConsumeRequest) (Result, error) {
	return c.decide(ctx, usage.Event{UserID: r.UserID, EntitlementKey: r.EntitlementKey, Operation: usage.OperationConsume,
		Amount: r.Amount, IdempotencyKey: r.IdempotencyKey, Metadata: r.Metadata})
}

// Refund implements Client.
func (c core) Refund(ctx context.Context, r RefundRequest) (Result, error) {
	return c.decide(ctx, usage.Event{UserID: r.UserID, EntitlementKey: r.EntitlementKey, Operation: usage.OperationRefund,
		RefundOf: r.RefundOf, Amount: r.Amount, IdempotencyKey: r.IdempotencyKey, Metadata: r.Metadata})
}

// Balance implements Client.
func (c core) Balance(ctx context.Context, userID, entitlementKey string) (usage.Balance, error) {
	a, err := c.ask(ctx, usage.Event{UserID: userID, EntitlementKey: entitlementKey, Operation: usage.OperationBalance})
	if err != nil {
		return usage.Balance{}, err
	}
	if a.Status != decision.OK {
		return usage.Balance{}, unexpected(a)
	}
	b, err := balanceOf(a)
	switch {
	case err != nil:
		return usage.Balance{}, err
	case b == nil:
		return usage.Balance{}, fmt.Errorf("a balance answer without used: %+v", a)
	}
	return *b, nil
}

func (c core) decide(ctx context.Context, ev usage.Event) (Result, error) {
	a, err := c.ask(ctx, ev)
	if err != nil {
		return Result{}, err
	}
	if a.Status != decision.Applied && a.Status != decision.Duplicate {
		return Result{}, unexpected(a)
	}
	res := Result{Status: a.Status, Answer: a}
	if res.Original, err = originalOf(a.Original); err != nil {
		return Result{}, err
	}
	if res.Balance, err = balanceOf(a); err != nil {
		return Result{}, err
	}
	if res.Draws, err = drawsOf("draws", a.Draws); err != nil {
		return Result{}, err
	}
	if res.Returned, err = drawsOf("returned", a.Returned); err != nil {
		return Result{}, err
	}
	if res.Pool, err = poolOf(a.Pool); err != nil {
		return Result{}, err
	}
	switch {
	case a.Amount != nil:
		if res.Amount, err = decimal("amount", *a.Amount); err != nil {
			return Result{}, err
		}
	case res.Original != nil:
		res.Amount = res.Original.Amount
	}
	return res, nil
}

// ask sends ev and turns REJECTED and RETRY answers into errors; the
// answer it returns is APPLIED, DUPLICATE or OK.
func (c core) ask(ctx context.Context, ev usage.Event) (decision.Answer, error) {
	body, err := ev.MarshalJSON()
	if err != nil { // metadata that is no JSON: rejected as the function would
		var r *usage.RejectionError
		if errors.As(err, &r) {
			msg := r.Message
			if r.Field != "" {
				msg = r.Field + ": " + msg
			}
			return decision.Answer{}, &RejectedError{Reason: r.Reason, Message: msg}
		}
		return decision.Answer{}, err
	}
	a, err := c.answer(ctx, ev, body)
	if err != nil {
		return decision.Answer{}, err
	}
	switch a.Status {
	case decision.Rejected:
		return decision.Answer{}, rejectedOf(a)
	case decision.Retry:
		return decision.Answer{}, &RetryError{Message: a.Message, Answer: a}
	}
	return a, nil
}

func rejectedOf(a decision.Answer) error {
	e := &RejectedError{Reason: a.Reason, Message: a.Message, Answer: a}
	var err error
	if e.Original, err = originalOf(a.Original); err != nil {
		return err
	}
	if e.Balance, err = balanceOf(a); err != nil {
		return err
	}
	return e
}

func unexpected(a decision.Answer) error {
	return fmt.Errorf("unexpected answer status %q (message %q)", a.Status, a.Message)
}

// balanceOf reads the balance fields of an answer; nil when it has none.
func balanceOf(a decision.Answer) (*usage.Balance, error) {
	if a.Used == nil {
		return nil, nil
	}
	var b usage.Balance
	var err error
	if b.Used, err = decimal("used", *a.Used); err != nil {
		return nil, err
	}
	if b.Limit, err = optionalDecimal("limit", a.Limit); err != nil {
		return nil, err
	}
	if b.Remaining, err = optionalDecimal("remaining", a.Remaining); err != nil {
		return nil, err
	}
	if b.Held, err = optionalDecimal("held", a.Held); err != nil {
		return nil, err
	}
	b.ResetPeriod = usage.ResetPeriod(a.ResetPeriod)
	if b.PeriodStart, err = optionalInstant("periodStart", a.PeriodStart); err != nil {
		return nil, err
	}
	if b.NextReset, err = optionalInstant("nextReset", a.NextReset); err != nil {
		return nil, err
	}
	if b.Grants, err = grantsOf(a.Grants); err != nil {
		return nil, err
	}
	if a.Overage != nil {
		if b.OverageLimit, err = optionalDecimal("overage.limit", &a.Overage.Limit); err != nil {
			return nil, err
		}
		if b.OverageUsed, err = decimal("overage.used", a.Overage.Used); err != nil {
			return nil, err
		}
	}
	if b.Available, err = optionalDecimal("available", a.Available); err != nil {
		return nil, err
	}
	return &b, nil
}

func originalOf(o *decision.Original) (*Original, error) {
	if o == nil {
		return nil, nil
	}
	out := &Original{Status: o.Status, Operation: usage.Operation(o.Operation), RefundOf: o.RefundOf}
	var err error
	if out.Amount, err = decimal("original.amount", o.Amount); err != nil {
		return nil, err
	}
	if o.AppliedAt != "" {
		if out.AppliedAt, err = time.Parse(time.RFC3339Nano, o.AppliedAt); err != nil {
			return nil, fmt.Errorf("answer field original.appliedAt: %w", err)
		}
	}
	if out.PeriodStart, err = optionalInstant("original.periodStart", o.PeriodStart); err != nil {
		return nil, err
	}
	return out, nil
}

func decimal(field string, n json.Number) (usage.Decimal, error) {
	d, err := usage.ParseDecimal(n.String())
	if err != nil {
		return usage.Decimal{}, fmt.Errorf("answer field %s: %w", field, err)
	}
	return d, nil
}

func optionalDecimal(field string, n *json.Number) (*usage.Decimal, error) {
	if n == nil {
		return nil, nil
	}
	d, err := decimal(field, *n)
	return &d, err
}

func optionalInstant(field, s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := usage.ParseInstant(s)
	if err != nil {
		return nil, fmt.Errorf("answer field %s: %w", field, err)
	}
	return &t, nil
}
