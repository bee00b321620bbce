package sqs_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/sqs"
	"github.com/usage-event-service/usage-event-service/usage"
)

// batchClient records batch requests and answers them as told. It stands
// in for SQS only where the emulator cannot be made to fail on demand
// (one failed request, one failed entry); the wire protocol is covered by
// the worker tests against the emulator.
type batchClient struct {
	mu      sync.Mutex
	sends   [][]sqstypes.SendMessageBatchRequestEntry
	deletes [][]sqstypes.DeleteMessageBatchRequestEntry
	// failRequest fails the nth request (0-based) as a whole; failEntry
	// reports entry ID failEntry of every request as failed.
	failRequest int
	failEntry   string
	// receive is answered once, then ReceiveMessage waits for the end.
	receive []sqstypes.Message
	input   *awssqs.ReceiveMessageInput
}

func newBatchClient() *batchClient { return &batchClient{failRequest: -1} }

func (c *batchClient) ReceiveMessage(ctx context.Context, in *awssqs.ReceiveMessageInput, _ ...func(*awssqs.Options)) (*awssqs.ReceiveMessageOutput, error) {
	c.mu.Lock()
	msgs := c.receive
	c.receive, c.input = nil, in
	c.mu.Unlock()
	if msgs != nil {
		return &awssqs.ReceiveMessageOutput{Messages: msgs}, nil
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (c *batchClient) SendMessageBatch(_ context.Context, in *awssqs.SendMessageBatchInput, _ ...func(*awssqs.Options)) (*awssqs.SendMessageBatchOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sends = append(c.sends, in.Entries)
	if len(c.sends)-1 == c.failRequest {
		return nil, errors.New("connection reset")
	}
	out := &awssqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		if aws.ToString(e.Id) == c.failEntry {
			out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InvalidParameterValue"), Message: aws.String("bad attribute")})
		} else {
			out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("dl-" + aws.ToString(e.Id))})
		}
	}
	return out, nil
}

func (c *batchClient) DeleteMessageBatch(_ context.Context, in *awssqs.DeleteMessageBatchInput, _ ...func(*awssqs.Options)) (*awssqs.DeleteMessageBatchOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deletes = append(c.deletes, in.Entries)
	return &awssqs.DeleteMessageBatchOutput{}, nil
}

func letters(n int) []pipeline.DeadLetter {
	out := make([]pipeline.DeadLetter, n)
	for i := range out {
		out[i] = pipeline.DeadLetter{
			Message: pipeline.Message{ID: fmt.Sprintf("msg-%02d", i), Body: fmt.Sprintf(`{"n":%d}`, i), ReceiveCount: 2},
			Reason:  usage.ReasonLimitExceeded, Detail: "over", RejectedAt: time.Date(2026, 5, 14, 10, 0, 0, 0, time.UTC),
		}
	}
	return out
}

func TestDeadLettersAreSentTenPerRequestWithIndexEntryIDs(t *testing.T) {
	c := newBatchClient()
	errs := sqs.DeadLetterQueue{Client: c, QueueURL: "http://localhost/q-dlq"}.SendDeadLetters(context.Background(), letters(23))
	if len(errs) != 23 {
		t.Fatalf("%d errors for 23 letters", len(errs))
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("letter %d: %v", i, err)
		}
	}
	var sizes []int
	for r, entries := range c.sends {
		sizes = append(sizes, len(entries))
		for i, e := range entries {
			n := r*10 + i
			if aws.ToString(e.Id) != strconv.Itoa(i) || aws.ToString(e.MessageBody) != fmt.Sprintf(`{"n":%d}`, n) {
				t.Errorf("request %d entry %d: id %q body %q", r, i, aws.ToString(e.Id), aws.ToString(e.MessageBody))
			}
			if e.MessageGroupId != nil || e.MessageDeduplicationId != nil {
				t.Errorf("standard queue entry with FIFO fields: %+v", e)
			}
		}
	}
	if fmt.Sprint(sizes) != "[10 10 3]" {
		t.Errorf("request sizes %v, want [10 10 3]", sizes)
	}
	attrs := c.sends[0][0].MessageAttributes
	for name, want := range map[string]string{
		sqs.AttrReason: "LIMIT_EXCEEDED", sqs.AttrReasonMessage: "over", sqs.AttrOriginalMessageID: "msg-00",
		sqs.AttrReceiveCount: "2", sqs.AttrRejectedAt: "2026-05-14T10:00:00Z",
	} {
		if got := aws.ToString(attrs[name].StringValue); got != want {
			t.Errorf("attribute %s = %q, want %q", name, got, want)
		}
	}
}

// TestDeadLetterFailuresMapToTheirLetters: a failed request fails its
// ten letters and no others; a failed entry fails only its letter.
func TestDeadLetterFailuresMapToTheirLetters(t *testing.T) {
	tests := []struct {
		name        string
		failRequest int
		failEntry   string
		wantFailed  []int
	}{
		{"the second request fails", 1, "", []int{10, 11, 12, 13, 14, 15, 16, 17, 18, 19}},
		{"entry 2 of every request fails", -1, "2", []int{2, 12, 22}},
		{"both", 2, "0", []int{0, 10, 20, 21, 22}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newBatchClient()
			c.failRequest, c.failEntry = tt.failRequest, tt.failEntry
			errs := sqs.DeadLetterQueue{Client: c, QueueURL: "http://localhost/q-dlq"}.SendDeadLetters(context.Background(), letters(23))
			var failed []int
			for i, err := range errs {
				if err != nil {
					failed = append(failed, i)
					if !strings.HasPrefix(err.Error(), "send to dead-letter queue: ") {
						t.Errorf("letter %d: %v", i, err)
					}
				}
			}
			if fmt.Sprint(failed) != fmt.Sprint(tt.wantFailed) {
				t.Errorf("failed letters %v, want %v", failed, tt.wantFailed)
			}
		})
	}
}

// TestFIFODeadLetterGroupAndDeduplicationIDs: on a FIFO dead-letter
// queue a letter keeps its message group (or, from a standard queue,
// joins FIFODeadLetterGroup), and its deduplication ID is its message
// ID, so the same delivery dead-lettered twice is stored once, while a
// replay (a new message ID, the same original ID) is not taken for it.
func TestFIFODeadLetterGroupAndDeduplicationIDs(t *testing.T) {
	c := newBatchClient()
	ls := letters(3)
	ls[0].Message.GroupID = "tenant-7"
	ls[2].Message.OriginalID = "msg-00"
	sqs.DeadLetterQueue{Client: c, QueueURL: "http://localhost/q-dlq.fifo"}.SendDeadLetters(context.Background(), ls)
	want := []struct{ group, dedup, original string }{
		{"tenant-7", "msg-00", "msg-00"},
		{sqs.FIFODeadLetterGroup, "msg-01", "msg-01"},
		{sqs.FIFODeadLetterGroup, "msg-02", "msg-00"},
	}
	for i, e := range c.sends[0] {
		got := aws.ToString(e.MessageGroupId) + " " + aws.ToString(e.MessageDeduplicationId) + " " + aws.ToString(e.MessageAttributes[sqs.AttrOriginalMessageID].StringValue)
		if w := want[i].group + " " + want[i].dedup + " " + want[i].original; got != w {
			t.Errorf("entry %d: group, dedup ID, original ID = %s; want %s", i, got, w)
		}
	}
}

