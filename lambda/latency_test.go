package lambda_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/usage"
)

// TestSynchronousConsumeLatency reports (never asserts: the machine is
// shared) the latency of a synchronous consume: through the real
// bootstrap under the Runtime Interface Emulator, first call of a fresh
// process and warm p50/p99, and in process against the same DynamoDB
// Local. docs/performance.md quotes it.
func TestSynchronousConsumeLatency(t *testing.T) {
	cfg := emulator.Stack(t)
	ctx := context.Background()
	ddb := awsdynamodb.NewFromConfig(cfg)
	ent, ledger := emulator.UniqueName(t, "ent"), emulator.UniqueName(t, "ledger")
	if _, err := dynamodb.CreateEntitlementsTable(ctx, ddb, ent, dynamodb.DefaultEntitlementKeys); err != nil {
		t.Fatal(err)
	}
	if _, err := dynamodb.CreateLedgerTable(ctx, ddb, ledger); err != nil {
		t.Fatal(err)
	}
	if err := dynamodb.PutEntitlement(ctx, ddb, ent, dynamodb.DefaultEntitlementKeys, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k"}); err != nil {
		t.Fatal(err)
	}
	const calls = 150
	body := func(i int) []byte {
		return fmt.Appendf(nil, `{"userId":"u","entitlementKey":"k","amount":1,"idempotencyKey":"lat-%d-%d"}`, time.Now().UnixNano(), i)
	}
	report := func(name string, first time.Duration, d []time.Duration) {
		slices.Sort(d)
		t.Logf("%s: first call %v; warm p50 %v, p99 %v over %d calls", name, first.Round(10*time.Microsecond),
			d[len(d)/2].Round(10*time.Microsecond), d[len(d)*99/100].Round(10*time.Microsecond), len(d))
	}

	fn, err := emulator.StartLambda(ctx, emulator.LambdaBootstrap(t), []string{"ENTITLEMENTS_TABLE=" + ent, "USAGE_LEDGER_TABLE=" + ledger, "LOG_LEVEL=WARN"})
	if err != nil {
		t.Fatal(err)
	}
	defer fn.Stop()
	client := awslambda.NewFromConfig(cfg, func(o *awslambda.Options) { o.BaseEndpoint, o.Retryer = aws.String(fn.Endpoint), aws.NopRetryer{} })
	var first time.Duration
	var warm []time.Duration
	for i := range calls + 1 {
		start := time.Now()
		out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("function"), Payload: body(i)})
		if err != nil || out.FunctionError != nil {
			t.Fatalf("invoke: %v", err)
		}
		if i == 0 {
			first = time.Since(start)
		} else {
			warm = append(warm, time.Since(start))
		}
	}
	report("under the Runtime Interface Emulator", first, warm)

	engine := &metering.Decisions{Store: metering.Writer{Store: dynamodb.NewStore(ddb, dynamodb.Config{EntitlementsTable: ent, LedgerTable: ledger})}}
	warm = warm[:0]
	for i := range calls + 1 {
		start := time.Now()
		if a := engine.Handle(ctx, body(i)); a.Status != decision.Applied {
			t.Fatalf("answer %+v", a)
		}
		if i == 0 {
			first = time.Since(start)
		} else {
			warm = append(warm, time.Since(start))
		}
	}
	report("in process (metering.Decisions over the DynamoDB store)", first, warm)
	ents, err := dynamodb.ListEntitlements(ctx, ddb, ent, dynamodb.DefaultEntitlementKeys, "u", "k")
	if err != nil || len(ents) != 1 || ents[0].Used.Cmp(usage.DecimalFromInt(2*(calls+1))) != 0 {
		t.Errorf("after %d consumes of 1: %+v, %v", 2*(calls+1), ents, err)
	}
}
