package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/dev/memstore"
	"github.com/usage-event-service/usage-event-service/metering"

	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// TestWaitDelayReceivesAtMostFourTimes: however long the wait, a message
// that keeps waiting is delivered at most 4 times before the wait is
// over, and the last delivery comes after it.
func TestWaitDelayReceivesAtMostFourTimes(t *testing.T) {
	sent := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, wait := range []time.Duration{10 * time.Second, 15 * time.Minute, 2 * time.Hour, 24 * time.Hour} {
		for _, late := range []time.Duration{0, time.Second, wait / 3} { // first received a while after sending
			now, receives := sent.Add(late), 1
			for now.Before(sent.Add(wait)) {
				d := pipeline.WaitDelay(sent, now, wait)
				if d < time.Second || d > 12*time.Hour {
					t.Fatalf("wait %v: delay %v outside SQS's 1 s to 12 h", wait, d)
				}
				now, receives = now.Add(d), receives+1
			}
			if receives > 4 {
				t.Errorf("wait %v, first received after %v: %d receives, want at most 4", wait, late, receives)
			}
		}
	}
}

type recordingChanger struct {
	ids    []string
	delays []time.Duration
}

func (r *recordingChanger) ChangeVisibility(_ context.Context, msgs []pipeline.Message, delays []time.Duration) []error {
	for i, m := range msgs {
		r.ids = append(r.ids, m.ID)
		r.delays = append(r.delays, delays[i])
	}
	return make([]error, len(msgs))
}

// TestARefundWaitingForItsConsumeIsRedeliveredLater: from the queue, a
// refund whose consume is not applied is RETRY with a stretched
// redelivery while the wait lasts, and REFUND_TARGET_NOT_FOUND after.
func TestARefundWaitingForItsConsumeIsRedeliveredLater(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	store := memstore.New()
	store.PutEntitlement(usage.Scope{UserID: "a", EntitlementKey: "k"}, nil)
	p := &metering.Processor{Store: store, Now: func() time.Time { return now }, TargetWait: 15 * time.Minute}
	changer := &recordingChanger{}
	h := pipeline.New(p.Handle, pipeline.Options{Visibility: changer})
	refund := `{"operation":"refund","userId":"a","entitlementKey":"k","refundOf":"c-1","idempotencyKey":"r-1"}`
	waiting := pipeline.Message{ID: "1", Body: refund, ReceiveCount: 1, SentAt: now.Add(-time.Minute)}
	late := pipeline.Message{ID: "2", Body: refund, ReceiveCount: 4, SentAt: now.Add(-16 * time.Minute)}
	got := h(context.Background(), []pipeline.Message{waiting})
	if got[0].Status != usage.Retry || got[0].Err != usage.ErrTargetPending {
		t.Fatalf("waiting refund: %s %v", got[0].Status, got[0].Err)
	}
	if want := pipeline.WaitDelay(waiting.SentAt, now, 15*time.Minute); len(changer.ids) != 1 || changer.delays[0] != want {
		t.Errorf("visibility changes %v %v, want message 1 for %v", changer.ids, changer.delays, want)
	}
	if got := h(context.Background(), []pipeline.Message{late}); statusText(got) != "REFUND_TARGET_NOT_FOUND" {
		t.Errorf("after the wait: %s", statusText(got))
	}
	if len(changer.ids) != 1 {
		t.Errorf("a rejected message's visibility was changed: %v", changer.ids)
	}
	balance := pipeline.Message{ID: "3", Body: `{"operation":"balance","userId":"a","entitlementKey":"k"}`}
	if got := h(context.Background(), []pipeline.Message{balance}); statusText(got) != "INVALID_FIELD" {
		t.Errorf("a queued balance: %s, want INVALID_FIELD", statusText(got))
	}
}
