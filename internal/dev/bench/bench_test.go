package bench

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/usage"
)

var testNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func testConfig() WorkloadConfig {
	return WorkloadConfig{Events: 2000, Users: 50, EntitlementsPerUser: 2, HotUsers: 2, HotShare: 0.5,
		DuplicateShare: 0.05, InvalidShare: 0.02, LimitPressure: 0.1, Seed: 7}
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, err := Generate(testConfig(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(testConfig(), testNow)
	if !reflect.DeepEqual(a.Messages, b.Messages) || !reflect.DeepEqual(a.Entitlements, b.Entitlements) {
		t.Fatal("the same seed generated different workloads")
	}
	other := testConfig()
	other.Seed = 8
	c, _ := Generate(other, testNow)
	if reflect.DeepEqual(a.Messages, c.Messages) {
		t.Fatal("a different seed generated the same workload")
	}
}

func TestGenerateShapesTheWorkload(t *testing.T) {
	w, err := Generate(testConfig(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Messages) != 2000 || len(w.Entitlements) != 100 {
		t.Fatalf("%d messages, %d entitlements", len(w.Messages), len(w.Entitlements))
	}
	kinds := map[Kind]int{}
	hot := 0
	for i, m := range w.Messages {
		kinds[m.Kind]++
		switch m.Kind {
		case Malformed:
			if _, err := usage.ParseEvent([]byte(m.Body)); err == nil {
				t.Errorf("malformed message %d parses: %s", i, m.Body)
			}
			continue
		case Redelivery:
			o := w.Messages[m.Original]
			if o.Kind != Fresh || o.Body != m.Body || o.DedupKey != m.DedupKey || m.Original >= i {
				t.Errorf("redelivery %d does not repeat an earlier message", i)
			}
			if (m.ID == o.ID) != (m.DedupKey == m.ID) {
				t.Errorf("redelivery %d: a message without idempotency key must keep its ID, one with a key must get a new one", i)
			}
		}
		ev, err := usage.ParseEvent([]byte(m.Body))
		if err != nil {
			t.Fatalf("message %d (%s) does not parse: %v", i, m.Kind, err)
		}
		if ev.Scope() != m.Scope || ev.Amount.Cmp(m.Amount) != 0 || (usage.Record{Event: ev, MessageID: m.ID}).DedupKey() != m.DedupKey {
			t.Errorf("message %d: body and ground truth disagree", i)
		}
		if _, ok := w.Entitlement(m.Scope); ok == (m.Kind == Unknown) {
			t.Errorf("message %d (%s): entitlement exists = %v", i, m.Kind, ok)
		}
		if m.Scope.UserID < UserID(2) {
			hot++
		}
	}
	share := func(n int) float64 { return float64(n) / 2000 }
	if s := share(kinds[Redelivery]); math.Abs(s-0.05) > 0.02 {
		t.Errorf("redelivery share %.3f", s)
	}
	if s := share(kinds[Malformed] + kinds[Unknown]); math.Abs(s-0.02) > 0.015 {
		t.Errorf("invalid share %.3f", s)
	}
	if s := share(hot); math.Abs(s-0.5) > 0.05 {
		t.Errorf("hot share %.3f", s)
	}
	pressured := 0
	for _, e := range w.Entitlements {
		if e.Pressured {
			pressured++
			if e.Limit == nil || e.Offered.Sign() > 0 && ExpectedUsed(&e, &ScopeTotals{Applied: 1, Sum: e.Offered}).Cmp(*e.Limit) <= 0 {
				t.Errorf("%v: pressured, but all it is offered fits its limit %v", e.Scope, e.Limit)
			}
		}
	}
	if pressured != 10 {
		t.Errorf("%d pressured entitlements, want 10", pressured)
	}
}

func TestGenerateRejectsBadConfig(t *testing.T) {
	for _, mod := range []func(*WorkloadConfig){
		func(c *WorkloadConfig) { c.Events = 0 },
		func(c *WorkloadConfig) { c.HotUsers = 51 },
		func(c *WorkloadConfig) { c.HotUsers = 0 },
		func(c *WorkloadConfig) { c.DuplicateShare = 1.5 },
		func(c *WorkloadConfig) { c.InvalidShare = math.NaN() },
	} {
		c := testConfig()
		mod(&c)
		if _, err := Generate(c, testNow); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, c := range []struct{ p, want float64 }{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {10, 1}, {1, 1}} {
		if got := Percentile(xs, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("percentile of nothing")
	}
	if xs[0] != 5 {
		t.Error("Percentile sorted its argument")
	}
	// Weighted: 1 counts 8 times, 100 twice.
	if got := WeightedPercentile([]float64{100, 1}, []float64{2, 8}, 50); got != 1 {
		t.Errorf("weighted p50 = %v", got)
	}
	if got := WeightedPercentile([]float64{100, 1}, []float64{2, 8}, 81); got != 100 {
		t.Errorf("weighted p81 = %v", got)
	}
	if got := WeightedPercentile([]float64{3, 1, 2}, []float64{1, 1, 1}, 50); got != Percentile([]float64{3, 1, 2}, 50) {
		t.Errorf("equal weights disagree with Percentile: %v", got)
	}
}

func d(s string) usage.Decimal { return usage.MustDecimal(s) }

func TestExpect(t *testing.T) {
	a := usage.Scope{UserID: "u1", EntitlementKey: "K"}
	b := usage.Scope{UserID: "u2", EntitlementKey: "K"}
	w := &Workload{Messages: []Message{
		{ID: "m0", Kind: Fresh, Scope: a, Amount: d("1.5"), DedupKey: "m0", Original: -1},
		{ID: "m1", Kind: Fresh, Scope: a, Amount: d("2"), DedupKey: "k1", Original: -1},
		{ID: "m2", Kind: Redelivery, Scope: a, Amount: d("2"), DedupKey: "k1", Original: 1},
		{ID: "m3", Kind: Fresh, Scope: b, Amount: d("5"), DedupKey: "m3", Original: -1},
		{ID: "m4", Kind: Malformed, Original: -1},
		{ID: "m5", Kind: Fresh, Scope: b, Amount: d("0.25"), DedupKey: "m5", Original: -1},
	}}
	deliveries := []Delivery{
		{Message: 0, Receive: 1, Status: usage.Applied},
		{Message: 1, Receive: 1, Status: usage.Retry, Reason: "CONTENTION"},
		{Message: 2, Receive: 1, Status: usage.Applied},
		{Message: 3, Receive: 1, Status: usage.Rejected, Reason: usage.ReasonLimitExceeded},
		{Message: 4, Receive: 1, Status: usage.Rejected, Reason: usage.ReasonInvalidJSON},
		{Message: 5, Receive: 1, Status: usage.Applied},
		{Message: 1, Receive: 2, Status: usage.Duplicate},
	}
	e := Expect(w, deliveries)
	if len(e.Problems) > 0 {
		t.Fatalf("problems: %v", e.Problems)
	}
	if e.AppliedTotal != 3 || e.AppliedSum.Cmp(d("3.75")) != 0 {
		t.Errorf("applied %d, sum %s", e.AppliedTotal, e.AppliedSum)
	}
	if ta := e.Scopes[a]; ta.Applied != 2 || ta.Sum.Cmp(d("3.5")) != 0 {
		t.Errorf("scope a: %+v", ta)
	}
	if tb := e.Scopes[b]; tb.Applied != 1 || tb.Sum.Cmp(d("0.25")) != 0 {
		t.Errorf("scope b: %+v", tb)
	}

	// Seeded 10: plus the applied amounts; a stale period restarts at 0;
	// nothing applied leaves the seeded value.
	ent := &Entitlement{Used: d("10")}
	if got := ExpectedUsed(ent, e.Scopes[a]); got.Cmp(d("13.5")) != 0 {
		t.Errorf("expected used %s", got)
	}
	ent.Stale = true
	if got := ExpectedUsed(ent, e.Scopes[a]); got.Cmp(d("3.5")) != 0 {
		t.Errorf("expected used after a reset %s", got)
	}
	if got := ExpectedUsed(ent, nil); got.Cmp(d("10")) != 0 {
		t.Errorf("expected used with nothing applied %s", got)
	}

	bad := append(deliveries[:len(deliveries):len(deliveries)],
		Delivery{Message: 0, Receive: 2, Status: usage.Applied},                     // applied twice
		Delivery{Message: 4, Receive: 2, Status: usage.Applied},                     // malformed applied
		Delivery{Message: 3, Receive: 2, Status: usage.Duplicate},                   // duplicate of nothing applied
		Delivery{Message: 5, Receive: 2, Status: usage.Retry, Reason: "CONTENTION"}) // not done in the end
	if p := Expect(w, bad).Problems; len(p) != 4 {
		t.Errorf("want 4 problems, got %d: %v", len(p), p)
	}
}

func TestRequestUnits(t *testing.T) {
	small := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}}
	big := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: string(make([]byte, 1500))}}
	tx := &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Update: &types.Update{}}, {Put: &types.Put{Item: small}}, {Put: &types.Put{Item: big}}, {ConditionCheck: &types.ConditionCheck{}},
	}}
	if _, wru, failed, _ := requestUnits("TransactWriteItems", tx, nil, nil); wru != 2+2+4+2 || failed != 0 {
		t.Errorf("transaction: %v WRU, %v failed", wru, failed)
	}
	if _, wru, failed, _ := requestUnits("TransactWriteItems", tx, nil, &types.TransactionCanceledException{}); wru != 0 || failed != 10 {
		t.Errorf("canceled transaction: %v WRU, %v failed", wru, failed)
	}
	if _, wru, failed, _ := requestUnits("PutItem", &dynamodb.PutItemInput{Item: small}, nil, &types.ConditionalCheckFailedException{}); wru != 0 || failed != 1 {
		t.Errorf("failed put: %v WRU, %v failed", wru, failed)
	}
	consistent := true
	if rru, _, _, _ := requestUnits("GetItem", &dynamodb.GetItemInput{ConsistentRead: &consistent}, &dynamodb.GetItemOutput{}, nil); rru != 1 {
		t.Errorf("consistent read of nothing: %v RRU", rru)
	}
	if rru, _, _, _ := requestUnits("GetItem", &dynamodb.GetItemInput{}, &dynamodb.GetItemOutput{Item: big}, nil); rru != 0.5 {
		t.Errorf("eventually consistent read: %v RRU", rru)
	}
	huge := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: string(make([]byte, 5000))}}
	batch := &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
		"ledger": {Keys: make([]map[string]types.AttributeValue, 5)},
	}}
	out := &dynamodb.BatchGetItemOutput{
		Responses:       map[string][]map[string]types.AttributeValue{"ledger": {small, huge}},
		UnprocessedKeys: map[string]types.KeysAndAttributes{"ledger": {Keys: make([]map[string]types.AttributeValue, 1)}},
	}
	// found: 1 + 2 units, not found: 2 keys at 1, unprocessed: free; halved
	if rru, _, _, _ := requestUnits("BatchGetItem", batch, out, nil); rru != 2.5 {
		t.Errorf("eventually consistent batch read: %v RRU, want 2.5", rru)
	}
}

