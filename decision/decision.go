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
	Hold *Hold `json:"hold,omitempty"`
	// Grant is, for a grant or a void, the grant as it now is.
	Grant *Grant `json:"grant,omitempty"`
	// Draws are, for an applied consume or reserve, the buckets it drew
	// from, in order; Returned, for an applied refund, commit or release,
	// where what it gave back went (lapsed: to a grant that expired or
	// was voided meanwhile, or to an ended period: nowhere).
	Draws    []Draw       `json:"draws,omitempty"`
	Returned []Draw       `json:"returned,omitempty"`
	Used     *json.Number `json:"used,omitempty"`
	// Held is the sum of the current period's active holds (already
	// counted in used).
	Held        *json.Number `json:"held,omitempty"`
	Limit       *json.Number `json:"limit,omitempty"`
	Remaining   *json.Number `json:"remaining,omitempty"`
	ResetPeriod string       `json:"resetPeriod,omitempty"`
	PeriodStart string       `json:"periodStart,omitempty"`
	NextReset   string       `json:"nextReset,omitempty"`
	// Grants are the grants that count now, in draw order; Overage the
	// overage allowed and used this period; Available what consumes may
	// still draw now, all buckets together (absent when unlimited).
	Grants    []GrantBalance `json:"grants,omitempty"`
	Overage   *Overage       `json:"overage,omitempty"`
	Available *json.Number   `json:"available,omitempty"`
	// Pool is, for a member of a pool, the pool's side of the decision
	// and the pool's balance after it.
	Pool *Pool `json:"pool,omitempty"`
}

// Pool is a member's pool as an answer shows it: what the operation drew
// from it or gave back to it beyond its allowance (as Draws and
// Returned), and its balance, read after the decision (absent when the
// pool could not be read).
type Pool struct {
	PoolID      string       `json:"poolId"`
	Draws       []Draw       `json:"draws,omitempty"`
	Returned    []Draw       `json:"returned,omitempty"`
	Used        *json.Number `json:"used,omitempty"`
	Limit       *json.Number `json:"limit,omitempty"`
	Remaining   *json.Number `json:"remaining,omitempty"`
	Available   *json.Number `json:"available,omitempty"`
	PeriodStart string       `json:"periodStart,omitempty"`
	NextReset   string       `json:"nextReset,omitempty"`
}

// WithPoolBalance adds the pool's balance to an answer's pool part, in
// the fields an entitlement's balance fills (WithBalance).
func (a Answer) WithPoolBalance(id string, b usage.Balance) Answer {
	p := Pool{PoolID: id}
	if a.Pool != nil {
		p = *a.Pool
	}
	w := Answer{}.WithBalance(b)
	p.Used, p.Limit, p.Remaining, p.Available, p.PeriodStart, p.NextReset = w.Used, w.Limit, w.Remaining, w.Available, w.PeriodStart, w.NextReset
	a.Pool = &p
	return a
}

// Draw is one bucket's part of a draw or a give-back.
type Draw struct {
	Bucket  usage.Bucket `json:"bucket"`
	GrantID string       `json:"grantId,omitempty"`
	Amount  json.Number  `json:"amount"`
	Lapsed  bool         `json:"lapsed,omitempty"`
}

// DrawsOf is draws as an answer shows them (nil for none).
func DrawsOf(ds []usage.Draw) []Draw {
	var out []Draw
	for _, d := range ds {
		out = append(out, Draw{Bucket: d.Bucket, GrantID: d.GrantID, Amount: json.Number(d.Amount.String()), Lapsed: d.Lapsed})
	}
	return out
}

// beyondAllowance shows draws or give-backs that involve more than the
// allowance; one that is the allowance's alone is left out, as it always
// was.
func beyondAllowance(ds []usage.Draw) []Draw {
	for _, d := range ds {
		if d.Bucket != usage.BucketAllowance || d.Lapsed {
			return DrawsOf(ds)
		}
	}
	return nil
}

