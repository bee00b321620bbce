package sqs

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
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/producer"
	"github.com/usage-event-service/usage-event-service/usage"
)

// AttrOriginalSentAt is the message attribute in which a redriven message
// carries the earliest send time known of its event (RFC 3339), so that a
// replay of a replay is still aged from the first send. Like
// AttrOriginalMessageID it is reserved; producers must not set it.
const AttrOriginalSentAt = "usage.originalSentAt"

// ReasonNone selects, in Redrive.Reason, the dead letters without a
// usage.reason: those the queue's redrive policy moved.
const ReasonNone = "none"

// ErrNotReleased wraps the error of making received messages visible
// again. They reappear on their own once their visibility timeout ends.
var ErrNotReleased = errors.New("could not make the received messages visible again")

// DeadLetterClient is the part of the SQS API that reading and redriving
// the dead-letter queue call.
type DeadLetterClient interface {
	Client
	ChangeMessageVisibilityBatch(context.Context, *sqs.ChangeMessageVisibilityBatchInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
	GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// DeadLetterMessage is a message received from the dead-letter queue, with
// the attributes the service sets when it dead-letters an event
// (docs/operations.md). Its JSON is `usagectl dlq list --json`'s.
type DeadLetterMessage struct {
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
	SentAt               string `json:"sentAt,omitempty"` // SQS SentTimestamp, in the dead-letter queue
	// FirstSentAt is the earliest send time known of the event: what a
	// redrive ages it by (see Redrive).
	FirstSentAt string `json:"firstSentAt,omitempty"`
	GroupID     string `json:"groupId,omitempty"` // FIFO only

	msg       types.Message
	firstSent time.Time // zero when unknown
}

func newDeadLetterMessage(m types.Message) DeadLetterMessage {
	attr := func(name string) *string {
		if a, ok := m.MessageAttributes[name]; ok && a.StringValue != nil {
			s := *a.StringValue
			return &s
		}
		return nil
	}
	d := DeadLetterMessage{MessageID: aws.ToString(m.MessageId), Body: aws.ToString(m.Body), msg: m,
		Reason: attr(AttrReason), ReasonMessage: attr(AttrReasonMessage), OriginalMessageID: attr(AttrOriginalMessageID),
		RejectedAt: attr(AttrRejectedAt), GroupID: m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)]}
	if s := attr(AttrReceiveCount); s != nil {
		if n, err := strconv.Atoi(*s); err == nil {
			d.ReceiveCount = &n
		}
	}
	d.MovedByRedrivePolicy = d.Reason == nil
	if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		d.firstSent = time.UnixMilli(ms).UTC()
		d.SentAt = d.firstSent.Format(time.RFC3339Nano)
	}
	if s := attr(AttrOriginalSentAt); s != nil {
		if t, err := time.Parse(time.RFC3339Nano, *s); err == nil && (d.firstSent.IsZero() || t.Before(d.firstSent)) {
			d.firstSent = t.UTC()
		}
	}
	if !d.firstSent.IsZero() {
		d.FirstSentAt = d.firstSent.Format(time.RFC3339Nano)
	}
	return d
}

// originalID is the message ID of the event's first delivery: the
// service's attribute, or, for a message the redrive policy moved (SQS
// keeps the ID when it moves a message), its own ID.
func (d DeadLetterMessage) originalID() string {
	if id := d.OriginalMessageID; id != nil && *id != "" && *id != "-" {
		return *id
	}
	return d.MessageID
}

// fifoGroup is the message group of a message redriven to a FIFO queue:
// its group in the dead-letter queue, which the service kept from the
// original, else the group the producer library gives the event's user.
func (d DeadLetterMessage) fifoGroup() string {
	if d.GroupID != "" {
		return d.GroupID
	}
	var ev struct {
		UserID string `json:"userId"`
		PoolID string `json:"poolId"`
	}
	switch {
	case json.Unmarshal([]byte(d.Body), &ev) != nil:
	case ev.UserID != "":
		return producer.FIFOID(ev.UserID)
	case ev.PoolID != "":
		return producer.FIFOID("pool#" + ev.PoolID)
	}
	return "redrive"
}

