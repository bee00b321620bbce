package sqs_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/metering"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/usage-event-service/usage-event-service/internal/dev/memstore"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/sqs"
	"github.com/usage-event-service/usage-event-service/usage"
)

// scriptedQueue hands out scripted receives, one per ReceiveMessage call,
// and records the receipt handles deleted. It stands in for SQS where the
// test must decide which messages arrive in which receive, and when (the
// emulator decides that itself); the worker's wire protocol is covered by
// the tests against the emulator.
type scriptedQueue struct {
	receives chan []sqstypes.Message
	mu       sync.Mutex
	deleted  []string
}

func newScriptedQueue() *scriptedQueue {
	return &scriptedQueue{receives: make(chan []sqstypes.Message)}
}

func (q *scriptedQueue) ReceiveMessage(ctx context.Context, _ *awssqs.ReceiveMessageInput, _ ...func(*awssqs.Options)) (*awssqs.ReceiveMessageOutput, error) {
	select {
	case msgs := <-q.receives:
		return &awssqs.ReceiveMessageOutput{Messages: msgs}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (q *scriptedQueue) DeleteMessageBatch(_ context.Context, in *awssqs.DeleteMessageBatchInput, _ ...func(*awssqs.Options)) (*awssqs.DeleteMessageBatchOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range in.Entries {
		q.deleted = append(q.deleted, aws.ToString(e.ReceiptHandle))
	}
	return &awssqs.DeleteMessageBatchOutput{}, nil
}

func (q *scriptedQueue) SendMessageBatch(context.Context, *awssqs.SendMessageBatchInput, ...func(*awssqs.Options)) (*awssqs.SendMessageBatchOutput, error) {
	return &awssqs.SendMessageBatchOutput{}, nil
}

func (q *scriptedQueue) deletedHandles() map[string]bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := map[string]bool{}
	for _, h := range q.deleted {
		out[h] = true
	}
	return out
}

// recordingStore counts Store.Update calls per scope, remembers the
// records of each call, and fails the test if two calls for one scope
// overlap (the coalescer keeps an entitlement to one batch in flight).
type recordingStore struct {
	inner metering.Updater
	t     *testing.T
	hold  time.Duration // each call takes at least this long

	mu       sync.Mutex
	inflight map[usage.Scope]bool
	calls    map[usage.Scope][][]string // message IDs of each call
}

func newRecordingStore(t *testing.T, inner metering.Updater) *recordingStore {
	return &recordingStore{inner: inner, t: t, inflight: map[usage.Scope]bool{}, calls: map[usage.Scope][][]string{}}
}

func (s *recordingStore) Update(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome {
	s.mu.Lock()
	if s.inflight[scope] {
		s.t.Errorf("two Update calls for %v at once", scope)
	}
	s.inflight[scope] = true
	ids := make([]string, len(records))
	for i, r := range records {
		ids[i] = r.MessageID
	}
	s.calls[scope] = append(s.calls[scope], ids)
	s.mu.Unlock()
	time.Sleep(s.hold)
	out := s.inner.Update(ctx, scope, records, decide)
	s.mu.Lock()
	s.inflight[scope] = false
	s.mu.Unlock()
	return out
}

func (s *recordingStore) callsOf(scope usage.Scope) [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]string(nil), s.calls[scope]...)
}

var (
	coalesceNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	scopeU      = usage.Scope{UserID: "u", EntitlementKey: "k"}
	scopeV      = usage.Scope{UserID: "v", EntitlementKey: "k"}
)

func num(s string) usage.Value { return usage.NumberValue(usage.MustDecimal(s)) }

// seed is the entitlements every equivalence case starts from.
func seed(s *memstore.Store) {
	s.PutEntitlement(scopeU, map[string]usage.Value{usage.AttrLimit: num("5"), usage.AttrUsed: num("0")})
	// v's month has rolled over: its first event resets used.
	s.PutEntitlement(scopeV, map[string]usage.Value{usage.AttrLimit: num("3"), usage.AttrUsed: num("3"),
		usage.AttrResetPeriod: usage.StringValue("MONTHLY"), usage.AttrPeriodStart: usage.StringValue("2026-10-01T00:00:00Z")})
}

