// Package dynamodb applies usage to DynamoDB: the entitlement update and
// the ledger entries of a group of events in one atomic, conditional
// TransactWriteItems. The domain (package usage) decides; this package
// owns the condition that makes the decision safe under any number of
// racing consumers, and the retries when the condition finds the state
// has moved on.
package dynamodb

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/usage"
)

// Client is the part of the DynamoDB API the store calls. The IAM actions
// these need are listed in IAMActions.
type Client interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Config configures a Store.
type Config struct {
	EntitlementsTable string
	LedgerTable       string
	Keys              EntitlementKeys
	// Retention is how long ledger entries (and so dedup) last; DynamoDB's
	// TTL deletes them some time after.
	Retention time.Duration
	// MaxAttempts bounds the conditional writes per group before its
	// remaining events are handed back to the queue as RETRY.
	MaxAttempts int
	// DisableCache turns off the per-process cache of entitlement state.
	// The cache only saves reads; correctness never depends on it.
	DisableCache bool
	// Now is the clock for ledger timestamps and expiry.
	Now func() time.Time
}

// Store applies usage with one conditional transaction per group.
type Store struct {
	client Client
	cfg    Config
	cache  stateCache
}

// NewStore returns a Store. Zero fields of cfg take their defaults.
func NewStore(client Client, cfg Config) *Store {
	if cfg.Keys == (EntitlementKeys{}) {
		cfg.Keys = DefaultEntitlementKeys
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 12
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{client: client, cfg: cfg, cache: stateCache{m: map[usage.Scope]observed{}}}
}

// maxGroup bounds the records of one transaction: one entitlement item
// plus one ledger item each, well inside DynamoDB's 100 items and 4 MB
// (metadata is at most 32 KiB an event).
const maxGroup = 50

// ErrContention is the cause of a RETRY outcome when the conditional
// write kept finding the state changed, or transactions kept conflicting.
var ErrContention = errors.New("entitlement kept changing under concurrent writers; retries exhausted")

// Update applies records of one scope, in order, and returns one outcome
// per record. Events whose keys were already applied come back Duplicate
// (or Rejected IDEMPOTENCY_CONFLICT); nothing is written for rejections.
// It never returns an error: transient failures are RETRY outcomes.
func (s *Store) Update(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome {
	out := make([]usage.Outcome, 0, len(records))
	for len(records) > 0 {
		n := min(len(records), maxGroup)
		out = append(out, s.updateGroup(ctx, scope, records[:n], decide)...)
		records = records[n:]
	}
	return out
}

func (s *Store) updateGroup(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome {
	out := make([]usage.Outcome, len(records))
	pending := make([]int, len(records))
	for i := range pending {
		pending[i] = i
	}
	finish := func(status usage.Status, err error) []usage.Outcome {
		for _, i := range pending {
			out[i] = usage.Outcome{Status: status, Err: err}
		}
		return out
	}

	entPK, entSK, keyOK := s.cfg.Keys.values(scope)
	if !keyOK {
		return finish(usage.Rejected, &usage.RejectionError{Reason: usage.ReasonEntitlementNotFound,
			Message: "userId and entitlementKey are too long to name an entitlement item"})
	}

	state, ok := s.cache.get(scope)
	if !ok || s.cfg.DisableCache {
		var err error
		if state, err = s.read(ctx, entPK, entSK); err != nil {
			return finish(usage.Retry, err)
		}
	}

	for attempt, conflicts := 0, 0; ; attempt++ {
		if attempt >= s.cfg.MaxAttempts {
			return finish(usage.Retry, ErrContention)
		}
		if err := ctx.Err(); err != nil {
			return finish(usage.Retry, err)
		}
		recs := make([]usage.Record, len(pending))
		for j, i := range pending {
			recs[j] = records[i]
		}
		plan := decide(state.ent, recs)
		tx, ledgerOf := s.transaction(scope, entPK, entSK, state, recs, plan)
		_, err := s.client.TransactWriteItems(ctx, tx)
		if err == nil {
			for j, i := range pending {
				out[i] = plan.Outcomes[j]
			}
			s.cache.put(scope, state.after(plan))
			return out
		}

		var canceled *types.TransactionCanceledException
		if !errors.As(err, &canceled) {
			// The SDK already retried throttling, 5xx and network errors
			// with backoff; what is left goes back to the queue.
			s.cache.forget(scope)
			return finish(usage.Retry, err)
		}
		reasons := canceled.CancellationReasons
		resolved := map[int]bool{}
		stateMoved, transient := false, false
		for k, reason := range reasons {
			code := aws.ToString(reason.Code)
			switch {
			case code == "None" || code == "":
				continue
			case code == "ConditionalCheckFailed" && k == 0:
				state = s.parse(reason.Item)
				stateMoved = true
			case code == "ConditionalCheckFailed" && k-1 < len(ledgerOf):
				// The key was already applied: every pending record with
				// that key is a duplicate of the stored event.
				stored := ledgerAmount(reason.Item)
				key := recs[ledgerOf[k-1]].DedupKey()
				for j, i := range pending {
					if recs[j].DedupKey() == key {
						out[i] = usage.DuplicateOutcome(stored, recs[j].Event.Amount)
						resolved[i] = true
					}
				}
			default: // TransactionConflict, ThrottlingError, ...
				transient = true
			}
		}
		if len(resolved) > 0 {
			kept := pending[:0]
			for _, i := range pending {
				if !resolved[i] {
					kept = append(kept, i)
				}
			}
			pending = kept
			if len(pending) == 0 {
				// Keep the best state known (confirmed when the
				// entitlement's condition held or returned the item); the
				// next write's condition checks it anyway.
				s.cache.put(scope, state)
				return out
			}
		}
		if !stateMoved && len(resolved) == 0 {
			transient = true
		}
		if transient {
			conflicts++
			if err := sleep(ctx, backoff(conflicts)); err != nil {
				return finish(usage.Retry, err)
			}
		}
	}
}

// transaction builds the atomic write for a plan. Item 0 is the
// entitlement (an Update when something is applied, else a
// ConditionCheck that confirms the observed state the rejections rest
// on); then one ledger item per distinct dedup key: a Put for an applied
// record, a ConditionCheck for a rejected one (so that a redelivered,
// already applied event is reported as a duplicate, not as a rejection).
// ledgerOf maps each ledger item (from 1) to its record.
func (s *Store) transaction(scope usage.Scope, entPK, entSK string, state observed, recs []usage.Record, plan usage.Plan) (*dynamodb.TransactWriteItemsInput, []int) {
	items := make([]types.TransactWriteItem, 0, len(recs)+1)
	cond := state.condition(s.cfg.Keys.PartitionAttr, plan)
	entKey := map[string]types.AttributeValue{
		s.cfg.Keys.PartitionAttr: &types.AttributeValueMemberS{Value: entPK},
		s.cfg.Keys.SortAttr:      &types.AttributeValueMemberS{Value: entSK},
	}
	if plan.Applied() {
		update, names, values := updateExpression(plan)
		for k, v := range names {
			cond.names[k] = v
		}
		for k, v := range values {
			cond.values[k] = v
		}
		items = append(items, types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(s.cfg.EntitlementsTable), Key: entKey,
			UpdateExpression: aws.String(update), ConditionExpression: aws.String(cond.expr),
			ExpressionAttributeNames: cond.names, ExpressionAttributeValues: nilIfEmpty(cond.values),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}})
	} else {
		items = append(items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: aws.String(s.cfg.EntitlementsTable), Key: entKey,
			ConditionExpression: aws.String(cond.expr), ExpressionAttributeNames: cond.names,
			ExpressionAttributeValues:           nilIfEmpty(cond.values),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}})
	}

	now := s.cfg.Now().UTC()
	period := state.raw[attrPeriodStart]
	if plan.Reset {
		period = &types.AttributeValueMemberS{Value: usage.FormatInstant(plan.PeriodStart)}
	}
	seen := map[string]bool{}
	var ledgerOf []int
	// Puts first, so a key that is applied and also rejected in the same
	// group gets the Put (one item may appear only once in a transaction).
	for pass := 0; pass < 2; pass++ {
		for j, r := range recs {
			o := plan.Outcomes[j]
			key := r.DedupKey()
			isPut := o.Status == usage.Applied
			if seen[key] || (pass == 0) != isPut || o.Status == usage.Duplicate || o.Reason() == usage.ReasonIdempotencyConflict {
				continue
			}
			seen[key] = true
			pk, sk := LedgerKey(scope, key)
			lkey := map[string]types.AttributeValue{
				ledgerPK: &types.AttributeValueMemberS{Value: pk},
				ledgerSK: &types.AttributeValueMemberS{Value: sk},
			}
			notApplied := aws.String("attribute_not_exists(#pk)")
			names := map[string]string{"#pk": ledgerPK}
			if isPut {
				item := ledgerItem(scope, r, key, lkey, period, now, now.Add(s.cfg.Retention))
				items = append(items, types.TransactWriteItem{Put: &types.Put{
					TableName: aws.String(s.cfg.LedgerTable), Item: item,
					ConditionExpression: notApplied, ExpressionAttributeNames: names,
					ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
				}})
			} else {
				items = append(items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
					TableName: aws.String(s.cfg.LedgerTable), Key: lkey,
					ConditionExpression: notApplied, ExpressionAttributeNames: names,
					ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
				}})
			}
			ledgerOf = append(ledgerOf, j)
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
	}, ledgerOf
}

