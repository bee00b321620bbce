package lambda

import (
	"context"
	"encoding/json"
	"time"

	"github.com/usage-event-service/usage-event-service/metering"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Function is the bootstrap's one handler: it tells an SQS event, an
// EventBridge scheduled event and a direct invocation apart by their
// shape. An SQS batch goes through the pipeline (answered with
// batchItemFailures); a scheduled event runs the periodic work, in order
// (answered with a ScheduledAnswer); anything else is one synchronous
// request, answered with a decision.Answer. Neither a direct request nor
// a scheduled event gets a function error: a payload that is no request
// is a REJECTED answer, and periodic work that fails says so in the
// answer and is tried again by the next schedule.
func Function(h pipeline.Handler, d *metering.Decisions, periodic ...Periodic) func(context.Context, json.RawMessage) (any, error) {
	batches := Handler(h)
	return func(ctx context.Context, payload json.RawMessage) (any, error) {
		if isScheduledEvent(payload) {
			return runPeriodic(ctx, periodic), nil
		}
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

// Periodic is work the function does on a schedule (an EventBridge rule
// invoking it every minute) rather than per event: the notification
// outbox's recovery sweep, for instance.
type Periodic struct {
	Name string
	Run  func(context.Context) error
}

// ScheduledAnswer is the answer to a scheduled event: what each periodic
// task did.
type ScheduledAnswer struct {
	Periodic []PeriodicResult `json:"periodic"`
}

// PeriodicResult is one task's result: Error is empty when it succeeded.
type PeriodicResult struct {
	Name  string `json:"name"`
	Error string `json:"error,omitempty"`
}

// runPeriodic runs each task in order; one failing does not stop the next.
func runPeriodic(ctx context.Context, tasks []Periodic) ScheduledAnswer {
	a := ScheduledAnswer{Periodic: []PeriodicResult{}}
	for _, t := range tasks {
		r := PeriodicResult{Name: t.Name}
		if err := t.Run(ctx); err != nil {
			r.Error = err.Error()
		}
		a.Periodic = append(a.Periodic, r)
	}
	return a
}

// isScheduledEvent: {"source":"aws.events","detail-type":"Scheduled
// Event",...}, what an EventBridge schedule sends.
func isScheduledEvent(payload json.RawMessage) bool {
	var shape struct {
		Source     string `json:"source"`
		DetailType string `json:"detail-type"`
	}
	return json.Unmarshal(payload, &shape) == nil && shape.Source == "aws.events" && shape.DetailType == "Scheduled Event"
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

// Flushed calls flush after each invocation of f, before its answer is
// returned: Lambda freezes the environment once the answer is sent, so
// spans still buffered then would leave late, or never. flush is the
// tracer provider's ForceFlush; its error is not the invocation's (the
// exporter reports it), and it gets at most FlushTimeout, within the
// invocation's deadline, so that an unreachable collector cannot turn a
// decided batch into a timeout that SQS would redeliver whole.
func Flushed(f Bytes, flush func(context.Context) error) Bytes {
	return func(ctx context.Context, payload json.RawMessage) (any, error) {
		out, err := f(ctx, payload)
		fctx, cancel := context.WithTimeout(ctx, FlushTimeout)
		defer cancel()
		_ = flush(fctx)
		return out, err
	}
}

// FlushTimeout bounds the span flush after an invocation.
const FlushTimeout = 2 * time.Second
