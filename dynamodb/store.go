// Package dynamodb is the store of package metering on DynamoDB: the
// writes of a usage.Plan, for one scope, as one atomic, conditional
// TransactWriteItems. The domain (package usage) decides, and states as
// data the exact preconditions each decision relied on; metering runs the
// decide-and-write protocol; this package translates plans mechanically
// (commit.go, translate.go), reads (store.go, ledgerread.go, verify.go),
// reads cancellation reasons, and caches entitlement state (cache.go).
package dynamodb

import (
	"context"
	"maps"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/usage-event-service/usage-event-service/usage"
)

// Client is the part of the DynamoDB API the store calls. The IAM actions
// these need are listed in IAMActions.
type Client interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	// Query lists a scope's holds and, in the sparse index, expired ones.
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	// BatchGetItem reads ledger keys, many a request (ledgerread.go).
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	// TransactGetItems reads a member's item, its pool's and ledger keys
	// at one instant, to confirm a rejection (snapshot.go).
	TransactGetItems(context.Context, *dynamodb.TransactGetItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactGetItemsOutput, error)
}

// Config configures a Store.
type Config struct {
	EntitlementsTable string
	LedgerTable       string
	Keys              EntitlementKeys
	// Retention is how long ledger entries (and so dedup) last; DynamoDB's
	// TTL deletes them some time after. Default usage.DefaultDedupRetention.
	Retention time.Duration
	// DisableCache turns off the per-process cache of entitlement state.
	// The cache only saves reads; correctness never depends on it.
	DisableCache bool
	// Now is the clock for ledger timestamps and expiry.
	Now func() time.Time
	// Outbox, when set, is handed the notifications each committed write
	// recorded, to publish them at once.
	Outbox Outbox
}

// Store applies decisions with one conditional transaction per group.
type Store struct {
	client Client
	cfg    Config
	cache  stateCache
	dupes  readFirst
}

// NewStore returns a Store. Zero fields of cfg take their defaults.
func NewStore(client Client, cfg Config) *Store {
	if cfg.Keys == (EntitlementKeys{}) {
		cfg.Keys = DefaultEntitlementKeys
	}
	if cfg.Retention <= 0 {
		cfg.Retention = usage.DefaultDedupRetention
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{client: client, cfg: cfg, cache: stateCache{m: map[usage.Scope]cached{}}}
}

// Observe returns what is known of the scope before deciding: the cached
// entitlement, else a read (consistent when asked, after DynamoDB refused
// a write that the cached or eventually consistent state allowed, or for
// an answer).
func (s *Store) Observe(ctx context.Context, scope usage.Scope, consistent bool) (usage.State, error) {
	key, addressable := s.cfg.Keys.key(scope)
	if !addressable {
		return usage.State{Entitlement: usage.ParseEntitlement(usage.Item{Unaddressable: true})}, nil
	}
	c, hit := s.cache.get(scope)
	if hit && !consistent && !s.cfg.DisableCache {
		return usage.State{Entitlement: usage.ParseEntitlement(c.item), Notified: maps.Clone(c.notified)}, nil
	}
	it, err := s.read(ctx, key, consistent)
	if err != nil {
		return usage.State{}, err
	}
	// Recorded notifications stay recorded: what the cache knows of them
	// holds whatever the entitlement's state.
	return usage.State{Entitlement: usage.ParseEntitlement(it), Notified: maps.Clone(c.notified)}, nil
}

// read fetches the entitlement attributes with a projected GetItem;
// eventually consistent unless asked otherwise, since a stale answer is
// caught by the preconditions of the write that follows.
func (s *Store) read(ctx context.Context, key entitlementKey, consistent bool) (usage.Item, error) {
	proj, names := s.entitlementProjection()
	res, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(s.cfg.EntitlementsTable),
		Key:                      key.attributes(s.cfg.Keys),
		ProjectionExpression:     aws.String(proj),
		ExpressionAttributeNames: names,
		ConsistentRead:           aws.Bool(consistent),
	})
	if err != nil {
		return usage.Item{}, err
	}
	return observe(res.Item), nil
}

// entitlementProjection is the projection of an entitlement's read: its
// key and the attributes a decision reads.
func (s *Store) entitlementProjection() (string, map[string]string) {
	names := map[string]string{}
	e := expression{names: names}
	proj := make([]string, 0, len(usage.EntitlementAttrs)+1)
	proj = append(proj, e.name(s.cfg.Keys.PartitionAttr))
	for _, a := range usage.EntitlementAttrs {
		proj = append(proj, e.name(a))
	}
	return strings.Join(proj, ", "), names
}

// ReadLedger learns the ledger entries a decision asked for (a refund's
// target), with consistent reads: an entry applied a moment ago counts.
func (s *Store) ReadLedger(ctx context.Context, scope usage.Scope, keys []string) (usage.Learned, error) {
	items, err := s.readLedgerItems(ctx, scope, keys, true)
	if err != nil {
		return usage.Learned{}, err
	}
	l := usage.Learned{Applied: map[string]usage.LedgerEntry{}, Absent: map[string]bool{}}
	for _, key := range keys {
		if item, ok := items[key]; ok {
			l.Applied[key] = ledgerEntry(item)
		} else {
			l.Absent[key] = true
		}
	}
	return l, nil
}

// ReadEntitlement reads a scope's entitlement with a consistent read, for
// a caller that wants the balance after its decision.
func (s *Store) ReadEntitlement(ctx context.Context, scope usage.Scope) (usage.Entitlement, error) {
	st, err := s.Observe(ctx, scope, true)
	return st.Entitlement, err
}

// Remember caches the entitlement a final decision rested on, as its
// writes left it, with the notifications known to be recorded.
func (s *Store) Remember(scope usage.Scope, st usage.State) {
	if !s.cfg.DisableCache && !st.Entitlement.Observed.Unaddressable {
		s.cache.put(scope, cached{item: st.Entitlement.Observed, notified: st.Notified})
	}
}

// Forget drops what the cache knows of scope.
func (s *Store) Forget(scope usage.Scope) { s.cache.forget(scope) }
