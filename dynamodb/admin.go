package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/usage-event-service/usage-event-service/internal/backoff"
	"github.com/usage-event-service/usage-event-service/usage"
)

// AdminClient is what set-up and inspection need. The service itself
// never calls these (see Client and IAMActions); usagectl, the local demo
// and tests do.
type AdminClient interface {
	Client
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	UpdateTimeToLive(context.Context, *dynamodb.UpdateTimeToLiveInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
	UpdateTable(context.Context, *dynamodb.UpdateTableInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateTableOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// CreateLedgerTable creates the ledger table (pk S, sk S, on-demand, TTL on
// expiresAt, the sparse index PendingIndex) if it does not exist, and adds
// the index to one that lacks it. It returns whether it created the table.
func CreateLedgerTable(ctx context.Context, c AdminClient, name string) (bool, error) {
	created, err := createTable(ctx, c, name, ledgerPK, ledgerSK, pendingIndex())
	if err != nil {
		return false, err
	}
	if !created {
		if err := ensureIndex(ctx, c, name, pendingIndex()); err != nil {
			return false, err
		}
	}
	_, err = c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(ledgerExpiresAt), Enabled: aws.Bool(true)},
	})
	var apiErr smithy.APIError // ValidationException: "TimeToLive is already enabled"
	if err != nil && !(errors.As(err, &apiErr) && apiErr.ErrorCode() == "ValidationException") {
		return created, fmt.Errorf("enable TTL on %s: %w", name, err)
	}
	return created, nil
}

// CreateEntitlementsTable creates an entitlements table shaped like
// access-service's, for local development and tests only: in AWS the
// table belongs to access-service.
func CreateEntitlementsTable(ctx context.Context, c AdminClient, name string, keys EntitlementKeys) (bool, error) {
	if keys == (EntitlementKeys{}) {
		keys = DefaultEntitlementKeys
	}
	return createTable(ctx, c, name, keys.PartitionAttr, keys.SortAttr)
}

// pendingIndex is the ledger's sparse index of work left to do (see
// PendingIndex): only items that carry pendingPk are in it.
func pendingIndex() types.GlobalSecondaryIndex {
	return types.GlobalSecondaryIndex{
		IndexName: aws.String(PendingIndex),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(pendingPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(pendingAt), KeyType: types.KeyTypeRange},
		},
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
	}
}

func indexAttributes(indexes []types.GlobalSecondaryIndex) []types.AttributeDefinition {
	var defs []types.AttributeDefinition
	for _, ix := range indexes {
		for _, k := range ix.KeySchema {
			defs = append(defs, types.AttributeDefinition{AttributeName: k.AttributeName, AttributeType: types.ScalarAttributeTypeS})
		}
	}
	return defs
}

func createTable(ctx context.Context, c AdminClient, name, pk, sk string, indexes ...types.GlobalSecondaryIndex) (bool, error) {
	_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(name),
		AttributeDefinitions: append([]types.AttributeDefinition{
			{AttributeName: aws.String(pk), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(sk), AttributeType: types.ScalarAttributeTypeS},
		}, indexAttributes(indexes)...),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(pk), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(sk), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: nilIfNoIndexes(indexes),
		BillingMode:            types.BillingModePayPerRequest,
	})
	var inUse *types.ResourceInUseException
	switch {
	case errors.As(err, &inUse):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("create table %s: %w", name, err)
	}
	waiter := dynamodb.NewTableExistsWaiter(c)
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, time.Minute); err != nil {
		return true, fmt.Errorf("wait for table %s: %w", name, err)
	}
	return true, nil
}

func nilIfNoIndexes(ix []types.GlobalSecondaryIndex) []types.GlobalSecondaryIndex {
	if len(ix) == 0 {
		return nil
	}
	return ix
}

