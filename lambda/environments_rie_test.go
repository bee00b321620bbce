package lambda_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/usage"
)

// TestTwoExecutionEnvironmentsNeverRejectOnAStaleCache: two warm
// execution environments of the real bootstrap (each its own process and
// cache, under its own Runtime Interface Emulator). A learns that u has
// no entitlement; the entitlement is created and B reserves a hold on
// it; A, asked to commit part of that hold, synchronously and from the
// queue, must apply it rather than answer from what it cached.
func TestTwoExecutionEnvironmentsNeverRejectOnAStaleCache(t *testing.T) {
	cfg := emulator.Stack(t)
	ctx := context.Background()
	ddb := awsdynamodb.NewFromConfig(cfg)
	entTable, ledgerTable := emulator.UniqueName(t, "ent"), emulator.UniqueName(t, "ledger")
	if _, err := dynamodb.CreateEntitlementsTable(ctx, ddb, entTable, dynamodb.DefaultEntitlementKeys); err != nil {
		t.Fatal(err)
	}
	if _, err := dynamodb.CreateLedgerTable(ctx, ddb, ledgerTable); err != nil {
		t.Fatal(err)
	}
	env := []string{"ENTITLEMENTS_TABLE=" + entTable, "USAGE_LEDGER_TABLE=" + ledgerTable, "LOG_LEVEL=INFO"}
	invokers := map[string]func(payload string) map[string]any{}
	for _, name := range []string{"A", "B"} {
		fn, err := emulator.StartLambda(ctx, emulator.LambdaBootstrap(t), env)
		if err != nil {
			t.Fatal(err)
		}
		defer fn.Stop()
		client := awslambda.NewFromConfig(cfg, func(o *awslambda.Options) {
			o.BaseEndpoint = aws.String(fn.Endpoint)
			o.Retryer = aws.NopRetryer{}
		})
		invokers[name] = func(payload string) map[string]any {
			t.Helper()
			out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("function"), Payload: []byte(payload)})
			if err != nil {
				t.Fatalf("%s: %s: %v", name, payload, err)
			}
			var answer map[string]any
			if err := json.Unmarshal(out.Payload, &answer); err != nil || out.FunctionError != nil || answer["errorType"] != nil {
				t.Fatalf("%s: %s: answer %s", name, payload, out.Payload)
			}
			return answer
		}
	}
	a, b := invokers["A"], invokers["B"]
	status := func(answer map[string]any) string {
		if r, ok := answer["reason"].(string); ok {
			return r
		}
		s, _ := answer["status"].(string)
		return s
	}

	release := `{"operation":"release","userId":"u","entitlementKey":"K","holdId":"unknown"}`
	if got := status(a(release)); got != "ENTITLEMENT_NOT_FOUND" {
		t.Fatalf("A, release before the entitlement exists: %s", got)
	}
	limit := usage.MustDecimal("10")
	if err := dynamodb.PutEntitlement(ctx, ddb, entTable, dynamodb.DefaultEntitlementKeys, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "K", Limit: &limit}); err != nil {
		t.Fatal(err)
	}
	for _, hold := range []string{"h1", "h2"} {
		if got := status(b(`{"operation":"reserve","userId":"u","entitlementKey":"K","amount":5,"idempotencyKey":"` + hold + `"}`)); got != "APPLIED" {
			t.Fatalf("B, reserve %s: %s", hold, got)
		}
	}
	if got := a(`{"operation":"commit","userId":"u","entitlementKey":"K","holdId":"h1","amount":3}`); status(got) != "APPLIED" || got["used"] != 8.0 {
		t.Errorf("A, synchronous commit of 3 of h1: %v, want APPLIED with used 8", got)
	}
	// The same through A's queue door: the SQS event of one commit.
	queued, _ := json.Marshal(sqsEvent([]string{`{"operation":"commit","userId":"u","entitlementKey":"K","holdId":"h2","amount":1}`}, 1))
	if out := a(string(queued)); len(out["batchItemFailures"].([]any)) != 0 {
		t.Errorf("A, queued commit of 1 of h2: %v, want done", out)
	}
	balance := b(`{"operation":"balance","userId":"u","entitlementKey":"K"}`)
	if balance["used"] != 4.0 {
		t.Errorf("balance %v, want used 4 (3 and 1 committed)", balance)
	}
}
