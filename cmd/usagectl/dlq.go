package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/usage-event-service/usage-event-service/producer"
	"github.com/usage-event-service/usage-event-service/sqs"
	"github.com/usage-event-service/usage-event-service/usage"
)

const dlqListUsage = `usagectl dlq list [--max N] [--visibility-timeout D] [--dlq-url URL] [--json]`

const dlqListDetails = `Lists the messages in the dead-letter queue (DEAD_LETTER_QUEUE_URL or
--dlq-url) with the attributes the service sets when it rejects an event:
usage.reason (the reason code), usage.reasonMessage, usage.originalMessageId,
usage.receiveCount and usage.rejectedAt. Messages that SQS moved there by the
queue's redrive policy (after maxReceiveCount failed receives) carry none of
them and are shown as such.

SQS has no way to peek: listing receives the messages, which hides them from
other consumers for --visibility-timeout and adds one to their receive
count. When the listing is done usagectl makes them visible again at once;
if it is interrupted they reappear after the timeout.
`

const dlqRedriveUsage = `usagectl dlq redrive (--all | --id MESSAGE_ID ...) [--reason CODE] [--queue-url URL] [--dlq-url URL] [--json]`

const dlqRedriveDetails = `Moves dead-lettered messages back to the usage event queue
(USAGE_EVENT_QUEUE_URL or --queue-url), bodies unchanged: each message is
sent to the queue first and deleted from the dead-letter queue only once the
send has succeeded, so a failure leaves it where it was.

Select the messages with --all or with one --id per message (the IDs that
"usagectl dlq list" shows), and narrow either with --reason: a reason code
(e.g. ENTITLEMENT_NOT_FOUND), or "none" for messages moved by the redrive
policy. Fix the cause first: an event redriven unchanged into the same
conditions is rejected again.

A redriven message gets a new message ID. An event without an
idempotencyKey is deduplicated by message ID, so if it had in fact been
applied already (the service applied it but could not delete it), redriving
it applies it again; events with an idempotency key are safe.
`

// dlqMessage is a dead-lettered message as listed.
type dlqMessage struct {
	MessageID string `json:"messageId"`
	Body      string `json:"body"`
	// The service's attributes; all null when the redrive policy moved it.
	Reason            *string `json:"reason"`
	ReasonMessage     *string `json:"reasonMessage"`
	OriginalMessageID *string `json:"originalMessageId"`
	ReceiveCount      *int    `json:"receiveCount"` // receives of the original message before the rejection
	RejectedAt        *string `json:"rejectedAt"`
	// MovedByRedrivePolicy: no usage.reason, so SQS moved it after
	// maxReceiveCount receives (or someone sent it by hand).
	MovedByRedrivePolicy bool   `json:"movedByRedrivePolicy"`
	SentAt               string `json:"sentAt,omitempty"`  // SQS SentTimestamp
	GroupID              string `json:"groupId,omitempty"` // FIFO only
}

type dlqListing struct {
	QueueURL string `json:"queueUrl"`
	// ApproximateNumberOfMessages before listing (SQS's estimate).
	Approximate int          `json:"approximateNumberOfMessages"`
	Messages    []dlqMessage `json:"messages"`
}

func runDLQList(ctx context.Context, a *app, args []string) error {
	f := a.newFlags("dlq list", dlqListUsage, dlqListDetails)
	dlqURL := f.String("dlq-url", "", "dead-letter queue (default $DEAD_LETTER_QUEUE_URL)")
	maxN := f.Int("max", 100, "list at most `N` messages")
	vis := f.Duration("visibility-timeout", 30*time.Second, "how long listed messages stay hidden if usagectl cannot make them visible again")
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parse(args); err != nil {
		return err
	}
	if *maxN < 1 {
		return usagef("--max must be at least 1, got %d", *maxN)
	}
	if err := checkVisibility(*vis); err != nil {
		return err
	}
	url, err := a.queueURL(*dlqURL, "--dlq-url", "DEAD_LETTER_QUEUE_URL")
	if err != nil {
		return err
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	c := awssqs.NewFromConfig(cfg)
	listing := dlqListing{QueueURL: url, Messages: []dlqMessage{}}
	attrs, err := c.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages},
	})
	if err != nil {
		return fmt.Errorf("dead-letter queue %s: %w", url, err)
	}
	listing.Approximate, _ = strconv.Atoi(attrs.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])

	var received []types.Message
	seen := map[string]bool{}
	for len(received) < *maxN {
		msgs, err := receiveDLQ(ctx, c, url, min(10, *maxN-len(received)), *vis)
		if err != nil {
			releaseAll(context.WithoutCancel(ctx), c, url, received)
			return fmt.Errorf("receive from %s: %w", url, err)
		}
		fresh := 0
		for _, m := range msgs {
			if id := aws.ToString(m.MessageId); !seen[id] {
				seen[id] = true
				fresh++
				received = append(received, m)
			}
		}
		if fresh == 0 {
			break
		}
	}
	releaseErr := releaseAll(context.WithoutCancel(ctx), c, url, received)
	for _, m := range received {
		listing.Messages = append(listing.Messages, viewDLQ(m))
	}
	if *asJSON {
		if err := a.writeJSON(listing); err != nil {
			return err
		}
	} else {
		a.printDLQ(listing, *maxN)
	}
	if releaseErr != nil {
		return fmt.Errorf("listed, but could not make the messages visible again; they reappear after %v: %w", *vis, releaseErr)
	}
	return nil
}

