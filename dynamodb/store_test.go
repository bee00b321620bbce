package dynamodb_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/emulator"
	"github.com/usage-event-service/usage-event-service/usage"
)

func TestMain(m *testing.M) { emulator.Main(m) }

// env is one test's private pair of tables in DynamoDB Local.
type env struct {
	client       *awsdynamodb.Client
	entitlements string
	ledger       string
	keys         dynamodb.EntitlementKeys
	now          time.Time
}

func newEnv(t *testing.T, keys dynamodb.EntitlementKeys) *env {
	t.Helper()
	emulator.Env(t)
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		client:       awsdynamodb.NewFromConfig(cfg),
		entitlements: emulator.UniqueName(t, "ent"),
		ledger:       emulator.UniqueName(t, "ledger"),
		keys:         keys,
		now:          time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
	}
	ctx := context.Background()
	if _, err := dynamodb.CreateEntitlementsTable(ctx, e.client, e.entitlements, keys); err != nil {
		t.Fatal(err)
	}
	if _, err := dynamodb.CreateLedgerTable(ctx, e.client, e.ledger); err != nil {
		t.Fatal(err)
	}
	return e
}

// store is one consumer: its own Store, so its own cache.
func (e *env) store() *dynamodb.Store {
	return dynamodb.NewStore(e.client, dynamodb.Config{
		EntitlementsTable: e.entitlements, LedgerTable: e.ledger, Keys: e.keys,
		Now: func() time.Time { return e.now },
	})
}

func (e *env) put(t *testing.T, item dynamodb.EntitlementItem) {
	t.Helper()
	if err := dynamodb.PutEntitlement(context.Background(), e.client, e.entitlements, e.keys, item); err != nil {
		t.Fatal(err)
	}
}

func (e *env) get(t *testing.T, user, key string) dynamodb.Entitlement {
	t.Helper()
	got, err := dynamodb.ListEntitlements(context.Background(), e.client, e.entitlements, e.keys, user, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("found %d entitlements for %s/%s", len(got), user, key)
	}
	return got[0]
}

