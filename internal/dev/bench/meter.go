package bench

import (
	"context"
	"errors"
	"maps"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	ddbstore "github.com/usage-event-service/usage-event-service/dynamodb"
)

// Meter counts DynamoDB requests and consumed capacity through SDK
// middleware on the client (o.APIOptions), so nothing the code under test
// does escapes it: every HTTP attempt is counted, the SDK's own retries
// included, and ReturnConsumedCapacity=TOTAL is set on inputs that lack it.
type Meter struct {
	mu        sync.Mutex
	attempts  map[string]int // HTTP attempts by operation
	calls     map[string]int // API calls by operation (an SDK retry is one call)
	failures  map[string]int // failed calls by "Operation: ErrorCode[reasons]"
	canceled  int            // TransactWriteItems canceled
	canceledN int            // items in canceled transactions
	// canceledBy: canceled transactions by the item whose condition
	// failed: "pool" (a pool's entitlement item), "entitlement" (the
	// first item, or another on a table told of by KnowItems) or "ledger"
	// (a ledger key assumed absent was there, or a refunded consume
	// moved).
	canceledBy map[string]int
	condFail   int                // single-item writes whose condition failed
	units      map[string]float64 // capacity by "read"/"write" (reported), "rru"/"wru"/"failedWru" (model)
	maxPut     int                // largest item written by a Put, in bytes
	warnings   int                // SDK warnings logged
	took       map[string]time.Duration
	// sizes: the items whose size the run knew before it started (see
	// KnowItems); read-only once the run has started.
	sizes *itemSizes
	// writes: the committed transactions' updates of items of a table
	// KnowItems was told of, by their expressions (see MeterSnapshot).
	writes map[string]int
	// committed: TransactWriteItems calls that succeeded. poolWrites:
	// their items (Update or ConditionCheck) on a pool's entitlement item
	// (a table told of by KnowItems, a partition key beginning with
	// poolPrefix); poolWritesCanceled: the same in canceled or failed
	// transactions; poolReads: GetItems of a pool's item that succeeded.
	committed, poolWrites, poolWritesCanceled, poolReads int
	// entWrites: the committed transactions' updates and condition checks
	// of the other items of tables told of by KnowItems (members' and
	// other users' entitlements).
	entWrites int
}

// poolPrefix begins the partition key of a pool's entitlement item (the
// benchmark's tables use the default key layout).
var poolPrefix = ddbstore.DefaultEntitlementKeys.PoolPrefix

// isPoolItem reports whether key (or a whole item) of table is a pool's
// entitlement item: on a table told of by KnowItems, its first key
// attribute a string beginning with poolPrefix. The ledger's items of a
// pool (its notifications) are on another table and do not count.
func (m *Meter) isPoolItem(table *string, key map[string]types.AttributeValue) bool {
	if m.sizes == nil || table == nil {
		return false
	}
	attrs := m.sizes.keys[*table]
	if len(attrs) == 0 {
		return false
	}
	pk, ok := key[attrs[0]].(*types.AttributeValueMemberS)
	return ok && strings.HasPrefix(pk.Value, poolPrefix)
}

// knownTable reports whether a transaction's item is on a table told of
// by KnowItems (the entitlements').
func (m *Meter) knownTable(it types.TransactWriteItem) bool {
	var table *string
	switch {
	case it.Update != nil:
		table = it.Update.TableName
	case it.ConditionCheck != nil:
		table = it.ConditionCheck.TableName
	case it.Put != nil:
		table = it.Put.TableName
	case it.Delete != nil:
		table = it.Delete.TableName
	}
	return m.sizes != nil && table != nil && m.sizes.keys[*table] != nil
}

// poolItemWrites counts a transaction's writes of pool items: updates
// and condition checks (each bills the pool's partition as a write).
func (m *Meter) poolItemWrites(items []types.TransactWriteItem) int {
	n := 0
	for _, it := range items {
		switch {
		case it.Update != nil && m.isPoolItem(it.Update.TableName, it.Update.Key):
			n++
		case it.ConditionCheck != nil && m.isPoolItem(it.ConditionCheck.TableName, it.ConditionCheck.Key):
			n++
		}
	}
	return n
}

