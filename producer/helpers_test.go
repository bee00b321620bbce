package producer_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/producer"
)

func TestMain(m *testing.M) { emulator.Main(m) }

// awsEnv points the process at the emulators and returns the
// configuration production code would load, and an SQS client for the
// test's own checks.
func awsEnv(t *testing.T) (aws.Config, *awssqs.Client) {
	t.Helper()
	emulator.Env(t)
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cfg, awssqs.NewFromConfig(cfg)
}

// newQueue creates a queue named after the test. A name ending in ".fifo"
// makes a FIFO queue; attrs are extra queue attributes.
func newQueue(t *testing.T, c *awssqs.Client, suffix string, attrs map[string]string) string {
	t.Helper()
	name := emulator.UniqueName(t, "q") + suffix
	all := map[string]string{}
	for k, v := range attrs {
		all[k] = v
	}
	if suffix == ".fifo" {
		all[string(sqstypes.QueueAttributeNameFifoQueue)] = "true"
	}
	out, err := c.CreateQueue(context.Background(), &awssqs.CreateQueueInput{QueueName: aws.String(name), Attributes: all})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}

// receiveAll receives until want messages arrived (or 10 s passed), then
// makes sure no more are there, and returns them. Each is received once:
// the visibility timeout outlasts the test.
func receiveAll(t *testing.T, c *awssqs.Client, url string, want int) []sqstypes.Message {
	t.Helper()
	var got []sqstypes.Message
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		got = append(got, receive(t, c, url, 1)...)
	}
	got = append(got, receive(t, c, url, 0)...)
	if len(got) != want {
		t.Fatalf("received %d messages, want %d", len(got), want)
	}
	return got
}

func receive(t *testing.T, c *awssqs.Client, url string, wait int32) []sqstypes.Message {
	t.Helper()
	out, err := c.ReceiveMessage(context.Background(), &awssqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: wait, VisibilityTimeout: 300,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Messages
}

// recorder wraps a real client and records every SendMessageBatch call.
// fail, when set, is consulted once per entry and attempt (1-based) and can
// make SQS's answer for that entry a failure instead of forwarding it.
type recorder struct {
	next producer.Client
	fail func(body string, attempt int) *sqstypes.BatchResultErrorEntry

	mu       sync.Mutex
	calls    [][]string // entry bodies per call
	attempts map[string]int
}

func (r *recorder) SendMessageBatch(ctx context.Context, in *awssqs.SendMessageBatchInput, opts ...func(*awssqs.Options)) (*awssqs.SendMessageBatchOutput, error) {
	r.mu.Lock()
	if r.attempts == nil {
		r.attempts = map[string]int{}
	}
	var bodies []string
	forward := *in
	forward.Entries = nil
	var failed []sqstypes.BatchResultErrorEntry
	for _, e := range in.Entries {
		body := aws.ToString(e.MessageBody)
		bodies = append(bodies, body)
		r.attempts[body]++
		if r.fail != nil {
			if f := r.fail(body, r.attempts[body]); f != nil {
				f.Id = e.Id
				failed = append(failed, *f)
				continue
			}
		}
		forward.Entries = append(forward.Entries, e)
	}
	r.calls = append(r.calls, bodies)
	r.mu.Unlock()

	out := &awssqs.SendMessageBatchOutput{}
	if len(forward.Entries) > 0 {
		var err error
		if out, err = r.next.SendMessageBatch(ctx, &forward, opts...); err != nil {
			return nil, err
		}
	}
	out.Failed = append(out.Failed, failed...)
	return out, nil
}

func (r *recorder) callSizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	sizes := make([]int, len(r.calls))
	for i, c := range r.calls {
		sizes[i] = len(c)
	}
	return sizes
}

func (r *recorder) callBytes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, c := range r.calls {
		n := 0
		for _, b := range c {
			n += len(b)
		}
		out = append(out, n)
	}
	return out
}

func sortedBodies(msgs []sqstypes.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, aws.ToString(m.Body))
	}
	slices.Sort(out)
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }
