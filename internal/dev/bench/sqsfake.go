package bench

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// sqsFake is the benchmark's SQS for the worker (sqs.Worker calls it
// through the SDK's types): ReceiveMessage long-polls the queue, a
// message received and not deleted within the visibility timeout is
// received again, DeleteMessageBatch ends deliveries, SendMessageBatch
// takes dead letters. It counts every request, as SQS bills them. The
// bench has no SQS emulator in it: this keeps the worker's code real
// (its pollers, coalescing, deletes) and the queue's timing under the
// benchmark's control.
type sqsFake struct {
	q        *queue
	w        *Workload
	dlqURL   string
	maxRecv  int
	mu       sync.Mutex
	inHand   map[string]held    // receipt handle → delivery, while in hand
	issued   map[string]pending // receipt handle → delivery, every one issued
	seq      int
	requests map[string]int // by operation
	letters  int
	dropped  int // deliveries past maxRecv, counted as dead-lettered by SQS
}

type held struct {
	p        pending
	deadline time.Time
}

func newSQSFake(q *queue, w *Workload, maxReceives int) *sqsFake {
	return &sqsFake{q: q, w: w, dlqURL: "https://sqs.bench.local/000000000000/bench-dlq", maxRecv: maxReceives,
		inHand: map[string]held{}, issued: map[string]pending{}, requests: map[string]int{}}
}

func (f *sqsFake) count(op string) {
	f.mu.Lock()
	f.requests[op]++
	f.mu.Unlock()
}

// expire puts deliveries whose visibility timeout ran out back (q.mu and
// f.mu held): SQS hands them out again.
func (f *sqsFake) expire(now time.Time) {
	for h, d := range f.inHand {
		if now.Before(d.deadline) {
			continue
		}
		delete(f.inHand, h)
		f.q.held--
		if f.q.fifo {
			f.q.busy[f.q.group(d.p.msg)]--
		}
		if d.p.receive >= f.maxRecv {
			f.dropped++
			continue
		}
		f.q.again = append(f.q.again, pending{msg: d.p.msg, receive: d.p.receive + 1, visibleAt: d.deadline})
	}
}

func (f *sqsFake) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	f.count("ReceiveMessage")
	max := int(in.MaxNumberOfMessages)
	if max <= 0 {
		max = 1
	}
	deadline := time.Now().Add(time.Duration(in.WaitTimeSeconds) * time.Second)
	for {
		f.q.mu.Lock()
		f.mu.Lock()
		now := time.Now()
		f.expire(now)
		got := f.q.receive(now, max)
		out := &sqs.ReceiveMessageOutput{}
		for _, p := range got {
			f.seq++
			h := "rh-" + strconv.Itoa(f.seq)
			f.inHand[h] = held{p: p, deadline: now.Add(f.q.visibility)}
			f.issued[h] = p
			out.Messages = append(out.Messages, f.message(p, h))
		}
		f.q.markIdle(now)
		f.mu.Unlock()
		f.q.mu.Unlock()
		if len(got) > 0 || !now.Before(deadline) {
			return out, nil
		}
		if !f.q.wait(ctx, deadline) {
			return nil, ctx.Err()
		}
	}
}

func (f *sqsFake) message(p pending, receipt string) types.Message {
	m := f.w.Messages[p.msg]
	receive := p.receive
	if m.Kind == Redelivery && m.ID == f.w.Messages[m.Original].ID {
		receive++ // an SQS redelivery: received before
	}
	attrs := map[string]string{
		string(types.MessageSystemAttributeNameApproximateReceiveCount): strconv.Itoa(receive),
	}
	if f.q.fifo {
		attrs[string(types.MessageSystemAttributeNameMessageGroupId)] = f.q.group(p.msg)
	}
	return types.Message{MessageId: aws.String(m.ID), Body: aws.String(m.Body), ReceiptHandle: aws.String(receipt), Attributes: attrs}
}

// delivery is the delivery a receipt handle stands for (also once its
// visibility timeout has run out).
func (f *sqsFake) delivery(receipt string) (pending, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.issued[receipt]
	return p, ok
}

func (f *sqsFake) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	f.count("DeleteMessageBatch")
	f.q.mu.Lock()
	f.mu.Lock()
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		h := aws.ToString(e.ReceiptHandle)
		if d, ok := f.inHand[h]; ok {
			delete(f.inHand, h)
			f.q.held--
			if f.q.fifo {
				f.q.busy[f.q.group(d.p.msg)]--
			}
		}
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	f.q.markIdle(time.Now())
	f.mu.Unlock()
	f.q.mu.Unlock()
	return out, nil
}

func (f *sqsFake) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.count("SendMessageBatch")
	f.mu.Lock()
	f.letters += len(in.Entries)
	f.mu.Unlock()
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("dl-" + aws.ToString(e.Id))})
	}
	return out, nil
}

// drained: every message deleted or given up on.
func (f *sqsFake) drained() bool {
	f.q.mu.Lock()
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.q.mu.Unlock()
	f.expire(time.Now())
	return f.q.drained()
}

func (f *sqsFake) snapshot() (requests map[string]int, letters, dropped int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	requests = map[string]int{}
	for k, v := range f.requests {
		requests[k] = v
	}
	return requests, f.letters, f.dropped
}