// Items whose size before the run is known are priced by it: an
// entitlement of 3.2 KB costs 4 KB of writes in a transaction, and a read
// costs its whole size whatever the projection returned.
func TestRequestUnitsOfKnownItems(t *testing.T) {
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	key := func(u string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"pk": s(u), "sk": s("E")}
	}
	big, small := key("big"), key("small")
	big["grants"] = s(string(make([]byte, 3200)))
	huge := key("huge")
	huge["grants"] = s(string(make([]byte, 5000)))
	m := NewMeter()
	m.KnowItems("ent", []map[string]types.AttributeValue{big, small, huge}, "pk", "sk")
	table := "ent"
	other := "ledger"
	tx := &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Update: &types.Update{TableName: &table, Key: key("big")}},
		{Update: &types.Update{TableName: &table, Key: key("small")}},
		{Update: &types.Update{TableName: &table, Key: key("unknown")}},
		{ConditionCheck: &types.ConditionCheck{TableName: &other, Key: key("big")}},
		{Put: &types.Put{TableName: &table, Item: key("big")}}, // overwrites the 3.2 KB item
	}}
	if _, wru, _, _ := m.sizes.requestUnits("TransactWriteItems", tx, nil, nil); wru != 8+2+2+2+8 {
		t.Errorf("transaction: %v WRU, want 22", wru)
	}
	if _, wru, _, _ := m.sizes.requestUnits("UpdateItem", &dynamodb.UpdateItemInput{TableName: &table, Key: key("huge")}, nil, nil); wru != 5 {
		t.Errorf("update of a 5 KB item: %v WRU, want 5", wru)
	}
	projected := &dynamodb.GetItemOutput{Item: key("huge")}
	if rru, _, _, _ := m.sizes.requestUnits("GetItem", &dynamodb.GetItemInput{TableName: &table, Key: key("huge")}, projected, nil); rru != 1 {
		t.Errorf("eventually consistent read of a 5 KB item: %v RRU, want 1 (2 × 4 KB, halved)", rru)
	}
	if rru, _, _, _ := m.sizes.requestUnits("GetItem", &dynamodb.GetItemInput{TableName: &table, Key: key("gone")}, &dynamodb.GetItemOutput{}, nil); rru != 0.5 {
		t.Errorf("read of an absent item: %v RRU, want 0.5", rru)
	}
}

