package dynamodb_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/usage"
)

type recordingOutbox struct {
	mu    sync.Mutex
	notes []usage.Notification
}

func (o *recordingOutbox) Recorded(_ context.Context, notes []usage.Notification) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.notes = append(o.notes, notes...)
}

// countingClient counts the notification items put by transactions.
type countingClient struct {
	*awsdynamodb.Client
	mu   sync.Mutex
	puts int
}

func (c *countingClient) TransactWriteItems(ctx context.Context, in *awsdynamodb.TransactWriteItemsInput, opts ...func(*awsdynamodb.Options)) (*awsdynamodb.TransactWriteItemsOutput, error) {
	c.mu.Lock()
	for _, it := range in.TransactItems {
		if it.Put != nil && it.Put.Item["notificationId"] != nil {
			c.puts++
		}
	}
	c.mu.Unlock()
	return c.Client.TransactWriteItems(ctx, in, opts...)
}

// TestTheOutbox: a write that crosses a threshold records the
// notification in the ledger table and hands it to the Outbox; it is in
// the sparse index until marked published. A flood of rejections records
// the period's one usage.limit.rejected and then writes no more.
func TestTheOutbox(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	ctx := context.Background()
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("10"), Used: dp("7"),
		ResetPeriod: usage.ResetMonthly, PeriodStart: tp("2026-11-01T00:00:00Z")})
	outbox := &recordingOutbox{}
	client := &countingClient{Client: e.client}
	s := metering.Writer{Store: dynamodb.NewStore(client, dynamodb.Config{EntitlementsTable: e.entitlements, LedgerTable: e.ledger, Outbox: outbox,
		Now: func() time.Time { return e.now }})}
	rules := usage.Rules{Now: e.now, Notify: &usage.Notify{Thresholds: []usage.Decimal{usage.MustDecimal("80")}, LimitRejected: true}}
	apply := func(records ...usage.Record) string {
		return outcomeText(s.Update(ctx, records[0].Event.Scope(), records, rules.Plan))
	}
	if got := apply(rec("u", "k", "2", "m1", "c-1")); got != "APPLIED" {
		t.Fatal(got)
	}
	for i := range 5 {
		if got := apply(rec("u", "k", "5", "m-flood", "f-"+string(rune('a'+i)))); got != "LIMIT_EXCEEDED" {
			t.Fatal(got)
		}
	}
	if len(outbox.notes) != 2 || outbox.notes[0].Type != usage.NotifyThresholdReached || outbox.notes[1].Type != usage.NotifyLimitRejected {
		t.Fatalf("outbox got %+v", outbox.notes)
	}
	if client.puts != 2 {
		t.Errorf("%d notification puts for one crossing and a flood of rejections, want 2", client.puts)
	}
	n := outbox.notes[0]
	if n.Used.Cmp(usage.MustDecimal("9")) != 0 || n.EventID != "c-1" || n.ID == "" || n.OccurredAt.IsZero() {
		t.Errorf("threshold notification %+v", n)
	}
	pending, err := dynamodb.PendingNotifications(ctx, e.client, e.ledger, e.now.Add(time.Second), 10)
	if err != nil || len(pending) != 2 {
		t.Fatalf("pending %+v, %v", pending, err)
	}
	if err := dynamodb.MarkPublished(ctx, e.client, e.ledger, pending[0], e.now); err != nil {
		t.Fatal(err)
	}
	if err := dynamodb.MarkPublished(ctx, e.client, e.ledger, pending[0], e.now.Add(time.Hour)); err != nil {
		t.Fatal("marking twice:", err)
	}
	if left, _ := dynamodb.PendingNotifications(ctx, e.client, e.ledger, e.now.Add(time.Second), 10); len(left) != 1 || left[0].ID == pending[0].ID {
		t.Errorf("after publishing one, pending %+v", left)
	}
	all, err := dynamodb.ListNotifications(ctx, e.client, e.ledger, usage.Scope{UserID: "u", EntitlementKey: "k"})
	if err != nil || len(all) != 2 {
		t.Fatalf("notifications %+v, %v", all, err)
	}
	published := 0
	for _, n := range all {
		if !n.PublishedAt.IsZero() {
			published++
			if !n.PublishedAt.Equal(e.now) {
				t.Errorf("publishedAt %v, want the first marking's %v", n.PublishedAt, e.now)
			}
		}
	}
	if published != 1 {
		t.Errorf("%d published", published)
	}
	if got := len(e.ledgerEntries(t, "u", "k")); got != 1 {
		t.Errorf("ListLedger lists %d entries, want the 1 applied consume (not the notifications)", got)
	}
}