// KnowItems tells the meter the size of items as stored before the run
// (call it before the first metered request), keyed by keyAttrs: a write
// to one of them, or a read of it, is then priced by its size instead of
// as under 1 KB (see requestUnits).
func (m *Meter) KnowItems(table string, items []map[string]types.AttributeValue, keyAttrs ...string) {
	if m.sizes == nil {
		m.sizes = &itemSizes{keys: map[string][]string{}, bytes: map[string]int{}}
	}
	m.sizes.keys[table] = keyAttrs
	for _, it := range items {
		m.sizes.bytes[m.sizes.key(table, it)] = ItemSize(it)
	}
}

// itemSizes: bytes of items as stored before a run, by table and key.
type itemSizes struct {
	keys  map[string][]string // table -> its key attributes
	bytes map[string]int
}

// of is the size of the item of table whose key attributes item (a key,
// or a whole item) holds; 0 when not known.
func (s *itemSizes) of(table *string, item map[string]types.AttributeValue) int {
	if s == nil || table == nil {
		return 0
	}
	if _, ok := s.keys[*table]; !ok {
		return 0
	}
	return s.bytes[s.key(*table, item)]
}

func (s *itemSizes) key(table string, item map[string]types.AttributeValue) string {
	var b strings.Builder
	b.WriteString(table)
	for _, name := range s.keys[table] {
		b.WriteByte(0)
		switch v := item[name].(type) {
		case *types.AttributeValueMemberS:
			b.WriteString(v.Value)
		case *types.AttributeValueMemberN:
			b.WriteString(v.Value)
		case *types.AttributeValueMemberB:
			b.Write(v.Value)
		}
	}
	return b.String()
}

func (m *Meter) warning() {
	m.mu.Lock()
	m.warnings++
	m.mu.Unlock()
}

// NewMeter returns an empty Meter.
func NewMeter() *Meter {
	return &Meter{attempts: map[string]int{}, calls: map[string]int{}, failures: map[string]int{}, units: map[string]float64{}, took: map[string]time.Duration{}, canceledBy: map[string]int{}}
}

// tally collects what one unit of work (a group, an event) cost; it rides
// on the context of the calls it makes.
type tally struct {
	mu       sync.Mutex
	requests int
	rcu, wcu float64 // as DynamoDB reported them
	rru, wru float64 // as the pricing model charges them, failed writes included
	// GetItem alone: the reads that fill the store's cache.
	reads            int
	readRCU, readRRU float64
}

// add counts o's requests in t too.
func (t *tally) add(o *tally) {
	o.mu.Lock()
	defer o.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requests += o.requests
	t.rcu, t.wcu, t.rru, t.wru = t.rcu+o.rcu, t.wcu+o.wcu, t.rru+o.rru, t.wru+o.wru
	t.reads, t.readRCU, t.readRRU = t.reads+o.reads, t.readRCU+o.readRCU, t.readRRU+o.readRRU
}

type tallyKey struct{}

func withTally(ctx context.Context, t *tally) context.Context {
	return context.WithValue(ctx, tallyKey{}, t)
}

func tallyOf(ctx context.Context) *tally {
	t, _ := ctx.Value(tallyKey{}).(*tally)
	return t
}

// APIOption installs the meter on a client's middleware stack.
func (m *Meter) APIOption(stack *middleware.Stack) error {
	capacity := middleware.InitializeMiddlewareFunc("bench.ConsumedCapacity", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		in.Parameters = withConsumedCapacity(in.Parameters)
		t0 := time.Now()
		out, md, err := next.HandleInitialize(ctx, in)
		op := middleware.GetOperationName(ctx)
		m.observe(ctx, op, in.Parameters, out.Result, err, time.Since(t0))
		return out, md, err
	})
	if err := stack.Initialize.Add(capacity, middleware.Before); err != nil {
		return err
	}
	attempt := middleware.FinalizeMiddlewareFunc("bench.CountAttempts", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		op := middleware.GetOperationName(ctx)
		m.mu.Lock()
		m.attempts[op]++
		m.mu.Unlock()
		if t := tallyOf(ctx); t != nil {
			t.mu.Lock()
			t.requests++
			if op == "GetItem" {
				t.reads++
			}
			t.mu.Unlock()
		}
		return next.HandleFinalize(ctx, in)
	})
	// After the retry middleware, so that each attempt passes through.
	if err := stack.Finalize.Insert(attempt, "Retry", middleware.After); err != nil {
		return stack.Finalize.Add(attempt, middleware.After)
	}
	return nil
}

