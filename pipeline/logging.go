package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

type requestIDKey struct{}

// WithRequestID attaches the invocation's request ID (Lambda's
// AwsRequestID, or the worker's batch ID) for logs.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the ID set by WithRequestID, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// Logging writes one line per message that was not applied (debug level
// for applied ones), one error line with the stack per recovered panic
// (see ErrPanic) and one summary line per batch. It logs identifiers
// and reasons, never bodies or metadata, which may carry personal data.
func Logging(logger *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, msgs []Message) []Result {
			start := time.Now()
			results := next(ctx, msgs)
			reqID := RequestID(ctx)
			counts := map[usage.Status]int{}
			deadLettered := 0
			for i, r := range results {
				counts[r.Status]++
				if r.DeadLettered {
					deadLettered++
				}
				attrs := []any{
					"requestId", reqID, "messageId", r.MessageID, "outcome", string(r.Status),
					"userId", r.Event.UserID, "entitlementKey", r.Event.EntitlementKey,
					"receiveCount", msgs[i].ReceiveCount,
				}
				if r.Event.PoolID != "" {
					attrs = append(attrs, "poolId", r.Event.PoolID)
				}
				switch r.Status {
				case usage.Applied:
					logger.DebugContext(ctx, "event applied", append(attrs, "amount", r.Event.Amount.String())...)
				case usage.Duplicate:
					logger.InfoContext(ctx, "duplicate event ignored", attrs...)
				case usage.Rejected:
					attrs = append(attrs, "reason", string(r.Reason()), "detail", errText(r.Err), "deadLettered", r.DeadLettered)
					if r.DeadLetterErr != nil {
						attrs = append(attrs, "deadLetterError", r.DeadLetterErr.Error())
					}
					logger.WarnContext(ctx, "event rejected", attrs...)
				default:
					logger.WarnContext(ctx, "event will be retried", append(attrs, "error", errText(r.Err))...)
				}
			}
			panics := Panics(results)
			for _, p := range panics {
				logPanic(ctx, logger, reqID, p, results)
			}
			logger.InfoContext(ctx, "batch processed", "requestId", reqID, "messages", len(msgs),
				"applied", counts[usage.Applied], "duplicates", counts[usage.Duplicate],
				"rejected", counts[usage.Rejected], "retried", counts[usage.Retry],
				"deadLettered", deadLettered, "panics", len(panics), "durationMs", time.Since(start).Milliseconds())
			return results
		}
	}
}

// logPanic writes one error line per recovered panic, with its stack and
// the messages it sent back to the queue (each also has its own "event
// will be retried" line).
func logPanic(ctx context.Context, logger *slog.Logger, reqID string, p *PanicError, results []Result) {
	var ids []string
	for _, r := range results {
		var rp *PanicError
		if errors.As(r.Err, &rp) && rp == p {
			ids = append(ids, r.MessageID)
		}
	}
	logger.ErrorContext(ctx, "panic while processing; its messages will be retried", "requestId", reqID,
		"panic", fmt.Sprint(p.Value), "stack", string(p.Stack), "messageIds", ids)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
