package usage_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

var now = time.Date(2026, 11, 26, 15, 4, 5, 0, time.UTC)

func dec(s string) usage.Decimal { return usage.MustDecimal(s) }
func decp(s string) *usage.Decimal {
	d := dec(s)
	return &d
}
func instant(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func record(id, amount string) usage.Record {
	ev := usage.NewEvent("u", "k")
	ev.Amount = dec(amount)
	return usage.Record{Event: ev, MessageID: id}
}

func keyed(id, key, amount string) usage.Record {
	r := record(id, amount)
	r.Event.IdempotencyKey = key
	return r
}

func statuses(p usage.Plan) string {
	s := ""
	for _, o := range p.Outcomes {
		if s != "" {
			s += " "
		}
		if o.Status == usage.Rejected {
			s += string(o.Reason())
		} else {
			s += string(o.Status)
		}
	}
	return s
}

func TestPlanUsage(t *testing.T) {
	monthly := func(limit, used, periodStart string) usage.Entitlement {
		e := usage.Entitlement{Exists: true, Used: dec(used), ResetPeriod: usage.ResetMonthly, PeriodStart: instant(periodStart)}
		if limit != "" {
			e.Limit = decp(limit)
		}
		return e
	}
	tests := []struct {
		name      string
		ent       usage.Entitlement
		records   []usage.Record
		want      string
		newUsed   string
		reset     bool
		dependsOn bool
	}{
		{"no item", usage.Entitlement{}, []usage.Record{record("a", "1")}, "ENTITLEMENT_NOT_FOUND", "0", false, false},
		{"malformed item", usage.Entitlement{Exists: true, Malformed: fmt.Errorf("limit is text")}, []usage.Record{record("a", "1")}, "INVALID_ENTITLEMENT", "0", false, false},
		{"unlimited counts usage", usage.Entitlement{Exists: true, Used: dec("5"), ResetPeriod: usage.ResetNone}, []usage.Record{record("a", "2.5")}, "APPLIED", "7.5", false, false},
		{"exactly at the limit fits", monthly("10", "9", "2026-11-01T00:00:00Z"), []usage.Record{record("a", "1")}, "APPLIED", "10", false, false},
		{"one over the limit is rejected", monthly("10", "10", "2026-11-01T00:00:00Z"), []usage.Record{record("a", "1")}, "LIMIT_EXCEEDED", "10", false, true},
		{"a smaller later event still fits", monthly("10", "7", "2026-11-01T00:00:00Z"), []usage.Record{record("a", "5"), record("b", "3")}, "LIMIT_EXCEEDED APPLIED", "10", false, true},
		{"prefix of equal amounts", monthly("3", "0", "2026-11-01T00:00:00Z"), []usage.Record{record("a", "1"), record("b", "1"), record("c", "1"), record("d", "1")}, "APPLIED APPLIED APPLIED LIMIT_EXCEEDED", "3", false, true},
		{"new month resets before consuming", monthly("10", "10", "2026-10-01T00:00:00Z"), []usage.Record{record("a", "4")}, "APPLIED", "4", true, false},
		{"first use starts a period", usage.Entitlement{Exists: true, Limit: decp("10"), ResetPeriod: usage.ResetDaily}, []usage.Record{record("a", "1")}, "APPLIED", "1", true, false},
		{"reset then over the limit", monthly("5", "5", "2026-10-01T00:00:00Z"), []usage.Record{record("a", "6")}, "LIMIT_EXCEEDED", "0", true, true},
		{"duplicate key in the batch counts once", monthly("10", "0", "2026-11-01T00:00:00Z"), []usage.Record{keyed("a", "k1", "2"), keyed("b", "k1", "2")}, "APPLIED DUPLICATE", "2", false, false},
		{"same message ID redelivered in the batch", monthly("10", "0", "2026-11-01T00:00:00Z"), []usage.Record{record("a", "2"), record("a", "2")}, "APPLIED DUPLICATE", "2", false, false},
		{"reused key with another amount conflicts", monthly("10", "0", "2026-11-01T00:00:00Z"), []usage.Record{keyed("a", "k1", "2"), keyed("b", "k1", "3")}, "APPLIED IDEMPOTENCY_CONFLICT", "2", false, false},
		{"a rejected key may be applied later in the batch", monthly("3", "0", "2026-11-01T00:00:00Z"), []usage.Record{keyed("a", "k1", "5"), keyed("b", "k1", "1")}, "LIMIT_EXCEEDED APPLIED", "1", false, true},
		{"decimals are exact", monthly("0.3", "0.1", "2026-11-01T00:00:00Z"), []usage.Record{record("a", "0.1"), record("b", "0.1"), record("c", "0.1")}, "APPLIED APPLIED LIMIT_EXCEEDED", "0.3", false, true},
		{"precision overflow is rejected, not rounded", usage.Entitlement{Exists: true, Used: dec("1E+30")}, []usage.Record{record("a", "1E-10")}, "INVALID_AMOUNT", "1E+30", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := usage.PlanUsage(tt.ent, tt.records, now)
			if got := statuses(p); got != tt.want {
				t.Errorf("outcomes %q, want %q", got, tt.want)
			}
			if p.Applied() && p.NewUsed.Cmp(dec(tt.newUsed)) != 0 {
				t.Errorf("new used %s, want %s", p.NewUsed, tt.newUsed)
			}
			if p.Reset != tt.reset {
				t.Errorf("reset %v, want %v", p.Reset, tt.reset)
			}
			if p.DependsOnUsed != tt.dependsOn {
				t.Errorf("DependsOnUsed %v, want %v", p.DependsOnUsed, tt.dependsOn)
			}
		})
	}
}

