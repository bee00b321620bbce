// Package dynamodb applies decisions to DynamoDB: the writes of a
// usage.Plan, for one scope, as one atomic, conditional
// TransactWriteItems. The domain (package usage) decides, and states as
// data the exact preconditions each decision relied on; this package
// translates them mechanically and owns only the retries, the state cache
// and the reading of cancellation reasons.
package dynamodb

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/usage-event-service/usage-event-service/internal/backoff"
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
}

// Config configures a Store.
type Config struct {
	EntitlementsTable string
	LedgerTable       string
	Keys              EntitlementKeys
	// Retention is how long ledger entries (and so dedup) last; DynamoDB's
	// TTL deletes them some time after. Default usage.DefaultDedupRetention.
	Retention time.Duration
	// MaxAttempts bounds the conditional writes per group before its
	// events are handed back to the queue as RETRY.
	MaxAttempts int
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
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 12
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{client: client, cfg: cfg, cache: stateCache{m: map[usage.Scope]cached{}}}
}

// maxGroup bounds the records of one transaction: one entitlement item
// plus one ledger item each, well inside DynamoDB's 100 items and 4 MB
// (metadata is at most 32 KiB an event).
const maxGroup = 50

// ErrContention is the cause of a RETRY outcome when the conditional
// write kept finding the state changed, or transactions kept conflicting.
var ErrContention = errors.New("entitlement kept changing under concurrent writers; retries exhausted")

// ErrInvalidWrite is the cause of RETRY when DynamoDB kept refusing a
// single event's write as invalid although a fresh consistent read
// explained nothing: a bug, never guessed around.
var ErrInvalidWrite = errors.New("DynamoDB rejected the write as invalid even after a consistent re-read")

// Update decides and applies records of one scope, in order, and returns
// one outcome per record. Each group of up to 50 records is one atomic
// transaction. It never returns an error: transient failures are RETRY
// outcomes.
func (s *Store) Update(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome {
	out := make([]usage.Outcome, 0, len(records))
	for len(records) > 0 {
		n := min(len(records), maxGroup)
		out = append(out, s.updateGroup(ctx, scope, records[:n], decide, true)...)
		records = records[n:]
	}
	return out
}

// updateGroup: observe, then decide and carry out the decision, until
// one is carried out or the attempts run out. Each attempt's step is one
// of: read what the decision asked for, confirm a decision that writes
// nothing, or commit its writes and, if DynamoDB refuses, learn why.
func (s *Store) updateGroup(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide, mayFallBack bool) []usage.Outcome {
	g := &group{s: s, scope: scope, records: records, decide: decide, mayFallBack: mayFallBack}
	g.key, g.addressable = s.cfg.Keys.key(scope)
	if err := g.observe(ctx, false); err != nil {
		return all(records, usage.Retry, err)
	}
	for attempt := 0; attempt < s.cfg.MaxAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return all(records, usage.Retry, err)
		}
		if out, done := g.step(ctx, decide(g.state, records)); done {
			return out
		}
	}
	return all(records, usage.Retry, ErrContention)
}

// group is one updateGroup call: what it knows so far.
type group struct {
	s           *Store
	scope       usage.Scope
	key         entitlementKey
	addressable bool
	records     []usage.Record
	decide      usage.Decide
	mayFallBack bool

	state     usage.State
	reread    bool // a consistent re-read after an invalid write was made
	conflicts int
	keysRead  bool // readFirst was considered
	estimated bool // the share of applied new keys was told what this group saw
}

func (g *group) observe(ctx context.Context, consistent bool) error {
	st, err := g.s.observe(ctx, g.scope, g.key, g.addressable, consistent)
	if err == nil {
		g.state.Entitlement, g.state.Notified = st.Entitlement, st.Notified
	}
	return err
}

// step carries a plan out; done is false when the group must decide
// again on what it learned.
func (g *group) step(ctx context.Context, plan usage.Plan) (out []usage.Outcome, done bool) {
	switch {
	case len(plan.Reads) > 0:
		st, err := g.s.readLedger(ctx, g.scope, g.state, plan.Reads)
		if err != nil {
			return all(g.records, usage.Retry, err), true
		}
		g.state = st
		return nil, false
	case len(plan.Writes) == 0:
		g.s.remember(g.scope, g.state.Entitlement.Observed, g.state.Notified)
		return plan.Outcomes, true
	case onlyChecks(plan):
		return g.confirm(ctx, plan)
	case g.readFirst(ctx, plan):
		return nil, false
	}
	return g.commit(ctx, plan)
}

