package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/spf13/cobra"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/usage"
)

const usageDetails = `Shows a user's entitlements as stored in the entitlements table
(ENTITLEMENTS_TABLE or --table), read with strong consistency: used, limit,
reset period, the stored period start, the current period and the next reset.

Usage is reset lazily, by the first event of a new period, so the stored
"used" can belong to a period that is over. "used now" is what the next
event is checked against: 0 when the stored period is over (usage.NeedsReset).

Beyond the allowance (limit - used), as the next event sees them: the
grants that count, in the order consumes draw from them (with the grant a
reset would carry unused allowance into, rolloverMax), the overage allowed
and used, and available, what consumes may draw from all of them together.

A member of a team pool (its pool attribute) shows the pool's ID, its cap
(its own limit; none: the pool alone limits it) and the pool's entitlement
of the same key, read from the table: used now, limit and remaining.

With --key, exits 1 when the user has no such entitlement.`

// entitlementView is one entitlement as usagectl usage reports it.
// Numbers are JSON numbers with their exact decimal text.
type entitlementView struct {
	EntitlementKey     string       `json:"entitlementKey"`
	Used               json.Number  `json:"used"`
	Limit              *json.Number `json:"limit"` // null: unlimited
	ResetPeriod        string       `json:"resetPeriod"`
	ResetAnchor        *string      `json:"resetAnchor"`
	PeriodStart        *string      `json:"periodStart"`        // as stored
	CurrentPeriodStart *string      `json:"currentPeriodStart"` // null for NONE
	NextReset          *string      `json:"nextReset"`          // null for NONE
	WouldReset         bool         `json:"wouldReset"`         // the next event starts a new period
	UsedNow            json.Number  `json:"usedNow"`            // what the next event is checked against
	Remaining          *json.Number `json:"remaining"`          // null: unlimited
	// Beyond the allowance, as the next event sees them: the grants
	// counting, in draw order; the overage (null: none allowed); the most
	// unused allowance a reset carries over (null: none); what consumes
	// may draw from all of them (null: unlimited).
	Grants      []grantView  `json:"grants"`
	Overage     *overageView `json:"overage"`
	RolloverMax *json.Number `json:"rolloverMax"`
	Available   *json.Number `json:"available"`
	Malformed   *string      `json:"malformed"` // why the service would reject events (INVALID_ENTITLEMENT)
	// Pool is the team pool a member draws from too (absent: none); its
	// limit above is then its cap.
	Pool    *memberPoolView `json:"pool,omitempty"`
	balance usage.Balance
}

type usageView struct {
	UserID       string            `json:"userId"`
	At           string            `json:"at"`
	Table        string            `json:"table"`
	Entitlements []entitlementView `json:"entitlements"`
}

// usageFlags are the flags of usagectl usage.
type usageFlags struct {
	user, key, at, table string
	asJSON               bool
}

func (a *app) usageCmd() *cobra.Command {
	var f usageFlags
	cmd := &cobra.Command{
		Use:   "usage --user U [flags]",
		Short: "show a user's entitlements: used, limit, current period, next reset",
		Long:  usageDetails,
		Args:  noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "", "`userId` whose entitlements to show (required)")
	fl.StringVar(&f.key, "key", "", "show only this `entitlementKey`")
	fl.StringVar(&f.at, "at", "", "evaluate periods at this RFC 3339 `instant` instead of now")
	fl.StringVar(&f.table, "table", "", "entitlements table (default $ENTITLEMENTS_TABLE)")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON")
	cmd.RunE = a.runE(func(ctx context.Context, _ *cobra.Command) error { return a.showUsage(ctx, f) })
	return cmd
}

func (a *app) showUsage(ctx context.Context, f usageFlags) error {
	if f.user == "" {
		return usagef("--user is required")
	}
	r, err := a.reader(ctx, f.at, f.table)
	if err != nil {
		return err
	}
	db, tableName, keys, now := r.db, r.table, r.keys, r.now
	ents, err := dynamodb.ListEntitlements(ctx, db, tableName, keys, f.user, f.key)
	if err != nil {
		return fmt.Errorf("read entitlements of %q from %s: %w", f.user, tableName, err)
	}
	view := usageView{UserID: f.user, At: usage.FormatInstant(now), Table: tableName, Entitlements: []entitlementView{}}
	pools := map[string]*poolReader{} // by entitlement key
	for _, e := range ents {
		ev := viewOf(e, now)
		if e.Pool != "" {
			r := pools[e.EntitlementKey]
			if r == nil {
				r = a.poolReader(ctx, db, tableName, keys, e.EntitlementKey)
				pools[e.EntitlementKey] = r
			}
			ev.Pool = r.view(e.Entitlement, e.EntitlementKey, now)
		}
		view.Entitlements = append(view.Entitlements, ev)
	}
	if f.asJSON {
		if err := a.writeJSON(view); err != nil {
			return err
		}
	} else {
		a.printUsage(view)
	}
	if f.key != "" && len(ents) == 0 {
		return fmt.Errorf("user %q has no entitlement %q in %s", f.user, f.key, tableName)
	}
	return nil
}

