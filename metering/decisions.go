package metering

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// DecisionStore is what the synchronous use case needs: the write path,
// and the consistent reads its answers show.
type DecisionStore interface {
	Updater
	ReadEntitlement(ctx context.Context, scope usage.Scope) (usage.Entitlement, error)
	ActiveHolds(ctx context.Context, scope usage.Scope) ([]usage.LedgerEntry, error)
}

// Decisions is the synchronous use case: one request, one answer,
// through the same write path and rule as queued events, so synchronous
// and queued traffic on one entitlement race safely. Every request gets
// an Answer, never an error: a bad request is a REJECTED answer with its
// reason, a transient failure a RETRY answer.
type Decisions struct {
	Store DecisionStore
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
func (e *Decisions) Handle(ctx context.Context, body []byte) decision.Answer {
	ev, err := usage.ParseEvent(body)
	var a decision.Answer
	if err != nil {
		a = decision.RejectedAnswer(err)
	} else {
		a = e.Decide(ctx, ev)
	}
	e.log(ctx, ev, a)
	return a
}

func (e *Decisions) log(ctx context.Context, ev usage.Event, a decision.Answer) {
	if e.Logger == nil {
		return
	}
	level := slog.LevelInfo
	if a.Status == decision.Applied || a.Status == decision.OK {
		level = slog.LevelDebug
	}
	attrs := []slog.Attr{slog.String("requestId", pipeline.RequestID(ctx)),
		slog.String("operation", string(decision.Operation(ev))), slog.String("status", string(a.Status)), slog.String("reason", string(a.Reason)),
		slog.String("message", a.Message), slog.String("userId", ev.UserID), slog.String("entitlementKey", ev.EntitlementKey),
		slog.String("idempotencyKey", ev.IdempotencyKey)}
	if ev.PoolID != "" {
		attrs = append(attrs, slog.String("poolId", ev.PoolID))
	}
	e.Logger.LogAttrs(ctx, level, "request answered", attrs...)
}

// Decide answers one validated request.
func (e *Decisions) Decide(ctx context.Context, ev usage.Event) decision.Answer {
	if err := ev.Validate(); err != nil {
		return decision.RejectedAnswer(err)
	}
	if ev.Is(usage.OperationBalance) {
		return e.balance(ctx, ev.Scope())
	}
	if ev.IdempotencyKey == "" && (ev.Is(usage.OperationConsume) || ev.Is(usage.OperationRefund)) {
		// The key is the only way a retry after a timeout learns what
		// happened, so the synchronous door insists on one. (A reserve's
		// is its hold ID, required by validation; a settlement's
		// idempotency is its hold's state.)
		return decision.RejectedAnswer(&usage.RejectionError{Reason: usage.ReasonMissingField, Field: "idempotencyKey",
			Message: "is required for a synchronous " + string(decision.Operation(ev))})
	}
	now := e.now()
	rules := usage.Rules{Now: now, Notify: e.Notify} // no wait: a target not applied now is not found
	o := e.Store.Update(ctx, ev.Scope(), []usage.Record{{Event: ev}}, rules.Plan)[0]
	if e.Observe != nil {
		e.Observe(ctx, ev, o)
	}
	a := decision.AnswerOf(o)
	if a.Status == decision.Retry || a.Reason == usage.ReasonEntitlementNotFound || a.Reason == usage.ReasonInvalidEntitlement {
		return a
	}
	return e.withBalance(ctx, ev.Scope(), a)
}

func (e *Decisions) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Decisions) balance(ctx context.Context, scope usage.Scope) decision.Answer {
	return e.withBalance(ctx, scope, decision.Answer{Status: decision.OK})
}

// withBalance adds the entitlement's current balance, read consistently
// after the decision.
func (e *Decisions) withBalance(ctx context.Context, scope usage.Scope, a decision.Answer) decision.Answer {
	ent, err := e.Store.ReadEntitlement(ctx, scope)
	if err != nil {
		if a.Status == decision.OK {
			return decision.Answer{Status: decision.Retry, Message: err.Error()}
		}
		return a // decided and written; only the balance is missing
	}
	b, err := usage.BalanceOf(ent, e.now())
	if err != nil {
		if a.Status == decision.OK {
			return decision.RejectedAnswer(err)
		}
		return a
	}
	a = a.WithBalance(b)
	if held, err := e.held(ctx, scope, b); err == nil {
		a.Held = held
	}
	return e.withPool(ctx, scope, ent.Pool, a)
}

// withPool adds a member's pool balance, read consistently after the
// decision (the pool's ID alone when it cannot be read).
func (e *Decisions) withPool(ctx context.Context, scope usage.Scope, id string, a decision.Answer) decision.Answer {
	if id == "" {
		return a
	}
	if a.Pool == nil {
		a.Pool = &decision.Pool{PoolID: id}
	}
	id = a.Pool.PoolID // a give-back's: the pool its entry counted against
	pool, err := e.Store.ReadEntitlement(ctx, usage.PoolScope(id, scope.EntitlementKey))
	if err != nil || !pool.Exists {
		return a
	}
	if b, err := usage.BalanceOf(pool, e.now()); err == nil {
		a = a.WithPoolBalance(id, b)
	}
	return a
}

// held sums the active holds of the balance's period (absent when
// there are none).
func (e *Decisions) held(ctx context.Context, scope usage.Scope, b usage.Balance) (*json.Number, error) {
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
	return decision.Number(sum), nil
}
