package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/notify"
	"github.com/usage-event-service/usage-event-service/usage"
)

func TestMessageOfIsTheIssuesJSONWithExactNumbers(t *testing.T) {
	p, amount := usage.MustDecimal("80"), usage.MustDecimal("0.25")
	at := time.Date(2026, 12, 3, 10, 4, 5, 123456789, time.FixedZone("CET", 3600))
	threshold := usage.Notification{ID: "n1", Type: usage.NotifyThresholdReached, UserID: "u1", EntitlementKey: "AI_TUTOR_ACCESS",
		PeriodStart: "2026-12-01T00:00:00Z", ThresholdPercent: &p, Limit: usage.MustDecimal("100.5"), Used: usage.MustDecimal("80.400000000000000000000000000000000001"),
		EventID: "c-1", OccurredAt: at}
	rejected := usage.Notification{ID: "n2", Type: usage.NotifyLimitRejected, UserID: "u1", EntitlementKey: "K", Amount: &amount,
		Limit: usage.MustDecimal("1E+30"), Used: usage.MustDecimal("0"), EventID: "c-2", OccurredAt: at}
	over := usage.MustDecimal("0.000000000000000000000000000000000001")
	overage := usage.Notification{ID: "n3", Type: usage.NotifyOverageStarted, UserID: "u1", EntitlementKey: "K", PeriodStart: "2026-12-01T00:00:00Z",
		OverageUsed: &over, Limit: usage.MustDecimal("100.5"), Used: usage.MustDecimal("100.5"), EventID: "c-3", OccurredAt: at}
	strayOverage := threshold
	strayOverage.OverageUsed = &over
	for _, c := range []struct {
		n    usage.Notification
		want string
	}{
		{threshold, `{"notificationId":"n1","type":"usage.threshold.reached","userId":"u1","entitlementKey":"AI_TUTOR_ACCESS","periodStart":"2026-12-01T00:00:00Z",` +
			`"thresholdPercent":80,"limit":100.5,"used":80.400000000000000000000000000000000001,"eventId":"c-1","occurredAt":"2026-12-03T09:04:05.123456789Z"}`},
		// No period (never resets): no periodStart; a rejection: amount, no thresholdPercent.
		{rejected, `{"notificationId":"n2","type":"usage.limit.rejected","userId":"u1","entitlementKey":"K","amount":0.25,"limit":1000000000000000000000000000000,` +
			`"used":0,"eventId":"c-2","occurredAt":"2026-12-03T09:04:05.123456789Z"}`},
		// The overage's start: overageUsed, exact; no threshold, no amount.
		{overage, `{"notificationId":"n3","type":"usage.overage.started","userId":"u1","entitlementKey":"K","periodStart":"2026-12-01T00:00:00Z",` +
			`"overageUsed":0.000000000000000000000000000000000001,"limit":100.5,"used":100.5,"eventId":"c-3","occurredAt":"2026-12-03T09:04:05.123456789Z"}`},
		// overageUsed belongs to usage.overage.started only.
		{strayOverage, `{"notificationId":"n1","type":"usage.threshold.reached","userId":"u1","entitlementKey":"AI_TUTOR_ACCESS","periodStart":"2026-12-01T00:00:00Z",` +
			`"thresholdPercent":80,"limit":100.5,"used":80.400000000000000000000000000000000001,"eventId":"c-1","occurredAt":"2026-12-03T09:04:05.123456789Z"}`},
	} {
		got, err := json.Marshal(notify.MessageOf(c.n))
		if err != nil || string(got) != c.want {
			t.Errorf("got  %s (%v)\nwant %s", got, err, c.want)
		}
	}
}

