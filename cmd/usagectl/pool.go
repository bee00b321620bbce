package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/usage"
)

const poolPutDetails = `Writes (creates or replaces) a team pool's entitlement item in the
entitlements table (ENTITLEMENTS_TABLE or --table): the entitlement its
members share, under the pool's partition key (POOL_PK_PREFIX, default
POOL#, then the pool's ID) and the entitlement's usual sort key. For local
development and tests, like usagectl entitlement put.

Attributes whose flag is not given are left out of the item: no --limit
means unlimited, no --used means 0, no --reset-period means NONE.
Members name the pool with usagectl entitlement put --pool.`

const poolShowDetails = `Shows a team pool's entitlement as stored in the entitlements table
(ENTITLEMENTS_TABLE or --table), read with strong consistency: used, limit,
reset period, the stored period start, the current period and the next
reset, as usagectl usage shows an entitlement; then its members.

The members are found by a Scan of the whole entitlements table, filtered
on the pool attribute and the key: every item is read, so this is an admin
tool for small tables, not something to run often against a large one.
For each member: its userId, its cap (its own limit; none: limited by the
pool alone) and used, what its next event is checked against (0 when its
stored period is over).

Exits 1 when the pool has no such entitlement (its members' consumes are
then rejected POOL_NOT_FOUND); the members found are still listed.`

func (a *app) poolPutCmd() *cobra.Command {
	var f entitlementPutFlags
	cmd := &cobra.Command{
		Use:   "put --pool ID --key K [flags]",
		Short: "write a team pool's entitlement item (development and tests)",
		Long:  poolPutDetails,
		Args:  noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&f.pool, "pool", "", "the pool's `ID` (required)")
	fl.StringVar(&f.key, "key", "", "`entitlementKey` (required)")
	fl.StringVar(&f.limit, "limit", "", "the pool's usage `limit`, a decimal (default: unlimited)")
	fl.StringVar(&f.used, "used", "", "the pool's usage so far, a `decimal` (default: absent, read as 0)")
	fl.StringVar(&f.period, "reset-period", "", "`period`: NONE, DAILY, WEEKLY, MONTHLY or YEARLY (default: absent, read as NONE)")
	fl.StringVar(&f.periodStart, "period-start", "", "start of the stored period, an RFC 3339 `instant` (e.g. 2026-11-01T00:00:00Z)")
	fl.StringVar(&f.anchor, "reset-anchor", "", "RFC 3339 `instant` periods are aligned to, offset kept (default: UTC calendar)")
	fl.StringVar(&f.overageLimit, "overage-limit", "", "how far the members together may go beyond the pool's allowance and grants each period, a `decimal` (default: absent, none)")
	fl.StringVar(&f.rolloverMax, "rollover-max", "", "the most unused pool allowance a reset carries into the new period as a grant, a `decimal` (default: absent, none)")
	fl.StringVar(&f.table, "table", "", "entitlements table (default $ENTITLEMENTS_TABLE)")
	fl.BoolVar(&f.asJSON, "json", false, "print the written pool entitlement as JSON")
	periods := []usage.ResetPeriod{usage.ResetNone, usage.ResetDaily, usage.ResetWeekly, usage.ResetMonthly, usage.ResetYearly}
	cmd.RegisterFlagCompletionFunc("reset-period", completions(periods))
	cmd.RunE = a.runE(func(ctx context.Context, _ *cobra.Command) error { return a.putPool(ctx, f) })
	return cmd
}

func (a *app) putPool(ctx context.Context, f entitlementPutFlags) error {
	if f.pool == "" || f.key == "" {
		return usagef("--pool and --key are required")
	}
	item, err := entitlementItemOf(f)
	if err != nil {
		return err
	}
	db, tableName, keys, err := a.entitlementsTable(ctx, f.table)
	if err != nil {
		return err
	}
	if err := dynamodb.PutPool(ctx, db, tableName, keys, f.pool, item); err != nil {
		return fmt.Errorf("put entitlement %q of pool %q into %s: %w", f.key, f.pool, tableName, err)
	}
	if f.asJSON {
		out := putJSONOf(tableName, item)
		out.PoolID = f.pool
		return a.writeJSON(out)
	}
	fmt.Fprintf(a.stdout, "put entitlement %s of pool %s in %s\n", f.key, f.pool, tableName)
	return nil
}

type poolShowFlags struct {
	pool, key, at, table string
	asJSON               bool
}

func (a *app) poolShowCmd() *cobra.Command {
	var f poolShowFlags
	cmd := &cobra.Command{
		Use:   "show --pool ID --key K [flags]",
		Short: "show a team pool's entitlement and its members' usage (scans the entitlements table)",
		Long:  poolShowDetails,
		Args:  noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&f.pool, "pool", "", "the pool's `ID` (required)")
	fl.StringVar(&f.key, "key", "", "`entitlementKey` (required)")
	fl.StringVar(&f.at, "at", "", "evaluate periods at this RFC 3339 `instant` instead of now")
	fl.StringVar(&f.table, "table", "", "entitlements table (default $ENTITLEMENTS_TABLE)")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON")
	cmd.RunE = a.runE(func(ctx context.Context, _ *cobra.Command) error { return a.showPool(ctx, f) })
	return cmd
}

// poolMemberView is one member as usagectl pool show reports it.
type poolMemberView struct {
	UserID    string       `json:"userId"`
	Cap       *json.Number `json:"cap"` // the member's own limit; null: none
	Used      json.Number  `json:"used"`
	UsedNow   json.Number  `json:"usedNow"`
	Malformed *string      `json:"malformed"`
}

type poolShowView struct {
	PoolID         string           `json:"poolId"`
	EntitlementKey string           `json:"entitlementKey"`
	At             string           `json:"at"`
	Table          string           `json:"table"`
	Pool           *entitlementView `json:"pool"` // null: no such entitlement
	Members        []poolMemberView `json:"members"`
}

func (a *app) showPool(ctx context.Context, f poolShowFlags) error {
	if f.pool == "" || f.key == "" {
		return usagef("--pool and --key are required")
	}
	r, err := a.reader(ctx, f.at, f.table)
	if err != nil {
		return err
	}
	db, tableName, keys, now := r.db, r.table, r.keys, r.now
	pool, err := dynamodb.ReadPool(ctx, db, tableName, keys, f.pool, f.key)
	if err != nil {
		return fmt.Errorf("read entitlement %q of pool %q from %s: %w", f.key, f.pool, tableName, err)
	}
	members, err := dynamodb.PoolMembers(ctx, db, tableName, keys, f.pool, f.key)
	if err != nil {
		return fmt.Errorf("scan %s for the members of pool %q: %w", tableName, f.pool, err)
	}
	v := poolShowView{PoolID: f.pool, EntitlementKey: f.key, At: usage.FormatInstant(now), Table: tableName, Members: []poolMemberView{}}
	if pool.Exists {
		pv := viewOf(dynamodb.Entitlement{EntitlementKey: f.key, Entitlement: pool}, now)
		v.Pool = &pv
	}
	for _, m := range members {
		mv := viewOf(dynamodb.Entitlement{EntitlementKey: f.key, Entitlement: m.Entitlement}, now)
		v.Members = append(v.Members, poolMemberView{UserID: m.UserID, Cap: mv.Limit, Used: mv.Used, UsedNow: mv.UsedNow, Malformed: mv.Malformed})
	}
	if f.asJSON {
		if err := a.writeJSON(v); err != nil {
			return err
		}
	} else {
		a.printPool(v)
	}
	if v.Pool == nil {
		return fmt.Errorf("pool %q has no entitlement %q in %s", f.pool, f.key, tableName)
	}
	return nil
}

func (a *app) printPool(v poolShowView) {
	w := a.stdout
	if v.Pool == nil {
		fmt.Fprintf(w, "pool %s has no entitlement %s in %s (its members' consumes are rejected POOL_NOT_FOUND)\n", v.PoolID, v.EntitlementKey, v.Table)
	} else {
		fmt.Fprintf(w, "pool %s, at %s (table %s)\n", v.PoolID, v.At, v.Table)
		printEntitlement(w, *v.Pool)
	}
	if len(v.Members) == 0 {
		fmt.Fprintf(w, "\nno members (no entitlement %s names pool %s; the table was scanned)\n", v.EntitlementKey, v.PoolID)
		return
	}
	fmt.Fprintf(w, "\nmembers (%d, found by scanning the table)\n", len(v.Members))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  USER\tCAP\tUSED")
	for _, m := range v.Members {
		c := "none"
		if m.Cap != nil {
			c = m.Cap.String()
		}
		used := m.UsedNow.String()
		switch {
		case m.Malformed != nil:
			used = m.Used.String() + " (MALFORMED: " + *m.Malformed + ")"
		case m.UsedNow != m.Used:
			used += " (stored " + m.Used.String() + ": the stored period is over)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", m.UserID, c, used)
	}
	tw.Flush()
}