func TestDeadLetterDetailIsTruncatedOnARuneBoundary(t *testing.T) {
	c := newBatchClient()
	ls := letters(2)
	ls[0].Detail = strings.Repeat("a", 1023) + "é" // é straddles byte 1024
	ls[1].Detail = ""
	sqs.DeadLetterQueue{Client: c, QueueURL: "http://localhost/q-dlq"}.SendDeadLetters(context.Background(), ls)
	if got := aws.ToString(c.sends[0][0].MessageAttributes[sqs.AttrReasonMessage].StringValue); got != strings.Repeat("a", 1023)+"…" {
		t.Errorf("truncated detail ends %q", got[len(got)-8:])
	}
	if got := aws.ToString(c.sends[0][1].MessageAttributes[sqs.AttrReasonMessage].StringValue); got != "-" {
		t.Errorf("empty detail sent as %q, want - (SQS rejects empty values)", got)
	}
}

// TestWorkerDeletesWhatIsDoneTenPerRequest: the worker maps SQS's
// attributes onto the pipeline's message, deletes the done messages by
// their receipt handles in requests of at most ten, and leaves the rest.
func TestWorkerDeletesWhatIsDoneTenPerRequest(t *testing.T) {
	c := newBatchClient()
	for i := range 25 {
		c.receive = append(c.receive, sqstypes.Message{
			MessageId: aws.String(fmt.Sprintf("m-%02d", i)), ReceiptHandle: aws.String(fmt.Sprintf("rh-%02d", i)), Body: aws.String("b"),
			Attributes: map[string]string{"ApproximateReceiveCount": "3", "SentTimestamp": "1700000000123", "MessageGroupId": "g"},
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{
				pipeline.OriginalIDAttribute: {DataType: aws.String("String"), StringValue: aws.String("orig")},
			},
		})
	}
	var got []pipeline.Message
	handled := make(chan struct{})
	handler := func(_ context.Context, msgs []pipeline.Message) []pipeline.Result {
		got = msgs
		results := make([]pipeline.Result, len(msgs))
		for i, m := range msgs {
			results[i] = pipeline.Result{MessageID: m.ID, Outcome: usage.Outcome{Status: usage.Applied}}
			if i%5 == 4 { // 4, 9, 14, 19, 24 stay
				results[i].Outcome = usage.Outcome{Status: usage.Retry, Err: errors.New("throttled")}
			}
		}
		close(handled)
		return results
	}
	ctx, stop := context.WithCancel(context.Background())
	w := &sqs.Worker{Client: c, QueueURL: "http://localhost/q", Handler: handler, Pollers: 1}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-handled
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		c.mu.Lock()
		n := len(c.deletes)
		c.mu.Unlock()
		if n == 2 || time.Now().After(deadline) {
			break
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	want := pipeline.Message{ID: "m-00", Body: "b", ReceiveCount: 3, SentAt: time.UnixMilli(1700000000123).UTC(), GroupID: "g", OriginalID: "orig", ReceiptHandle: "rh-00"}
	if len(got) != 25 || got[0] != want {
		t.Errorf("handler got %d messages, first %+v; want %+v", len(got), got[0], want)
	}
	for _, name := range []sqstypes.MessageSystemAttributeName{"ApproximateReceiveCount", "SentTimestamp", "MessageGroupId"} {
		if !slices.Contains(c.input.MessageSystemAttributeNames, name) {
			t.Errorf("ReceiveMessage does not ask for %s", name)
		}
	}
	var deleted []string
	var sizes []int
	for _, entries := range c.deletes {
		sizes = append(sizes, len(entries))
		for i, e := range entries {
			if aws.ToString(e.Id) != strconv.Itoa(i) {
				t.Errorf("entry ID %q at index %d", aws.ToString(e.Id), i)
			}
			deleted = append(deleted, strings.TrimPrefix(aws.ToString(e.ReceiptHandle), "rh-"))
		}
	}
	if fmt.Sprint(sizes) != "[10 10]" || strings.Contains(" "+strings.Join(deleted, " ")+" ", " 04 ") || len(deleted) != 20 {
		t.Errorf("deleted %v in requests of %v; want the 20 done ones in [10 10]", deleted, sizes)
	}
}