func checkVisibility(d time.Duration) error {
	if d < time.Second || d > 12*time.Hour || d%time.Second != 0 {
		return usagef("--visibility-timeout must be whole seconds from 1s to 12h, got %v", d)
	}
	return nil
}

// receiveDLQ receives up to n messages with every attribute. It waits up
// to a second: short polls sample only some SQS servers and can come back
// empty while messages exist.
func receiveDLQ(ctx context.Context, c *awssqs.Client, url string, n int, vis time.Duration) ([]types.Message, error) {
	out, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(url),
		MaxNumberOfMessages:         int32(n),
		VisibilityTimeout:           int32(vis / time.Second),
		WaitTimeSeconds:             1,
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return nil, err
	}
	return out.Messages, nil
}

// releaseAll makes received messages visible again at once.
func releaseAll(ctx context.Context, c *awssqs.Client, url string, msgs []types.Message) error {
	var errs []error
	for chunk := range slices.Chunk(msgs, 10) {
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(chunk))
		for i, m := range chunk {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}
		}
		out, err := c.ChangeMessageVisibilityBatch(ctx, &awssqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url), Entries: entries})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, fe := range out.Failed {
			errs = append(errs, fmt.Errorf("%s: %s", aws.ToString(fe.Code), aws.ToString(fe.Message)))
		}
	}
	return errors.Join(errs...)
}

func viewDLQ(m types.Message) dlqMessage {
	v := dlqMessage{MessageID: aws.ToString(m.MessageId), Body: aws.ToString(m.Body)}
	attr := func(name string) *string {
		if a, ok := m.MessageAttributes[name]; ok && a.StringValue != nil {
			s := *a.StringValue
			return &s
		}
		return nil
	}
	v.Reason = attr(sqs.AttrReason)
	v.ReasonMessage = attr(sqs.AttrReasonMessage)
	v.OriginalMessageID = attr(sqs.AttrOriginalMessageID)
	v.RejectedAt = attr(sqs.AttrRejectedAt)
	if s := attr(sqs.AttrReceiveCount); s != nil {
		if n, err := strconv.Atoi(*s); err == nil {
			v.ReceiveCount = &n
		}
	}
	v.MovedByRedrivePolicy = v.Reason == nil
	if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		v.SentAt = time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
	}
	v.GroupID = m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)]
	return v
}

