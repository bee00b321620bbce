// Package sqs adapts Amazon SQS: a long-polling worker that feeds the
// pipeline, and the dead-letter sender.
package sqs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/usage-event-service/usage-event-service/internal/backoff"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Client is the part of the SQS API the worker and dead-letter sender call.
type Client interface {
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(context.Context, *sqs.DeleteMessageBatchInput, ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Worker long-polls a queue and runs what it receives through the
// pipeline. It deletes what is done and leaves the rest to reappear after
// the visibility timeout.
//
// Received messages wait up to CoalesceWindow for more of the same
// entitlement from later receives, and are then handed to the Handler as
// one batch (see coalesce.go): the Processor decides each entitlement's
// events of the batch together, in arrival order, in one transaction.
type Worker struct {
	Client   Client
	QueueURL string
	Handler  pipeline.Handler
	// Pollers is the number of concurrent receive loops (default 4).
	Pollers int
	// WaitTime is the long-poll duration (default 20s, SQS's maximum).
	WaitTime time.Duration
	// CoalesceWindow is how long a received message may wait for others
	// before its batch is decided (0: as soon as it is received). It must
	// stay well inside the queue's visibility timeout.
	CoalesceWindow time.Duration
	// CoalesceMax bounds the messages of one batch (default
	// DefaultCoalesceMax); a batch that reaches it is decided at once.
	CoalesceMax int
	// PaceReceives: while the queue is light, one poller receives at a
	// time, at most once per CoalesceWindow, and what it receives is
	// decided at once (pace.go). No effect without a window or on a FIFO
	// queue.
	PaceReceives bool
	// TraceContext asks SQS for the producers' trace context with each
	// message (the traceparent message attribute and the AWSTraceHeader
	// system attribute), for the tracing middleware. Off, receives ask
	// for what they did before tracing existed.
	TraceContext bool
	Logger       *slog.Logger
}

// Run polls until ctx is cancelled, then stops receiving, decides what it
// has received at once (without waiting for the window), deletes what is
// done and returns nil. It returns an error only if receiving keeps
// failing in a way that cannot recover (the queue does not exist, access
// denied).
func (w *Worker) Run(ctx context.Context) error {
	pollers := w.Pollers
	if pollers <= 0 {
		pollers = 4
	}
	logger := w.Logger
	if logger == nil {
		logger = slog.Default()
	}
	limit := w.CoalesceMax
	if limit <= 0 {
		limit = DefaultCoalesceMax
	}
	// What the worker holds at most: a full batch pending plus a receive
	// per poller, so that the pollers keep receiving while a batch is
	// decided, but stop when batches queue up.
	room := newBudget(limit + 10*pollers)
	// The batches run to completion even when shutdown starts: their
	// outcomes are decided, and deleting what is done now saves a
	// redelivery.
	work := context.WithoutCancel(ctx)
	deletes := newDeleter(w.Client, w.QueueURL, w.CoalesceWindow, logger)
	c := newCoalescer(w.CoalesceWindow, limit, func(free func(usage.Scope), msgs []pipeline.Message) {
		defer room.give(len(msgs))
		results := w.Handler(pipeline.WithRequestID(withFree(work, free), "worker-"+msgs[0].ID), msgs)
		deletes.add(done(msgs, results))
	}, func(pending int) {
		if pending > 0 {
			logger.Info("worker stopping: deciding the messages received", "pending", pending)
		}
	})

	pace := newPacer(w.PaceReceives, w.CoalesceWindow, w.QueueURL)
	var wg sync.WaitGroup
	errs := make(chan error, pollers)
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	for range pollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.poll(pollCtx, logger, c, room, pace); err != nil {
				errs <- err
				stopPolling()
			}
		}()
	}
	wg.Wait()
	c.close()
	deletes.close()
	close(errs)
	return <-errs
}

