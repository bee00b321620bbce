package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	ddbstore "github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/backoff"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// NaiveClient is what the baseline calls.
type NaiveClient interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Naive is the baseline: how the job is commonly done with the Powertools
// idempotency utility and batch processor. Per event, in parallel within a
// batch:
//
//  1. lock: PutItem an idempotency record (status INPROGRESS) on condition
//     attribute_not_exists(id) OR expiration < :now (or an in-progress lock
//     whose holder's time is up). If it exists and is COMPLETED, the stored
//     result is returned (a duplicate); if it is INPROGRESS, the event fails
//     and is retried by the queue;
//  2. GetItem the entitlement (strongly consistent);
//  3. decide reset and consumption in Go (usage.PlanUsage on the one event);
//  4. UpdateItem the entitlement on condition that used and periodStart are
//     as read; on ConditionalCheckFailed re-read and go to 3;
//  5. UpdateItem the idempotency record to COMPLETED with the result. If the
//     event failed instead, DeleteItem the record so a retry can run.
//
// It is correct (every event is applied at most once, the limit holds),
// just expensive: four requests per event at best, more under contention.
// It keeps no ledger; the idempotency records are its audit trail.
type Naive struct {
	Client            NaiveClient
	EntitlementsTable string
	IdempotencyTable  string
	Keys              ddbstore.EntitlementKeys
	// Expiry of idempotency records (Powertools' default is one hour).
	Expiry time.Duration
	// MaxAttempts bounds the read-modify-write rounds of one event.
	MaxAttempts int
	Now         func() time.Time
	// Sequential handles a batch's messages one at a time, in order, and
	// once one fails (RETRY) reports the rest as failed without handling
	// them: Powertools' FIFO batch processor (SqsFifoPartialProcessor).
	Sequential bool
	// observe, when set, is called around each event with a context that
	// carries the event's tally (see run.go).
	observe func(ctx context.Context, scope usage.Scope) (context.Context, func([]usage.Outcome))
}

// Idempotency record statuses, as Powertools writes them.
const (
	statusInProgress = "INPROGRESS"
	statusCompleted  = "COMPLETED"
)

var errRetriesExhausted = errors.New("entitlement kept changing; retries exhausted")

// naiveBackoff is the wait before a re-read after a failed conditional
// write: capped exponential with full jitter (attempt n waits up to 5 ms
// << n, at most 500 ms), the same shape as the store's for transaction
// conflicts.
var naiveBackoff = backoff.Exponential{Base: 5 * time.Millisecond, Max: 500 * time.Millisecond}

// ErrInProgress is the cause of RETRY when another invocation holds the
// event's idempotency lock (Powertools' IdempotencyAlreadyInProgressError).
var ErrInProgress = errors.New("idempotency record is INPROGRESS in another invocation")

// ErrSkipped is the cause of RETRY for the messages a sequential (FIFO)
// batch did not handle after an earlier one failed.
var ErrSkipped = errors.New("not handled: an earlier message of the FIFO batch failed")

// Handle is a pipeline.Handler.
func (n *Naive) Handle(ctx context.Context, msgs []pipeline.Message) []pipeline.Result {
	if n.Sequential {
		return n.handleInOrder(ctx, msgs)
	}
	results := make([]pipeline.Result, len(msgs))
	var wg sync.WaitGroup
	for i, m := range msgs {
		results[i].MessageID = m.ID
		ev, err := usage.ParseEvent([]byte(m.Body))
		if err != nil {
			results[i].Outcome = usage.Outcome{Status: usage.Rejected, Err: err}
			continue
		}
		results[i].Event = ev
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := usage.Record{Event: ev, MessageID: m.ID}
			ectx, done := ctx, func([]usage.Outcome) {}
			if n.observe != nil {
				ectx, done = n.observe(ctx, ev.Scope())
			}
			results[i].Outcome = n.process(ectx, rec)
			done([]usage.Outcome{results[i].Outcome})
		}()
	}
	wg.Wait()
	return results
}