// viewOf applies the service's own period rules (usage.PeriodStart,
// NextPeriodStart, NeedsReset) to a stored entitlement.
func viewOf(e dynamodb.Entitlement, now time.Time) entitlementView {
	v := entitlementView{EntitlementKey: e.EntitlementKey, Used: number(e.Used), UsedNow: number(e.Used), Grants: []grantView{},
		RolloverMax: optionalNumber(e.RolloverMax)}
	period := e.ResetPeriod
	if period == "" {
		period = usage.ResetNone
	}
	v.ResetPeriod = string(period)
	if e.Limit != nil {
		l := number(*e.Limit)
		v.Limit = &l
	}
	if e.ResetAnchor != nil {
		s := e.ResetAnchor.Format(time.RFC3339Nano)
		v.ResetAnchor = &s
	}
	if e.PeriodStart != nil {
		s := usage.FormatInstant(*e.PeriodStart)
		v.PeriodStart = &s
	}
	if e.Malformed != nil {
		s := e.Malformed.Error()
		v.Malformed = &s
		return v // the service rejects every event; no period applies
	}
	usedNow := e.Used
	if period != usage.ResetNone {
		cur := usage.FormatInstant(usage.PeriodStart(period, e.ResetAnchor, now))
		next := usage.FormatInstant(usage.NextPeriodStart(period, e.ResetAnchor, now))
		v.CurrentPeriodStart, v.NextReset = &cur, &next
		if usage.NeedsReset(period, e.ResetAnchor, e.PeriodStart, now) {
			v.WouldReset = true
			usedNow = usage.Decimal{}
		}
	}
	v.UsedNow = number(usedNow)
	if e.Limit != nil {
		r := number(e.Limit.Sub(usedNow))
		v.Remaining = &r
	}
	if b, err := usage.BalanceOf(e.Entitlement, now); err == nil {
		v.balance, v.Grants, v.Overage, v.Available = b, grantViewsOf(b.Grants), overageViewOf(b), optionalNumber(b.Available)
	}
	return v
}

func number(d usage.Decimal) json.Number { return json.Number(d.String()) }

func (a *app) printUsage(v usageView) {
	w := a.stdout
	if len(v.Entitlements) == 0 {
		fmt.Fprintf(w, "user %s has no entitlements in %s\n", v.UserID, v.Table)
		return
	}
	fmt.Fprintf(w, "user %s, at %s (table %s)\n", v.UserID, v.At, v.Table)
	for _, e := range v.Entitlements {
		printEntitlement(w, e)
	}
}

// printEntitlement prints one entitlement (a user's, or a pool's) the way
// usagectl usage does.
func printEntitlement(w io.Writer, e entitlementView) {
	fmt.Fprintf(w, "\n%s\n", e.EntitlementKey)
	if e.Malformed != nil {
		fmt.Fprintf(w, "  MALFORMED        %s\n", *e.Malformed)
		fmt.Fprintf(w, "                   every event for it is rejected INVALID_ENTITLEMENT\n")
	}
	limit := "unlimited"
	if e.Limit != nil {
		limit = e.Limit.String()
	}
	fmt.Fprintf(w, "  used (stored)    %s\n", e.Used)
	fmt.Fprintf(w, "  limit            %s\n", limit)
	anchor := "calendar (UTC)"
	if e.ResetAnchor != nil {
		anchor = "anchored at " + *e.ResetAnchor
	}
	if e.ResetPeriod == string(usage.ResetNone) {
		anchor = "usage accumulates, never resets"
	}
	fmt.Fprintf(w, "  reset period     %s, %s\n", e.ResetPeriod, anchor)
	fmt.Fprintf(w, "  period start     %s\n", orDash(e.PeriodStart, "(none stored)"))
	if e.CurrentPeriodStart != nil {
		fmt.Fprintf(w, "  current period   %s, next reset %s\n", *e.CurrentPeriodStart, *e.NextReset)
	}
	if e.Malformed != nil {
		printMemberPool(w, "  ", 17, e.EntitlementKey, e.Pool)
		return
	}
	usedNow := e.UsedNow.String()
	if e.WouldReset {
		usedNow += " (the stored period is over: the next event resets usage to 0)"
	}
	fmt.Fprintf(w, "  used now         %s\n", usedNow)
	if e.Remaining != nil {
		fmt.Fprintf(w, "  remaining        %s\n", e.Remaining)
	}
	printBeyondAllowance(w, "  ", 17, e.balance, e.Grants, e.Overage)
	if e.RolloverMax != nil {
		fmt.Fprintf(w, "  rollover max     %s (of the unused allowance, carried into the next period as a grant)\n", e.RolloverMax)
	}
	printMemberPool(w, "  ", 17, e.EntitlementKey, e.Pool)
}

func orDash(s *string, none string) string {
	if s == nil {
		return none
	}
	return *s
}

// tableReader is what the read-only entitlement views need: the
// entitlements table, its key layout, a client, and the instant periods
// are evaluated at (--at, or now).
type tableReader struct {
	db    *awsdynamodb.Client
	table string
	keys  dynamodb.EntitlementKeys
	now   time.Time
}

// reader resolves --at and --table and connects, for the views.
func (a *app) reader(ctx context.Context, at, table string) (tableReader, error) {
	r := tableReader{now: time.Now().UTC()}
	if at != "" {
		t, err := usage.ParseInstant(at)
		if err != nil {
			return r, usagef("--at: %v", err)
		}
		r.now = t.UTC()
	}
	var err error
	r.db, r.table, r.keys, err = a.entitlementsTable(ctx, table)
	return r, err
}

// entitlementsTable resolves --table and the key layout, and connects.
func (a *app) entitlementsTable(ctx context.Context, table string) (*awsdynamodb.Client, string, dynamodb.EntitlementKeys, error) {
	name, err := a.table(table, "--table", "ENTITLEMENTS_TABLE")
	if err != nil {
		return nil, "", dynamodb.EntitlementKeys{}, err
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return nil, "", dynamodb.EntitlementKeys{}, err
	}
	keys, err := a.entitlementKeys()
	if err != nil {
		return nil, "", dynamodb.EntitlementKeys{}, err
	}
	return a.dynamoDB(cfg), name, keys, nil
}