// DeadLetterListing is what ListDeadLetters saw.
type DeadLetterListing struct {
	QueueURL string `json:"queueUrl"`
	// Approximate is SQS's ApproximateNumberOfMessages before listing.
	Approximate int                 `json:"approximateNumberOfMessages"`
	Messages    []DeadLetterMessage `json:"messages"`
}

// ListDeadLetters receives up to max distinct messages from the
// dead-letter queue at url and makes them visible again at once. SQS
// cannot peek: each listing adds one to the messages' receive counts, and
// if making them visible again fails (the error wraps ErrNotReleased; the
// listing is complete) they reappear after vis.
func ListDeadLetters(ctx context.Context, c DeadLetterClient, url string, max int, vis time.Duration) (DeadLetterListing, error) {
	l := DeadLetterListing{QueueURL: url, Messages: []DeadLetterMessage{}}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages},
	})
	if err != nil {
		return l, fmt.Errorf("dead-letter queue %s: %w", url, err)
	}
	l.Approximate, _ = strconv.Atoi(attrs.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	seen := map[string]bool{}
	for len(l.Messages) < max {
		msgs, err := receiveDeadLetters(ctx, c, url, min(10, max-len(l.Messages)), vis)
		if err != nil {
			release(context.WithoutCancel(ctx), c, url, l.Messages)
			return l, fmt.Errorf("receive from %s: %w", url, err)
		}
		fresh := 0
		for _, m := range msgs {
			if id := aws.ToString(m.MessageId); !seen[id] {
				seen[id] = true
				fresh++
				l.Messages = append(l.Messages, newDeadLetterMessage(m))
			}
		}
		if fresh == 0 {
			break
		}
	}
	return l, release(context.WithoutCancel(ctx), c, url, l.Messages)
}

// receiveDeadLetters receives up to n messages with every attribute. It
// waits up to a second: short polls sample only some SQS servers and can
// come back empty while messages exist.
func receiveDeadLetters(ctx context.Context, c DeadLetterClient, url string, n int, vis time.Duration) ([]types.Message, error) {
	out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
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

// release makes received messages visible again at once.
func release(ctx context.Context, c DeadLetterClient, url string, msgs []DeadLetterMessage) error {
	var errs []error
	for chunk := range slices.Chunk(msgs, 10) {
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(chunk))
		for i, m := range chunk {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.msg.ReceiptHandle, VisibilityTimeout: 0}
		}
		out, err := c.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url), Entries: entries})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, fe := range out.Failed {
			errs = append(errs, fmt.Errorf("%s: %s", aws.ToString(fe.Code), aws.ToString(fe.Message)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrNotReleased, err)
	}
	return nil
}

// Redrive moves dead-lettered messages back to the usage event queue,
// bodies unchanged. Each message is sent to the queue first and deleted
// from the dead-letter queue only once the send succeeded, so a failure
// leaves it where it was (or, if only the delete failed, in both queues,
// which dedup absorbs).
//
// A redriven message gets a new message ID, so it carries its event's
// identity: AttrOriginalMessageID, the first delivery's message ID, which
// the service keeps as the dedup key of an event without an idempotency
// key (two copies of one dead letter, or a message redriven twice, are
// applied once); and AttrOriginalSentAt, the earliest send time known.
//
// Dedup lasts Retention (the service's DEDUP_RETENTION). A message whose
// event is older than that is refused unless Force: its ledger key may
// have expired, so a replay could apply it a second time. The age is now
// minus FirstSentAt: the earlier of AttrOriginalSentAt and the message's
// SentTimestamp in the dead-letter queue. For a message the redrive
// policy moved from a standard queue, SentTimestamp is its send to the
// main queue (SQS keeps it; FIFO queues reset it). For one the service
// dead-lettered it is the time of the rejection, later than the first
// send by however long the event had waited until then, so the age is
// short by that much. A message with no send time at all is refused.
type Redrive struct {
	Client        DeadLetterClient
	DeadLetterURL string // from
	QueueURL      string // to
	// IDs selects messages by their ID in the dead-letter queue; empty
	// selects every message.
	IDs []string
	// Reason narrows the selection: "" any, ReasonNone those without a
	// usage.reason, else that reason code.
	Reason string
	// Retention is the dedup retention (default
	// usage.DefaultDedupRetention).
	Retention time.Duration
	// Force redrives messages older than Retention too.
	Force bool
	// VisibilityTimeout is how long received messages stay hidden while
	// the redrive runs (default 60s); those not redriven are made visible
	// again at the end.
	VisibilityTimeout time.Duration
	// Now is the clock ages are measured with (default time.Now).
	Now func() time.Time
	// Progress, if set, is called with the report so far after each batch.
	Progress func(RedriveReport)
}