func (n *Naive) handleInOrder(ctx context.Context, msgs []pipeline.Message) []pipeline.Result {
	results := make([]pipeline.Result, len(msgs))
	failed := false
	for i, m := range msgs {
		results[i].MessageID = m.ID
		ev, err := usage.ParseEvent([]byte(m.Body))
		switch {
		case failed:
			results[i].Outcome = usage.Outcome{Status: usage.Retry, Err: ErrSkipped}
			continue
		case err != nil:
			results[i].Outcome = usage.Outcome{Status: usage.Rejected, Err: err}
			continue
		}
		results[i].Event = ev
		ectx, done := ctx, func([]usage.Outcome) {}
		if n.observe != nil {
			ectx, done = n.observe(ctx, ev.Scope())
		}
		results[i].Outcome = n.process(ectx, usage.Record{Event: ev, MessageID: m.ID})
		done([]usage.Outcome{results[i].Outcome})
		failed = results[i].Status == usage.Retry
	}
	return results
}

func (n *Naive) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

// IdempotencyID is the idempotency record key of an event: a hash of its
// scope and dedup key, as Powertools hashes the idempotency key.
func IdempotencyID(scope usage.Scope, dedupKey string) string {
	sum := sha256.Sum256([]byte(scope.UserID + "\x00" + scope.EntitlementKey + "\x00" + dedupKey))
	return "usage-bench#" + hex.EncodeToString(sum[:16])
}

func (n *Naive) process(ctx context.Context, rec usage.Record) usage.Outcome {
	scope := rec.Event.Scope()
	id := IdempotencyID(scope, rec.DedupKey())
	idKey := map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}}
	now := n.now()
	expiry := n.Expiry
	if expiry <= 0 {
		expiry = time.Hour
	}
	inProgressUntil := now.Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok {
		inProgressUntil = d
	}

	// 1. Lock.
	_, err := n.Client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(n.IdempotencyTable),
		Item: map[string]types.AttributeValue{
			"id":                     idKey["id"],
			"status":                 &types.AttributeValueMemberS{Value: statusInProgress},
			"expiration":             &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(expiry).Unix(), 10)},
			"in_progress_expiration": &types.AttributeValueMemberN{Value: strconv.FormatInt(inProgressUntil.UnixMilli(), 10)},
			"amount":                 number(rec.Event.Amount),
		},
		ConditionExpression:      aws.String("attribute_not_exists(id) OR expiration < :now OR (#status = :inprogress AND in_progress_expiration < :now_ms)"),
		ExpressionAttributeNames: map[string]string{"#status": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now":        &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)},
			":now_ms":     &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
			":inprogress": &types.AttributeValueMemberS{Value: statusInProgress},
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		item := ccf.Item
		if item == nil {
			// A DynamoDB without ReturnValuesOnConditionCheckFailure:
			// read the record, as older Powertools versions do.
			got, gerr := n.Client.GetItem(ctx, &dynamodb.GetItemInput{
				TableName: aws.String(n.IdempotencyTable), Key: idKey, ConsistentRead: aws.Bool(true),
			})
			if gerr != nil {
				return usage.Outcome{Status: usage.Retry, Err: gerr}
			}
			item = got.Item
		}
		return replay(item, rec.Event.Amount)
	case err != nil:
		return usage.Outcome{Status: usage.Retry, Err: err}
	}

	// 2-4. Read, decide, conditional write; re-read when the item moved.
	outcome, err := n.apply(ctx, rec)
	if err != nil {
		// Release the lock so that the queue's retry can run (Powertools
		// deletes the record when the handler fails).
		if _, derr := n.Client.DeleteItem(context.WithoutCancel(ctx), &dynamodb.DeleteItemInput{
			TableName: aws.String(n.IdempotencyTable), Key: idKey,
		}); derr != nil {
			err = errors.Join(err, derr)
		}
		return usage.Outcome{Status: usage.Retry, Err: err}
	}

	// 5. Complete.
	result := string(outcome.Status)
	if r := outcome.Reason(); r != "" {
		result += ":" + string(r)
	}
	_, err = n.Client.UpdateItem(context.WithoutCancel(ctx), &dynamodb.UpdateItemInput{
		TableName:                aws.String(n.IdempotencyTable),
		Key:                      idKey,
		UpdateExpression:         aws.String("SET #status = :completed, #data = :data, expiration = :exp"),
		ExpressionAttributeNames: map[string]string{"#status": "status", "#data": "data"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":completed": &types.AttributeValueMemberS{Value: statusCompleted},
			":data":      &types.AttributeValueMemberS{Value: result},
			":exp":       &types.AttributeValueMemberN{Value: strconv.FormatInt(n.now().Add(expiry).Unix(), 10)},
		},
	})
	if err != nil {
		// The usage is applied but the record says INPROGRESS: a retry
		// waits until the lock expires. That window is the baseline's
		// known weakness; it does not occur in a run without failures.
		return usage.Outcome{Status: usage.Retry, Err: fmt.Errorf("applied, but completing the idempotency record failed: %w", err)}
	}
	return outcome
}

