package sqs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/usage-event-service/usage-event-service/pipeline"
)

// deleteRecorder records DeleteMessageBatch requests by their receipt
// handles.
type deleteRecorder struct {
	Client
	mu       sync.Mutex
	requests [][]string
}

func (r *deleteRecorder) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	var handles []string
	for _, e := range in.Entries {
		handles = append(handles, aws.ToString(e.ReceiptHandle))
	}
	r.mu.Lock()
	r.requests = append(r.requests, handles)
	r.mu.Unlock()
	return &sqs.DeleteMessageBatchOutput{}, nil
}

// waitFor waits until n requests were sent (at most 5 s) and returns them.
func (r *deleteRecorder) waitFor(n int) [][]string {
	for deadline := time.Now().Add(5 * time.Second); len(r.sent()) < n && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	return r.sent()
}

func (r *deleteRecorder) sent() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

func doneMessages(from, to int) []pipeline.Message {
	var ms []pipeline.Message
	for i := from; i < to; i++ {
		ms = append(ms, pipeline.Message{ID: fmt.Sprint(i), ReceiptHandle: fmt.Sprintf("rh-%d", i)})
	}
	return ms
}

// TestDeleterShares: done messages of batches that finish within the
// delay share a request; full requests go at once; what waits is deleted
// after the delay, and at close; without a delay, and on a FIFO queue,
// each batch's are deleted at once.
func TestDeleterShares(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Run("within the delay", func(t *testing.T) {
		r := &deleteRecorder{}
		d := newDeleter(r, "http://q/standard", time.Hour, quiet)
		d.add(doneMessages(0, 3))
		d.add(doneMessages(3, 5))
		d.add(doneMessages(5, 17)) // 17 waiting: the first ten go
		if got := fmt.Sprint(r.waitFor(1)); got != "[[rh-0 rh-1 rh-2 rh-3 rh-4 rh-5 rh-6 rh-7 rh-8 rh-9]]" {
			t.Fatalf("after 17: %s", got)
		}
		d.close()
		if got := fmt.Sprint(r.sent()[1:]); got != "[[rh-10 rh-11 rh-12 rh-13 rh-14 rh-15 rh-16]]" {
			t.Fatalf("at close: %s", got)
		}
	})
	t.Run("after the delay", func(t *testing.T) {
		r := &deleteRecorder{}
		d := newDeleter(r, "http://q/standard", 20*time.Millisecond, quiet)
		defer d.close()
		d.add(doneMessages(0, 2))
		d.add(doneMessages(2, 3))
		if got := fmt.Sprint(r.waitFor(1)); got != "[[rh-0 rh-1 rh-2]]" {
			t.Fatalf("after the delay: %s", got)
		}
	})
	for name, tc := range map[string]struct {
		url   string
		delay time.Duration
	}{"no delay": {"http://q/standard", 0}, "fifo": {"http://q/events.fifo", time.Hour}} {
		t.Run(name, func(t *testing.T) {
			r := &deleteRecorder{}
			d := newDeleter(r, tc.url, tc.delay, quiet)
			d.add(doneMessages(0, 2))
			d.add(doneMessages(2, 14))
			if got := fmt.Sprint(r.waitFor(3)); got != "[[rh-0 rh-1] [rh-2 rh-3 rh-4 rh-5 rh-6 rh-7 rh-8 rh-9 rh-10 rh-11] [rh-12 rh-13]]" {
				t.Fatalf("%s: %s", name, got)
			}
			d.close()
		})
	}
}
