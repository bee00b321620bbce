package metering_test

import (
	"context"
	"errors"
	"testing"

	"github.com/usage-event-service/usage-event-service/internal/dev/memstore"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/usage"
)

// The protocol is tested here once, over a memory store whose commits a
// test can refuse: what each kind of refusal leads to.

var scope = usage.Scope{UserID: "u", EntitlementKey: "k"}

// scripted is a memory store whose first commits return the given errors
// instead of committing; it counts what the protocol asked of it.
type scripted struct {
	*memstore.Store
	refusals             []error
	commits, consistent  int
	forgotten, remembers int
}

func (s *scripted) Commit(ctx context.Context, sc usage.Scope, p usage.Plan) error {
	s.commits++
	if len(s.refusals) > 0 {
		err := s.refusals[0]
		s.refusals = s.refusals[1:]
		return err
	}
	return s.Store.Commit(ctx, sc, p)
}

func (s *scripted) Observe(ctx context.Context, sc usage.Scope, consistent bool) (usage.State, error) {
	if consistent {
		s.consistent++
	}
	return s.Store.Observe(ctx, sc, consistent)
}

func (s *scripted) Forget(usage.Scope)                { s.forgotten++ }
func (s *scripted) Remember(usage.Scope, usage.State) { s.remembers++ }

func consume(id string) usage.Record {
	return usage.Record{Event: usage.NewEvent(scope.UserID, scope.EntitlementKey), MessageID: id}
}

func newScripted(refusals ...error) *scripted {
	m := memstore.New()
	m.PutEntitlement(scope, map[string]usage.Value{usage.AttrLimit: usage.NumberValue(usage.MustDecimal("10"))})
	return &scripted{Store: m, refusals: refusals}
}

func statuses(out []usage.Outcome) []usage.Status {
	s := make([]usage.Status, len(out))
	for i, o := range out {
		s[i] = o.Status
	}
	return s
}

func TestTheProtocol(t *testing.T) {
	outage := errors.New("connection reset")
	invalid := &usage.Refusal{Invalid: true}
	contention := &usage.Refusal{}
	item := usage.Item{Exists: true, Attrs: map[string]usage.Value{usage.AttrLimit: usage.NumberValue(usage.MustDecimal("10"))}}
	changed := &usage.Refusal{Learned: usage.Learned{Entitlement: &item}}
	tests := []struct {
		name           string
		refusals       []error
		records        int
		maxAttempts    int
		want           usage.Status
		wantErr        error
		commits        int
		consistentRead int
		forgotten      int
	}{
		{name: "a commit is final", records: 2, want: usage.Applied, commits: 1},
		{name: "an unknown outcome is RETRY and forgets the cache", refusals: []error{outage}, records: 1,
			want: usage.Retry, wantErr: outage, commits: 1, forgotten: 1},
		{name: "contention backs off and tries again", refusals: []error{contention, contention}, records: 1,
			want: usage.Applied, commits: 3},
		{name: "endless contention is RETRY after the attempts", refusals: []error{contention, contention, contention}, records: 1,
			maxAttempts: 3, want: usage.Retry, wantErr: metering.ErrContention, commits: 3},
		{name: "an invalid write is read again consistently, then decided again", refusals: []error{invalid}, records: 2,
			want: usage.Applied, commits: 2, consistentRead: 1, forgotten: 1},
		{name: "invalid twice falls back to one event at a time", refusals: []error{invalid, invalid}, records: 2,
			want: usage.Applied, commits: 4, consistentRead: 1, forgotten: 2},
		{name: "invalid alone, twice, is RETRY with its cause", refusals: []error{invalid, invalid}, records: 1,
			want: usage.Retry, wantErr: metering.ErrInvalidWrite, commits: 2, consistentRead: 1, forgotten: 2},
		{name: "a group refused three times on a changed item is decided one record at a time", refusals: []error{changed, changed, changed}, records: 2,
			want: usage.Applied, commits: 5, forgotten: 1},
		{name: "a lone record refused on a changed item keeps deciding", refusals: []error{changed, changed, changed}, records: 1,
			want: usage.Applied, commits: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScripted(tt.refusals...)
			var records []usage.Record
			for i := range tt.records {
				records = append(records, consume(string(rune('a'+i))))
			}
			out := metering.Writer{Store: s, MaxAttempts: tt.maxAttempts}.Update(context.Background(), scope, records, usage.Rules{}.Plan)
			for i, o := range out {
				if o.Status != tt.want || tt.wantErr != nil && !errors.Is(o.Err, tt.wantErr) {
					t.Errorf("record %d: %s %v, want %s %v", i, o.Status, o.Err, tt.want, tt.wantErr)
				}
			}
			if s.commits != tt.commits || s.consistent != tt.consistentRead || s.forgotten != tt.forgotten {
				t.Errorf("commits %d, consistent reads %d, forgotten %d; want %d, %d, %d",
					s.commits, s.consistent, s.forgotten, tt.commits, tt.consistentRead, tt.forgotten)
			}
		})
	}
}