// RedriveReport is the outcome of a redrive. Its JSON is `usagectl dlq
// redrive --json`'s.
type RedriveReport struct {
	From     string           `json:"from"`
	To       string           `json:"to"`
	Redriven []Redriven       `json:"redriven"`
	Refused  []RedriveRefusal `json:"refused"`
	Failed   []RedriveFailure `json:"failed"`
	NotFound []string         `json:"notFound"` // IDs not seen in the dead-letter queue
}

// Redriven is one message sent back.
type Redriven struct {
	MessageID         string `json:"messageId"`         // in the dead-letter queue
	NewMessageID      string `json:"newMessageId"`      // in the usage event queue
	OriginalMessageID string `json:"originalMessageId"` // the dedup key of an event without an idempotency key
	Reason            string `json:"reason,omitempty"`  // its usage.reason; empty when the redrive policy moved it
}

// RedriveRefusal is a selected message left in the dead-letter queue
// because its event is older than the dedup retention.
type RedriveRefusal struct {
	MessageID   string `json:"messageId"`
	Reason      string `json:"reason,omitempty"`
	FirstSentAt string `json:"firstSentAt,omitempty"`
	AgeSeconds  int64  `json:"ageSeconds"`
	Error       string `json:"error"` // why, for people
}

// RedriveFailure is a message that could not be redriven, or a receive
// that failed (no MessageID).
type RedriveFailure struct {
	MessageID string `json:"messageId"`
	Error     string `json:"error"`
	// Sent: the message reached the queue but could not be deleted from
	// the dead-letter queue, so it is in both.
	Sent bool `json:"sent"`
}

// Run redrives until the selected messages are done, the dead-letter
// queue has no more to receive, or ctx ends (the batch in flight is
// finished). The report is complete in every case. The error is ctx's
// when interrupted, and wraps ErrNotReleased when messages not redriven
// could not be made visible again.
func (r Redrive) Run(ctx context.Context) (RedriveReport, error) {
	r.defaults()
	rep := RedriveReport{From: r.DeadLetterURL, To: r.QueueURL,
		Redriven: []Redriven{}, Refused: []RedriveRefusal{}, Failed: []RedriveFailure{}, NotFound: []string{}}
	wanted := map[string]bool{}
	for _, id := range r.IDs {
		wanted[id] = true
	}
	var held []DeadLetterMessage // received, not redriven: made visible again at the end
	seen := map[string]bool{}
	found := 0
	for ctx.Err() == nil {
		msgs, err := receiveDeadLetters(ctx, r.Client, r.DeadLetterURL, 10, r.VisibilityTimeout)
		if err != nil {
			if ctx.Err() == nil {
				rep.Failed = append(rep.Failed, RedriveFailure{Error: fmt.Sprintf("receive from %s: %v", r.DeadLetterURL, err)})
			}
			break
		}
		picked, kept, fresh, wantedFound := r.sortOut(msgs, seen, wanted, &rep)
		held = append(held, kept...)
		found += wantedFound
		if fresh == 0 {
			break
		}
		held = append(held, r.send(context.WithoutCancel(ctx), picked, &rep)...)
		if r.Progress != nil {
			r.Progress(rep)
		}
		if len(wanted) > 0 && found == len(wanted) {
			break
		}
	}
	releaseErr := release(context.WithoutCancel(ctx), r.Client, r.DeadLetterURL, held)
	for _, id := range r.IDs {
		if !seen[id] {
			rep.NotFound = append(rep.NotFound, id)
		}
	}
	return rep, errors.Join(ctx.Err(), releaseErr)
}