// TestTheOutboxRecordsTheOverageStart: the consume that first draws from
// the overage in a period records usage.overage.started, with the
// overage used right after it, in the same write as the draw; the item
// keeps overageUsed, and reading the outbox (pending or listed) gives it
// back, exactly. More overage, a refund of it all and a draw again in the
// same period, by a process that has not seen the notification, record
// nothing new. Without Notify.OverageStarted nothing is recorded.
func TestTheOutboxRecordsTheOverageStart(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	ctx := context.Background()
	overage := map[string]types.AttributeValue{usage.AttrOverageLimit: &types.AttributeValueMemberN{Value: "5"}}
	for _, user := range []string{"u", "off"} {
		e.put(t, dynamodb.EntitlementItem{UserID: user, EntitlementKey: "k", Limit: dp("10"), Used: dp("9"),
			ResetPeriod: usage.ResetMonthly, PeriodStart: tp("2026-11-01T00:00:00Z"), Extra: overage})
	}
	outbox := &recordingOutbox{}
	writer := func() metering.Writer {
		return metering.Writer{Store: dynamodb.NewStore(e.client, dynamodb.Config{EntitlementsTable: e.entitlements, LedgerTable: e.ledger, Outbox: outbox,
			Now: func() time.Time { return e.now }})}
	}
	s := writer()
	rules := usage.Rules{Now: e.now, Notify: &usage.Notify{Thresholds: []usage.Decimal{usage.MustDecimal("100")}, OverageStarted: true}}
	apply := func(s metering.Writer, rules usage.Rules, records ...usage.Record) string {
		return outcomeText(s.Update(ctx, records[0].Event.Scope(), records, rules.Plan))
	}
	refund := func(of, amount, idem string) usage.Record {
		r := rec("u", "k", amount, "m-"+idem, idem)
		r.Event.Operation, r.Event.RefundOf = usage.OperationRefund, of
		return r
	}
	if got := apply(s, rules, rec("u", "k", "3.125", "m1", "c-1")); got != "APPLIED" {
		t.Fatal(got)
	}
	if len(outbox.notes) != 2 || outbox.notes[0].Type != usage.NotifyThresholdReached || outbox.notes[1].Type != usage.NotifyOverageStarted {
		t.Fatalf("outbox got %+v", outbox.notes)
	}
	n := outbox.notes[1]
	if n.OverageUsed == nil || n.OverageUsed.String() != "2.125" || n.Used.String() != "10" || n.Limit.String() != "10" || n.EventID != "c-1" ||
		n.ThresholdPercent != nil || n.Amount != nil || n.PeriodStart != "2026-11-01T00:00:00Z" || n.ID == "" || n.OccurredAt.IsZero() {
		t.Errorf("overage notification %+v (overageUsed %v)", n, n.OverageUsed)
	}
	if outbox.notes[0].OverageUsed != nil {
		t.Errorf("a threshold notification with overageUsed %v", outbox.notes[0].OverageUsed)
	}
	// More overage, then all of it given back: the overage is 0 again.
	for _, r := range []usage.Record{rec("u", "k", "1", "m2", "c-2"), refund("c-2", "1", "r-2"), refund("c-1", "3.125", "r-1")} {
		if got := apply(s, rules, r); got != "APPLIED" {
			t.Fatalf("%s: %s", r.Event.IdempotencyKey, got)
		}
	}
	if it := e.get(t, "u", "k"); it.Used.String() != "9" {
		t.Fatalf("after the refunds %+v", it)
	}
	// Into the overage again in the same period, by a process that has
	// not seen the notification recorded: nothing new.
	if got := apply(writer(), rules, rec("u", "k", "2", "m3", "c-3")); got != "APPLIED" {
		t.Fatal(got)
	}
	if len(outbox.notes) != 2 {
		t.Errorf("outbox got %+v after the overage went to 0 and back, want nothing new in the period", outbox.notes[2:])
	}
	all, err := dynamodb.ListNotifications(ctx, e.client, e.ledger, usage.Scope{UserID: "u", EntitlementKey: "k"})
	if err != nil || len(all) != 2 {
		t.Fatalf("notifications %+v, %v", all, err)
	}
	pending, err := dynamodb.PendingNotifications(ctx, e.client, e.ledger, e.now.Add(time.Second), 10)
	if err != nil || len(pending) != 2 {
		t.Fatalf("pending %+v, %v", pending, err)
	}
	for _, read := range [][]usage.Notification{all, pending} {
		for _, got := range read {
			want := outbox.notes[0]
			if got.Type == usage.NotifyOverageStarted {
				want = outbox.notes[1]
			}
			if got.ID != want.ID || got.Key != want.Key || got.EventID != want.EventID || got.Used.String() != want.Used.String() ||
				got.Limit.String() != want.Limit.String() || fmt.Sprint(decimalText(got.OverageUsed)) != fmt.Sprint(decimalText(want.OverageUsed)) {
				t.Errorf("read back %+v (overageUsed %s), recorded %+v (overageUsed %s)", got, decimalText(got.OverageUsed), want, decimalText(want.OverageUsed))
			}
		}
	}

	// Without OverageStarted: the draw, no notification.
	off := usage.Rules{Now: e.now, Notify: &usage.Notify{LimitRejected: true}}
	if got := apply(s, off, rec("off", "k", "3", "m4", "o-1")); got != "APPLIED" {
		t.Fatal(got)
	}
	if notes, err := dynamodb.ListNotifications(ctx, e.client, e.ledger, usage.Scope{UserID: "off", EntitlementKey: "k"}); err != nil || len(notes) != 0 {
		t.Errorf("recorded %+v (%v) with the overage's start not notified", notes, err)
	}
}