// readFirst reads the new keys of the group's first transaction, once,
// when the store's estimate says that is cheaper than the transaction it
// may save; it reports whether it found any applied (then the group
// decides again, knowing them). A read that fails only leaves the
// transaction to find out.
func (g *group) readFirst(ctx context.Context, plan usage.Plan) bool {
	if g.keysRead {
		return false
	}
	g.keysRead = true
	keys := newKeys(plan)
	if !g.s.dupes.pays(len(keys), len(plan.Writes)) {
		return false
	}
	found, err := g.s.findApplied(ctx, g.scope, keys)
	if err != nil {
		return false
	}
	g.s.dupes.observe(len(keys), len(found))
	g.estimated = true
	if len(found) == 0 {
		return false
	}
	g.state = cancellation{applied: found}.apply(g.state)
	return true
}

// estimate tells the store, once per group, how many of its first
// transaction's new keys were found applied.
func (g *group) estimate(plan usage.Plan, applied map[string]usage.LedgerEntry) {
	if g.estimated {
		return
	}
	g.estimated = true
	keys := newKeys(plan)
	n := 0
	for _, k := range keys {
		if _, ok := applied[k]; ok {
			n++
		}
	}
	g.s.dupes.observe(len(keys), n)
}

// confirm verifies a plan that writes nothing by consistent reads.
func (g *group) confirm(ctx context.Context, plan usage.Plan) ([]usage.Outcome, bool) {
	c, held, err := g.s.verify(ctx, g.scope, g.key, plan)
	switch {
	case err != nil:
		return all(g.records, usage.Retry, err), true
	case held:
		if c.entitlement != nil {
			g.s.remember(g.scope, *c.entitlement, g.state.Notified)
		}
		return plan.Outcomes, true
	}
	g.state = c.apply(g.state)
	return nil, false
}

// commit writes the plan in one transaction, and hands what it recorded
// to the outbox.
func (g *group) commit(ctx context.Context, plan usage.Plan) ([]usage.Outcome, bool) {
	notes, err := g.s.write(ctx, g.scope, g.key, plan)
	if err != nil {
		return g.refused(ctx, plan, err)
	}
	g.estimate(plan, nil)
	g.s.remember(g.scope, plan.After(g.state.Entitlement.Observed), withKeys(g.state.Notified, notes))
	if len(notes) > 0 && g.s.cfg.Outbox != nil {
		g.s.cfg.Outbox.Recorded(ctx, notes)
	}
	return plan.Outcomes, true
}

// refused reads why DynamoDB refused a plan's transaction: a failed
// precondition teaches the current state; an invalid write is re-read
// consistently once, then decided event by event; a conflict backs off;
// anything else goes back to the queue (the SDK already retried
// throttling, 5xx and network errors).
func (g *group) refused(ctx context.Context, plan usage.Plan, err error) ([]usage.Outcome, bool) {
	c, canceled := g.s.cancellation(err, plan)
	switch {
	case !canceled:
		g.s.cache.forget(g.scope)
		return all(g.records, usage.Retry, err), true
	case c.invalid && g.reread:
		g.s.cache.forget(g.scope)
		if g.mayFallBack && len(g.records) > 1 {
			return g.s.oneByOne(ctx, g.scope, g.records, g.decide), true
		}
		return all(g.records, usage.Retry, ErrInvalidWrite), true
	case c.invalid:
		g.s.cache.forget(g.scope)
		g.reread = true
		if err := g.observe(ctx, true); err != nil {
			return all(g.records, usage.Retry, err), true
		}
	case c.learned():
		g.estimate(plan, c.applied)
		g.state = c.apply(g.state)
	default: // TransactionConflict, throttling of one item, ...
		g.conflicts++
		if err := backoff.Sleep(ctx, conflictBackoff.Full(g.conflicts)); err != nil {
			return all(g.records, usage.Retry, err), true
		}
	}
	return nil, false
}

// conflictBackoff spreads racing consumers out instead of letting them
// collide again in lockstep.
var conflictBackoff = backoff.Exponential{Base: 10 * time.Millisecond, Max: time.Second}

