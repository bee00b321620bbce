package adversarial

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// faultKind names the faults the client injects, for the counts a run
// logs.
type faultKind string

const (
	faultGap        faultKind = "gap-writer"
	faultLost       faultKind = "lost-answer"
	faultStale      faultKind = "stale-read"
	faultStalePool  faultKind = "stale-read (a pool's item)"
	faultUnprocess  faultKind = "unprocessed-keys"
	faultThrottle   faultKind = "throttle"
	faultThrottleTx faultKind = "throttle-transaction"
)

// errLostAnswer is what a call whose answer was lost returns: the write
// happened, the caller does not know.
var errLostAnswer = errors.New("adversarial: the connection dropped after the request was sent; the answer is lost")

// faultPlan is how likely each fault is on one call, while faults are on.
type faultPlan struct {
	gap, lost, stale, unprocessed, throttle float64
}

// lostTx is a transaction that committed but whose answer was lost: the
// ledger keys it touched tell the harness which events it decided.
type lostTx struct {
	keys map[string]bool // ledger sort keys (KEY#...) put, updated or checked
}

// faultClient is a dynamodb.Client between one process's Store and
// DynamoDB Local. Its faults come from the scenario's random source, so a
// seed replays them.
type faultClient struct {
	w    *world
	real *awsdynamodb.Client
}

func (c *faultClient) on() bool { return c.w.faultsOn && !c.w.inGap }

func (c *faultClient) roll(p float64) bool { return c.on() && p > 0 && c.w.rng.Float64() < p }

// arbiter runs the gap writer before the first call of a step that can
// make a decision final: a transaction, or a consistent read of the
// entitlement (a decision that writes nothing is confirmed by it), made
// within Store.Update (not the balance an Engine reads afterwards).
// Consistent ledger reads are not: they feed a decision, which the
// transaction or the confirmation that follows makes final.
func (c *faultClient) arbiter(ctx context.Context) {
	if !c.on() || !c.w.inUpdate || c.w.gapDone || c.w.gap == nil {
		return
	}
	c.w.gapDone = true
	if c.w.rng.Float64() >= c.w.faults.gap {
		return
	}
	c.w.count(faultGap)
	c.w.inGap = true
	defer func() { c.w.inGap = false }()
	c.w.gap(ctx)
}

func (c *faultClient) GetItem(ctx context.Context, in *awsdynamodb.GetItemInput, opts ...func(*awsdynamodb.Options)) (*awsdynamodb.GetItemOutput, error) {
	consistent := aws.ToBool(in.ConsistentRead)
	if consistent {
		c.arbiter(ctx)
	}
	if c.roll(c.w.faults.throttle) {
		c.w.count(faultThrottle)
		return nil, &types.ProvisionedThroughputExceededException{Message: aws.String("adversarial: throttled")}
	}
	if !consistent && aws.ToString(in.TableName) == c.w.entTable && c.roll(c.w.faults.stale) {
		if old, ok := c.w.staleEntitlement(in.Key); ok {
			c.w.count(faultStale)
			if pk, _ := in.Key["pk"].(*types.AttributeValueMemberS); pk != nil && isPoolKey(pk.Value) {
				c.w.count(faultStalePool)
			}
			return &awsdynamodb.GetItemOutput{Item: project(old, in.ProjectionExpression, in.ExpressionAttributeNames)}, nil
		}
	}
	out, err := c.real.GetItem(ctx, in, opts...)
	if err == nil && c.roll(c.w.faults.lost/2) {
		c.w.count(faultLost)
		return nil, errLostAnswer
	}
	return out, err
}

func (c *faultClient) TransactWriteItems(ctx context.Context, in *awsdynamodb.TransactWriteItemsInput, opts ...func(*awsdynamodb.Options)) (*awsdynamodb.TransactWriteItemsOutput, error) {
	c.arbiter(ctx)
	if c.roll(c.w.faults.throttle) {
		c.w.count(faultThrottleTx)
		reasons := make([]types.CancellationReason, len(in.TransactItems))
		for i := range reasons {
			reasons[i] = types.CancellationReason{Code: aws.String("None")}
		}
		reasons[c.w.rng.IntN(len(reasons))] = types.CancellationReason{Code: aws.String("ThrottlingError"), Message: aws.String("adversarial: throttled")}
		return nil, &types.TransactionCanceledException{Message: aws.String("Transaction cancelled"), CancellationReasons: reasons}
	}
	out, err := c.real.TransactWriteItems(ctx, in, opts...)
	if err == nil && c.roll(c.w.faults.lost) {
		c.w.count(faultLost)
		c.w.lost = append(c.w.lost, lostTx{keys: ledgerKeysOf(in, c.w.ledgerTable)})
		return nil, errLostAnswer
	}
	return out, err
}