// The meter counts writes of a pool's entitlement item in committed and
// in canceled transactions, and reads of it, but not the ledger's items
// of a pool (its notifications) nor members' items.
func TestMeterCountsPoolItems(t *testing.T) {
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	key := func(pk, sk string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"pk": s(pk), "sk": s(sk)}
	}
	ent, ledger := "ent", "ledger"
	m := NewMeter()
	m.KnowItems(ent, []map[string]types.AttributeValue{key("USER#a", "ENTITLEMENT#K"), key("POOL#team", "ENTITLEMENT#K")}, "pk", "sk")
	tx := &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Update: &types.Update{TableName: aws.String(ent), Key: key("USER#a", "ENTITLEMENT#K")}},
		{Put: &types.Put{TableName: aws.String(ledger), Item: key("USER#a", "LEDGER#1")}},
		{Put: &types.Put{TableName: aws.String(ledger), Item: key("POOL#team", "NOTIFY#1")}},
		{Update: &types.Update{TableName: aws.String(ent), Key: key("POOL#team", "ENTITLEMENT#K")}},
	}}
	ctx := context.Background()
	m.observe(ctx, "TransactWriteItems", tx, &dynamodb.TransactWriteItemsOutput{}, nil, time.Millisecond)
	check := &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{ConditionCheck: &types.ConditionCheck{TableName: aws.String(ent), Key: key("USER#a", "ENTITLEMENT#K")}},
		{ConditionCheck: &types.ConditionCheck{TableName: aws.String(ent), Key: key("POOL#team", "ENTITLEMENT#K")}},
	}}
	m.observe(ctx, "TransactWriteItems", check, &dynamodb.TransactWriteItemsOutput{}, nil, time.Millisecond)
	failed := func(code string) types.CancellationReason { return types.CancellationReason{Code: aws.String(code)} }
	canceled := &types.TransactionCanceledException{CancellationReasons: []types.CancellationReason{failed("None"), failed("None"), failed("None"), failed("ConditionalCheckFailed")}}
	m.observe(ctx, "TransactWriteItems", tx, nil, canceled, time.Millisecond)
	// A transaction of two members and their pool: the second member's
	// failed condition is an entitlement's, not the ledger's.
	team := &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{tx.TransactItems[0], tx.TransactItems[1],
		{Update: &types.Update{TableName: aws.String(ent), Key: key("USER#b", "ENTITLEMENT#K")}}, tx.TransactItems[3]}}
	m.observe(ctx, "TransactWriteItems", team, nil, &types.TransactionCanceledException{CancellationReasons: []types.CancellationReason{
		failed("None"), failed("ConditionalCheckFailed"), failed("ConditionalCheckFailed"), failed("None")}}, time.Millisecond)
	m.observe(ctx, "GetItem", &dynamodb.GetItemInput{TableName: aws.String(ent), Key: key("POOL#team", "ENTITLEMENT#K")}, &dynamodb.GetItemOutput{}, nil, time.Millisecond)
	m.observe(ctx, "GetItem", &dynamodb.GetItemInput{TableName: aws.String(ent), Key: key("USER#a", "ENTITLEMENT#K")}, &dynamodb.GetItemOutput{}, nil, time.Millisecond)
	m.observe(ctx, "GetItem", &dynamodb.GetItemInput{TableName: aws.String(ledger), Key: key("POOL#team", "NOTIFY#1")}, &dynamodb.GetItemOutput{}, nil, time.Millisecond)
	got := m.Snapshot()
	if got.CommittedTransactions != 2 || got.PoolItemWrites != 2 || got.PoolItemWritesCanceled != 2 || got.PoolItemReads != 1 {
		t.Errorf("committed %d, pool writes %d, in canceled transactions %d, pool reads %d; want 2, 2, 2, 1",
			got.CommittedTransactions, got.PoolItemWrites, got.PoolItemWritesCanceled, got.PoolItemReads)
	}
	if got.EntitlementItemWrites != 2 {
		t.Errorf("%d writes of users' entitlement items, want 2 (an update and a check)", got.EntitlementItemWrites)
	}
	if want := map[string]int{"pool": 1, "ledger": 1, "entitlement": 1}; !reflect.DeepEqual(got.FailedConditionsBy, want) {
		t.Errorf("failed conditions by item %v, want %v", got.FailedConditionsBy, want)
	}
}

