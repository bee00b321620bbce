// Package lambda adapts the pipeline to an SQS-triggered AWS Lambda
// function with partial batch responses (ReportBatchItemFailures).
package lambda

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/usage-event-service/usage-event-service/pipeline"
)

// Handler returns the function handler. It lists in batchItemFailures
// exactly the messages that are not done (rejected and not
// dead-lettered, or transient), so SQS retries only those. It never
// fails the invocation as a whole: that would make SQS redeliver the
// applied messages too.
func Handler(h pipeline.Handler) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			ctx = pipeline.WithRequestID(ctx, lc.AwsRequestID)
		}
		msgs := make([]pipeline.Message, len(ev.Records))
		for i, r := range ev.Records {
			msgs[i] = toMessage(r)
		}
		resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
		for _, r := range h(ctx, msgs) {
			if !r.Done() {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageID})
			}
		}
		return resp, nil
	}
}

func toMessage(r events.SQSMessage) pipeline.Message {
	m := pipeline.Message{ID: r.MessageId, Body: r.Body, GroupID: r.Attributes["MessageGroupId"], ReceiptHandle: r.ReceiptHandle}
	if v, ok := r.MessageAttributes[pipeline.OriginalIDAttribute]; ok && v.StringValue != nil {
		m.OriginalID = *v.StringValue
	}
	// The producer's trace context: SQS events always carry both when the
	// producer set them; only the tracing middleware reads them.
	m.AWSTraceHeader = r.Attributes["AWSTraceHeader"]
	if v, ok := r.MessageAttributes[pipeline.TraceParentAttribute]; ok && v.StringValue != nil {
		m.TraceParent = *v.StringValue
	}
	if n, err := strconv.Atoi(r.Attributes["ApproximateReceiveCount"]); err == nil {
		m.ReceiveCount = n
	}
	if ms, err := strconv.ParseInt(r.Attributes["SentTimestamp"], 10, 64); err == nil {
		m.SentAt = time.UnixMilli(ms).UTC()
	}
	return m
}
