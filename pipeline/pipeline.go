// Package pipeline turns a batch of queue messages into one outcome per
// message. The same Handler serves the Lambda function and the worker;
// dead-lettering, FIFO ordering, panic recovery, logging and metrics are
// middlewares around it, not branches inside it, and New assembles them
// in the one order that is correct.
package pipeline

import (
	"context"
	"errors"
	"sync"
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

// Store applies the records of one scope, in order, and returns one
// outcome per record. What is atomic is one conditional transaction: the
// entitlement's new usage together with the ledger entries of the events
// it counts. The DynamoDB store (package dynamodb) writes a scope's
// records in transactions of at most 50, so a larger group is several
// transactions, each all or nothing, and one of them may fail (RETRY)
// after an earlier one committed.
type Store interface {
	Update(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome
}

// ErrDeadline is the cause of RETRY for records not started because the
// invocation was about to time out: SQS redelivers them.
var ErrDeadline = errors.New("not started: too close to the invocation deadline")

// Processor is the core Handler: parse, group by scope, apply.
type Processor struct {
	Store Store
	// Now is the processing clock (time.Now when nil).
	Now func() time.Time
	// Parallel bounds the scopes applied at once (default 8). Records of
	// one scope are applied in message order, in one Store.Update call.
	Parallel int
	// DeadlineMargin: a scope is not started when less than this remains
	// before the context's deadline (default DefaultDeadlineMargin).
	DeadlineMargin time.Duration
	// TargetWait is how long, from a message's SentAt, a refund whose
	// consume is not applied yet is RETRY before it is rejected
	// REFUND_TARGET_NOT_FOUND (REFUND_TARGET_WAIT; zero rejects at once).
	TargetWait time.Duration
	// Notify, when set, has the writes that cross a threshold or first
	// hit the limit record a notification (usage.Rules.Notify).
	Notify *usage.Notify
}

// Defaults of a Processor.
const (
	DefaultParallel       = 8
	DefaultDeadlineMargin = 2 * time.Second
	DefaultTargetWait     = 15 * time.Minute
)

// Handle is a Handler.
func (p *Processor) Handle(ctx context.Context, msgs []Message) []Result {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	parallel := p.Parallel
	if parallel <= 0 {
		parallel = DefaultParallel
	}
	margin := p.DeadlineMargin
	if margin <= 0 {
		margin = DefaultDeadlineMargin
	}

	results := make([]Result, len(msgs))
	type group struct {
		scope   usage.Scope
		index   []int
		records []usage.Record
	}
	var groups []*group
	byScope := map[usage.Scope]*group{}
	for i, m := range msgs {
		results[i].MessageID = m.ID
		ev, err := usage.ParseEvent([]byte(m.Body))
		if err == nil {
			err = ev.CheckQueued()
		}
		if err != nil {
			results[i].Outcome = usage.Outcome{Status: usage.Rejected, Err: err}
			continue
		}
		results[i].Event = ev
		g := byScope[ev.Scope()]
		if g == nil {
			g = &group{scope: ev.Scope()}
			byScope[g.scope] = g
			groups = append(groups, g)
		}
		g.index = append(g.index, i)
		g.records = append(g.records, usage.Record{Event: ev, MessageID: m.EventID(), SentAt: m.SentAt,
			Redelivered: m.ReceiveCount > 1 || m.OriginalID != ""})
	}

	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, g := range groups {
		sem <- struct{}{}
		wg.Add(1)
		// The scope's store calls run in the context of its first event
		// (with tracing on, under that event's decision span).
		ctx := eventContext(ctx, g.index[0])
		go func() {
			defer func() { <-sem; wg.Done() }()
			// A panic applying this scope is RETRY for its messages only;
			// it also covers a Store that returns too few outcomes.
			defer retryOnPanic(results, g.index)
			var outcomes []usage.Outcome
			if d, ok := ctx.Deadline(); ok && time.Until(d) < margin {
				outcomes = make([]usage.Outcome, len(g.records))
				for i := range outcomes {
					outcomes[i] = usage.Outcome{Status: usage.Retry, Err: ErrDeadline}
				}
			} else {
				decide := func(st usage.State, r []usage.Record) usage.Plan {
					return usage.Rules{Now: now(), TargetWait: p.TargetWait, Notify: p.Notify}.Plan(st, r)
				}
				outcomes = p.Store.Update(ctx, g.scope, g.records, decide)
			}
			for j, i := range g.index {
				results[i].Outcome = outcomes[j]
				if errors.Is(outcomes[j].Err, usage.ErrTargetPending) {
					results[i].RedeliverAfter = WaitDelay(msgs[i].SentAt, now(), p.TargetWait)
				}
			}
		}()
	}
	wg.Wait()
	return results
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
