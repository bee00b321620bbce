package dynamodb

import (
	"context"
	"errors"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/usage"
)

// ScanClient is an AdminClient that can scan a table too: what finding a
// pool's members needs (PoolMembers). The service never scans.
type ScanClient interface {
	AdminClient
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// PutPool writes pool poolID's entitlement item of e.EntitlementKey (for
// local development and tests), under the pool's partition key
// (EntitlementKeys.PartitionValue of usage.PoolScope). e.UserID and
// e.Pool are not used: a pool draws from no pool of its own.
func PutPool(ctx context.Context, c AdminClient, table string, keys EntitlementKeys, poolID string, e EntitlementItem) error {
	if keys == (EntitlementKeys{}) {
		keys = DefaultEntitlementKeys
	}
	if poolID == "" {
		return errors.New("no pool ID")
	}
	e.UserID, e.Pool = "", ""
	return putEntitlementItem(ctx, c, table, keys, usage.PoolScope(poolID, e.EntitlementKey), e)
}

// ReadPool reads pool poolID's entitlement of entitlementKey with strong
// consistency; Exists is false when there is none.
func ReadPool(ctx context.Context, c AdminClient, table string, keys EntitlementKeys, poolID, entitlementKey string) (usage.Entitlement, error) {
	if keys == (EntitlementKeys{}) {
		keys = DefaultEntitlementKeys
	}
	key, ok := keys.key(usage.PoolScope(poolID, entitlementKey))
	if !ok {
		return usage.Entitlement{ResetPeriod: usage.ResetNone}, nil // too long to be a key: no such item can exist
	}
	res, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key.attributes(keys), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return usage.Entitlement{}, err
	}
	if res.Item == nil {
		return usage.Entitlement{ResetPeriod: usage.ResetNone}, nil
	}
	return ParseEntitlement(res.Item), nil
}

// PoolMember is a user's entitlement that names a pool.
type PoolMember struct {
	UserID string
	usage.Entitlement
}

// PoolMembers finds the members of pool poolID in entitlementKey: the
// users' entitlement items of that key whose pool attribute is poolID. It
// scans the whole table (a filter does not lower what a scan reads): an
// admin tool's way, not the service's. Sorted by userId.
func PoolMembers(ctx context.Context, c ScanClient, table string, keys EntitlementKeys, poolID, entitlementKey string) ([]PoolMember, error) {
	if keys == (EntitlementKeys{}) {
		keys = DefaultEntitlementKeys
	}
	var out []PoolMember
	var start map[string]types.AttributeValue
	for {
		res, err := c.Scan(ctx, &dynamodb.ScanInput{
			TableName:                aws.String(table),
			FilterExpression:         aws.String("#pool = :pool AND #sk = :sk AND begins_with(#pk, :user)"),
			ExpressionAttributeNames: map[string]string{"#pool": usage.AttrPool, "#pk": keys.PartitionAttr, "#sk": keys.SortAttr},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pool": &types.AttributeValueMemberS{Value: poolID},
				":sk":   &types.AttributeValueMemberS{Value: keys.KeyPrefix + entitlementKey},
				":user": &types.AttributeValueMemberS{Value: keys.UserPrefix},
			},
			ConsistentRead:    aws.Bool(true),
			ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, err
		}
		for _, item := range res.Items {
			pk, _ := item[keys.PartitionAttr].(*types.AttributeValueMemberS)
			if pk == nil || !strings.HasPrefix(pk.Value, keys.UserPrefix) {
				continue
			}
			out = append(out, PoolMember{UserID: pk.Value[len(keys.UserPrefix):], Entitlement: ParseEntitlement(item)})
		}
		if start = res.LastEvaluatedKey; start == nil {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return out, nil
}
