package lambda

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/internal/memstore"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// TestFunctionTellsEventsFromRequestsByShape: an SQS batch goes through
// the pipeline; any other payload, bad ones included, is a request
// answered with a decision.Answer, never a function error.
func TestFunctionTellsEventsFromRequestsByShape(t *testing.T) {
	store := memstore.New()
	store.PutEntitlement(usage.Scope{UserID: "u", EntitlementKey: "k"}, map[string]usage.Value{usage.AttrLimit: usage.NumberValue(usage.MustDecimal("5"))})
	var batches int
	h := func(ctx context.Context, msgs []pipeline.Message) []pipeline.Result {
		batches++
		return (&pipeline.Processor{Store: store}).Handle(ctx, msgs)
	}
	f := Function(h, &decision.Engine{Store: store, Now: func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }})

	sqsEvent, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", EventSource: "aws:sqs", Body: `{"userId":"u","entitlementKey":"k","amount":2}`}}})
	out, err := f(context.Background(), sqsEvent)
	if resp, ok := out.(events.SQSEventResponse); err != nil || !ok || len(resp.BatchItemFailures) != 0 || batches != 1 {
		t.Fatalf("SQS event: %#v, %v (batches %d)", out, err, batches)
	}
	for _, c := range []struct{ payload, status, reason string }{
		{`{"userId":"u","entitlementKey":"k","amount":1,"idempotencyKey":"c-1"}`, "APPLIED", ""},
		{`{"operation":"balance","userId":"u","entitlementKey":"k"}`, "OK", ""},
		{`{"userId":"u","entitlementKey":"k","amount":9,"idempotencyKey":"c-2"}`, "REJECTED", "LIMIT_EXCEEDED"},
		{`{"Records":[]}`, "REJECTED", "MISSING_FIELD"},
		{`[1,2]`, "REJECTED", "INVALID_JSON"},
		{`"hello"`, "REJECTED", "INVALID_JSON"},
	} {
		out, err := f(context.Background(), json.RawMessage(c.payload))
		a, ok := out.(decision.Answer)
		if err != nil || !ok || string(a.Status) != c.status || string(a.Reason) != c.reason {
			t.Errorf("%s: %#v, %v; want %s %s", c.payload, out, err, c.status, c.reason)
		}
	}
	if batches != 1 {
		t.Errorf("requests went through the pipeline: %d batches", batches)
	}
}
