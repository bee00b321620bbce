package tracing

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/usage-event-service/usage-event-service/internal/tracecontext"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Span names and attribute keys of the service's spans.
const (
	BatchSpan = "usage-events process"
	EventSpan = "usage-event decide"

	AttrOutcome        = attribute.Key("usage.outcome")
	AttrReason         = attribute.Key("usage.reason")
	AttrUserID         = attribute.Key("usage.user_id")
	AttrEntitlementKey = attribute.Key("usage.entitlement_key")
	AttrEventID        = attribute.Key("usage.event_id")
	AttrIdempotencyKey = attribute.Key("usage.idempotency_key")
	AttrDeadLettered   = attribute.Key("usage.dead_lettered")
	AttrMessageID      = attribute.Key("messaging.message.id")
	AttrReceiveCount   = attribute.Key("messaging.aws.sqs.receive_count")
)

// maxLinks bounds the producer links of a batch span (the SDK's default
// span limit is 128; a batch is at most a few hundred messages).
const maxLinks = 128

// Middleware traces every batch and event decision with tp:
//
//   - a batch span (BatchSpan, kind consumer), linked to each distinct
//     producer span that its messages carry, with the counts of its
//     outcomes. Its parent is the span in the handler's context if there
//     is one; else, when every message carries a context and all are of
//     one trace (one producer's publish, say), the first message's
//     producer span, so that the whole batch is in that trace; else it
//     starts a trace of its own;
//   - per message, an event span (EventSpan, kind consumer), a child of
//     the producer span that the message carries (so it is in the
//     producer's trace), or of the batch span when it carries none,
//     linked to the batch span; it has the message ID, the event ID (the
//     message ID of its first delivery, which a replay keeps), the outcome
//     SQS is told, the reason of a rejection, whether it was dead-lettered
//     and, when ids is true, the userId, entitlementKey and idempotency
//     key. A RETRY is an error status, with its cause.
//
// The store calls of a scope (one entitlement's events of the batch,
// written together) run under the event span of the scope's first event,
// so that a DynamoDB client with the SDK's instrumentation (AWS) records
// TransactWriteItems and its reads as children of that span.
func Middleware(tp trace.TracerProvider, ids bool) pipeline.Middleware {
	tracer := tp.Tracer(tracecontext.ScopeName)
	return func(next pipeline.Handler) pipeline.Handler {
		return func(ctx context.Context, msgs []pipeline.Message) []pipeline.Result {
			remotes, links, oneTrace := producers(msgs)
			parent := ctx
			if oneTrace && !trace.SpanContextFromContext(ctx).IsValid() {
				parent = trace.ContextWithRemoteSpanContext(ctx, remotes[0])
			}
			ctx, batch := tracer.Start(parent, BatchSpan, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithLinks(links...),
				trace.WithAttributes(attribute.String("messaging.system", "aws_sqs"),
					attribute.String("messaging.operation.type", "process"),
					attribute.Int("messaging.batch.message_count", len(msgs))))
			defer batch.End()
			batchLink := trace.LinkFromContext(ctx)

			contexts := make([]context.Context, len(msgs))
			spans := make([]trace.Span, len(msgs))
			for i, m := range msgs {
				parent := ctx
				opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer),
					trace.WithAttributes(AttrMessageID.String(m.ID), AttrEventID.String(m.EventID()), AttrReceiveCount.Int(m.ReceiveCount))}
				if remotes[i].IsValid() {
					parent = trace.ContextWithRemoteSpanContext(ctx, remotes[i])
					opts = append(opts, trace.WithLinks(batchLink))
				}
				contexts[i], spans[i] = tracer.Start(parent, EventSpan, opts...)
			}

			results := next(pipeline.WithEventContexts(ctx, contexts), msgs)

			counts := map[usage.Status]int{}
			for i, span := range spans {
				if i < len(results) {
					counts[results[i].Status]++
					endEvent(span, results[i], ids)
				} else {
					span.End()
				}
			}
			batch.SetAttributes(attribute.Int("usage.applied", counts[usage.Applied]), attribute.Int("usage.duplicates", counts[usage.Duplicate]),
				attribute.Int("usage.rejected", counts[usage.Rejected]), attribute.Int("usage.retried", counts[usage.Retry]))
			return results
		}
	}
}

// producers reads each message's producer span context; links are the
// distinct ones (at most maxLinks), and oneTrace says whether every
// message came from one trace.
func producers(msgs []pipeline.Message) (remotes []trace.SpanContext, links []trace.Link, oneTrace bool) {
	remotes = make([]trace.SpanContext, len(msgs))
	seen := map[trace.SpanID]bool{}
	oneTrace = len(msgs) > 0
	for i, m := range msgs {
		remotes[i] = tracecontext.Remote(m.TraceParent, m.AWSTraceHeader)
		sc := remotes[i]
		oneTrace = oneTrace && sc.IsValid() && sc.TraceID() == remotes[0].TraceID()
		if sc.IsValid() && !seen[sc.SpanID()] && len(links) < maxLinks {
			seen[sc.SpanID()] = true
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	return remotes, links, oneTrace
}

// endEvent ends an event's span with its outcome, reason and (with ids)
// the user, entitlement and idempotency key; a RETRY is an error.
func endEvent(span trace.Span, r pipeline.Result, ids bool) {
	attrs := []attribute.KeyValue{AttrOutcome.String(string(r.Status)), AttrDeadLettered.Bool(r.DeadLettered)}
	if reason := r.Reason(); reason != "" {
		attrs = append(attrs, AttrReason.String(string(reason)))
	}
	if ids && r.Event.UserID != "" {
		attrs = append(attrs, AttrUserID.String(r.Event.UserID), AttrEntitlementKey.String(r.Event.EntitlementKey))
		if r.Event.IdempotencyKey != "" {
			attrs = append(attrs, AttrIdempotencyKey.String(r.Event.IdempotencyKey))
		}
	}
	span.SetAttributes(attrs...)
	if r.Status == usage.Retry {
		desc := "will be retried"
		if r.Err != nil {
			desc = r.Err.Error()
		}
		span.SetStatus(codes.Error, desc)
	}
	span.End()
}
