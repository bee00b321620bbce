package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/usage"
)

const entitlementPutDetails = `Writes (creates or replaces) an entitlement item in the entitlements table
(ENTITLEMENTS_TABLE or --table) the way access-service writes it, with the
key layout of ENTITLEMENT_PK_ATTRIBUTE, ENTITLEMENT_SK_ATTRIBUTE,
ENTITLEMENT_PK_PREFIX and ENTITLEMENT_SK_PREFIX. For local development and
tests: in AWS the table and its items belong to access-service.

Attributes whose flag is not given are left out of the item: no --limit
means unlimited, no --used means 0, no --reset-period means NONE, no
--overage-limit means no overage, no --rollover-max means nothing rolls
over. Grants are not written here: they are the service's (usagectl
grant).

--pool makes the entitlement a member of a team pool: it sets the item's
pool attribute, and consumes must then fit both the member's own limit
(its cap; no --limit: limited by the pool alone) and the pool's
entitlement of the same key (usagectl pool put).`

// entitlementPutFlags are the flags of usagectl entitlement put.
type entitlementPutFlags struct {
	user, key, limit, used, period, periodStart, anchor, table string
	overageLimit, rolloverMax, pool                            string
	asJSON                                                     bool
}

func (a *app) entitlementPutCmd() *cobra.Command {
	var f entitlementPutFlags
	cmd := &cobra.Command{
		Use:   "put --user U --key K [flags]",
		Short: "write an entitlement item the way access-service would (development and tests)",
		Long:  entitlementPutDetails,
		Args:  noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "", "`userId` (required)")
	fl.StringVar(&f.key, "key", "", "`entitlementKey` (required)")
	fl.StringVar(&f.limit, "limit", "", "usage `limit`, a decimal (default: unlimited)")
	fl.StringVar(&f.used, "used", "", "usage so far, a `decimal` (default: absent, read as 0)")
	fl.StringVar(&f.period, "reset-period", "", "`period`: NONE, DAILY, WEEKLY, MONTHLY or YEARLY (default: absent, read as NONE)")
	fl.StringVar(&f.periodStart, "period-start", "", "start of the stored period, an RFC 3339 `instant` (e.g. 2026-11-01T00:00:00Z)")
	fl.StringVar(&f.anchor, "reset-anchor", "", "RFC 3339 `instant` periods are aligned to, offset kept (default: UTC calendar)")
	fl.StringVar(&f.overageLimit, "overage-limit", "", "how far consumes may go beyond the allowance and the grants each period, a `decimal` (default: absent, none)")
	fl.StringVar(&f.rolloverMax, "rollover-max", "", "the most unused allowance a reset carries into the new period as a grant, a `decimal` (default: absent, none)")
	fl.StringVar(&f.pool, "pool", "", "`ID` of the team pool the entitlement draws from too (default: absent, none)")
	fl.StringVar(&f.table, "table", "", "entitlements table (default $ENTITLEMENTS_TABLE)")
	fl.BoolVar(&f.asJSON, "json", false, "print the written entitlement as JSON")
	periods := []usage.ResetPeriod{usage.ResetNone, usage.ResetDaily, usage.ResetWeekly, usage.ResetMonthly, usage.ResetYearly}
	cmd.RegisterFlagCompletionFunc("reset-period", completions(periods))
	cmd.RunE = a.runE(func(ctx context.Context, _ *cobra.Command) error { return a.putEntitlement(ctx, f) })
	return cmd
}

func (a *app) putEntitlement(ctx context.Context, f entitlementPutFlags) error {
	if f.user == "" || f.key == "" {
		return usagef("--user and --key are required")
	}
	item, err := entitlementItemOf(f)
	if err != nil {
		return err
	}
	item.UserID, item.Pool = f.user, f.pool
	db, tableName, keys, err := a.entitlementsTable(ctx, f.table)
	if err != nil {
		return err
	}
	if err := dynamodb.PutEntitlement(ctx, db, tableName, keys, item); err != nil {
		return fmt.Errorf("put entitlement %q of user %q into %s: %w", f.key, f.user, tableName, err)
	}
	if f.asJSON {
		out := putJSONOf(tableName, item)
		out.UserID = f.user
		return a.writeJSON(out)
	}
	if f.pool != "" {
		fmt.Fprintf(a.stdout, "put entitlement %s of user %s in %s, a member of pool %s\n", f.key, f.user, tableName, f.pool)
		return nil
	}
	fmt.Fprintf(a.stdout, "put entitlement %s of user %s in %s\n", f.key, f.user, tableName)
	return nil
}

// entitlementItemOf checks and converts the item's attribute flags
// (entitlement put's and pool put's): the key, the limit, used, the
// period, the overage and the rollover.
func entitlementItemOf(f entitlementPutFlags) (dynamodb.EntitlementItem, error) {
	item := dynamodb.EntitlementItem{EntitlementKey: f.key}
	for _, d := range []struct {
		flag, value string
		dst         **usage.Decimal
	}{{"--limit", f.limit, &item.Limit}, {"--used", f.used, &item.Used}, {"--overage-limit", f.overageLimit, &item.OverageLimit},
		{"--rollover-max", f.rolloverMax, &item.RolloverMax}} {
		if d.value == "" {
			continue
		}
		n, err := usage.ParseDecimal(d.value)
		if err != nil {
			return item, usagef("%s: %v", d.flag, err)
		}
		*d.dst = &n
	}
	if f.period != "" {
		p, err := usage.ParseResetPeriod(f.period)
		if err != nil {
			return item, usagef("--reset-period: %v", err)
		}
		item.ResetPeriod = p
	}
	for _, t := range []struct {
		flag, value string
		dst         **time.Time
	}{{"--period-start", f.periodStart, &item.PeriodStart}, {"--reset-anchor", f.anchor, &item.ResetAnchor}} {
		if t.value == "" {
			continue
		}
		v, err := usage.ParseInstant(t.value)
		if err != nil {
			return item, usagef("%s: %v", t.flag, err)
		}
		*t.dst = &v
	}
	return item, nil
}

// putJSON is what entitlement put and pool put print with --json.
type putJSON struct {
	Table          string       `json:"table"`
	UserID         string       `json:"userId,omitempty"`
	PoolID         string       `json:"poolId,omitempty"` // pool put: the pool written
	EntitlementKey string       `json:"entitlementKey"`
	Limit          *json.Number `json:"limit"`
	Used           *json.Number `json:"used"`
	ResetPeriod    string       `json:"resetPeriod,omitempty"`
	PeriodStart    *string      `json:"periodStart"`
	ResetAnchor    *string      `json:"resetAnchor"`
	OverageLimit   *json.Number `json:"overageLimit"`
	RolloverMax    *json.Number `json:"rolloverMax"`
	Pool           string       `json:"pool,omitempty"` // entitlement put --pool: the member's pool
}

func putJSONOf(tableName string, item dynamodb.EntitlementItem) putJSON {
	out := putJSON{Table: tableName, EntitlementKey: item.EntitlementKey, ResetPeriod: string(item.ResetPeriod),
		Limit: optionalNumber(item.Limit), Used: optionalNumber(item.Used),
		OverageLimit: optionalNumber(item.OverageLimit), RolloverMax: optionalNumber(item.RolloverMax), Pool: item.Pool}
	if item.PeriodStart != nil {
		s := usage.FormatInstant(*item.PeriodStart)
		out.PeriodStart = &s
	}
	if item.ResetAnchor != nil {
		s := item.ResetAnchor.Format(time.RFC3339Nano)
		out.ResetAnchor = &s
	}
	return out
}