func TestGroupID(t *testing.T) {
	for _, c := range []struct{ user, key, want string }{
		{"u1", "AI_TUTOR_ACCESS", "2:u1:AI_TUTOR_ACCESS"},
		{"a:b", "c", "3:a:b:c"},                 // unambiguous: "a" and "b:c" is 1:a:b:c
		{strings.Repeat("u", 122), "K", "122:"}, // 128 characters
		{"team 42", "K", "sha256:"},
		{"ü", "K", "sha256:"},
		{strings.Repeat("u", 123), "K", "sha256:"}, // 129 characters
	} {
		got := notify.GroupID(c.user, c.key)
		if !strings.HasPrefix(got, c.want) || (c.want == "sha256:" && len(got) != 71) || len(got) > 128 {
			t.Errorf("GroupID(%q, %q) = %q, want %q...", c.user, c.key, got, c.want)
		}
	}
}

// consume is a queued consume with an idempotency key.
func consume(user, key, amount, idem string) usage.Record {
	ev := usage.NewEvent(user, key)
	ev.Amount, ev.IdempotencyKey = usage.MustDecimal(amount), idem
	return usage.Record{Event: ev, MessageID: "m-" + idem}
}

func refund(user, key, of, amount, idem string) usage.Record {
	r := consume(user, key, amount, idem)
	r.Event.Operation, r.Event.RefundOf = usage.OperationRefund, of
	return r
}

func statuses(outs []usage.Outcome) string {
	var s []string
	for _, o := range outs {
		if o.Status == usage.Rejected {
			s = append(s, string(o.Reason()))
		} else {
			s = append(s, string(o.Status))
		}
	}
	return strings.Join(s, " ")
}

var defaults = &usage.Notify{Thresholds: []usage.Decimal{usage.MustDecimal("80"), usage.MustDecimal("100")}, LimitRejected: true}

func dec(s string) *usage.Decimal { d := usage.MustDecimal(s); return &d }

// TestPublishedRightAfterTheWrite: the write that crosses a threshold
// records the notification and the publisher (the store's Outbox)
// publishes it at once, with the issue's body and the attributes
// subscribers filter on, then marks it published; a flood of rejections
// is one usage.limit.rejected.
func TestPublishedRightAfterTheWrite(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	now := time.Now().UTC()
	period := usage.PeriodStart(usage.ResetMonthly, nil, now)
	w.entitlement(t, dynamodb.EntitlementItem{UserID: "u1", EntitlementKey: "AI_TUTOR_ACCESS", Limit: dec("100"), Used: dec("79"),
		ResetPeriod: usage.ResetMonthly, PeriodStart: &period})
	m := &countingMetrics{}
	store := metering.Writer{Store: dynamodb.NewStore(w.ddb, dynamodb.Config{EntitlementsTable: w.entitlements, LedgerTable: w.ledger, Outbox: w.publisher(w.sns, m)})}
	rules := usage.Rules{Now: now, Notify: defaults}
	update := func(records ...usage.Record) string {
		return statuses(store.Update(ctx, records[0].Event.Scope(), records, rules.Plan))
	}
	if got := update(consume("u1", "AI_TUTOR_ACCESS", "2", "c-1")); got != "APPLIED" {
		t.Fatal(got)
	}
	if got := update(consume("u1", "AI_TUTOR_ACCESS", "19", "c-2")); got != "APPLIED" {
		t.Fatal(got)
	}
	var flood []usage.Record
	for i := range 10 {
		flood = append(flood, consume("u1", "AI_TUTOR_ACCESS", "1", fmt.Sprintf("f-%d", i)))
	}
	update(flood[:5]...)
	update(flood[5:]...)

	got := w.receive(t, 3, 2*time.Second, 30*time.Second)
	if len(got) != 3 {
		t.Fatalf("received %d messages, want 3: %+v", len(got), got)
	}
	byType := map[string][]delivered{}
	for _, d := range got {
		byType[d.msg.Type+" "+string(ptrNumber(d.msg.ThresholdPercent))] = append(byType[d.msg.Type+" "+string(ptrNumber(d.msg.ThresholdPercent))], d)
		if d.attrs[notify.AttrType] != d.msg.Type || d.attrs[notify.AttrUserID] != "u1" || d.attrs[notify.AttrEntitlementKey] != "AI_TUTOR_ACCESS" {
			t.Errorf("attributes %v of %s", d.attrs, d.raw)
		}
		if d.msg.PeriodStart != usage.FormatInstant(period) || d.msg.Limit != "100" || d.msg.NotificationID == "" {
			t.Errorf("message %s", d.raw)
		}
	}
	for key, want := range map[string]string{
		"usage.threshold.reached 80":  `"thresholdPercent":80,"limit":100,"used":81,"eventId":"c-1"`,
		"usage.threshold.reached 100": `"thresholdPercent":100,"limit":100,"used":100,"eventId":"c-2"`,
		"usage.limit.rejected ":       `"amount":1,"limit":100,"used":100,"eventId":"f-0"`,
	} {
		if len(byType[key]) != 1 || !strings.Contains(byType[key][0].raw, want) {
			t.Errorf("%s: got %v, want one with %s", key, byType[key], want)
		}
	}
	notes := w.recorded(t, usage.Scope{UserID: "u1", EntitlementKey: "AI_TUTOR_ACCESS"})
	if len(notes) != 3 {
		t.Fatalf("recorded %+v", notes)
	}
	for _, n := range notes {
		if n.PublishedAt.IsZero() {
			t.Errorf("%s %s not marked published", n.Type, n.Key)
		}
	}
	if left, err := dynamodb.PendingNotifications(ctx, w.ddb, w.ledger, time.Now().Add(time.Minute), 10); err != nil || len(left) != 0 {
		t.Errorf("still pending: %+v %v", left, err)
	}
	if c, _ := m.get(); c.Recorded != 3 || c.Published != 3 || c.Failed != 0 {
		t.Errorf("metrics %+v", c)
	}
}

