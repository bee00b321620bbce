package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/spf13/cobra"

	"github.com/usage-event-service/usage-event-service/internal/config"
	"github.com/usage-event-service/usage-event-service/sqs"
	"github.com/usage-event-service/usage-event-service/usage"
)

const dlqListDetails = `Lists the messages in the dead-letter queue (DEAD_LETTER_QUEUE_URL or
--dlq-url) with the attributes the service sets when it rejects an event:
usage.reason (the reason code), usage.reasonMessage, usage.originalMessageId,
usage.receiveCount and usage.rejectedAt. Messages that SQS moved there by the
queue's redrive policy (after maxReceiveCount failed receives) carry none of
them and are shown as such.

SQS has no way to peek: listing receives the messages, which hides them from
other consumers for --visibility-timeout and adds one to their receive
count. When the listing is done usagectl makes them visible again at once;
if it is interrupted they reappear after the timeout.`

const dlqRedriveDetails = `Moves dead-lettered messages back to the usage event queue
(USAGE_EVENT_QUEUE_URL or --queue-url), bodies unchanged: each message is
sent to the queue first and deleted from the dead-letter queue only once the
send has succeeded, so a failure leaves it where it was.

Select the messages with --all or with one --id per message (the IDs that
"usagectl dlq list" shows), and narrow either with --reason: a reason code
(e.g. ENTITLEMENT_NOT_FOUND), or "none" for messages moved by the redrive
policy. Fix the cause first: an event redriven unchanged into the same
conditions is rejected again.

A redriven message gets a new message ID, so it carries the message ID of
the event's first delivery in usage.originalMessageId, and the service keeps
that as the dedup key of an event without an idempotencyKey: two copies of
one dead letter, or a message redriven twice, are applied once. (SQS's own
redrive, StartMessageMoveTask or "Start DLQ redrive" in the console, does
not: use it only for events that carry an idempotencyKey.)

Dedup lasts DEDUP_RETENTION (--dedup-retention; default 336h). A message
whose event was first sent longer ago is refused, unless --force: its dedup
key may have expired, so a replay could apply it twice. Refused messages are
listed with their age and stay in the dead-letter queue. The age counts from
the earliest send time the message carries: usage.originalSentAt, which
every redriven message gets, else its SentTimestamp (for a message the
service dead-lettered, the time of the rejection).

The exit code is 1 if any selected message was refused, failed or not found.`

func (a *app) dlqListCmd() *cobra.Command {
	var dlqURL string
	var maxN int
	var vis time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [flags]",
		Short: "list dead-lettered events with their rejection reasons",
		Long:  dlqListDetails,
		Args:  noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&dlqURL, "dlq-url", "", "dead-letter queue (default $DEAD_LETTER_QUEUE_URL)")
	fl.IntVar(&maxN, "max", 100, "list at most `N` messages")
	fl.DurationVar(&vis, "visibility-timeout", 30*time.Second, "how long listed messages stay hidden if usagectl cannot make them visible again")
	fl.BoolVar(&asJSON, "json", false, "print JSON")
	cmd.RunE = a.runE(func(ctx context.Context, _ *cobra.Command) error {
		if maxN < 1 {
			return usagef("--max must be at least 1, got %d", maxN)
		}
		if err := checkVisibility(vis); err != nil {
			return err
		}
		url, err := a.queueURL(dlqURL, "--dlq-url", "DEAD_LETTER_QUEUE_URL")
		if err != nil {
			return err
		}
		cfg, err := a.awsConfig(ctx)
		if err != nil {
			return err
		}
		listing, err := sqs.ListDeadLetters(ctx, awssqs.NewFromConfig(cfg), url, maxN, vis)
		if err != nil && !errors.Is(err, sqs.ErrNotReleased) {
			return err
		}
		if asJSON {
			if err := a.writeJSON(listing); err != nil {
				return err
			}
		} else {
			a.printDLQ(listing, maxN)
		}
		if err != nil {
			return fmt.Errorf("listed, but they reappear only after %v: %w", vis, err)
		}
		return nil
	})
	return cmd
}

func checkVisibility(d time.Duration) error {
	if d < time.Second || d > 12*time.Hour || d%time.Second != 0 {
		return usagef("--visibility-timeout must be whole seconds from 1s to 12h, got %v", d)
	}
	return nil
}

