package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/spf13/cobra"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/notify"
	"github.com/usage-event-service/usage-event-service/usage"
)

const notificationsDetails = `Lists the usage notifications recorded for a user in the ledger table
(USAGE_LEDGER_TABLE or --ledger-table), read with strong consistency, and
whether each was published to the topic: usage.threshold.reached (a
threshold of the limit reached in a period), usage.limit.rejected (the
period's first LIMIT_EXCEEDED) and usage.overage.started (a consume or
reserve that drew from the overage while none of it was used yet in the
period; USED/LIMIT then shows the overage used right after it too).

Each is recorded in the same write as the usage change that caused it,
once per type, threshold and period, and published right after it; one
not published yet is left to the recovery sweep (NOTIFY_RECOVERY_INTERVAL).

With --key, only that entitlement. Without it, the user's entitlements are
listed from the entitlements table (ENTITLEMENTS_TABLE or --table) and
each is shown; notifications of an entitlement since deleted are then not
shown (ask for its --key).`

// notificationView is one recorded notification: the message it is
// published as, and whether it was.
type notificationView struct {
	notify.Message
	Published   bool   `json:"published"`
	PublishedAt string `json:"publishedAt,omitempty"`
}

type notificationsView struct {
	UserID        string             `json:"userId"`
	LedgerTable   string             `json:"ledgerTable"`
	Notifications []notificationView `json:"notifications"`
}

type notificationsFlags struct {
	user, key, table, ledger string
	asJSON                   bool
}

func (a *app) notificationsCmd() *cobra.Command {
	var f notificationsFlags
	cmd := &cobra.Command{
		Use:   "notifications --user U [flags]",
		Short: "list the usage notifications recorded for a user, and whether each was published",
		Long:  notificationsDetails,
		Args:  noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "", "`userId` whose notifications to list (required)")
	fl.StringVar(&f.key, "key", "", "only this `entitlementKey`")
	fl.StringVar(&f.table, "table", "", "entitlements table, to find the user's entitlements without --key (default $ENTITLEMENTS_TABLE)")
	fl.StringVar(&f.ledger, "ledger-table", "", "ledger table (default $USAGE_LEDGER_TABLE)")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON")
	cmd.RunE = a.runE(func(ctx context.Context, _ *cobra.Command) error { return a.notifications(ctx, f) })
	return cmd
}

func (a *app) notifications(ctx context.Context, f notificationsFlags) error {
	if f.user == "" {
		return usagef("--user is required")
	}
	ledger, err := a.table(f.ledger, "--ledger-table", "USAGE_LEDGER_TABLE")
	if err != nil {
		return err
	}
	keys := []string{f.key}
	var entsTable string
	if f.key == "" {
		if entsTable, err = a.table(f.table, "--table", "ENTITLEMENTS_TABLE"); err != nil {
			return err
		}
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	ddb := a.dynamoDB(cfg)
	if f.key == "" {
		layout, err := a.entitlementKeys()
		if err != nil {
			return err
		}
		ents, err := dynamodb.ListEntitlements(ctx, ddb, entsTable, layout, f.user, "")
		if err != nil {
			return fmt.Errorf("read entitlements of %q from %s: %w", f.user, entsTable, err)
		}
		keys = keys[:0]
		for _, e := range ents {
			keys = append(keys, e.EntitlementKey)
		}
	}
	view := notificationsView{UserID: f.user, LedgerTable: ledger, Notifications: []notificationView{}}
	for _, key := range keys {
		notes, err := dynamodb.ListNotifications(ctx, ddb, ledger, usage.Scope{UserID: f.user, EntitlementKey: key})
		if err != nil {
			return fmt.Errorf("read notifications of %q/%q from %s: %w", f.user, key, ledger, err)
		}
		for _, n := range notes {
			v := notificationView{Message: notify.MessageOf(n), Published: !n.PublishedAt.IsZero()}
			if v.Published {
				v.PublishedAt = n.PublishedAt.UTC().Format(time.RFC3339Nano)
			}
			view.Notifications = append(view.Notifications, v)
		}
	}
	slices.SortStableFunc(view.Notifications, func(x, y notificationView) int {
		return cmp.Or(cmp.Compare(x.EntitlementKey, y.EntitlementKey), cmp.Compare(x.OccurredAt, y.OccurredAt))
	})
	if f.asJSON {
		return a.writeJSON(view)
	}
	a.printNotifications(view)
	return nil
}

func (a *app) printNotifications(v notificationsView) {
	if len(v.Notifications) == 0 {
		fmt.Fprintf(a.stdout, "no notifications recorded for user %s in %s\n", v.UserID, v.LedgerTable)
		return
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENTITLEMENT\tPERIOD\tTYPE\tTHRESHOLD\tUSED/LIMIT\tEVENT\tOCCURRED\tPUBLISHED")
	for _, n := range v.Notifications {
		threshold := "-"
		if n.ThresholdPercent != nil {
			threshold = n.ThresholdPercent.String() + "%"
		}
		published := "no (pending)"
		if n.Published {
			published = n.PublishedAt
		}
		used := string(n.Used) + "/" + string(n.Limit)
		if n.OverageUsed != nil {
			used += " +" + n.OverageUsed.String() + " overage"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.EntitlementKey, cmp.Or(n.PeriodStart, "-"), n.Type, threshold,
			used, n.EventID, n.OccurredAt, published)
	}
	tw.Flush()
}

// topicResult is the notifications topic setup created or found.
type topicResult struct {
	Name string `json:"name"`
	ARN  string `json:"arn"`
}

// setupTopic creates (or finds) the notifications topic for setup --topic.
func (a *app) setupTopic(ctx context.Context, c *awssns.Client, name string) (*topicResult, error) {
	arn, err := notify.CreateTopic(ctx, c, name)
	if err != nil {
		return nil, err
	}
	return &topicResult{Name: name, ARN: arn}, nil
}
