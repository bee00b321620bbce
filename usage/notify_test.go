package usage_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/dev/memstore"
	"github.com/usage-event-service/usage-event-service/usage"
)

var defaults = &usage.Notify{Thresholds: []usage.Decimal{dec("80"), dec("100")}, LimitRejected: true}

func notified(s *memstore.Store) string {
	var out []string
	for _, n := range s.Notifications(usage.Scope{UserID: "u", EntitlementKey: "k"}) {
		t := "rejected"
		if n.ThresholdPercent != nil {
			t = n.ThresholdPercent.String()
		}
		out = append(out, fmt.Sprintf("%s:%s@%s by %s", n.PeriodStart[:min(len(n.PeriodStart), 7)], t, n.Used, n.EventID))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func TestNotifications(t *testing.T) {
	scope := usage.Scope{UserID: "u", EntitlementKey: "k"}
	monthly := func(limit, used string, extra ...usage.Value) map[string]usage.Value {
		m := map[string]usage.Value{usage.AttrLimit: num(limit), usage.AttrUsed: num(used),
			usage.AttrResetPeriod: usage.StringValue("MONTHLY"), usage.AttrPeriodStart: usage.StringValue("2026-11-01T00:00:00Z")}
		if len(extra) > 0 {
			m[usage.AttrNotifyThresholds] = extra[0]
		}
		return m
	}
	december := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	type step struct {
		records []usage.Record
		at      time.Time
	}
	tests := []struct {
		name   string
		item   map[string]usage.Value
		notify *usage.Notify
		steps  []step
		want   string
	}{
		{"crossing 80 % notifies once", monthly("10", "7"), defaults,
			[]step{{records: []usage.Record{keyed("a", "a", "1")}}, {records: []usage.Record{keyed("b", "b", "0.5")}}}, "2026-11:80@8 by a"},
		{"one write crossing 80 and 100 notifies both, with the used after it", monthly("10", "7"), defaults,
			[]step{{records: []usage.Record{keyed("a", "a", "2"), keyed("b", "b", "1")}}}, "2026-11:100@10 by b 2026-11:80@9 by a"},
		{"already above a threshold: nothing", monthly("10", "9"), defaults,
			[]step{{records: []usage.Record{keyed("a", "a", "0.5")}}}, ""},
		{"unlimited entitlements have no thresholds", map[string]usage.Value{usage.AttrUsed: num("0")}, defaults,
			[]step{{records: []usage.Record{keyed("a", "a", "100")}}}, ""},
		{"empty default thresholds", monthly("10", "7"), &usage.Notify{},
			[]step{{records: []usage.Record{keyed("a", "a", "3")}}}, ""},
		{"nothing without notifications configured", monthly("10", "7"), nil,
			[]step{{records: []usage.Record{keyed("a", "a", "3"), keyed("b", "b", "1")}}}, ""},
		{"an entitlement's own thresholds", monthly("10", "0", usage.Value{Kind: usage.KindOther, Nums: []usage.Decimal{dec("50"), dec("90")}}), defaults,
			[]step{{records: []usage.Record{keyed("a", "a", "5")}}, {records: []usage.Record{keyed("b", "b", "4")}}}, "2026-11:50@5 by a 2026-11:90@9 by b"},
		{"a threshold listed twice is one", monthly("10", "0", usage.Value{Kind: usage.KindOther, Nums: []usage.Decimal{dec("50"), dec("50.0"), dec("50")}}), defaults,
			[]step{{records: []usage.Record{keyed("a", "a", "6")}}}, "2026-11:50@6 by a"},
		{"an entitlement's empty list turns thresholds off", monthly("10", "0", usage.Value{Kind: usage.KindOther, Nums: []usage.Decimal{}}), defaults,
			[]step{{records: []usage.Record{keyed("a", "a", "10")}}}, ""},
		{"a refund below and a crossing again notify nothing new", monthly("10", "7"), defaults,
			[]step{{records: []usage.Record{keyed("a", "a", "2")}}, {records: []usage.Record{refundOf("r", "a", "2")}}, {records: []usage.Record{keyed("b", "b", "2")}}},
			"2026-11:80@9 by a"},
		{"a new period re-arms every threshold", monthly("10", "7"), defaults,
			[]step{{records: []usage.Record{keyed("a", "a", "2")}}, {records: []usage.Record{keyed("b", "b", "8")}, at: december}},
			"2026-11:80@9 by a 2026-12:80@8 by b"},
		{"the first LIMIT_EXCEEDED of a period, once under a flood", monthly("10", "9"), defaults,
			[]step{{records: []usage.Record{keyed("a", "a", "2"), keyed("b", "b", "3")}}, {records: []usage.Record{keyed("c", "c", "5")}}},
			"2026-11:rejected@9 by a"},
		{"limit rejections are not notified when turned off", monthly("10", "9"), &usage.Notify{Thresholds: defaults.Thresholds},
			[]step{{records: []usage.Record{keyed("a", "a", "2")}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := memstore.New()
			s.PutEntitlement(scope, tt.item)
			for _, st := range tt.steps {
				at := st.at
				if at.IsZero() {
					at = now
				}
				s.Update(context.Background(), scope, st.records, usage.Rules{Now: at, Notify: tt.notify}.Plan)
			}
			if got := notified(s); got != tt.want {
				t.Errorf("notified %q, want %q", got, tt.want)
			}
		})
	}
}

func refundOf(key, target, amount string) usage.Record {
	r := keyed(key, key, amount)
	r.Event.Operation, r.Event.RefundOf = usage.OperationRefund, target
	return r
}

// TestNotificationsEqualOneByOne: decided in a group or one record at a
// time, the same thresholds are crossed by the same events, and the same
// period's first rejection is recorded.
func TestNotificationsEqualOneByOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	scope := usage.Scope{UserID: "u", EntitlementKey: "k"}
	rules := usage.Rules{Now: now, Notify: &usage.Notify{Thresholds: []usage.Decimal{dec("25"), dec("50"), dec("80"), dec("100")}, LimitRejected: true}}
	crossings := 0
	for i := range 1000 {
		attrs := map[string]usage.Value{usage.AttrLimit: num(fmt.Sprint(4 + rng.IntN(12))), usage.AttrUsed: num(fmt.Sprint(rng.IntN(4)))}
		var recs []usage.Record
		for j := range 1 + rng.IntN(12) {
			r := keyed(fmt.Sprint("m", j), fmt.Sprint("k", rng.IntN(8)), fmt.Sprint(1+rng.IntN(4)))
			if rng.IntN(4) == 0 {
				r = refundOf(fmt.Sprint("r", rng.IntN(6)), fmt.Sprint("k", rng.IntN(8)), "1")
			}
			recs = append(recs, r)
		}
		group, single := memstore.New(), memstore.New()
		group.PutEntitlement(scope, attrs)
		single.PutEntitlement(scope, attrs)
		group.Update(context.Background(), scope, recs, rules.Plan)
		for _, r := range recs {
			single.Update(context.Background(), scope, []usage.Record{r}, rules.Plan)
		}
		g, s := keysAndEvents(group), keysAndEvents(single)
		if g != s {
			t.Fatalf("case %d: a group records %q, one by one %q", i, g, s)
		}
		crossings += strings.Count(g, "threshold")
	}
	if crossings < 300 {
		t.Errorf("only %d threshold notifications: the test exercises too little", crossings)
	}
}

func keysAndEvents(s *memstore.Store) string {
	var out []string
	for k, n := range s.Notifications(usage.Scope{UserID: "u", EntitlementKey: "k"}) {
		out = append(out, k+" by "+n.EventID)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func num(s string) usage.Value { return usage.NumberValue(dec(s)) }
