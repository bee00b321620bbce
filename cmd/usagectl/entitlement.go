package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/usage"
)

const entitlementPutUsage = `usagectl entitlement put --user U --key K [--limit N] [--used N] [--reset-period P]
                              [--period-start TIME] [--reset-anchor TIME] [--table NAME] [--json]`

const entitlementPutDetails = `Writes (creates or replaces) an entitlement item in the entitlements table
(ENTITLEMENTS_TABLE or --table) the way access-service writes it, with the
key layout of ENTITLEMENT_PK_ATTRIBUTE, ENTITLEMENT_SK_ATTRIBUTE,
ENTITLEMENT_PK_PREFIX and ENTITLEMENT_SK_PREFIX. For local development and
tests: in AWS the table and its items belong to access-service.

Attributes whose flag is not given are left out of the item: no --limit
means unlimited, no --used means 0, no --reset-period means NONE.
`

func runEntitlementPut(ctx context.Context, a *app, args []string) error {
	f := a.newFlags("entitlement put", entitlementPutUsage, entitlementPutDetails)
	user := f.String("user", "", "`userId` (required)")
	key := f.String("key", "", "`entitlementKey` (required)")
	limit := f.String("limit", "", "usage `limit`, a decimal (default: unlimited)")
	used := f.String("used", "", "usage so far, a `decimal` (default: absent, read as 0)")
	period := f.String("reset-period", "", "`period`: NONE, DAILY, WEEKLY, MONTHLY or YEARLY (default: absent, read as NONE)")
	periodStart := f.String("period-start", "", "start of the stored period, an RFC 3339 `instant` (e.g. 2026-11-01T00:00:00Z)")
	anchor := f.String("reset-anchor", "", "RFC 3339 `instant` periods are aligned to, offset kept (default: UTC calendar)")
	table := f.String("table", "", "entitlements table (default $ENTITLEMENTS_TABLE)")
	asJSON := f.Bool("json", false, "print the written entitlement as JSON")
	if err := f.parse(args); err != nil {
		return err
	}
	if *user == "" || *key == "" {
		return usagef("--user and --key are required")
	}
	item := dynamodb.EntitlementItem{UserID: *user, EntitlementKey: *key}
	for _, d := range []struct {
		flag, value string
		dst         **usage.Decimal
	}{{"--limit", *limit, &item.Limit}, {"--used", *used, &item.Used}} {
		if d.value == "" {
			continue
		}
		n, err := usage.ParseDecimal(d.value)
		if err != nil {
			return usagef("%s: %v", d.flag, err)
		}
		*d.dst = &n
	}
	if *period != "" {
		p, err := usage.ParseResetPeriod(*period)
		if err != nil {
			return usagef("--reset-period: %v", err)
		}
		item.ResetPeriod = p
	}
	for _, t := range []struct {
		flag, value string
		dst         **time.Time
	}{{"--period-start", *periodStart, &item.PeriodStart}, {"--reset-anchor", *anchor, &item.ResetAnchor}} {
		if t.value == "" {
			continue
		}
		v, err := usage.ParseInstant(t.value)
		if err != nil {
			return usagef("%s: %v", t.flag, err)
		}
		*t.dst = &v
	}
	tableName, err := a.table(*table, "--table", "ENTITLEMENTS_TABLE")
	if err != nil {
		return err
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	if err := dynamodb.PutEntitlement(ctx, a.dynamoDB(cfg), tableName, a.entitlementKeys(), item); err != nil {
		return fmt.Errorf("put entitlement %q of user %q into %s: %w", *key, *user, tableName, err)
	}
	if *asJSON {
		out := struct {
			Table          string       `json:"table"`
			UserID         string       `json:"userId"`
			EntitlementKey string       `json:"entitlementKey"`
			Limit          *json.Number `json:"limit"`
			Used           *json.Number `json:"used"`
			ResetPeriod    string       `json:"resetPeriod,omitempty"`
			PeriodStart    *string      `json:"periodStart"`
			ResetAnchor    *string      `json:"resetAnchor"`
		}{Table: tableName, UserID: *user, EntitlementKey: *key, ResetPeriod: string(item.ResetPeriod)}
		if item.Limit != nil {
			n := number(*item.Limit)
			out.Limit = &n
		}
		if item.Used != nil {
			n := number(*item.Used)
			out.Used = &n
		}
		if item.PeriodStart != nil {
			s := usage.FormatInstant(*item.PeriodStart)
			out.PeriodStart = &s
		}
		if item.ResetAnchor != nil {
			s := item.ResetAnchor.Format(time.RFC3339Nano)
			out.ResetAnchor = &s
		}
		return a.writeJSON(out)
	}
	fmt.Fprintf(a.stdout, "put entitlement %s of user %s in %s\n", *key, *user, tableName)
	return nil
}