// replay turns an existing idempotency record into the event's outcome.
func replay(item map[string]types.AttributeValue, amount usage.Decimal) usage.Outcome {
	if str(item["status"]) != statusCompleted {
		return usage.Outcome{Status: usage.Retry, Err: ErrInProgress}
	}
	stored := usage.Decimal{}
	if n, ok := item["amount"].(*types.AttributeValueMemberN); ok {
		stored, _ = usage.ParseDecimal(n.Value)
	}
	status, reason, _ := strings.Cut(str(item["data"]), ":")
	if usage.Status(status) == usage.Applied {
		return usage.DuplicateOutcome(stored, amount)
	}
	// The stored result was a rejection: Powertools returns it again.
	return usage.Outcome{Status: usage.Rejected, Err: &usage.RejectionError{Reason: usage.Reason(reason), Message: "replayed from the idempotency record"}}
}

func (n *Naive) apply(ctx context.Context, rec usage.Record) (usage.Outcome, error) {
	keys := n.Keys
	if keys == (ddbstore.EntitlementKeys{}) {
		keys = ddbstore.DefaultEntitlementKeys
	}
	scope := rec.Event.Scope()
	key := map[string]types.AttributeValue{
		keys.PartitionAttr: &types.AttributeValueMemberS{Value: keys.UserPrefix + scope.UserID},
		keys.SortAttr:      &types.AttributeValueMemberS{Value: keys.KeyPrefix + scope.EntitlementKey},
	}
	attempts := n.MaxAttempts
	if attempts <= 0 {
		attempts = 12
	}
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			if err := backoff.Sleep(ctx, naiveBackoff.Full(attempt)); err != nil {
				return usage.Outcome{}, err
			}
		}
		got, err := n.Client.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(n.EntitlementsTable), Key: key, ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return usage.Outcome{}, err
		}
		ent := ddbstore.ParseEntitlement(got.Item)
		plan := usage.PlanUsage(usage.State{Entitlement: ent}, []usage.Record{rec}, n.now())
		if plan.Outcomes[0].Status != usage.Applied {
			return plan.Outcomes[0], nil
		}
		// The plan's new values, written with a plain read-modify-write:
		// used and periodStart exactly as read, as such a consumer does.
		after := plan.After(ent.Observed)
		names := map[string]string{"#pk": keys.PartitionAttr, "#used": usage.AttrUsed, "#ps": usage.AttrPeriodStart}
		values := map[string]types.AttributeValue{":new": number(after.Get(usage.AttrUsed).Num)}
		update := "SET #used = :new"
		if ps := after.Get(usage.AttrPeriodStart); ps.Str != ent.Observed.Get(usage.AttrPeriodStart).Str {
			update += ", #ps = :newps"
			values[":newps"] = &types.AttributeValueMemberS{Value: ps.Str}
		}
		cond := []string{"attribute_exists(#pk)"}
		for attr, name := range map[string]string{usage.AttrUsed: "#used", usage.AttrPeriodStart: "#ps"} {
			if v, ok := got.Item[attr]; ok {
				values[":old_"+attr] = v
				cond = append(cond, name+" = :old_"+attr)
			} else {
				cond = append(cond, "attribute_not_exists("+name+")")
			}
		}
		_, err = n.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(n.EntitlementsTable), Key: key,
			UpdateExpression: aws.String(update), ConditionExpression: aws.String(strings.Join(cond, " AND ")),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		})
		var ccf *types.ConditionalCheckFailedException
		switch {
		case err == nil:
			return plan.Outcomes[0], nil
		case errors.As(err, &ccf):
			continue // someone else wrote first: re-read
		default:
			return usage.Outcome{}, err
		}
	}
	return usage.Outcome{}, errRetriesExhausted
}

func number(d usage.Decimal) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: d.String()}
}

func str(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}
