package sqs_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/producer"
	"github.com/usage-event-service/usage-event-service/sqs"
	"github.com/usage-event-service/usage-event-service/usage"
)

// The FIFO mode end to end, against the emulators: the producer library
// groups by entitlement, the worker consumes the FIFO queue, rejections
// go to the FIFO dead-letter queue.

// fifoWatch wraps each consumer's store: it fails, on their first
// delivery only, the records from a given key on (as a throttled or cut
// off write would), always fails the records from "stuck" keys on, and
// checks that no two consumers ever decide one entitlement at once.
type fifoWatch struct {
	t        *testing.T
	failOnce map[string]bool // dedup keys whose first delivery fails
	stuck    map[string]bool // dedup keys that always fail

	mu       sync.Mutex
	failed   map[string]bool
	inflight map[usage.Scope]int
	overlaps int
	groups   map[string]string // message ID → group seen by the handler
}

func newFIFOWatch(t *testing.T) *fifoWatch {
	return &fifoWatch{t: t, failOnce: map[string]bool{}, stuck: map[string]bool{}, failed: map[string]bool{},
		inflight: map[usage.Scope]int{}, groups: map[string]string{}}
}

type watchedStore struct {
	w     *fifoWatch
	inner metering.Updater
}

func (s watchedStore) Update(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome {
	w := s.w
	w.mu.Lock()
	w.inflight[scope]++
	if w.inflight[scope] > 1 {
		w.overlaps++
	}
	cut := len(records)
	for i, r := range records {
		k := r.DedupKey()
		if w.stuck[k] || (w.failOnce[k] && !w.failed[k]) {
			w.failed[k] = true
			cut = i
			break
		}
	}
	w.mu.Unlock()
	time.Sleep(5 * time.Millisecond) // widen the window in which a second consumer could overlap
	out := s.inner.Update(ctx, scope, records[:cut], decide)
	for range records[cut:] {
		out = append(out, usage.Outcome{Status: usage.Retry, Err: fmt.Errorf("injected failure")})
	}
	w.mu.Lock()
	w.inflight[scope]--
	w.mu.Unlock()
	return out
}

// consumer is one worker process on the FIFO queue: its own store (and
// so its own cache), direct dead-lettering as the module configures it.
func (s *stack) fifoConsumer(w *fifoWatch) *sqs.Worker {
	store := watchedStore{w: w, inner: metering.Writer{Store: dynamodb.NewStore(s.ddb, dynamodb.Config{EntitlementsTable: s.entitlements, LedgerTable: s.ledger})}}
	p := &metering.Processor{Store: store}
	h := pipeline.New(p.Handle, pipeline.Options{DeadLetters: sqs.DeadLetterQueue{Client: s.sqs, QueueURL: s.queues.DeadLetterURL}})
	seen := func(ctx context.Context, msgs []pipeline.Message) []pipeline.Result {
		w.mu.Lock()
		for _, m := range msgs {
			w.groups[m.ID] = m.GroupID
		}
		w.mu.Unlock()
		return h(ctx, msgs)
	}
	return &sqs.Worker{Client: s.sqs, QueueURL: s.queues.URL, Handler: seen, Pollers: 2, WaitTime: time.Second, CoalesceWindow: 20 * time.Millisecond}
}

func (s *stack) deadLetters(t *testing.T) map[string]string {
	t.Helper()
	got := map[string]string{} // idempotency key → reason
	for {
		out, err := s.sqs.ReceiveMessage(context.Background(), &awssqs.ReceiveMessageInput{
			QueueUrl: aws.String(s.queues.DeadLetterURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return got
		}
		for _, m := range out.Messages {
			ev, _ := usage.ParseEvent([]byte(aws.ToString(m.Body)))
			reason := "(moved by the redrive policy)"
			if a, ok := m.MessageAttributes[sqs.AttrReason]; ok {
				reason = aws.ToString(a.StringValue)
			}
			got[ev.IdempotencyKey] = reason
		}
	}
}

// TestFIFOModeEndToEnd: events published by the producer library to a
// FIFO queue, consumed by two worker processes at once.
//
//   - Grouping: every message's group is its entitlement.
//   - Never two consumers on one entitlement: no Store.Update of one
//     entitlement overlaps another, across both processes.
//   - Order after a failure: u's second event fails on its first
//     delivery; the third waits behind it, so u's limit of 5 takes 2 and
//     3 and rejects the 1 (out of order, 2 and 1 would fit and 3 not).
//   - Dead-lettering: that rejection goes to the FIFO dead-letter queue
//     at once; an event that keeps failing is moved there by the redrive
//     policy after maxReceiveCount receives, and its entitlement's later
//     events go on after it.
func TestFIFOModeEndToEnd(t *testing.T) {
	s := newStack(t, emulator.UniqueName(t, "q")+".fifo")
	ctx := context.Background()
	put := func(user, key string, limit *usage.Decimal) {
		if err := dynamodb.PutEntitlement(ctx, s.ddb, s.entitlements, dynamodb.DefaultEntitlementKeys, dynamodb.EntitlementItem{UserID: user, EntitlementKey: key, Limit: limit}); err != nil {
			t.Fatal(err)
		}
	}
	put("u", "k1", dp("5"))
	put("u", "k2", nil)
	put("v", "k1", nil)

	event := func(user, key, amount, idem string) usage.Event {
		e := usage.NewEvent(user, key)
		e.Amount, e.IdempotencyKey = usage.MustDecimal(amount), idem
		return e
	}
	events := []usage.Event{event("u", "k1", "2", "u1-1"), event("u", "k2", "1", "u2-1"), event("u", "k1", "3", "u1-2"),
		event("v", "k1", "1", "v1-stuck"), event("u", "k1", "1", "u1-3")}
	for i := range 12 {
		events = append(events, event("u", "k2", "1", fmt.Sprintf("u2-%d", i+2)), event("v", "k1", "1", fmt.Sprintf("v1-%d", i+1)))
	}
	pub, err := producer.New(emulator.Stack(t), s.queues.URL)
	if err != nil {
		t.Fatal(err)
	}
	results, err := pub.PublishBatch(ctx, events)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]usage.Event{}
	for i, r := range results {
		if r.Err != nil {
			t.Fatalf("event %d not sent: %v", i, r.Err)
		}
		ids[r.MessageID] = events[i]
	}

	w := newFIFOWatch(t)
	w.failOnce["u1-2"] = true
	w.stuck["v1-stuck"] = true
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 2 {
		worker := s.fifoConsumer(w)
		wg.Go(func() {
			if err := worker.Run(runCtx); err != nil {
				t.Errorf("worker: %v", err)
			}
		})
	}
	// maxReceiveCount 3 and a visibility timeout of 2 s: the stuck event
	// is moved after its third receive, some 6 s in.
	waitUntil(t, "the queue to drain", 90*time.Second, func() bool { return s.depth(t, s.queues.URL) == 0 })
	stop()
	wg.Wait()

	w.mu.Lock()
	defer w.mu.Unlock()
	for id, g := range w.groups {
		e := ids[id]
		if want := producer.GroupID(e.UserID, e.EntitlementKey); g != want {
			t.Errorf("message %s (%s/%s) in group %q, want %q", id, e.UserID, e.EntitlementKey, g, want)
		}
	}
	if len(w.groups) < len(events) {
		t.Errorf("the consumers saw %d of %d messages", len(w.groups), len(events))
	}
	if w.overlaps > 0 {
		t.Errorf("%d times two consumers decided one entitlement at once", w.overlaps)
	}
	for _, c := range []struct {
		user, key, want string
	}{{"u", "k1", "5"}, {"u", "k2", "13"}, {"v", "k1", "12"}} {
		if got := s.used(t, c.user, c.key); got.Cmp(usage.MustDecimal(c.want)) != 0 {
			t.Errorf("%s/%s used %s, want %s", c.user, c.key, got, c.want)
		}
	}
	dl := s.deadLetters(t)
	want := map[string]string{"u1-3": string(usage.ReasonLimitExceeded), "v1-stuck": "(moved by the redrive policy)"}
	if fmt.Sprint(dl) != fmt.Sprint(want) {
		t.Errorf("dead letters %v, want %v", dl, want)
	}
}
