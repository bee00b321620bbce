package sqs

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/usage-event-service/usage-event-service/pipeline"
)

// A worker's batches are often small: an entitlement whose write was in
// flight holds its later events back, and they go out as a batch of their
// own as soon as it is free. A delete per batch would cost an SQS request
// for every such batch, so the deleter gathers the done messages of
// batches that finish close together and deletes them ten to a request,
// waiting at most its delay (the coalescing window) for a request to
// fill. A message deleted that much later is not received again: the
// delay is far inside the visibility timeout, and a crash meanwhile only
// redelivers what dedup then reports as DUPLICATE. On a FIFO queue the
// delay is 0: a message group's next messages are not delivered until the
// earlier ones are deleted.

// deleter deletes done messages from one queue; one goroutine (run) owns
// what waits.
type deleter struct {
	client   Client
	queueURL string
	delay    time.Duration
	logger   *slog.Logger

	in      chan []pipeline.Message
	stopped chan struct{}
}

func newDeleter(c Client, queueURL string, delay time.Duration, logger *slog.Logger) *deleter {
	if strings.HasSuffix(queueURL, ".fifo") {
		delay = 0
	}
	d := &deleter{client: c, queueURL: queueURL, delay: delay, logger: logger,
		in: make(chan []pipeline.Message), stopped: make(chan struct{})}
	go d.run()
	return d
}

// add hands over done messages to delete.
func (d *deleter) add(msgs []pipeline.Message) {
	if len(msgs) > 0 {
		d.in <- msgs
	}
}

// close deletes what waits and returns when it is done.
func (d *deleter) close() {
	close(d.in)
	<-d.stopped
}

func (d *deleter) run() {
	defer close(d.stopped)
	ctx := context.Background() // deletes finish even at shutdown
	var waiting []pipeline.Message
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case msgs, ok := <-d.in:
			if !ok {
				d.delete(ctx, waiting)
				return
			}
			started := len(waiting) > 0
			waiting = append(waiting, msgs...)
			full := len(waiting) / 10 * 10
			if d.delay <= 0 {
				full = len(waiting)
			}
			d.delete(ctx, waiting[:full])
			waiting = waiting[full:]
			switch {
			case len(waiting) == 0:
				timer.Stop()
			case !started || full > 0:
				timer.Reset(d.delay)
			}
		case <-timer.C:
			d.delete(ctx, waiting)
			waiting = nil
		}
	}
}

// delete deletes msgs in requests of at most ten (the most SQS takes). A
// failed delete is logged, not retried: the message reappears and comes
// back a duplicate.
func (d *deleter) delete(ctx context.Context, msgs []pipeline.Message) {
	for chunk := range slices.Chunk(msgs, 10) {
		entries := make([]types.DeleteMessageBatchRequestEntry, len(chunk))
		for i, m := range chunk {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(m.ReceiptHandle)}
		}
		out, err := d.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(d.queueURL), Entries: entries})
		if err != nil {
			d.logger.Warn("delete failed; the messages will be redelivered and dedup absorbs them", "count", len(entries), "error", err.Error())
			continue
		}
		for _, f := range out.Failed {
			d.logger.Warn("delete failed; the message will be redelivered and dedup absorbs it", "messageId", entryMessageID(chunk, f.Id), "error", aws.ToString(f.Message))
		}
	}
}