// TestPlanUsageEqualsOneByOne is the coalescing guarantee: planning a
// group at once gives exactly the outcomes and final usage of planning
// each record alone, in order, against the state the previous one left.
func TestPlanUsageEqualsOneByOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		ent := usage.Entitlement{Exists: true, Used: usage.DecimalFromInt(rng.Int64N(6)), ResetPeriod: usage.ResetNone}
		if rng.IntN(4) > 0 {
			ent.Limit = decp(fmt.Sprint(rng.IntN(12)))
		}
		if rng.IntN(2) == 0 {
			ent.ResetPeriod = usage.ResetDaily
			ent.PeriodStart = instant([]string{"2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z"}[rng.IntN(2)])
		}
		var recs []usage.Record
		for j := range 1 + rng.IntN(20) {
			r := keyed(fmt.Sprint("m", j), fmt.Sprint("k", rng.IntN(8)), fmt.Sprint(1+rng.IntN(4)))
			recs = append(recs, r)
		}
		group := usage.PlanUsage(ent, recs, now)

		state := ent
		applied := map[string]usage.Decimal{}
		for j, r := range recs {
			var want usage.Outcome
			if prev, ok := applied[r.DedupKey()]; ok {
				want = usage.DuplicateOutcome(prev, r.Event.Amount)
			} else {
				p := usage.PlanUsage(state, []usage.Record{r}, now)
				want = p.Outcomes[0]
				if p.Applied() {
					state.Used = p.NewUsed
					if p.Reset {
						ps := p.PeriodStart
						state.PeriodStart = &ps
					}
					applied[r.DedupKey()] = r.Event.Amount
				}
			}
			got := group.Outcomes[j]
			if got.Status != want.Status || got.Reason() != want.Reason() {
				t.Fatalf("case %d record %d: group says %s %s, one by one says %s %s", i, j, got.Status, got.Reason(), want.Status, want.Reason())
			}
		}
		if group.Applied() && group.NewUsed.Cmp(state.Used) != 0 {
			t.Fatalf("case %d: group ends at used %s, one by one at %s", i, group.NewUsed, state.Used)
		}
	}
}
