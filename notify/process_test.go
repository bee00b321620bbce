package notify_test

// The end-to-end proofs' processes: the service's real worker binary and
// its Lambda bootstrap under the Runtime Interface Emulator, configured
// the production way, and what they are fed and checked with.

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/sqs"
	"github.com/usage-event-service/usage-event-service/usage"
)

// queues creates the usage event queue and its dead-letter queue, with a
// short visibility timeout so that what a killed worker had in flight
// comes back within seconds.
func (w *world) queues(t *testing.T) sqs.Queues {
	t.Helper()
	q, err := sqs.CreateQueues(context.Background(), w.sqs, emulator.UniqueName(t, "q"), 100, 3)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// serviceEnv is the service's whole environment for this world: tables,
// queues, the topic, the SDK's variables (SNS at the emulator), and the
// extra settings, later entries winning.
func (w *world) serviceEnv(q sqs.Queues, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(),
		"ENTITLEMENTS_TABLE=" + w.entitlements, "USAGE_LEDGER_TABLE=" + w.ledger,
		"USAGE_EVENT_QUEUE_URL=" + q.URL, "DEAD_LETTER_QUEUE_URL=" + q.DeadLetterURL,
		"NOTIFY_TOPIC_ARN=" + w.topicARN, "NOTIFY_RECOVERY_INTERVAL=1s", "LOG_LEVEL=INFO",
	}
	for _, k := range []string{"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS",
		"AWS_ENDPOINT_URL_SNS", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_EC2_METADATA_DISABLED"} {
		env = append(env, k+"="+os.Getenv(k))
	}
	return withEnv(env, extra...)
}

// withEnv sets KEY=VALUE entries, replacing earlier ones of the same key
// (exec passes duplicates on, and which one a program sees is its libc's
// choice).
func withEnv(env []string, kv ...string) []string {
	out := slices.Clone(env)
	for _, e := range kv {
		k, _, _ := strings.Cut(e, "=")
		out = slices.DeleteFunc(out, func(o string) bool { return strings.HasPrefix(o, k+"=") })
		out = append(out, e)
	}
	return out
}

// send sends bodies to the queue, ten per SendMessageBatch.
func (w *world) send(t *testing.T, queueURL string, bodies []string) {
	t.Helper()
	for chunk := range slices.Chunk(bodies, 10) {
		entries := make([]sqstypes.SendMessageBatchRequestEntry, len(chunk))
		for i, b := range chunk {
			entries[i] = sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(b)}
		}
		out, err := w.sqs.SendMessageBatch(context.Background(), &awssqs.SendMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: entries})
		if err != nil || len(out.Failed) > 0 {
			t.Fatalf("send: %v %+v", err, out)
		}
	}
}