// drawShape names a ledger entry's buckets as the grants scenario checks
// them.
func TestDrawShape(t *testing.T) {
	draw := func(bucket string) types.AttributeValue {
		return &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"bucket": &types.AttributeValueMemberS{Value: bucket}}}
	}
	list := func(buckets ...string) types.AttributeValue {
		l := &types.AttributeValueMemberL{}
		for _, b := range buckets {
			l.Value = append(l.Value, draw(b))
		}
		return l
	}
	for _, c := range []struct {
		draws types.AttributeValue
		want  string
	}{
		{nil, "allowance"},
		{list("grant"), "grant"},
		{list("allowance", "grant"), "allowance+grant"},
		{list("allowance", "grant", "grant", "grant"), "allowance+3 grants"},
		{list("grant", "grant", "overage"), "2 grants+overage"},
	} {
		if got := drawShape(c.draws); got != c.want {
			t.Errorf("drawShape(%v) = %q, want %q", c.draws, got, c.want)
		}
	}
}

func TestQueueGathersFullBatchesRequeuesAndEnds(t *testing.T) {
	q := newQueue(45, time.Now(), nil, 50*time.Millisecond, false, nil)
	start := time.Now()
	var sizes, receives []int
	first := true
	for {
		b, r := q.gather(context.Background(), 20, 10*time.Millisecond)
		if b == nil {
			break
		}
		sizes, receives = append(sizes, len(b)), append(receives, r)
		var again []pending
		if first {
			again = []pending{{msg: b[0].msg, receive: b[0].receive + 1}}
			first = false
		}
		q.done(b, again)
	}
	if !reflect.DeepEqual(sizes, []int{20, 20, 5, 1}) || !reflect.DeepEqual(receives, []int{2, 2, 1, 1}) {
		t.Errorf("batch sizes %v, receives %v", sizes, receives)
	}
	if el := time.Since(start); el < 50*time.Millisecond {
		t.Errorf("the redelivery came after %v, before the visibility timeout", el)
	}
	if idle := q.idleTime(); idle < 30*time.Millisecond || idle > time.Since(start) {
		t.Errorf("idle %v", idle)
	}
}

