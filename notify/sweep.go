package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/metrics"
	"github.com/usage-event-service/usage-event-service/usage"
)

// SweepResult is what one recovery sweep did.
type SweepResult struct {
	Published, Failed int
	// Left is how many notifications it found and left unpublished
	// (failed, or not tried after repeated failures).
	Left int
	// OldestUnpublished is the age of the oldest of those (zero: none).
	OldestUnpublished time.Duration
}

// maxConsecutiveFailures ends a sweep: SNS is evidently unreachable, and
// the next sweep tries again. One bad notification does not stop the
// others behind it.
const maxConsecutiveFailures = 3

// maxSweepRounds bounds one sweep's reads of the pending index.
const maxSweepRounds = 100

// Sweep publishes the notifications recorded but not published that are
// older than the grace: those whose writer crashed, or failed to publish,
// after the write. It measures the age of the oldest one it leaves
// unpublished, for the metric and its alarm.
func (p *Publisher) Sweep(ctx context.Context) (SweepResult, error) {
	grace := p.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	batch := p.SweepBatch
	if batch <= 0 {
		batch = DefaultSweepBatch
	}
	var res SweepResult
	var oldest time.Time
	leave := func(n usage.Notification) {
		res.Left++
		if oldest.IsZero() || n.OccurredAt.Before(oldest) {
			oldest = n.OccurredAt
		}
	}
	var err error
	for round := 0; round < maxSweepRounds; round++ {
		var pending []usage.Notification
		pending, err = dynamodb.PendingNotifications(ctx, p.DynamoDB, p.LedgerTable, p.now().Add(-grace), batch)
		failures, done := 0, 0
		for i, n := range pending {
			if failures >= maxConsecutiveFailures || ctx.Err() != nil {
				for _, rest := range pending[i:] {
					leave(rest)
				}
				break
			}
			if p.deliver(ctx, n, "sweep") {
				res.Published++
				failures = 0
				done++
			} else if ctx.Err() != nil {
				leave(n) // stopped (SIGTERM, the invocation's deadline), not failed
			} else {
				res.Failed++
				failures++
				leave(n)
			}
		}
		// Another round only when this one read a full batch and
		// published all of it: otherwise what is left stays for the next
		// sweep, rather than being read again at once.
		if err != nil || len(pending) < batch || done < len(pending) {
			break
		}
	}
	if !oldest.IsZero() {
		res.OldestUnpublished = max(p.now().Sub(oldest), 0)
	}
	m := metrics.Notifications{Published: res.Published, Failed: res.Failed}
	if err == nil {
		m.Swept, m.OldestUnpublished = true, res.OldestUnpublished
	}
	p.record(ctx, m)
	return res, err
}

// Recover is one recovery sweep as periodic work: it logs what the
// sweep did (when it did anything) and fails when it left notifications
// unpublished, so that the scheduler reports it; the next sweep retries.
func (p *Publisher) Recover(ctx context.Context) error {
	res, err := p.Sweep(ctx)
	switch {
	case err != nil:
		p.logger().WarnContext(ctx, "notification recovery sweep failed", "error", err.Error(), "published", res.Published)
		return err
	case res.Published > 0 || res.Left > 0:
		p.logger().InfoContext(ctx, "notification recovery sweep", "published", res.Published, "failed", res.Failed,
			"left", res.Left, "oldestUnpublishedSeconds", res.OldestUnpublished.Seconds())
	}
	if res.Left > 0 {
		return fmt.Errorf("%d notifications left unpublished (%d publications failed)", res.Left, res.Failed)
	}
	return nil
}

// conditionFailed: MarkPublished found no item (it expired with its
// period's retention): nothing is left to mark.
func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}
