package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/client"
	"github.com/usage-event-service/usage-event-service/client/local"
	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/usage"
)

// startDecisionsFunction runs the real bootstrap under the
// Lambda Runtime Interface Emulator over the stack's tables, and returns
// the stack's cli pointed at it through AWS_ENDPOINT_URL_LAMBDA and
// DECISIONS_FUNCTION ("function", the one name the emulator serves). The
// emulator serves one invocation at a time: usagectl makes one.
func (s *stack) startDecisionsFunction(t *testing.T) cli {
	t.Helper()
	fn, err := emulator.StartLambda(context.Background(), emulator.LambdaBootstrap(t), []string{"LOG_LEVEL=WARN",
		"ENTITLEMENTS_TABLE=" + s.queues.EntitlementsTable.Name, "USAGE_LEDGER_TABLE=" + s.queues.LedgerTable.Name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fn.Stop() })
	return s.with("AWS_ENDPOINT_URL_LAMBDA="+fn.Endpoint, "DECISIONS_FUNCTION=function")
}

// consume applies consumes in this process, as a caller with the
// tables' permissions would.
func (s *stack) consume(t *testing.T, user, key string, amounts map[string]string) {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := local.New(cfg, dynamodb.Config{EntitlementsTable: s.queues.EntitlementsTable.Name, LedgerTable: s.queues.LedgerTable.Name})
	if err != nil {
		t.Fatal(err)
	}
	for idem, amount := range amounts {
		if _, err := c.Consume(context.Background(), client.ConsumeRequest{UserID: user, EntitlementKey: key,
			Amount: usage.MustDecimal(amount), IdempotencyKey: idem}); err != nil {
			t.Fatal(err)
		}
	}
}

func monthStart(monthsAgo int) string {
	return usage.FormatInstant(usage.PeriodStart(usage.ResetMonthly, nil, time.Now().AddDate(0, -monthsAgo, 0)))
}