// withConsumedCapacity returns the input with ReturnConsumedCapacity=TOTAL
// when it was unset (a shallow copy: the caller's input is not touched).
func withConsumedCapacity(p any) any {
	total := types.ReturnConsumedCapacityTotal
	switch in := p.(type) {
	case *dynamodb.GetItemInput:
		if in.ReturnConsumedCapacity == "" {
			c := *in
			c.ReturnConsumedCapacity = total
			return &c
		}
	case *dynamodb.PutItemInput:
		if in.ReturnConsumedCapacity == "" {
			c := *in
			c.ReturnConsumedCapacity = total
			return &c
		}
	case *dynamodb.UpdateItemInput:
		if in.ReturnConsumedCapacity == "" {
			c := *in
			c.ReturnConsumedCapacity = total
			return &c
		}
	case *dynamodb.DeleteItemInput:
		if in.ReturnConsumedCapacity == "" {
			c := *in
			c.ReturnConsumedCapacity = total
			return &c
		}
	case *dynamodb.TransactWriteItemsInput:
		if in.ReturnConsumedCapacity == "" {
			c := *in
			c.ReturnConsumedCapacity = total
			return &c
		}
	case *dynamodb.BatchGetItemInput:
		if in.ReturnConsumedCapacity == "" {
			c := *in
			c.ReturnConsumedCapacity = total
			return &c
		}
	case *dynamodb.QueryInput:
		if in.ReturnConsumedCapacity == "" {
			c := *in
			c.ReturnConsumedCapacity = total
			return &c
		}
	}
	return p
}

var readOps = map[string]bool{"GetItem": true, "BatchGetItem": true, "Query": true, "Scan": true, "TransactGetItems": true}

func (m *Meter) observe(ctx context.Context, op string, params, result any, err error, took time.Duration) {
	var cc []types.ConsumedCapacity
	switch out := result.(type) {
	case *dynamodb.GetItemOutput:
		cc = one(out.ConsumedCapacity)
	case *dynamodb.PutItemOutput:
		cc = one(out.ConsumedCapacity)
	case *dynamodb.UpdateItemOutput:
		cc = one(out.ConsumedCapacity)
	case *dynamodb.DeleteItemOutput:
		cc = one(out.ConsumedCapacity)
	case *dynamodb.TransactWriteItemsOutput:
		cc = out.ConsumedCapacity
	case *dynamodb.QueryOutput:
		cc = one(out.ConsumedCapacity)
	case *dynamodb.BatchGetItemOutput:
		cc = out.ConsumedCapacity
	}
	rru, wru, failedWRU, maxPut := m.sizes.requestUnits(op, params, result, err)
	var rcu, wcu float64
	for _, c := range cc {
		switch {
		case c.ReadCapacityUnits != nil || c.WriteCapacityUnits != nil:
			if c.ReadCapacityUnits != nil {
				rcu += *c.ReadCapacityUnits
			}
			if c.WriteCapacityUnits != nil {
				wcu += *c.WriteCapacityUnits
			}
		case c.CapacityUnits != nil && readOps[op]:
			rcu += *c.CapacityUnits
		case c.CapacityUnits != nil:
			wcu += *c.CapacityUnits
		}
	}
	m.mu.Lock()
	m.calls[op]++
	m.took[op] += took
	m.units["read"] += rcu
	m.units["write"] += wcu
	m.units["rru"] += rru
	m.units["wru"] += wru
	m.units["failedWru"] += failedWRU
	m.maxPut = max(m.maxPut, maxPut)
	if in, ok := params.(*dynamodb.TransactWriteItemsInput); ok {
		if err == nil {
			m.committed++
			pool := m.poolItemWrites(in.TransactItems)
			m.poolWrites += pool
			for _, it := range in.TransactItems {
				if (it.Update != nil || it.ConditionCheck != nil) && m.knownTable(it) {
					m.entWrites++
				}
			}
			m.entWrites -= pool
		} else {
			m.poolWritesCanceled += m.poolItemWrites(in.TransactItems)
		}
	}
	if in, ok := params.(*dynamodb.GetItemInput); ok && err == nil && m.isPoolItem(in.TableName, in.Key) {
		m.poolReads++
	}
	if in, ok := params.(*dynamodb.TransactWriteItemsInput); ok && err == nil && m.sizes != nil {
		for _, it := range in.TransactItems {
			if u := it.Update; u != nil && u.TableName != nil && m.sizes.keys[*u.TableName] != nil {
				if m.writes == nil {
					m.writes = map[string]int{}
				}
				m.writes[updateShape(u)]++
			}
		}
	}
	if err != nil {
		m.failures[failureName(op, err)]++
		var canceled *types.TransactionCanceledException
		var ccf *types.ConditionalCheckFailedException
		switch {
		case errors.As(err, &canceled):
			m.canceled++
			if in, ok := params.(*dynamodb.TransactWriteItemsInput); ok {
				m.canceledN += len(in.TransactItems)
				for i, r := range canceled.CancellationReasons {
					if r.Code != nil && *r.Code == "ConditionalCheckFailed" {
						what := "ledger"
						switch {
						case i < len(in.TransactItems) && m.poolItemWrites(in.TransactItems[i:i+1]) > 0:
							what = "pool"
						case i == 0 || (i < len(in.TransactItems) && m.knownTable(in.TransactItems[i])):
							what = "entitlement"
						}
						m.canceledBy[what]++
					}
				}
			}
		case errors.As(err, &ccf):
			m.condFail++
		}
	}
	m.mu.Unlock()
	if t := tallyOf(ctx); t != nil {
		t.mu.Lock()
		t.rcu += rcu
		t.wcu += wcu
		t.rru += rru
		t.wru += wru + failedWRU
		if op == "GetItem" {
			t.readRCU += rcu
			t.readRRU += rru
		}
		t.mu.Unlock()
	}
}