// TestTheOverageStartIsPublished: the consume that first draws from the
// overage in a period publishes usage.overage.started right after its
// write, with overageUsed (exact) and the type as the message attribute
// that filter policies select on: a subscription filtering on the type
// receives it alone. More overage in the period publishes nothing new.
func TestTheOverageStartIsPublished(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	now := time.Now().UTC()
	period := usage.PeriodStart(usage.ResetMonthly, nil, now)
	w.entitlement(t, dynamodb.EntitlementItem{UserID: "u1", EntitlementKey: "K", Limit: dec("10"), Used: dec("7"),
		ResetPeriod: usage.ResetMonthly, PeriodStart: &period, Extra: overageLimitAttr("2.5")})
	filtered := w.subscribeFiltered(t, `{"type": ["usage.overage.started"]}`)
	m := &countingMetrics{}
	store := metering.Writer{Store: dynamodb.NewStore(w.ddb, dynamodb.Config{EntitlementsTable: w.entitlements, LedgerTable: w.ledger, Outbox: w.publisher(w.sns, m)})}
	rules := usage.Rules{Now: now, Notify: &usage.Notify{Thresholds: []usage.Decimal{usage.MustDecimal("80")}, LimitRejected: true, OverageStarted: true}}
	for _, r := range []usage.Record{consume("u1", "K", "2", "c-1"), consume("u1", "K", "1.25", "c-2"), consume("u1", "K", "1", "c-3"), consume("u1", "K", "1.5", "c-4")} {
		want := "APPLIED"
		if r.Event.IdempotencyKey == "c-4" {
			want = "LIMIT_EXCEEDED" // 10 used, 1.25 of the 2.5 overage: 1.5 more does not fit
		}
		if got := statuses(store.Update(ctx, r.Event.Scope(), []usage.Record{r}, rules.Plan)); got != want {
			t.Fatalf("%s: %s, want %s", r.Event.IdempotencyKey, got, want)
		}
	}
	got := w.receive(t, 3, 2*time.Second, 30*time.Second)
	byType := map[string][]delivered{}
	for _, d := range got {
		byType[d.msg.Type] = append(byType[d.msg.Type], d)
		if d.attrs[notify.AttrType] != d.msg.Type || d.attrs[notify.AttrUserID] != "u1" || d.attrs[notify.AttrEntitlementKey] != "K" {
			t.Errorf("attributes %v of %s", d.attrs, d.raw)
		}
		if d.msg.Type != usage.NotifyOverageStarted && strings.Contains(d.raw, "overageUsed") {
			t.Errorf("overageUsed on %s", d.raw)
		}
	}
	want := `"type":"usage.overage.started","userId":"u1","entitlementKey":"K","periodStart":"` + usage.FormatInstant(period) +
		`","overageUsed":0.25,"limit":10,"used":10,"eventId":"c-2","occurredAt":"`
	if len(got) != 3 || len(byType[usage.NotifyOverageStarted]) != 1 || !strings.Contains(byType[usage.NotifyOverageStarted][0].raw, want) {
		t.Fatalf("received %+v, want a threshold, a rejection and one overage start with %s", got, want)
	}
	if len(byType[usage.NotifyThresholdReached]) != 1 || len(byType[usage.NotifyLimitRejected]) != 1 {
		t.Errorf("received %+v", byType)
	}
	only := filtered.receive(t, 1, 2*time.Second, 20*time.Second)
	if len(only) != 1 || only[0].raw != byType[usage.NotifyOverageStarted][0].raw {
		t.Errorf("the subscription filtering on the type received %+v, want the overage start alone", only)
	}
	notes := w.recorded(t, usage.Scope{UserID: "u1", EntitlementKey: "K"})
	for _, n := range notes {
		if n.PublishedAt.IsZero() {
			t.Errorf("%s not marked published", n.Type)
		}
		if n.Type == usage.NotifyOverageStarted {
			body, _ := json.Marshal(notify.MessageOf(n))
			if string(body) != byType[n.Type][0].raw {
				t.Errorf("recorded %s, published %s", body, byType[n.Type][0].raw)
			}
		}
	}
	if c, _ := m.get(); len(notes) != 3 || c.Recorded != 3 || c.Published != 3 {
		t.Errorf("recorded %+v, metrics %+v", notes, c)
	}
}

