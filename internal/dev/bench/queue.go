package bench

import (
	"context"
	"sync"
	"time"
)

// pending is one delivery of a message, waiting in the queue or in hand.
type pending struct {
	msg, receive int
	visibleAt    time.Time
}

// queue is the benchmark's SQS: messages become visible at their arrival
// time (all at once for a closed-loop run), are received up to 10 at a
// time, and a delivery that is not done comes back after the visibility
// timeout with its receive count raised, as in SQS. In FIFO mode it keeps
// SQS's FIFO rules for message groups: a group with a message in hand or
// waiting to be redelivered hands out nothing else, and a receive returns
// as many messages of one group as it can, in order.
//
// It serves both delivery models: Lambda's event source (gather: receives
// until a batch is full or its batching window ends) and the worker's
// ReceiveMessage calls (sqsFake).
type queue struct {
	mu         sync.Mutex
	fresh      []pending // first deliveries in arrival order
	taken      []bool    // fresh[i] handed out
	next       int       // first fresh index not taken
	again      []pending // redeliveries, in the order they become visible
	held       int       // messages received and not yet done
	visibility time.Duration
	fifo       bool
	group      func(msg int) string
	busy       map[string]int // FIFO: messages in hand per group
	// Time during which every message had arrived, nothing was in hand
	// and only a redelivery not yet visible was left.
	idle      time.Duration
	idleSince time.Time
}

// newQueue makes a queue of n messages arriving at start+arrivals[i]
// (arrivals nil: all at start).
func newQueue(n int, start time.Time, arrivals []time.Duration, visibility time.Duration, fifo bool, group func(int) string) *queue {
	q := &queue{fresh: make([]pending, n), taken: make([]bool, n), visibility: visibility, fifo: fifo, group: group, busy: map[string]int{}}
	for i := range q.fresh {
		q.fresh[i] = pending{msg: i, receive: 1, visibleAt: start}
		if arrivals != nil {
			q.fresh[i].visibleAt = start.Add(arrivals[i])
		}
	}
	return q
}

// receive hands out up to max visible messages (q.mu held).
func (q *queue) receive(now time.Time, max int) []pending {
	if !q.idleSince.IsZero() {
		q.idle += now.Sub(q.idleSince)
		q.idleSince = time.Time{}
	}
	var got []pending
	if !q.fifo {
		for len(got) < max && len(q.again) > 0 && !q.again[0].visibleAt.After(now) {
			got = append(got, q.again[0])
			q.again = q.again[1:]
		}
		for len(got) < max && q.next < len(q.fresh) && !q.fresh[q.next].visibleAt.After(now) {
			q.taken[q.next] = true
			got = append(got, q.fresh[q.next])
			q.next++
		}
		q.held += len(got)
		return got
	}
	got = q.receiveFIFO(now, max)
	for _, p := range got {
		q.busy[q.group(p.msg)]++
	}
	q.held += len(got)
	for q.next < len(q.fresh) && q.taken[q.next] {
		q.next++
	}
	return got
}

// receiveFIFO: visible messages of groups that are neither in hand nor
// waiting for a redelivery, redeliveries first (they are older), a group
// at a time.
func (q *queue) receiveFIFO(now time.Time, max int) []pending {
	blocked := map[string]bool{}
	for g, n := range q.busy {
		if n > 0 {
			blocked[g] = true
		}
	}
	for _, p := range q.again {
		if p.visibleAt.After(now) {
			blocked[q.group(p.msg)] = true
		}
	}
	type cand struct {
		p     pending
		fresh int // index into fresh, or -1 for again
		again int
	}
	var cands []cand
	for i, p := range q.again {
		if !p.visibleAt.After(now) && !blocked[q.group(p.msg)] {
			cands = append(cands, cand{p: p, fresh: -1, again: i})
		}
	}
	for i := q.next; i < len(q.fresh) && !q.fresh[i].visibleAt.After(now); i++ {
		if !q.taken[i] && !blocked[q.group(q.fresh[i].msg)] {
			cands = append(cands, cand{p: q.fresh[i], fresh: i, again: -1})
		}
	}
	var got []pending
	usedAgain := map[int]bool{}
	chosen := map[int]bool{}
	for len(got) < max {
		start := -1
		for i := range cands {
			if !chosen[i] {
				start = i
				break
			}
		}
		if start < 0 {
			break
		}
		g := q.group(cands[start].p.msg)
		for i := start; i < len(cands) && len(got) < max; i++ {
			if chosen[i] || q.group(cands[i].p.msg) != g {
				continue
			}
			chosen[i] = true
			got = append(got, cands[i].p)
			if cands[i].fresh >= 0 {
				q.taken[cands[i].fresh] = true
			} else {
				usedAgain[cands[i].again] = true
			}
		}
		// The rest of the group, if max cut it, stays: taking a later
		// group's messages is fine, the group is now in hand.
		for i := range cands {
			if q.group(cands[i].p.msg) == g {
				chosen[i] = true
			}
		}
	}
	if len(usedAgain) > 0 {
		kept := q.again[:0]
		for i, p := range q.again {
			if !usedAgain[i] {
				kept = append(kept, p)
			}
		}
		q.again = kept
	}
	return got
}

