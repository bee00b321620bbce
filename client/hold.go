package client

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/usage"
)

// ReserveRequest asks to hold Amount of an entitlement before long work
// whose cost is not known up front: the amount counts as used at once,
// within the limit, until the hold is committed, released or expires.
type ReserveRequest struct {
	UserID, EntitlementKey string
	// Amount is the estimate, a positive exact decimal; zero means 1, the
	// contract's default.
	Amount usage.Decimal
	// HoldID is required: the reserve's idempotency key and the hold's ID,
	// which the commit or release names. The same ID again answers
	// DUPLICATE with the original hold.
	HoldID string
	// Seconds is how long the hold lasts before it is released
	// automatically, 1 to usage.MaxHoldSeconds; zero means
	// usage.DefaultHoldSeconds.
	Seconds  int
	Metadata json.RawMessage
}

// CommitRequest settles a hold with what the work really used.
type CommitRequest struct {
	UserID, EntitlementKey, HoldID string
	// Amount is what was really used, from 0 to the held amount; nil
	// commits the whole hold.
	Amount *usage.Decimal
}

// ReleaseRequest settles a hold by giving all of it back.
type ReleaseRequest struct {
	UserID, EntitlementKey, HoldID string
}

// Hold is a hold as an answer shows it.
type Hold struct {
	ID        string
	Amount    usage.Decimal
	ExpiresAt time.Time
	// State is usage.HoldActive, HoldCommitted, HoldReleased or HoldExpired.
	State string
	// Committed is, for a committed hold, the amount committed.
	Committed *usage.Decimal
}

// HoldResult is an applied or duplicate reserve, commit or release.
type HoldResult struct {
	Result
	// Hold is the hold as it now is (for a DUPLICATE, as first decided).
	Hold Hold
	// Held is the sum of the current period's active holds after the
	// decision, already counted in Balance.Used; nil when there are none
	// (or the balance could not be read).
	Held *usage.Decimal
}

// Reserve holds an amount within the limit. Both implementations answer
// it (a reserve is synchronous only: from a queue nobody would learn
// whether it was granted).
func (c core) Reserve(ctx context.Context, r ReserveRequest) (HoldResult, error) {
	return c.hold(ctx, usage.Event{UserID: r.UserID, EntitlementKey: r.EntitlementKey, Operation: usage.OperationReserve,
		Amount: r.Amount, IdempotencyKey: r.HoldID, HoldSeconds: r.Seconds, Metadata: r.Metadata})
}

// Commit settles a hold with what was really used; the rest goes back.
func (c core) Commit(ctx context.Context, r CommitRequest) (HoldResult, error) {
	ev := usage.Event{UserID: r.UserID, EntitlementKey: r.EntitlementKey, Operation: usage.OperationCommit, HoldID: r.HoldID}
	if r.Amount != nil {
		ev.Amount, ev.AmountGiven = *r.Amount, true
	}
	return c.hold(ctx, ev)
}

// Release settles a hold by giving all of it back.
func (c core) Release(ctx context.Context, r ReleaseRequest) (HoldResult, error) {
	return c.hold(ctx, usage.Event{UserID: r.UserID, EntitlementKey: r.EntitlementKey, Operation: usage.OperationRelease, HoldID: r.HoldID})
}

func (c core) hold(ctx context.Context, ev usage.Event) (HoldResult, error) {
	res, err := c.decide(ctx, ev)
	if err != nil {
		return HoldResult{}, err
	}
	if res.Answer.Hold == nil {
		return HoldResult{}, fmt.Errorf("a %s answer without its hold: %+v", ev.Operation, res.Answer)
	}
	out := HoldResult{Result: res}
	if out.Hold, err = HoldOf(*res.Answer.Hold); err != nil {
		return HoldResult{}, err
	}
	if out.Held, err = optionalDecimal("held", res.Answer.Held); err != nil {
		return HoldResult{}, err
	}
	return out, nil
}

// HoldOf reads a hold of an answer: also the one a *RejectedError's
// Answer carries (HOLD_NOT_ACTIVE: the hold as it was settled).
func HoldOf(h decision.Hold) (Hold, error) {
	out := Hold{ID: h.HoldID, State: h.State}
	var err error
	if out.Amount, err = decimal("hold.amount", h.Amount); err != nil {
		return Hold{}, err
	}
	if out.ExpiresAt, err = usage.ParseInstant(h.ExpiresAt); err != nil {
		return Hold{}, fmt.Errorf("answer field hold.expiresAt: %w", err)
	}
	if out.Committed, err = optionalDecimal("hold.committed", h.Committed); err != nil {
		return Hold{}, err
	}
	return out, nil
}
