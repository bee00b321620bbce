package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/usage-event-service/usage-event-service/usage"
)

// ErrPanic is the cause (errors.Is) of RETRY for messages whose
// processing panicked. A panic is a bug, not a verdict on the messages:
// they go back to the queue, and SQS's redrive policy moves them aside if
// the bug outlasts maxReceiveCount.
var ErrPanic = errors.New("panic while processing")

// PanicError is the recovered panic behind an ErrPanic outcome. All
// messages of the scope (or batch) it interrupted share one *PanicError,
// so Logging and metrics count and log it once.
type PanicError struct {
	Value any
	Stack []byte // the panicking goroutine's stack, as debug.Stack gives it
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Is makes errors.Is(err, ErrPanic) true.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Panics returns the distinct panics behind the results, in order.
func Panics(results []Result) []*PanicError {
	var out []*PanicError
	seen := map[*PanicError]bool{}
	for _, r := range results {
		var p *PanicError
		if r.Status == usage.Retry && errors.As(r.Err, &p) && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// RetryOnPanic, deferred at the top of a goroutine that writes the
// results at index, turns a panic in it into RETRY for exactly those
// results. The Processor applies each scope in a goroutine of its own,
// where no recover of the caller can reach: without this, one panicking
// scope would kill the worker process or the Lambda runtime, and with it
// every other scope of the batch. It must be deferred directly (recover
// only stops a panic when called by the deferred function itself).
func RetryOnPanic(results []Result, index []int) {
	v := recover()
	if v == nil {
		return
	}
	err := &PanicError{Value: v, Stack: debug.Stack()}
	for _, i := range index {
		results[i].Outcome = usage.Outcome{Status: usage.Retry, Err: err}
	}
}

// Recover turns a panic of the handler it wraps (outside the per-scope
// goroutines, which recover on their own) into RETRY for the whole batch,
// so that the middlewares outside it still see one result per message.
func Recover() Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, msgs []Message) (results []Result) {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				err := &PanicError{Value: v, Stack: debug.Stack()}
				results = make([]Result, len(msgs))
				for i, m := range msgs {
					results[i] = Result{MessageID: m.ID, Outcome: usage.Outcome{Status: usage.Retry, Err: err}}
				}
			}()
			return next(ctx, msgs)
		}
	}
}