func one(c *types.ConsumedCapacity) []types.ConsumedCapacity {
	if c == nil {
		return nil
	}
	return []types.ConsumedCapacity{*c}
}

// failureName is "Operation: Code", with the distinct cancellation reasons
// of a canceled transaction, e.g. "TransactWriteItems: TransactionCanceled[ConditionalCheckFailed]".
func failureName(op string, err error) string {
	var canceled *types.TransactionCanceledException
	if errors.As(err, &canceled) {
		seen := map[string]bool{}
		var codes []string
		for _, r := range canceled.CancellationReasons {
			if r.Code == nil || *r.Code == "None" || seen[*r.Code] {
				continue
			}
			seen[*r.Code] = true
			codes = append(codes, *r.Code)
		}
		sort.Strings(codes)
		name := op + ": TransactionCanceled["
		for i, c := range codes {
			if i > 0 {
				name += ","
			}
			name += c
		}
		return name + "]"
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return op + ": " + apiErr.ErrorCode()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return op + ": " + err.Error()
	}
	return op + ": other"
}

// updateShape is an update's expressions as sent: what the write does and
// what it rests on, values left as placeholders and each grant's ID as
// #id (every entitlement of a run has grants of its own IDs).
func updateShape(u *types.Update) string {
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return grantPath.ReplaceAllString(deref(u.UpdateExpression)+" IF "+deref(u.ConditionExpression), "#grants.#id")
}

var grantPath = regexp.MustCompile(`#grants\.#[A-Za-z0-9_]+`)

