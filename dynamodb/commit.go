package dynamodb

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/usage-event-service/usage-event-service/usage"
)

// Commit sends the plan's writes as one transaction and hands the
// notifications it recorded to the outbox. A canceled transaction, or one
// refused as invalid, is a *usage.Refusal with what its reasons taught.
func (s *Store) Commit(ctx context.Context, scope usage.Scope, plan usage.Plan) error {
	key, _ := s.cfg.Keys.key(scope)
	tx, notes := s.transaction(scope, key, plan)
	if _, err := s.client.TransactWriteItems(ctx, tx); err != nil {
		if r, ok := refusal(err, plan); ok {
			return r
		}
		return err
	}
	if len(notes) > 0 && s.cfg.Outbox != nil {
		s.cfg.Outbox.Recorded(ctx, notes)
	}
	return nil
}

// transaction translates a plan: one transaction item per write, in the
// plan's order (cancellation reasons come back in the same order).
func (s *Store) transaction(scope usage.Scope, key entitlementKey, plan usage.Plan) (*dynamodb.TransactWriteItemsInput, []usage.Notification) {
	now := s.cfg.Now().UTC()
	items := make([]types.TransactWriteItem, len(plan.Writes))
	var notes []usage.Notification
	for i, w := range plan.Writes {
		table, keyAttr, itemKey := s.cfg.EntitlementsTable, s.cfg.Keys.PartitionAttr, key.attributes(s.cfg.Keys)
		switch w.Target.Kind {
		case usage.LedgerKind:
			table, keyAttr, itemKey = s.cfg.LedgerTable, ledgerPK, ledgerKeyAttributes(targetScope(scope, w.Target), w.Target.Key)
		case usage.NotificationKind:
			table, keyAttr, itemKey = s.cfg.LedgerTable, ledgerPK, notificationKeyAttributes(targetScope(scope, w.Target), w.Target.Key)
		default:
			if w.Target.Scope != (usage.Scope{}) {
				other, _ := s.cfg.Keys.key(w.Target.Scope)
				itemKey = other.attributes(s.cfg.Keys)
			}
		}
		e := translate(w, keyAttr)
		allOld := types.ReturnValuesOnConditionCheckFailureAllOld
		switch w.Action {
		case usage.Put:
			var item map[string]types.AttributeValue
			if w.Notice != nil {
				n := *w.Notice
				n.OccurredAt = now
				notes = append(notes, n)
				item = notificationItem(targetScope(scope, w.Target), &n, s.cfg.Retention)
			} else {
				item = ledgerItem(targetScope(scope, w.Target), w.Entry, now, now.Add(s.cfg.Retention))
			}
			items[i].Put = &types.Put{TableName: aws.String(table), Item: item,
				ConditionExpression: nilIfBlank(e.condition), ExpressionAttributeNames: nilIfNoNames(e.names),
				ExpressionAttributeValues: nilIfEmpty(e.values), ReturnValuesOnConditionCheckFailure: allOld}
		case usage.Update:
			items[i].Update = &types.Update{TableName: aws.String(table), Key: itemKey,
				UpdateExpression: aws.String(e.update), ConditionExpression: nilIfBlank(e.condition),
				ExpressionAttributeNames: e.names, ExpressionAttributeValues: nilIfEmpty(e.values),
				ReturnValuesOnConditionCheckFailure: allOld}
		case usage.Check:
			items[i].ConditionCheck = &types.ConditionCheck{TableName: aws.String(table), Key: itemKey,
				ConditionExpression: aws.String(e.condition), ExpressionAttributeNames: e.names,
				ExpressionAttributeValues: nilIfEmpty(e.values), ReturnValuesOnConditionCheckFailure: allOld}
		}
	}
	return &dynamodb.TransactWriteItemsInput{
		TransactItems: items,
		// Free to ask for; lets SDK middleware (the benchmark's meter)
		// account write units per event.
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
		// When the SDK retries this exact request after a lost response
		// (the write may have committed), DynamoDB answers with the first
		// attempt's success instead of failing the ledger conditions, so
		// the events are reported APPLIED, not DUPLICATE.
		ClientRequestToken: aws.String(requestToken()),
	}, notes
}

// targetScope is the scope a ledger item or a notification is under: the
// one its target names (a pool's notification, a team member's entry),
// else the decided scope's.
func targetScope(scope usage.Scope, t usage.Target) usage.Scope {
	if t.Scope != (usage.Scope{}) {
		return t.Scope
	}
	return scope
}

func requestToken() string {
	var b [16]byte
	crand.Read(b[:]) // never fails on Linux
	return hex.EncodeToString(b[:])
}

// refusal reads a failed transaction's reasons, one per write in order:
// a failed precondition returns the item as it is (the entitlement, a
// ledger entry whose absence was assumed, a recorded notification), a
// ValidationError marks the write invalid. ok is false when err is
// neither a canceled transaction nor a refusal of the request as invalid.
func refusal(err error, plan usage.Plan) (r *usage.Refusal, ok bool) {
	var canceled *types.TransactionCanceledException
	var api smithy.APIError
	if !errors.As(err, &canceled) {
		// DynamoDB Local refuses a sum beyond 38 digits for the whole
		// request rather than as the item's cancellation reason.
		if errors.As(err, &api) && api.ErrorCode() == "ValidationException" {
			return &usage.Refusal{Invalid: true, Cause: err}, true
		}
		return nil, false
	}
	r = &usage.Refusal{Cause: err}
	for k, reason := range canceled.CancellationReasons {
		switch aws.ToString(reason.Code) {
		case "ConditionalCheckFailed":
			if k < len(plan.Writes) {
				learnFrom(&r.Learned, plan.Writes[k].Target, reason.Item)
			}
		case "ValidationError":
			// For example used became a string, or a concurrent writer's
			// increments made the sum need more than 38 digits: the state
			// behind the plan is not what DynamoDB holds.
			r.Invalid = true
		}
	}
	return r, true
}

// learnFrom adds what a failed precondition returned for one write.
func learnFrom(l *usage.Learned, t usage.Target, item map[string]types.AttributeValue) {
	if s, ok := t.Member(); ok {
		l = l.In(s)
	}
	switch {
	case t.Kind == usage.NotificationKind:
		l.Notified = setKey(l.Notified, t.Key, true)
	case t.Kind == usage.LedgerKind && item == nil:
		l.Absent = setKey(l.Absent, t.Key, true)
	case t.Kind == usage.LedgerKind:
		l.Applied = setKey(l.Applied, t.Key, ledgerEntry(item))
	case t.Scope != (usage.Scope{}):
		if l.Others == nil {
			l.Others = map[usage.Scope]usage.Item{}
		}
		l.Others[t.Scope] = observe(item)
	default:
		it := observe(item)
		l.Entitlement = &it
	}
}

func setKey[V any](m map[string]V, k string, v V) map[string]V {
	if m == nil {
		m = map[string]V{}
	}
	m[k] = v
	return m
}

func nilIfEmpty(m map[string]types.AttributeValue) map[string]types.AttributeValue {
	if len(m) == 0 {
		return nil
	}
	return m
}

func nilIfNoNames(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func nilIfBlank(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}
