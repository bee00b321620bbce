package dynamodb

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/usage"
)

// Notifications are recorded in the ledger table, in their scope's
// partition, as the outbox: sk NOTIFY#<periodStart>#<type>#<threshold>.
// An unpublished one also carries the keys of the sparse index
// PendingIndex (pendingPk = NOTIFY#<shard>, pendingAt = occurredAt), which
// its publication removes, so finding what is left to publish is a Query
// of a few small partitions, never a scan.
const (
	notifySKPrefix = "NOTIFY#"
	// PendingIndex is the ledger table's sparse global secondary index of
	// work left to do: unpublished notifications.
	PendingIndex    = "pending"
	pendingPK       = usage.LedgerAttrPendingPK
	pendingAt       = usage.LedgerAttrPendingAt
	notifyShards    = 4
	notifyPendingPK = "NOTIFY#"
	// notifyOverageUsed is, on a usage.overage.started, the overage used
	// right after the event that went into it.
	notifyOverageUsed = "overageUsed"
)

// Outbox receives the notifications a committed write recorded, to
// publish them at once; whatever it does not mark published stays in the
// outbox for the recovery sweep (PendingNotifications).

// notifyPoolID is, on a pool's notification, the pool's ID.
const notifyPoolID = "poolId"

type Outbox interface {
	Recorded(ctx context.Context, notes []usage.Notification)
}

func notificationKeyAttributes(scope usage.Scope, key string) map[string]types.AttributeValue {
	pk, _ := LedgerKey(scope, "")
	sk := notifySKPrefix + key
	if len(sk) > maxSortKeyBytes {
		sk = notifySKPrefix + "HASH#" + digest(key)
	}
	return map[string]types.AttributeValue{
		ledgerPK: &types.AttributeValueMemberS{Value: pk},
		ledgerSK: &types.AttributeValueMemberS{Value: sk},
	}
}

func notifyShard(id string) string {
	sum := sha256.Sum256([]byte(id))
	return notifyPendingPK + strconv.Itoa(int(binary.BigEndian.Uint32(sum[:4])%notifyShards))
}

// notificationItem lays out a recorded notification.
func notificationItem(scope usage.Scope, n *usage.Notification, retention time.Duration) map[string]types.AttributeValue {
	item := notificationKeyAttributes(scope, n.Key)
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	occurred := n.OccurredAt.UTC().Format(time.RFC3339Nano)
	for k, v := range map[string]types.AttributeValue{
		"notificationId": s(n.ID), "type": s(n.Type), "notificationKey": s(n.Key),
		ledgerUserID: s(scope.UserID), ledgerEntitlementKey: s(scope.EntitlementKey),
		"limit": number(n.Limit), "used": number(n.Used), "eventId": s(n.EventID),
		"occurredAt": s(occurred), pendingPK: s(notifyShard(n.ID)), pendingAt: s(usage.FormatIndexTime(n.OccurredAt)),
	} {
		item[k] = v
	}
	if n.PeriodStart != "" {
		item[ledgerPeriodStart] = s(n.PeriodStart)
	}
	if scope.Pool {
		// A pool's notification: its userId is the member whose event it was.
		item[notifyPoolID], item[ledgerUserID] = s(scope.UserID), s(n.UserID)
	}
	if n.ThresholdPercent != nil {
		item["thresholdPercent"] = number(*n.ThresholdPercent)
	}
	if n.Amount != nil {
		item[ledgerAmount] = number(*n.Amount)
	}
	if n.OverageUsed != nil {
		item[notifyOverageUsed] = number(*n.OverageUsed)
	}
	if !n.KeepUntil.IsZero() {
		// Kept past its period, so that a refund and a new crossing in the
		// same period find it and notify nothing new.
		item[ledgerExpiresAt] = &types.AttributeValueMemberN{Value: strconv.FormatInt(n.KeepUntil.Add(retention).Unix(), 10)}
	}
	return item
}

