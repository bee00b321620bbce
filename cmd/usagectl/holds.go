package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/usage-event-service/usage-event-service/client"
	"github.com/usage-event-service/usage-event-service/cmd/usagectl/internal/history"
	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/usage"
)

const holdsDetails = `Lists the holds of one entitlement from the ledger table
(USAGE_LEDGER_TABLE or --ledger-table), read with strong consistency: by
default the active ones (reserved, not yet committed or released), each
with its amount, when it expires and how long that is from now, the next
to expire first. An active hold shown "overdue" has expired and waits for
the sweeper, which releases it within about a sweep interval
(HOLD_SWEEP_INTERVAL for the worker, a minute for the Lambda deployment).

With --all, settled holds too: their state (committed, released, or
expired: released by the sweeper), the amount committed and when they
settled. Holds are remembered as long as any ledger entry (the dedup
retention).`

const reserveDetails = `Reserves an amount before long work whose cost is not known up front:
if it fits within the limit (after the lazy reset), it counts as used at
once and an active hold is recorded; commit it with what was really used
(usagectl commit) or release it (usagectl release). A hold neither
committed nor released by its expiry (--seconds from now) is released
automatically.

A reserve is synchronous only. By default it is decided in this process,
against the entitlements table (ENTITLEMENTS_TABLE or --table) and the
ledger table (USAGE_LEDGER_TABLE or --ledger-table), with the service's
key layout; with --function the decisions function decides it (a name or
an ARN; AWS_ENDPOINT_URL_LAMBDA is honoured as by any AWS SDK client).

The hold's ID (--hold) is the reserve's idempotency key: the same ID again
is a duplicate with the original hold (IDEMPOTENCY_CONFLICT if the amount
differs), so a retry after a timeout is safe. Exits 0 when applied or a
duplicate, 1 when rejected (e.g. LIMIT_EXCEEDED) or not decided.`

const settleDetails = `By default the %[1]s goes through the usage event queue
(USAGE_EVENT_QUEUE_URL or --queue-url), like usagectl send: validated, then
sent, decided later by the service.

With --sync it is decided now by the decisions function (--function,
default $DECISIONS_FUNCTION), and the answer is printed. A hold settles
once: the same settlement again is a duplicate; any other settlement of a
settled or expired hold is HOLD_NOT_ACTIVE, and an unknown hold
HOLD_NOT_FOUND. Exits 0 when applied or a duplicate, 1 when rejected or not
decided.`

const commitDetails = `Settles a hold (--hold, the reserve's ID) with what the work really used
(--amount, from 0 to the held amount; by default all of it): in one write
the unused part goes back and the hold becomes committed. More than held
is COMMIT_EXCEEDS_HOLD.

`

const releaseDetails = `Settles a hold (--hold, the reserve's ID) by giving all of it back: the
hold becomes released. Use it for work that did not happen, or to release
by hand a hold that an expiry sweep has not released.

`

// holder asks for the hold operations: both decisions clients answer
// them.
type holder interface {
	Reserve(ctx context.Context, r client.ReserveRequest) (client.HoldResult, error)
	Commit(ctx context.Context, r client.CommitRequest) (client.HoldResult, error)
	Release(ctx context.Context, r client.ReleaseRequest) (client.HoldResult, error)
}

type holdsFlags struct {
	user, key, ledgerTable string
	all, asJSON            bool
}

func (a *app) holdsCmd() *cobra.Command {
	var f holdsFlags
	cmd := &cobra.Command{
		Use:   "holds --user U --key K [flags]",
		Short: "list an entitlement's active holds and when they expire (--all: settled ones too)",
		Long:  holdsDetails,
		Args:  noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "", "`userId` (required)")
	fl.StringVar(&f.key, "key", "", "`entitlementKey` (required)")
	fl.BoolVar(&f.all, "all", false, "also list settled holds (committed, released, expired)")
	fl.StringVar(&f.ledgerTable, "ledger-table", "", "ledger table (default $USAGE_LEDGER_TABLE)")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON")
	cmd.RunE = a.runE(func(ctx context.Context, _ *cobra.Command) error { return a.holds(ctx, f) })
	return cmd
}