func processor(store metering.Updater) pipeline.Handler {
	p := &metering.Processor{Store: store, Now: func() time.Time { return coalesceNow }}
	return pipeline.New(p.Handle, pipeline.Options{})
}

// msg is a received message: id, body, receive count.
type msg struct {
	id, body string
	receive  int
}

func ev(user, amount, key string) string {
	if key == "" {
		return fmt.Sprintf(`{"userId":%q,"entitlementKey":"k","amount":%s}`, user, amount)
	}
	return fmt.Sprintf(`{"userId":%q,"entitlementKey":"k","amount":%s,"idempotencyKey":%q}`, user, amount, key)
}

// outcome is a result as "APPLIED", "DUPLICATE" or the rejection reason.
func outcome(r pipeline.Result) string {
	if r.Status == usage.Rejected {
		return string(r.Reason())
	}
	return string(r.Status)
}

// oneByOne is the reference: every message handled alone, in arrival
// order, on fresh tables.
func oneByOne(receives [][]msg) (outcomes []string, store *memstore.Store) {
	store = memstore.New()
	seed(store)
	h := processor(store)
	for _, r := range receives {
		for _, m := range r {
			res := h(context.Background(), []pipeline.Message{{ID: m.id, Body: m.body, ReceiveCount: m.receive}})
			outcomes = append(outcomes, outcome(res[0]))
		}
	}
	return outcomes, store
}

// coalesced runs the worker on the scripted receives and returns one
// outcome per message in arrival order (from the handler's results), the
// store, and the recording of its Update calls. It stops the worker
// after the last receive was taken, unless wait says to first wait for
// every message to be deleted or to have an outcome.
type coalesceRun struct {
	window  time.Duration
	max     int
	hold    time.Duration
	pollers int
	drain   bool // wait until every message has its outcome before stopping
	pace    bool // PaceReceives
}

func runCoalesced(t *testing.T, cfg coalesceRun, receives [][]msg) ([]string, *memstore.Store, *recordingStore, *scriptedQueue) {
	t.Helper()
	store := memstore.New()
	seed(store)
	rec := newRecordingStore(t, store)
	rec.hold = cfg.hold
	inner := processor(sqs.ReleaseEarly(rec))
	var mu sync.Mutex
	got := map[string]string{} // receipt handle → outcome
	handler := func(ctx context.Context, msgs []pipeline.Message) []pipeline.Result {
		results := inner(ctx, msgs)
		mu.Lock()
		for i, r := range results {
			got[msgs[i].ReceiptHandle] = outcome(r)
		}
		mu.Unlock()
		return results
	}
	q := newScriptedQueue()
	pollers := cfg.pollers
	if pollers == 0 {
		pollers = 1 // one poller: arrival order is the script's order
	}
	w := &sqs.Worker{Client: q, QueueURL: "http://sqs.local/000000000000/q", Handler: handler,
		Pollers: pollers, CoalesceWindow: cfg.window, CoalesceMax: cfg.max, PaceReceives: cfg.pace}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	n := 0
	for i, r := range receives {
		batch := make([]sqstypes.Message, len(r))
		for j, m := range r {
			batch[j] = sqstypes.Message{MessageId: aws.String(m.id), Body: aws.String(m.body), ReceiptHandle: aws.String(handle(i, j)),
				Attributes: map[string]string{string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount): strconv.Itoa(max(m.receive, 1))}}
			n++
		}
		select {
		case q.receives <- batch:
		case <-time.After(30 * time.Second):
			t.Fatalf("receive %d was never taken", i)
		}
	}
	if cfg.drain {
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			k := len(got)
			mu.Unlock()
			if k == n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d messages decided before the deadline; the window did not close by itself", k, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("worker: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not stop")
	}
	var outcomes []string
	for i, r := range receives {
		for j := range r {
			outcomes = append(outcomes, got[handle(i, j)])
		}
	}
	return outcomes, store, rec, q
}

func handle(receive, index int) string { return fmt.Sprintf("rh-%d-%d", receive, index) }

