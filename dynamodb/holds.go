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

// DueHolds lists active holds whose expiry is before now, found in the
// sparse index PendingIndex (never a scan), at most limit a shard, oldest
// first: what the hold sweep (metering.SweepExpiredHolds) releases.
func (s *Store) DueHolds(ctx context.Context, now time.Time, limit int) ([]usage.DueHold, error) {
	var due []usage.DueHold
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
			return due, fmt.Errorf("query %s index %s: %w", s.cfg.LedgerTable, PendingIndex, err)
		}
		for _, item := range res.Items {
			scope := usage.Scope{UserID: str(item[ledgerUserID]), EntitlementKey: str(item[ledgerEntitlementKey])}
			due = append(due, usage.DueHold{Scope: scope, Entry: ledgerEntry(item)})
		}
	}
	return due, nil
}