func (a *app) printDLQ(l sqs.DeadLetterListing, maxN int) {
	w := a.stdout
	fmt.Fprintf(w, "dead-letter queue %s: messages: about %d", l.QueueURL, l.Approximate)
	if len(l.Messages) == maxN && l.Approximate > maxN {
		fmt.Fprintf(w, ", showing the first %d (--max)", maxN)
	}
	fmt.Fprintln(w)
	for _, m := range l.Messages {
		fmt.Fprintf(w, "\n%s\n", m.MessageID)
		if m.MovedByRedrivePolicy {
			fmt.Fprintf(w, "  reason          (none: moved by the queue's redrive policy after repeated failed receives; see the service's logs)\n")
		} else {
			fmt.Fprintf(w, "  reason          %s\n", deref(m.Reason))
			fmt.Fprintf(w, "  message         %s\n", deref(m.ReasonMessage))
			fmt.Fprintf(w, "  rejected at     %s\n", deref(m.RejectedAt))
			fmt.Fprintf(w, "  original id     %s\n", deref(m.OriginalMessageID))
			if m.ReceiveCount != nil {
				fmt.Fprintf(w, "  receive count   %d\n", *m.ReceiveCount)
			}
		}
		if m.SentAt != "" {
			fmt.Fprintf(w, "  sent at         %s\n", m.SentAt)
		}
		if m.FirstSentAt != "" && m.FirstSentAt != m.SentAt {
			fmt.Fprintf(w, "  first sent      %s\n", m.FirstSentAt)
		}
		fmt.Fprintf(w, "  body            %s\n", shorten(m.Body, 300))
	}
	if len(l.Messages) == 0 {
		fmt.Fprintln(w, "no messages received")
	}
	fmt.Fprintln(a.stderr, "note: listing received these messages (SQS cannot peek); usagectl made them visible again, and each listing adds one to their receive count")
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

// shorten cuts s to at most n bytes on a rune boundary, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + fmt.Sprintf("… (%d bytes)", len(s))
}

// dlqRedriveFlags are the flags of usagectl dlq redrive.
type dlqRedriveFlags struct {
	all, force, asJSON                  bool
	ids                                 []string
	reason, queueURL, dlqURL, retention string
	vis                                 time.Duration
}

func (a *app) dlqRedriveCmd() *cobra.Command {
	var f dlqRedriveFlags
	cmd := &cobra.Command{
		Use:   "redrive (--all | --id MESSAGE_ID ...) [flags]",
		Short: "move dead-lettered events back to the queue, bodies unchanged",
		Long:  dlqRedriveDetails,
		Example: `  usagectl dlq redrive --all --reason ENTITLEMENT_NOT_FOUND
  usagectl dlq redrive --id 3f0c1b9e-... --id 7a21d4c0-...`,
		Args: noArgs,
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.all, "all", false, "redrive every message (narrowed by --reason)")
	fl.StringArrayVar(&f.ids, "id", nil, "redrive the message with this `MESSAGE_ID` (repeat for several)")
	fl.StringVar(&f.reason, "reason", "", "only messages with this reason `CODE`, or none for those moved by the redrive policy")
	fl.StringVar(&f.queueURL, "queue-url", "", "queue to redrive to (default $USAGE_EVENT_QUEUE_URL)")
	fl.StringVar(&f.dlqURL, "dlq-url", "", "dead-letter queue (default $DEAD_LETTER_QUEUE_URL)")
	fl.StringVar(&f.retention, "dedup-retention", "", "the service's dedup `retention`: older events are refused (default $DEDUP_RETENTION, else 336h)")
	fl.BoolVar(&f.force, "force", false, "redrive events older than the dedup retention too (they may be applied twice)")
	fl.DurationVar(&f.vis, "visibility-timeout", 60*time.Second, "how long messages stay hidden while the redrive runs")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON")
	reasons := append([]usage.Reason{sqs.ReasonNone}, usage.Reasons...)
	cmd.RegisterFlagCompletionFunc("reason", completions(reasons))
	cmd.RunE = a.runE(func(ctx context.Context, _ *cobra.Command) error { return a.redrive(ctx, f) })
	return cmd
}