func (e *env) ledgerEntries(t *testing.T, user, key string) []dynamodb.LedgerEntry {
	t.Helper()
	got, err := dynamodb.ListLedger(context.Background(), e.client, e.ledger, usage.Scope{UserID: user, EntitlementKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (e *env) apply(s *dynamodb.Store, records ...usage.Record) []usage.Outcome {
	scope := records[0].Event.Scope()
	return s.Update(context.Background(), scope, records, func(st usage.State, r []usage.Record) usage.Plan {
		return usage.PlanUsage(st, r, e.now)
	})
}

func rec(user, key, amount, messageID, idem string) usage.Record {
	ev := usage.NewEvent(user, key)
	ev.Amount = usage.MustDecimal(amount)
	ev.IdempotencyKey = idem
	return usage.Record{Event: ev, MessageID: messageID}
}

func dp(s string) *usage.Decimal {
	d := usage.MustDecimal(s)
	return &d
}

func tp(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func outcomeText(os []usage.Outcome) string {
	s := ""
	for i, o := range os {
		if i > 0 {
			s += " "
		}
		if o.Status == usage.Rejected {
			s += string(o.Reason())
		} else {
			s += string(o.Status)
		}
	}
	return s
}

func TestUpdate(t *testing.T) {
	type step struct {
		records []usage.Record
		want    string
	}
	tests := []struct {
		name     string
		item     *dynamodb.EntitlementItem
		steps    []step
		wantUsed string
		wantPS   string // periodStart after, "" = absent
		ledger   int
	}{
		{
			name:     "applies an event and records it",
			item:     &dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("10")},
			steps:    []step{{[]usage.Record{rec("u", "k", "3", "m1", "")}, "APPLIED"}},
			wantUsed: "3", ledger: 1,
		},
		{
			name:  "no item is ENTITLEMENT_NOT_FOUND and writes nothing",
			steps: []step{{[]usage.Record{rec("u", "k", "1", "m1", "")}, "ENTITLEMENT_NOT_FOUND"}},
		},
		{
			name:     "over the limit is rejected and changes nothing",
			item:     &dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("5"), Used: dp("4")},
			steps:    []step{{[]usage.Record{rec("u", "k", "2", "m1", "")}, "LIMIT_EXCEEDED"}},
			wantUsed: "4", ledger: 0,
		},
		{
			name:     "exactly reaching the limit is allowed",
			item:     &dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("5"), Used: dp("4")},
			steps:    []step{{[]usage.Record{rec("u", "k", "1", "m1", "")}, "APPLIED"}},
			wantUsed: "5", ledger: 1,
		},
		{
			name: "a new period resets before consuming",
			item: &dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("5"), Used: dp("5"),
				ResetPeriod: usage.ResetMonthly, PeriodStart: tp("2026-10-01T00:00:00Z")},
			steps:    []step{{[]usage.Record{rec("u", "k", "2", "m1", "")}, "APPLIED"}},
			wantUsed: "2", wantPS: "2026-11-01T00:00:00Z", ledger: 1,
		},
		{
			name: "an anchored period resets on the anchor's day",
			item: &dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("5"), Used: dp("5"),
				ResetPeriod: usage.ResetMonthly, ResetAnchor: tp("2026-01-15T10:00:00Z"), PeriodStart: tp("2026-10-15T10:00:00Z")},
			steps:    []step{{[]usage.Record{rec("u", "k", "1", "m1", "")}, "APPLIED"}},
			wantUsed: "1", wantPS: "2026-11-15T10:00:00Z", ledger: 1,
		},
		{
			name:     "first use of a periodic entitlement starts the period",
			item:     &dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("5"), ResetPeriod: usage.ResetDaily},
			steps:    []step{{[]usage.Record{rec("u", "k", "1", "m1", "")}, "APPLIED"}},
			wantUsed: "1", wantPS: "2026-11-26T00:00:00Z", ledger: 1,
		},
		{
			name: "the same period does not reset",
			item: &dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("5"), Used: dp("4"),
				ResetPeriod: usage.ResetDaily, PeriodStart: tp("2026-11-26T00:00:00Z")},
			steps:    []step{{[]usage.Record{rec("u", "k", "2", "m1", "")}, "LIMIT_EXCEEDED"}},
			wantUsed: "4", wantPS: "2026-11-26T00:00:00Z",
		},
		{
			name: "a redelivered message is a duplicate",
			item: &dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k"},
			steps: []step{
				{[]usage.Record{rec("u", "k", "1", "m1", "")}, "APPLIED"},
				{[]usage.Record{rec("u", "k", "1", "m1", "")}, "DUPLICATE"},
			},
			wantUsed: "1", ledger: 1,
		},
		{
			name: "an idempotency key dedups across message IDs",
			item: &dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k"},
			steps: []step{
				{[]usage.Record{rec("u", "k", "1", "m1", "key-1")}, "APPLIED"},
				{[]usage.Record{rec("u", "k", "1", "m2", "key-1")}, "DUPLICATE"},
			},
			wantUsed: "1", ledger: 1,
		},
		{
			name: "a reused key with another amount is IDEMPOTENCY_CONFLICT",
			item: &dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k"},
			steps: []step{
				{[]usage.Record{rec("u", "k", "1", "m1", "key-1")}, "APPLIED"},
				{[]usage.Record{rec("u", "k", "7", "m2", "key-1")}, "IDEMPOTENCY_CONFLICT"},
			},
			wantUsed: "1", ledger: 1,
		},
		{
			name: "a duplicate of an applied event stays a duplicate once the limit is reached",
			item: &dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("1")},
			steps: []step{
				{[]usage.Record{rec("u", "k", "1", "m1", "")}, "APPLIED"},
				{[]usage.Record{rec("u", "k", "1", "m1", "")}, "DUPLICATE"},
			},
			wantUsed: "1", ledger: 1,
		},
		{
			name: "a group is applied in order in one write",
			item: &dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("4")},
			steps: []step{{[]usage.Record{
				rec("u", "k", "2", "m1", ""), rec("u", "k", "3", "m2", ""), rec("u", "k", "1", "m3", ""),
				rec("u", "k", "1", "m3", ""), rec("u", "k", "1", "m4", ""), rec("u", "k", "1", "m5", ""),
			}, "APPLIED LIMIT_EXCEEDED APPLIED DUPLICATE APPLIED LIMIT_EXCEEDED"}},
			wantUsed: "4", ledger: 3,
		},
		{
			name:     "decimals add exactly",
			item:     &dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("0.3")},
			steps:    []step{{[]usage.Record{rec("u", "k", "0.1", "m1", ""), rec("u", "k", "0.1", "m2", ""), rec("u", "k", "0.1", "m3", "")}, "APPLIED APPLIED APPLIED"}},
			wantUsed: "0.3", ledger: 3,
		},
		{
			name:     "an unknown resetPeriod is INVALID_ENTITLEMENT",
			item:     &dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", ResetPeriod: "FORTNIGHTLY"},
			steps:    []step{{[]usage.Record{rec("u", "k", "1", "m1", "")}, "INVALID_ENTITLEMENT"}},
			wantUsed: "0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, dynamodb.DefaultEntitlementKeys)
			if tt.item != nil {
				e.put(t, *tt.item)
			}
			s := e.store()
			for i, st := range tt.steps {
				if got := outcomeText(e.apply(s, st.records...)); got != st.want {
					t.Fatalf("step %d: got %q, want %q", i, got, st.want)
				}
			}
			if got := len(e.ledgerEntries(t, "u", "k")); got != tt.ledger {
				t.Errorf("ledger has %d entries, want %d", got, tt.ledger)
			}
			if tt.item == nil {
				return
			}
			ent := e.get(t, "u", "k")
			if ent.Used.Cmp(usage.MustDecimal(tt.wantUsed)) != 0 {
				t.Errorf("used %s, want %s", ent.Used, tt.wantUsed)
			}
			ps := ""
			if ent.PeriodStart != nil {
				ps = usage.FormatInstant(*ent.PeriodStart)
			}
			if ps != tt.wantPS {
				t.Errorf("periodStart %q, want %q", ps, tt.wantPS)
			}
		})
	}
}