func (a *app) printDLQ(l dlqListing, maxN int) {
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

// redriveReport is the outcome of a redrive.
type redriveReport struct {
	From     string           `json:"from"`
	To       string           `json:"to"`
	Redriven []redriven       `json:"redriven"`
	Failed   []redriveFailure `json:"failed"`
	NotFound []string         `json:"notFound"` // --id values not seen in the DLQ
}

type redriven struct {
	MessageID    string `json:"messageId"`    // in the dead-letter queue
	NewMessageID string `json:"newMessageId"` // in the usage event queue
	Reason       string `json:"reason,omitempty"`
}

type redriveFailure struct {
	MessageID string `json:"messageId"`
	Error     string `json:"error"`
	// Sent: the message reached the queue but could not be deleted from
	// the dead-letter queue, so it is in both.
	Sent bool `json:"sent"`
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runDLQRedrive(ctx context.Context, a *app, args []string) error {
	f := a.newFlags("dlq redrive", dlqRedriveUsage, dlqRedriveDetails)
	all := f.Bool("all", false, "redrive every message (narrowed by --reason)")
	var ids stringList
	f.Var(&ids, "id", "redrive the message with this `MESSAGE_ID` (repeat for several)")
	reason := f.String("reason", "", "only messages with this reason `CODE`, or none for those moved by the redrive policy")
	queueURL := f.String("queue-url", "", "queue to redrive to (default $USAGE_EVENT_QUEUE_URL)")
	dlqURL := f.String("dlq-url", "", "dead-letter queue (default $DEAD_LETTER_QUEUE_URL)")
	vis := f.Duration("visibility-timeout", 60*time.Second, "how long messages stay hidden while the redrive runs")
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parse(args); err != nil {
		return err
	}
	switch {
	case *all && len(ids) > 0:
		return usagef("--all and --id exclude each other")
	case !*all && len(ids) == 0:
		return usagef("say which messages: --all, or --id MESSAGE_ID (repeatable)")
	}
	if *reason != "" && *reason != "none" && !slices.Contains(usage.Reasons, usage.Reason(*reason)) {
		codes := make([]string, len(usage.Reasons))
		for i, r := range usage.Reasons {
			codes[i] = string(r)
		}
		return usagef("--reason %q is not a reason code: want none or one of %s", *reason, strings.Join(codes, ", "))
	}
	if err := checkVisibility(*vis); err != nil {
		return err
	}
	to, err := a.queueURL(*queueURL, "--queue-url", "USAGE_EVENT_QUEUE_URL")
	if err != nil {
		return err
	}
	from, err := a.queueURL(*dlqURL, "--dlq-url", "DEAD_LETTER_QUEUE_URL")
	if err != nil {
		return err
	}
	if to == from {
		return usagef("the queue and the dead-letter queue are the same (%s)", to)
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	c := awssqs.NewFromConfig(cfg)

	wanted := map[string]bool{}
	for _, id := range ids {
		wanted[id] = true
	}
	selected := func(m dlqMessage) bool {
		if len(ids) > 0 && !wanted[m.MessageID] {
			return false
		}
		switch *reason {
		case "":
			return true
		case "none":
			return m.MovedByRedrivePolicy
		default:
			return m.Reason != nil && *m.Reason == *reason
		}
	}

	rep := redriveReport{From: from, To: to, Redriven: []redriven{}, Failed: []redriveFailure{}, NotFound: []string{}}
	var held []types.Message // received but not selected: made visible again at the end
	seen := map[string]bool{}
	found := 0
	for ctx.Err() == nil {
		msgs, err := receiveDLQ(ctx, c, from, 10, *vis)
		if err != nil {
			if ctx.Err() == nil {
				rep.Failed = append(rep.Failed, redriveFailure{Error: fmt.Sprintf("receive from %s: %v", from, err)})
			}
			break
		}
		var picked []types.Message
		fresh := 0
		for _, m := range msgs {
			id := aws.ToString(m.MessageId)
			if seen[id] {
				continue
			}
			seen[id] = true
			fresh++
			if selected(viewDLQ(m)) {
				picked = append(picked, m)
				if wanted[id] {
					found++
				}
			} else {
				held = append(held, m)
			}
		}
		if fresh == 0 {
			break
		}
		held = append(held, redriveBatch(context.WithoutCancel(ctx), c, from, to, picked, &rep)...)
		if len(ids) > 0 && found == len(wanted) {
			break
		}
	}
	releaseErr := releaseAll(context.WithoutCancel(ctx), c, from, held)
	for _, id := range ids {
		if !seen[id] {
			rep.NotFound = append(rep.NotFound, id)
		}
	}

	if *asJSON {
		if err := a.writeJSON(rep); err != nil {
			return err
		}
	} else {
		a.printRedrive(rep)
	}
	switch {
	case ctx.Err() != nil:
		return errors.New("interrupted; the report lists what was redriven")
	case len(rep.Failed) > 0 || len(rep.NotFound) > 0:
		return fmt.Errorf("%d redriven, %d failed, %d not found", len(rep.Redriven), len(rep.Failed), len(rep.NotFound))
	case releaseErr != nil:
		return fmt.Errorf("could not make the messages not redriven visible again; they reappear after %v: %w", *vis, releaseErr)
	}
	return nil
}

// redriveBatch sends msgs to the queue and deletes from the dead-letter
// queue exactly those whose send succeeded. It returns the messages to
// make visible again (those not sent).
// originalID is the message ID of the event's first delivery: the
// service's attribute, or, for a message the redrive policy moved (SQS
// keeps the ID when it moves a message), its own ID.
func originalID(m types.Message) string {
	if v, ok := m.MessageAttributes[sqs.AttrOriginalMessageID]; ok && aws.ToString(v.StringValue) != "" && aws.ToString(v.StringValue) != "-" {
		return aws.ToString(v.StringValue)
	}
	return aws.ToString(m.MessageId)
}

func redriveBatch(ctx context.Context, c *awssqs.Client, from, to string, msgs []types.Message, rep *redriveReport) (unsent []types.Message) {
	fifo := strings.HasSuffix(to, ".fifo")
	for _, chunk := range chunkBySize(msgs) {
		entries := make([]types.SendMessageBatchRequestEntry, len(chunk))
		for i, m := range chunk {
			entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: m.Body,
				// The event keeps the identity of its first delivery, which
				// stays its dedup key: redriving two copies of one dead
				// letter, or redriving twice, applies it once.
				MessageAttributes: map[string]types.MessageAttributeValue{
					sqs.AttrOriginalMessageID: {DataType: aws.String("String"), StringValue: aws.String(originalID(m))},
				}}
			if fifo {
				entries[i].MessageGroupId = aws.String(fifoGroup(m))
				entries[i].MessageDeduplicationId = m.MessageId
			}
		}
		out, err := c.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: aws.String(to), Entries: entries})
		if err != nil {
			for _, m := range chunk {
				rep.Failed = append(rep.Failed, redriveFailure{MessageID: aws.ToString(m.MessageId), Error: "send: " + err.Error()})
			}
			unsent = append(unsent, chunk...)
			continue
		}
		for _, fe := range out.Failed {
			i, _ := strconv.Atoi(aws.ToString(fe.Id))
			if i < 0 || i >= len(chunk) {
				continue
			}
			rep.Failed = append(rep.Failed, redriveFailure{MessageID: aws.ToString(chunk[i].MessageId), Error: fmt.Sprintf("send: %s: %s", aws.ToString(fe.Code), aws.ToString(fe.Message))})
			unsent = append(unsent, chunk[i])
		}
		var del []types.DeleteMessageBatchRequestEntry
		sent := map[string]redriven{}
		for _, s := range out.Successful {
			i, err := strconv.Atoi(aws.ToString(s.Id))
			if err != nil || i < 0 || i >= len(chunk) {
				continue
			}
			m := chunk[i]
			r := redriven{MessageID: aws.ToString(m.MessageId), NewMessageID: aws.ToString(s.MessageId), Reason: deref(viewDLQ(m).Reason)}
			if r.Reason == "-" {
				r.Reason = ""
			}
			sent[strconv.Itoa(i)] = r
			del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		if len(del) == 0 {
			continue
		}
		dout, err := c.DeleteMessageBatch(ctx, &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(from), Entries: del})
		if err != nil {
			for _, r := range sent {
				rep.Failed = append(rep.Failed, redriveFailure{MessageID: r.MessageID, Sent: true, Error: "sent as " + r.NewMessageID + ", but not deleted from the dead-letter queue: " + err.Error()})
			}
			continue
		}
		for _, fe := range dout.Failed {
			r := sent[aws.ToString(fe.Id)]
			delete(sent, aws.ToString(fe.Id))
			rep.Failed = append(rep.Failed, redriveFailure{MessageID: r.MessageID, Sent: true, Error: fmt.Sprintf("sent as %s, but not deleted from the dead-letter queue: %s: %s", r.NewMessageID, aws.ToString(fe.Code), aws.ToString(fe.Message))})
		}
		for _, d := range del {
			if r, ok := sent[aws.ToString(d.Id)]; ok {
				rep.Redriven = append(rep.Redriven, r)
			}
		}
	}
	return unsent
}