// An open loop: a batch takes what arrives within the window after its
// first message, not more; window 0 takes one receive.
func TestQueueGathersWithinTheWindow(t *testing.T) {
	arrivals := []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 400 * time.Millisecond}
	q := newQueue(4, time.Now(), arrivals, time.Second, false, nil)
	b, r := q.gather(context.Background(), 100, 200*time.Millisecond)
	if len(b) != 3 || r != 3 {
		t.Errorf("first batch %v (%d receives), want the 3 messages of its window", b, r)
	}
	q.done(b, nil)
	b, _ = q.gather(context.Background(), 100, 0)
	if len(b) != 1 || b[0].msg != 3 {
		t.Errorf("second batch %v, want message 3 alone", b)
	}
	q.done(b, nil)
	if b, _ := q.gather(context.Background(), 100, 0); b != nil {
		t.Errorf("a drained queue gave %v", b)
	}
}

// FIFO: a receive returns a group's messages together and in order; a
// group in hand, or waiting for a redelivery, gives nothing more.
func TestQueueKeepsFIFOGroups(t *testing.T) {
	groups := []string{"A", "A", "B", "A", "B", "C"}
	q := newQueue(len(groups), time.Now(), nil, 30*time.Millisecond, true, func(i int) string { return groups[i] })
	recv := func() []int {
		q.mu.Lock()
		defer q.mu.Unlock()
		var ids []int
		for _, p := range q.receive(time.Now(), 4) {
			ids = append(ids, p.msg)
		}
		return ids
	}
	if got := recv(); !reflect.DeepEqual(got, []int{0, 1, 3, 2}) {
		t.Errorf("first receive %v, want A's three, then B's first", got)
	}
	if got := recv(); !reflect.DeepEqual(got, []int{5}) {
		t.Errorf("second receive %v, want only C (A and B are in hand)", got)
	}
	// A's second message failed: it and A's third come back; A waits.
	q.done([]pending{{msg: 0, receive: 1}, {msg: 1, receive: 1}, {msg: 3, receive: 1}, {msg: 2, receive: 1}, {msg: 5, receive: 1}},
		[]pending{{msg: 1, receive: 2}, {msg: 3, receive: 2}})
	if got := recv(); !reflect.DeepEqual(got, []int{4}) {
		t.Errorf("third receive %v, want B's second only (A waits for its redelivery)", got)
	}
	time.Sleep(40 * time.Millisecond)
	if got := recv(); !reflect.DeepEqual(got, []int{1, 3}) {
		t.Errorf("after the visibility timeout %v, want A's two redeliveries in order", got)
	}
}

