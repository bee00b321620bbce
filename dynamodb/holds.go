package dynamodb

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/usage"
)

// ActiveHolds returns a scope's active holds (reserves not settled yet),
// read consistently.
func (s *Store) ActiveHolds(ctx context.Context, scope usage.Scope) ([]usage.LedgerEntry, error) {
	return ListHolds(ctx, s.client, s.cfg.LedgerTable, scope, true)
}

// ListHolds returns a scope's holds, only the active ones if asked.
func ListHolds(ctx context.Context, c QueryClient, table string, scope usage.Scope, activeOnly bool) ([]usage.LedgerEntry, error) {
	pk, _ := LedgerKey(scope, "")
	filter := "#op = :reserve"
	values := map[string]types.AttributeValue{
		":pk": &types.AttributeValueMemberS{Value: pk}, ":key": &types.AttributeValueMemberS{Value: "KEY"},
		":reserve": &types.AttributeValueMemberS{Value: string(usage.OperationReserve)},
	}
	names := map[string]string{"#pk": ledgerPK, "#sk": ledgerSK, "#op": ledgerOperation}
	if activeOnly {
		filter += " AND #state = :active"
		names["#state"] = usage.LedgerAttrHoldState
		values[":active"] = &types.AttributeValueMemberS{Value: usage.HoldActive}
	}
	var out []usage.LedgerEntry
	var start map[string]types.AttributeValue
	for {
		res, err := c.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(table), ConsistentRead: aws.Bool(true),
			KeyConditionExpression: aws.String("#pk = :pk AND begins_with(#sk, :key)"), FilterExpression: aws.String(filter),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values, ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, err
		}
		for _, item := range res.Items {
			out = append(out, ledgerEntry(item))
		}
		if start = res.LastEvaluatedKey; start == nil {
			return out, nil
		}
	}
}

// Sweep is what one sweep of expired holds did.
type Sweep struct {
	// Found is how many expired active holds the index listed; Expired how
	// many this sweep released (others settled meanwhile, or were
	// released by another sweeper: exactly one of them wins).
	Found, Expired int
	// OldestDue is how long the oldest expired hold found had been due.
	OldestDue time.Duration
	// Failed is how many could not be released now (RETRY): the next
	// sweep finds them again.
	Failed int
	// Deferred is how many cannot be settled now (their entitlement or
	// their own entry cannot be read): each is set aside in the index for
	// usage.HoldDeferral, so that it never stands in front of holds that
	// can be released.
	Deferred int
}

// SweepExpiredHolds releases active holds whose expiry is before now,
// found in the sparse index (never a scan), each through the one write
// path with the sweeper's expire operation, decided by decide: a commit
// that won the race stops the release, and a sweeper killed mid-run
// releases nothing twice, because a hold settles once. At most limit
// holds a sweep.
func (s *Store) SweepExpiredHolds(ctx context.Context, now time.Time, limit int, decide usage.Decide) (Sweep, error) {
	var sw Sweep
	byScope := map[usage.Scope][]usage.Record{}
	var order []usage.Scope
	for shard := range holdShards {
		res, err := s.client.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(s.cfg.LedgerTable), IndexName: aws.String(PendingIndex),
			KeyConditionExpression:   aws.String("#pk = :pk AND #at < :now"),
			ExpressionAttributeNames: map[string]string{"#pk": pendingPK, "#at": pendingAt},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk":  &types.AttributeValueMemberS{Value: holdPendingPK + strconv.Itoa(shard)},
				":now": &types.AttributeValueMemberS{Value: usage.FormatIndexTime(now)},
			},
			Limit: aws.Int32(int32(limit)),
		})
		if err != nil {
			return sw, fmt.Errorf("query %s index %s: %w", s.cfg.LedgerTable, PendingIndex, err)
		}
		for _, item := range res.Items {
			e := ledgerEntry(item)
			scope := usage.Scope{UserID: str(item[ledgerUserID]), EntitlementKey: str(item[ledgerEntitlementKey])}
			if _, seen := byScope[scope]; !seen {
				order = append(order, scope)
			}
			ev := usage.Event{UserID: scope.UserID, EntitlementKey: scope.EntitlementKey, Operation: usage.OperationExpire, HoldID: e.DedupKey}
			byScope[scope] = append(byScope[scope], usage.Record{Event: ev, MessageID: "expire:" + e.DedupKey})
			sw.Found++
			sw.OldestDue = max(sw.OldestDue, now.Sub(e.HoldExpiresAt))
		}
	}
	for _, scope := range order {
		for _, o := range s.Update(ctx, scope, byScope[scope], decide) {
			switch o.Status {
			case usage.Applied:
				sw.Expired++
			case usage.Retry:
				sw.Failed++
			case usage.Rejected:
				sw.Deferred++
			}
		}
	}
	return sw, nil
}
