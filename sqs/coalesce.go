package sqs

import (
	"context"
	"sync"
	"time"

	"github.com/usage-event-service/usage-event-service/metering"

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
// arrives while a batch is in flight coalesces into the next one. With
// ReleaseEarly around the Processor's store, an entitlement is free again
// as soon as its own Store.Update returns, not only when its whole batch
// (other entitlements' writes, dead letters, deletes) is done.

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
	// free, put in the handler's context (withFree), lets ReleaseEarly
	// free the batch's entitlements one by one.
	run func(free func(usage.Scope), batch []pipeline.Message)
	// onClose is told how many messages were pending at shutdown.
	onClose func(pending int)

	in       chan []arrival
	finished chan flight
	released chan freed
	stopped  chan struct{}
}

// flight is a batch being decided, by its number.
type flight struct {
	id    int
	batch []arrival
}

// freed is an entitlement of batch id decided.
type freed struct {
	id    int
	scope usage.Scope
}

type releaseKey struct{}

// withFree carries a batch's free function to ReleaseEarly.
func withFree(ctx context.Context, free func(usage.Scope)) context.Context {
	return context.WithValue(ctx, releaseKey{}, free)
}

// ReleaseEarly wraps the store of the Processor a Worker runs: within a
// worker's batch, each entitlement is released for the next batch as
// soon as its Store.Update returns. Anywhere else (Lambda) it only passes
// the call through.
// A team's members are released together, when its write returns.
func ReleaseEarly(s metering.Updater) metering.Updater {
	if t, ok := s.(metering.Teamer); ok {
		return releasingTeamer{releasingStore{s}, t}
	}
	return releasingStore{s}
}

type releasingStore struct{ inner metering.Updater }

func (s releasingStore) Update(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome {
	defer freeScope(ctx, scope)
	return s.inner.Update(ctx, scope, records, decide)
}

// freeScope frees a decided entitlement for the next batch.
func freeScope(ctx context.Context, scope usage.Scope) {
	if free, ok := ctx.Value(releaseKey{}).(func(usage.Scope)); ok {
		free(scope)
	}
}

type releasingTeamer struct {
	releasingStore
	t metering.Teamer
}

func (s releasingTeamer) Observe(ctx context.Context, scope usage.Scope, consistent bool) (usage.State, error) {
	return s.t.Observe(ctx, scope, consistent)
}

func (s releasingTeamer) UpdateObserved(ctx context.Context, scope usage.Scope, st usage.State, records []usage.Record, decide usage.Decide) []usage.Outcome {
	defer freeScope(ctx, scope)
	return s.t.UpdateObserved(ctx, scope, st, records, decide)
}

func (s releasingTeamer) UpdateTeam(ctx context.Context, members map[usage.Scope]usage.State, records []usage.Record, team usage.DecideTeam, decide usage.Decide) []usage.Outcome {
	defer func() {
		for scope := range members {
			freeScope(ctx, scope)
		}
	}()
	return s.t.UpdateTeam(ctx, members, records, team, decide)
}

func newCoalescer(window time.Duration, limit int, run func(func(usage.Scope), []pipeline.Message), onClose func(int)) *coalescer {
	if limit <= 0 {
		limit = DefaultCoalesceMax
	}
	c := &coalescer{window: window, max: limit, run: run, onClose: onClose,
		in: make(chan []arrival), finished: make(chan flight), released: make(chan freed, 64), stopped: make(chan struct{})}
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
	st := &loopState{busy: map[usage.Scope]int{}}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	in := c.in
	for {
		c.dispatch(st)
		if st.closing && len(st.pending) == 0 && st.inflight == 0 {
			return
		}
		if at, ok := c.nextDue(st.pending, st.busy); ok && !st.closing {
			timer.Reset(time.Until(at))
		} else {
			timer.Stop()
		}
		select {
		case as, ok := <-in:
			if !ok {
				st.closing, in = true, nil
				if c.onClose != nil {
					c.onClose(len(st.pending))
				}
				continue
			}
			st.pending = append(st.pending, as...)
		case <-timer.C:
		case r := <-c.released:
			if st.busy[r.scope] == r.id {
				delete(st.busy, r.scope)
			}
		case f := <-c.finished:
			st.inflight--
			for _, a := range f.batch {
				if st.busy[a.scope] == f.id {
					delete(st.busy, a.scope)
				}
			}
		}
	}
}

// loopState is what the loop knows: the arrivals not yet dispatched, the
// entitlements in flight (by the batch deciding them), the batches in
// flight, and whether the input has closed.
type loopState struct {
	pending       []arrival
	busy          map[usage.Scope]int
	inflight, seq int
	closing       bool
}

// dispatch starts every batch that is due now.
func (c *coalescer) dispatch(st *loopState) {
	for {
		batch, rest := c.due(st.pending, st.busy, st.closing, time.Now())
		if len(batch) == 0 {
			return
		}
		st.pending = rest
		st.seq++
		id := st.seq
		for _, a := range batch {
			if a.keyed {
				st.busy[a.scope] = id
			}
		}
		st.inflight++
		go func() {
			msgs := make([]pipeline.Message, len(batch))
			for i, a := range batch {
				msgs[i] = a.msg
			}
			c.run(func(s usage.Scope) { c.released <- freed{id: id, scope: s} }, msgs)
			c.finished <- flight{id: id, batch: batch}
		}()
	}
}

// due returns the next batch to decide, if one is due, and what stays
// pending. Messages of an entitlement in flight are not ready; the others
// are, in arrival order. A batch is due when the oldest ready message has
// waited the window, when max messages are ready, or at shutdown; it
// takes up to max ready messages, and the rest of an entitlement cut off
// by max waits for the next batch (its entitlement is then in flight).
func (c *coalescer) due(pending []arrival, busy map[usage.Scope]int, closing bool, now time.Time) (batch, rest []arrival) {
	ready, oldest := 0, time.Time{}
	for _, a := range pending {
		if a.keyed && busy[a.scope] != 0 {
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
		if len(batch) < c.max && !(a.keyed && busy[a.scope] != 0) {
			batch = append(batch, a)
		} else {
			rest = append(rest, a)
		}
	}
	return batch, rest
}

// nextDue is when the oldest ready message's window ends.
func (c *coalescer) nextDue(pending []arrival, busy map[usage.Scope]int) (time.Time, bool) {
	for _, a := range pending {
		if !(a.keyed && busy[a.scope] != 0) {
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
