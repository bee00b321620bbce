package notify_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/usage"
)

// TestARepeatedThresholdOnTheItemIsOneThreshold: an entitlement's
// notifyThresholds that names one percentage twice ("80" and "80.0", or
// 80 twice) is one threshold: the write that crosses it records exactly
// one notification.
//
// It fails today (a bug in package usage, reported rather than fixed
// here): Notify.thresholds does not deduplicate the item's list, so the
// plan carries two Puts of one notification item; DynamoDB Local cancels
// the second Put's condition, the store learns the notification as
// recorded, and the event is APPLIED with none recorded: the crossing is
// lost. (DynamoDB proper refuses two operations on one item in a
// transaction as a ValidationException: RETRY for good.) Run it with
// USAGE_BUG_REPROS=1.
func TestARepeatedThresholdOnTheItemIsOneThreshold(t *testing.T) {
	if os.Getenv("USAGE_BUG_REPROS") == "" {
		t.Skip("known bug in usage.Notify.thresholds (repeated notifyThresholds); USAGE_BUG_REPROS=1 runs it")
	}
	w := newWorld(t, false)
	scope := usage.Scope{UserID: "u", EntitlementKey: "K"}
	w.entitlement(t, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "K", Limit: dec("10"), Extra: thresholdsAttr("80", "80.0")})
	store := dynamodb.NewStore(w.ddb, dynamodb.Config{EntitlementsTable: w.entitlements, LedgerTable: w.ledger})
	rules := usage.Rules{Now: time.Now(), Notify: defaults}
	out := store.Update(context.Background(), scope, []usage.Record{consume("u", "K", "9", "c-1")}, rules.Plan)[0]
	notes := w.recorded(t, scope)
	if out.Status != usage.Applied || len(notes) != 1 {
		t.Errorf("outcome %s (%v), %d notifications recorded; want APPLIED and 1 (threshold 80)", out.Status, out.Err, len(notes))
	}
}
