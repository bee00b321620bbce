package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/metrics"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

func results() []pipeline.Result {
	ev := usage.NewEvent("u", "k")
	ev.Amount = usage.MustDecimal("2.5")
	limit := &usage.RejectionError{Reason: usage.ReasonLimitExceeded, Message: "x"}
	refund := usage.NewEvent("u", "k")
	refund.Operation, refund.RefundOf, refund.Amount = usage.OperationRefund, "c", usage.Decimal{} // all that remained: 1.5
	return []pipeline.Result{
		{Event: ev, Outcome: usage.Outcome{Status: usage.Applied}},
		{Event: ev, Outcome: usage.Outcome{Status: usage.Applied}},
		{Event: refund, Outcome: usage.Outcome{Status: usage.Applied, Entry: &usage.LedgerEntry{Amount: usage.MustDecimal("1.5")}}},
		{Outcome: usage.Outcome{Status: usage.Duplicate}},
		{Outcome: usage.Outcome{Status: usage.Rejected, Err: limit}, DeadLettered: true},
		{Outcome: usage.Outcome{Status: usage.Rejected, Err: &usage.RejectionError{Reason: usage.ReasonInvalidJSON, Message: "x"}}},
		{Outcome: usage.Outcome{Status: usage.Retry, Err: errors.New("throttled")}},
		{Outcome: usage.Outcome{Status: usage.Retry, Err: crash}},
		{Outcome: usage.Outcome{Status: usage.Retry, Err: crash}},
	}
}

// crash is one recovered panic shared by the messages of its scope.
var crash = &pipeline.PanicError{Value: "boom"}

func TestEMFPublishesOneDocumentPerDimensionSet(t *testing.T) {
	var out bytes.Buffer
	emf := &metrics.EMF{Out: &out, FunctionName: "fn", Now: func() time.Time { return time.UnixMilli(1700000000000) }}
	emf.Record(context.Background(), metrics.Count(results(), 12*time.Millisecond))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want a summary and one per reason:\n%s", len(lines), out.String())
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"EventsApplied": 3, "EventsDuplicate": 1, "EventsRejected": 2, "EventsRetried": 3, "EventsDeadLettered": 1, "Panics": 1, "AmountConsumed": 5, "AmountRefunded": 1.5, "ProcessingLatency": 12}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %v", k, doc[k], v)
		}
	}
	aws := doc["_aws"].(map[string]any)
	cw := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
	if cw["Namespace"] != metrics.Namespace || aws["Timestamp"] != float64(1700000000000) {
		t.Errorf("metadata %v", aws)
	}
	// Every value in the document is declared as a metric, and only those.
	declared := map[string]bool{}
	for _, m := range cw["Metrics"].([]any) {
		declared[m.(map[string]any)["Name"].(string)] = true
	}
	for k := range doc {
		if k != "_aws" && k != "FunctionName" && !declared[k] {
			t.Errorf("%s is in the document but not declared", k)
		}
	}
	if len(declared) != len(want) {
		t.Errorf("declared %v, want %d metrics", declared, len(want))
	}
	var byReason map[string]any
	json.Unmarshal([]byte(lines[1]), &byReason)
	if byReason["Reason"] != "INVALID_JSON" || byReason["EventsRejected"] != float64(1) || byReason["FunctionName"] != "fn" {
		t.Errorf("per-reason document %v", byReason)
	}
}

func TestPrometheusExposesCountersAndHealth(t *testing.T) {
	p := metrics.NewPrometheus()
	p.Record(context.Background(), metrics.Count(results(), 30*time.Millisecond))
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	for path, want := range map[string][]string{
		"/metrics": {
			`usage_events_total{outcome="applied"} 3`, `usage_events_total{outcome="rejected"} 2`,
			`usage_events_total{outcome="duplicate"} 1`, `usage_events_total{outcome="retry"} 3`,
			`usage_events_rejected_total{reason="LIMIT_EXCEEDED"} 1`, `usage_events_rejected_total{reason="IDEMPOTENCY_CONFLICT"} 0`,
			`usage_events_dead_lettered_total 1`, `usage_panics_total 1`,
			`usage_amount_consumed_total 5`, `usage_amount_refunded_total 1.5`, `usage_batch_duration_seconds_count 1`, `usage_batch_duration_seconds_bucket{le="0.05"} 1`,
			`usage_batch_duration_seconds_bucket{le="0.025"} 0`,
			"# TYPE usage_batch_duration_seconds histogram", "go_goroutines ", "process_resident_memory_bytes ",
		},
		"/healthz": {"ok"},
	} {
		res, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		body.ReadFrom(res.Body)
		res.Body.Close()
		for _, w := range want {
			if !strings.Contains(body.String(), w) {
				t.Errorf("%s lacks %q:\n%s", path, w, body.String())
			}
		}
	}
}

func TestNotificationMetrics(t *testing.T) {
	var out bytes.Buffer
	emf := &metrics.EMF{Out: &out, FunctionName: "fn", Now: func() time.Time { return time.UnixMilli(1700000000000) }}
	emf.RecordNotifications(context.Background(), metrics.Notifications{Recorded: 2, Published: 1, Failed: 1})
	emf.RecordNotifications(context.Background(), metrics.Notifications{Published: 3, Swept: true, OldestUnpublished: 1500 * time.Millisecond})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines:\n%s", len(lines), out.String())
	}
	names := func(line string) (map[string]any, []string) {
		var doc map[string]any
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatal(err)
		}
		cw := doc["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)
		var ns []string
		for _, m := range cw["Metrics"].([]any) {
			ns = append(ns, m.(map[string]any)["Name"].(string)+"/"+m.(map[string]any)["Unit"].(string))
		}
		return doc, ns
	}
	doc, ns := names(lines[0])
	if strings.Join(ns, " ") != "NotificationsRecorded/Count NotificationsPublished/Count NotificationsFailed/Count" ||
		doc["NotificationsRecorded"] != 2.0 || doc["NotificationsFailed"] != 1.0 || doc["FunctionName"] != "fn" {
		t.Errorf("after a write: %v %s", doc, ns)
	}
	doc, ns = names(lines[1])
	if !strings.Contains(strings.Join(ns, " "), "OldestUnpublishedNotificationAge/Seconds") || doc["OldestUnpublishedNotificationAge"] != 1.5 {
		t.Errorf("after a sweep: %v %s", doc, ns)
	}

	p := metrics.NewPrometheus()
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	scrape := func() string {
		res, err := srv.Client().Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(res.Body)
		return b.String()
	}
	for _, w := range []string{"usage_notifications_recorded_total 0", "usage_notifications_published_total 0", "usage_notifications_failed_total 0", "usage_notification_oldest_unpublished_age_seconds 0"} {
		if !strings.Contains(scrape(), w+"\n") {
			t.Errorf("before anything: lacks %q", w)
		}
	}
	p.RecordNotifications(context.Background(), metrics.Notifications{Recorded: 2, Published: 1, Failed: 1})
	p.RecordNotifications(context.Background(), metrics.Notifications{Published: 1, Swept: true, OldestUnpublished: 90 * time.Second})
	for _, w := range []string{"usage_notifications_recorded_total 2", "usage_notifications_published_total 2", "usage_notifications_failed_total 1", "usage_notification_oldest_unpublished_age_seconds 90"} {
		if !strings.Contains(scrape(), w+"\n") {
			t.Errorf("lacks %q", w)
		}
	}
}
