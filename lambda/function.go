package lambda

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Function is the bootstrap's one handler: it tells an SQS event from a
// direct invocation by its shape. An SQS batch goes through the pipeline
// (answered with batchItemFailures); anything else is one synchronous
// request, answered with a decision.Answer. A direct request never gets a
// function error: a payload that is no request is a REJECTED answer.
func Function(h pipeline.Handler, d *decision.Engine) func(context.Context, json.RawMessage) (any, error) {
	batches := Handler(h)
	return func(ctx context.Context, payload json.RawMessage) (any, error) {
		if isSQSEvent(payload) {
			var ev events.SQSEvent
			if err := json.Unmarshal(payload, &ev); err != nil {
				return nil, err // not what SQS sends: a bug, and SQS retries the batch
			}
			return batches(ctx, ev)
		}
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			ctx = pipeline.WithRequestID(ctx, lc.AwsRequestID)
		}
		if d == nil {
			return decision.Answer{Status: decision.Rejected, Reason: usage.ReasonInvalidField,
				Message: "this function serves only SQS events"}, nil
		}
		return d.Handle(ctx, payload), nil
	}
}

// Bytes adapts f to aws-lambda-go's raw handler, so that even a payload
// that is not JSON (which Lambda's Invoke refuses, but an emulator may
// pass) reaches f and is answered.
type Bytes func(context.Context, json.RawMessage) (any, error)

// Invoke implements lambda.Handler.
func (f Bytes) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	out, err := f(ctx, payload)
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

// isSQSEvent: {"Records":[{"eventSource":"aws:sqs",...}]}. A request
// object has no Records field.
func isSQSEvent(payload json.RawMessage) bool {
	var shape struct {
		Records []struct {
			EventSource string `json:"eventSource"`
		} `json:"Records"`
	}
	if json.Unmarshal(payload, &shape) != nil || len(shape.Records) == 0 {
		return false
	}
	return shape.Records[0].EventSource == "aws:sqs"
}