// memberPoolView is a member's pool as usagectl usage and balance show it.
type memberPoolView struct {
	ID  string       `json:"id"`
	Cap *json.Number `json:"cap"` // the member's own limit; null: none, the pool alone limits it
	// The pool's entitlement of the same key: Exists false when there is
	// none (POOL_NOT_FOUND); Error when it could not be read.
	Exists     bool         `json:"exists"`
	Limit      *json.Number `json:"limit,omitempty"`
	Used       *json.Number `json:"used,omitempty"`
	UsedNow    *json.Number `json:"usedNow,omitempty"`
	Remaining  *json.Number `json:"remaining,omitempty"`
	WouldReset bool         `json:"wouldReset,omitempty"`
	Malformed  *string      `json:"malformed,omitempty"`
	Error      *string      `json:"error,omitempty"`
}

// poolReader reads each pool once.
type poolReader struct {
	read  func(id string) (usage.Entitlement, error)
	pools map[string]usage.Entitlement
	errs  map[string]error
}

func (a *app) poolReader(ctx context.Context, db dynamodb.AdminClient, table string, keys dynamodb.EntitlementKeys, key string) *poolReader {
	return &poolReader{
		read:  func(id string) (usage.Entitlement, error) { return dynamodb.ReadPool(ctx, db, table, keys, id, key) },
		pools: map[string]usage.Entitlement{}, errs: map[string]error{},
	}
}

// view is the member entitlement e's pool (nil when it names none) at now.
func (r *poolReader) view(e usage.Entitlement, key string, now time.Time) *memberPoolView {
	if e.Pool == "" {
		return nil
	}
	v := &memberPoolView{ID: e.Pool, Cap: optionalNumber(e.Limit)}
	p, seen := r.pools[e.Pool]
	err := r.errs[e.Pool]
	if !seen && err == nil {
		p, err = r.read(e.Pool)
		if err != nil {
			r.errs[e.Pool] = err
		} else {
			r.pools[e.Pool] = p
		}
	}
	if err != nil {
		s := err.Error()
		v.Error = &s
		return v
	}
	if v.Exists = p.Exists; !p.Exists {
		return v
	}
	pv := viewOf(dynamodb.Entitlement{EntitlementKey: key, Entitlement: p}, now)
	v.Limit, v.Malformed, v.WouldReset, v.Remaining = pv.Limit, pv.Malformed, pv.WouldReset, pv.Remaining
	used, usedNow := pv.Used, pv.UsedNow
	v.Used, v.UsedNow = &used, &usedNow
	return v
}

// printMemberPool prints a member's pool: its ID and the member's cap,
// then the pool's state, labels padded to width.
func printMemberPool(w io.Writer, indent string, width int, key string, p *memberPoolView) {
	if p == nil {
		return
	}
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%s%-*s%s\n", indent, width, label, fmt.Sprintf(format, args...))
	}
	if p.Cap != nil {
		line("pool", "%s (cap %s: the member's own limit; consumes must fit both)", p.ID, p.Cap)
	} else {
		line("pool", "%s (cap none: the member is limited by the pool alone)", p.ID)
	}
	switch {
	case p.Error != nil:
		line("pool used now", "unknown: %s", *p.Error)
	case !p.Exists:
		line("pool used now", "unknown: pool %s has no entitlement %s (consumes are rejected POOL_NOT_FOUND)", p.ID, key)
	case p.Malformed != nil:
		line("pool used now", "unknown: the pool's entitlement is MALFORMED (%s; consumes are rejected INVALID_POOL)", *p.Malformed)
	default:
		var s strings.Builder
		s.WriteString(p.UsedNow.String())
		if p.Limit != nil {
			fmt.Fprintf(&s, " of limit %s, remaining %s", p.Limit, p.Remaining)
		} else {
			s.WriteString(", unlimited")
		}
		if p.WouldReset {
			fmt.Fprintf(&s, " (stored %s: the pool's stored period is over)", p.Used)
		}
		line("pool used now", "%s", s.String())
	}
}