// TestCoalescingAcrossReceivesEqualsOneByOne: whatever the window, the
// count bound, the hold-back of entitlements in flight and shutdown, every
// message ends exactly as if each had been handled alone in arrival
// order, and the tables end the same.
func TestCoalescingAcrossReceivesEqualsOneByOne(t *testing.T) {
	cases := []struct {
		name     string
		receives [][]msg
		want     string // the one-by-one outcomes, as a check of the reference itself
	}{
		{name: "ordering: a consume that does not fit is rejected, a later smaller one fits",
			receives: [][]msg{{{"m1", ev("u", "3", ""), 1}}, {{"m2", ev("u", "3", ""), 1}}, {{"m3", ev("u", "2", ""), 1}}},
			want:     "APPLIED LIMIT_EXCEEDED APPLIED"},
		{name: "duplicates: a redelivery, a producer retry, a reused key, within and across receives",
			receives: [][]msg{
				{{"m1", ev("u", "1", ""), 1}, {"m2", ev("u", "1", "key-2"), 1}},
				{{"m1", ev("u", "1", ""), 2}, {"m3", ev("u", "1", "key-2"), 1}},
				{{"m4", ev("u", "2", "key-2"), 1}, {"m1", ev("u", "1", ""), 3}},
			},
			want: "APPLIED APPLIED DUPLICATE DUPLICATE IDEMPOTENCY_CONFLICT DUPLICATE"},
		{name: "limit edges: exactly the limit, then nothing more, decimals exact",
			receives: [][]msg{
				{{"m1", ev("u", "2.5", ""), 1}}, {{"m2", ev("u", "2.25", ""), 1}, {"m3", ev("u", "0.25", ""), 1}},
				{{"m4", ev("u", "0.01", ""), 1}}, {{"m5", ev("u", "1", "k5"), 1}, {"m6", ev("u", "1", "k5"), 1}},
			},
			want: "APPLIED APPLIED APPLIED LIMIT_EXCEEDED LIMIT_EXCEEDED LIMIT_EXCEEDED"},
		{name: "resets: the first event of a new period resets, the rest count in it",
			receives: [][]msg{{{"v1", ev("v", "2", ""), 1}}, {{"u1", ev("u", "1", ""), 1}, {"v2", ev("v", "1", ""), 1}}, {{"v3", ev("v", "1", ""), 1}}},
			want:     "APPLIED APPLIED APPLIED LIMIT_EXCEEDED"},
		{name: "grants: a consume spilling into one, give-backs to it, a void, and the allowance alone after",
			receives: [][]msg{
				{{"g1", `{"operation":"grant","userId":"u","entitlementKey":"k","grantId":"g-1","amount":3}`, 1}},
				{{"c1", ev("u", "6", "c1"), 1}, {"c2", ev("u", "2", "c2"), 1}},
				{{"r1", `{"operation":"refund","userId":"u","entitlementKey":"k","refundOf":"c1","amount":1,"idempotencyKey":"r1"}`, 1},
					{"v1", `{"operation":"void","userId":"u","entitlementKey":"k","grantId":"g-1"}`, 1}},
				{{"r2", `{"operation":"refund","userId":"u","entitlementKey":"k","refundOf":"c1","idempotencyKey":"r2"}`, 1}, {"c3", ev("u", "9", "c3"), 1}},
			},
			want: "APPLIED APPLIED APPLIED APPLIED APPLIED APPLIED LIMIT_EXCEEDED"},
		{name: "invalid messages and missing entitlements among valid ones",
			receives: [][]msg{{{"x1", "not json", 1}, {"m1", ev("u", "4", ""), 1}}, {{"x2", ev("nobody", "1", ""), 1}, {"m2", ev("u", "1", ""), 1}, {"m3", ev("u", "1", ""), 1}}},
			want:     "INVALID_JSON APPLIED ENTITLEMENT_NOT_FOUND APPLIED LIMIT_EXCEEDED"},
	}
	runs := []struct {
		name string
		cfg  coalesceRun
	}{
		{"window 0: each receive at once, entitlements in flight held back", coalesceRun{window: 0, drain: true, hold: 2 * time.Millisecond}},
		{"a short window closes by itself", coalesceRun{window: 20 * time.Millisecond, drain: true}},
		{"shutdown mid-window decides everything received", coalesceRun{window: time.Hour}},
		{"count bound of 2 cuts batches, an entitlement stays in order", coalesceRun{window: time.Hour, max: 2, hold: time.Millisecond}},
		{"paced receives: one per window while light, decided at once", coalesceRun{window: 20 * time.Millisecond, drain: true, pace: true, hold: 2 * time.Millisecond}},
	}
	for _, c := range cases {
		want, ref := oneByOne(c.receives)
		if got := strings.Join(want, " "); got != c.want {
			t.Fatalf("%s: the one-by-one reference gives %s, the case expects %s", c.name, got, c.want)
		}
		for _, r := range runs {
			t.Run(c.name+"/"+r.name, func(t *testing.T) {
				got, store, _, q := runCoalesced(t, r.cfg, c.receives)
				if strings.Join(got, " ") != strings.Join(want, " ") {
					t.Errorf("outcomes\n got %v\nwant %v", got, want)
				}
				for _, s := range []usage.Scope{scopeU, scopeV} {
					if g, w := store.Entitlement(s), ref.Entitlement(s); fmt.Sprint(g) != fmt.Sprint(w) {
						t.Errorf("%v: entitlement %v, one by one %v", s, g, w)
					}
					if g, w := keys(store.Ledger(s)), keys(ref.Ledger(s)); g != w {
						t.Errorf("%v: ledger %s, one by one %s", s, g, w)
					}
				}
				deleted := q.deletedHandles()
				for i, rc := range c.receives {
					for j := range rc {
						// Everything here is done (applied, a duplicate, or
						// rejected: no dead-letter queue, so a rejection stays).
						isDone := got[index(c.receives, i, j)] == "APPLIED" || got[index(c.receives, i, j)] == "DUPLICATE"
						if deleted[handle(i, j)] != isDone {
							t.Errorf("message %d of receive %d (%s): deleted %v", j, i, got[index(c.receives, i, j)], deleted[handle(i, j)])
						}
					}
				}
			})
		}
	}
}