func (r *Redrive) defaults() {
	if r.Retention <= 0 {
		r.Retention = usage.DefaultDedupRetention
	}
	if r.VisibilityTimeout <= 0 {
		r.VisibilityTimeout = 60 * time.Second
	}
	if r.Now == nil {
		r.Now = time.Now
	}
}

func (r Redrive) selects(d DeadLetterMessage, wanted map[string]bool) bool {
	if len(wanted) > 0 && !wanted[d.MessageID] {
		return false
	}
	switch r.Reason {
	case "":
		return true
	case ReasonNone:
		return d.MovedByRedrivePolicy
	default:
		return d.Reason != nil && *d.Reason == r.Reason
	}
}

// refusal says whether d is too old to redrive without Force, and why.
func (r Redrive) refusal(d DeadLetterMessage, now time.Time) (RedriveRefusal, bool) {
	if r.Force {
		return RedriveRefusal{}, false
	}
	ref := RedriveRefusal{MessageID: d.MessageID, Reason: reasonOf(d), FirstSentAt: d.FirstSentAt}
	if d.firstSent.IsZero() {
		ref.Error = "no send time: its age cannot be checked against the dedup retention"
		return ref, true
	}
	age := now.Sub(d.firstSent)
	if age <= r.Retention {
		return RedriveRefusal{}, false
	}
	ref.AgeSeconds = int64(age / time.Second)
	ref.Error = fmt.Sprintf("first sent %s, %v ago: older than the dedup retention (%v), so its dedup key may have expired and a replay could apply it twice",
		d.FirstSentAt, age.Round(time.Second), r.Retention)
	return ref, true
}

func reasonOf(d DeadLetterMessage) string {
	if d.Reason == nil {
		return ""
	}
	return *d.Reason
}

// send sends msgs to the queue and deletes from the dead-letter queue
// exactly those whose send succeeded. It returns the messages not sent.
func (r Redrive) send(ctx context.Context, msgs []DeadLetterMessage, rep *RedriveReport) (unsent []DeadLetterMessage) {
	fifo := strings.HasSuffix(r.QueueURL, ".fifo")
	for _, chunk := range chunkBySize(msgs) {
		entries := make([]types.SendMessageBatchRequestEntry, len(chunk))
		for i, d := range chunk {
			entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(d.Body),
				MessageAttributes: replayAttributes(d)}
			if fifo {
				entries[i].MessageGroupId = aws.String(d.fifoGroup())
				entries[i].MessageDeduplicationId = aws.String(d.MessageID)
			}
		}
		out, err := r.Client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(r.QueueURL), Entries: entries})
		if err != nil {
			for _, d := range chunk {
				rep.Failed = append(rep.Failed, RedriveFailure{MessageID: d.MessageID, Error: "send: " + err.Error()})
			}
			unsent = append(unsent, chunk...)
			continue
		}
		for _, fe := range out.Failed {
			if i, err := strconv.Atoi(aws.ToString(fe.Id)); err == nil && i >= 0 && i < len(chunk) {
				rep.Failed = append(rep.Failed, RedriveFailure{MessageID: chunk[i].MessageID, Error: fmt.Sprintf("send: %s: %s", aws.ToString(fe.Code), aws.ToString(fe.Message))})
				unsent = append(unsent, chunk[i])
			}
		}
		r.deleteSent(ctx, chunk, out.Successful, rep)
	}
	return unsent
}