func decimalText(d *usage.Decimal) string {
	if d == nil {
		return "<nil>"
	}
	return d.String()
}

// TestAPoolsNotificationsInTheOutbox: a pool's notification is recorded
// under the pool, names the pool and the member whose event crossed, and
// is marked published there.
func TestAPoolsNotificationsInTheOutbox(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	ctx := context.Background()
	if err := dynamodb.PutPool(ctx, e.client, e.entitlements, dynamodb.DefaultEntitlementKeys, "team",
		dynamodb.EntitlementItem{EntitlementKey: "k", Limit: dp("10"), Used: dp("7")}); err != nil {
		t.Fatal(err)
	}
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Used: dp("0"), Pool: "team"})
	outbox := &recordingOutbox{}
	s := metering.Writer{Store: dynamodb.NewStore(e.client, dynamodb.Config{EntitlementsTable: e.entitlements, LedgerTable: e.ledger, Outbox: outbox,
		Now: func() time.Time { return e.now }})}
	rules := usage.Rules{Now: e.now, Notify: &usage.Notify{Thresholds: []usage.Decimal{usage.MustDecimal("80")}}}
	if got := outcomeText(s.Update(ctx, usage.Scope{UserID: "u", EntitlementKey: "k"}, []usage.Record{rec("u", "k", "2", "m1", "c-1")}, rules.Plan)); got != "APPLIED" {
		t.Fatal(got)
	}
	if len(outbox.notes) != 1 || outbox.notes[0].PoolID != "team" || outbox.notes[0].UserID != "u" {
		t.Fatalf("outbox got %+v, want the pool's threshold, crossed by u", outbox.notes)
	}
	pending, err := dynamodb.PendingNotifications(ctx, e.client, e.ledger, e.now.Add(time.Second), 10)
	if err != nil || len(pending) != 1 || pending[0].PoolID != "team" || pending[0].UserID != "u" {
		t.Fatalf("pending %+v, %v", pending, err)
	}
	if err := dynamodb.MarkPublished(ctx, e.client, e.ledger, pending[0], e.now); err != nil {
		t.Fatal(err)
	}
	if left, _ := dynamodb.PendingNotifications(ctx, e.client, e.ledger, e.now.Add(time.Second), 10); len(left) != 0 {
		t.Errorf("after publishing, pending %+v", left)
	}
	all, err := dynamodb.ListNotifications(ctx, e.client, e.ledger, usage.PoolScope("team", "k"))
	if err != nil || len(all) != 1 || all[0].PublishedAt.IsZero() {
		t.Errorf("the pool's notifications %+v, %v: want one, published", all, err)
	}
	if mine, _ := dynamodb.ListNotifications(ctx, e.client, e.ledger, usage.Scope{UserID: "u", EntitlementKey: "k"}); len(mine) != 0 {
		t.Errorf("the member's own notifications %+v, want none", mine)
	}
}
