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

	"github.com/usage-event-service/usage-event-service/client"
	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/usage"
)

// grantPaths is how a grant or a void is decided, after why it is
// decided now by default.
const grantPaths = `Without --function or --queue it is decided in this process, against the
entitlements table (ENTITLEMENTS_TABLE or --table) and the ledger table
(USAGE_LEDGER_TABLE or --ledger-table), with the service's key layout, as
a caller holding the tables' permissions decides it; with --function the
decisions function decides it (a name or an ARN; AWS_ENDPOINT_URL_LAMBDA is
honoured as by any AWS SDK client).

With --queue it goes through the usage event queue instead
(USAGE_EVENT_QUEUE_URL or --queue-url), as a producer (a billing system,
say) sends it, like usagectl send: validated, then sent, decided later by
the service; a rejection then ends in the dead-letter queue (usagectl dlq
list).

Exits 0 when applied or a duplicate (or, with --queue, sent), 1 when
rejected or not decided.`

const grantDetails = `Grants a top-up on an entitlement: once the period's allowance (limit -
used) is used up, consumes draw from the grants that count at their
processing time, lower --priority first (then the earliest to expire,
never-expiring ones last, then the oldest), and then from the overage
(overageLimit). A grant counts from now until --expires-at, exactly (an
RFC 3339 instant with a zone, e.g. 2027-12-05T00:00:00Z); without it, it
never expires. Refunds give back to the grants their consume drew from (a
part whose grant has expired or been voided since lapses).

The grant's ID (--grant) is its idempotency key: the same grant sent again
is a duplicate with the original grant, so a retry after a timeout is
safe; the same ID for another amount is IDEMPOTENCY_CONFLICT. An
entitlement has at most 20 grants counting at once (TOO_MANY_GRANTS).

Decided now by default, as a reserve is: whoever grants credit learns at
once whether it counts, and a grant can be refused (an --expires-at that
is not in the future when it is decided, a grant ID already on the
entitlement, TOO_MANY_GRANTS).

`

const voidDetails = `Voids a grant (--grant, its ID): what is left of it stops counting at
once; what consumes drew from it stays drawn, and a later refund of such a
consume gives nothing back to it (that part lapses). A void of a voided
grant is a duplicate; of an expired one GRANT_NOT_ACTIVE; of one the
entitlement never had GRANT_NOT_FOUND (through the queue only once the
message is older than REFUND_TARGET_WAIT).

Decided now by default, as a grant is: whoever voids a grant learns at
once that it no longer counts, or why not.

`

const grantsDetails = `Lists the grants of one entitlement that count now, in the order consumes
draw from them, each with its amount, what remains of it, its priority,
when it was granted and when it expires, from one strongly consistent read
of the entitlements table (ENTITLEMENTS_TABLE or --table). When the stored
period has ended, the grant the next event's reset will carry the unused
allowance into (rolloverMax) is listed too, as the next event will see it.

With --all, the grants that no longer count are added from the ledger table
(USAGE_LEDGER_TABLE or --ledger-table): voided ones, with what was left of
them and when, and expired ones. That reads the entitlement's whole ledger,
as usagectl history does (a grant's entry is kept at least as long as the
dedup retention and a day after the grant expires, and for as long as the
table when it never expires). A
rollover's grant has no ledger entry: it is listed while the entitlement
holds it. A grant the ledger records as active that the entitlement read
did not hold (granted just after that read) is listed without what
remains of it.

Exits 1 when the entitlement does not exist or cannot be read.`

// granter asks for grants and voids: both decisions clients answer them.
type granter interface {
	Grant(ctx context.Context, r client.GrantRequest) (client.GrantResult, error)
	Void(ctx context.Context, r client.VoidRequest) (client.GrantResult, error)
}

type grantFlags struct {
	user, pool, key, grantID, amount, expiresAt, metadata string
	table, ledgerTable, function, queueURL                string
	priority                                              int
	queue, asJSON                                         bool
}