func index(receives [][]msg, i, j int) int {
	n := 0
	for k := range i {
		n += len(receives[k])
	}
	return n + j
}

func keys(entries []usage.LedgerEntry) string {
	s := make([]string, len(entries))
	for i, e := range entries {
		s[i] = e.DedupKey + "=" + e.Amount.String() + "@" + e.PeriodStart
	}
	return strings.Join(s, ",")
}

// TestOneEntitlementsEventsFromManyReceivesAreOneUpdate: within the
// window, the events of an entitlement from several receives are decided
// in one Store.Update call, in arrival order; another entitlement's in
// its own.
func TestOneEntitlementsEventsFromManyReceivesAreOneUpdate(t *testing.T) {
	receives := [][]msg{
		{{"a1", ev("u", "1", ""), 1}, {"b1", ev("v", "1", ""), 1}},
		{{"a2", ev("u", "1", ""), 1}},
		{{"a3", ev("u", "1", ""), 1}, {"b2", ev("v", "1", ""), 1}},
	}
	_, _, rec, _ := runCoalesced(t, coalesceRun{window: time.Hour}, receives)
	if got := fmt.Sprint(rec.callsOf(scopeU)); got != "[[a1 a2 a3]]" {
		t.Errorf("u's Update calls: %s, want one call with a1 a2 a3", got)
	}
	if got := fmt.Sprint(rec.callsOf(scopeV)); got != "[[b1 b2]]" {
		t.Errorf("v's Update calls: %s, want one call with b1 b2", got)
	}
}

