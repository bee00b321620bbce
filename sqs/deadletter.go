package sqs

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/usage-event-service/usage-event-service/pipeline"
)

// Message attributes a dead-lettered message carries. They are part of
// the operations contract (docs/operations.md): `usagectl dlq` and
// on-call engineers read them.
const (
	AttrReason            = "usage.reason"
	AttrReasonMessage     = "usage.reasonMessage"
	AttrOriginalMessageID = pipeline.OriginalIDAttribute
	AttrReceiveCount      = "usage.receiveCount"
	AttrRejectedAt        = "usage.rejectedAt"
)

// FIFODeadLetterGroup is the message group of dead letters from a
// standard queue sent to a FIFO dead-letter queue, which requires one.
const FIFODeadLetterGroup = "dead-letters"

// DeadLetterQueue sends rejected messages, body unchanged, to a queue.
type DeadLetterQueue struct {
	Client   Client
	QueueURL string
}

// SendDeadLetters implements pipeline.DeadLetterSender with
// SendMessageBatch calls of at most 10 entries (the most SQS takes). A
// request that fails fails each of its letters; an entry SQS reports as
// failed fails only its own letter.
func (q DeadLetterQueue) SendDeadLetters(ctx context.Context, letters []pipeline.DeadLetter) []error {
	errs := make([]error, 0, len(letters))
	fifo := strings.HasSuffix(q.QueueURL, ".fifo")
	for chunk := range slices.Chunk(letters, 10) {
		entries := make([]types.SendMessageBatchRequestEntry, len(chunk))
		for i, l := range chunk {
			entries[i] = deadLetterEntry(strconv.Itoa(i), l, fifo)
		}
		chunkErrs := make([]error, len(chunk))
		out, err := q.Client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.QueueURL), Entries: entries})
		if err != nil {
			for i := range chunkErrs {
				chunkErrs[i] = fmt.Errorf("send to dead-letter queue: %w", err)
			}
		} else {
			for _, f := range out.Failed {
				if i, err := strconv.Atoi(aws.ToString(f.Id)); err == nil && i >= 0 && i < len(chunk) {
					chunkErrs[i] = fmt.Errorf("send to dead-letter queue: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
				}
			}
		}
		errs = append(errs, chunkErrs...)
	}
	return errs
}

// deadLetterEntry is one letter as a batch entry: the body unchanged, the
// reason in attributes, and the producer's traceparent when the message
// had one. On a FIFO dead-letter queue it keeps its message
// group (standard-queue messages share one group), and its deduplication
// ID is its message ID, so a message dead-lettered twice within SQS's
// five-minute deduplication interval (redelivered after the delete was
// lost) is stored once.
func deadLetterEntry(id string, l pipeline.DeadLetter, fifo bool) types.SendMessageBatchRequestEntry {
	e := types.SendMessageBatchRequestEntry{
		Id:          aws.String(id),
		MessageBody: aws.String(l.Message.Body),
		MessageAttributes: map[string]types.MessageAttributeValue{
			AttrReason:            stringAttr(string(l.Reason)),
			AttrReasonMessage:     stringAttr(truncate(l.Detail, 1024)),
			AttrOriginalMessageID: stringAttr(l.Message.EventID()),
			AttrReceiveCount:      {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(l.Message.ReceiveCount))},
			AttrRejectedAt:        stringAttr(l.RejectedAt.Format(time.RFC3339Nano)),
		},
	}
	// The producer's trace context goes along, so that a replay of the
	// letter (Redrive) is traced in the event's trace.
	if l.Message.TraceParent != "" {
		e.MessageAttributes[pipeline.TraceParentAttribute] = stringAttr(l.Message.TraceParent)
	}
	if fifo {
		group := l.Message.GroupID
		if group == "" {
			group = FIFODeadLetterGroup
		}
		e.MessageGroupId = aws.String(group)
		e.MessageDeduplicationId = aws.String(l.Message.ID)
	}
	return e
}

func stringAttr(s string) types.MessageAttributeValue {
	if s == "" {
		s = "-" // SQS rejects empty attribute values
	}
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(s)}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