func (c *faultClient) Query(ctx context.Context, in *awsdynamodb.QueryInput, opts ...func(*awsdynamodb.Options)) (*awsdynamodb.QueryOutput, error) {
	if c.roll(c.w.faults.throttle) {
		c.w.count(faultThrottle)
		return nil, &types.ProvisionedThroughputExceededException{Message: aws.String("adversarial: throttled")}
	}
	return c.real.Query(ctx, in, opts...)
}

func (c *faultClient) BatchGetItem(ctx context.Context, in *awsdynamodb.BatchGetItemInput, opts ...func(*awsdynamodb.Options)) (*awsdynamodb.BatchGetItemOutput, error) {
	consistent := false
	for _, ka := range in.RequestItems {
		consistent = consistent || aws.ToBool(ka.ConsistentRead)
	}
	if c.roll(c.w.faults.throttle) {
		c.w.count(faultThrottle)
		return nil, &types.ProvisionedThroughputExceededException{Message: aws.String("adversarial: throttled")}
	}
	out, err := c.real.BatchGetItem(ctx, in, opts...)
	if err != nil {
		return out, err
	}
	// The store builds requests from maps, so the order of the items
	// varies from run to run; the faults below pick items by position,
	// and a seed must replay them exactly.
	for _, items := range out.Responses {
		slices.SortFunc(items, func(a, b map[string]types.AttributeValue) int { return strings.Compare(skOf(a), skOf(b)) })
	}
	if !consistent && c.roll(c.w.faults.stale) {
		// An older snapshot: entries written in the last steps are not
		// there yet.
		for table, items := range out.Responses {
			kept := items[:0:0]
			for _, it := range items {
				if c.w.recentLedgerKey(it) {
					c.w.count(faultStale)
					continue
				}
				kept = append(kept, it)
			}
			out.Responses[table] = kept
		}
	}
	if c.roll(c.w.faults.unprocessed) {
		for table, items := range out.Responses {
			if len(items) == 0 {
				continue
			}
			c.w.count(faultUnprocess)
			n := 1 + c.w.rng.IntN(len(items))
			moved := items[len(items)-n:]
			out.Responses[table] = items[:len(items)-n]
			if out.UnprocessedKeys == nil {
				out.UnprocessedKeys = map[string]types.KeysAndAttributes{}
			}
			ka := in.RequestItems[table]
			keys := ka.Keys[:0:0]
			for _, it := range moved {
				keys = append(keys, map[string]types.AttributeValue{"pk": it["pk"], "sk": it["sk"]})
			}
			ka.Keys = keys
			out.UnprocessedKeys[table] = ka
		}
	}
	return out, err
}

func skOf(item map[string]types.AttributeValue) string {
	if s, ok := item["sk"].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// ledgerKeysOf lists the ledger sort keys a transaction touched.
func ledgerKeysOf(in *awsdynamodb.TransactWriteItemsInput, ledger string) map[string]bool {
	keys := map[string]bool{}
	add := func(table *string, key map[string]types.AttributeValue) {
		if aws.ToString(table) != ledger {
			return
		}
		if s, ok := key["sk"].(*types.AttributeValueMemberS); ok && strings.HasPrefix(s.Value, "KEY#") {
			keys[s.Value] = true
		}
	}
	for _, ti := range in.TransactItems {
		switch {
		case ti.Put != nil:
			add(ti.Put.TableName, ti.Put.Item)
		case ti.Update != nil:
			add(ti.Update.TableName, ti.Update.Key)
		case ti.ConditionCheck != nil:
			add(ti.ConditionCheck.TableName, ti.ConditionCheck.Key)
		}
	}
	return keys
}

// project keeps the attributes a projection expression names.
func project(item map[string]types.AttributeValue, proj *string, names map[string]string) map[string]types.AttributeValue {
	if item == nil || proj == nil {
		return maps.Clone(item)
	}
	out := map[string]types.AttributeValue{}
	for _, p := range strings.Split(*proj, ",") {
		p = strings.TrimSpace(p)
		if n, ok := names[p]; ok {
			p = n
		}
		if v, ok := item[p]; ok {
			out[p] = v
		}
	}
	return out
}

// TransactGetItems confirms a pool member's rejection on a snapshot: the
// other writer may act just before it, and it may be throttled or its
// answer lost, as any confirming read.
func (c *faultClient) TransactGetItems(ctx context.Context, in *awsdynamodb.TransactGetItemsInput, opts ...func(*awsdynamodb.Options)) (*awsdynamodb.TransactGetItemsOutput, error) {
	c.arbiter(ctx)
	if c.roll(c.w.faults.throttle) {
		c.w.count(faultThrottle)
		return nil, &types.ProvisionedThroughputExceededException{Message: aws.String("adversarial: throttled")}
	}
	out, err := c.real.TransactGetItems(ctx, in, opts...)
	if err == nil && c.roll(c.w.faults.lost/2) {
		c.w.count(faultLost)
		return nil, errLostAnswer
	}
	return out, err
}
