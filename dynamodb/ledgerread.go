package dynamodb

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/internal/backoff"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Ledger keys are read many at a time: the keys of a redelivered batch, a
// rejection's keys confirmed by reads, a group's new keys read first. One
// read after another would take a round trip each, and a group of 40
// redeliveries 40 of them: long enough, behind a slow network, for their
// visibility timeout to run out while they are read, so that they are
// received again as redeliveries once more.

// maxBatchGet is BatchGetItem's limit of keys per request.
const maxBatchGet = 100

// unprocessedAttempts bounds the requests for keys DynamoDB leaves
// unprocessed (it does so when a request exceeds the table's throughput).
const unprocessedAttempts = 5

var unprocessedBackoff = backoff.Exponential{Base: 10 * time.Millisecond, Max: 200 * time.Millisecond}

// ErrUnprocessedKeys is the cause of RETRY when DynamoDB kept leaving
// ledger keys of a read unprocessed.
var ErrUnprocessedKeys = errors.New("DynamoDB kept leaving ledger keys unread (throughput exceeded)")

// readLedgerItems reads ledger keys with BatchGetItem, 100 a request, and
// returns the items found by key. Keys DynamoDB leaves unprocessed are
// asked for again, a few times, before it gives up with
// ErrUnprocessedKeys (the items read so far are returned with it).
func (s *Store) readLedgerItems(ctx context.Context, scope usage.Scope, keys []string, consistent bool) (map[string]map[string]types.AttributeValue, error) {
	found := map[string]map[string]types.AttributeValue{}
	byKey := map[[2]string]string{}
	var pending []map[string]types.AttributeValue
	for _, k := range keys {
		pk, sk := LedgerKey(scope, k)
		if _, dup := byKey[[2]string{pk, sk}]; dup {
			continue // BatchGetItem refuses a key twice
		}
		byKey[[2]string{pk, sk}] = k
		pending = append(pending, ledgerKeyAttributes(scope, k))
	}
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == unprocessedAttempts {
			return found, ErrUnprocessedKeys
		}
		if attempt > 0 {
			if err := backoff.Sleep(ctx, unprocessedBackoff.Full(attempt)); err != nil {
				return found, err
			}
		}
		var left []map[string]types.AttributeValue
		for part := range slices.Chunk(pending, maxBatchGet) {
			out, err := s.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
				RequestItems: map[string]types.KeysAndAttributes{s.cfg.LedgerTable: {Keys: part, ConsistentRead: aws.Bool(consistent)}},
			})
			if err != nil {
				return found, err
			}
			for _, item := range out.Responses[s.cfg.LedgerTable] {
				pk, _ := item[ledgerPK].(*types.AttributeValueMemberS)
				sk, _ := item[ledgerSK].(*types.AttributeValueMemberS)
				if pk == nil || sk == nil {
					continue
				}
				if k, ok := byKey[[2]string{pk.Value, sk.Value}]; ok {
					found[k] = item
				}
			}
			left = append(left, out.UnprocessedKeys[s.cfg.LedgerTable].Keys...)
		}
		pending = left
	}
	return found, nil
}