func TestLedgerEntryIsTheAuditRecord(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	e.put(t, dynamodb.EntitlementItem{UserID: "u#1", EntitlementKey: "k%", ResetPeriod: usage.ResetMonthly})
	r := rec("u#1", "k%", "2.5", "msg-1", "idem-1")
	r.Event.Metadata = []byte(`{"resourceId":"session-456"}`)
	if got := outcomeText(e.apply(e.store(), r)); got != "APPLIED" {
		t.Fatal(got)
	}
	entries := e.ledgerEntries(t, "u#1", "k%")
	if len(entries) != 1 {
		t.Fatalf("%d entries", len(entries))
	}
	got := entries[0]
	want := dynamodb.LedgerEntry{DedupKey: "idem-1", KeySource: "idempotencyKey", Amount: usage.MustDecimal("2.5"),
		AppliedAt: "2026-11-26T12:00:00Z", MessageID: "msg-1", PeriodStart: "2026-11-01T00:00:00Z",
		Metadata: `{"resourceId":"session-456"}`, ExpiresAt: e.now.Add(dynamodb.DefaultRetention).Unix()}
	if got != want {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestWritesLeaveAccessServiceAttributesAlone(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("10"), ResetPeriod: usage.ResetDaily,
		PeriodStart: tp("2026-11-20T00:00:00Z"),
		Extra: map[string]types.AttributeValue{
			"plan":     &types.AttributeValueMemberS{Value: "pro"},
			"features": &types.AttributeValueMemberSS{Value: []string{"a", "b"}},
		}})
	e.apply(e.store(), rec("u", "k", "1", "m1", ""))
	out, err := e.client.GetItem(context.Background(), &awsdynamodb.GetItemInput{
		TableName: aws.String(e.entitlements),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "USER#u"}, "sk": &types.AttributeValueMemberS{Value: "ENTITLEMENT#k"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := out.Item["plan"].(*types.AttributeValueMemberS); p == nil || p.Value != "pro" {
		t.Errorf("plan attribute changed: %v", out.Item["plan"])
	}
	if f, _ := out.Item["features"].(*types.AttributeValueMemberSS); f == nil || len(f.Value) != 2 {
		t.Errorf("features attribute changed: %v", out.Item["features"])
	}
}

func TestCustomKeyLayout(t *testing.T) {
	keys := dynamodb.EntitlementKeys{PartitionAttr: "PK", SortAttr: "SK", UserPrefix: "U|", KeyPrefix: "E|"}
	e := newEnv(t, keys)
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("1")})
	if got := outcomeText(e.apply(e.store(), rec("u", "k", "1", "m1", ""), rec("u", "k", "1", "m2", ""))); got != "APPLIED LIMIT_EXCEEDED" {
		t.Fatal(got)
	}
	if used := e.get(t, "u", "k").Used; used.Cmp(usage.MustDecimal("1")) != 0 {
		t.Errorf("used %s", used)
	}
}