func TestUsagectlBalanceRefundHistory(t *testing.T) {
	c := build(t)
	s := newStack(t, c)
	current, next := monthStart(0), usage.FormatInstant(usage.NextPeriodStart(usage.ResetMonthly, nil, time.Now()))
	s.must(t, "entitlement", "put", "--user", "u-1", "--key", "api-calls", "--limit", "10", "--used", "4",
		"--reset-period", "MONTHLY", "--period-start", current)
	s.must(t, "entitlement", "put", "--user", "u-1", "--key", "old", "--limit", "10", "--used", "7",
		"--reset-period", "MONTHLY", "--period-start", monthStart(3))
	s.must(t, "entitlement", "put", "--user", "u-1", "--key", "seats", "--used", "3")

	checkBalance := func(t *testing.T, v balanceView, used, remaining string) {
		t.Helper()
		if v.Used.String() != used || v.Limit == nil || v.Limit.String() != "10" || v.Remaining == nil || v.Remaining.String() != remaining ||
			v.ResetPeriod != "MONTHLY" || v.PeriodStart == nil || *v.PeriodStart != current || v.NextReset == nil || *v.NextReset != next {
			t.Errorf("balance %+v, want used %s, remaining %s of 10, MONTHLY from %s to %s", v, used, remaining, current, next)
		}
	}

	t.Run("balance in process", func(t *testing.T) {
		checkBalance(t, decodeJSON[balanceView](t, s.must(t, "balance", "--user", "u-1", "--key", "api-calls", "--json").stdout), "4", "6")
		// An ended period reads as used 0 from the current period's start.
		checkBalance(t, decodeJSON[balanceView](t, s.must(t, "balance", "--user", "u-1", "--key", "old", "--json").stdout), "0", "10")
		v := decodeJSON[balanceView](t, s.must(t, "balance", "--user", "u-1", "--key", "seats", "--json").stdout)
		if v.Used != "3" || v.Limit != nil || v.Remaining != nil || v.ResetPeriod != "NONE" || v.PeriodStart != nil || v.NextReset != nil {
			t.Errorf("unlimited balance %+v", v)
		}
		human := s.must(t, "balance", "--user", "u-1", "--key", "api-calls").stdout
		for _, want := range []string{"api-calls of user u-1", "used          4", "remaining     6", "next reset    " + next} {
			if !strings.Contains(human, want) {
				t.Errorf("human balance lacks %q:\n%s", want, human)
			}
		}
		if r := s.run(t, "", "balance", "--user", "u-1", "--key", "nope"); r.code != 1 || !strings.Contains(r.stderr, "ENTITLEMENT_NOT_FOUND") {
			t.Errorf("balance of a missing entitlement: exit %d, stderr %q; want 1 and ENTITLEMENT_NOT_FOUND", r.code, r.stderr)
		}
	})

	t.Run("refund through the queue", func(t *testing.T) {
		rec := decodeJSON[receiptJSON](t, s.must(t, "refund", "--user", "u-1", "--key", "api-calls", "--refund-of", "order-1", "--amount", "2.50", "--json").stdout)
		r := s.must(t, "refund", "--user", "u-1", "--key", "api-calls", "--refund-of", "order-2", "--idempotency-key", "order-2:refund")
		if !strings.Contains(r.stdout, "sent refund message ") || !strings.Contains(r.stdout, "(idempotency key order-2:refund)") {
			t.Errorf("human receipt %q", r.stdout)
		}
		bodies := s.receiveBodies(t, s.queues.Queue.URL)
		if len(bodies) != 2 {
			t.Fatalf("received %d messages, want 2", len(bodies))
		}
		for _, b := range bodies {
			ev, err := usage.ParseEvent([]byte(b))
			if err != nil || !ev.Is(usage.OperationRefund) {
				t.Fatalf("%s: %v, want a refund", b, err)
			}
			switch ev.RefundOf {
			case "order-1":
				if ev.Amount.String() != "2.5" || ev.IdempotencyKey != rec.IdempotencyKey || len(rec.IdempotencyKey) != 36 {
					t.Errorf("sent %s, receipt %+v: want amount 2.5 and the generated key", b, rec)
				}
			case "order-2":
				if !ev.Amount.IsZero() || ev.IdempotencyKey != "order-2:refund" || strings.Contains(b, "amount") {
					t.Errorf("sent %s: want no amount (all that remains) and the given key", b)
				}
			default:
				t.Errorf("sent %s", b)
			}
		}
	})

	fn := s.startDecisionsFunction(t)
	s.must(t, "entitlement", "put", "--user", "u-2", "--key", "api-calls", "--limit", "10",
		"--reset-period", "MONTHLY", "--period-start", current)
	s.consume(t, "u-2", "api-calls", map[string]string{"order-1": "5"})

	t.Run("refund --sync through the decisions function", func(t *testing.T) {
		r := fn.must(t, "refund", "--sync", "--user", "u-2", "--key", "api-calls", "--refund-of", "order-1", "--amount", "2", "--idempotency-key", "refund-1")
		if want := "applied: refunded 2 of order-1 (idempotency key refund-1)\nused now 3, remaining 7 of 10\n"; r.stdout != want {
			t.Errorf("stdout %q, want %q", r.stdout, want)
		}
		r = fn.must(t, "refund", "--sync", "--user", "u-2", "--key", "api-calls", "--refund-of", "order-1", "--amount", "2", "--idempotency-key", "refund-1")
		if !strings.HasPrefix(r.stdout, "duplicate: already refunded 2 of order-1 at 20") || !strings.Contains(r.stdout, "used now 3,") {
			t.Errorf("a retry: stdout %q, want the duplicate with the original's time and the balance unchanged", r.stdout)
		}
		r = fn.run(t, "", "refund", "--sync", "--user", "u-2", "--key", "api-calls", "--refund-of", "order-1", "--amount", "4", "--json")
		a := decodeJSON[answerJSON](t, r.stdout)
		if r.code != 1 || a.Status != "REJECTED" || a.Reason != usage.ReasonRefundExceedsApplied || a.Used.String() != "3" ||
			len(a.IdempotencyKey) != 36 || !strings.Contains(r.stderr, "REFUND_EXCEEDS_APPLIED") || !strings.Contains(r.stderr, a.IdempotencyKey) {
			t.Errorf("a refund of more than remains: exit %d, answer %+v, stderr %q; want 1, REFUND_EXCEEDS_APPLIED and the generated key", r.code, a, r.stderr)
		}
		r = fn.run(t, "", "refund", "--sync", "--user", "u-2", "--key", "api-calls", "--refund-of", "never")
		if r.code != 1 || !strings.Contains(r.stderr, "REFUND_TARGET_NOT_FOUND") {
			t.Errorf("a refund of an unknown consume: exit %d, stderr %q", r.code, r.stderr)
		}
		a = decodeJSON[answerJSON](t, fn.must(t, "refund", "--sync", "--user", "u-2", "--key", "api-calls", "--refund-of", "order-1",
			"--idempotency-key", "refund-2", "--json").stdout)
		if a.Status != "APPLIED" || a.Amount == nil || a.Amount.String() != "3" || a.Used.String() != "0" || a.IdempotencyKey != "refund-2" {
			t.Errorf("the rest: %+v, want 3 given back and used 0", a)
		}
	})

	t.Run("balance --function", func(t *testing.T) {
		v := decodeJSON[balanceView](t, fn.must(t, "balance", "--user", "u-2", "--key", "api-calls", "--function", "function", "--json").stdout)
		checkBalance(t, v, "0", "10")
		if r := fn.run(t, "", "balance", "--user", "u-2", "--key", "nope", "--function", "function"); r.code != 1 || !strings.Contains(r.stderr, "ENTITLEMENT_NOT_FOUND") {
			t.Errorf("balance of a missing entitlement: exit %d, stderr %q", r.code, r.stderr)
		}
	})

	t.Run("history", func(t *testing.T) {
		v := decodeJSON[historyView](t, s.must(t, "history", "--user", "u-2", "--key", "api-calls", "--json").stdout)
		if v.Total != 3 || len(v.Entries) != 3 {
			t.Fatalf("history %+v, want 3 entries", v)
		}
		want := []struct{ key, op, amount, refunded, refundOf string }{
			{"order-1", "consume", "5", "5", ""}, {"refund-1", "refund", "2", "0", "order-1"}, {"refund-2", "refund", "3", "0", "order-1"},
		}
		for i, w := range want {
			e := v.Entries[i]
			if e.Key != w.key || string(e.Operation) != w.op || e.Amount.String() != w.amount || e.Refunded.String() != w.refunded ||
				e.RefundOf != w.refundOf || e.PeriodStart != current || e.AppliedAt == "" {
				t.Errorf("entry %d: %+v, want %+v in period %s", i, e, w, current)
			}
		}
		for i := 1; i < len(v.Entries); i++ {
			if v.Entries[i].AppliedAt < v.Entries[i-1].AppliedAt {
				t.Errorf("entries out of time order: %+v", v.Entries)
			}
		}
		latest := decodeJSON[historyView](t, s.must(t, "history", "--user", "u-2", "--key", "api-calls", "--limit", "1", "--json").stdout)
		if latest.Total != 3 || len(latest.Entries) != 1 || latest.Entries[0].Key != "refund-2" {
			t.Errorf("--limit 1: %+v, want the latest of 3", latest)
		}
		human := s.must(t, "history", "--user", "u-2", "--key", "api-calls", "--limit", "2").stdout
		for _, want := range []string{"api-calls of user u-2: 2 of 3 ledger entries, oldest first", "APPLIED AT", "REFUND OF", "refund-1", "refund-2"} {
			if !strings.Contains(human, want) {
				t.Errorf("human history lacks %q:\n%s", want, human)
			}
		}
		if strings.Contains(human, "consume") {
			t.Errorf("--limit 2 shows the consume:\n%s", human)
		}
		if r := s.must(t, "history", "--user", "nobody", "--key", "api-calls"); !strings.Contains(r.stdout, "no ledger entries") {
			t.Errorf("history of nothing: %q", r.stdout)
		}
	})
}