func (a *app) redrive(ctx context.Context, f dlqRedriveFlags) error {
	rd, err := a.redriveOf(f)
	if err != nil {
		return err
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	rd.Client = awssqs.NewFromConfig(cfg)
	if isTerminal(a.stderr) {
		rd.Progress = func(r sqs.RedriveReport) {
			fmt.Fprintf(a.stderr, "\rredriven %d, refused %d, failed %d\x1b[K", len(r.Redriven), len(r.Refused), len(r.Failed))
		}
	}
	rep, err := rd.Run(ctx)
	if rd.Progress != nil {
		fmt.Fprintln(a.stderr)
	}
	if f.asJSON {
		if err := a.writeJSON(rep); err != nil {
			return err
		}
	} else {
		a.printRedrive(rep, rd.Retention)
	}
	switch {
	case ctx.Err() != nil:
		return errors.New("interrupted; the report lists what was redriven")
	case len(rep.Failed) > 0 || len(rep.NotFound) > 0 || len(rep.Refused) > 0:
		return fmt.Errorf("%d redriven, %d refused, %d failed, %d not found", len(rep.Redriven), len(rep.Refused), len(rep.Failed), len(rep.NotFound))
	case err != nil:
		return fmt.Errorf("the messages not redriven reappear only after %v: %w", f.vis, err)
	}
	return nil
}

// redriveOf checks the flags and settings of a redrive.
func (a *app) redriveOf(f dlqRedriveFlags) (sqs.Redrive, error) {
	switch {
	case f.all && len(f.ids) > 0:
		return sqs.Redrive{}, usagef("--all and --id exclude each other")
	case !f.all && len(f.ids) == 0:
		return sqs.Redrive{}, usagef("say which messages: --all, or --id MESSAGE_ID (repeatable)")
	}
	if f.reason != "" && f.reason != sqs.ReasonNone && !slices.Contains(usage.Reasons, usage.Reason(f.reason)) {
		codes := make([]string, len(usage.Reasons))
		for i, r := range usage.Reasons {
			codes[i] = string(r)
		}
		return sqs.Redrive{}, usagef("--reason %q is not a reason code: want none or one of %s", f.reason, strings.Join(codes, ", "))
	}
	if err := checkVisibility(f.vis); err != nil {
		return sqs.Redrive{}, err
	}
	retention, err := config.LoadDedupRetention(a.getenv)
	if f.retention != "" {
		retention, err = config.ParseRetention(f.retention)
		if err != nil {
			err = fmt.Errorf("--dedup-retention: %w", err)
		}
	}
	if err != nil {
		return sqs.Redrive{}, usageError{err}
	}
	to, err := a.queueURL(f.queueURL, "--queue-url", "USAGE_EVENT_QUEUE_URL")
	if err != nil {
		return sqs.Redrive{}, err
	}
	from, err := a.queueURL(f.dlqURL, "--dlq-url", "DEAD_LETTER_QUEUE_URL")
	if err != nil {
		return sqs.Redrive{}, err
	}
	if to == from {
		return sqs.Redrive{}, usagef("the queue and the dead-letter queue are the same (%s)", to)
	}
	return sqs.Redrive{DeadLetterURL: from, QueueURL: to, IDs: f.ids, Reason: f.reason,
		Retention: retention, Force: f.force, VisibilityTimeout: f.vis}, nil
}

func (a *app) printRedrive(r sqs.RedriveReport, retention time.Duration) {
	w := a.stdout
	fmt.Fprintf(w, "redrove %d message(s) from %s to %s\n", len(r.Redriven), r.From, r.To)
	for _, m := range r.Redriven {
		reason := m.Reason
		if reason == "" {
			reason = "(redrive policy)"
		}
		fmt.Fprintf(w, "  %s -> %s  %s\n", m.MessageID, m.NewMessageID, reason)
	}
	if len(r.Refused) > 0 {
		fmt.Fprintf(w, "refused (%d) with a dedup retention of %v; they stay in the dead-letter queue (--force redrives them anyway):\n", len(r.Refused), retention)
		for _, x := range r.Refused {
			fmt.Fprintf(w, "  %s: %s\n", x.MessageID, x.Error)
		}
	}
	if len(r.Failed) > 0 {
		fmt.Fprintf(w, "not redriven (%d):\n", len(r.Failed))
		for _, f := range r.Failed {
			id := f.MessageID
			if id == "" {
				id = "-"
			}
			fmt.Fprintf(w, "  %s: %s\n", id, f.Error)
		}
	}
	if len(r.NotFound) > 0 {
		fmt.Fprintf(w, "not found in the dead-letter queue: %s\n", strings.Join(r.NotFound, ", "))
	}
}
