package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

// DeadLetter is a permanently rejected message on its way to the
// dead-letter queue, with the reason it carries there.
type DeadLetter struct {
	Message    Message
	Reason     usage.Reason
	Detail     string
	RejectedAt time.Time
}

// DeadLetterSender sends dead letters and returns one error (or nil) per
// letter, in order.
type DeadLetterSender interface {
	SendDeadLetters(ctx context.Context, letters []DeadLetter) []error
}

// DeadLetters moves permanently rejected messages to the dead-letter
// queue at once, with their reason, instead of letting SQS redeliver them
// until maxReceiveCount: a rejection is final, so retries only delay the
// alarm. A message whose send fails stays not done and is retried by
// SQS; nothing is dropped. Transient failures are never dead-lettered.
func DeadLetters(sender DeadLetterSender, now func() time.Time) Middleware {
	if now == nil {
		now = time.Now
	}
	return func(next Handler) Handler {
		return func(ctx context.Context, msgs []Message) []Result {
			results := next(ctx, msgs)
			var letters []DeadLetter
			var index []int
			for i, r := range results {
				if r.Status != usage.Rejected {
					continue
				}
				var rej *usage.RejectionError
				detail := ""
				if errors.As(r.Err, &rej) {
					detail = rej.Error()
				}
				letters = append(letters, DeadLetter{Message: msgs[i], Reason: r.Reason(), Detail: detail, RejectedAt: now().UTC()})
				index = append(index, i)
			}
			if len(letters) == 0 {
				return results
			}
			errs := sender.SendDeadLetters(ctx, letters)
			for k, i := range index {
				if errs[k] == nil {
					results[i].DeadLettered = true
				} else {
					results[i].DeadLetterErr = errs[k]
				}
			}
			return results
		}
	}
}
