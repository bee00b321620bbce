package sqs

import (
	"context"
	"sync"
	"time"

	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Coalescing across receives. A transaction bills 2 write units per
// item, so an event alone in its transaction pays for the entitlement
// item by itself, and k events of one entitlement in one transaction pay
// 2 + 2/k each. One receive holds at most 10 messages; the worker
// therefore keeps what its pollers receive for a short window and hands
// it to the pipeline as one batch, in which the Processor decides each
// entitlement's events together, in arrival order, in one Store.Update
// call (one transaction for up to 50 of them).
//
// The coalescer also keeps each entitlement to one batch in flight per
// process: messages of an entitlement whose earlier batch is still being
// decided wait for it and go into the next batch. So a process never
// races itself on a hot entitlement (no TransactionConflict with its own
// writes, no stale cache from its own concurrent commits), the events of
// one entitlement are decided in the order they were received, and what
// arrives while a batch is in flight coalesces into the next one.

// DefaultCoalesceMax bounds the messages handed to the pipeline at once.
const DefaultCoalesceMax = 100

// arrival is one received message waiting for its batch.
type arrival struct {
	msg   pipeline.Message
	scope usage.Scope
	keyed bool // a valid event: it belongs to an entitlement
	at    time.Time
}

func newArrival(m pipeline.Message, at time.Time) arrival {
	a := arrival{msg: m, at: at}
	if ev, err := usage.ParseEvent([]byte(m.Body)); err == nil {
		a.scope, a.keyed = ev.Scope(), true
	}
	return a
}

// coalescer gathers arrivals into batches: one goroutine (loop) owns the
// pending messages and the entitlements in flight; each batch runs in a
// goroutine of its own.
type coalescer struct {
	window time.Duration
	max    int
	// run decides one batch and deletes what is done; it must return.
	run func(batch []pipeline.Message)
	// onClose is told how many messages were pending at shutdown.
	onClose func(pending int)

	in       chan []arrival
	finished chan []arrival
	stopped  chan struct{}
}

func newCoalescer(window time.Duration, limit int, run func([]pipeline.Message), onClose func(int)) *coalescer {
	if limit <= 0 {
		limit = DefaultCoalesceMax
	}
	c := &coalescer{window: window, max: limit, run: run, onClose: onClose,
		in: make(chan []arrival), finished: make(chan []arrival), stopped: make(chan struct{})}
	go c.loop()
	return c
}

// add hands received messages over, in the order received.
func (c *coalescer) add(as []arrival) { c.in <- as }

// close decides everything pending at once, without waiting for its
// window, waits until every batch is done, and returns.
func (c *coalescer) close() {
	close(c.in)
	<-c.stopped
}

func (c *coalescer) loop() {
	defer close(c.stopped)
	var pending []arrival
	busy := map[usage.Scope]bool{}
	inflight := 0
	closing := false
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	in := c.in
	for {
		for {
			batch, rest := c.due(pending, busy, closing, time.Now())
			if len(batch) == 0 {
				break
			}
			pending = rest
			for _, a := range batch {
				if a.keyed {
					busy[a.scope] = true
				}
			}
			inflight++
			go func() {
				msgs := make([]pipeline.Message, len(batch))
				for i, a := range batch {
					msgs[i] = a.msg
				}
				c.run(msgs)
				c.finished <- batch
			}()
		}
		if closing && len(pending) == 0 && inflight == 0 {
			return
		}
		if at, ok := c.nextDue(pending, busy); ok && !closing {
			timer.Reset(time.Until(at))
		} else {
			timer.Stop()
		}
		select {
		case as, ok := <-in:
			if !ok {
				closing, in = true, nil
				if c.onClose != nil {
					c.onClose(len(pending))
				}
				continue
			}
			pending = append(pending, as...)
		case <-timer.C:
		case batch := <-c.finished:
			inflight--
			for _, a := range batch {
				delete(busy, a.scope)
			}
		}
	}
}

// due returns the next batch to decide, if one is due, and what stays
// pending. Messages of an entitlement in flight are not ready; the others
// are, in arrival order. A batch is due when the oldest ready message has
// waited the window, when max messages are ready, or at shutdown; it
// takes up to max ready messages, and the rest of an entitlement cut off
// by max waits for the next batch (its entitlement is then in flight).
func (c *coalescer) due(pending []arrival, busy map[usage.Scope]bool, closing bool, now time.Time) (batch, rest []arrival) {
	ready, oldest := 0, time.Time{}
	for _, a := range pending {
		if a.keyed && busy[a.scope] {
			continue
		}
		if ready == 0 {
			oldest = a.at
		}
		ready++
	}
	if ready == 0 || !(closing || ready >= c.max || !now.Before(oldest.Add(c.window))) {
		return nil, pending
	}
	for _, a := range pending {
		if len(batch) < c.max && !(a.keyed && busy[a.scope]) {
			batch = append(batch, a)
		} else {
			rest = append(rest, a)
		}
	}
	return batch, rest
}

// nextDue is when the oldest ready message's window ends.
func (c *coalescer) nextDue(pending []arrival, busy map[usage.Scope]bool) (time.Time, bool) {
	for _, a := range pending {
		if !(a.keyed && busy[a.scope]) {
			return a.at.Add(c.window), true
		}
	}
	return time.Time{}, false
}

// budget bounds the messages a worker holds (received and not yet
// deleted or released), so that pollers stop receiving while batches
// queue up, and nothing waits long enough for its visibility timeout to
// run out.
type budget struct {
	mu      sync.Mutex
	free    int
	changed chan struct{}
}

func newBudget(n int) *budget { return &budget{free: n, changed: make(chan struct{})} }

// take waits until n messages fit, and reserves them; false when ctx
// ended first.
func (b *budget) take(ctx context.Context, n int) bool {
	for {
		b.mu.Lock()
		if b.free >= n {
			b.free -= n
			b.mu.Unlock()
			return true
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// give returns n reserved messages.
func (b *budget) give(n int) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.free += n
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}
