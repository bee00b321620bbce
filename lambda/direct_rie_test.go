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

// TestTheBootstrapAnswersDirectInvocations: the real bootstrap under the
// Runtime Interface Emulator, invoked with the SDK's Lambda client as a
// caller would, answers each request with an answer object; a bad
// request is a REJECTED answer, never a function error.
func TestTheBootstrapAnswersDirectInvocations(t *testing.T) {
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
	limit := usage.MustDecimal("3")
	if err := dynamodb.PutEntitlement(ctx, ddb, entTable, dynamodb.DefaultEntitlementKeys, dynamodb.EntitlementItem{UserID: "u1", EntitlementKey: "AI_TUTOR_ACCESS", Limit: &limit}); err != nil {
		t.Fatal(err)
	}
	fn, err := emulator.StartLambda(ctx, emulator.LambdaBootstrap(t), []string{"ENTITLEMENTS_TABLE=" + entTable, "USAGE_LEDGER_TABLE=" + ledgerTable, "LOG_LEVEL=INFO"})
	if err != nil {
		t.Fatal(err)
	}
	defer fn.Stop()
	client := awslambda.NewFromConfig(cfg, func(o *awslambda.Options) {
		o.BaseEndpoint = aws.String(fn.Endpoint)
		o.Retryer = aws.NopRetryer{}
	})
	for _, c := range []struct{ payload, want string }{
		{`{"userId":"u1","entitlementKey":"AI_TUTOR_ACCESS","amount":2,"idempotencyKey":"job-1"}`,
			`{"status":"APPLIED","amount":2,"used":2,"limit":3,"remaining":1,"resetPeriod":"NONE","available":1}`},
		{`{"userId":"u1","entitlementKey":"AI_TUTOR_ACCESS","amount":2,"idempotencyKey":"job-2"}`,
			`{"status":"REJECTED","reason":"LIMIT_EXCEEDED","message":"amount: using 2 more would exceed the limit of 3 (used 2)","used":2,"limit":3,"remaining":1,"resetPeriod":"NONE","available":1}`},
		{`{"operation":"refund","userId":"u1","entitlementKey":"AI_TUTOR_ACCESS","refundOf":"job-1","amount":1.5,"idempotencyKey":"r-1"}`,
			`{"status":"APPLIED","amount":1.5,"used":0.5,"limit":3,"remaining":2.5,"resetPeriod":"NONE","available":2.5}`},
		{`{"operation":"balance","userId":"u1","entitlementKey":"AI_TUTOR_ACCESS"}`,
			`{"status":"OK","used":0.5,"limit":3,"remaining":2.5,"resetPeriod":"NONE","available":2.5}`},
		{`{"userId":"u1","entitlementKey":"AI_TUTOR_ACCESS","amount":-1,"idempotencyKey":"job-3"}`,
			`{"status":"REJECTED","reason":"INVALID_AMOUNT","message":"amount: must be greater than 0, got -1"}`},
		{`{"oops"`, `{"status":"REJECTED","reason":"INVALID_JSON","message":"body is not valid JSON: unexpected end of input"}`},
	} {
		out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("function"), Payload: []byte(c.payload)})
		if err != nil {
			t.Fatalf("%s: %v", c.payload, err)
		}
		if out.FunctionError != nil {
			t.Fatalf("%s: function error %s: %s", c.payload, *out.FunctionError, out.Payload)
		}
		var got, want any
		if err := json.Unmarshal(out.Payload, &got); err != nil {
			t.Fatalf("%s: answer %s is not JSON: %v", c.payload, out.Payload, err)
		}
		json.Unmarshal([]byte(c.want), &want)
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("%s:\n got %s\nwant %s", c.payload, out.Payload, c.want)
		}
	}
}