// oneByOne decides and writes each record alone, so that a write DynamoDB
// refuses for one of them does not hold back the others: each gets its
// own honest outcome.
func (s *Store) oneByOne(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome {
	out := make([]usage.Outcome, 0, len(records))
	for i := range records {
		out = append(out, s.updateGroup(ctx, scope, records[i:i+1], decide, false)...)
	}
	return out
}

func all(records []usage.Record, status usage.Status, err error) []usage.Outcome {
	out := make([]usage.Outcome, len(records))
	for i := range out {
		out[i] = usage.Outcome{Status: status, Err: err}
	}
	return out
}

// observe returns what is known of the scope before deciding: the cached
// entitlement, else a read (consistent when asked, after DynamoDB refused
// a write that the cached or eventually consistent state allowed).
func (s *Store) observe(ctx context.Context, scope usage.Scope, key entitlementKey, addressable, consistent bool) (usage.State, error) {
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

// withKeys adds the keys of recorded notifications to a set.
func withKeys(known map[string]bool, notes []usage.Notification) map[string]bool {
	if len(notes) == 0 {
		return known
	}
	out := maps.Clone(known)
	for _, n := range notes {
		out = setKey(out, n.Key, true)
	}
	return out
}

// read fetches the entitlement attributes with a projected GetItem;
// eventually consistent unless asked otherwise, since a stale answer is
// caught by the preconditions of the write that follows.
func (s *Store) read(ctx context.Context, key entitlementKey, consistent bool) (usage.Item, error) {
	names := map[string]string{}
	proj := make([]string, 0, len(usage.EntitlementAttrs)+1)
	e := expression{names: names}
	proj = append(proj, e.name(s.cfg.Keys.PartitionAttr))
	for _, a := range usage.EntitlementAttrs {
		proj = append(proj, e.name(a))
	}
	res, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(s.cfg.EntitlementsTable),
		Key:                      key.attributes(s.cfg.Keys),
		ProjectionExpression:     aws.String(strings.Join(proj, ", ")),
		ExpressionAttributeNames: names,
		ConsistentRead:           aws.Bool(consistent),
	})
	if err != nil {
		return usage.Item{}, err
	}
	return observe(res.Item), nil
}

// readLedger learns the ledger entries a decision asked for (a refund's
// target), with consistent reads: an entry applied a moment ago counts.
func (s *Store) readLedger(ctx context.Context, scope usage.Scope, st usage.State, keys []string) (usage.State, error) {
	items, err := s.readLedgerItems(ctx, scope, keys, true)
	if err != nil {
		return st, err
	}
	c := cancellation{applied: map[string]usage.LedgerEntry{}, absent: map[string]bool{}}
	for _, key := range keys {
		if item, ok := items[key]; ok {
			c.applied[key] = ledgerEntry(item)
		} else {
			c.absent[key] = true
		}
	}
	return c.apply(st), nil
}

// ReadEntitlement reads a scope's entitlement with a consistent read, for
// a caller that wants the balance after its decision.
func (s *Store) ReadEntitlement(ctx context.Context, scope usage.Scope) (usage.Entitlement, error) {
	key, ok := s.cfg.Keys.key(scope)
	st, err := s.observe(ctx, scope, key, ok, true)
	return st.Entitlement, err
}

func (s *Store) remember(scope usage.Scope, it usage.Item, notified map[string]bool) {
	if !s.cfg.DisableCache && !it.Unaddressable {
		s.cache.put(scope, cached{item: it, notified: notified})
	}
}

// onlyChecks: a plan that writes nothing (rejections and duplicates only).
func onlyChecks(plan usage.Plan) bool {
	for _, w := range plan.Writes {
		if w.Action != usage.Check {
			return false
		}
	}
	return true
}