func (a *app) grantCmd() *cobra.Command {
	return a.grantOrVoidCmd(usage.OperationGrant, &cobra.Command{
		Use:   "grant (--user U | --pool ID) --key K --grant ID --amount N [--expires-at T] [--priority P] [flags]",
		Short: "add a top-up that consumes draw from once the allowance is used up, decided now (or --queue)",
		Long:  grantDetails + grantPaths,
		Example: `  usagectl grant --user user-123 --key AI_TUTOR_ACCESS --grant topup-77 --amount 50 --expires-at 2027-12-05T00:00:00Z
  usagectl grant --user user-123 --key AI_TUTOR_ACCESS --grant promo-3 --amount 5 --priority 10 --queue
  usagectl grant --pool school-1 --key AI_TUTOR_ACCESS --grant extra-sessions --amount 1000`,
	})
}

func (a *app) voidCmd() *cobra.Command {
	return a.grantOrVoidCmd(usage.OperationVoid, &cobra.Command{
		Use:   "void (--user U | --pool ID) --key K --grant ID [flags]",
		Short: "end a grant: what is left of it stops counting, decided now (or --queue)",
		Long:  voidDetails + grantPaths,
		Example: `  usagectl void --user user-123 --key AI_TUTOR_ACCESS --grant promo-3
  usagectl void --user user-123 --key AI_TUTOR_ACCESS --grant promo-3 --function usage-decisions`,
	})
}

// grantOrVoidCmd is grant or void: the same paths and flags, grant's own
// (--amount, --expires-at, --priority, --metadata) aside.
func (a *app) grantOrVoidCmd(op usage.Operation, cmd *cobra.Command) *cobra.Command {
	var f grantFlags
	cmd.Args = noArgs
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "", "`userId` (required, unless --pool)")
	fl.StringVar(&f.pool, "pool", "", "a team pool's `ID`, instead of --user: the pool's own entitlement, which its members draw from")
	fl.StringVar(&f.key, "key", "", "`entitlementKey` (required)")
	if op == usage.OperationGrant {
		fl.StringVar(&f.grantID, "grant", "", "the grant's `ID`, also its idempotency key (required)")
		fl.StringVar(&f.amount, "amount", "", "the `amount` granted, a positive decimal (required)")
		fl.StringVar(&f.expiresAt, "expires-at", "", "when the grant stops counting, an RFC 3339 `instant` with a zone (default: never)")
		fl.IntVar(&f.priority, "priority", usage.DefaultGrantPriority, fmt.Sprintf("`P`, 0 to %d: grants with a lower number are drawn from first", usage.MaxGrantPriority))
		fl.StringVar(&f.metadata, "metadata", "", "a `JSON` object kept with the ledger record")
	} else {
		fl.StringVar(&f.grantID, "grant", "", "the `ID` of the grant to void (required)")
	}
	fl.StringVar(&f.table, "table", "", "entitlements table, deciding in process (default $ENTITLEMENTS_TABLE)")
	fl.StringVar(&f.ledgerTable, "ledger-table", "", "ledger table, deciding in process (default $USAGE_LEDGER_TABLE)")
	fl.StringVar(&f.function, "function", "", "ask the decisions function `NAME` (or ARN) instead of deciding in process")
	fl.BoolVar(&f.queue, "queue", false, "send it through the usage event queue instead of deciding it now")
	fl.StringVar(&f.queueURL, "queue-url", "", "with --queue: the queue to send to (default $USAGE_EVENT_QUEUE_URL)")
	fl.BoolVar(&f.asJSON, "json", false, "print the answer, or with --queue the receipt, as JSON")
	cmd.RunE = a.runE(func(ctx context.Context, cmd *cobra.Command) error { return a.grantOrVoid(ctx, cmd, op, f) })
	return cmd
}

