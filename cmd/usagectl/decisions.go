package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/usage-event-service/usage-event-service/client"
	"github.com/usage-event-service/usage-event-service/client/local"
	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/producer"
	"github.com/usage-event-service/usage-event-service/usage"
)

const balanceDetails = `Shows an entitlement's balance as a synchronous decision sees it: used,
limit and remaining now (the period's allowance), with a period that has
ended read as used 0 from the new period's start (nothing is written).
Beyond the allowance: the grants that count now, in the order consumes
draw from them, with what remains of each; the overage allowed and used
this period; and available, what consumes may still draw now from all of
them together.

By default it decides in this process, reading the entitlements table
(ENTITLEMENTS_TABLE or --table) with the service's key layout. With
--function it asks the decisions function instead (a name or an ARN;
AWS_ENDPOINT_URL_LAMBDA is honoured as by any AWS SDK client).

A member of a team pool shows, when decided in this process, the pool's
ID, its cap (its own limit; none: the pool alone limits it) and the pool's
entitlement of the same key as read from the table: used now, limit and
remaining.

Exits 1 when the entitlement does not exist (ENTITLEMENT_NOT_FOUND).`

const refundDetails = `Gives back (part of) an applied consume, named by its idempotency key
(--refund-of). Without --amount, all that remains refundable is given back.

By default the refund goes through the usage event queue
(USAGE_EVENT_QUEUE_URL or --queue-url), like usagectl send: validated, then
sent, decided later. Without --idempotency-key the refund gets a UUIDv7 key.

With --sync it is decided now by the decisions function (--function, default
$DECISIONS_FUNCTION), and the answer is printed. A refund decided
synchronously needs an idempotency key: without --idempotency-key one is
generated and printed, so that a retry can reuse it. Exits 0 when applied or
a duplicate (already decided under the key), 1 when rejected (e.g.
REFUND_EXCEEDS_APPLIED, REFUND_TARGET_NOT_FOUND) or not decided.`

// decisions is what both decisions clients answer: client.Client, the
// hold operations and the grants.
type decisions interface {
	client.Client
	holder
	granter
}

