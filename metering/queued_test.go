package metering_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/dev/memstore"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// The queued use case: parse, group by scope, apply through the write
// path (the middlewares around it are pipeline's, tested there).

// memoryStore is memstore's in-memory Store (which passes the same
// contract suite as the DynamoDB store), recording the message IDs of
// each Update call, for tests of batching logic.
type memoryStore struct {
	*memstore.Store
	mu    sync.Mutex
	calls [][]string // message IDs per Update call
}

func newMemoryStore() *memoryStore { return &memoryStore{Store: memstore.New()} }

func (m *memoryStore) Update(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome {
	var ids []string
	for _, r := range records {
		ids = append(ids, r.MessageID)
	}
	m.mu.Lock()
	m.calls = append(m.calls, ids)
	m.mu.Unlock()
	return m.Store.Update(ctx, scope, records, decide)
}

func msg(id, body string) pipeline.Message {
	return pipeline.Message{ID: id, Body: body, ReceiveCount: 1}
}

func body(user, key string, amount int) string {
	return fmt.Sprintf(`{"userId":%q,"entitlementKey":%q,"amount":%d}`, user, key, amount)
}

func statusText(rs []pipeline.Result) string {
	var s []string
	for _, r := range rs {
		if r.Status == usage.Rejected {
			s = append(s, string(r.Reason()))
		} else {
			s = append(s, string(r.Status))
		}
	}
	return strings.Join(s, " ")
}

func TestProcessorGroupsByEntitlementInMessageOrder(t *testing.T) {
	store := newMemoryStore()
	limit := usage.MustDecimal("2")
	store.PutEntitlement(usage.Scope{UserID: "a", EntitlementKey: "k"}, map[string]usage.Value{usage.AttrLimit: usage.NumberValue(limit)})
	store.PutEntitlement(usage.Scope{UserID: "b", EntitlementKey: "k"}, nil)
	p := &metering.Processor{Store: store}
	got := p.Handle(context.Background(), []pipeline.Message{
		msg("1", body("a", "k", 1)), msg("2", body("b", "k", 5)), msg("3", `{"userId":"a"}`),
		msg("4", body("a", "k", 1)), msg("5", body("a", "k", 1)), msg("6", body("c", "k", 1)),
	})
	if want := "APPLIED APPLIED MISSING_FIELD APPLIED LIMIT_EXCEEDED ENTITLEMENT_NOT_FOUND"; statusText(got) != want {
		t.Errorf("got %s, want %s", statusText(got), want)
	}
	for i, r := range got {
		if r.MessageID != fmt.Sprint(i+1) {
			t.Errorf("result %d is for message %s", i, r.MessageID)
		}
	}
	calls := map[string]bool{}
	for _, c := range store.calls {
		calls[strings.Join(c, ",")] = true
	}
	for _, want := range []string{"1,4,5", "2", "6"} {
		if !calls[want] {
			t.Errorf("no single Update call for messages %s; calls were %v", want, store.calls)
		}
	}
}

func TestAReplayKeepsTheFirstDeliverysIDAsDedupKey(t *testing.T) {
	store := newMemoryStore()
	store.PutEntitlement(usage.Scope{UserID: "a", EntitlementKey: "k"}, nil)
	p := &metering.Processor{Store: store}
	first := p.Handle(context.Background(), []pipeline.Message{{ID: "m-1", Body: body("a", "k", 1)}})
	replay := p.Handle(context.Background(), []pipeline.Message{{ID: "m-2", OriginalID: "m-1", Body: body("a", "k", 1)}})
	if statusText(first)+" "+statusText(replay) != "APPLIED DUPLICATE" {
		t.Errorf("got %s then %s", statusText(first), statusText(replay))
	}
}

func TestProcessorDoesNotStartGroupsTooCloseToTheDeadline(t *testing.T) {
	store := newMemoryStore()
	p := &metering.Processor{Store: store, DeadlineMargin: time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := p.Handle(ctx, []pipeline.Message{msg("1", body("a", "k", 1)), msg("2", "{")})
	if statusText(got) != "RETRY INVALID_JSON" || !errors.Is(got[0].Err, metering.ErrDeadline) {
		t.Errorf("got %s (%v)", statusText(got), got[0].Err)
	}
	if len(store.calls) != 0 {
		t.Errorf("store called %d times", len(store.calls))
	}
}

func TestAPanicApplyingOneScopeRetriesItsMessagesOnly(t *testing.T) {
	store := newMemoryStore()
	for _, u := range []string{"a", "b", "c"} {
		store.PutEntitlement(usage.Scope{UserID: u, EntitlementKey: "k"}, nil)
	}
	p := &metering.Processor{Store: panickingStore{store, usage.Scope{UserID: "b", EntitlementKey: "k"}}, Parallel: 2}
	got := p.Handle(context.Background(), []pipeline.Message{
		msg("1", body("a", "k", 1)), msg("2", body("b", "k", 1)), msg("3", body("c", "k", 1)), msg("4", body("b", "k", 2)), msg("5", "{"),
	})
	if want := "APPLIED RETRY APPLIED RETRY INVALID_JSON"; statusText(got) != want {
		t.Fatalf("got %s, want %s", statusText(got), want)
	}
	var pe *pipeline.PanicError
	if !errors.Is(got[1].Err, pipeline.ErrPanic) || !errors.As(got[3].Err, &pe) {
		t.Fatalf("retry causes %v, %v; want ErrPanic", got[1].Err, got[3].Err)
	}
	if !strings.Contains(pe.Error(), "slice bounds out of range") || !strings.Contains(string(pe.Stack), "panickingStore.Update") {
		t.Errorf("panic %v with stack:\n%s", pe, pe.Stack)
	}
	if ps := pipeline.Panics(got); len(ps) != 1 || ps[0] != pe {
		t.Errorf("Panics = %v, want the one panic of scope b", ps)
	}
	// The process is alive and the store usable: the same batch again.
	again := p.Handle(context.Background(), []pipeline.Message{msg("1", body("a", "k", 1)), msg("6", body("c", "k", 1))})
	if statusText(again) != "DUPLICATE APPLIED" {
		t.Errorf("next batch: %s", statusText(again))
	}
}

// TestProcessorPassesNotifyToTheDecision: with Notify set, the write that
// crosses a threshold records it; without, nothing is recorded.
func TestProcessorPassesNotifyToTheDecision(t *testing.T) {
	for _, notify := range []*usage.Notify{nil, {Thresholds: []usage.Decimal{usage.MustDecimal("50")}, LimitRejected: true}} {
		store := newMemoryStore()
		scope := usage.Scope{UserID: "u", EntitlementKey: "k"}
		store.PutEntitlement(scope, map[string]usage.Value{usage.AttrLimit: usage.NumberValue(usage.MustDecimal("4"))})
		p := &metering.Processor{Store: store, Notify: notify}
		p.Handle(context.Background(), []pipeline.Message{msg("m1", body("u", "k", 2)), msg("m2", body("u", "k", 3))})
		got := store.Notifications(scope)
		want := 0
		if notify != nil {
			want = 2 // 50 % reached, then the period's first LIMIT_EXCEEDED
		}
		if len(got) != want {
			t.Errorf("Notify %v: recorded %v, want %d", notify, got, want)
		}
	}
}

// panickingStore panics for one scope and applies the others.
type panickingStore struct {
	*memoryStore
	scope usage.Scope
}

func (p panickingStore) Update(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome {
	if scope == p.scope {
		var none []usage.Outcome
		return none[:len(records)] // a real runtime panic, not a prepared value
	}
	return p.memoryStore.Update(ctx, scope, records, decide)
}

// TestQueuedGrantsAndVoids: from a queue, a void that overtakes its grant
// waits for it (RETRY) as a refund waits for its consume, and is rejected
// GRANT_NOT_FOUND once older than the wait; a consume in the grant's batch
// already draws from it.
func TestQueuedGrantsAndVoids(t *testing.T) {
	store := newMemoryStore()
	scope := usage.Scope{UserID: "a", EntitlementKey: "k"}
	store.PutEntitlement(scope, map[string]usage.Value{usage.AttrLimit: usage.NumberValue(usage.MustDecimal("2")), usage.AttrUsed: usage.NumberValue(usage.MustDecimal("2"))})
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	p := &metering.Processor{Store: store, TargetWait: 15 * time.Minute, Now: func() time.Time { return now }}
	recent, old := now.Add(-time.Minute), now.Add(-16*time.Minute)
	void := `{"operation":"void","userId":"a","entitlementKey":"k","grantId":"g-1"}`
	got := p.Handle(context.Background(), []pipeline.Message{
		{ID: "1", Body: void, ReceiveCount: 1, SentAt: recent},
		{ID: "2", Body: `{"operation":"grant","userId":"a","entitlementKey":"k","grantId":"g-1","amount":3}`, ReceiveCount: 1, SentAt: recent},
		{ID: "3", Body: body("a", "k", 2), ReceiveCount: 1, SentAt: recent},
		{ID: "4", Body: `{"operation":"void","userId":"a","entitlementKey":"k","grantId":"g-2"}`, ReceiveCount: 4, SentAt: old},
	})
	if want := "RETRY APPLIED APPLIED GRANT_NOT_FOUND"; statusText(got) != want {
		t.Fatalf("got %s, want %s", statusText(got), want)
	}
	if !errors.Is(got[0].Err, usage.ErrTargetPending) {
		t.Errorf("the waiting void's cause: %v", got[0].Err)
	}
	if got := p.Handle(context.Background(), []pipeline.Message{{ID: "1", Body: void, ReceiveCount: 2, SentAt: recent}}); statusText(got) != "APPLIED" {
		t.Errorf("the void redelivered: %s", statusText(got))
	}
	var voided *usage.LedgerEntry
	for _, e := range store.Ledger(scope) {
		if e.DedupKey == "g-1" {
			voided = &e
		}
	}
	if voided == nil || voided.GrantState != usage.GrantVoided || voided.Voided == nil || voided.Voided.String() != "1" {
		t.Errorf("the grant's entry: %+v", voided)
	}
}
