package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/usage-event-service/usage-event-service/producer"
	"github.com/usage-event-service/usage-event-service/usage"
)

const sendDetails = `Sends usage events to the usage event queue (USAGE_EVENT_QUEUE_URL or
--queue-url). Every event is validated first with the service's own rules,
so a bad event is reported here, with its reason code, and never sent.

With --user and --key, sends one event. With --file, streams a file of
events, one JSON object per line in the message contract (see
docs/usage-events-sqs.md), "-" for standard input; blank lines are skipped.
A bad line is reported with its line number and reason code and does not
stop the rest. A summary follows; the exit code is 1 if any event was not
sent.

Events without an idempotency key get an automatic UUIDv7 key before they
are first sent (--auto-key=false to turn that off), so a retry inside this
run cannot count an event twice. Running the same file twice sends every
event twice unless its lines carry their own idempotencyKey.`

// sendFlags are the flags of usagectl send.
type sendFlags struct {
	user, key, amount, idemKey, metadata, file, queueURL string
	autoKey, asJSON                                      bool
	concurrency                                          int
}

func (a *app) sendCmd() *cobra.Command {
	var f sendFlags
	cmd := &cobra.Command{
		Use:   "send (--user U --key K | --file FILE|-) [flags]",
		Short: "send usage events to the queue (one from flags, or a JSON-lines file)",
		Long:  sendDetails,
		Example: `  usagectl send --user user-123 --key api-calls --amount 2.5 --idempotency-key order-9
  usagectl send --file events.jsonl`,
		Args: noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "", "`userId` of the event")
	fl.StringVar(&f.key, "key", "", "`entitlementKey` of the event")
	fl.StringVar(&f.amount, "amount", "1", "`amount` consumed: a positive decimal, sent exactly (1, 0.25, 1E+3)")
	fl.StringVar(&f.idemKey, "idempotency-key", "", "the event's dedup `key`; derive it from the business action so that a resend is safe")
	fl.StringVar(&f.metadata, "metadata", "", "a `JSON` object kept with the ledger record (at most 32 KiB compacted)")
	fl.StringVar(&f.file, "file", "", "send every event of this JSON-lines `file`; - reads standard input")
	fl.StringVar(&f.queueURL, "queue-url", "", "queue to send to (default $USAGE_EVENT_QUEUE_URL)")
	fl.BoolVar(&f.autoKey, "auto-key", true, "give events without an idempotency key a UUIDv7 key before sending")
	fl.IntVar(&f.concurrency, "concurrency", 8, "with --file: SendMessageBatch calls in flight at once")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	cmd.RunE = a.runE(func(ctx context.Context, cmd *cobra.Command) error { return a.send(ctx, cmd, f) })
	return cmd
}

func (a *app) send(ctx context.Context, cmd *cobra.Command, f sendFlags) error {
	fromFile := cmd.Flags().Changed("file")
	var single usage.Event
	if fromFile {
		for _, name := range []string{"user", "key", "amount", "idempotency-key", "metadata"} {
			if cmd.Flags().Changed(name) {
				return usagef("--%s cannot be combined with --file (the file's lines are the events)", name)
			}
		}
		if f.file == "" {
			return usagef("--file needs a path, or - for standard input")
		}
		if f.concurrency < 1 {
			return usagef("--concurrency must be at least 1, got %d", f.concurrency)
		}
	} else {
		for _, r := range []struct{ name, value string }{{"user", f.user}, {"key", f.key}} {
			if r.value == "" {
				return usagef("--%s is required (or send a file with --file)", r.name)
			}
		}
		amt, err := usage.ParseDecimal(f.amount)
		if err != nil {
			return usagef("--amount: %s: %v", usage.ReasonInvalidAmount, err)
		}
		single = usage.Event{UserID: f.user, EntitlementKey: f.key, Amount: amt, IdempotencyKey: f.idemKey}
		if f.metadata != "" {
			single.Metadata = json.RawMessage(f.metadata)
		}
		if err := single.Validate(); err != nil {
			return usagef("the event would be rejected: %v", err)
		}
	}

	url, err := a.queueURL(f.queueURL, "--queue-url", "USAGE_EVENT_QUEUE_URL")
	if err != nil {
		return err
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	var opts []producer.Option
	if !f.autoKey {
		opts = append(opts, producer.WithoutGeneratedKeys())
	}
	pub, err := producer.New(cfg, url, opts...)
	if err != nil {
		return usageError{err}
	}

	if fromFile {
		return a.sendFile(ctx, pub, f.file, f.concurrency, f.asJSON)
	}
	receipt, err := pub.Publish(ctx, single)
	if err != nil {
		return err // "not sent ...", with SQS's code or the context's error
	}
	if f.asJSON {
		return a.writeJSON(receiptJSON{MessageID: receipt.MessageID, IdempotencyKey: receipt.IdempotencyKey, SequenceNumber: receipt.SequenceNumber})
	}
	fmt.Fprintf(a.stdout, "sent message %s", receipt.MessageID)
	if receipt.IdempotencyKey != "" {
		fmt.Fprintf(a.stdout, " (idempotency key %s)", receipt.IdempotencyKey)
	}
	fmt.Fprintln(a.stdout)
	return nil
}

type receiptJSON struct {
	MessageID      string `json:"messageId"`
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
	SequenceNumber string `json:"sequenceNumber,omitempty"`
}

// failureOf describes why an event was not sent: a reason code, the field
// at fault, and the message.
func failureOf(err error) (reason, field, msg string) {
	var rej *usage.RejectionError
	if errors.As(err, &rej) {
		return string(rej.Reason), rej.Field, rej.Message
	}
	return reasonSendFailed, "", err.Error() // a *producer.SendError or the context's error
}

// Reasons of the send summary beyond the contract's own codes.
const (
	reasonSendFailed  = "SEND_FAILED"   // valid, but SQS did not accept it (or the run was interrupted)
	reasonLineTooLong = "LINE_TOO_LONG" // longer than maxLineBytes; not read as an event
)
