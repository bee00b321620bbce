package metering_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/dev/memstore"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/usage"
)

// TestGrantAnswers: grants, a consume spilling into them, a refund to a
// voided grant, and the balance's breakdown, as a synchronous caller
// sees them.
func TestGrantAnswers(t *testing.T) {
	e := engine(map[string]map[string]usage.Value{
		"TUTOR": {usage.AttrLimit: num("10"), usage.AttrUsed: num("8"), usage.AttrOverageLimit: num("2"),
			usage.AttrResetPeriod: usage.StringValue("MONTHLY"), usage.AttrPeriodStart: usage.StringValue("2026-12-01T00:00:00Z")},
	})
	period := `"resetPeriod":"MONTHLY","periodStart":"2026-12-01T00:00:00Z","nextReset":"2027-01-01T00:00:00Z"`
	steps := []struct{ body, want string }{
		{`{"operation":"grant","userId":"u1","entitlementKey":"TUTOR","grantId":"topup-1","amount":50,"expiresAt":"2027-12-14T00:00:00+01:00"}`,
			`{"status":"APPLIED","amount":50,"grant":{"grantId":"topup-1","amount":50,"priority":100,"expiresAt":"2027-12-13T23:00:00Z","state":"active"},"used":8,"limit":10,"remaining":2,` + period +
				`,"grants":[{"grantId":"topup-1","amount":50,"remaining":50,"priority":100,"expiresAt":"2027-12-13T23:00:00Z"}],"overage":{"limit":2,"used":0,"remaining":2},"available":54}`},
		{`{"userId":"u1","entitlementKey":"TUTOR","amount":5,"idempotencyKey":"c-1"}`,
			`{"status":"APPLIED","amount":5,"draws":[{"bucket":"allowance","amount":2},{"bucket":"grant","grantId":"topup-1","amount":3}],"used":10,"limit":10,"remaining":0,` + period +
				`,"grants":[{"grantId":"topup-1","amount":50,"remaining":47,"priority":100,"expiresAt":"2027-12-13T23:00:00Z"}],"overage":{"limit":2,"used":0,"remaining":2},"available":49}`},
		{`{"operation":"void","userId":"u1","entitlementKey":"TUTOR","grantId":"topup-1"}`,
			`{"status":"APPLIED","amount":50,"grant":{"grantId":"topup-1","amount":50,"priority":100,"expiresAt":"2027-12-13T23:00:00Z","state":"voided","voided":47},"used":10,"limit":10,"remaining":0,` + period +
				`,"overage":{"limit":2,"used":0,"remaining":2},"available":2}`},
		{`{"operation":"refund","userId":"u1","entitlementKey":"TUTOR","refundOf":"c-1","idempotencyKey":"r-1"}`,
			`{"status":"APPLIED","amount":5,"returned":[{"bucket":"grant","grantId":"topup-1","amount":3,"lapsed":true},{"bucket":"allowance","amount":2}],"used":8,"limit":10,"remaining":2,` + period +
				`,"overage":{"limit":2,"used":0,"remaining":2},"available":4}`},
		{`{"operation":"void","userId":"u1","entitlementKey":"TUTOR","grantId":"topup-1"}`,
			`{"status":"DUPLICATE","original":{"status":"APPLIED","operation":"grant","amount":50,"appliedAt":"2026-12-14T09:30:00Z","periodStart":"2026-12-01T00:00:00Z"},"grant":{"grantId":"topup-1","amount":50,"priority":100,"expiresAt":"2027-12-13T23:00:00Z","state":"voided","voided":47},"used":8,"limit":10,"remaining":2,` + period +
				`,"overage":{"limit":2,"used":0,"remaining":2},"available":4}`},
	}
	for i, st := range steps {
		if got := answer(t, e, st.body); got != st.want {
			t.Errorf("step %d: %s\n got %s\nwant %s", i, st.body, got, st.want)
		}
	}
}

