package dynamodb

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/usage"
)

// batchClient answers BatchGetItem from items, leaving the first
// unprocessed keys of each request unread while leave lasts.
type batchClient struct {
	Client
	items    map[[2]string]bool
	leave    int // requests that leave keys unprocessed
	requests []int
}

func (c *batchClient) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}, UnprocessedKeys: map[string]types.KeysAndAttributes{}}
	for table, ka := range in.RequestItems {
		c.requests = append(c.requests, len(ka.Keys))
		keys := ka.Keys
		if c.leave > 0 {
			c.leave--
			out.UnprocessedKeys[table] = types.KeysAndAttributes{Keys: keys[:1]}
			keys = keys[1:]
		}
		for _, k := range keys {
			pk, sk := k[ledgerPK].(*types.AttributeValueMemberS).Value, k[ledgerSK].(*types.AttributeValueMemberS).Value
			if c.items[[2]string{pk, sk}] {
				out.Responses[table] = append(out.Responses[table], k)
			}
		}
	}
	return out, nil
}

// TestReadLedgerItemsBatches: keys go 100 a request, once each;
// unprocessed keys are asked for again, and a read that never completes
// fails with ErrUnprocessedKeys.
func TestReadLedgerItemsBatches(t *testing.T) {
	scope := usage.Scope{UserID: "u", EntitlementKey: "k"}
	var keys []string
	items := map[[2]string]bool{}
	for i := range 150 {
		k := "c-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		keys = append(keys, k)
		if i%3 == 0 {
			pk, sk := LedgerKey(scope, k)
			items[[2]string{pk, sk}] = true
		}
	}
	keys = append(keys, keys[0]) // a key twice is read once
	c := &batchClient{items: items, leave: 1}
	s := NewStore(c, Config{LedgerTable: "ledger"})
	found, err := s.readLedgerItems(context.Background(), scope, keys, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 50 {
		t.Errorf("found %d items, want 50", len(found))
	}
	if got := c.requests; len(got) != 3 || got[0] != 100 || got[1] != 50 || got[2] != 1 {
		t.Errorf("requests of %v keys, want [100 50 1] (the unprocessed one again)", got)
	}

	c = &batchClient{items: items, leave: unprocessedAttempts}
	s = NewStore(c, Config{LedgerTable: "ledger"})
	if _, err := s.readLedgerItems(context.Background(), scope, keys[:1], true); !errors.Is(err, ErrUnprocessedKeys) {
		t.Errorf("a key never processed: %v, want ErrUnprocessedKeys", err)
	}
}
