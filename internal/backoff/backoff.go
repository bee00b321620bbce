// Package backoff is the one place that waits between attempts: a
// context-aware sleep and capped exponential delays with jitter. The
// store, the worker, the producer and the benchmark all retry, and all of
// them must stop waiting the moment their context ends.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Sleep waits for d or until ctx ends, whichever is first, and returns
// ctx.Err() in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Exponential is a capped exponential delay: Base doubled per attempt
// (attempt 0 gets Base), never above Max.
type Exponential struct {
	Base, Max time.Duration
}

func (e Exponential) ceiling(attempt int) time.Duration {
	d := e.Base << min(max(attempt, 0), 30)
	if d <= 0 || d > e.Max {
		d = e.Max
	}
	return d
}

// Full returns a delay in (0, ceiling]: "full jitter", which spreads
// racing writers the most, so that they do not collide again in lockstep.
func (e Exponential) Full(attempt int) time.Duration {
	return time.Duration(rand.Int64N(int64(e.ceiling(attempt)))) + 1
}

// Equal returns a delay in [ceiling/2, ceiling]: "equal jitter", spread
// out but never close to immediate, for retries towards a service that
// asked us to slow down.
func (e Exponential) Equal(attempt int) time.Duration {
	d := e.ceiling(attempt)
	return d/2 + rand.N(d/2+1)
}