// verify confirms a plan of checks by consistent reads instead of a
// transaction: a read unit each instead of two write units per item. The
// entitlement is read first, then the ledger keys (in one batch): a key absent after the
// entitlement proved the rejection was absent when it did (entries are
// never removed, only expired), so the rejection holds at that instant
// and the DUPLICATE-over-rejection guarantee stands. held is false when a
// check failed; c then holds what the reads taught.
func (s *Store) verify(ctx context.Context, scope usage.Scope, key entitlementKey, plan usage.Plan) (c cancellation, held bool, err error) {
	var ledger []usage.Write
	var keys []string
	for _, w := range plan.Writes {
		if w.Target.Kind != usage.EntitlementKind {
			ledger, keys = append(ledger, w), append(keys, w.Target.Key)
			continue
		}
		it, err := s.read(ctx, key, true)
		if err != nil {
			return c, false, err
		}
		c.entitlement = &it
		if !holds(w.Conds, it) {
			return c, false, nil
		}
	}
	items, err := s.readLedgerItems(ctx, scope, keys, true)
	if err != nil {
		return c, false, err
	}
	held = true
	for _, w := range ledger {
		item, ok := items[w.Target.Key]
		if ok {
			c.applied = setKey(c.applied, w.Target.Key, ledgerEntry(item))
		} else {
			c.absent = setKey(c.absent, w.Target.Key, true)
		}
		it := usage.Item{Exists: ok, Attrs: map[string]usage.Value{}}
		for k, v := range item {
			it.Attrs[k] = value(v)
		}
		held = held && holds(w.Conds, it)
	}
	return c, held, nil
}

// holds reports whether every condition holds on the item as read.
func holds(conds []usage.Cond, it usage.Item) bool {
	for _, cond := range conds {
		if !cond.Holds(it.Exists, it.Get(cond.Attr)) {
			return false
		}
	}
	return true
}

// write sends the plan's writes as one transaction, and returns the
// notifications it recorded.
func (s *Store) write(ctx context.Context, scope usage.Scope, key entitlementKey, plan usage.Plan) ([]usage.Notification, error) {
	tx, notes := s.transaction(scope, key, plan)
	_, err := s.client.TransactWriteItems(ctx, tx)
	return notes, err
}

// transaction translates a plan: one transaction item per write, in the
// plan's order (cancellation reasons come back in the same order).
func (s *Store) transaction(scope usage.Scope, key entitlementKey, plan usage.Plan) (*dynamodb.TransactWriteItemsInput, []usage.Notification) {
	now := s.cfg.Now().UTC()
	items := make([]types.TransactWriteItem, len(plan.Writes))
	var notes []usage.Notification
	for i, w := range plan.Writes {
		table, keyAttr, itemKey := s.cfg.EntitlementsTable, s.cfg.Keys.PartitionAttr, key.attributes(s.cfg.Keys)
		switch w.Target.Kind {
		case usage.LedgerKind:
			table, keyAttr, itemKey = s.cfg.LedgerTable, ledgerPK, ledgerKeyAttributes(scope, w.Target.Key)
		case usage.NotificationKind:
			table, keyAttr, itemKey = s.cfg.LedgerTable, ledgerPK, notificationKeyAttributes(scope, w.Target.Key)
		}
		e := translate(w, keyAttr)
		allOld := types.ReturnValuesOnConditionCheckFailureAllOld
		switch w.Action {
		case usage.Put:
			var item map[string]types.AttributeValue
			if w.Notice != nil {
				n := *w.Notice
				n.OccurredAt = now
				notes = append(notes, n)
				item = notificationItem(scope, &n, s.cfg.Retention)
			} else {
				item = ledgerItem(scope, w.Entry, now, now.Add(s.cfg.Retention))
			}
			items[i].Put = &types.Put{TableName: aws.String(table), Item: item,
				ConditionExpression: nilIfBlank(e.condition), ExpressionAttributeNames: nilIfNoNames(e.names),
				ExpressionAttributeValues: nilIfEmpty(e.values), ReturnValuesOnConditionCheckFailure: allOld}
		case usage.Update:
			items[i].Update = &types.Update{TableName: aws.String(table), Key: itemKey,
				UpdateExpression: aws.String(e.update), ConditionExpression: nilIfBlank(e.condition),
				ExpressionAttributeNames: e.names, ExpressionAttributeValues: nilIfEmpty(e.values),
				ReturnValuesOnConditionCheckFailure: allOld}
		case usage.Check:
			items[i].ConditionCheck = &types.ConditionCheck{TableName: aws.String(table), Key: itemKey,
				ConditionExpression: aws.String(e.condition), ExpressionAttributeNames: e.names,
				ExpressionAttributeValues: nilIfEmpty(e.values), ReturnValuesOnConditionCheckFailure: allOld}
		}
	}
	return &dynamodb.TransactWriteItemsInput{
		TransactItems: items,
		// Free to ask for; lets SDK middleware (the benchmark's meter)
		// account write units per event.
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
		// When the SDK retries this exact request after a lost response
		// (the write may have committed), DynamoDB answers with the first
		// attempt's success instead of failing the ledger conditions, so
		// the events are reported APPLIED, not DUPLICATE.
		ClientRequestToken: aws.String(requestToken()),
	}, notes
}

