package metering_test

import (
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/dev/memstore"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/usage"
)

// TestPoolAnswers: a member's answers show which limit refused and the
// pool's side: its ID and its balance after the decision; a grant to the
// pool, and its balance, are answered as any entitlement's.
func TestPoolAnswers(t *testing.T) {
	s := memstore.New()
	s.Now = func() time.Time { return now }
	s.PutEntitlement(usage.PoolScope("team", "TUTOR"), map[string]usage.Value{usage.AttrLimit: num("5"), usage.AttrUsed: num("3")})
	s.PutEntitlement(usage.Scope{UserID: "u1", EntitlementKey: "TUTOR"}, map[string]usage.Value{usage.AttrLimit: num("4"), usage.AttrUsed: num("0"), usage.AttrPool: usage.StringValue("team")})
	s.PutEntitlement(usage.Scope{UserID: "u1", EntitlementKey: "LONELY"}, map[string]usage.Value{usage.AttrPool: usage.StringValue("nobody")})
	e := &metering.Decisions{Store: s, Now: func() time.Time { return now }}
	for _, step := range []struct{ body, want string }{
		{`{"userId":"u1","entitlementKey":"TUTOR","amount":2,"idempotencyKey":"c-1"}`,
			`{"status":"APPLIED","amount":2,"used":2,"limit":4,"remaining":2,"resetPeriod":"NONE","available":2,"pool":{"poolId":"team","used":5,"limit":5,"remaining":0,"available":0}}`},
		{`{"userId":"u1","entitlementKey":"TUTOR","amount":1,"idempotencyKey":"c-2"}`,
			`{"status":"REJECTED","reason":"POOL_LIMIT_EXCEEDED","message":"amount: the pool \"team\": using 1 more would exceed the limit of 5 (used 5)","used":2,"limit":4,"remaining":2,"resetPeriod":"NONE","available":2,"pool":{"poolId":"team","used":5,"limit":5,"remaining":0,"available":0}}`},
		{`{"operation":"refund","userId":"u1","entitlementKey":"TUTOR","refundOf":"c-1","amount":1,"idempotencyKey":"r-1"}`,
			`{"status":"APPLIED","amount":1,"used":1,"limit":4,"remaining":3,"resetPeriod":"NONE","available":3,"pool":{"poolId":"team","used":4,"limit":5,"remaining":1,"available":1}}`},
		{`{"poolId":"team","entitlementKey":"TUTOR","operation":"grant","grantId":"topup","amount":3}`,
			`{"status":"APPLIED","amount":3,"grant":{"grantId":"topup","amount":3,"priority":100,"state":"active"},"used":4,"limit":5,"remaining":1,"resetPeriod":"NONE","grants":[{"grantId":"topup","amount":3,"remaining":3,"priority":100}],"available":4}`},
		{`{"poolId":"team","entitlementKey":"TUTOR","operation":"balance"}`,
			`{"status":"OK","used":4,"limit":5,"remaining":1,"resetPeriod":"NONE","grants":[{"grantId":"topup","amount":3,"remaining":3,"priority":100}],"available":4}`},
		{`{"poolId":"team","entitlementKey":"TUTOR","amount":1}`,
			`{"status":"REJECTED","reason":"INVALID_FIELD","message":"poolId: is only for operations grant, void and balance: a pool's members consume from it through their own entitlements"}`},
		{`{"userId":"u1","entitlementKey":"LONELY","amount":1,"idempotencyKey":"c-3"}`,
			`{"status":"REJECTED","reason":"POOL_NOT_FOUND","message":"the entitlement's pool \"nobody\" has no entitlement of this key","used":0,"resetPeriod":"NONE","pool":{"poolId":"nobody"}}`},
	} {
		if got := answer(t, e, step.body); got != step.want {
			t.Errorf("%s\n got %s\nwant %s", step.body, got, step.want)
		}
	}
}
