package sqs

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/usage-event-service/usage-event-service/pipeline"
)

// VisibilityClient is the part of the SQS API that changes visibility.
type VisibilityClient interface {
	ChangeMessageVisibilityBatch(context.Context, *sqs.ChangeMessageVisibilityBatchInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

// Visibility changes the visibility timeout of received messages of one
// queue: pipeline.VisibilityChanger, used to stretch the redeliveries of
// messages that wait.
type Visibility struct {
	Client   VisibilityClient
	QueueURL string
}

// ChangeVisibility sets each message's visibility timeout to its delay
// (whole seconds, rounded up), 10 messages a request.
func (v Visibility) ChangeVisibility(ctx context.Context, msgs []pipeline.Message, delays []time.Duration) []error {
	errs := make([]error, len(msgs))
	type entry struct {
		i int
		e types.ChangeMessageVisibilityBatchRequestEntry
	}
	all := make([]entry, len(msgs))
	for i, m := range msgs {
		secs := int32((delays[i] + time.Second - 1) / time.Second)
		all[i] = entry{i, types.ChangeMessageVisibilityBatchRequestEntry{ReceiptHandle: aws.String(m.ReceiptHandle), VisibilityTimeout: secs}}
	}
	for chunk := range slices.Chunk(all, 10) {
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(chunk))
		for j, c := range chunk {
			entries[j] = c.e
			entries[j].Id = aws.String(strconv.Itoa(j))
		}
		out, err := v.Client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(v.QueueURL), Entries: entries})
		if err != nil {
			for _, c := range chunk {
				errs[c.i] = fmt.Errorf("change visibility: %w", err)
			}
			continue
		}
		for _, f := range out.Failed {
			if j, err := strconv.Atoi(aws.ToString(f.Id)); err == nil && j >= 0 && j < len(chunk) {
				errs[chunk[j].i] = fmt.Errorf("change visibility: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
			}
		}
	}
	return errs
}