// TestAnEntitlementInFlightHoldsItsLaterEvents: with no window, a receive
// is decided at once, except for the events of an entitlement whose
// earlier batch is still being decided: those wait for it and are then
// decided together, in order. Two pollers, so that receives really
// overlap the batch in flight.
func TestAnEntitlementInFlightHoldsItsLaterEvents(t *testing.T) {
	var receives [][]msg
	for i := range 12 {
		receives = append(receives, []msg{{fmt.Sprintf("a%02d", i), ev("u", "0.25", ""), 1}, {fmt.Sprintf("b%02d", i), ev("v", "0.25", ""), 1}})
	}
	_, store, rec, _ := runCoalesced(t, coalesceRun{window: 0, hold: 20 * time.Millisecond, pollers: 1, drain: true}, receives)
	for _, s := range []usage.Scope{scopeU, scopeV} {
		calls := rec.callsOf(s)
		var order []string
		for _, c := range calls {
			order = append(order, c...)
		}
		prefix := map[usage.Scope]string{scopeU: "a", scopeV: "b"}[s]
		for i, id := range order {
			if want := fmt.Sprintf("%s%02d", prefix, i); id != want {
				t.Fatalf("%v: records decided in the order %v", s, order)
			}
		}
		if len(calls) >= len(receives) {
			t.Errorf("%v: %d Update calls for %d receives: nothing coalesced behind the batch in flight", s, len(calls), len(receives))
		}
	}
	if got := store.Entitlement(scopeU).Get(usage.AttrUsed); got.Num.Cmp(usage.MustDecimal("3")) != 0 {
		t.Errorf("u used %v, want 3", got)
	}
}

// TestAQuietEntitlementIsDecidedWhenItsWindowEnds: a lone message is not
// kept waiting for company beyond the window: it is decided and deleted
// while the worker keeps running.
func TestAQuietEntitlementIsDecidedWhenItsWindowEnds(t *testing.T) {
	got, _, _, q := runCoalesced(t, coalesceRun{window: 30 * time.Millisecond, drain: true}, [][]msg{{{"m1", ev("u", "1", ""), 1}}})
	if got[0] != "APPLIED" || !q.deletedHandles()[handle(0, 0)] {
		t.Errorf("outcome %v, deleted %v", got, q.deletedHandles())
	}
}

// blockingStore blocks Update calls of one scope until unblocked, and
// reports every other call.
type blockingStore struct {
	inner   metering.Updater
	block   usage.Scope
	unblock chan struct{}
	calls   chan []string
}

func (s blockingStore) Update(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome {
	if scope == s.block {
		<-s.unblock
	} else {
		ids := make([]string, len(records))
		for i, r := range records {
			ids[i] = r.MessageID
		}
		s.calls <- ids
	}
	return s.inner.Update(ctx, scope, records, decide)
}

// TestReleaseEarlyFreesAnEntitlementBeforeItsBatchEnds: with ReleaseEarly
// around the store, an entitlement decided in a batch takes its next
// events into a new batch while another entitlement of the first batch
// is still being written.
func TestReleaseEarlyFreesAnEntitlementBeforeItsBatchEnds(t *testing.T) {
	store := memstore.New()
	seed(store)
	bs := blockingStore{inner: store, block: scopeU, unblock: make(chan struct{}), calls: make(chan []string, 10)}
	q := newScriptedQueue()
	w := &sqs.Worker{Client: q, QueueURL: "http://sqs.local/000000000000/q", Handler: processor(sqs.ReleaseEarly(bs)), Pollers: 1}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	msgOf := func(id, body string) sqstypes.Message {
		return sqstypes.Message{MessageId: aws.String(id), Body: aws.String(body), ReceiptHandle: aws.String("rh-" + id)}
	}
	q.receives <- []sqstypes.Message{msgOf("u1", ev("u", "1", "")), msgOf("v1", ev("v", "1", ""))}
	if got := <-bs.calls; fmt.Sprint(got) != "[v1]" {
		t.Fatalf("first call %v", got)
	}
	q.receives <- []sqstypes.Message{msgOf("v2", ev("v", "1", ""))}
	select {
	case got := <-bs.calls:
		if fmt.Sprint(got) != "[v2]" {
			t.Errorf("second call %v, want v2", got)
		}
	case <-time.After(10 * time.Second):
		t.Error("v2 waited for u's write in the first batch")
	}
	close(bs.unblock)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
