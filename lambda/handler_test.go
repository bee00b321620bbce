package lambda_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/usage-event-service/usage-event-service/lambda"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

func str(s string) *string { return &s }

// TestHandlerMapsSQSRecordsToMessages: what the pipeline sees of each
// record Lambda's SQS poller sends.
func TestHandlerMapsSQSRecordsToMessages(t *testing.T) {
	tests := []struct {
		name string
		in   events.SQSMessage
		want pipeline.Message
	}{
		{
			"a standard queue's record",
			events.SQSMessage{MessageId: "m-1", Body: `{"userId":"u"}`, Attributes: map[string]string{
				"ApproximateReceiveCount": "3", "SentTimestamp": "1700000000123", "SenderId": "AIDAEXAMPLE",
			}},
			pipeline.Message{ID: "m-1", Body: `{"userId":"u"}`, ReceiveCount: 3, SentAt: time.UnixMilli(1700000000123).UTC()},
		},
		{
			"a FIFO record, redriven from the dead-letter queue",
			events.SQSMessage{MessageId: "m-2", Body: "b", Attributes: map[string]string{
				"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000", "MessageGroupId": "tenant-7",
			}, MessageAttributes: map[string]events.SQSMessageAttribute{
				pipeline.OriginalIDAttribute: {DataType: "String", StringValue: str("m-0")},
			}},
			pipeline.Message{ID: "m-2", Body: "b", ReceiveCount: 1, SentAt: time.UnixMilli(1700000000000).UTC(), GroupID: "tenant-7", OriginalID: "m-0"},
		},
		{
			"attributes missing or malformed are left zero",
			events.SQSMessage{MessageId: "m-3", Attributes: map[string]string{"ApproximateReceiveCount": "many", "SentTimestamp": ""},
				MessageAttributes: map[string]events.SQSMessageAttribute{pipeline.OriginalIDAttribute: {DataType: "Binary", BinaryValue: []byte("x")}}},
			pipeline.Message{ID: "m-3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []pipeline.Message
			h := lambda.Handler(func(_ context.Context, msgs []pipeline.Message) []pipeline.Result {
				got = msgs
				return []pipeline.Result{{MessageID: msgs[0].ID, Outcome: usage.Outcome{Status: usage.Applied}}}
			})
			if _, err := h(context.Background(), events.SQSEvent{Records: []events.SQSMessage{tt.in}}); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			if got[0].EventID() != tt.want.EventID() {
				t.Errorf("event ID %s, want %s", got[0].EventID(), tt.want.EventID())
			}
		})
	}
}

// TestHandlerReportsExactlyTheMessagesNotDone, with the request ID of
// the invocation reaching the pipeline (for its logs).
func TestHandlerReportsExactlyTheMessagesNotDone(t *testing.T) {
	results := []pipeline.Result{
		{MessageID: "applied", Outcome: usage.Outcome{Status: usage.Applied}},
		{MessageID: "duplicate", Outcome: usage.Outcome{Status: usage.Duplicate}},
		{MessageID: "dead-lettered", Outcome: usage.Outcome{Status: usage.Rejected, Err: errors.New("x")}, DeadLettered: true},
		{MessageID: "rejected", Outcome: usage.Outcome{Status: usage.Rejected, Err: errors.New("x")}},
		{MessageID: "retry", Outcome: usage.Outcome{Status: usage.Retry, Err: pipeline.ErrPanic}},
	}
	var reqID string
	h := lambda.Handler(func(ctx context.Context, msgs []pipeline.Message) []pipeline.Result {
		reqID = pipeline.RequestID(ctx)
		return results
	})
	ev := events.SQSEvent{}
	for _, r := range results {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: r.MessageID})
	}
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-9"})
	resp, err := h(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if len(failed) != 2 || failed[0] != "rejected" || failed[1] != "retry" || reqID != "req-9" {
		t.Errorf("batch item failures %v, request ID %q", failed, reqID)
	}

	resp, _ = lambda.Handler(func(context.Context, []pipeline.Message) []pipeline.Result { return results[:1] })(ctx, ev)
	if len(resp.BatchItemFailures) != 0 {
		t.Errorf("all done: batch item failures %v", resp.BatchItemFailures)
	}
}
