package usage

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"time"
)

// Notification types.
const (
	NotifyThresholdReached = "usage.threshold.reached"
	NotifyLimitRejected    = "usage.limit.rejected"
	NotifyOverageStarted   = "usage.overage.started"
)

// AttrNotifyThresholds is the entitlement attribute (a list of
// percentages) that overrides the default thresholds; access-service owns
// it, metering only reads it.
const AttrNotifyThresholds = "notifyThresholds"

// Notify is what to notify; Rules without it record no notification.
type Notify struct {
	// Thresholds are percentages of limit (0 < p <= 100) notified when an
	// applied operation takes used from below to at or above them, once
	// per period. An entitlement's notifyThresholds overrides them.
	Thresholds []Decimal
	// LimitRejected: notify the first LIMIT_EXCEEDED of each period.
	LimitRejected bool
	// OverageStarted: notify the first consume of each period that draws
	// from the overage.
	OverageStarted bool
}

// Notification is one recorded notification: decided in the same atomic
// write as the usage change (or the rejection's confirmation) that caused
// it, at most once per (type, scope, period, threshold), and published
// from the outbox afterwards (at least once; subscribers drop repeats by
// ID).
type Notification struct {
	// ID is stable for (type, userId, entitlementKey, periodStart,
	// threshold): a redelivery of the publication has the same ID.
	ID   string
	Type string
	// Key names the recorded item within the scope: unique per period,
	// type and threshold.
	Key            string
	UserID         string
	EntitlementKey string
	PeriodStart    string
	// PoolID is set on a pool's notification: UserID is then the member
	// whose event crossed (or was rejected).
	PoolID string
	// ThresholdPercent is nil for usage.limit.rejected.
	ThresholdPercent *Decimal
	Limit            Decimal
	// Used is, for a threshold, the exact used right after the write that
	// crossed it; for a rejection, used when the event was rejected.
	Used Decimal
	// Amount is, for a rejection, what the event asked for.
	Amount *Decimal
	// OverageUsed is, for usage.overage.started, the overage used right
	// after the event that went into it.
	OverageUsed *Decimal
	// EventID is the dedup key of the event whose write crossed (or that
	// was rejected).
	EventID string
	// KeepUntil is when the period ends (zero for entitlements that never
	// reset): the record must outlive it, to keep deduplicating.
	KeepUntil time.Time
	// OccurredAt and PublishedAt are set by the store.
	OccurredAt, PublishedAt time.Time
}

// Scope is the scope a notification is recorded under: its pool's, for
// a pool's notification.
func (n Notification) Scope() Scope {
	if n.PoolID != "" {
		return PoolScope(n.PoolID, n.EntitlementKey)
	}
	return Scope{UserID: n.UserID, EntitlementKey: n.EntitlementKey}
}

func newNotification(typ string, scope Scope, periodStart string, percent *Decimal) Notification {
	threshold := "-"
	if percent != nil {
		threshold = percent.String()
	}
	key := periodStart + "#" + typ + "#" + threshold
	content := lengthPrefixed(typ) + lengthPrefixed(scope.UserID) + lengthPrefixed(scope.EntitlementKey) +
		lengthPrefixed(periodStart) + lengthPrefixed(threshold)
	n := Notification{Type: typ, UserID: scope.UserID, EntitlementKey: scope.EntitlementKey, PeriodStart: periodStart, ThresholdPercent: percent}
	if scope.Pool {
		// A pool's notifications are known among its members' (State.Notified):
		// their keys name the pool. UserID is then the member whose event it was.
		key, content = poolNotificationPrefix+scope.UserID+"#"+key, "pool:"+content
		n.PoolID, n.UserID = scope.UserID, ""
	}
	sum := sha256.Sum256([]byte(content))
	n.ID, n.Key = hex.EncodeToString(sum[:16]), key
	return n
}

// poolNotificationPrefix starts the keys of a pool's notifications.
const poolNotificationPrefix = "POOL#"

func lengthPrefixed(s string) string { return strconv.Itoa(len(s)) + ":" + s }

// thresholds returns the entitlement's thresholds as (percent, amount of
// usage) pairs, ascending, or nil when none apply (no limit, none set).
func (n *Notify) thresholds(ent Entitlement) (percents, levels []Decimal) {
	if n == nil || ent.Limit == nil {
		return nil, nil
	}
	ps := n.Thresholds
	if ent.NotifyThresholds != nil {
		ps = *ent.NotifyThresholds
	}
	for _, p := range ps {
		if p.Sign() <= 0 || p.Cmp(DecimalFromInt(100)) > 0 || slices.ContainsFunc(percents, func(q Decimal) bool { return q.Cmp(p) == 0 }) {
			continue // out of range, or listed twice (80 and 80.0 are one threshold)
		}
		percents = append(percents, p)
		levels = append(levels, ent.Limit.Mul(p).Shift(-2))
	}
	return percents, levels
}