// A refusal that teaches the current item is decided again on it: the
// second decision sees the limit reached.
func TestARefusalTeachesTheCurrentItem(t *testing.T) {
	s := newScripted()
	w := metering.Writer{Store: s}
	full := usage.Item{Exists: true, Attrs: map[string]usage.Value{
		usage.AttrLimit: usage.NumberValue(usage.MustDecimal("10")), usage.AttrUsed: usage.NumberValue(usage.MustDecimal("10"))}}
	s.PutEntitlement(scope, full.Attrs)
	s.refusals = []error{&usage.Refusal{Learned: usage.Learned{Entitlement: &full}}}
	out := w.Update(context.Background(), scope, []usage.Record{consume("a")}, usage.Rules{}.Plan)
	if len(out) != 1 || out[0].Reason() != usage.ReasonLimitExceeded {
		t.Errorf("got %v, want LIMIT_EXCEEDED", statuses(out))
	}
}

// A rejection that writes nothing is confirmed by Verify and remembered;
// a plan with only known duplicates writes and verifies nothing.
func TestRejectionsAreVerified(t *testing.T) {
	s := newScripted()
	w := metering.Writer{Store: s}
	over := consume("big")
	over.Event.Amount = usage.MustDecimal("11")
	if out := w.Update(context.Background(), scope, []usage.Record{over}, usage.Rules{}.Plan); out[0].Reason() != usage.ReasonLimitExceeded {
		t.Fatalf("got %v", statuses(out))
	}
	if s.commits != 0 || s.remembers != 1 {
		t.Errorf("commits %d, remembers %d: want the rejection verified by reads and remembered", s.commits, s.remembers)
	}
}

// snapshotStore's Verify finds the item changed, read as a snapshot.
type snapshotStore struct {
	*scripted
	now      usage.Item
	verifies int
}

func (s *snapshotStore) Verify(_ context.Context, _ usage.Scope, _ usage.Plan) (usage.Learned, bool, error) {
	s.verifies++
	return usage.Learned{Entitlement: &s.now, Absent: map[string]bool{"big": true}, Snapshot: true}, false, nil
}

// A rejection whose confirmation finds the item changed is decided again
// on what the snapshot read: still a rejection, it is final; now a
// write, it is written.
func TestARejectionIsFinalOnASnapshot(t *testing.T) {
	over := consume("big")
	over.Event.Amount = usage.MustDecimal("11")
	for _, tt := range []struct {
		limit, want string
		verifies    int
		commits     int
	}{{"10", "LIMIT_EXCEEDED", 1, 0}, {"20", "APPLIED", 1, 1}} {
		s := &snapshotStore{scripted: newScripted(), now: usage.Item{Exists: true, Attrs: map[string]usage.Value{
			usage.AttrLimit: usage.NumberValue(usage.MustDecimal(tt.limit)), usage.AttrUsed: usage.NumberValue(usage.MustDecimal("0"))}}}
		s.PutEntitlement(scope, map[string]usage.Value{usage.AttrLimit: usage.NumberValue(usage.MustDecimal(tt.limit))})
		got := metering.Writer{Store: s}.Update(context.Background(), scope, []usage.Record{over},
			func(st usage.State, r []usage.Record) usage.Plan {
				if st.Entitlement.Observed.Get(usage.AttrUsed).Present() {
					return usage.Rules{}.Plan(st, r)
				}
				// The first decision, on a state that has not seen the
				// snapshot: over any limit.
				st.Entitlement.Limit = ptr(usage.MustDecimal("1"))
				return usage.Rules{}.Plan(st, r)
			})
		text := string(got[0].Status)
		if got[0].Status == usage.Rejected {
			text = string(got[0].Reason())
		}
		if text != tt.want || s.verifies != tt.verifies || s.commits != tt.commits {
			t.Errorf("limit %s: got %s after %d verifies and %d commits, want %s after %d and %d", tt.limit, text, s.verifies, s.commits, tt.want, tt.verifies, tt.commits)
		}
	}
}

func ptr[T any](v T) *T { return &v }