// notification reads a recorded notification.
func notification(item map[string]types.AttributeValue) usage.Notification {
	n := usage.Notification{ID: str(item["notificationId"]), Type: str(item["type"]), Key: str(item["notificationKey"]),
		UserID: str(item[ledgerUserID]), EntitlementKey: str(item[ledgerEntitlementKey]), PeriodStart: str(item[ledgerPeriodStart]),
		EventID: str(item["eventId"]), PoolID: str(item[notifyPoolID])}
	num := func(attr string) *usage.Decimal {
		if v := value(item[attr]); v.Kind == usage.KindNumber {
			return &v.Num
		}
		return nil
	}
	if d := num("limit"); d != nil {
		n.Limit = *d
	}
	if d := num("used"); d != nil {
		n.Used = *d
	}
	n.ThresholdPercent, n.Amount, n.OverageUsed = num("thresholdPercent"), num(ledgerAmount), num(notifyOverageUsed)
	n.OccurredAt, _ = time.Parse(time.RFC3339Nano, str(item["occurredAt"]))
	n.PublishedAt, _ = time.Parse(time.RFC3339Nano, str(item["publishedAt"]))
	return n
}

// QueryClient is what reading the outbox needs.
type QueryClient interface {
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// PendingNotifications returns up to limit recorded, unpublished
// notifications that occurred before `before`, oldest first per shard,
// from the sparse index (eventually consistent: one recorded a moment
// ago may be missing; the next sweep finds it).
func PendingNotifications(ctx context.Context, c QueryClient, table string, before time.Time, limit int) ([]usage.Notification, error) {
	var out []usage.Notification
	for shard := range notifyShards {
		var start map[string]types.AttributeValue
		for len(out) < limit {
			res, err := c.Query(ctx, &dynamodb.QueryInput{
				TableName: aws.String(table), IndexName: aws.String(PendingIndex),
				KeyConditionExpression:   aws.String("#pk = :pk AND #at < :before"),
				ExpressionAttributeNames: map[string]string{"#pk": pendingPK, "#at": pendingAt},
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":pk":     &types.AttributeValueMemberS{Value: notifyPendingPK + strconv.Itoa(shard)},
					":before": &types.AttributeValueMemberS{Value: usage.FormatIndexTime(before)},
				},
				Limit: aws.Int32(int32(limit - len(out))), ExclusiveStartKey: start,
			})
			if err != nil {
				return out, fmt.Errorf("query %s index %s: %w", table, PendingIndex, err)
			}
			for _, item := range res.Items {
				out = append(out, notification(item))
			}
			if start = res.LastEvaluatedKey; start == nil {
				break
			}
		}
	}
	return out, nil
}

// UpdateClient is what marking a notification published needs.
type UpdateClient interface {
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// MarkPublished takes a notification out of the outbox: it stamps
// publishedAt and removes its pending index keys. Marking one already
// marked changes nothing.
func MarkPublished(ctx context.Context, c UpdateClient, table string, n usage.Notification, at time.Time) error {
	_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: notificationKeyAttributes(n.Scope(), n.Key),
		UpdateExpression:          aws.String("SET #published = if_not_exists(#published, :at) REMOVE #pk, #pat"),
		ConditionExpression:       aws.String("attribute_exists(#sk)"),
		ExpressionAttributeNames:  map[string]string{"#published": "publishedAt", "#pk": pendingPK, "#pat": pendingAt, "#sk": ledgerSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": &types.AttributeValueMemberS{Value: at.UTC().Format(time.RFC3339Nano)}},
	})
	return err
}

// ListNotifications returns the notifications recorded for a scope,
// published or not.
func ListNotifications(ctx context.Context, c QueryClient, table string, scope usage.Scope) ([]usage.Notification, error) {
	pk, _ := LedgerKey(scope, "")
	var out []usage.Notification
	var start map[string]types.AttributeValue
	for {
		res, err := c.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(table), ConsistentRead: aws.Bool(true),
			KeyConditionExpression:   aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
			ExpressionAttributeNames: map[string]string{"#pk": ledgerPK, "#sk": ledgerSK},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": &types.AttributeValueMemberS{Value: pk}, ":prefix": &types.AttributeValueMemberS{Value: notifySKPrefix},
			},
			ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, err
		}
		for _, item := range res.Items {
			out = append(out, notification(item))
		}
		if start = res.LastEvaluatedKey; start == nil {
			return out, nil
		}
	}
}
