package pipeline

import "context"

type eventContextsKey struct{}

// WithEventContexts gives each message of a batch a context of its own
// for the work done on it: contexts[i] is msgs[i]'s, derived from ctx
// (so its deadline and values are the batch's). The tracing middleware
// sets them, each with the event's decision span; the Processor runs
// each scope's store calls in the context of the scope's first event, so
// that the DynamoDB calls are children of that span.
func WithEventContexts(ctx context.Context, contexts []context.Context) context.Context {
	return context.WithValue(ctx, eventContextsKey{}, contexts)
}

// EventContext is the context of the batch's i-th message, set by
// WithEventContexts; ctx itself when there is none.
func EventContext(ctx context.Context, i int) context.Context {
	if cs, ok := ctx.Value(eventContextsKey{}).([]context.Context); ok && i >= 0 && i < len(cs) && cs[i] != nil {
		return cs[i]
	}
	return ctx
}
