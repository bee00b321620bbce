package notify_test

import (
	"context"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/usage"
)

// TestARepeatedThresholdOnTheItemIsOneThreshold: an entitlement's
// notifyThresholds that names one percentage twice ("80" and "80.0") is
// one threshold: the write that crosses it records exactly one
// notification, end to end on DynamoDB Local (two Puts of one item in a
// transaction used to lose the crossing there).
func TestARepeatedThresholdOnTheItemIsOneThreshold(t *testing.T) {
	w := newWorld(t, false)
	scope := usage.Scope{UserID: "u", EntitlementKey: "K"}
	w.entitlement(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "K", Limit: dec("10"), Extra: thresholdsAttr("80", "80.0")})
	store := metering.Writer{Store: dynamodb.NewStore(w.ddb, dynamodb.Config{EntitlementsTable: w.entitlements, LedgerTable: w.ledger})}
	rules := usage.Rules{Now: time.Now(), Notify: defaults}
	out := store.Update(context.Background(), scope, []usage.Record{consume("u", "K", "9", "c-1")}, rules.Plan)[0]
	notes := w.recorded(t, scope)
	if out.Status != usage.Applied || len(notes) != 1 {
		t.Errorf("outcome %s (%v), %d notifications recorded; want APPLIED and 1 (threshold 80)", out.Status, out.Err, len(notes))
	}
}
