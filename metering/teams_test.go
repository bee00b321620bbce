package metering_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/usage-event-service/usage-event-service/internal/dev/memstore"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// countingStore counts commits and entitlement reads (the Processor
// observes a batch's scopes several at once).
type countingStore struct {
	*memstore.Store
	commits, observes atomic.Int32
}

func (s *countingStore) Commit(ctx context.Context, sc usage.Scope, p usage.Plan) error {
	s.commits.Add(1)
	return s.Store.Commit(ctx, sc, p)
}

func (s *countingStore) Observe(ctx context.Context, sc usage.Scope, consistent bool) (usage.State, error) {
	s.observes.Add(1)
	return s.Store.Observe(ctx, sc, consistent)
}

func poolOf(m *memstore.Store, members int, capLimit string) {
	m.PutEntitlement(usage.PoolScope("p", "k"), map[string]usage.Value{usage.AttrLimit: usage.NumberValue(usage.MustDecimal("10"))})
	for i := range members {
		m.PutEntitlement(usage.Scope{UserID: fmt.Sprint("m", i), EntitlementKey: "k"}, map[string]usage.Value{
			usage.AttrLimit: usage.NumberValue(usage.MustDecimal(capLimit)), usage.AttrPool: usage.StringValue("p")})
	}
}

// A batch of several members of one pool is one write, decided in
// message order as one at a time: the pool's limit refuses the message
// that one-at-a-time processing in that order would.
func TestMembersOfOnePoolInABatchAreOneWrite(t *testing.T) {
	s := &countingStore{Store: memstore.New()}
	poolOf(s.Store, 4, "4")
	p := &metering.Processor{Store: metering.Writer{Store: s}}
	var msgs []pipeline.Message
	for i, m := range []int{0, 1, 2, 0, 3, 1, 2, 0} {
		msgs = append(msgs, msg(fmt.Sprint(i), body(fmt.Sprint("m", m), "k", 2)))
	}
	got := p.Handle(context.Background(), msgs)
	// Caps of 4 and a pool of 10: five consumes of 2 fit; m0's third is
	// over its cap, and m1's second is the sixth of the pool's.
	if want := "APPLIED APPLIED APPLIED APPLIED APPLIED POOL_LIMIT_EXCEEDED POOL_LIMIT_EXCEEDED LIMIT_EXCEEDED"; statusText(got) != want {
		t.Errorf("got %s, want %s", statusText(got), want)
	}
	if s.commits.Load() != 1 || s.observes.Load() != 5 {
		t.Errorf("%d commits and %d reads: want one write, after one read of each member and of the pool", s.commits.Load(), s.observes.Load())
	}
	if used := s.Entitlement(usage.PoolScope("p", "k")).Get(usage.AttrUsed).Num; used.String() != "10" {
		t.Errorf("the pool's used is %s, want 10", used)
	}
}

// Scopes of one key that share no pool are read once each, as before.
func TestScopesOfOneKeyWithoutAPoolAreReadOnce(t *testing.T) {
	s := &countingStore{Store: memstore.New()}
	for _, u := range []string{"a", "b"} {
		s.PutEntitlement(usage.Scope{UserID: u, EntitlementKey: "k"}, nil)
	}
	p := &metering.Processor{Store: metering.Writer{Store: s}}
	got := p.Handle(context.Background(), []pipeline.Message{msg("1", body("a", "k", 1)), msg("2", body("b", "k", 1)), msg("3", body("a", "k", 1))})
	if statusText(got) != "APPLIED APPLIED APPLIED" || s.observes.Load() != 2 || s.commits.Load() != 2 {
		t.Errorf("got %s after %d reads and %d commits; want 2 and 2", statusText(got), s.observes.Load(), s.commits.Load())
	}
}
