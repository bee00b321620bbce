package usage_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/dev/memstore"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/usage"
)

// teamStore counts the commits that wrote several members at once.
type teamStore struct {
	*memstore.Store
	teamCommits *int
}

func (s teamStore) Commit(ctx context.Context, scope usage.Scope, p usage.Plan) error {
	err := s.Store.Commit(ctx, scope, p)
	seen := map[usage.Scope]bool{}
	for _, w := range p.Writes {
		if w.Target.Kind == usage.EntitlementKind && !w.Target.Scope.Pool && w.Target.Scope != (usage.Scope{}) {
			seen[w.Target.Scope] = true
		}
	}
	if err == nil && len(seen) > 1 {
		*s.teamCommits++
	}
	return err
}

func teamRules(now time.Time) usage.DecideTeam {
	return func(m map[usage.Scope]usage.State, pools usage.State, r []usage.Record) usage.TeamPlan {
		return usage.Rules{Now: now, Notify: &usage.Notify{Thresholds: []usage.Decimal{dec("50")}, LimitRejected: true}}.PlanTeam(m, pools, r)
	}
}

// TestTeamsEqualOneByOne: records of several members of one pool,
// interleaved (consumes, reserves, refunds, commits and releases, with
// caps, the pool's limit, resets of either and members moved between
// pools), decided as a team give the outcomes, items, ledgers and
// notifications of one at a time in the same order.
func TestTeamsEqualOneByOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(22, 6))
	counts := map[string]int{}
	teamCommits := 0
	for i := range 800 {
		grouped, single := memstore.New(), memstore.New()
		for _, m := range []*memstore.Store{grouped, single} {
			randomTeam(rand.New(rand.NewPCG(uint64(i), 1)), m)
		}
		w := metering.Writer{Store: teamStore{grouped, &teamCommits}}
		clock := now
		for step := range 6 {
			if rng.IntN(4) == 0 {
				clock = clock.Add(time.Duration(rng.IntN(40*24)) * time.Hour)
			}
			if rng.IntN(6) == 0 {
				moveAMember(rng, counts, grouped, single)
			}
			recs := interleaved(rng, fmt.Sprint(step))
			observed := map[usage.Scope]usage.State{}
			for _, r := range recs {
				st, err := grouped.Observe(context.Background(), r.Event.Scope(), false)
				if err != nil {
					t.Fatal(err)
				}
				observed[r.Event.Scope()] = st
			}
			got := w.UpdateTeam(context.Background(), observed, recs, teamRules(clock), poolRules(clock))
			if err := equalOneByOne(single, recs, got, clock, counts); err != "" {
				t.Fatalf("case %d step %d: %s", i, step, err)
			}
		}
		if a, b := teamText(grouped), teamText(single); a != b {
			t.Fatalf("case %d: the team ends at\n%s\none by one at\n%s", i, a, b)
		}
	}
	t.Log(counts, "team commits:", teamCommits)
	for _, k := range []string{"APPLIED  ", "REJECTED LIMIT_EXCEEDED ", "REJECTED POOL_LIMIT_EXCEEDED ", "APPLIED  refund", "APPLIED  release", "APPLIED  commit", "moved"} {
		if counts[k] < 30 {
			t.Errorf("only %d cases of %q: the test exercises too little (%v)", counts[k], k, counts)
		}
	}
	if teamCommits < 500 {
		t.Errorf("only %d commits wrote several members at once", teamCommits)
	}
}

// interleaved is random records of two or three members (whose keys are
// named alike: each is its member's), merged in a random order that
// keeps each member's.
func interleaved(rng *rand.Rand, step string) []usage.Record {
	var queues [][]usage.Record
	for _, u := range members {
		if rng.IntN(4) == 0 {
			continue
		}
		queues = append(queues, randomMemberRecords(rng, u, step))
	}
	var out []usage.Record
	for len(queues) > 0 {
		k := rng.IntN(len(queues))
		out = append(out, queues[k][0])
		if queues[k] = queues[k][1:]; len(queues[k]) == 0 {
			queues = append(queues[:k], queues[k+1:]...)
		}
	}
	return out
}
