package dynamodb

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/usage"
)

// maxTransactGet is DynamoDB's bound on the items of one TransactGetItems.
const maxTransactGet = 100

// snapshot verifies a plan of checks over several entitlements (a
// member's and its pool's) with one TransactGetItems: every item the
// plan names, read at one instant. Reading them one after another would
// prove each check at a different instant, and under a hot pool a
// rejection would almost never be proved; on a snapshot, what the
// decision taken again concludes is final (usage.Learned.Snapshot). ok
// is false when the plan names more items than one request reads.
func (s *Store) snapshot(ctx context.Context, scope usage.Scope, plan usage.Plan) (c usage.Learned, held, ok bool, err error) {
	var gets []types.TransactGetItem
	var targets []usage.Target
	seen := map[usage.Target]bool{}
	for _, w := range plan.Writes {
		if seen[w.Target] {
			continue
		}
		seen[w.Target] = true
		targets = append(targets, w.Target)
		gets = append(gets, types.TransactGetItem{Get: s.get(scope, w.Target)})
	}
	if len(gets) > maxTransactGet {
		return c, false, false, nil
	}
	out, err := s.client.TransactGetItems(ctx, &dynamodb.TransactGetItemsInput{TransactItems: gets})
	var canceled *types.TransactionCanceledException
	switch {
	case errors.As(err, &canceled):
		// A write to one of the items was under way: nothing learned, the
		// decision is verified again.
		return c, false, true, nil
	case err != nil:
		return c, false, true, err
	}
	items := map[usage.Target]map[string]types.AttributeValue{}
	for i, t := range targets {
		if i < len(out.Responses) {
			items[t] = out.Responses[i].Item
		}
	}
	held = true
	for _, w := range plan.Writes {
		held = held && holds(w.Conds, asRead(w.Target, items[w.Target]))
	}
	for _, t := range targets {
		learnFrom(&c, t, items[t])
	}
	c.Snapshot = true
	return c, held, true, nil
}

// asRead is an item as a check reads it: an entitlement's attributes, a
// ledger item's all.
func asRead(t usage.Target, item map[string]types.AttributeValue) usage.Item {
	if t.Kind == usage.EntitlementKind {
		return observe(item)
	}
	it := usage.Item{Exists: item != nil, Attrs: map[string]usage.Value{}}
	for k, v := range item {
		it.Attrs[k] = value(v)
	}
	return it
}

// get is the Get of a target's item: an entitlement's attributes, or a
// ledger item whole.
func (s *Store) get(scope usage.Scope, t usage.Target) *types.Get {
	if t.Kind != usage.EntitlementKind {
		return &types.Get{TableName: aws.String(s.cfg.LedgerTable), Key: ledgerKeyAttributes(targetScope(scope, t), t.Key)}
	}
	key, _ := s.cfg.Keys.key(targetScope(scope, t))
	proj, names := s.entitlementProjection()
	return &types.Get{TableName: aws.String(s.cfg.EntitlementsTable), Key: key.attributes(s.cfg.Keys),
		ProjectionExpression: aws.String(proj), ExpressionAttributeNames: names}
}