func ptrNumber(n *json.Number) json.Number {
	if n == nil {
		return ""
	}
	return *n
}

// TestFIFOTopic: on a FIFO topic each message carries the scope as its
// group and the notification ID as its deduplication ID, so a repeat
// within SNS's deduplication window is dropped by SNS itself.
func TestFIFOTopic(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	w.entitlement(t, dynamodb.EntitlementItem{UserID: "u1", EntitlementKey: "K", Limit: dec("10")})
	p := w.publisher(w.sns, nil)
	store := metering.Writer{Store: dynamodb.NewStore(w.ddb, dynamodb.Config{EntitlementsTable: w.entitlements, LedgerTable: w.ledger, Outbox: p})}
	rules := usage.Rules{Now: time.Now(), Notify: defaults}
	if got := statuses(store.Update(ctx, usage.Scope{UserID: "u1", EntitlementKey: "K"}, []usage.Record{consume("u1", "K", "9", "c-1")}, rules.Plan)); got != "APPLIED" {
		t.Fatal(got)
	}
	notes := w.recorded(t, usage.Scope{UserID: "u1", EntitlementKey: "K"})
	if len(notes) != 1 {
		t.Fatalf("recorded %+v", notes)
	}
	p.Recorded(ctx, notes) // published again: the same deduplication ID
	got := w.receive(t, 1, 2*time.Second, 20*time.Second)
	if len(got) != 1 || got[0].group != notify.GroupID("u1", "K") || got[0].msg.NotificationID != notes[0].ID {
		t.Errorf("received %+v", got)
	}
}