// TestBadGrantsGetAReasonAndChangeNothing: every bad grant or void is
// rejected with its own reason, and the entitlement and the ledger are
// exactly as before.
func TestBadGrantsGetAReasonAndChangeNothing(t *testing.T) {
	s := memstore.New()
	scope := usage.Scope{UserID: "u1", EntitlementKey: "TUTOR"}
	s.PutEntitlement(scope, map[string]usage.Value{usage.AttrLimit: num("10"), usage.AttrUsed: num("4")})
	e := &metering.Decisions{Store: s, Now: func() time.Time { return now }}
	if got := answer(t, e, `{"operation":"grant","userId":"u1","entitlementKey":"TUTOR","grantId":"ok","amount":1}`); got[:20] != `{"status":"APPLIED",` {
		t.Fatalf("a good grant: %s", got)
	}
	before, ledger := s.Entitlement(scope), len(s.Ledger(scope))
	bad := []struct{ body, reason string }{
		{`{"operation":"grant","userId":"u1","entitlementKey":"TUTOR","grantId":"g","amount":-1}`, "INVALID_AMOUNT"},
		{`{"operation":"grant","userId":"u1","entitlementKey":"TUTOR","grantId":"g","amount":1234567890123456789012345678901234567890}`, "INVALID_AMOUNT"},
		{`{"operation":"grant","userId":"u1","entitlementKey":"TUTOR","grantId":"g","amount":0}`, "INVALID_AMOUNT"},
		{`{"operation":"grant","userId":"u1","entitlementKey":"TUTOR","grantId":"g"}`, "MISSING_FIELD"},
		{`{"operation":"grant","userId":"u1","entitlementKey":"TUTOR","grantId":"g","amount":1,"expiresAt":"2026-12-14T09:29:59Z"}`, "INVALID_FIELD"},
		{`{"operation":"grant","userId":"u1","entitlementKey":"TUTOR","grantId":"g","amount":1,"expiresAt":"2026-12-14T09:30:00Z"}`, "INVALID_FIELD"},
		{`{"operation":"grant","userId":"u1","entitlementKey":"TUTOR","grantId":"g","amount":1,"expiresAt":"next year"}`, "INVALID_FIELD"},
		{`{"operation":"grant","userId":"u1","entitlementKey":"TUTOR","grantId":"g","amount":1,"priority":1001}`, "INVALID_FIELD"},
		{`{"operation":"grant","userId":"u1","entitlementKey":"TUTOR","grantId":"ok","amount":2}`, "IDEMPOTENCY_CONFLICT"},
		{`{"operation":"grant","userId":"u1","entitlementKey":"NOPE","grantId":"g","amount":1}`, "ENTITLEMENT_NOT_FOUND"},
		{`{"operation":"void","userId":"u1","entitlementKey":"TUTOR","grantId":"unknown"}`, "GRANT_NOT_FOUND"},
		{`{"operation":"void","userId":"u1","entitlementKey":"TUTOR"}`, "MISSING_FIELD"},
		{`{"operation":"void","userId":"u1","entitlementKey":"TUTOR","grantId":"ok","amount":1}`, "INVALID_FIELD"},
	}
	for _, b := range bad {
		a := e.Handle(context.Background(), []byte(b.body))
		if string(a.Reason) != b.reason {
			t.Errorf("%s: %s %s (%s), want %s", b.body, a.Status, a.Reason, a.Message, b.reason)
		}
	}
	if after := s.Entitlement(scope); !reflect.DeepEqual(after, before) || len(s.Ledger(scope)) != ledger {
		t.Errorf("bad requests changed something: %+v -> %+v, ledger %d -> %d", before, after, ledger, len(s.Ledger(scope)))
	}
}

// TestHoldAnswersWithGrants: a reserve shows what it drew beyond the
// allowance; committing the whole hold shows neither draws nor
// returned (nothing moves); a partial commit shows where the unused part
// went back.
func TestHoldAnswersWithGrants(t *testing.T) {
	e := engine(map[string]map[string]usage.Value{
		"TUTOR": {usage.AttrLimit: num("5"), usage.AttrUsed: num("0")},
	})
	steps := []struct{ body, want string }{
		{`{"operation":"grant","userId":"u1","entitlementKey":"TUTOR","grantId":"g1","amount":10}`, ""},
		{`{"operation":"reserve","userId":"u1","entitlementKey":"TUTOR","amount":7,"idempotencyKey":"h1","holdTtlSeconds":900}`, `"draws":[{"bucket":"allowance","amount":5},{"bucket":"grant","grantId":"g1","amount":2}]`},
		{`{"operation":"commit","userId":"u1","entitlementKey":"TUTOR","holdId":"h1"}`, ""},
		{`{"operation":"reserve","userId":"u1","entitlementKey":"TUTOR","amount":4,"idempotencyKey":"h2","holdTtlSeconds":900}`, `"draws":[{"bucket":"grant","grantId":"g1","amount":4}]`},
		{`{"operation":"commit","userId":"u1","entitlementKey":"TUTOR","holdId":"h2","amount":1}`, `"returned":[{"bucket":"grant","grantId":"g1","amount":3}]`},
	}
	for i, st := range steps {
		got := answer(t, e, st.body)
		if !strings.HasPrefix(got, `{"status":"APPLIED"`) {
			t.Fatalf("step %d: %s", i, got)
		}
		shown := ""
		for _, f := range []string{`"draws":`, `"returned":`} {
			if at := strings.Index(got, f); at >= 0 {
				shown = got[at : at+strings.Index(got[at:], "]")+1]
			}
		}
		if shown != st.want {
			t.Errorf("step %d: %s\n shows %s\n want %s\n(%s)", i, st.body, shown, st.want, got)
		}
	}
}
