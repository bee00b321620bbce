package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/usage-event-service/usage-event-service/cmd/usagectl/internal/history"
	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/usage"
)

const historyDetails = `Lists the ledger entries of one entitlement (USAGE_LEDGER_TABLE or
--ledger-table): every consume, refund, reserve and grant applied within
the dedup retention (a grant's entry is kept at least a day after the
grant expires too, and for as long as the table when it never expires),
in the order they were applied. A consume shows how much refunds gave back
of it; a refund names the consume it gave back; a reserve shows its hold's
settlement: active until its expiry, committed (the amount really used)
at, released at, or expired at (released by the sweeper); a grant shows
its state: active until its expiry (or never expiring), expired at, or
voided at, with what was left of it. A commit, release or void has no
entry of its own: it settles its reserve's, or voids its grant's.

BUCKETS shows where a consume or reserve drew from, in order: the
allowance, grants by ID, the overage; and where a refund gave back to, the
last drawn first, "(lapsed)" on a part that went nowhere (to a grant that
had expired or been voided). Where a commit's or release's give-back went
is not recorded in the ledger (its answer shows it).

The ledger is read in full, page by page, with strong consistency; --limit
keeps the latest N entries (0: all).`

type historyFlags struct {
	user, key, ledgerTable string
	limit                  int
	asJSON                 bool
}

func (a *app) historyCmd() *cobra.Command {
	var f historyFlags
	cmd := &cobra.Command{
		Use:   "history --user U --key K [flags]",
		Short: "list an entitlement's applied consumes, refunds, reserves and grants (with their buckets, holds and grants' state), in time order",
		Long:  historyDetails,
		Args:  noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "", "`userId` (required)")
	fl.StringVar(&f.key, "key", "", "`entitlementKey` (required)")
	fl.IntVar(&f.limit, "limit", 100, "show the latest `N` entries; 0 shows all")
	fl.StringVar(&f.ledgerTable, "ledger-table", "", "ledger table (default $USAGE_LEDGER_TABLE)")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON")
	cmd.RunE = a.runE(func(ctx context.Context, _ *cobra.Command) error { return a.history(ctx, f) })
	return cmd
}

// historyEntry is one ledger entry as usagectl history prints it.
type historyEntry struct {
	Key         string          `json:"key"`
	Operation   usage.Operation `json:"operation"`
	Amount      json.Number     `json:"amount"`
	Refunded    json.Number     `json:"refunded"`
	RefundOf    string          `json:"refundOf,omitempty"`
	AppliedAt   string          `json:"appliedAt"`
	PeriodStart string          `json:"periodStart,omitempty"`
	// A reserve's hold: its state, its expiry, the amount committed (a
	// committed hold's) and when it settled.
	HoldState     string       `json:"holdState,omitempty"`
	HoldExpiresAt string       `json:"holdExpiresAt,omitempty"`
	Committed     *json.Number `json:"committed,omitempty"`
	SettledAt     string       `json:"settledAt,omitempty"`
	// Draws are, for a consume or reserve, the buckets it drew from, in
	// order; for a refund, where it gave back to (lapsed: nowhere).
	Draws []decision.Draw `json:"draws,omitempty"`
	// A grant: its state, priority and expiry (absent: never), and once
	// voided what was left of it and when.
	GrantState     string          `json:"grantState,omitempty"`
	Priority       *int            `json:"priority,omitempty"`
	GrantExpiresAt string          `json:"grantExpiresAt,omitempty"`
	Voided         *json.Number    `json:"voided,omitempty"`
	VoidedAt       string          `json:"voidedAt,omitempty"`
	Metadata       json.RawMessage `json:"metadata,omitempty"`
	state          string
	draws          []usage.Draw
}

type historyView struct {
	UserID         string         `json:"userId"`
	EntitlementKey string         `json:"entitlementKey"`
	Table          string         `json:"table"`
	Total          int            `json:"total"` // entries in the ledger; Entries may be fewer (--limit)
	Entries        []historyEntry `json:"entries"`
}