func TestArrivalOffsets(t *testing.T) {
	if ArrivalOffsets(10, 0, 1) != nil {
		t.Error("rate 0: want everything at the start")
	}
	a := ArrivalOffsets(20000, 1000, 1)
	if !reflect.DeepEqual(a, ArrivalOffsets(20000, 1000, 1)) || a[0] != 0 {
		t.Error("not deterministic, or the first does not arrive at the start")
	}
	if mean := a[len(a)-1].Seconds() / float64(len(a)-1); math.Abs(mean-0.001) > 0.00005 {
		t.Errorf("mean gap %v s, want 1 ms", mean)
	}
}

func TestSteadyStateDropsOnlyCacheFills(t *testing.T) {
	w := &Workload{Messages: make([]Message, 10)}
	col := &collector{units: []unit{
		{cold: true, events: 4, applied: 4, requests: 2, reads: 1, rru: 0.5, readRRU: 0.5, wru: 10},
		{cold: false, events: 6, applied: 5, requests: 2, reads: 1, rru: 0.5, readRRU: 0.5, wru: 12},
	}}
	for i := 0; i < 9; i++ {
		col.deliveries = append(col.deliveries, Delivery{Message: i, Receive: 1, Status: usage.Applied})
	}
	m := MeterSnapshot{Requests: 4, RRU: 1, WRU: 22}
	ours := summarize(Ours, w, RunConfig{Concurrency: 1}, time.Second, m, col)
	if ss := ours.SteadyState; ss.CacheFillReads != 1 || ss.DDBRequests != 3 || ss.RRUPerEvent != 0.05 || ss.WRUPerEvent != 2.2 {
		t.Errorf("ours: %+v", ss)
	}
	if ours.DDBRequestsPerEvent != 0.4 || math.Abs(ours.DDBRequestsPerAppliedEvent-4.0/9) > 1e-12 || ours.MeanEventsPerUnit != 5 {
		t.Errorf("ours whole run: %v requests/event, %v per applied, %v events/unit", ours.DDBRequestsPerEvent, ours.DDBRequestsPerAppliedEvent, ours.MeanEventsPerUnit)
	}
	base := summarize(Baseline, w, RunConfig{Concurrency: 1}, time.Second, m, col)
	if ss := base.SteadyState; ss.CacheFillReads != 0 || ss.DDBRequests != 4 {
		t.Errorf("the baseline has no cache to fill: %+v", ss)
	}
}

// A saved sweep report draws its chart again (--chart-from).
func TestRedrawFromASavedReport(t *testing.T) {
	dir := t.TempDir()
	res := func(sys string, batch int, usd float64) *Result {
		return &Result{System: sys, Mode: string(Lambda), BatchSize: batch, WindowMs: 1000, TotalUSDPerMillionEvents: usd, EndToEndP99Ms: float64(batch)}
	}
	rep := &Report{Date: "2026-12-01T00:00:00Z", SweepOf: "batchSize", Mode: string(Lambda), NProc: 2, Workload: WorkloadConfig{Events: 10, Users: 1, EntitlementsPerUser: 1}}
	for _, b := range []int{10, 100} {
		rep.Sweep = append(rep.Sweep, compare(res("ours", b, 2), res("baseline", b, 3)))
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "report.json")
	if err := os.WriteFile(path, js, 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Sweep[1].Ours == nil || loaded.Sweep[1].Ours.BatchSize != 100 || loaded.Sweep[1].Baseline.TotalUSDPerMillionEvents != 3 || loaded.Sweep[1].CostRatio != 2.0/3 {
		t.Fatalf("loaded %+v", loaded.Sweep[1])
	}
	png := filepath.Join(dir, "chart.png")
	if err := DrawChart(loaded, png); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(png); err != nil || st.Size() == 0 {
		t.Fatalf("chart: %v", err)
	}
}