func (w *Worker) poll(ctx context.Context, logger *slog.Logger, c *coalescer, room *budget, pace *pacer) error {
	wait := w.WaitTime
	if wait <= 0 {
		wait = 20 * time.Second
	}
	failures := 0
	for ctx.Err() == nil {
		if !room.take(ctx, 10) {
			return nil
		}
		paced := pace.begin(ctx)
		out, err := w.Client.ReceiveMessage(ctx, w.receiveInput(wait))
		receivedAt := time.Now()
		if err != nil {
			pace.end(ctx, paced, 0, receivedAt)
			room.give(10)
			if ctx.Err() != nil {
				return nil
			}
			var missing *types.QueueDoesNotExist
			if errors.As(err, &missing) {
				return fmt.Errorf("queue %s: %w", w.QueueURL, err)
			}
			failures++
			logger.Warn("receive failed", "queue", w.QueueURL, "error", err.Error(), "consecutiveFailures", failures)
			if backoff.Sleep(ctx, receiveBackoff.Equal(failures-1)) != nil {
				return nil
			}
			continue
		}
		failures = 0
		room.give(10 - len(out.Messages))
		if len(out.Messages) > 0 {
			logger.Debug("messages received", "count", len(out.Messages))
			at := pace.arrivedAt(paced, receivedAt)
			as := make([]arrival, len(out.Messages))
			for i, m := range out.Messages {
				as[i] = newArrival(toMessage(m), at)
			}
			c.add(as)
		}
		pace.end(ctx, paced, len(out.Messages), receivedAt)
	}
	return nil
}

// receiveInput is one receive's request: up to 10 messages, with the
// attributes toMessage reads.
func (w *Worker) receiveInput(wait time.Duration) *sqs.ReceiveMessageInput {
	in := &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(w.QueueURL),
		MaxNumberOfMessages: 10,
		WaitTimeSeconds:     int32(wait / time.Second),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{
			types.MessageSystemAttributeNameApproximateReceiveCount,
			types.MessageSystemAttributeNameSentTimestamp,
			types.MessageSystemAttributeNameMessageGroupId,
		},
		MessageAttributeNames: []string{pipeline.OriginalIDAttribute},
	}
	if w.TraceContext {
		in.MessageSystemAttributeNames = append(in.MessageSystemAttributeNames, types.MessageSystemAttributeNameAWSTraceHeader)
		in.MessageAttributeNames = append(in.MessageAttributeNames, pipeline.TraceParentAttribute)
	}
	return in
}

// receiveBackoff spaces out receives while SQS keeps failing: from about
// a second up to the long-poll duration, never close to immediate.
var receiveBackoff = backoff.Exponential{Base: time.Second, Max: 20 * time.Second}

func toMessage(m types.Message) pipeline.Message {
	msg := pipeline.Message{ID: aws.ToString(m.MessageId), Body: aws.ToString(m.Body), ReceiptHandle: aws.ToString(m.ReceiptHandle)}
	attrs := m.Attributes
	if n, err := strconv.Atoi(attrs[string(types.MessageSystemAttributeNameApproximateReceiveCount)]); err == nil {
		msg.ReceiveCount = n
	}
	if ms, err := strconv.ParseInt(attrs[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		msg.SentAt = time.UnixMilli(ms).UTC()
	}
	msg.GroupID = attrs[string(types.MessageSystemAttributeNameMessageGroupId)]
	if v, ok := m.MessageAttributes[pipeline.OriginalIDAttribute]; ok {
		msg.OriginalID = aws.ToString(v.StringValue)
	}
	msg.AWSTraceHeader = attrs[string(types.MessageSystemAttributeNameAWSTraceHeader)]
	if v, ok := m.MessageAttributes[pipeline.TraceParentAttribute]; ok {
		msg.TraceParent = aws.ToString(v.StringValue)
	}
	return msg
}

// done are the messages whose results end their delivery.
func done(msgs []pipeline.Message, results []pipeline.Result) []pipeline.Message {
	var out []pipeline.Message
	for i, r := range results {
		if r.Done() {
			out = append(out, msgs[i])
		}
	}
	return out
}

// entryMessageID maps a batch entry ID back to the message ID of its
// chunk. Entry IDs are indexes within the request: SQS allows only
// [A-Za-z0-9_-] there, and message IDs are not promised to qualify.
func entryMessageID(chunk []pipeline.Message, entryID *string) string {
	i, err := strconv.Atoi(aws.ToString(entryID))
	if err != nil || i < 0 || i >= len(chunk) {
		return "entry " + aws.ToString(entryID)
	}
	return chunk[i].ID
}
