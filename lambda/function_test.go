package lambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/metering"

	"github.com/aws/aws-lambda-go/events"

	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/internal/dev/memstore"
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
		return (&metering.Processor{Store: store}).Handle(ctx, msgs)
	}
	f := Function(h, &metering.Decisions{Store: store, Now: func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }})

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

// TestScheduledEventsRunThePeriodicWork: an EventBridge scheduled event
// runs each periodic task in order, a failing one does not stop the
// next, and the answer says what happened, never a function error. It
// is neither a batch nor a request.
func TestScheduledEventsRunThePeriodicWork(t *testing.T) {
	var ran []string
	task := func(name string, err error) Periodic {
		return Periodic{Name: name, Run: func(context.Context) error { ran = append(ran, name); return err }}
	}
	h := func(context.Context, []pipeline.Message) []pipeline.Result {
		t.Fatal("a scheduled event went through the pipeline")
		return nil
	}
	f := Function(h, &metering.Decisions{Store: memstore.New()}, task("a", nil), task("b", errors.New("SNS unreachable")), task("c", nil))
	scheduled := `{"version":"0","id":"53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa","detail-type":"Scheduled Event","source":"aws.events",` +
		`"account":"123456789012","time":"2026-12-01T00:01:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/every-minute"],"detail":{}}`
	out, err := f(context.Background(), json.RawMessage(scheduled))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(out)
	if want := `{"periodic":[{"name":"a"},{"name":"b","error":"SNS unreachable"},{"name":"c"}]}`; string(got) != want {
		t.Errorf("answer %s, want %s", got, want)
	}
	if fmt.Sprint(ran) != "[a b c]" {
		t.Errorf("ran %v", ran)
	}
	// Without periodic work, still an answer, and not a request.
	out, _ = Function(h, &metering.Decisions{Store: memstore.New()})(context.Background(), json.RawMessage(scheduled))
	if got, _ := json.Marshal(out); string(got) != `{"periodic":[]}` {
		t.Errorf("without tasks: %s", got)
	}
	// Another EventBridge event is not the schedule: a (rejected) request.
	out, _ = f(context.Background(), json.RawMessage(`{"source":"aws.s3","detail-type":"Object Created"}`))
	if a, ok := out.(decision.Answer); !ok || a.Status != decision.Rejected {
		t.Errorf("an S3 event: %#v", out)
	}
}

// TestFlushedFlushesAfterEveryInvocation: the spans of an invocation
// leave before its answer does, whatever the answer.
func TestFlushedFlushesAfterEveryInvocation(t *testing.T) {
	var calls []string
	inner := Bytes(func(ctx context.Context, payload json.RawMessage) (any, error) {
		calls = append(calls, "invoke")
		if string(payload) == `"fail"` {
			return nil, errors.New("boom")
		}
		return "ok", nil
	})
	f := Flushed(inner, func(ctx context.Context) error {
		calls = append(calls, "flush")
		if d, ok := ctx.Deadline(); !ok || time.Until(d) > FlushTimeout {
			t.Errorf("flush without its bound (deadline %v, %v)", d, ok)
		}
		return errors.New("exporter down")
	})
	if out, err := f(context.Background(), json.RawMessage(`{}`)); out != "ok" || err != nil {
		t.Errorf("answer %v, %v; want the handler's, whatever the flush says", out, err)
	}
	if _, err := f(context.Background(), json.RawMessage(`"fail"`)); err == nil || err.Error() != "boom" {
		t.Errorf("error %v, want the handler's", err)
	}
	if fmt.Sprint(calls) != "[invoke flush invoke flush]" {
		t.Errorf("calls %v", calls)
	}
}