func requestToken() string {
	var b [16]byte
	crand.Read(b[:]) // never fails on Linux
	return hex.EncodeToString(b[:])
}

func updateExpression(plan usage.Plan) (string, map[string]string, map[string]types.AttributeValue) {
	names := map[string]string{"#used": attrUsed}
	values := map[string]types.AttributeValue{":delta": number(plan.Delta)}
	if plan.Reset {
		names["#periodStart"] = attrPeriodStart
		values[":newPeriodStart"] = &types.AttributeValueMemberS{Value: usage.FormatInstant(plan.PeriodStart)}
		return "SET #used = :delta, #periodStart = :newPeriodStart", names, values
	}
	values[":zero"] = &types.AttributeValueMemberN{Value: "0"}
	return "SET #used = if_not_exists(#used, :zero) + :delta", names, values
}

func ledgerItem(scope usage.Scope, r usage.Record, key string, lkey map[string]types.AttributeValue, period types.AttributeValue, now, expires time.Time) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{
		"userId":         &types.AttributeValueMemberS{Value: scope.UserID},
		"entitlementKey": &types.AttributeValueMemberS{Value: scope.EntitlementKey},
		"dedupKey":       &types.AttributeValueMemberS{Value: key},
		"amount":         number(r.Event.Amount),
		"appliedAt":      &types.AttributeValueMemberS{Value: now.Format(time.RFC3339Nano)},
		ledgerExpiresAt:  &types.AttributeValueMemberN{Value: strconv.FormatInt(expires.Unix(), 10)},
	}
	for k, v := range lkey {
		item[k] = v
	}
	if r.MessageID != "" {
		item["messageId"] = &types.AttributeValueMemberS{Value: r.MessageID}
	}
	if r.Event.IdempotencyKey != "" {
		item["keySource"] = &types.AttributeValueMemberS{Value: "idempotencyKey"}
	} else {
		item["keySource"] = &types.AttributeValueMemberS{Value: "messageId"}
	}
	if s, ok := period.(*types.AttributeValueMemberS); ok {
		item["periodStart"] = s
	}
	if len(r.Event.Metadata) > 0 {
		item["metadata"] = &types.AttributeValueMemberS{Value: string(r.Event.Metadata)}
	}
	return item
}

