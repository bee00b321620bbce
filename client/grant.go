package client

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/usage"
)

// GrantRequest asks to add a top-up to an entitlement: consumes draw from
// it once the period's allowance is used up, until it expires.
type GrantRequest struct {
	UserID, EntitlementKey string
	// PoolID, instead of UserID, grants to a team pool's own entitlement:
	// its members draw from the grant through the pool.
	PoolID string
	// GrantID is required: the grant's ID, which a void names, and its
	// idempotency key. The same ID again answers DUPLICATE with the
	// original grant.
	GrantID string
	// Amount is required, a positive exact decimal: a grant has no
	// default amount (zero is sent without one: MISSING_FIELD).
	Amount usage.Decimal
	// ExpiresAt is when the grant stops counting, exactly; it must be in
	// the future when the grant is decided (INVALID_FIELD otherwise). nil:
	// it never expires.
	ExpiresAt *time.Time
	// Priority orders the grants consumes draw from, lower first, 0 to
	// usage.MaxGrantPriority; nil is usage.DefaultGrantPriority.
	Priority *int
	Metadata json.RawMessage
}

// VoidRequest ends a grant: what is left of it stops counting, what was
// drawn stays drawn.
type VoidRequest struct {
	UserID, EntitlementKey, GrantID string
	// PoolID, instead of UserID: a grant of a team pool's own entitlement.
	PoolID string
}

// Grant is a grant as an answer to a grant or a void shows it.
type Grant struct {
	ID       string
	Amount   usage.Decimal // as granted
	Priority int
	// ExpiresAt is nil for a grant that never expires.
	ExpiresAt *time.Time
	// State is usage.GrantActive or usage.GrantVoided.
	State string
	// Voided is, for a voided grant, what was left of it when voided.
	Voided *usage.Decimal
}

// GrantResult is an applied or duplicate grant or void.
type GrantResult struct {
	// Result's Amount is the grant's amount, for a void too (what was
	// left of it is Grant.Voided).
	Result
	// Grant is the grant as the ledger records it after the decision (a
	// DUPLICATE of a grant voided since shows it voided).
	Grant Grant
}

// Grant adds a top-up. Both implementations answer it (grants may also be
// sent through the queue, as any event).
func (c core) Grant(ctx context.Context, r GrantRequest) (GrantResult, error) {
	return c.grant(ctx, usage.Event{UserID: r.UserID, PoolID: r.PoolID, EntitlementKey: r.EntitlementKey, Operation: usage.OperationGrant,
		GrantID: r.GrantID, Amount: r.Amount, ExpiresAt: r.ExpiresAt, Priority: r.Priority, Metadata: r.Metadata})
}

// Void ends a grant. The grant's state is its idempotency: a void of a
// voided grant is a DUPLICATE; of an expired one, GRANT_NOT_ACTIVE; of
// one the entitlement never had, GRANT_NOT_FOUND.
func (c core) Void(ctx context.Context, r VoidRequest) (GrantResult, error) {
	return c.grant(ctx, usage.Event{UserID: r.UserID, PoolID: r.PoolID, EntitlementKey: r.EntitlementKey, Operation: usage.OperationVoid, GrantID: r.GrantID})
}

func (c core) grant(ctx context.Context, ev usage.Event) (GrantResult, error) {
	res, err := c.decide(ctx, ev)
	if err != nil {
		return GrantResult{}, err
	}
	if res.Answer.Grant == nil {
		return GrantResult{}, fmt.Errorf("a %s answer without its grant: %+v", ev.Operation, res.Answer)
	}
	out := GrantResult{Result: res}
	if out.Grant, err = GrantOf(*res.Answer.Grant); err != nil {
		return GrantResult{}, err
	}
	return out, nil
}

// GrantOf reads the grant of an answer.
func GrantOf(g decision.Grant) (Grant, error) {
	out := Grant{ID: g.GrantID, Priority: g.Priority, State: g.State}
	var err error
	if out.Amount, err = decimal("grant.amount", g.Amount); err != nil {
		return Grant{}, err
	}
	if out.ExpiresAt, err = optionalInstant("grant.expiresAt", g.ExpiresAt); err != nil {
		return Grant{}, err
	}
	if out.Voided, err = optionalDecimal("grant.voided", g.Voided); err != nil {
		return Grant{}, err
	}
	return out, nil
}

// drawsOf reads an answer's draws or give-backs (nil for none).
func drawsOf(field string, ds []decision.Draw) ([]usage.Draw, error) {
	var out []usage.Draw
	for i, d := range ds {
		amount, err := decimal(fmt.Sprintf("%s[%d].amount", field, i), d.Amount)
		if err != nil {
			return nil, err
		}
		out = append(out, usage.Draw{Bucket: d.Bucket, GrantID: d.GrantID, Amount: amount, Lapsed: d.Lapsed})
	}
	return out, nil
}

// grantsOf reads a balance's grants, in the answer's (draw) order. The
// answer does not carry when each was granted: GrantedAt stays zero.
func grantsOf(gs []decision.GrantBalance) ([]usage.Grant, error) {
	var out []usage.Grant
	for i, g := range gs {
		field := fmt.Sprintf("grants[%d]", i)
		ug := usage.Grant{ID: g.GrantID, Priority: g.Priority}
		var err error
		if ug.Amount, err = decimal(field+".amount", g.Amount); err != nil {
			return nil, err
		}
		if ug.Remaining, err = decimal(field+".remaining", g.Remaining); err != nil {
			return nil, err
		}
		if ug.ExpiresAt, err = optionalInstant(field+".expiresAt", g.ExpiresAt); err != nil {
			return nil, err
		}
		out = append(out, ug)
	}
	return out, nil
}
