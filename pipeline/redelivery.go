package pipeline

import (
	"context"
	"time"
)

// maxVisibility is the longest SQS lets a message stay invisible.
const maxVisibility = 12 * time.Hour

// WaitDelay is how long a message that waits (a refund for its consume)
// should stay invisible, sent at sentAt and waiting at most wait in all:
// half the remaining wait, and all of it once a quarter or less remains.
// So it is received at most 4 times within the wait, however long (up to
// 24 hours; SQS caps one delay at 12), and the queue's receive count
// does not run out before the wait does.
func WaitDelay(sentAt, now time.Time, wait time.Duration) time.Duration {
	remaining := sentAt.Add(wait).Sub(now)
	d := remaining / 2
	if remaining <= wait/4 {
		d = remaining
	}
	return min(max(d+time.Second, time.Second), maxVisibility)
}

// VisibilityChanger changes how long messages stay invisible, one error
// (or nil) per message; the queue adapter implements it.
type VisibilityChanger interface {
	ChangeVisibility(ctx context.Context, msgs []Message, delays []time.Duration) []error
}

// Redeliveries stretches the redeliveries of messages that wait
// (Result.RedeliverAfter), so they do not use up the queue's receive
// count on the visibility timeout. A change that fails leaves the
// message on the visibility timeout: it comes back sooner, nothing more.
func Redeliveries(changer VisibilityChanger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, msgs []Message) []Result {
			results := next(ctx, msgs)
			var waiting []Message
			var delays []time.Duration
			for i, r := range results {
				if r.RedeliverAfter > 0 && !r.Done() {
					waiting = append(waiting, msgs[i])
					delays = append(delays, r.RedeliverAfter)
				}
			}
			if len(waiting) > 0 {
				changer.ChangeVisibility(ctx, waiting, delays)
			}
			return results
		}
	}
}