// TestAStaleCacheCostsARetryNotCorrectness: access-service lowers the
// limit behind a consumer's back; the consumer's cached state is wrong,
// its condition fails, and it decides again on the fresh state.
func TestAStaleCacheCostsARetryNotCorrectness(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("100")})
	s := e.store()
	if got := outcomeText(e.apply(s, rec("u", "k", "1", "m1", ""))); got != "APPLIED" {
		t.Fatal(got)
	}
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("2"), Used: dp("2")})
	if got := outcomeText(e.apply(s, rec("u", "k", "1", "m2", ""))); got != "LIMIT_EXCEEDED" {
		t.Fatalf("got %s with a stale cache", got)
	}
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("2"), Used: dp("0")})
	if got := outcomeText(e.apply(s, rec("u", "k", "1", "m3", ""))); got != "APPLIED" {
		t.Fatalf("got %s after usage was lowered", got)
	}
}

// TestRacingConsumersNeverLoseOrOvershoot is the product: many consumers
// (each with its own cache, as separate Lambda instances would be) race on
// one entitlement. used must equal exactly the sum of applied amounts,
// never exceed the limit, and every applied event has one ledger entry.
func TestRacingConsumersNeverLoseOrOvershoot(t *testing.T) {
	tests := []struct {
		name      string
		limit     *usage.Decimal
		consumers int
		events    int
	}{
		{"limited entitlement under pressure", dp("150"), 8, 240},
		{"unlimited entitlement", nil, 8, 240},
		{"sixteen consumers", dp("100"), 16, 160},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, dynamodb.DefaultEntitlementKeys)
			e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: tt.limit, ResetPeriod: usage.ResetDaily, PeriodStart: tp("2026-11-25T00:00:00Z"), Used: dp("40")})
			var mu sync.Mutex
			applied, rejected := usage.Decimal{}, 0
			appliedCount := 0
			var wg sync.WaitGroup
			for c := range tt.consumers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := e.store()
					for i := c; i < tt.events; i += tt.consumers {
						amount := fmt.Sprint(1 + i%3)
						// A few are sent twice, as SQS redeliveries would be.
						batch := []usage.Record{rec("u", "k", amount, fmt.Sprint("m", i), "")}
						if i%10 == 0 {
							batch = append(batch, batch[0])
						}
						for _, o := range e.apply(s, batch...)[:1] {
							mu.Lock()
							switch o.Status {
							case usage.Applied:
								applied = applied.Add(usage.MustDecimal(amount))
								appliedCount++
							case usage.Rejected:
								if o.Reason() != usage.ReasonLimitExceeded {
									t.Errorf("unexpected rejection %v", o.Err)
								}
								rejected++
							default:
								t.Errorf("unexpected outcome %s %v", o.Status, o.Err)
							}
							mu.Unlock()
						}
					}
				}()
			}
			wg.Wait()
			ent := e.get(t, "u", "k")
			if ent.Used.Cmp(applied) != 0 {
				t.Errorf("used %s, but the applied events add up to %s", ent.Used, applied)
			}
			if tt.limit != nil && ent.Used.Cmp(*tt.limit) > 0 {
				t.Errorf("used %s exceeds the limit %s", ent.Used, tt.limit)
			}
			if tt.limit != nil && rejected == 0 {
				t.Errorf("the limit was never reached: the test exercises nothing")
			}
			if n := len(e.ledgerEntries(t, "u", "k")); n != appliedCount {
				t.Errorf("ledger has %d entries for %d applied events", n, appliedCount)
			}
			t.Logf("applied %d (sum %s), rejected %d", appliedCount, applied, rejected)
		})
	}
}

// TestADuplicateSentManyTimesAppliesOnce: the same event, delivered 40
// times to 8 consumers at once, is applied exactly once; every other
// delivery is a DUPLICATE, a success.
func TestADuplicateSentManyTimesAppliesOnce(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("100")})
	var mu sync.Mutex
	counts := map[usage.Status]int{}
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := e.store()
			for i := range 5 {
				o := e.apply(s, rec("u", "k", "3", fmt.Sprintf("delivery-%d-%d", c, i), "the-one-key"))[0]
				mu.Lock()
				counts[o.Status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if counts[usage.Applied] != 1 || counts[usage.Duplicate] != 39 {
		t.Errorf("outcomes %v, want 1 APPLIED and 39 DUPLICATE", counts)
	}
	if used := e.get(t, "u", "k").Used; used.Cmp(usage.MustDecimal("3")) != 0 {
		t.Errorf("used %s, want 3", used)
	}
	if n := len(e.ledgerEntries(t, "u", "k")); n != 1 {
		t.Errorf("%d ledger entries", n)
	}
}