// A ledger longer than one Query page (1 MB) is read to the end, and
// --limit keeps the latest entries.
func TestUsagectlHistoryOverSeveralQueryPages(t *testing.T) {
	c := build(t)
	s := newStack(t, c)
	s.must(t, "entitlement", "put", "--user", "u-p", "--key", "k")
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	local, err := local.New(cfg, dynamodb.Config{EntitlementsTable: s.queues.EntitlementsTable.Name, LedgerTable: s.queues.LedgerTable.Name})
	if err != nil {
		t.Fatal(err)
	}
	const n = 40 // of 30 KB each: 1.2 MB
	metadata := []byte(`{"pad":"` + strings.Repeat("x", 30<<10) + `"}`)
	for i := range n {
		if _, err := local.Consume(context.Background(), client.ConsumeRequest{UserID: "u-p", EntitlementKey: "k",
			IdempotencyKey: fmt.Sprintf("order-%02d", i), Metadata: metadata}); err != nil {
			t.Fatal(err)
		}
	}
	pk, _ := dynamodb.LedgerKey(usage.Scope{UserID: "u-p", EntitlementKey: "k"}, "")
	page, err := awsdynamodb.NewFromConfig(cfg).Query(context.Background(), &awsdynamodb.QueryInput{
		TableName:                 aws.String(s.queues.LedgerTable.Name),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}},
	})
	if err != nil || page.LastEvaluatedKey == nil || len(page.Items) == n {
		t.Fatalf("the ledger fits one Query page (%v): the test shows nothing", err)
	}

	v := decodeJSON[historyView](t, s.must(t, "history", "--user", "u-p", "--key", "k", "--limit", "0", "--json").stdout)
	if v.Total != n || len(v.Entries) != n {
		t.Fatalf("total %d, %d entries; want %d", v.Total, len(v.Entries), n)
	}
	for i, e := range v.Entries {
		var got bytes.Buffer
		json.Compact(&got, e.Metadata)
		if want := fmt.Sprintf("order-%02d", i); e.Key != want || !bytes.Equal(got.Bytes(), metadata) {
			t.Errorf("entry %d is %s (metadata of %d bytes), want %s and its metadata, in the order applied", i, e.Key, got.Len(), want)
		}
	}
	v = decodeJSON[historyView](t, s.must(t, "history", "--user", "u-p", "--key", "k", "--limit", "3", "--json").stdout)
	if v.Total != n || len(v.Entries) != 3 || v.Entries[0].Key != "order-37" || v.Entries[2].Key != "order-39" {
		t.Errorf("--limit 3: total %d, entries %v; want order-37 to order-39", v.Total, v.Entries)
	}
}
