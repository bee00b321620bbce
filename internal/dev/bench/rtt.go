package bench

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/aws/smithy-go/middleware"

	"github.com/usage-event-service/usage-event-service/internal/backoff"
)

// RTT models network round-trip time to DynamoDB: a fixed delay before
// every HTTP attempt of a client, SDK retries included. DynamoDB Local on
// loopback answers without any network latency; in production every
// request pays a round trip (same region: a few milliseconds). This is a
// model, not a measurement of AWS: the delay is the same for every
// request, with no jitter and no tail, and it does not depend on the
// operation (a TransactWriteItems is typically slower than a single-item
// write in DynamoDB; that is not modelled).
//
// The whole round trip is paid before the request is sent. For the
// server-side timing that matters here (the time between a read and the
// conditional write that follows it, as DynamoDB sees them) that is
// equivalent to half on the way out and half on the way back.
type RTT struct {
	// Delay is the round trip added to every attempt; 0 adds nothing.
	Delay time.Duration
	// sleep waits for d or until ctx is done (tests replace it).
	sleep func(ctx context.Context, d time.Duration) error

	attempts atomic.Int64
	slept    atomic.Int64 // nanoseconds actually spent waiting
}

// NewRTT returns an RTT of delay d.
func NewRTT(d time.Duration) *RTT { return &RTT{Delay: d} }

// APIOption installs the delay on a client's middleware stack, at the end
// of the Finalize step: after the retry middleware (so that every attempt
// pays it) and after signing, just before the request is handed to the
// HTTP client.
func (r *RTT) APIOption(stack *middleware.Stack) error {
	if r == nil || r.Delay <= 0 {
		return nil
	}
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("bench.RTT",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if err := r.wait(ctx); err != nil {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, err
			}
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

// wait sleeps for Delay, or less if ctx ends first (its error then).
func (r *RTT) wait(ctx context.Context) error {
	wait := r.sleep
	if wait == nil {
		wait = backoff.Sleep // a timer that ctx can cut short
	}
	t0 := time.Now()
	err := wait(ctx, r.Delay)
	r.attempts.Add(1)
	r.slept.Add(int64(time.Since(t0)))
	return err
}

// MeanDelay is the mean time an attempt actually waited (timer and
// scheduling overshoot included; 0 before any attempt).
func (r *RTT) MeanDelay() time.Duration {
	if r == nil {
		return 0
	}
	n := r.attempts.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(r.slept.Load() / n)
}

// Attempts is the number of attempts delayed so far.
func (r *RTT) Attempts() int64 {
	if r == nil {
		return 0
	}
	return r.attempts.Load()
}
