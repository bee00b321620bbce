package dynamodb_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/internal/dev/storetest"
	"github.com/usage-event-service/usage-event-service/metering"
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
func (e *env) store() metering.Writer {
	return e.writer(e.client)
}

// writer is a consumer whose DynamoDB client is c.
func (e *env) writer(c dynamodb.Client) metering.Writer {
	return metering.Writer{Store: dynamodb.NewStore(c, dynamodb.Config{
		EntitlementsTable: e.entitlements, LedgerTable: e.ledger, Keys: e.keys,
		Now: func() time.Time { return e.now },
	})}
}

// sweep runs the hold sweep of a consumer.
func sweep(w metering.Writer, now time.Time, limit int) (metering.Sweep, error) {
	return metering.SweepExpiredHolds(context.Background(), w, w.Store.(metering.HoldIndex), now, limit, usage.Rules{Now: now}.Plan)
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

func (e *env) ledgerEntries(t *testing.T, user, key string) []usage.LedgerEntry {
	t.Helper()
	got, err := dynamodb.ListLedger(context.Background(), e.client, e.ledger, usage.Scope{UserID: user, EntitlementKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (e *env) apply(s metering.Writer, records ...usage.Record) []usage.Outcome {
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

// TestContract runs metering.Updater's contract against DynamoDB Local.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend { return newEnv(t, dynamodb.DefaultEntitlementKeys) })
}

// The env is the contract suite's backend.

func (e *env) Store(*testing.T) metering.Updater { return e.store() }

func (e *env) Put(t *testing.T, scope usage.Scope, attrs map[string]usage.Value) {
	t.Helper()
	item := map[string]types.AttributeValue{
		e.keys.PartitionAttr: &types.AttributeValueMemberS{Value: e.keys.PartitionValue(scope)},
		e.keys.SortAttr:      &types.AttributeValueMemberS{Value: e.keys.KeyPrefix + scope.EntitlementKey},
	}
	for k, v := range attrs {
		switch v.Kind {
		case usage.KindNumber:
			item[k] = &types.AttributeValueMemberN{Value: v.Num.String()}
		case usage.KindString:
			item[k] = &types.AttributeValueMemberS{Value: v.Str}
		case usage.KindNull:
			item[k] = &types.AttributeValueMemberNULL{Value: true}
		case usage.KindOther:
			item[k] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}
		}
	}
	if _, err := e.client.PutItem(context.Background(), &awsdynamodb.PutItemInput{TableName: aws.String(e.entitlements), Item: item}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) Get(t *testing.T, scope usage.Scope) usage.Item {
	t.Helper()
	out, err := e.client.GetItem(context.Background(), &awsdynamodb.GetItemInput{
		TableName: aws.String(e.entitlements), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{
			e.keys.PartitionAttr: &types.AttributeValueMemberS{Value: e.keys.PartitionValue(scope)},
			e.keys.SortAttr:      &types.AttributeValueMemberS{Value: e.keys.KeyPrefix + scope.EntitlementKey},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return dynamodb.ParseEntitlement(out.Item).Observed
}

func (e *env) Notifications(t *testing.T, scope usage.Scope) []usage.Notification {
	t.Helper()
	got, err := dynamodb.ListNotifications(context.Background(), e.client, e.ledger, scope)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (e *env) Ledger(t *testing.T, scope usage.Scope) []usage.LedgerEntry {
	t.Helper()
	out := e.ledgerEntries(t, scope.UserID, scope.EntitlementKey)
	for i := range out {
		out[i].AppliedAt, out[i].ExpiresAt = time.Time{}, time.Time{} // the contract compares what a decision sets
	}
	return out
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
	want := usage.LedgerEntry{DedupKey: "idem-1", KeySource: "idempotencyKey", Operation: usage.OperationConsume, Amount: usage.MustDecimal("2.5"),
		AppliedAt: e.now, MessageID: "msg-1", PeriodStart: "2026-11-01T00:00:00Z",
		Metadata: []byte(`{"resourceId":"session-456"}`), ExpiresAt: e.now.Add(usage.DefaultDedupRetention)}
	if !reflect.DeepEqual(got, want) {
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
