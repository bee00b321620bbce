package metering_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/metering"

	"github.com/usage-event-service/usage-event-service/internal/dev/memstore"
	"github.com/usage-event-service/usage-event-service/usage"
)

var now = time.Date(2026, 12, 14, 9, 30, 0, 0, time.UTC)

func engine(items map[string]map[string]usage.Value) *metering.Decisions {
	s := memstore.New()
	s.Now = func() time.Time { return now }
	for key, attrs := range items {
		s.PutEntitlement(usage.Scope{UserID: "u1", EntitlementKey: key}, attrs)
	}
	return &metering.Decisions{Store: s, Now: func() time.Time { return now }}
}

func num(s string) usage.Value { return usage.NumberValue(usage.MustDecimal(s)) }

func answer(t *testing.T, e *metering.Decisions, body string) string {
	t.Helper()
	b, err := json.Marshal(e.Handle(context.Background(), []byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAnswers(t *testing.T) {
	items := map[string]map[string]usage.Value{
		"TUTOR":     {usage.AttrLimit: num("10"), usage.AttrUsed: num("2"), usage.AttrResetPeriod: usage.StringValue("MONTHLY"), usage.AttrPeriodStart: usage.StringValue("2026-12-01T00:00:00Z")},
		"OLD":       {usage.AttrLimit: num("5"), usage.AttrUsed: num("5"), usage.AttrResetPeriod: usage.StringValue("MONTHLY"), usage.AttrPeriodStart: usage.StringValue("2026-11-01T00:00:00Z")},
		"UNLIMITED": {usage.AttrUsed: num("0.5")},
		"BROKEN":    {usage.AttrUsed: usage.StringValue("6")},
	}
	e := engine(items)
	steps := []struct{ body, want string }{
		{`{"userId":"u1","entitlementKey":"TUTOR","amount":1,"idempotencyKey":"c-1"}`,
			`{"status":"APPLIED","amount":1,"used":3,"limit":10,"remaining":7,"resetPeriod":"MONTHLY","periodStart":"2026-12-01T00:00:00Z","nextReset":"2027-01-01T00:00:00Z","available":7}`},
		{`{"userId":"u1","entitlementKey":"TUTOR","amount":1,"idempotencyKey":"c-1"}`,
			`{"status":"DUPLICATE","original":{"status":"APPLIED","operation":"consume","amount":1,"appliedAt":"2026-12-14T09:30:00Z","periodStart":"2026-12-01T00:00:00Z"},"used":3,"limit":10,"remaining":7,"resetPeriod":"MONTHLY","periodStart":"2026-12-01T00:00:00Z","nextReset":"2027-01-01T00:00:00Z","available":7}`},
		{`{"userId":"u1","entitlementKey":"TUTOR","amount":2,"idempotencyKey":"c-1"}`,
			`{"status":"REJECTED","reason":"IDEMPOTENCY_CONFLICT","message":"idempotencyKey: was already applied with amount 1, this event has amount 2","original":{"status":"APPLIED","operation":"consume","amount":1,"appliedAt":"2026-12-14T09:30:00Z","periodStart":"2026-12-01T00:00:00Z"},"used":3,"limit":10,"remaining":7,"resetPeriod":"MONTHLY","periodStart":"2026-12-01T00:00:00Z","nextReset":"2027-01-01T00:00:00Z","available":7}`},
		{`{"userId":"u1","entitlementKey":"TUTOR","amount":8,"idempotencyKey":"c-2"}`,
			`{"status":"REJECTED","reason":"LIMIT_EXCEEDED","message":"amount: using 8 more would exceed the limit of 10 (used 3)","used":3,"limit":10,"remaining":7,"resetPeriod":"MONTHLY","periodStart":"2026-12-01T00:00:00Z","nextReset":"2027-01-01T00:00:00Z","available":7}`},
		{`{"operation":"refund","userId":"u1","entitlementKey":"TUTOR","refundOf":"c-1","idempotencyKey":"r-1"}`,
			`{"status":"APPLIED","amount":1,"used":2,"limit":10,"remaining":8,"resetPeriod":"MONTHLY","periodStart":"2026-12-01T00:00:00Z","nextReset":"2027-01-01T00:00:00Z","available":8}`},
		{`{"operation":"refund","userId":"u1","entitlementKey":"TUTOR","refundOf":"c-9","idempotencyKey":"r-2"}`,
			`{"status":"REJECTED","reason":"REFUND_TARGET_NOT_FOUND","message":"refundOf: no applied consume \"c-9\" in this scope","used":2,"limit":10,"remaining":8,"resetPeriod":"MONTHLY","periodStart":"2026-12-01T00:00:00Z","nextReset":"2027-01-01T00:00:00Z","available":8}`},
		{`{"operation":"balance","userId":"u1","entitlementKey":"TUTOR"}`,
			`{"status":"OK","used":2,"limit":10,"remaining":8,"resetPeriod":"MONTHLY","periodStart":"2026-12-01T00:00:00Z","nextReset":"2027-01-01T00:00:00Z","available":8}`},
		// An ended period reads as used 0 from the new period; nothing is written.
		{`{"operation":"balance","userId":"u1","entitlementKey":"OLD"}`,
			`{"status":"OK","used":0,"limit":5,"remaining":5,"resetPeriod":"MONTHLY","periodStart":"2026-12-01T00:00:00Z","nextReset":"2027-01-01T00:00:00Z","available":5}`},
		{`{"operation":"balance","userId":"u1","entitlementKey":"UNLIMITED"}`,
			`{"status":"OK","used":0.5,"resetPeriod":"NONE"}`},
		{`{"operation":"balance","userId":"u1","entitlementKey":"NONE"}`,
			`{"status":"REJECTED","reason":"ENTITLEMENT_NOT_FOUND","message":"no entitlement for this userId and entitlementKey"}`},
		{`{"operation":"balance","userId":"u1","entitlementKey":"BROKEN"}`,
			`{"status":"REJECTED","reason":"INVALID_ENTITLEMENT","message":"the stored entitlement cannot be used: used must be a number"}`},
		{`{"userId":"u1","entitlementKey":"NONE","idempotencyKey":"c-3"}`,
			`{"status":"REJECTED","reason":"ENTITLEMENT_NOT_FOUND","message":"no entitlement for this userId and entitlementKey"}`},
		{`{"userId":"u1","entitlementKey":"TUTOR","amount":1}`,
			`{"status":"REJECTED","reason":"MISSING_FIELD","message":"idempotencyKey: is required for a synchronous consume"}`},
		{`{"userId":"u1","entitlementKey":"TUTOR","amount":"1","idempotencyKey":"c-4"}`,
			`{"status":"REJECTED","reason":"INVALID_AMOUNT","message":"amount: must be a JSON number, got a string"}`},
		{`not json`, `{"status":"REJECTED","reason":"INVALID_JSON","message":"body is not valid JSON: invalid character 'o' in literal null (expecting 'u')"}`},
		{`{"operation":"transfer","userId":"u1","entitlementKey":"TUTOR"}`,
			`{"status":"REJECTED","reason":"INVALID_FIELD","message":"operation: must be one of consume, refund, balance, reserve, commit, release, grant, void; got \"transfer\""}`},
	}
	for i, st := range steps {
		if got := answer(t, e, st.body); got != st.want {
			t.Errorf("step %d: %s\n got %s\nwant %s", i, st.body, got, st.want)
		}
	}
}

func TestHoldAnswers(t *testing.T) {
	e := engine(map[string]map[string]usage.Value{
		"TUTOR": {usage.AttrLimit: num("10"), usage.AttrUsed: num("2"), usage.AttrResetPeriod: usage.StringValue("MONTHLY"), usage.AttrPeriodStart: usage.StringValue("2026-12-01T00:00:00Z")},
	})
	period := `"resetPeriod":"MONTHLY","periodStart":"2026-12-01T00:00:00Z","nextReset":"2027-01-01T00:00:00Z"`
	steps := []struct{ body, want string }{
		{`{"operation":"reserve","userId":"u1","entitlementKey":"TUTOR","amount":5,"idempotencyKey":"job-77","holdSeconds":900}`,
			`{"status":"APPLIED","amount":5,"hold":{"holdId":"job-77","amount":5,"expiresAt":"2026-12-14T09:45:00Z","state":"active"},"used":7,"held":5,"limit":10,"remaining":3,` + period + `,"available":3}`},
		{`{"operation":"reserve","userId":"u1","entitlementKey":"TUTOR","amount":5,"idempotencyKey":"job-77"}`,
			`{"status":"DUPLICATE","original":{"status":"APPLIED","operation":"reserve","amount":5,"appliedAt":"2026-12-14T09:30:00Z","periodStart":"2026-12-01T00:00:00Z"},"hold":{"holdId":"job-77","amount":5,"expiresAt":"2026-12-14T09:45:00Z","state":"active"},"used":7,"held":5,"limit":10,"remaining":3,` + period + `,"available":3}`},
		{`{"operation":"reserve","userId":"u1","entitlementKey":"TUTOR","amount":4,"idempotencyKey":"job-78"}`,
			`{"status":"REJECTED","reason":"LIMIT_EXCEEDED","message":"amount: using 4 more would exceed the limit of 10 (used 7)","used":7,"held":5,"limit":10,"remaining":3,` + period + `,"available":3}`},
		{`{"operation":"reserve","userId":"u1","entitlementKey":"TUTOR","amount":1}`,
			`{"status":"REJECTED","reason":"MISSING_FIELD","message":"idempotencyKey: is required for a reserve: it is the hold's ID"}`},
		{`{"operation":"commit","userId":"u1","entitlementKey":"TUTOR","holdId":"job-77","amount":3.2}`,
			`{"status":"APPLIED","amount":5,"hold":{"holdId":"job-77","amount":5,"expiresAt":"2026-12-14T09:45:00Z","state":"committed","committed":3.2},"used":5.2,"limit":10,"remaining":4.8,` + period + `,"available":4.8}`},
		{`{"operation":"release","userId":"u1","entitlementKey":"TUTOR","holdId":"job-77"}`,
			`{"status":"REJECTED","reason":"HOLD_NOT_ACTIVE","message":"holdId: the hold \"job-77\" is committed","original":{"status":"APPLIED","operation":"reserve","amount":5,"appliedAt":"2026-12-14T09:30:00Z","periodStart":"2026-12-01T00:00:00Z"},"hold":{"holdId":"job-77","amount":5,"expiresAt":"2026-12-14T09:45:00Z","state":"committed","committed":3.2},"used":5.2,"limit":10,"remaining":4.8,` + period + `,"available":4.8}`},
		{`{"operation":"commit","userId":"u1","entitlementKey":"TUTOR","holdId":"job-99"}`,
			`{"status":"REJECTED","reason":"HOLD_NOT_FOUND","message":"holdId: no hold \"job-99\" in this scope","used":5.2,"limit":10,"remaining":4.8,` + period + `,"available":4.8}`},
		{`{"operation":"commit","userId":"u1","entitlementKey":"TUTOR"}`,
			`{"status":"REJECTED","reason":"MISSING_FIELD","message":"holdId: is required"}`},
		{`{"operation":"reserve","userId":"u1","entitlementKey":"TUTOR","idempotencyKey":"j","holdSeconds":0}`,
			`{"status":"REJECTED","reason":"INVALID_FIELD","message":"holdSeconds: must be a whole number from 1 to 86400, got \"0\""}`},
	}
	for i, st := range steps {
		if got := answer(t, e, st.body); got != st.want {
			t.Errorf("step %d: %s\n got %s\nwant %s", i, st.body, got, st.want)
		}
	}
}

// TestEngineRecordsNotificationsWhenAsked: a synchronous consume that
// crosses a threshold records it, as a queued one does.
func TestEngineRecordsNotificationsWhenAsked(t *testing.T) {
	s := memstore.New()
	scope := usage.Scope{UserID: "u1", EntitlementKey: "TUTOR"}
	s.PutEntitlement(scope, map[string]usage.Value{usage.AttrLimit: num("10"), usage.AttrUsed: num("6")})
	e := &metering.Decisions{Store: s, Now: func() time.Time { return now }}
	answer(t, e, `{"userId":"u1","entitlementKey":"TUTOR","amount":1,"idempotencyKey":"c-1"}`)
	if got := s.Notifications(scope); len(got) != 0 {
		t.Fatalf("without Notify: %v", got)
	}
	e.Notify = &usage.Notify{Thresholds: []usage.Decimal{usage.MustDecimal("80")}}
	answer(t, e, `{"userId":"u1","entitlementKey":"TUTOR","amount":1,"idempotencyKey":"c-2"}`)
	got := s.Notifications(scope)
	if len(got) != 1 {
		t.Fatalf("with Notify: %v", got)
	}
	for _, n := range got {
		if n.Type != usage.NotifyThresholdReached || n.Used.String() != "8" || n.EventID != "c-2" {
			t.Errorf("recorded %+v", n)
		}
	}
}