// decisionsClient is the in-process client (function "") or the
// decisions function's. ledgerTable may be "" for balances.
func (a *app) decisionsClient(cfg aws.Config, function, entitlementsTable, ledgerTable string) (decisions, error) {
	if function != "" {
		c, err := client.NewLambda(cfg, function)
		if err != nil {
			return nil, usageError{err}
		}
		return c, nil
	}
	keys, err := a.entitlementKeys()
	if err != nil {
		return nil, err
	}
	override := a.getenv("AWS_ENDPOINT_URL_DYNAMODB") != "" || a.getenv("AWS_ENDPOINT_URL") != ""
	c, err := local.New(cfg, dynamodb.Config{EntitlementsTable: entitlementsTable, LedgerTable: ledgerTable, Keys: keys},
		func(o *awsdynamodb.Options) { o.DisableValidateResponseChecksum = override }) // see app.dynamoDB
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

type balanceFlags struct {
	user, key, table, function string
	asJSON                     bool
}

func (a *app) balanceCmd() *cobra.Command {
	var f balanceFlags
	cmd := &cobra.Command{
		Use:   "balance --user U --key K [flags]",
		Short: "show an entitlement's balance now: used, limit, remaining, grants, overage, available, period",
		Long:  balanceDetails,
		Args:  noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "", "`userId` (required)")
	fl.StringVar(&f.key, "key", "", "`entitlementKey` (required)")
	fl.StringVar(&f.table, "table", "", "entitlements table (default $ENTITLEMENTS_TABLE)")
	fl.StringVar(&f.function, "function", "", "ask the decisions function `NAME` (or ARN) instead of reading the table")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON")
	cmd.RunE = a.runE(func(ctx context.Context, cmd *cobra.Command) error { return a.balance(ctx, cmd, f) })
	return cmd
}

// balanceView is a balance as usagectl balance prints it: the answer's
// field names, exact JSON numbers, null for unlimited or never-resetting.
type balanceView struct {
	UserID         string       `json:"userId"`
	EntitlementKey string       `json:"entitlementKey"`
	Used           json.Number  `json:"used"`
	Limit          *json.Number `json:"limit"`
	Remaining      *json.Number `json:"remaining"`
	Held           *json.Number `json:"held,omitempty"`
	ResetPeriod    string       `json:"resetPeriod"`
	PeriodStart    *string      `json:"periodStart"`
	NextReset      *string      `json:"nextReset"`
	// Grants count now, in draw order; Overage is absent when none is
	// allowed; Available is null when unlimited.
	Grants    []grantView  `json:"grants"`
	Overage   *overageView `json:"overage,omitempty"`
	Available *json.Number `json:"available"`
	// Pool is the team pool a member draws from too, read from the table
	// in this process (absent: none, or asked of --function); its limit
	// above is then the member's cap.
	Pool *memberPoolView `json:"pool,omitempty"`
}

func (a *app) balance(ctx context.Context, cmd *cobra.Command, f balanceFlags) error {
	if f.user == "" || f.key == "" {
		return usagef("--user and --key are required")
	}
	if f.function != "" && cmd.Flags().Changed("table") {
		return usagef("--table and --function exclude each other (the function reads its own table)")
	}
	table := ""
	if f.function == "" {
		var err error
		if table, err = a.table(f.table, "--table", "ENTITLEMENTS_TABLE"); err != nil {
			return err
		}
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	c, err := a.decisionsClient(cfg, f.function, table, "")
	if err != nil {
		return err
	}
	b, err := c.Balance(ctx, f.user, f.key)
	if err != nil {
		return err
	}
	v := balanceView{UserID: f.user, EntitlementKey: f.key, Used: number(b.Used), ResetPeriod: string(b.ResetPeriod),
		Limit: optionalNumber(b.Limit), Remaining: optionalNumber(b.Remaining), Held: optionalNumber(b.Held),
		PeriodStart: optionalInstant(b.PeriodStart), NextReset: optionalInstant(b.NextReset),
		Grants: grantViewsOf(b.Grants), Overage: overageViewOf(b), Available: optionalNumber(b.Available)}
	if f.function == "" {
		if v.Pool, err = a.balancePool(ctx, cfg, table, f.user, f.key); err != nil {
			return err
		}
	}
	if f.asJSON {
		return a.writeJSON(v)
	}
	w := a.stdout
	fmt.Fprintf(w, "%s of user %s\n", v.EntitlementKey, v.UserID)
	fmt.Fprintf(w, "  used          %s\n", v.Used)
	if v.Limit == nil {
		fmt.Fprintf(w, "  limit         unlimited\n")
	} else {
		fmt.Fprintf(w, "  limit         %s\n", v.Limit)
		fmt.Fprintf(w, "  remaining     %s\n", v.Remaining)
	}
	if v.Held != nil {
		fmt.Fprintf(w, "  held          %s (active holds, counted in used)\n", v.Held)
	}
	printBeyondAllowance(w, "  ", 14, b, v.Grants, v.Overage)
	printMemberPool(w, "  ", 14, v.EntitlementKey, v.Pool)
	fmt.Fprintf(w, "  reset period  %s\n", v.ResetPeriod)
	if v.PeriodStart != nil {
		fmt.Fprintf(w, "  period start  %s\n", *v.PeriodStart)
	}
	if v.NextReset != nil {
		fmt.Fprintf(w, "  next reset    %s\n", *v.NextReset)
	}
	return nil
}

// balancePool reads the member entitlement's pool, if it names one, from
// the entitlements table (the in-process balance: the decision's answer
// carries no pool).
func (a *app) balancePool(ctx context.Context, cfg aws.Config, table, user, key string) (*memberPoolView, error) {
	keys, err := a.entitlementKeys()
	if err != nil {
		return nil, err
	}
	db := a.dynamoDB(cfg)
	ents, err := dynamodb.ListEntitlements(ctx, db, table, keys, user, key)
	if err != nil {
		return nil, fmt.Errorf("read entitlement %q of %q from %s: %w", key, user, table, err)
	}
	if len(ents) == 0 || ents[0].Pool == "" {
		return nil, nil
	}
	return a.poolReader(ctx, db, table, keys, key).view(ents[0].Entitlement, key, time.Now().UTC()), nil
}

func optionalNumber(d *usage.Decimal) *json.Number {
	if d == nil {
		return nil
	}
	n := number(*d)
	return &n
}

func optionalInstant(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := usage.FormatInstant(*t)
	return &s
}

type refundFlags struct {
	user, key, refundOf, amount, idemKey, queueURL, function string
	sync, asJSON                                             bool
}

func (a *app) refundCmd() *cobra.Command {
	var f refundFlags
	cmd := &cobra.Command{
		Use:   "refund --user U --key K --refund-of KEY [flags]",
		Short: "give back (part of) an applied consume, through the queue or decided now (--sync)",
		Long:  refundDetails,
		Example: `  usagectl refund --user user-123 --key api-calls --refund-of order-9 --amount 1
  usagectl refund --user user-123 --key api-calls --refund-of order-9 --sync --idempotency-key order-9:refund`,
		Args: noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "", "`userId` (required)")
	fl.StringVar(&f.key, "key", "", "`entitlementKey` (required)")
	fl.StringVar(&f.refundOf, "refund-of", "", "idempotency `key` of the consume to give back (required)")
	fl.StringVar(&f.amount, "amount", "", "`amount` to give back, a positive decimal (default: all that remains)")
	fl.StringVar(&f.idemKey, "idempotency-key", "", "the refund's own dedup `key` (default: a generated UUIDv7)")
	fl.BoolVar(&f.sync, "sync", false, "decide now through the decisions function instead of the queue")
	fl.StringVar(&f.function, "function", "", "with --sync: the decisions function `NAME` or ARN (default $DECISIONS_FUNCTION)")
	fl.StringVar(&f.queueURL, "queue-url", "", "queue to send to (default $USAGE_EVENT_QUEUE_URL)")
	fl.BoolVar(&f.asJSON, "json", false, "print the receipt, or with --sync the answer, as JSON")
	cmd.RunE = a.runE(func(ctx context.Context, cmd *cobra.Command) error { return a.refund(ctx, cmd, f) })
	return cmd
}

func (a *app) refund(ctx context.Context, cmd *cobra.Command, f refundFlags) error {
	ev, err := refundEvent(f)
	if err != nil {
		return err
	}
	if f.sync && cmd.Flags().Changed("queue-url") {
		return usagef("--queue-url and --sync exclude each other")
	}
	if !f.sync && cmd.Flags().Changed("function") {
		return usagef("--function needs --sync (without it the refund goes through the queue)")
	}
	if f.sync {
		return a.refundNow(ctx, ev, f)
	}
	receipt, err := a.publish(ctx, f.queueURL, ev)
	if err != nil {
		return err
	}
	if f.asJSON {
		return a.writeJSON(receiptJSON{MessageID: receipt.MessageID, IdempotencyKey: receipt.IdempotencyKey, SequenceNumber: receipt.SequenceNumber})
	}
	fmt.Fprintf(a.stdout, "sent refund message %s (idempotency key %s)\n", receipt.MessageID, receipt.IdempotencyKey)
	return nil
}

// publish sends one validated event through the queue (the --queue-url
// flag's value, or USAGE_EVENT_QUEUE_URL) with the producer library.
func (a *app) publish(ctx context.Context, queueFlag string, ev usage.Event) (producer.Receipt, error) {
	url, err := a.queueURL(queueFlag, "--queue-url", "USAGE_EVENT_QUEUE_URL")
	if err != nil {
		return producer.Receipt{}, err
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return producer.Receipt{}, err
	}
	pub, err := producer.New(cfg, url)
	if err != nil {
		return producer.Receipt{}, usageError{err}
	}
	return pub.Publish(ctx, ev)
}

// refundEvent checks the flags with the contract's own rules.
func refundEvent(f refundFlags) (usage.Event, error) {
	for _, r := range []struct{ name, value string }{{"user", f.user}, {"key", f.key}, {"refund-of", f.refundOf}} {
		if r.value == "" {
			return usage.Event{}, usagef("--%s is required", r.name)
		}
	}
	ev := usage.Event{UserID: f.user, EntitlementKey: f.key, Operation: usage.OperationRefund, RefundOf: f.refundOf, IdempotencyKey: f.idemKey}
	if f.amount != "" {
		amt, err := usage.ParseDecimal(f.amount)
		if err != nil {
			return usage.Event{}, usagef("--amount: %s: %v", usage.ReasonInvalidAmount, err)
		}
		if amt.Sign() <= 0 {
			return usage.Event{}, usagef("--amount: %s: must be greater than 0, got %s (leave it out to give back all that remains)", usage.ReasonInvalidAmount, amt)
		}
		ev.Amount = amt
	}
	if err := ev.Validate(); err != nil {
		return usage.Event{}, usagef("the refund would be rejected: %v", err)
	}
	return ev, nil
}

// answerJSON is what refund --sync --json prints: the decisions
// function's answer and the idempotency key it was decided under.
type answerJSON struct {
	IdempotencyKey string `json:"idempotencyKey"`
	decision.Answer
}

func (a *app) refundNow(ctx context.Context, ev usage.Event, f refundFlags) error {
	function := a.setting(f.function, "DECISIONS_FUNCTION")
	if function == "" {
		return usagef("no decisions function: set DECISIONS_FUNCTION or pass --function")
	}
	if ev.IdempotencyKey == "" {
		key, err := uuid.NewV7()
		if err != nil {
			return err
		}
		ev.IdempotencyKey = key.String()
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	c, err := a.decisionsClient(cfg, function, "", "")
	if err != nil {
		return err
	}
	res, err := c.Refund(ctx, client.RefundRequest{UserID: ev.UserID, EntitlementKey: ev.EntitlementKey,
		RefundOf: ev.RefundOf, Amount: ev.Amount, IdempotencyKey: ev.IdempotencyKey})
	if f.asJSON {
		if answer, ok := answerOf(res, err); ok {
			if werr := a.writeJSON(answerJSON{IdempotencyKey: ev.IdempotencyKey, Answer: answer}); werr != nil {
				return werr
			}
		}
	}
	if err != nil {
		return fmt.Errorf("%w (idempotency key %s)", err, ev.IdempotencyKey)
	}
	if f.asJSON {
		return nil
	}
	w := a.stdout
	if res.Duplicate() {
		at := ""
		if res.Original != nil && !res.Original.AppliedAt.IsZero() {
			at = " at " + usage.FormatInstant(res.Original.AppliedAt)
		}
		fmt.Fprintf(w, "duplicate: already refunded %s of %s%s (idempotency key %s)\n", res.Amount, ev.RefundOf, at, ev.IdempotencyKey)
	} else {
		fmt.Fprintf(w, "applied: refunded %s of %s (idempotency key %s)\n", res.Amount, ev.RefundOf, ev.IdempotencyKey)
	}
	if b := res.Balance; b != nil {
		fmt.Fprintf(w, "used now %s", b.Used)
		if b.Remaining != nil {
			fmt.Fprintf(w, ", remaining %s of %s", b.Remaining, b.Limit)
		}
		fmt.Fprintln(w)
	}
	return nil
}

// decided prints, with asJSON, the answer to a request decided now
// (what) and returns the exit code's error; more is false when nothing
// is left to print. word says, in words, whether it was decided now.
func (a *app) decided(res client.Result, err error, what string, asJSON bool) (word string, more bool, _ error) {
	answer, ok := answerOf(res, err)
	if asJSON && ok {
		if werr := a.writeJSON(answer); werr != nil {
			return "", false, werr
		}
	}
	if err != nil {
		return "", false, fmt.Errorf("%w (%s)", err, what)
	}
	if res.Duplicate() {
		return "duplicate (decided before)", !asJSON, nil
	}
	return "applied", !asJSON, nil
}

// answerOf is the answer behind a result or a rejection or RETRY.
func answerOf(res client.Result, err error) (decision.Answer, bool) {
	var rej *client.RejectedError
	var retry *client.RetryError
	switch {
	case err == nil:
		return res.Answer, true
	case errors.As(err, &rej):
		return rej.Answer, rej.Answer.Status != ""
	case errors.As(err, &retry):
		return retry.Answer, true
	}
	return decision.Answer{}, false
}
