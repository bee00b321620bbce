package sqs

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/backoff"
)

// Pacing receives. A long poll returns as soon as one message is there,
// so on a lightly loaded queue every poller receives about one message a
// call: about one ReceiveMessage per event, most of the worker's SQS bill
// at a few hundred events a second. While the queue is light (the last
// receive returned fewer than 10 messages), a paced worker lets one
// poller receive at a time, at most once per coalescing window: the
// window's messages gather in the queue and one receive takes them. They
// are then decided at once, since they have waited their window in the
// queue instead of in the worker; so no message waits longer than it
// would without pacing. A full receive means a backlog: then every poller
// receives without waiting, and what they receive coalesces in the worker
// as before. FIFO queues are never paced: a receive there returns fewer
// messages for its groups' sake, not for want of messages.

// pacer is shared by a worker's pollers; nil when the worker is not paced.
type pacer struct {
	every time.Duration
	turn  chan struct{} // held by the one poller receiving while light
	light atomic.Bool
}

func newPacer(enabled bool, window time.Duration, queueURL string) *pacer {
	if !enabled || window <= 0 || strings.HasSuffix(queueURL, ".fifo") {
		return nil
	}
	// Not light at first: a worker usually starts on a queue that has
	// waited for it, so every poller receives until one comes back short.
	return &pacer{every: window, turn: make(chan struct{}, 1)}
}

// begin is called before a receive. While the queue is light it waits for
// the poller's turn and reports true; false when the receive is not paced
// (or ctx ended while waiting: the receive then fails on ctx).
func (p *pacer) begin(ctx context.Context) bool {
	if p == nil || !p.light.Load() {
		return false
	}
	select {
	case p.turn <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// end is told what a receive returned, at receivedAt. After a paced
// receive it keeps the turn until the window since receivedAt has passed.
func (p *pacer) end(ctx context.Context, paced bool, received int, receivedAt time.Time) {
	if p == nil {
		return
	}
	p.light.Store(received < 10)
	if paced {
		_ = backoff.Sleep(ctx, time.Until(receivedAt.Add(p.every)))
		<-p.turn
	}
}

// arrivedAt is when the worker counts a received message as arrived: a
// paced receive's messages have already waited their window.
func (p *pacer) arrivedAt(paced bool, receivedAt time.Time) time.Time {
	if paced {
		return receivedAt.Add(-p.every)
	}
	return receivedAt
}
