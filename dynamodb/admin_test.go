package dynamodb_test

import (
	"testing"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/usage"
)

// PutEntitlement writes overageLimit and rolloverMax as access-service
// would, and leaves them out when not given; the service reads them back.
func TestPutEntitlementOverageAndRollover(t *testing.T) {
	e := newEnv(t, dynamodb.DefaultEntitlementKeys)
	limit, overage, rollover := usage.MustDecimal("10"), usage.MustDecimal("2.5"), usage.MustDecimal("4")
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "with", Limit: &limit, OverageLimit: &overage, RolloverMax: &rollover,
		ResetPeriod: usage.ResetMonthly})
	e.put(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "without", Limit: &limit})

	got := e.get(t, "u", "with")
	if got.Malformed != nil || got.OverageLimit == nil || got.OverageLimit.String() != "2.5" || got.RolloverMax == nil || got.RolloverMax.String() != "4" {
		t.Errorf("with both: overageLimit %v, rolloverMax %v, malformed %v; want 2.5 and 4", got.OverageLimit, got.RolloverMax, got.Malformed)
	}
	for _, attr := range []string{usage.AttrOverageLimit, usage.AttrRolloverMax} {
		if v := got.Observed.Get(attr); v.Kind != usage.KindNumber {
			t.Errorf("%s stored as %v, want a number", attr, v)
		}
	}
	got = e.get(t, "u", "without")
	if got.OverageLimit != nil || got.RolloverMax != nil || got.Observed.Get(usage.AttrOverageLimit).Present() || got.Observed.Get(usage.AttrRolloverMax).Present() {
		t.Errorf("without: overageLimit %v, rolloverMax %v; want both attributes absent", got.OverageLimit, got.RolloverMax)
	}
}