// replayAttributes are the attributes of a redriven message: its event's
// identity, nothing of the dead-lettering.
func replayAttributes(d DeadLetterMessage) map[string]types.MessageAttributeValue {
	attrs := map[string]types.MessageAttributeValue{AttrOriginalMessageID: stringAttr(d.originalID())}
	if d.FirstSentAt != "" {
		attrs[AttrOriginalSentAt] = stringAttr(d.FirstSentAt)
	}
	// The event's trace context, which the dead letter carries when its
	// producer sent one: the replay is traced in the event's trace.
	if a, ok := d.msg.MessageAttributes[pipeline.TraceParentAttribute]; ok && a.StringValue != nil {
		attrs[pipeline.TraceParentAttribute] = stringAttr(*a.StringValue)
	}
	return attrs
}

// deleteSent deletes the sent messages of chunk from the dead-letter
// queue and reports each as redriven, or as failed if the delete failed.
func (r Redrive) deleteSent(ctx context.Context, chunk []DeadLetterMessage, sentEntries []types.SendMessageBatchResultEntry, rep *RedriveReport) {
	var del []types.DeleteMessageBatchRequestEntry
	sent := map[string]Redriven{} // batch entry ID -> redriven
	for _, s := range sentEntries {
		i, err := strconv.Atoi(aws.ToString(s.Id))
		if err != nil || i < 0 || i >= len(chunk) {
			continue
		}
		d := chunk[i]
		sent[aws.ToString(s.Id)] = Redriven{MessageID: d.MessageID, NewMessageID: aws.ToString(s.MessageId), OriginalMessageID: d.originalID(), Reason: reasonOf(d)}
		del = append(del, types.DeleteMessageBatchRequestEntry{Id: s.Id, ReceiptHandle: d.msg.ReceiptHandle})
	}
	if len(del) == 0 {
		return
	}
	notDeleted := func(x Redriven, why string) {
		rep.Failed = append(rep.Failed, RedriveFailure{MessageID: x.MessageID, Sent: true,
			Error: "sent as " + x.NewMessageID + ", but not deleted from the dead-letter queue: " + why})
	}
	out, err := r.Client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(r.DeadLetterURL), Entries: del})
	if err != nil {
		for _, d := range del {
			notDeleted(sent[aws.ToString(d.Id)], err.Error())
		}
		return
	}
	for _, fe := range out.Failed {
		if x, ok := sent[aws.ToString(fe.Id)]; ok {
			delete(sent, aws.ToString(fe.Id))
			notDeleted(x, aws.ToString(fe.Code)+": "+aws.ToString(fe.Message))
		}
	}
	for _, d := range del {
		if x, ok := sent[aws.ToString(d.Id)]; ok {
			rep.Redriven = append(rep.Redriven, x)
		}
	}
}

// chunkBySize splits messages into SendMessageBatch calls of at most
// producer.MaxBatchEntries entries within producer.MaxBatchBytes, the
// payload limit every SQS deployment accepts.
func chunkBySize(msgs []DeadLetterMessage) [][]DeadLetterMessage {
	var chunks [][]DeadLetterMessage
	start, size := 0, 0
	for i, d := range msgs {
		n := len(d.Body)
		if i-start == producer.MaxBatchEntries || (i > start && size+n > producer.MaxBatchBytes) {
			chunks = append(chunks, msgs[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(msgs) {
		chunks = append(chunks, msgs[start:])
	}
	return chunks
}

// sortOut sorts one receive's messages not seen before into those to
// redrive and those held back (not selected, or refused), and counts them
// and the wanted IDs among them.
func (r Redrive) sortOut(msgs []types.Message, seen, wanted map[string]bool, rep *RedriveReport) (picked, held []DeadLetterMessage, fresh, found int) {
	now := r.Now()
	for _, m := range msgs {
		d := newDeadLetterMessage(m)
		if seen[d.MessageID] {
			continue
		}
		seen[d.MessageID] = true
		fresh++
		if wanted[d.MessageID] {
			found++
		}
		if !r.selects(d, wanted) {
			held = append(held, d)
			continue
		}
		if refusal, refused := r.refusal(d, now); refused {
			rep.Refused = append(rep.Refused, refusal)
			held = append(held, d)
			continue
		}
		picked = append(picked, d)
	}
	return picked, held, fresh, found
}