// TestTheSweepPublishesWhatTheWriteCouldNot: with SNS unreachable the
// write still commits and records the notification; the publication
// fails, is counted, and the notification stays pending. A sweep while
// SNS is still down leaves it and measures its age; the sweep after SNS
// is back publishes it, with the same body the write would have sent,
// and the next sweep finds nothing. Many pending notifications are swept
// in several reads.
func TestTheSweepPublishesWhatTheWriteCouldNot(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	down, up := &countingMetrics{}, &countingMetrics{}
	failing := w.publisher(unreachableSNS(t, w.cfg), down)
	store := metering.Writer{Store: dynamodb.NewStore(w.ddb, dynamodb.Config{EntitlementsTable: w.entitlements, LedgerTable: w.ledger, Outbox: failing})}
	rules := usage.Rules{Now: time.Now(), Notify: &usage.Notify{Thresholds: []usage.Decimal{usage.MustDecimal("50")}}}
	const scopes = 5
	for i := range scopes {
		user := fmt.Sprintf("u%d", i)
		w.entitlement(t, dynamodb.EntitlementItem{UserID: user, EntitlementKey: "K", Limit: dec("4")})
		if got := statuses(store.Update(ctx, usage.Scope{UserID: user, EntitlementKey: "K"}, []usage.Record{consume(user, "K", "3", "c")}, rules.Plan)); got != "APPLIED" {
			t.Fatalf("%s: %s (SNS down must not fail the write)", user, got)
		}
	}
	if c, _ := down.get(); c.Recorded != scopes || c.Failed != scopes || c.Published != 0 {
		t.Errorf("metrics with SNS down %+v", c)
	}
	time.Sleep(1100 * time.Millisecond) // the grace

	res, err := failing.Sweep(ctx)
	if err != nil || res.Published != 0 || res.Left != scopes || res.Failed != 3 || res.OldestUnpublished < time.Second {
		t.Errorf("sweep with SNS down: %+v %v (it stops after 3 failures in a row)", res, err)
	}
	if c, sweeps := down.get(); sweeps != 1 || c.OldestUnpublished < time.Second {
		t.Errorf("the sweep's age metric: %+v after %d sweeps", c, sweeps)
	}

	working := w.publisher(w.sns, up)
	working.SweepBatch = 2
	res, err = working.Sweep(ctx)
	if err != nil || res.Published != scopes || res.Left != 0 || res.OldestUnpublished != 0 {
		t.Errorf("sweep with SNS back: %+v %v", res, err)
	}
	if c, _ := up.get(); c.Published != scopes || c.OldestUnpublished != 0 {
		t.Errorf("metrics after the sweep %+v", c)
	}
	got := w.receive(t, scopes, 2*time.Second, 20*time.Second)
	if len(got) != scopes {
		t.Fatalf("received %d, want %d", len(got), scopes)
	}
	for _, d := range got {
		notes := w.recorded(t, usage.Scope{UserID: d.msg.UserID, EntitlementKey: "K"})
		want, _ := json.Marshal(notify.MessageOf(notes[0]))
		if len(notes) != 1 || d.raw != string(want) || notes[0].PublishedAt.IsZero() {
			t.Errorf("published %s, recorded %+v (body %s)", d.raw, notes, want)
		}
	}
	if res, err := working.Sweep(ctx); err != nil || res.Published != 0 || res.Left != 0 {
		t.Errorf("a sweep with nothing pending: %+v %v", res, err)
	}
}