// chunkBySize splits messages into SendMessageBatch calls within the
// payload limit every SQS deployment accepts.
func chunkBySize(msgs []types.Message) [][]types.Message {
	var chunks [][]types.Message
	var cur []types.Message
	size := 0
	for _, m := range msgs {
		n := len(aws.ToString(m.Body))
		if len(cur) == producer.MaxBatchEntries || (len(cur) > 0 && size+n > producer.MaxBatchBytes) {
			chunks = append(chunks, cur)
			cur, size = nil, 0
		}
		cur = append(cur, m)
		size += n
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}
	return chunks
}

// fifoGroup is the message group of a message redriven to a FIFO queue:
// its group in the dead-letter queue, which the service kept from the
// original.
func fifoGroup(m types.Message) string {
	if g := m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)]; g != "" {
		return g
	}
	var ev struct {
		UserID string `json:"userId"`
	}
	if json.Unmarshal([]byte(aws.ToString(m.Body)), &ev) == nil && ev.UserID != "" {
		return producer.FIFOID(ev.UserID) // the group the producer library would have used
	}
	return "redrive"
}

func (a *app) printRedrive(r redriveReport) {
	w := a.stdout
	fmt.Fprintf(w, "redrove %d message(s) from %s to %s\n", len(r.Redriven), r.From, r.To)
	for _, m := range r.Redriven {
		reason := m.Reason
		if reason == "" {
			reason = "(redrive policy)"
		}
		fmt.Fprintf(w, "  %s -> %s  %s\n", m.MessageID, m.NewMessageID, reason)
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
