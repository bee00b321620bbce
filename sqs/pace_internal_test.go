package sqs

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// TestPacerTurns: no pacer without a window, on a FIFO queue, or when
// off; none either until a receive comes back short; while light one
// poller has the turn, for the window after its
// receive; a full receive ends the pacing until a receive comes back
// short again.
func TestPacerTurns(t *testing.T) {
	for _, p := range []*pacer{newPacer(false, time.Second, "q"), newPacer(true, 0, "q"), newPacer(true, time.Second, "q.fifo")} {
		if p != nil {
			t.Fatalf("a pacer %+v where none was asked for", p)
		}
	}
	ctx := context.Background()
	p := newPacer(true, 40*time.Millisecond, "q")
	if p.begin(ctx) {
		t.Fatal("a receive was paced before any came back short")
	}
	p.end(ctx, false, 3, time.Now())
	if !p.begin(ctx) {
		t.Fatal("a light queue's receive was not paced")
	}
	second := make(chan time.Time)
	go func() { p.begin(ctx); second <- time.Now() }()
	at := time.Now()
	p.end(ctx, true, 3, at)
	if got := (<-second).Sub(at); got < 40*time.Millisecond {
		t.Errorf("the next paced receive came %v after the last, within the window", got)
	}
	p.end(ctx, true, 10, time.Now()) // a full receive: a backlog
	if p.begin(ctx) {
		t.Error("a receive after a full one was paced")
	}
	if got := p.arrivedAt(true, at); !got.Equal(at.Add(-40 * time.Millisecond)) {
		t.Errorf("a paced message arrived at %v, want the window before its receive", got)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	p.end(ctx, false, 1, time.Now())
	p.turn <- struct{}{} // someone else's turn
	if p.begin(canceled) {
		t.Error("begin waited out a canceled context and reported a paced receive")
	}
}

// trickleQueue is a light queue: every receive returns one message at
// once, as a long poll does while messages trickle in.
type trickleQueue struct {
	mu       sync.Mutex
	receives []time.Time
	n        int
}

func (q *trickleQueue) ReceiveMessage(ctx context.Context, _ *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.receives = append(q.receives, time.Now())
	q.n++
	body := fmt.Sprintf(`{"userId":"u-%d","entitlementKey":"k","amount":1}`, q.n)
	return &sqs.ReceiveMessageOutput{Messages: []types.Message{{MessageId: aws.String(fmt.Sprint(q.n)), ReceiptHandle: aws.String(fmt.Sprint(q.n)), Body: aws.String(body)}}}, nil
}

func (q *trickleQueue) DeleteMessageBatch(context.Context, *sqs.DeleteMessageBatchInput, ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	return &sqs.DeleteMessageBatchOutput{}, nil
}

func (q *trickleQueue) SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	return &sqs.SendMessageBatchOutput{}, nil
}

// TestPacedWorkerReceivesOncePerWindow: on a light queue four paced
// pollers make about one receive per window between them (unpaced, they
// would receive as fast as the queue answers), and each receive's message
// is handed on at once, not a window later.
func TestPacedWorkerReceivesOncePerWindow(t *testing.T) {
	const window = 50 * time.Millisecond
	q := &trickleQueue{}
	var mu sync.Mutex
	var lags []time.Duration
	start := time.Now()
	handler := func(_ context.Context, msgs []pipeline.Message) []pipeline.Result {
		now := time.Now()
		q.mu.Lock()
		last := q.receives[len(q.receives)-1]
		q.mu.Unlock()
		if last.After(start.Add(2 * window)) { // the first receives, before one came back short, are not paced
			mu.Lock()
			lags = append(lags, now.Sub(last))
			mu.Unlock()
		}
		out := make([]pipeline.Result, len(msgs))
		for i, m := range msgs {
			out[i] = pipeline.Result{MessageID: m.ID, Outcome: usage.Outcome{Status: usage.Applied}}
		}
		return out
	}
	ctx, stop := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer stop()
	w := &Worker{Client: q, QueueURL: "http://q/standard", Handler: handler, Pollers: 4, CoalesceWindow: window, PaceReceives: true}
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
	q.mu.Lock()
	n := len(q.receives)
	q.mu.Unlock()
	if n < 3 || n > 16 {
		t.Errorf("%d receives in 500 ms with a 50 ms window: want about 10 (and the first 4 at once)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lags) == 0 {
		t.Fatal("nothing was handled")
	}
	for _, l := range lags {
		if l > window/2 {
			t.Errorf("a paced message was handed on %v after its receive, want at once", l)
		}
	}
}
