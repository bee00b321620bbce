package dynamodb

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/usage"
)

// Verify confirms a plan of checks by consistent reads instead of a
// transaction: a read unit each instead of two write units per item. The
// entitlement is read first, then the ledger keys (in one batch): a key
// absent after the entitlement proved the rejection was absent when it
// did (entries are never removed, only expired), so the rejection holds
// at that instant and the DUPLICATE-over-rejection guarantee stands. held
// is false when a check failed; c holds what the reads taught.
func (s *Store) Verify(ctx context.Context, scope usage.Scope, plan usage.Plan) (c usage.Learned, held bool, err error) {
	if entitlements(plan) > 1 {
		if c, held, ok, err := s.snapshot(ctx, scope, plan); ok {
			return c, held, err
		}
	}
	var ledger []usage.Write
	for _, w := range plan.Writes {
		if w.Target.Kind != usage.EntitlementKind {
			ledger = append(ledger, w)
			continue
		}
		k, _ := s.cfg.Keys.key(targetScope(scope, w.Target))
		it, err := s.read(ctx, k, true)
		if err != nil {
			return c, false, err
		}
		if w.Target.Scope != (usage.Scope{}) {
			if c.Others == nil {
				c.Others = map[usage.Scope]usage.Item{}
			}
			c.Others[w.Target.Scope] = it
		} else {
			c.Entitlement = &it
		}
		if !holds(w.Conds, it) {
			return c, false, nil
		}
	}
	// A team's ledger keys are each under its member's scope.
	byScope := map[usage.Scope][]string{}
	for _, w := range ledger {
		ls := targetScope(scope, w.Target)
		byScope[ls] = append(byScope[ls], w.Target.Key)
	}
	items := map[usage.Scope]map[string]map[string]types.AttributeValue{}
	for ls, keys := range byScope {
		if items[ls], err = s.readLedgerItems(ctx, ls, keys, true); err != nil {
			return c, false, err
		}
	}
	held = true
	for _, w := range ledger {
		item := items[targetScope(scope, w.Target)][w.Target.Key]
		learnFrom(&c, w.Target, item)
		held = held && holds(w.Conds, asRead(w.Target, item))
	}
	return c, held, nil
}

// holds reports whether every condition holds on the item as read.
func holds(conds []usage.Cond, it usage.Item) bool {
	for _, cond := range conds {
		if !cond.Holds(it.Exists, cond.On(it.Attrs)) {
			return false
		}
	}
	return true
}

// entitlements counts the entitlement items a plan names.
func entitlements(plan usage.Plan) int {
	n := 0
	for _, w := range plan.Writes {
		if w.Target.Kind == usage.EntitlementKind {
			n++
		}
	}
	return n
}