// TestANewPeriodRearms: a threshold is notified once per period: a
// refund below it and a consume crossing it again in the same period
// notify nothing new, and the next period notifies it again.
func TestANewPeriodRearms(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	day1 := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
	w.entitlement(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "K", Limit: dec("10"), ResetPeriod: usage.ResetDaily, PeriodStart: &day1})
	var clock time.Time
	store := metering.Writer{Store: dynamodb.NewStore(w.ddb, dynamodb.Config{EntitlementsTable: w.entitlements, LedgerTable: w.ledger, Outbox: w.publisher(w.sns, nil),
		Now: func() time.Time { return clock }})}
	scope := usage.Scope{UserID: "u", EntitlementKey: "K"}
	step := func(at time.Time, r usage.Record) {
		t.Helper()
		clock = at
		rules := usage.Rules{Now: at, Notify: &usage.Notify{Thresholds: []usage.Decimal{usage.MustDecimal("80")}}}
		if got := statuses(store.Update(ctx, scope, []usage.Record{r}, rules.Plan)); got != "APPLIED" {
			t.Fatalf("%s: %s", r.Event.IdempotencyKey, got)
		}
	}
	step(day1.Add(10*time.Hour), consume("u", "K", "8", "c-1"))           // 8: crosses 80 %
	step(day1.Add(11*time.Hour), refund("u", "K", "c-1", "3", "r-1"))     // 5
	step(day1.Add(12*time.Hour), consume("u", "K", "4", "c-2"))           // 9: crosses again, same period
	step(day1.Add(24*time.Hour+time.Hour), consume("u", "K", "9", "c-3")) // the next day: reset, 9
	got := w.receive(t, 2, 2*time.Second, 20*time.Second)
	notes := w.recorded(t, scope)
	if len(got) != 2 || len(notes) != 2 {
		t.Fatalf("received %+v, recorded %+v; want one per period", got, notes)
	}
	periods := map[string]string{}
	for _, d := range got {
		periods[d.msg.PeriodStart] = d.msg.EventID + " used " + string(d.msg.Used)
	}
	want := map[string]string{usage.FormatInstant(day1): "c-1 used 8", usage.FormatInstant(day1.AddDate(0, 0, 1)): "c-3 used 9"}
	if fmt.Sprint(periods) != fmt.Sprint(want) || got[0].msg.NotificationID == got[1].msg.NotificationID {
		t.Errorf("notified %v, want %v (distinct IDs)", periods, want)
	}
}

// TestWhichThresholds: an entitlement's notifyThresholds (a list of
// numbers on its item) overrides the defaults, an empty one means none; an unlimited entitlement
// has no thresholds; without Notify nothing is recorded or written.
func TestWhichThresholds(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	w.entitlement(t, dynamodb.EntitlementItem{UserID: "custom", EntitlementKey: "K", Limit: dec("10"), Extra: thresholdsAttr("50", "90")})
	w.entitlement(t, dynamodb.EntitlementItem{UserID: "unlimited", EntitlementKey: "K"})
	w.entitlement(t, dynamodb.EntitlementItem{UserID: "off", EntitlementKey: "K", Limit: dec("10")})
	w.entitlement(t, dynamodb.EntitlementItem{UserID: "none", EntitlementKey: "K", Limit: dec("10"), Extra: thresholdsAttr()})
	store := metering.Writer{Store: dynamodb.NewStore(w.ddb, dynamodb.Config{EntitlementsTable: w.entitlements, LedgerTable: w.ledger, Outbox: w.publisher(w.sns, nil)})}
	run := func(user string, notify *usage.Notify) {
		rules := usage.Rules{Now: time.Now(), Notify: notify}
		scope := usage.Scope{UserID: user, EntitlementKey: "K"}
		for i := range 12 {
			store.Update(ctx, scope, []usage.Record{consume(user, "K", "1", fmt.Sprint(i))}, rules.Plan)
		}
	}
	run("custom", defaults)
	run("unlimited", defaults)
	run("off", nil)
	run("none", defaults) // an empty list: no thresholds, the rejection still
	got := w.receive(t, 4, 3*time.Second, 20*time.Second)
	var seen []string
	for _, d := range got {
		seen = append(seen, d.msg.UserID+" "+d.msg.Type+" "+string(ptrNumber(d.msg.ThresholdPercent))+" used "+string(d.msg.Used))
	}
	want := "[custom usage.limit.rejected  used 10 custom usage.threshold.reached 50 used 5 custom usage.threshold.reached 90 used 9 none usage.limit.rejected  used 10]"
	if slices.Sort(seen); fmt.Sprint(seen) != want {
		t.Errorf("published %v\nwant      %s", seen, want)
	}
	for _, user := range []string{"unlimited", "off"} {
		if notes := w.recorded(t, usage.Scope{UserID: user, EntitlementKey: "K"}); len(notes) != 0 {
			t.Errorf("%s: recorded %+v", user, notes)
		}
	}
}