// ensureIndex adds an index to an existing table that lacks it (a ledger
// table made before the index existed), and waits until it is active.
func ensureIndex(ctx context.Context, c AdminClient, table string, ix types.GlobalSecondaryIndex) error {
	desc, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("describe table %s: %w", table, err)
	}
	for _, have := range desc.Table.GlobalSecondaryIndexes {
		if aws.ToString(have.IndexName) == aws.ToString(ix.IndexName) {
			return nil
		}
	}
	_, err = c.UpdateTable(ctx, &dynamodb.UpdateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: indexAttributes([]types.GlobalSecondaryIndex{ix}),
		GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: &types.CreateGlobalSecondaryIndexAction{
			IndexName: ix.IndexName, KeySchema: ix.KeySchema, Projection: ix.Projection,
		}}},
	})
	if err != nil {
		return fmt.Errorf("add index %s to %s: %w", aws.ToString(ix.IndexName), table, err)
	}
	for range 120 {
		desc, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			return err
		}
		for _, have := range desc.Table.GlobalSecondaryIndexes {
			if aws.ToString(have.IndexName) == aws.ToString(ix.IndexName) && have.IndexStatus == types.IndexStatusActive {
				return nil
			}
		}
		if err := backoff.Sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("index %s of %s did not become active", aws.ToString(ix.IndexName), table)
}

// EntitlementItem is an entitlement as access-service writes it.
type EntitlementItem struct {
	UserID, EntitlementKey string
	Limit                  *usage.Decimal
	Used                   *usage.Decimal
	ResetPeriod            usage.ResetPeriod // "" leaves the attribute out (NONE)
	PeriodStart            *time.Time
	ResetAnchor            *time.Time
	// OverageLimit is how far consumes may go beyond the allowance and
	// the grants; RolloverMax the most unused allowance a reset carries
	// into the new period as a grant. nil leaves the attribute out (none).
	OverageLimit, RolloverMax *usage.Decimal
	// Pool is, on a member's entitlement, the ID of the pool it draws
	// from too (usage.AttrPool); "" leaves the attribute out.
	Pool string
	// Extra attributes of access-service's own, kept verbatim.
	Extra map[string]types.AttributeValue
}

// PutEntitlement writes an entitlement item the way access-service would
// (for local development and tests).
func PutEntitlement(ctx context.Context, c AdminClient, table string, keys EntitlementKeys, e EntitlementItem) error {
	if keys == (EntitlementKeys{}) {
		keys = DefaultEntitlementKeys
	}
	return putEntitlementItem(ctx, c, table, keys, usage.Scope{UserID: e.UserID, EntitlementKey: e.EntitlementKey}, e)
}

// putEntitlementItem writes e's attributes as the entitlement item of
// scope (a user's or a pool's).
func putEntitlementItem(ctx context.Context, c AdminClient, table string, keys EntitlementKeys, scope usage.Scope, e EntitlementItem) error {
	key, ok := keys.key(scope)
	if !ok {
		if scope.Pool {
			return errors.New("pool ID or entitlementKey too long for a DynamoDB key")
		}
		return errors.New("userId or entitlementKey too long for a DynamoDB key")
	}
	item := map[string]types.AttributeValue{}
	for k, v := range e.Extra {
		item[k] = v
	}
	for k, v := range key.attributes(keys) {
		item[k] = v
	}
	if e.Limit != nil {
		item[usage.AttrLimit] = number(*e.Limit)
	}
	if e.Used != nil {
		item[usage.AttrUsed] = number(*e.Used)
	}
	if e.ResetPeriod != "" {
		item[usage.AttrResetPeriod] = &types.AttributeValueMemberS{Value: string(e.ResetPeriod)}
	}
	if e.PeriodStart != nil {
		item[usage.AttrPeriodStart] = &types.AttributeValueMemberS{Value: usage.FormatInstant(*e.PeriodStart)}
	}
	if e.ResetAnchor != nil {
		item[usage.AttrResetAnchor] = &types.AttributeValueMemberS{Value: e.ResetAnchor.Format(time.RFC3339Nano)}
	}
	if e.OverageLimit != nil {
		item[usage.AttrOverageLimit] = number(*e.OverageLimit)
	}
	if e.RolloverMax != nil {
		item[usage.AttrRolloverMax] = number(*e.RolloverMax)
	}
	if e.Pool != "" {
		item[usage.AttrPool] = &types.AttributeValueMemberS{Value: e.Pool}
	}
	_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item})
	return err
}

