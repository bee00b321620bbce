package main

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/usage"
)

// TestNotificationsAndTheTopic: setup --topic creates the topic (again:
// the same ARN) and prints it; notifications lists what was recorded for
// a user, per entitlement or all of them, and whether it was published.
func TestNotificationsAndTheTopic(t *testing.T) {
	c := build(t)
	emulator.Env(t)
	os.Setenv("AWS_ENDPOINT_URL_SNS", os.Getenv("AWS_ENDPOINT_URL_SQS")) // fauxqs serves SNS too
	s := newStack(t, c)
	topic := emulator.UniqueName(t, "notifications")

	res := decodeJSON[setupResult](t, s.must(t, "setup", "--json", "--queue", emulator.UniqueName(t, "q"), "--topic", topic).stdout)
	if res.Topic == nil || res.Topic.Name != topic || !strings.HasPrefix(res.Topic.ARN, "arn:aws:sns:") || !strings.HasSuffix(res.Topic.ARN, ":"+topic) {
		t.Fatalf("setup --topic: %+v", res.Topic)
	}
	human := s.must(t, "setup", "--queue", emulator.UniqueName(t, "q"), "--topic", topic).stdout
	if !strings.Contains(human, "topic               "+res.Topic.ARN) || !strings.Contains(human, "export NOTIFY_TOPIC_ARN="+res.Topic.ARN) {
		t.Errorf("setup --topic again (same ARN):\n%s", human)
	}
	fifo := decodeJSON[setupResult](t, s.must(t, "setup", "--json", "--queue", emulator.UniqueName(t, "q"), "--topic", topic+".fifo").stdout)
	if fifo.Topic == nil || !strings.HasSuffix(fifo.Topic.ARN, ".fifo") {
		t.Errorf("FIFO topic: %+v", fifo.Topic)
	}

	if r := s.must(t, "notifications", "--user", "n-1"); !strings.Contains(r.stdout, "no notifications recorded for user n-1") {
		t.Errorf("before anything: %q", r.stdout)
	}
	s.must(t, "entitlement", "put", "--user", "n-1", "--key", "tutor", "--limit", "10")
	two := usage.MustDecimal("2")
	s.must(t, "entitlement", "put", "--user", "n-1", "--key", "exports", "--limit", "4", "--reset-period", "MONTHLY")
	// Record notifications the way the service does: in the write.
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ddb := awsdynamodb.NewFromConfig(cfg)
	// access-service's overage on "seats": up to 3 beyond the limit of 2.
	if err := dynamodb.PutEntitlement(context.Background(), ddb, s.queues.EntitlementsTable.Name, dynamodb.DefaultEntitlementKeys, dynamodb.EntitlementItem{
		UserID: "n-1", EntitlementKey: "seats", Limit: &two, ResetPeriod: usage.ResetMonthly,
		Extra: map[string]types.AttributeValue{usage.AttrOverageLimit: &types.AttributeValueMemberN{Value: "3"}},
	}); err != nil {
		t.Fatal(err)
	}
	store := metering.Writer{Store: dynamodb.NewStore(ddb, dynamodb.Config{EntitlementsTable: s.queues.EntitlementsTable.Name, LedgerTable: s.queues.LedgerTable.Name})}
	rules := usage.Rules{Now: time.Now(), Notify: &usage.Notify{Thresholds: []usage.Decimal{usage.MustDecimal("80")}, LimitRejected: true, OverageStarted: true}}
	for _, r := range []struct{ key, amount, idem string }{{"tutor", "8.5", "t-1"}, {"exports", "4", "e-1"}, {"exports", "1", "e-2"}, {"seats", "1", "s-1"}, {"seats", "1.75", "s-2"}} {
		ev := usage.NewEvent("n-1", r.key)
		ev.Amount, ev.IdempotencyKey = usage.MustDecimal(r.amount), r.idem
		store.Update(context.Background(), ev.Scope(), []usage.Record{{Event: ev}}, rules.Plan)
	}
	notes, err := dynamodb.ListNotifications(context.Background(), ddb, s.queues.LedgerTable.Name, usage.Scope{UserID: "n-1", EntitlementKey: "tutor"})
	if err != nil || len(notes) != 1 {
		t.Fatalf("recorded %+v %v", notes, err)
	}
	if err := dynamodb.MarkPublished(context.Background(), ddb, s.queues.LedgerTable.Name, notes[0], time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}

	v := decodeJSON[notificationsView](t, s.must(t, "notifications", "--user", "n-1", "--json").stdout)
	if len(v.Notifications) != 5 || v.LedgerTable != s.queues.LedgerTable.Name {
		t.Fatalf("all: %+v", v)
	}
	var got []string
	for _, n := range v.Notifications {
		got = append(got, n.EntitlementKey+" "+n.Type+" used "+string(n.Used)+" event "+n.EventID+" published "+n.PublishedAt)
	}
	want := []string{"exports usage.threshold.reached used 4 event e-1 published ", "exports usage.limit.rejected used 4 event e-2 published ",
		// One write, one occurredAt: in the ledger's (sort key) order.
		"seats usage.overage.started used 2 event s-2 published ", "seats usage.threshold.reached used 2 event s-2 published ",
		"tutor usage.threshold.reached used 8.5 event t-1 published 2026-12-01T12:00:00Z"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("notifications:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := v.Notifications[1]; n.Amount == nil || n.Amount.String() != "1" || n.ThresholdPercent != nil || n.OverageUsed != nil || n.Published || n.PeriodStart == "" {
		t.Errorf("the rejection: %+v", n)
	}
	if n := v.Notifications[2]; n.OverageUsed == nil || n.OverageUsed.String() != "0.75" || n.Limit != "2" || n.ThresholdPercent != nil || n.Amount != nil {
		t.Errorf("the overage's start: %+v", n)
	}
	one := decodeJSON[notificationsView](t, s.must(t, "notifications", "--user", "n-1", "--key", "tutor", "--json").stdout)
	if len(one.Notifications) != 1 || !one.Notifications[0].Published || one.Notifications[0].ThresholdPercent.String() != "80" {
		t.Errorf("--key tutor: %+v", one)
	}
	human = s.must(t, "notifications", "--user", "n-1").stdout
	for _, w := range []string{"ENTITLEMENT", "PUBLISHED", "usage.threshold.reached", "80%", "8.5/10", "2026-12-01T12:00:00Z", "no (pending)", "usage.limit.rejected"} {
		if !strings.Contains(human, w) {
			t.Errorf("human output lacks %q:\n%s", w, human)
		}
	}
	if !regexp.MustCompile(`(?m)^seats +\S+ +usage\.overage\.started +- +2/2 \+0\.75 overage +s-2 `).MatchString(human) {
		t.Errorf("human output lacks the overage's start with its overage used:\n%s", human)
	}
	if r := s.run(t, "", "notifications"); r.code != 2 || !strings.Contains(r.stderr, "--user is required") {
		t.Errorf("without --user: exit %d %q", r.code, r.stderr)
	}
}
