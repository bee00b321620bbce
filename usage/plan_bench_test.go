package usage_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

// batch builds the bodies and message IDs of one SQS batch of 20 events,
// in the wire form producers send: scopeOf(i) picks each event's scope.
func batch(scopeOf func(i int) usage.Scope) (bodies [][]byte, ids []string) {
	amounts := []string{"1", "1", "2", "0.5", "3"}
	for i := 0; i < 20; i++ {
		s := scopeOf(i)
		ev := usage.NewEvent(s.UserID, s.EntitlementKey)
		ev.Amount = usage.MustDecimal(amounts[i%len(amounts)])
		if i%2 == 0 {
			ev.IdempotencyKey = fmt.Sprintf("evt-%08d-7f3a-4c1e-9b2d-%012d", i, i)
		}
		ev.Metadata = []byte(`{"feature":"chat","requestId":"0b7e4c9a-5d21-4f3e-8a6b-1c2d3e4f5a6b"}`)
		body, err := ev.MarshalJSON()
		if err != nil {
			panic(err)
		}
		bodies = append(bodies, body)
		ids = append(ids, fmt.Sprintf("6f1c2e3d-4b5a-4978-8e6f-%012d", i))
	}
	return bodies, ids
}

// BenchmarkBatch20 is the CPU work of one invocation before and between
// its DynamoDB requests: parse and validate 20 message bodies, group them
// by (user, entitlement) as metering.Processor does, and plan each group
// against its entitlement with PlanUsage. No I/O.
func BenchmarkBatch20(b *testing.B) {
	state := usage.State{Entitlement: usage.ParseEntitlement(usage.Item{Exists: true, Attrs: map[string]usage.Value{
		usage.AttrLimit: usage.NumberValue(usage.MustDecimal("1000000")), usage.AttrUsed: usage.NumberValue(usage.MustDecimal("41.5")),
		usage.AttrResetPeriod: usage.StringValue("MONTHLY"), usage.AttrResetAnchor: usage.StringValue("2026-01-15T00:00:00Z"),
		usage.AttrPeriodStart: usage.StringValue("2026-11-15T00:00:00Z"),
	}})}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	scope := func(u, e int) usage.Scope {
		return usage.Scope{UserID: fmt.Sprintf("user-%05d", u), EntitlementKey: []string{"AI_TUTOR_ACCESS", "API_CALLS"}[e]}
	}
	cases := []struct {
		name    string
		scopeOf func(i int) usage.Scope
	}{
		// Every event a different entitlement: 20 groups of one.
		{"distinct", func(i int) usage.Scope { return scope(100+i, i%2) }},
		// The bench's default shape: half the events from 2 hot users.
		{"hot", func(i int) usage.Scope {
			if i%2 == 0 {
				return scope(i/2%2, i/4%2)
			}
			return scope(100+i, i%2)
		}},
		// One entitlement: one group of 20.
		{"single", func(int) usage.Scope { return scope(1, 0) }},
	}
	for _, c := range cases {
		bodies, ids := batch(c.scopeOf)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			groups := 0
			for b.Loop() {
				byScope := map[usage.Scope][]usage.Record{}
				var order []usage.Scope
				for i, body := range bodies {
					ev, err := usage.ParseEvent(body)
					if err != nil {
						b.Fatal(err)
					}
					s := ev.Scope()
					if _, ok := byScope[s]; !ok {
						order = append(order, s)
					}
					byScope[s] = append(byScope[s], usage.Record{Event: ev, MessageID: ids[i]})
				}
				for _, s := range order {
					p := usage.PlanUsage(state, byScope[s], now)
					if p.Outcomes[0].Status != usage.Applied {
						b.Fatal("nothing applied")
					}
				}
				groups = len(order)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/20, "ns/event")
			b.ReportMetric(float64(groups), "groups")
		})
	}
}
