package dynamodb_test

import (
	"context"
	"sync"
	"testing"
	"time"

	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

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
