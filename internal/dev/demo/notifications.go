package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/dev/devstack"
)

// notification is the published message (docs/notifications.md), as a
// subscriber reads it.
type notification struct {
	NotificationID   string       `json:"notificationId"`
	Type             string       `json:"type"`
	UserID           string       `json:"userId"`
	EntitlementKey   string       `json:"entitlementKey"`
	PeriodStart      string       `json:"periodStart"`
	ThresholdPercent *json.Number `json:"thresholdPercent"`
	Amount           *json.Number `json:"amount"`
	OverageUsed      *json.Number `json:"overageUsed"`
	Limit            json.Number  `json:"limit"`
	Used             json.Number  `json:"used"`
	EventID          string       `json:"eventId"`
	OccurredAt       time.Time    `json:"occurredAt"`
}

// delivered is one distinct notification and how it arrived.
type delivered struct {
	notification
	raw        string
	attributes map[string]string
	copies     int
}

// Delivery is at least once, so a subscriber counts notifications by
// notificationId, not messages; how long to wait for one that should not
// come after the expected ones are in.
const (
	notificationWait = 30 * time.Second
	extraWait        = 2 * time.Second
)

// showNotifications reads the inbox until the want notifications the
// events caused have arrived (then a little longer, so that one too many
// would show), and prints them, oldest first.
func showNotifications(ctx context.Context, out io.Writer, sq devstack.SQSClient, inbox devstack.Inbox, want int) error {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	say("==> notifications, read from the queue %s subscribed to the topic %s", inboxName, topicName)
	say("    (each message is SNS's JSON envelope; its Message is the notification. Delivery is at least once:")
	say("    a subscriber drops a repeat by notificationId)")
	byID := map[string]*delivered{}
	add := func(ds []devstack.Delivery) error {
		for _, d := range ds {
			var n notification
			if err := json.Unmarshal([]byte(d.Message), &n); err != nil || n.NotificationID == "" {
				return fmt.Errorf("not a notification: %s (%v)", d.Message, err)
			}
			if seen, ok := byID[n.NotificationID]; ok {
				seen.copies++
				continue
			}
			byID[n.NotificationID] = &delivered{notification: n, raw: d.Message, attributes: d.Attributes, copies: 1}
		}
		return nil
	}
	var addErr error
	_, err := inbox.Receive(ctx, sq, notificationWait, func(ds []devstack.Delivery) bool {
		addErr = add(ds[len(ds)-1:])
		return addErr != nil || len(byID) >= want
	})
	if err == nil && addErr == nil && len(byID) >= want {
		var extra []devstack.Delivery
		extra, err = inbox.Receive(ctx, sq, extraWait, nil)
		addErr = add(extra)
	}
	if err != nil {
		return err
	}
	if addErr != nil {
		return addErr
	}
	notes := slices.SortedFunc(maps.Values(byID), func(a, b *delivered) int { return a.OccurredAt.Compare(b.OccurredAt) })
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "    TYPE\tUSER\tENTITLEMENT\tTHRESHOLD\tUSED\tNOTIFICATION ID")
	for _, n := range notes {
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s\n", n.Type, n.UserID, n.EntitlementKey, threshold(n.notification), usedText(n.notification), n.NotificationID)
	}
	tw.Flush()
	say("    %d notification(s)", len(notes))
	if len(notes) > 0 {
		n := notes[len(notes)/2]
		say("==> one of them as a subscriber receives it: message attributes (for filter policies), then the body")
		for _, k := range slices.Sorted(maps.Keys(n.attributes)) {
			say("    %s = %s", k, n.attributes[k])
		}
		say("    %s", n.raw)
	}
	if len(notes) != want {
		return fmt.Errorf("%d notification(s) arrived within %s, want %d: does the worker publish them (NOTIFY_TOPIC_ARN)? Its log is on stderr", len(notes), notificationWait, want)
	}
	return nil
}

func threshold(n notification) string {
	if n.ThresholdPercent == nil {
		return "-"
	}
	return n.ThresholdPercent.String() + " %"
}

func usedText(n notification) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s of %s", n.Used, n.Limit)
	if n.Amount != nil {
		fmt.Fprintf(&b, ", asked %s", *n.Amount)
	}
	if n.OverageUsed != nil {
		fmt.Fprintf(&b, ", %s into the overage", *n.OverageUsed)
	}
	return b.String()
}
