package sqs

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

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

// DeadLetterQueue sends rejected messages, body unchanged, to a queue.
type DeadLetterQueue struct {
	Client   Client
	QueueURL string
}

// SendDeadLetters implements pipeline.DeadLetterSender with
// SendMessageBatch calls of at most 10 entries.
func (q DeadLetterQueue) SendDeadLetters(ctx context.Context, letters []pipeline.DeadLetter) []error {
	errs := make([]error, len(letters))
	fifo := strings.HasSuffix(q.QueueURL, ".fifo")
	for start := 0; start < len(letters); start += 10 {
		chunk := letters[start:min(start+10, len(letters))]
		entries := make([]types.SendMessageBatchRequestEntry, len(chunk))
		for i, l := range chunk {
			e := types.SendMessageBatchRequestEntry{
				Id:          aws.String(batchEntryID(i)),
				MessageBody: aws.String(l.Message.Body),
				MessageAttributes: map[string]types.MessageAttributeValue{
					AttrReason:            stringAttr(string(l.Reason)),
					AttrReasonMessage:     stringAttr(truncate(l.Detail, 1024)),
					AttrOriginalMessageID: stringAttr(l.Message.EventID()),
					AttrReceiveCount:      {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(l.Message.ReceiveCount))},
					AttrRejectedAt:        stringAttr(l.RejectedAt.Format(time.RFC3339Nano)),
				},
			}
			if fifo {
				group := l.Message.GroupID
				if group == "" {
					group = "dead-letters"
				}
				e.MessageGroupId = aws.String(group)
				e.MessageDeduplicationId = aws.String(l.Message.ID)
			}
			entries[i] = e
		}
		out, err := q.Client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.QueueURL), Entries: entries})
		if err != nil {
			for i := range chunk {
				errs[start+i] = fmt.Errorf("send to dead-letter queue: %w", err)
			}
			continue
		}
		for _, f := range out.Failed {
			if i, err := strconv.Atoi(strings.TrimPrefix(aws.ToString(f.Id), "m")); err == nil && i < len(chunk) {
				errs[start+i] = fmt.Errorf("send to dead-letter queue: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
			}
		}
	}
	return errs
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
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