func (a *app) grantOrVoid(ctx context.Context, cmd *cobra.Command, op usage.Operation, f grantFlags) error {
	ev, err := grantEvent(op, f, cmd.Flags().Changed("priority"))
	if err != nil {
		return err
	}
	changed := cmd.Flags().Changed
	switch {
	case f.queue && (changed("function") || changed("table") || changed("ledger-table")):
		return usagef("--function, --table and --ledger-table decide now: they exclude --queue")
	case !f.queue && changed("queue-url"):
		return usagef("--queue-url needs --queue (without it the %s is decided now)", op)
	case f.function != "" && (changed("table") || changed("ledger-table")):
		return usagef("--table and --ledger-table exclude --function (the function uses its own tables)")
	}
	if f.queue {
		receipt, err := a.publish(ctx, f.queueURL, ev)
		if err != nil {
			return err
		}
		if f.asJSON {
			return a.writeJSON(receiptJSON{MessageID: receipt.MessageID, IdempotencyKey: receipt.IdempotencyKey, SequenceNumber: receipt.SequenceNumber})
		}
		what := "grant " + ev.GrantID
		if op == usage.OperationVoid {
			what = "void of grant " + ev.GrantID
		}
		fmt.Fprintf(a.stdout, "sent %s: message %s\n", what, receipt.MessageID)
		return nil
	}
	var ents, ledger string
	if f.function == "" {
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
	var res client.GrantResult
	if op == usage.OperationGrant {
		res, err = c.Grant(ctx, client.GrantRequest{UserID: ev.UserID, PoolID: ev.PoolID, EntitlementKey: ev.EntitlementKey, GrantID: ev.GrantID,
			Amount: ev.Amount, ExpiresAt: ev.ExpiresAt, Priority: ev.Priority, Metadata: ev.Metadata})
	} else {
		res, err = c.Void(ctx, client.VoidRequest{UserID: ev.UserID, PoolID: ev.PoolID, EntitlementKey: ev.EntitlementKey, GrantID: ev.GrantID})
	}
	return a.grantAnswer(res, err, ev.GrantID, f.asJSON)
}

// grantEvent checks the flags with the contract's own rules.
func grantEvent(op usage.Operation, f grantFlags, priorityGiven bool) (usage.Event, error) {
	if f.user != "" && f.pool != "" {
		return usage.Event{}, usagef("--user and --pool exclude each other: a grant is a user's or a pool's")
	}
	owner := struct{ name, value string }{"user", f.user}
	if f.pool != "" {
		owner = struct{ name, value string }{"pool", f.pool}
	}
	required := []struct{ name, value string }{owner, {"key", f.key}, {"grant", f.grantID}}
	if op == usage.OperationGrant {
		required = append(required, struct{ name, value string }{"amount", f.amount})
	}
	for _, r := range required {
		if r.value == "" {
			return usage.Event{}, usagef("--%s is required", r.name)
		}
	}
	ev := usage.Event{UserID: f.user, PoolID: f.pool, EntitlementKey: f.key, Operation: op, GrantID: f.grantID}
	if op == usage.OperationGrant {
		amt, err := usage.ParseDecimal(f.amount)
		if err != nil {
			return usage.Event{}, usagef("--amount: %s: %v", usage.ReasonInvalidAmount, err)
		}
		ev.Amount, ev.AmountGiven = amt, true
		if f.expiresAt != "" {
			t, err := usage.ParseInstant(f.expiresAt)
			if err != nil {
				return usage.Event{}, usagef("--expires-at: %s: %v", usage.ReasonInvalidField, err)
			}
			ev.ExpiresAt = &t
		}
		if priorityGiven {
			p := f.priority
			ev.Priority = &p
		}
		if f.metadata != "" {
			ev.Metadata = json.RawMessage(f.metadata)
		}
	}
	if err := ev.Validate(); err != nil {
		return usage.Event{}, usagef("the %s would be rejected: %v", op, err)
	}
	return ev, nil
}

// grantAnswer prints the answer to a grant or void decided now; the error
// (a rejection, RETRY, or no answer) is the exit code's.
func (a *app) grantAnswer(res client.GrantResult, err error, grantID string, asJSON bool) error {
	word, more, err := a.decided(res.Result, err, "grant "+grantID, asJSON)
	if !more {
		return err
	}
	g := res.Grant
	fmt.Fprintf(a.stdout, "%s: grant %s of %s, priority %d, %s: %s\n", word, g.ID, g.Amount, g.Priority, expiry(g.ExpiresAt), grantState(g))
	if b := res.Balance; b != nil {
		a.printBalanceSummary(*b)
	}
	return nil
}

// grantState is an answer's grant state in words.
func grantState(g client.Grant) string {
	if g.State == usage.GrantVoided && g.Voided != nil {
		return fmt.Sprintf("voided (%s of it was left)", g.Voided)
	}
	return g.State
}

// expiry is when a grant expires, in words.
func expiry(t *time.Time) string {
	if t == nil {
		return "never expires"
	}
	return "until " + usage.FormatInstant(*t)
}

// printBalanceSummary prints a balance in one line, as the answers to
// decisions print it.
func (a *app) printBalanceSummary(b usage.Balance) {
	fmt.Fprintf(a.stdout, "used now %s", b.Used)
	if b.Remaining != nil {
		fmt.Fprintf(a.stdout, ", remaining %s of %s", b.Remaining, b.Limit)
	}
	if len(b.Grants) > 0 {
		fmt.Fprintf(a.stdout, ", grants %s left", grantsLeft(b.Grants))
	}
	if b.Available != nil {
		fmt.Fprintf(a.stdout, ", available %s", b.Available)
	}
	fmt.Fprintln(a.stdout)
}

// grantsLeft sums what remains of grants.
func grantsLeft(gs []usage.Grant) usage.Decimal {
	var sum usage.Decimal
	for _, g := range gs {
		sum = sum.Add(g.Remaining)
	}
	return sum
}

// grantView is one grant as usagectl prints it: the answer's field names.
type grantView struct {
	GrantID string      `json:"grantId"`
	Amount  json.Number `json:"amount"`
	// Remaining is null for a grant no longer on the entitlement.
	Remaining *json.Number `json:"remaining"`
	Priority  int          `json:"priority"`
	ExpiresAt *string      `json:"expiresAt"` // null: never
	// GrantedAt is absent where the answer does not carry it (balance).
	GrantedAt string `json:"grantedAt,omitempty"`
	// Rollover marks the unused allowance a reset carried over.
	Rollover bool `json:"rollover,omitempty"`
	// State is, for usagectl grants: active (counting now), expired or
	// voided.
	State string `json:"state,omitempty"`
	// Voided and VoidedAt are, for a voided grant, what was left of it and
	// when it was voided.
	Voided   *json.Number `json:"voided,omitempty"`
	VoidedAt string       `json:"voidedAt,omitempty"`
}

// grantViewOf is a grant that counts (on the entitlement).
func grantViewOf(g usage.Grant) grantView {
	r := number(g.Remaining)
	return grantView{GrantID: g.ID, Amount: number(g.Amount), Remaining: &r, Priority: g.Priority,
		ExpiresAt: optionalInstant(g.ExpiresAt), GrantedAt: instant(g.GrantedAt), Rollover: g.Rollover()}
}

func grantViewsOf(gs []usage.Grant) []grantView {
	out := []grantView{}
	for _, g := range gs {
		out = append(out, grantViewOf(g))
	}
	return out
}

// printGrantLines prints grants that count, one a line, indented.
func printGrantLines(w io.Writer, indent string, gs []grantView) {
	for _, g := range gs {
		line := fmt.Sprintf("%s%s  %s of %s left, priority %d, ", indent, g.GrantID, g.Remaining, g.Amount, g.Priority)
		if g.ExpiresAt == nil {
			line += "never expires"
		} else {
			line += "until " + *g.ExpiresAt
		}
		if g.Rollover {
			line += " (unused allowance carried over)"
		}
		fmt.Fprintln(w, line)
	}
}

// overageView is the overage allowed and used, as the answers show it.
type overageView struct {
	Limit     json.Number `json:"limit"`
	Used      json.Number `json:"used"`
	Remaining json.Number `json:"remaining"`
}

func overageViewOf(b usage.Balance) *overageView {
	if b.OverageLimit == nil {
		return nil
	}
	left := b.OverageLimit.Sub(b.OverageUsed)
	if left.Sign() < 0 {
		left = usage.Decimal{}
	}
	return &overageView{Limit: number(*b.OverageLimit), Used: number(b.OverageUsed), Remaining: number(left)}
}

type grantsFlags struct {
	user, key, table, ledgerTable string
	all, asJSON                   bool
}

func (a *app) grantsCmd() *cobra.Command {
	var f grantsFlags
	cmd := &cobra.Command{
		Use:   "grants --user U --key K [flags]",
		Short: "list an entitlement's grants counting now, in draw order (--all: voided and expired ones too)",
		Long:  grantsDetails,
		Args:  noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "", "`userId` (required)")
	fl.StringVar(&f.key, "key", "", "`entitlementKey` (required)")
	fl.BoolVar(&f.all, "all", false, "also list the grants that no longer count (voided, expired), from the ledger")
	fl.StringVar(&f.table, "table", "", "entitlements table (default $ENTITLEMENTS_TABLE)")
	fl.StringVar(&f.ledgerTable, "ledger-table", "", "with --all: ledger table (default $USAGE_LEDGER_TABLE)")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON")
	cmd.RunE = a.runE(func(ctx context.Context, cmd *cobra.Command) error { return a.grants(ctx, cmd, f) })
	return cmd
}

type grantsView struct {
	UserID         string `json:"userId"`
	EntitlementKey string `json:"entitlementKey"`
	Table          string `json:"table"`
	LedgerTable    string `json:"ledgerTable,omitempty"` // with --all
	At             string `json:"at"`
	// Counting is how many grants count now; Remaining what is left of
	// them together.
	Counting  int         `json:"counting"`
	Remaining json.Number `json:"remaining"`
	Grants    []grantView `json:"grants"`
	all       bool
}

func (a *app) grants(ctx context.Context, cmd *cobra.Command, f grantsFlags) error {
	if f.user == "" || f.key == "" {
		return usagef("--user and --key are required")
	}
	if !f.all && cmd.Flags().Changed("ledger-table") {
		return usagef("--ledger-table needs --all (the grants that count are on the entitlement)")
	}
	table, err := a.table(f.table, "--table", "ENTITLEMENTS_TABLE")
	if err != nil {
		return err
	}
	var ledger string
	if f.all {
		if ledger, err = a.table(f.ledgerTable, "--ledger-table", "USAGE_LEDGER_TABLE"); err != nil {
			return err
		}
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	keys, err := a.entitlementKeys()
	if err != nil {
		return err
	}
	ddb := a.dynamoDB(cfg)
	ents, err := dynamodb.ListEntitlements(ctx, ddb, table, keys, f.user, f.key)
	if err != nil {
		return fmt.Errorf("read entitlement %s of %s from %s: %w", f.key, f.user, table, err)
	}
	if len(ents) == 0 {
		return fmt.Errorf("user %q has no entitlement %q in %s", f.user, f.key, table)
	}
	now := time.Now()
	ent := ents[0].Entitlement
	b, err := usage.BalanceOf(ent, now)
	if err != nil {
		return fmt.Errorf("entitlement %s of %s: %w", f.key, f.user, err)
	}
	v := grantsView{UserID: f.user, EntitlementKey: f.key, Table: table, LedgerTable: ledger, At: usage.FormatInstant(now),
		Counting: len(b.Grants), Remaining: number(grantsLeft(b.Grants)), Grants: []grantView{}, all: f.all}
	shown := map[string]bool{}
	for _, g := range b.Grants {
		gv := grantViewOf(g)
		if f.all {
			gv.State = usage.GrantActive
		}
		v.Grants = append(v.Grants, gv)
		shown[g.ID] = true
	}
	if f.all {
		if err := a.addLedgerGrants(ctx, ddb, ledger, &v, ent, shown, now); err != nil {
			return err
		}
	}
	if f.asJSON {
		return a.writeJSON(v)
	}
	a.printGrants(v)
	return nil
}

// addLedgerGrants adds the grants of the ledger that no longer count,
// oldest first: voided, expired, and (read after a grant the entitlement
// read did not see yet) active ones without what remains of them.
func (a *app) addLedgerGrants(ctx context.Context, ddb dynamodb.AdminClient, table string, v *grantsView, ent usage.Entitlement,
	shown map[string]bool, now time.Time) error {
	onItem := map[string]usage.Grant{}
	for _, g := range ent.Grants {
		onItem[g.ID] = g
	}
	var rest []grantView
	for e, err := range dynamodb.LedgerEntries(ctx, ddb, table, usage.Scope{UserID: v.UserID, EntitlementKey: v.EntitlementKey}) {
		if err != nil {
			return fmt.Errorf("read the ledger of %s/%s from %s: %w", v.UserID, v.EntitlementKey, table, err)
		}
		if !e.Is(usage.OperationGrant) || shown[e.DedupKey] {
			continue
		}
		g := grantView{GrantID: e.DedupKey, Amount: number(e.Amount), Priority: e.Priority, ExpiresAt: optionalInstant(e.GrantExpiresAt),
			GrantedAt: instant(e.AppliedAt), State: e.GrantState}
		switch {
		case e.GrantState == usage.GrantVoided:
			if e.Voided != nil {
				n := number(*e.Voided)
				g.Voided = &n
			}
			g.VoidedAt = instant(e.VoidedAt)
		case e.GrantExpiresAt != nil && !now.Before(*e.GrantExpiresAt):
			g.State = "expired"
		}
		rest = append(rest, g)
	}
	// Expired grants still on the entitlement (nothing has pruned them
	// yet) but no longer in the ledger are listed too.
	for id, g := range onItem {
		if !shown[id] && !g.ActiveAt(now) && !containsGrant(rest, id) {
			gv := grantViewOf(g)
			gv.Remaining, gv.State = nil, "expired"
			rest = append(rest, gv)
		}
	}
	sortGrantViews(rest)
	v.Grants = append(v.Grants, rest...)
	return nil
}

func containsGrant(gs []grantView, id string) bool {
	for _, g := range gs {
		if g.GrantID == id {
			return true
		}
	}
	return false
}

// sortGrantViews orders grants that no longer count by when they were
// granted, then by ID.
func sortGrantViews(gs []grantView) {
	for i := 1; i < len(gs); i++ {
		for j := i; j > 0 && (gs[j].GrantedAt < gs[j-1].GrantedAt || gs[j].GrantedAt == gs[j-1].GrantedAt && gs[j].GrantID < gs[j-1].GrantID); j-- {
			gs[j], gs[j-1] = gs[j-1], gs[j]
		}
	}
}

func (a *app) printGrants(v grantsView) {
	if len(v.Grants) == 0 {
		what := "no grants count now"
		if v.all {
			what = "no grants"
		}
		fmt.Fprintf(a.stdout, "%s for %s of user %s in %s\n", what, v.EntitlementKey, v.UserID, v.Table)
		return
	}
	fmt.Fprintf(a.stdout, "%s of user %s: %s counting, %s remaining, in the order consumes draw from them", v.EntitlementKey, v.UserID,
		plural(v.Counting, "grant"), v.Remaining)
	if rest := len(v.Grants) - v.Counting; v.all {
		fmt.Fprintf(a.stdout, "; then %d more from the ledger, oldest first", rest)
	}
	fmt.Fprintf(a.stdout, " (table %s)\n\n", v.Table)
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	at, _ := usage.ParseInstant(v.At)
	if v.all {
		fmt.Fprintln(tw, "GRANT\tSTATE\tAMOUNT\tREMAINING\tPRIORITY\tEXPIRES\tEXPIRES AT\tGRANTED AT\tVOIDED\tVOIDED AT")
	} else {
		fmt.Fprintln(tw, "GRANT\tAMOUNT\tREMAINING\tPRIORITY\tEXPIRES\tEXPIRES AT\tGRANTED AT")
	}
	for _, g := range v.Grants {
		remaining, expires, expiresAt := "-", "never", "-"
		if g.Remaining != nil {
			remaining = g.Remaining.String()
		}
		if g.ExpiresAt != nil {
			expiresAt = *g.ExpiresAt
			t, _ := usage.ParseInstant(*g.ExpiresAt)
			expires = until(t, at)
		}
		id := g.GrantID
		if g.Rollover {
			id += " (rollover)"
		}
		if v.all {
			voided := "-"
			if g.Voided != nil {
				voided = g.Voided.String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", id, dash(g.State), g.Amount, remaining, g.Priority, expires, expiresAt,
				dash(g.GrantedAt), voided, dash(g.VoidedAt))
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", id, g.Amount, remaining, g.Priority, expires, expiresAt, dash(g.GrantedAt))
		}
	}
	tw.Flush()
}

// until says when t is, seen at now: "in 364d23h", "in 5h2m0s", or
// "2h ago" once past.
func until(t, now time.Time) string {
	d := t.Sub(now)
	past := d <= 0
	if past {
		d = -d
	}
	var s string
	if d >= 48*time.Hour {
		days := d / (24 * time.Hour)
		s = fmt.Sprintf("%dd%dh", days, (d-days*24*time.Hour)/time.Hour)
	} else {
		s = max(d.Round(time.Second), time.Second).String()
	}
	if past {
		return s + " ago"
	}
	return "in " + s
}

// drawText writes draws as "allowance 2, grant topup-1 3 (lapsed)".
func drawText(ds []usage.Draw) string {
	var parts []string
	for _, d := range ds {
		s := string(d.Bucket)
		if d.GrantID != "" {
			s += " " + d.GrantID
		}
		s += " " + d.Amount.String()
		if d.Lapsed {
			s += " (lapsed)"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// printBeyondAllowance prints a balance's grants, overage and available,
// each under a label of width columns after indent.
func printBeyondAllowance(w io.Writer, indent string, width int, b usage.Balance, grants []grantView, overage *overageView) {
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%s%-*s%s\n", indent, width, label, fmt.Sprintf(format, args...))
	}
	parts := []string{}
	if b.Remaining != nil {
		parts = append(parts, "remaining "+b.Remaining.String())
	}
	if len(grants) > 0 {
		left := grantsLeft(b.Grants)
		line("grants", "%s left of %s, drawn in this order once the allowance is used up:", left, plural(len(grants), "grant"))
		printGrantLines(w, indent+strings.Repeat(" ", width+2), grants)
		parts = append(parts, "grants "+left.String())
	}
	if overage != nil {
		line("overage", "%s of %s used, %s remaining", overage.Used, overage.Limit, overage.Remaining)
		parts = append(parts, "overage "+overage.Remaining.String())
	}
	if b.Available != nil {
		if len(parts) > 1 {
			line("available", "%s (%s)", b.Available, strings.Join(parts, " + "))
		} else {
			line("available", "%s", b.Available)
		}
	}
}