// Grant is a grant as an answer to a grant or a void shows it.
type Grant struct {
	GrantID   string       `json:"grantId"`
	Amount    json.Number  `json:"amount"`
	Priority  int          `json:"priority"`
	ExpiresAt string       `json:"expiresAt,omitempty"`
	State     string       `json:"state"`
	Voided    *json.Number `json:"voided,omitempty"`
}

// GrantOf is a ledger entry as an answer shows a grant (nil if it is none).
func GrantOf(e usage.LedgerEntry) *Grant {
	if !e.Is(usage.OperationGrant) {
		return nil
	}
	g := &Grant{GrantID: e.DedupKey, Amount: json.Number(e.Amount.String()), Priority: e.Priority, State: e.GrantState}
	if e.GrantExpiresAt != nil {
		g.ExpiresAt = usage.FormatInstant(*e.GrantExpiresAt)
	}
	if e.Voided != nil {
		g.Voided = Number(*e.Voided)
	}
	return g
}

// GrantBalance is a grant as a balance shows it.
type GrantBalance struct {
	GrantID   string      `json:"grantId"`
	Amount    json.Number `json:"amount"`
	Remaining json.Number `json:"remaining"`
	Priority  int         `json:"priority"`
	ExpiresAt string      `json:"expiresAt,omitempty"`
	// Rollover marks the unused allowance a reset carried over.
	Rollover bool `json:"rollover,omitempty"`
}

// Overage is the overage allowed and used this period.
type Overage struct {
	Limit     json.Number `json:"limit"`
	Used      json.Number `json:"used"`
	Remaining json.Number `json:"remaining"`
}

// WithBalance adds a balance's fields to an answer.
func (a Answer) WithBalance(b usage.Balance) Answer {
	a.Used = Number(b.Used)
	if b.Limit != nil {
		a.Limit, a.Remaining, a.Available = Number(*b.Limit), Number(*b.Remaining), Number(*b.Available)
	}
	a.ResetPeriod = string(b.ResetPeriod)
	if b.PeriodStart != nil {
		a.PeriodStart = usage.FormatInstant(*b.PeriodStart)
	}
	if b.NextReset != nil {
		a.NextReset = usage.FormatInstant(*b.NextReset)
	}
	for _, g := range b.Grants {
		gb := GrantBalance{GrantID: g.ID, Amount: json.Number(g.Amount.String()), Remaining: json.Number(g.Remaining.String()),
			Priority: g.Priority, Rollover: g.Rollover()}
		if g.ExpiresAt != nil {
			gb.ExpiresAt = usage.FormatInstant(*g.ExpiresAt)
		}
		a.Grants = append(a.Grants, gb)
	}
	if b.OverageLimit != nil {
		left := b.OverageLimit.Sub(b.OverageUsed)
		if left.Sign() < 0 {
			left = usage.Decimal{}
		}
		a.Overage = &Overage{Limit: json.Number(b.OverageLimit.String()), Used: json.Number(b.OverageUsed.String()), Remaining: json.Number(left.String())}
	}
	return a
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
			a.Hold, a.Grant = HoldOf(*o.Entry), GrantOf(*o.Entry)
			// A settlement's outcome carries the hold's entry: only the
			// reserve itself (its hold still active) shows the draws.
			drew := o.Entry.Is(usage.OperationConsume) || o.Entry.Is(usage.OperationReserve) && o.Entry.HoldState == usage.HoldActive
			if drew {
				a.Draws = beyondAllowance(o.Entry.Draws)
			}
			if o.Entry.Pool != "" {
				a.Pool = &Pool{PoolID: o.Entry.Pool, Returned: beyondAllowance(o.PoolReturned)}
				if drew {
					a.Pool.Draws = beyondAllowance(o.Entry.PoolDraws)
				}
			}
		}
		a.Returned = beyondAllowance(o.Returned)
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
		if a.Grant == nil {
			a.Grant = GrantOf(*o.Original)
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