func ledgerAmount(item map[string]types.AttributeValue) usage.Decimal {
	if n, ok := item["amount"].(*types.AttributeValueMemberN); ok {
		if d, err := usage.ParseDecimal(n.Value); err == nil {
			return d
		}
	}
	return usage.Decimal{}
}

func number(d usage.Decimal) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: d.String()}
}

func nilIfEmpty(m map[string]types.AttributeValue) map[string]types.AttributeValue {
	if len(m) == 0 {
		return nil
	}
	return m
}

// backoff is capped exponential backoff with full jitter, so racing
// consumers spread out instead of colliding again in lockstep.
func backoff(attempt int) time.Duration {
	ceiling := min(10*time.Millisecond<<min(attempt, 7), time.Second)
	return time.Duration(rand.Int64N(int64(ceiling)) + 1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// stateCache remembers, per process, the entitlement state learned from
// reads and writes, to save the read before the next write. A stale entry
// costs one failed condition, which returns the fresh state.
type stateCache struct {
	mu sync.Mutex
	m  map[usage.Scope]observed
}

const maxCached = 100_000

func (c *stateCache) get(s usage.Scope) (observed, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.m[s]
	return o, ok
}

func (c *stateCache) put(s usage.Scope, o observed) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCached {
		clear(c.m) // crude but bounded; a miss only costs a read
	}
	c.m[s] = o
}

func (c *stateCache) forget(s usage.Scope) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, s)
}
