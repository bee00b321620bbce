package dynamodb

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"time"

	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/usage"
)

// refusingClient refuses as invalid every transaction of more than
// maxItems items, and counts calls.
type refusingClient struct {
	maxItems          int
	reads, consistent int
	writes            []int // items per TransactWriteItems call
}

func (c *refusingClient) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.reads++
	if aws.ToBool(in.ConsistentRead) {
		c.consistent++
	}
	return &dynamodb.GetItemOutput{Item: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "USER#u"}, "used": &types.AttributeValueMemberN{Value: "1"},
	}}, nil
}

func (c *refusingClient) Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return &dynamodb.QueryOutput{}, nil
}

func (c *refusingClient) BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	return &dynamodb.BatchGetItemOutput{}, nil
}

func (c *refusingClient) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	c.writes = append(c.writes, len(in.TransactItems))
	if len(in.TransactItems) > c.maxItems {
		return nil, &smithy.GenericAPIError{Code: "ValidationException", Message: "refused"}
	}
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

// TestAPersistentInvalidWriteFallsBackToOneEventAtATime: DynamoDB keeps
// refusing the group's write even after a consistent re-read, so each
// event is decided and written alone and gets its own outcome; an event
// refused alone is RETRY with the reason, never guessed.
func TestAPersistentInvalidWriteFallsBackToOneEventAtATime(t *testing.T) {
	rec := func(id string) usage.Record {
		return usage.Record{Event: usage.NewEvent("u", "k"), MessageID: id}
	}
	decide := func(st usage.State, r []usage.Record) usage.Plan { return usage.PlanUsage(st, r, time.Now()) }

	c := &refusingClient{maxItems: 2} // the entitlement and one ledger entry
	s := NewStore(c, Config{EntitlementsTable: "ent", LedgerTable: "ledger"})
	scope := usage.Scope{UserID: "u", EntitlementKey: "k"}
	out := metering.Writer{Store: s}.Update(context.Background(), scope, []usage.Record{rec("a"), rec("b"), rec("c")}, decide)
	for i, o := range out {
		if o.Status != usage.Applied {
			t.Errorf("record %d: %s %v, want APPLIED", i, o.Status, o.Err)
		}
	}
	if want := []int{4, 4, 2, 2, 2}; !slices.Equal(c.writes, want) {
		t.Errorf("transactions of %v items, want %v (group, group after a consistent re-read, then one each)", c.writes, want)
	}
	if c.consistent == 0 {
		t.Error("no consistent re-read before falling back")
	}

	c = &refusingClient{maxItems: 0}
	s = NewStore(c, Config{EntitlementsTable: "ent", LedgerTable: "ledger"})
	out = metering.Writer{Store: s}.Update(context.Background(), scope, []usage.Record{rec("a")}, decide)
	if out[0].Status != usage.Retry || !errors.Is(out[0].Err, metering.ErrInvalidWrite) {
		t.Errorf("refused alone: %s %v, want RETRY %v", out[0].Status, out[0].Err, metering.ErrInvalidWrite)
	}
}

func (c *refusingClient) TransactGetItems(context.Context, *dynamodb.TransactGetItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactGetItemsOutput, error) {
	return &dynamodb.TransactGetItemsOutput{}, nil
}