// holdView is one hold as usagectl holds prints it.
type holdView struct {
	HoldID     string      `json:"holdId"`
	Amount     json.Number `json:"amount"`
	State      string      `json:"state"`
	ReservedAt string      `json:"reservedAt"`
	ExpiresAt  string      `json:"expiresAt"`
	// ExpiresInSeconds is, for an active hold, the whole seconds from
	// the listing's instant to its expiry; negative once overdue.
	ExpiresInSeconds *int64          `json:"expiresInSeconds,omitempty"`
	Committed        *json.Number    `json:"committed,omitempty"`
	SettledAt        string          `json:"settledAt,omitempty"`
	PeriodStart      string          `json:"periodStart,omitempty"`
	Metadata         json.RawMessage `json:"metadata,omitempty"`
	due              string
}

type holdsView struct {
	UserID         string     `json:"userId"`
	EntitlementKey string     `json:"entitlementKey"`
	Table          string     `json:"table"`
	At             string     `json:"at"` // the instant expiresInSeconds counts from
	Active         int        `json:"active"`
	Holds          []holdView `json:"holds"`
	all            bool
}

func (a *app) holds(ctx context.Context, f holdsFlags) error {
	if f.user == "" || f.key == "" {
		return usagef("--user and --key are required")
	}
	table, err := a.table(f.ledgerTable, "--ledger-table", "USAGE_LEDGER_TABLE")
	if err != nil {
		return err
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	holds, err := dynamodb.ListHolds(ctx, a.dynamoDB(cfg), table, usage.Scope{UserID: f.user, EntitlementKey: f.key}, !f.all)
	if err != nil {
		return fmt.Errorf("read the holds of %s/%s from %s: %w", f.user, f.key, table, err)
	}
	history.SortHolds(holds)
	now := time.Now()
	v := holdsView{UserID: f.user, EntitlementKey: f.key, Table: table, At: usage.FormatInstant(now), Holds: []holdView{}, all: f.all}
	for _, h := range holds {
		v.Holds = append(v.Holds, holdViewOf(h, now))
		if h.HoldState == usage.HoldActive {
			v.Active++
		}
	}
	if f.asJSON {
		return a.writeJSON(v)
	}
	a.printHolds(v)
	return nil
}

func holdViewOf(h usage.LedgerEntry, now time.Time) holdView {
	v := holdView{HoldID: h.DedupKey, Amount: number(h.Amount), State: h.HoldState, ReservedAt: instant(h.AppliedAt),
		ExpiresAt: instant(h.HoldExpiresAt), PeriodStart: h.PeriodStart, due: "-"}
	if h.HoldState == usage.HoldActive {
		s := int64(h.HoldExpiresAt.Sub(now) / time.Second)
		v.ExpiresInSeconds, v.due = &s, history.Due(h.HoldExpiresAt, now)
	} else {
		v.SettledAt = instant(h.SettledAt)
	}
	if h.HoldState == usage.HoldCommitted && h.Actual != nil {
		c := number(*h.Actual)
		v.Committed = &c
	}
	if json.Valid(h.Metadata) {
		v.Metadata = json.RawMessage(h.Metadata)
	}
	return v
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// instant is t as the answers write it, "" when zero.
func instant(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return usage.FormatInstant(t)
}

func (a *app) printHolds(v holdsView) {
	what := "active holds"
	if v.all {
		what = "holds"
	}
	if len(v.Holds) == 0 {
		fmt.Fprintf(a.stdout, "no %s for %s of user %s in %s\n", what, v.EntitlementKey, v.UserID, v.Table)
		return
	}
	count := plural(len(v.Holds), "active hold")
	if v.all {
		count = fmt.Sprintf("%s, %d active", plural(len(v.Holds), "hold"), v.Active)
	}
	fmt.Fprintf(a.stdout, "%s of user %s: %s, the next to expire first (table %s)\n\n", v.EntitlementKey, v.UserID, count, v.Table)
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	if v.all {
		fmt.Fprintln(tw, "HOLD\tAMOUNT\tSTATE\tEXPIRES\tRESERVED AT\tEXPIRES AT\tCOMMITTED\tSETTLED AT\tPERIOD START")
	} else {
		fmt.Fprintln(tw, "HOLD\tAMOUNT\tEXPIRES\tRESERVED AT\tEXPIRES AT\tPERIOD START")
	}
	for _, h := range v.Holds {
		if v.all {
			committed := "-"
			if h.Committed != nil {
				committed = h.Committed.String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.HoldID, h.Amount, dash(h.State), h.due, dash(h.ReservedAt),
				dash(h.ExpiresAt), committed, dash(h.SettledAt), dash(h.PeriodStart))
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", h.HoldID, h.Amount, h.due, dash(h.ReservedAt), dash(h.ExpiresAt), dash(h.PeriodStart))
		}
	}
	tw.Flush()
}

type reserveFlags struct {
	user, key, amount, holdID, metadata, table, ledgerTable, function string
	seconds                                                           int
	asJSON                                                            bool
}

func (a *app) reserveCmd() *cobra.Command {
	var f reserveFlags
	cmd := &cobra.Command{
		Use:     "reserve --user U --key K --amount N --hold ID [flags]",
		Short:   "hold an amount within the limit before long work, decided now",
		Long:    reserveDetails,
		Example: `  usagectl reserve --user user-123 --key AI_TUTOR_ACCESS --amount 5 --hold job-77 --seconds 1800`,
		Args:    noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "", "`userId` (required)")
	fl.StringVar(&f.key, "key", "", "`entitlementKey` (required)")
	fl.StringVar(&f.amount, "amount", "", "the `amount` to hold, a positive decimal: the work's estimate (required)")
	fl.StringVar(&f.holdID, "hold", "", "the hold's `ID`, also the reserve's idempotency key (required)")
	fl.IntVar(&f.seconds, "seconds", usage.DefaultHoldSeconds, fmt.Sprintf("the hold lasts `S` seconds, 1 to %d, then is released automatically", usage.MaxHoldSeconds))
	fl.StringVar(&f.metadata, "metadata", "", "a `JSON` object kept with the ledger record")
	fl.StringVar(&f.table, "table", "", "entitlements table, deciding in process (default $ENTITLEMENTS_TABLE)")
	fl.StringVar(&f.ledgerTable, "ledger-table", "", "ledger table, deciding in process (default $USAGE_LEDGER_TABLE)")
	fl.StringVar(&f.function, "function", "", "ask the decisions function `NAME` (or ARN) instead of deciding in process")
	fl.BoolVar(&f.asJSON, "json", false, "print the answer as JSON")
	cmd.RunE = a.runE(func(ctx context.Context, cmd *cobra.Command) error { return a.reserve(ctx, cmd, f) })
	return cmd
}

func (a *app) reserve(ctx context.Context, cmd *cobra.Command, f reserveFlags) error {
	req, err := reserveRequest(f)
	if err != nil {
		return err
	}
	var ents, ledger string
	if f.function != "" {
		if cmd.Flags().Changed("table") || cmd.Flags().Changed("ledger-table") {
			return usagef("--table and --ledger-table exclude --function (the function uses its own tables)")
		}
	} else {
		if ents, err = a.table(f.table, "--table", "ENTITLEMENTS_TABLE"); err != nil {
			return err
		}
		if ledger, err = a.table(f.ledgerTable, "--ledger-table", "USAGE_LEDGER_TABLE"); err != nil {
			return err
		}
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	c, err := a.decisionsClient(cfg, f.function, ents, ledger)
	if err != nil {
		return err
	}
	res, err := c.Reserve(ctx, req)
	return a.holdAnswer(res, err, req.HoldID, f.asJSON)
}

// reserveRequest checks the flags with the contract's own rules.
func reserveRequest(f reserveFlags) (client.ReserveRequest, error) {
	for _, r := range []struct{ name, value string }{{"user", f.user}, {"key", f.key}, {"amount", f.amount}, {"hold", f.holdID}} {
		if r.value == "" {
			return client.ReserveRequest{}, usagef("--%s is required", r.name)
		}
	}
	amt, err := usage.ParseDecimal(f.amount)
	if err != nil {
		return client.ReserveRequest{}, usagef("--amount: %s: %v", usage.ReasonInvalidAmount, err)
	}
	if f.seconds < 1 || f.seconds > usage.MaxHoldSeconds {
		return client.ReserveRequest{}, usagef("--seconds: %s: must be a whole number from 1 to %d, got %d", usage.ReasonInvalidField, usage.MaxHoldSeconds, f.seconds)
	}
	req := client.ReserveRequest{UserID: f.user, EntitlementKey: f.key, Amount: amt, HoldID: f.holdID, Seconds: f.seconds}
	if f.metadata != "" {
		req.Metadata = json.RawMessage(f.metadata)
	}
	ev := usage.Event{UserID: req.UserID, EntitlementKey: req.EntitlementKey, Operation: usage.OperationReserve, Amount: req.Amount,
		IdempotencyKey: req.HoldID, HoldSeconds: req.Seconds, Metadata: req.Metadata}
	if err := ev.Validate(); err != nil {
		return client.ReserveRequest{}, usagef("the reserve would be rejected: %v", err)
	}
	return req, nil
}

type settleFlags struct {
	user, key, holdID, amount, queueURL, function string
	sync, asJSON                                  bool
}

func (a *app) commitCmd() *cobra.Command {
	return a.settleCmd(usage.OperationCommit, "commit --user U --key K --hold ID [--amount N] [flags]",
		"settle a hold with what was really used, through the queue or decided now (--sync)", commitDetails,
		`  usagectl commit --user user-123 --key AI_TUTOR_ACCESS --hold job-77 --amount 3.2
  usagectl commit --user user-123 --key AI_TUTOR_ACCESS --hold job-77 --sync`)
}

func (a *app) releaseCmd() *cobra.Command {
	return a.settleCmd(usage.OperationRelease, "release --user U --key K --hold ID [flags]",
		"give a whole hold back, through the queue or decided now (--sync)", releaseDetails,
		`  usagectl release --user user-123 --key AI_TUTOR_ACCESS --hold job-77
  usagectl release --user user-123 --key AI_TUTOR_ACCESS --hold job-77 --sync --function usage-decisions`)
}

// settleCmd is commit or release: the same flags (commit's --amount
// aside) and the same two paths.
func (a *app) settleCmd(op usage.Operation, use, short, details, example string) *cobra.Command {
	var f settleFlags
	cmd := &cobra.Command{Use: use, Short: short, Long: details + fmt.Sprintf(settleDetails, op), Example: example, Args: noArgs}
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "", "`userId` (required)")
	fl.StringVar(&f.key, "key", "", "`entitlementKey` (required)")
	fl.StringVar(&f.holdID, "hold", "", "the hold's `ID`: the reserve's idempotency key (required)")
	if op == usage.OperationCommit {
		fl.StringVar(&f.amount, "amount", "", "the `amount` really used, from 0 to the held amount (default: all of it)")
	}
	fl.BoolVar(&f.sync, "sync", false, "decide now through the decisions function instead of the queue")
	fl.StringVar(&f.function, "function", "", "with --sync: the decisions function `NAME` or ARN (default $DECISIONS_FUNCTION)")
	fl.StringVar(&f.queueURL, "queue-url", "", "queue to send to (default $USAGE_EVENT_QUEUE_URL)")
	fl.BoolVar(&f.asJSON, "json", false, "print the receipt, or with --sync the answer, as JSON")
	cmd.RunE = a.runE(func(ctx context.Context, cmd *cobra.Command) error { return a.settle(ctx, cmd, op, f) })
	return cmd
}

func (a *app) settle(ctx context.Context, cmd *cobra.Command, op usage.Operation, f settleFlags) error {
	ev, err := settleEvent(op, f)
	if err != nil {
		return err
	}
	if f.sync && cmd.Flags().Changed("queue-url") {
		return usagef("--queue-url and --sync exclude each other")
	}
	if !f.sync && cmd.Flags().Changed("function") {
		return usagef("--function needs --sync (without it the %s goes through the queue)", op)
	}
	if !f.sync {
		receipt, err := a.publish(ctx, f.queueURL, ev)
		if err != nil {
			return err
		}
		if f.asJSON {
			return a.writeJSON(receiptJSON{MessageID: receipt.MessageID, IdempotencyKey: receipt.IdempotencyKey, SequenceNumber: receipt.SequenceNumber})
		}
		fmt.Fprintf(a.stdout, "sent %s of hold %s: message %s\n", op, ev.HoldID, receipt.MessageID)
		return nil
	}
	function := a.setting(f.function, "DECISIONS_FUNCTION")
	if function == "" {
		return usagef("no decisions function: set DECISIONS_FUNCTION or pass --function")
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	c, err := a.decisionsClient(cfg, function, "", "")
	if err != nil {
		return err
	}
	var res client.HoldResult
	if op == usage.OperationCommit {
		req := client.CommitRequest{UserID: ev.UserID, EntitlementKey: ev.EntitlementKey, HoldID: ev.HoldID}
		if ev.AmountGiven {
			req.Amount = &ev.Amount
		}
		res, err = c.Commit(ctx, req)
	} else {
		res, err = c.Release(ctx, client.ReleaseRequest{UserID: ev.UserID, EntitlementKey: ev.EntitlementKey, HoldID: ev.HoldID})
	}
	return a.holdAnswer(res, err, ev.HoldID, f.asJSON)
}

// settleEvent checks the flags with the contract's own rules.
func settleEvent(op usage.Operation, f settleFlags) (usage.Event, error) {
	for _, r := range []struct{ name, value string }{{"user", f.user}, {"key", f.key}, {"hold", f.holdID}} {
		if r.value == "" {
			return usage.Event{}, usagef("--%s is required", r.name)
		}
	}
	ev := usage.Event{UserID: f.user, EntitlementKey: f.key, Operation: op, HoldID: f.holdID}
	if f.amount != "" {
		amt, err := usage.ParseDecimal(f.amount)
		if err != nil {
			return usage.Event{}, usagef("--amount: %s: %v", usage.ReasonInvalidAmount, err)
		}
		ev.Amount, ev.AmountGiven = amt, true
	}
	if err := ev.Validate(); err != nil {
		return usage.Event{}, usagef("the %s would be rejected: %v", op, err)
	}
	return ev, nil
}

// holdAnswer prints the answer to a reserve, commit or release decided
// now; the error (a rejection, RETRY, or no answer) is the exit code's.
func (a *app) holdAnswer(res client.HoldResult, err error, holdID string, asJSON bool) error {
	word, more, err := a.decided(res.Result, err, "hold "+holdID, asJSON)
	if !more {
		return err
	}
	fmt.Fprintf(a.stdout, "%s: hold %s of %s: %s\n", word, holdID, res.Hold.Amount, holdState(res.Hold, time.Now()))
	if b := res.Balance; b != nil {
		fmt.Fprintf(a.stdout, "used now %s", b.Used)
		if res.Held != nil {
			fmt.Fprintf(a.stdout, " (%s of it held)", res.Held)
		}
		if b.Remaining != nil {
			fmt.Fprintf(a.stdout, ", remaining %s of %s", b.Remaining, b.Limit)
		}
		fmt.Fprintln(a.stdout)
	}
	return nil
}

// holdState is a hold's state in words, with when an active one expires.
func holdState(h client.Hold, now time.Time) string {
	if h.State == usage.HoldActive {
		return history.Settlement(h.State, h.ExpiresAt, nil, time.Time{}) + " (" + history.Due(h.ExpiresAt, now) + ")"
	}
	back := h.Amount
	if h.Committed != nil {
		back = h.Amount.Sub(*h.Committed)
	}
	switch h.State {
	case usage.HoldCommitted:
		return fmt.Sprintf("committed %s (%s given back)", h.Committed, back)
	case usage.HoldExpired:
		return fmt.Sprintf("expired (released by the sweeper: %s given back)", back)
	}
	return fmt.Sprintf("%s (%s given back)", h.State, back)
}