// depth counts the queue's messages, visible, in flight or delayed.
func (w *world) depth(t *testing.T, url string) int {
	t.Helper()
	out, err := w.sqs.GetQueueAttributes(context.Background(), &awssqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible, sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range out.Attributes {
		i, _ := strconv.Atoi(v)
		n += i
	}
	return n
}

// waitDrained waits until the queue is empty (every message done with),
// failing if a worker dies first.
func (w *world) waitDrained(t *testing.T, url string, workers ...*worker) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for w.depth(t, url) > 0 {
		for _, p := range workers {
			if err := p.alive(); err != nil {
				t.Fatal(err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the queue did not drain: %d messages left", w.depth(t, url))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitPublished waits until every notification recorded for the scopes
// is marked published, and returns them.
func (w *world) waitPublished(t *testing.T, scopes ...usage.Scope) map[usage.Scope][]usage.Notification {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		all, pending := map[usage.Scope][]usage.Notification{}, 0
		for _, s := range scopes {
			all[s] = w.recorded(t, s)
			for _, n := range all[s] {
				if n.PublishedAt.IsZero() {
					pending++
				}
			}
		}
		if pending == 0 {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d notifications still unpublished: %+v", pending, all)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkDelivery: exactly one recorded notification per key, as expected
// (scope -> "type threshold" keys), every one published at least once,
// with its recorded body; nothing published that was not recorded. It
// returns how many deliveries repeated one (at least once: allowed).
func checkDelivery(t *testing.T, recorded map[usage.Scope][]usage.Notification, want map[usage.Scope][]string, got []delivered) (repeats int) {
	t.Helper()
	byID := map[string]usage.Notification{}
	for scope, notes := range recorded {
		var keys []string
		for _, n := range notes {
			keys = append(keys, noteKey(n.Type, n.ThresholdPercent))
			byID[n.ID] = n
		}
		slices.Sort(keys)
		w := slices.Clone(want[scope])
		slices.Sort(w)
		if !slices.Equal(keys, w) {
			t.Errorf("%v: recorded %v, want exactly %v", scope, keys, w)
		}
	}
	seen := map[string]int{}
	for _, d := range got {
		n, ok := byID[d.msg.NotificationID]
		if !ok {
			t.Errorf("published a notification that is not recorded: %s", d.raw)
			continue
		}
		seen[n.ID]++
		if d.msg.Type != n.Type || d.msg.Used.String() != n.Used.String() || d.msg.EventID != n.EventID || d.msg.PeriodStart != n.PeriodStart {
			t.Errorf("published %s, recorded %+v", d.raw, n)
		}
	}
	for id, n := range byID {
		switch c := seen[id]; {
		case c == 0:
			t.Errorf("recorded but never published: %s %s %v", n.Type, n.UserID, n.ThresholdPercent)
		case c > 1:
			repeats += c - 1
			t.Logf("delivered %d times: %s %s %v (occurred %v, published %v)", c, n.Type, n.UserID, n.ThresholdPercent, n.OccurredAt, n.PublishedAt)
		}
	}
	return repeats
}

func noteKey(typ string, p *usage.Decimal) string {
	if p == nil {
		return typ
	}
	return typ + " " + p.String()
}

const (
	reached80  = usage.NotifyThresholdReached + " 80"
	reached100 = usage.NotifyThresholdReached + " 100"
	rejected   = usage.NotifyLimitRejected
	// overageStarted is the key of usage.overage.started (no threshold).
	overageStarted = usage.NotifyOverageStarted
)

// consumeBody is a queued consume with an idempotency key.
func consumeBody(s usage.Scope, amount int, key string) string {
	return fmt.Sprintf(`{"userId":%q,"entitlementKey":%q,"amount":%d,"idempotencyKey":%q}`, s.UserID, s.EntitlementKey, amount, key)
}

// worker is one run of the worker binary.
type worker struct {
	cmd    *exec.Cmd
	out    emulator.LockedBuffer
	exited chan struct{}
	err    error
}

func startWorker(t *testing.T, env []string) *worker {
	t.Helper()
	p := &worker{exited: make(chan struct{})}
	p.cmd = exec.Command(emulator.Binary(t, "./cmd/usage-event-service"), "worker")
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("worker pid %d output (tail):\n%s", p.cmd.Process.Pid, tail(p.out.String(), 30))
		}
		if i := strings.Index(p.out.String(), "WARNING: DATA RACE"); i >= 0 {
			t.Errorf("data race in the worker:\n%s", p.out.String()[i:])
		}
	})
	return p
}

func (p *worker) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("the worker exited: %v\n%s", p.err, tail(p.out.String(), 30))
	default:
		return nil
	}
}

// stop sends SIGTERM and requires a clean exit.
func (p *worker) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		t.Fatal("the worker did not stop within a minute of SIGTERM")
	}
	if p.err != nil || !strings.Contains(p.out.String(), `"msg":"worker stopped"`) {
		t.Errorf("the worker exited with %v after SIGTERM, want 0 and \"worker stopped\"", p.err)
	}
}

// kill is SIGKILL: no chance to finish anything.
func (p *worker) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// waitLog waits until the worker's output contains s.
func (p *worker) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(p.out.String(), s) {
		if err := p.alive(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker never logged %s:\n%s", s, tail(p.out.String(), 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// limited provisions an entitlement with a limit and a monthly period
// that began before the run (so that no reset falls within it); extra
// may give its notifyThresholds ("25,50") and overageLimit.
func (w *world) limited(t *testing.T, s usage.Scope, limit string, extra ...map[string]string) {
	t.Helper()
	anchor := time.Now().UTC().AddDate(0, 0, -10)
	e := dynamodb.EntitlementItem{UserID: s.UserID, EntitlementKey: s.EntitlementKey, Limit: dec(limit), ResetPeriod: usage.ResetMonthly, ResetAnchor: &anchor}
	e.Extra = map[string]types.AttributeValue{}
	for _, x := range extra {
		if ps, ok := x["notifyThresholds"]; ok {
			maps.Copy(e.Extra, thresholdsAttr(strings.Split(ps, ",")...))
		}
		if o, ok := x["overageLimit"]; ok {
			maps.Copy(e.Extra, overageLimitAttr(o))
		}
	}
	w.entitlement(t, e)
}

// dynamodbItem is an unlimited entitlement that never resets.
func dynamodbItem(s usage.Scope) dynamodb.EntitlementItem {
	return dynamodb.EntitlementItem{UserID: s.UserID, EntitlementKey: s.EntitlementKey}
}