func requestToken() string {
	var b [16]byte
	crand.Read(b[:]) // never fails on Linux
	return hex.EncodeToString(b[:])
}

// cancellation is what a canceled transaction taught: the current
// entitlement when its preconditions failed, the stored ledger entries
// whose absence was assumed, and whether DynamoDB found a write invalid.
type cancellation struct {
	entitlement *usage.Item
	applied     map[string]usage.LedgerEntry
	absent      map[string]bool
	notified    map[string]bool
	invalid     bool
}

// cancellation reads a failed transaction's reasons, one per write in
// order. ok is false when err is neither a canceled transaction nor a
// refusal of the request as invalid.
func (s *Store) cancellation(err error, plan usage.Plan) (c cancellation, ok bool) {
	var canceled *types.TransactionCanceledException
	var api smithy.APIError
	if !errors.As(err, &canceled) {
		// DynamoDB Local refuses a sum beyond 38 digits for the whole
		// request rather than as the item's cancellation reason.
		if errors.As(err, &api) && api.ErrorCode() == "ValidationException" {
			return cancellation{invalid: true}, true
		}
		return c, false
	}
	for k, reason := range canceled.CancellationReasons {
		switch aws.ToString(reason.Code) {
		case "", "None":
		case "ConditionalCheckFailed":
			if k >= len(plan.Writes) {
				continue
			}
			if t := plan.Writes[k].Target; t.Kind == usage.NotificationKind {
				c.notified = setKey(c.notified, t.Key, true)
			} else if t.Kind == usage.LedgerKind && reason.Item == nil {
				c.absent = setKey(c.absent, t.Key, true)
			} else if t.Kind == usage.LedgerKind {
				c.applied = setKey(c.applied, t.Key, ledgerEntry(reason.Item))
			} else {
				it := observe(reason.Item)
				c.entitlement = &it
			}
		case "ValidationError":
			// For example used became a string, or a concurrent writer's
			// increments made the sum need more than 38 digits: the state
			// behind the plan is not what DynamoDB holds.
			c.invalid = true
		}
	}
	return c, true
}

func setKey[V any](m map[string]V, k string, v V) map[string]V {
	if m == nil {
		m = map[string]V{}
	}
	m[k] = v
	return m
}

func (c cancellation) learned() bool {
	return c.entitlement != nil || len(c.applied) > 0 || len(c.absent) > 0 || len(c.notified) > 0
}

// apply adds what was learned to the state; a key learned to exist is no
// longer absent and the other way round.
func (c cancellation) apply(st usage.State) usage.State {
	if c.entitlement != nil {
		st.Entitlement = usage.ParseEntitlement(*c.entitlement)
	}
	applied := maps.Clone(st.Applied)
	absent := maps.Clone(st.Absent)
	for k, v := range c.applied {
		applied = setKey(applied, k, v)
		delete(absent, k)
	}
	for k := range c.absent {
		absent = setKey(absent, k, true)
		delete(applied, k)
	}
	st.Applied, st.Absent = applied, absent
	if len(c.notified) > 0 {
		st.Notified = maps.Clone(st.Notified)
		for k := range c.notified {
			st.Notified = setKey(st.Notified, k, true)
		}
	}
	return st
}

func nilIfEmpty(m map[string]types.AttributeValue) map[string]types.AttributeValue {
	if len(m) == 0 {
		return nil
	}
	return m
}

func nilIfNoNames(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func nilIfBlank(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// stateCache remembers, per process, the entitlement state learned from
// reads and writes, to save the read before the next write. A stale entry
// costs one failed condition, which returns the fresh state.
type stateCache struct {
	mu sync.Mutex
	m  map[usage.Scope]cached
}

// cached is what the cache knows of a scope: its entitlement, and the
// keys of notifications known to be recorded (so that a flood of
// rejections does not try to record the period's one again and again).
type cached struct {
	item     usage.Item
	notified map[string]bool
}

const maxCached = 100_000

func (c *stateCache) get(s usage.Scope) (cached, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.m[s]
	return o, ok
}

func (c *stateCache) put(s usage.Scope, o cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCached {
		clear(c.m) // crude but bounded; a miss only costs a read
	}
	c.m[s] = o
}

func (c *stateCache) forget(s usage.Scope) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, s)
}