// Entitlement is an entitlement as read for inspection.
type Entitlement struct {
	EntitlementKey string
	usage.Entitlement
}

// ListEntitlements returns a user's entitlements (all, or the one key),
// read with strong consistency, sorted by key.
func ListEntitlements(ctx context.Context, c AdminClient, table string, keys EntitlementKeys, userID, entitlementKey string) ([]Entitlement, error) {
	if keys == (EntitlementKeys{}) {
		keys = DefaultEntitlementKeys
	}
	key, ok := keys.key(usage.Scope{UserID: userID, EntitlementKey: entitlementKey})
	if !ok {
		return nil, nil // too long to be a key: no such item can exist
	}
	cond := "#pk = :pk AND begins_with(#sk, :sk)"
	if entitlementKey != "" {
		cond = "#pk = :pk AND #sk = :sk"
	}
	var out []Entitlement
	var start map[string]types.AttributeValue
	for {
		res, err := c.Query(ctx, &dynamodb.QueryInput{
			TableName:                aws.String(table),
			KeyConditionExpression:   aws.String(cond),
			ExpressionAttributeNames: map[string]string{"#pk": keys.PartitionAttr, "#sk": keys.SortAttr},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": &types.AttributeValueMemberS{Value: key.pk},
				":sk": &types.AttributeValueMemberS{Value: key.sk},
			},
			ConsistentRead:    aws.Bool(true),
			ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, err
		}
		for _, item := range res.Items {
			sk, _ := item[keys.SortAttr].(*types.AttributeValueMemberS)
			if sk == nil {
				continue
			}
			out = append(out, Entitlement{EntitlementKey: sk.Value[len(keys.KeyPrefix):], Entitlement: ParseEntitlement(item)})
		}
		if start = res.LastEvaluatedKey; start == nil {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].EntitlementKey < out[j].EntitlementKey })
	return out, nil
}

// ListLedger returns the applied events of a scope, oldest key first.
func ListLedger(ctx context.Context, c AdminClient, table string, scope usage.Scope) ([]usage.LedgerEntry, error) {
	var out []usage.LedgerEntry
	for e, err := range LedgerEntries(ctx, c, table, scope) {
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// LedgerEntries yields the applied events of a scope in ListLedger's
// order, reading one Query page at a time, so that a caller can keep only
// some of a long ledger, or stop early. An error is yielded last.
func LedgerEntries(ctx context.Context, c AdminClient, table string, scope usage.Scope) iter.Seq2[usage.LedgerEntry, error] {
	return func(yield func(usage.LedgerEntry, error) bool) {
		pk, _ := LedgerKey(scope, "")
		var start map[string]types.AttributeValue
		for {
			res, err := c.Query(ctx, &dynamodb.QueryInput{
				TableName: aws.String(table),
				// KEY# and KEYHASH#: the applied operations, not the
				// partition's recorded notifications.
				KeyConditionExpression:   aws.String("#pk = :pk AND begins_with(#sk, :key)"),
				ExpressionAttributeNames: map[string]string{"#pk": ledgerPK, "#sk": ledgerSK},
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":pk": &types.AttributeValueMemberS{Value: pk}, ":key": &types.AttributeValueMemberS{Value: "KEY"},
				},
				ConsistentRead:    aws.Bool(true),
				ExclusiveStartKey: start,
			})
			if err != nil {
				yield(usage.LedgerEntry{}, err)
				return
			}
			for _, item := range res.Items {
				if !yield(ledgerEntry(item), nil) {
					return
				}
			}
			if start = res.LastEvaluatedKey; start == nil {
				return
			}
		}
	}
}