// done ends deliveries: they leave the hand, and again (not done) come
// back after the visibility timeout.
func (q *queue) done(delivered []pending, again []pending) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.held -= len(delivered)
	if q.fifo {
		for _, p := range delivered {
			q.busy[q.group(p.msg)]--
		}
	}
	at := time.Now().Add(q.visibility)
	for _, p := range again {
		p.visibleAt = at
		q.again = append(q.again, p)
	}
	q.markIdle(time.Now())
}

// markIdle starts counting idle time when nothing is in hand, every
// message has arrived and nothing is visible (q.mu held).
func (q *queue) markIdle(now time.Time) {
	if q.held == 0 && q.next >= len(q.fresh) && len(q.again) > 0 && q.again[0].visibleAt.After(now) && q.idleSince.IsZero() {
		q.idleSince = now
	}
}

// drained: nothing left to deliver and nothing in hand (q.mu held).
func (q *queue) drained() bool {
	return q.next >= len(q.fresh) && len(q.again) == 0 && q.held == 0
}

// nextVisible is when the next message not yet visible becomes visible
// (q.mu held); zero when none is waiting.
func (q *queue) nextVisible(now time.Time) time.Time {
	var t time.Time
	if q.next < len(q.fresh) && q.fresh[q.next].visibleAt.After(now) {
		t = q.fresh[q.next].visibleAt
	}
	for _, p := range q.again {
		if p.visibleAt.After(now) && (t.IsZero() || p.visibleAt.Before(t)) {
			t = p.visibleAt
			break
		}
	}
	return t
}

// pollInterval bounds how long a waiting receiver sleeps before looking
// again (for messages another receiver's batch put back, or a FIFO group
// that came free).
const pollInterval = 2 * time.Millisecond

// wait sleeps until the next message may be visible, at most until limit
// (zero: no limit) and at most pollInterval; false when ctx ended.
func (q *queue) wait(ctx context.Context, limit time.Time) bool {
	q.mu.Lock()
	now := time.Now()
	d := pollInterval
	if t := q.nextVisible(now); !t.IsZero() {
		d = min(d, t.Sub(now))
	}
	if !limit.IsZero() {
		d = min(d, limit.Sub(now))
	}
	q.mu.Unlock()
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// gather takes one Lambda batch, as the event source does: receives of
// up to 10 until batchSize messages are in hand or window has passed
// since the first arrived (window 0: one receive). It returns nil when
// the queue is drained (or ctx ended), and the number of receives that
// returned messages.
func (q *queue) gather(ctx context.Context, batchSize int, window time.Duration) (batch []pending, receives int) {
	var first time.Time
	for {
		q.mu.Lock()
		now := time.Now()
		got := q.receive(now, min(10, batchSize-len(batch)))
		if len(got) > 0 {
			receives++
			if first.IsZero() {
				first = now
			}
			batch = append(batch, got...)
		}
		if len(batch) >= batchSize || (len(batch) > 0 && !now.Before(first.Add(window))) {
			q.mu.Unlock()
			return batch, receives
		}
		if len(batch) == 0 && q.drained() {
			q.mu.Unlock()
			return nil, receives
		}
		q.markIdle(now)
		more := len(got) == 10 // a full receive: there may be more at once
		q.mu.Unlock()
		if more {
			continue
		}
		var limit time.Time
		if len(batch) > 0 {
			limit = first.Add(window)
		}
		if !q.wait(ctx, limit) {
			q.done(batch, nil)
			return nil, receives
		}
	}
}

// idleTime is how long every message had arrived and only a redelivery
// that was not yet visible was left.
func (q *queue) idleTime() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.idle
}
