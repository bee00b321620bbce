// Package pipeline is the plumbing around the queued use case
// (metering.Processor): messages and their results, the Handler type, and
// the middlewares (dead-lettering, FIFO ordering, stretched
// redeliveries, panic recovery, logging, metrics, tracing) that New
// assembles around a handler in the one order that is correct. The same
// chain serves the Lambda function and the worker.
package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/tracecontext"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Message is a queue message as both run modes receive it.
type Message struct {
	ID           string
	Body         string
	ReceiveCount int
	SentAt       time.Time
	// GroupID is the FIFO message group, empty on standard queues.
	GroupID string
	// OriginalID is the message ID of the event's first delivery when this
	// message is a replay of it (message attribute usage.originalMessageId,
	// set by `usagectl dlq redrive`). It stays the event's dedup key, so a
	// replayed copy of an event that was applied meanwhile, or two copies
	// of one dead letter, are applied once.
	OriginalID string
	// ReceiptHandle is this delivery's handle, for changing its visibility.
	ReceiptHandle string
	// TraceParent and AWSTraceHeader are the producer's trace context, as
	// received (the message attribute traceparent and the system attribute
	// AWSTraceHeader, both written by the Go producer; see package
	// internal/tracing). Empty when the
	// producer sent none, or when the worker does not ask for them
	// (tracing off).
	TraceParent, AWSTraceHeader string
}

// OriginalIDAttribute is the message attribute that carries OriginalID.
const OriginalIDAttribute = "usage.originalMessageId"

// TraceParentAttribute is the message attribute that carries
// TraceParent (AWSTraceHeader is a system attribute of that name).
const TraceParentAttribute = tracecontext.TraceParentAttribute

// EventID is the ID that identifies the event across deliveries and
// replays: OriginalID if set, else ID.
func (m Message) EventID() string {
	if m.OriginalID != "" {
		return m.OriginalID
	}
	return m.ID
}

// Result is what happened to one message.
type Result struct {
	MessageID string
	// Event is the parsed event; zero when the body was invalid.
	Event usage.Event
	usage.Outcome
	// DeadLettered is set when a rejected message was moved to the
	// dead-letter queue by the service itself, so it is done with.
	DeadLettered bool
	// DeadLetterErr is why a rejected message could not be dead-lettered
	// (it stays on the queue and is retried).
	DeadLetterErr error
	// RedeliverAfter, when set on a RETRY, is how long the message should
	// stay invisible before its next delivery (a refund waiting for its
	// consume): see Redeliveries.
	RedeliverAfter time.Duration
}

// Done reports whether the message can leave the queue: applied, a
// duplicate, or rejected and safely dead-lettered.
func (r Result) Done() bool { return r.Status.Succeeded() || r.DeadLettered }

// Handler processes a batch and returns one Result per message, in order.
// It never fails as a whole: failures are per message.
type Handler func(ctx context.Context, msgs []Message) []Result

// Middleware wraps a Handler with one concern.
type Middleware func(Handler) Handler

// Chain applies middlewares so that the first one listed is outermost.
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// FIFOOrder keeps FIFO message groups in order: once a message of a group
// is not done, every later message of that group is reported not done
// too, so SQS redelivers them after it. Later ones that were applied come
// back as duplicates, so nothing is counted twice.
func FIFOOrder() Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, msgs []Message) []Result {
			results := next(ctx, msgs)
			failed := map[string]bool{}
			for i, m := range msgs {
				if m.GroupID == "" {
					continue
				}
				// A dead-lettered message is done with in any order; holding
				// it back would only dead-letter it twice.
				if failed[m.GroupID] && results[i].Done() && !results[i].DeadLettered {
					results[i].Outcome = usage.Outcome{Status: usage.Retry, Err: ErrFIFOBlocked}
				}
				if !results[i].Done() {
					failed[m.GroupID] = true
				}
			}
			return results
		}
	}
}

// ErrFIFOBlocked is the cause of RETRY for a FIFO message held back
// behind an earlier failed message of its group.
var ErrFIFOBlocked = errors.New("held back behind an earlier failed message of the same FIFO group")