// MeterSnapshot is what a Meter counted.
type MeterSnapshot struct {
	Attempts map[string]int `json:"requestsByOperation"`
	Calls    map[string]int `json:"callsByOperation"`
	Failures map[string]int `json:"failedCalls,omitempty"`
	Requests int            `json:"requests"`
	// RCU and WCU are the ConsumedCapacity DynamoDB (Local) reported.
	RCU float64 `json:"rcu"`
	WCU float64 `json:"wcu"`
	// RRU and WRU are on-demand request units by DynamoDB's documented
	// rules (see requestUnits); FailedWRU is the part charged for writes
	// whose condition failed, which report no capacity at all.
	RRU         float64 `json:"rru"`
	WRU         float64 `json:"wru"`
	FailedWRU   float64 `json:"failedWru"`
	MaxPutBytes int     `json:"maxPutItemBytes"`
	SDKWarnings int     `json:"sdkWarnings"`
	// KnownItemWrites counts the committed transactions' updates of items
	// of a table the meter was told of (KnowItems: the entitlements), by
	// their update and condition expressions (updateShape).
	KnownItemWrites map[string]int `json:"knownItemWrites,omitempty"`
	// MeanMs is the mean latency of a call by operation, SDK retries
	// included.
	MeanMs map[string]float64 `json:"meanCallMsByOperation"`
	// Failed writes return no ConsumedCapacity, but DynamoDB charges them.
	ConditionalCheckFailures int `json:"conditionalCheckFailures"`
	CanceledTransactions     int `json:"canceledTransactions"`
	CanceledTransactionItems int `json:"canceledTransactionItems"`
	// FailedConditionsBy counts the failed conditions of canceled
	// transactions by item: "pool" (a pool's entitlement item),
	// "entitlement" (the plan's first write, or another item of a table
	// told of by KnowItems: a member's), or "ledger" (any other).
	FailedConditionsBy map[string]int `json:"failedConditionsBy,omitempty"`
	// CommittedTransactions: TransactWriteItems calls that succeeded.
	// PoolItemWrites: their writes (updates and condition checks) of a
	// pool's entitlement item; PoolItemWritesCanceled: those of
	// transactions that failed. PoolItemReads: GetItems of a pool's item.
	CommittedTransactions  int `json:"committedTransactions"`
	PoolItemWrites         int `json:"poolItemWrites,omitempty"`
	PoolItemWritesCanceled int `json:"poolItemWritesCanceled,omitempty"`
	PoolItemReads          int `json:"poolItemReads,omitempty"`
	// EntitlementItemWrites: the committed transactions' updates and
	// condition checks of the other entitlement items (users').
	EntitlementItemWrites int `json:"entitlementItemWrites"`
}

// Snapshot copies the counts.
func (m *Meter) Snapshot() MeterSnapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := MeterSnapshot{Attempts: map[string]int{}, Calls: map[string]int{}, Failures: map[string]int{},
		RCU: m.units["read"], WCU: m.units["write"], ConditionalCheckFailures: m.condFail,
		RRU: m.units["rru"], WRU: m.units["wru"] + m.units["failedWru"], FailedWRU: m.units["failedWru"], MaxPutBytes: m.maxPut, SDKWarnings: m.warnings,
		CanceledTransactions: m.canceled, CanceledTransactionItems: m.canceledN, FailedConditionsBy: map[string]int{},
		CommittedTransactions: m.committed, PoolItemWrites: m.poolWrites, PoolItemWritesCanceled: m.poolWritesCanceled, PoolItemReads: m.poolReads,
		EntitlementItemWrites: m.entWrites}
	for k, v := range m.canceledBy {
		s.FailedConditionsBy[k] = v
	}
	for k, v := range m.attempts {
		s.Attempts[k] = v
		s.Requests += v
	}
	s.MeanMs = map[string]float64{}
	for k, v := range m.calls {
		s.Calls[k] = v
		s.MeanMs[k] = float64(m.took[k]) / float64(time.Millisecond) / float64(v)
	}
	if m.writes != nil {
		s.KnownItemWrites = maps.Clone(m.writes)
	}
	for k, v := range m.failures {
		s.Failures[k] = v
	}
	return s
}

// requestUnits prices one call by DynamoDB's documented on-demand rules,
// because DynamoDB Local's ConsumedCapacity for TransactWriteItems does not
// follow them (it reports 4 units per table touched, whatever the number of
// items; see docs/performance.md):
//
//   - GetItem: 1 RRU per 4 KB of the item read if strongly consistent,
//     half that if eventually consistent (an absent item still costs the
//     minimum; a projection does not lower the item's size);
//   - PutItem, UpdateItem, DeleteItem: 1 WRU per KB written, also when the
//     condition fails;
//   - TransactWriteItems: 2 WRU per KB for each item, ConditionCheck
//     included; a canceled transaction is counted in full (an upper bound).
//
// Sizes: a Put's item is measured; Update, Delete and ConditionCheck items
// are taken as under 1 KB unless their size before the run is known
// (Meter.KnowItems), then priced by it (DynamoDB prices an update by the
// larger of the item's sizes before and after it: Result reports the
// items whose size in 1 KB units changed during the run, which this
// rule would underprice). A read of a known item is priced by the larger
// of its known size and what it returned. Failed writes are returned as
// failed.
func requestUnits(op string, params, result any, err error) (rru, wru, failed float64, maxPut int) {
	return (*itemSizes)(nil).requestUnits(op, params, result, err)
}

