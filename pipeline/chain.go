package pipeline

import (
	"log/slog"
	"time"
)

// Options are the concerns New wraps around a core handler. A zero field
// leaves its concern out.
type Options struct {
	// Tracing, when set, traces every batch and event decision, e.g.
	// tracing.Middleware(provider, ids). It is a middleware here for the
	// same reason as Metrics.
	Tracing Middleware
	// Logger gets a line per message not applied and a summary per batch
	// (Logging).
	Logger *slog.Logger
	// Metrics records every batch, e.g. metrics.Middleware(recorder).
	// It is a middleware rather than a recorder because package metrics
	// builds on this one.
	Metrics Middleware
	// DeadLetters, when set, moves rejected messages to the dead-letter
	// queue at once (DeadLetters); when nil they stay on the queue until
	// its redrive policy moves them after maxReceiveCount receives.
	DeadLetters DeadLetterSender
	// Now stamps dead letters' RejectedAt (time.Now when nil).
	Now func() time.Time
	// Visibility, when set, stretches the redeliveries of messages that
	// wait (Redeliveries); when nil they come back after the queue's
	// visibility timeout.
	Visibility VisibilityChanger
}

// New is the one place the handler chain is built, for the Lambda
// function, the worker and the benchmark alike. Outermost first:
//
//	Tracing → Logging → Metrics → Redeliveries → FIFOOrder → DeadLetters → Recover → core
//
// The order is a matter of correctness, not taste:
//
//   - Recover sits directly around core, so that a panic there (outside
//     the per-scope goroutines, which recover on their own) becomes RETRY
//     results that every concern outside it sees, instead of killing the
//     worker or failing the whole invocation.
//   - DeadLetters is inside FIFOOrder, so that FIFOOrder sees which
//     rejections are already dead-lettered. Those are done with in any
//     order and do not hold back the rest of their message group; a
//     rejection whose send failed stays on the queue and does. The other
//     way round, every rejection would hold back its group, and the
//     messages after it would be redelivered for nothing.
//   - Logging and Metrics are outside both, so that they report the
//     outcome SQS is told: a message FIFOOrder held back is a RETRY (it
//     will be redelivered, and comes back a DUPLICATE if its store call
//     had applied it), and a rejection is dead-lettered only once the
//     send succeeded. Logging is outermost, so its batch duration covers
//     everything.
//   - Redeliveries is outside FIFOOrder, so that it stretches only what
//     is finally left on the queue.
//   - Tracing is outermost, so that its spans record the outcome SQS is
//     told, like Logging's lines, and the batch span covers the others'
//     work; Logging's lines then carry the batch's trace.
func New(core Handler, o Options) Handler {
	var mws []Middleware
	if o.Tracing != nil {
		mws = append(mws, o.Tracing)
	}
	if o.Logger != nil {
		mws = append(mws, Logging(o.Logger))
	}
	if o.Metrics != nil {
		mws = append(mws, o.Metrics)
	}
	if o.Visibility != nil {
		mws = append(mws, Redeliveries(o.Visibility))
	}
	mws = append(mws, FIFOOrder())
	if o.DeadLetters != nil {
		mws = append(mws, DeadLetters(o.DeadLetters, o.Now))
	}
	mws = append(mws, Recover())
	return Chain(core, mws...)
}
