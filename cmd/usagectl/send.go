package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/usage-event-service/usage-event-service/producer"
	"github.com/usage-event-service/usage-event-service/usage"
)

const sendUsage = `usagectl send --user U --key K [--amount N] [--idempotency-key X] [--metadata JSON] [--json]
       usagectl send --file FILE|- [--concurrency N] [--json]`

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
event twice unless its lines carry their own idempotencyKey.
`

func runSend(ctx context.Context, a *app, args []string) error {
	f := a.newFlags("send", sendUsage, sendDetails)
	user := f.String("user", "", "`userId` of the event")
	key := f.String("key", "", "`entitlementKey` of the event")
	amount := f.String("amount", "1", "`amount` consumed: a positive decimal, sent exactly (1, 0.25, 1E+3)")
	idemKey := f.String("idempotency-key", "", "the event's dedup `key`; derive it from the business action so that a resend is safe")
	metadata := f.String("metadata", "", "a `JSON` object kept with the ledger record (at most 32 KiB compacted)")
	file := f.String("file", "", "send every event of this JSON-lines `file`; - reads standard input")
	queueURL := f.String("queue-url", "", "queue to send to (default $USAGE_EVENT_QUEUE_URL)")
	autoKey := f.Bool("auto-key", true, "give events without an idempotency key a UUIDv7 key before sending")
	concurrency := f.Int("concurrency", 8, "with --file: SendMessageBatch calls in flight at once")
	asJSON := f.Bool("json", false, "print the result as JSON")
	if err := f.parse(args); err != nil {
		return err
	}

	var single usage.Event
	if f.set("file") {
		for _, name := range []string{"user", "key", "amount", "idempotency-key", "metadata"} {
			if f.set(name) {
				return usagef("--%s cannot be combined with --file (the file's lines are the events)", name)
			}
		}
		if *file == "" {
			return usagef("--file needs a path, or - for standard input")
		}
		if *concurrency < 1 {
			return usagef("--concurrency must be at least 1, got %d", *concurrency)
		}
	} else {
		for _, r := range []struct{ name, value string }{{"user", *user}, {"key", *key}} {
			if r.value == "" {
				return usagef("--%s is required (or send a file with --file)", r.name)
			}
		}
		amt, err := usage.ParseDecimal(*amount)
		if err != nil {
			return usagef("--amount: %s: %v", usage.ReasonInvalidAmount, err)
		}
		single = usage.Event{UserID: *user, EntitlementKey: *key, Amount: amt, IdempotencyKey: *idemKey}
		if *metadata != "" {
			single.Metadata = json.RawMessage(*metadata)
		}
		if err := single.Validate(); err != nil {
			return usagef("the event would be rejected: %v", err)
		}
	}

	url, err := a.queueURL(*queueURL, "--queue-url", "USAGE_EVENT_QUEUE_URL")
	if err != nil {
		return err
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	var opts []producer.Option
	if *autoKey {
		opts = append(opts, producer.WithAutoIdempotencyKeys())
	}
	pub, err := producer.New(cfg, url, opts...)
	if err != nil {
		return usageError{err}
	}

	if f.set("file") {
		return a.sendFile(ctx, pub, *file, *concurrency, *asJSON)
	}
	receipt, err := pub.Publish(ctx, single)
	if err != nil {
		return err // "not sent ...", with SQS's code or the context's error
	}
	if *asJSON {
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