// requestUnits: see the function requestUnits; s knows sizes of items.
func (s *itemSizes) requestUnits(op string, params, result any, err error) (rru, wru, failed float64, maxPut int) {
	kb := func(n int) float64 { return float64(max(1, (n+1023)/1024)) }
	switch in := params.(type) {
	case *dynamodb.GetItemInput:
		if err != nil {
			return 0, 0, 0, 0
		}
		size := 0
		if out, ok := result.(*dynamodb.GetItemOutput); ok {
			size = ItemSize(out.Item)
			if out.Item != nil {
				size = max(size, s.of(in.TableName, in.Key))
			}
		}
		units := float64(max(1, (size+4095)/4096))
		if in.ConsistentRead == nil || !*in.ConsistentRead {
			units /= 2
		}
		return units, 0, 0, 0
	case *dynamodb.BatchGetItemInput:
		if err != nil {
			return 0, 0, 0, 0
		}
		out, _ := result.(*dynamodb.BatchGetItemOutput)
		return batchGetUnits(in, out), 0, 0, 0
	case *dynamodb.PutItemInput:
		maxPut = ItemSize(in.Item)
		wru = kb(max(maxPut, s.of(in.TableName, in.Item)))
	case *dynamodb.UpdateItemInput:
		wru = kb(s.of(in.TableName, in.Key))
	case *dynamodb.DeleteItemInput:
		wru = kb(s.of(in.TableName, in.Key))
	case *dynamodb.TransactWriteItemsInput:
		for _, it := range in.TransactItems {
			switch {
			case it.Put != nil:
				n := ItemSize(it.Put.Item)
				maxPut = max(maxPut, n)
				wru += 2 * kb(max(n, s.of(it.Put.TableName, it.Put.Item)))
			case it.Update != nil:
				wru += 2 * kb(s.of(it.Update.TableName, it.Update.Key))
			case it.Delete != nil:
				wru += 2 * kb(s.of(it.Delete.TableName, it.Delete.Key))
			case it.ConditionCheck != nil:
				wru += 2 * kb(s.of(it.ConditionCheck.TableName, it.ConditionCheck.Key))
			default:
				wru += 2
			}
		}
	default:
		return 0, 0, 0, 0
	}
	if err != nil {
		var canceled *types.TransactionCanceledException
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &canceled) || errors.As(err, &ccf) {
			return 0, 0, wru, maxPut
		}
		return 0, 0, 0, maxPut // throttled, network: not charged
	}
	return 0, wru, 0, maxPut
}

// batchGetUnits prices a BatchGetItem as its single reads: each key
// processed is one read of its item's size in 4 KB steps, at least one
// (a key not found costs as much as a small item), halved when eventually
// consistent. Unprocessed keys are not charged.
func batchGetUnits(in *dynamodb.BatchGetItemInput, out *dynamodb.BatchGetItemOutput) float64 {
	var units float64
	for table, ka := range in.RequestItems {
		keys := len(ka.Keys)
		if out != nil {
			keys -= len(out.UnprocessedKeys[table].Keys)
		}
		found := 0
		var each float64
		if out != nil {
			for _, item := range out.Responses[table] {
				found++
				each += float64(max(1, (ItemSize(item)+4095)/4096))
			}
		}
		each += float64(max(0, keys-found))
		if ka.ConsistentRead == nil || !*ka.ConsistentRead {
			each /= 2
		}
		units += each
	}
	return units
}

// ItemSize approximates DynamoDB's item size: attribute names plus values
// (strings and binaries by length, numbers at about one byte per two
// digits plus one, 1 byte for booleans and nulls, 3 bytes of overhead for
// lists and maps plus 1 per element).
func ItemSize(item map[string]types.AttributeValue) int {
	n := 0
	for k, v := range item {
		n += len(k) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return (len(v.Value)+1)/2 + 1
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += (len(s)+1)/2 + 1
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += 1 + len(k) + valueSize(e)
		}
		return n
	}
	return 0
}