func (a *app) history(ctx context.Context, f historyFlags) error {
	if f.user == "" || f.key == "" {
		return usagef("--user and --key are required")
	}
	if f.limit < 0 {
		return usagef("--limit must be 0 (all) or more, got %d", f.limit)
	}
	table, err := a.table(f.ledgerTable, "--ledger-table", "USAGE_LEDGER_TABLE")
	if err != nil {
		return err
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	scope := usage.Scope{UserID: f.user, EntitlementKey: f.key}
	entries, total, err := history.Latest(dynamodb.LedgerEntries(ctx, a.dynamoDB(cfg), table, scope), f.limit)
	if err != nil {
		return fmt.Errorf("read the ledger of %s/%s from %s: %w", f.user, f.key, table, err)
	}
	v := historyView{UserID: f.user, EntitlementKey: f.key, Table: table, Total: total, Entries: []historyEntry{}}
	for _, e := range entries {
		h := historyEntry{Key: e.DedupKey, Operation: e.Operation, Amount: number(e.Amount), Refunded: number(e.Refunded),
			RefundOf: e.RefundOf, AppliedAt: instant(e.AppliedAt), PeriodStart: e.PeriodStart}
		if h.Operation == "" {
			h.Operation = usage.OperationConsume // written before operations existed
		}
		if e.Operation == usage.OperationReserve {
			h.HoldState, h.HoldExpiresAt, h.SettledAt = e.HoldState, instant(e.HoldExpiresAt), instant(e.SettledAt)
			if e.HoldState == usage.HoldCommitted && e.Actual != nil {
				c := number(*e.Actual)
				h.Committed = &c
			}
			h.state = history.Settlement(e.HoldState, e.HoldExpiresAt, e.Actual, e.SettledAt)
		}
		switch h.Operation {
		case usage.OperationConsume, usage.OperationReserve, usage.OperationRefund:
			// An entry without draws drew from, or gave back to, the
			// allowance alone.
			h.draws = usage.DrawsOf(e)
			h.Draws = decision.DrawsOf(h.draws)
		case usage.OperationGrant:
			p := e.Priority
			h.GrantState, h.Priority, h.VoidedAt = e.GrantState, &p, instant(e.VoidedAt)
			if e.GrantExpiresAt != nil {
				h.GrantExpiresAt = usage.FormatInstant(*e.GrantExpiresAt)
			}
			if e.Voided != nil {
				n := number(*e.Voided)
				h.Voided = &n
			}
			h.state = history.GrantState(e, time.Now())
		}
		if json.Valid(e.Metadata) {
			h.Metadata = json.RawMessage(e.Metadata)
		}
		v.Entries = append(v.Entries, h)
	}
	if f.asJSON {
		return a.writeJSON(v)
	}
	a.printHistory(v)
	return nil
}

func (a *app) printHistory(v historyView) {
	if v.Total == 0 {
		fmt.Fprintf(a.stdout, "no ledger entries for %s of user %s in %s\n", v.EntitlementKey, v.UserID, v.Table)
		return
	}
	fmt.Fprintf(a.stdout, "%s of user %s: %d of %d ledger entries, oldest first (table %s)\n\n",
		v.EntitlementKey, v.UserID, len(v.Entries), v.Total, v.Table)
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APPLIED AT\tOPERATION\tAMOUNT\tREFUNDED\tKEY\tREFUND OF\tBUCKETS\tPERIOD START\tHOLD OR GRANT")
	for _, e := range v.Entries {
		refunded := "-"
		if e.Operation == usage.OperationConsume {
			refunded = e.Refunded.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.AppliedAt, e.Operation, e.Amount, refunded, e.Key, dash(e.RefundOf),
			dash(drawText(e.draws)), dash(e.PeriodStart), dash(e.state))
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
