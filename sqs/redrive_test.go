package sqs_test

import (
	"context"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/sqs"
	"github.com/usage-event-service/usage-event-service/usage"
)

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the SQS emulator; skipped with -short")
	}
}

// deadLetter is a rejected event as the service dead-letters it.
func deadLetter(id, originalID, body string) pipeline.DeadLetter {
	return pipeline.DeadLetter{Message: pipeline.Message{ID: id, OriginalID: originalID, Body: body, ReceiveCount: 1},
		Reason: usage.ReasonEntitlementNotFound, Detail: "no such entitlement", RejectedAt: time.Now().UTC()}
}

func (s *stack) deadLetter(t *testing.T, letters ...pipeline.DeadLetter) {
	t.Helper()
	for i, err := range (sqs.DeadLetterQueue{Client: s.sqs, QueueURL: s.queues.DeadLetterURL}).SendDeadLetters(context.Background(), letters) {
		if err != nil {
			t.Fatalf("dead letter %d: %v", i, err)
		}
	}
}

// sendWithAttributes sends a message with string message attributes.
func (s *stack) sendWithAttributes(t *testing.T, url, body string, attrs map[string]string) {
	t.Helper()
	in := &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body), MessageAttributes: map[string]sqstypes.MessageAttributeValue{}}
	for k, v := range attrs {
		in.MessageAttributes[k] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	if _, err := s.sqs.SendMessage(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

// receiveAll receives every visible message of url with its attributes,
// hiding them for the rest of the test.
func (s *stack) receiveAll(t *testing.T, url string) []sqstypes.Message {
	t.Helper()
	var msgs []sqstypes.Message
	for {
		out, err := s.sqs.ReceiveMessage(context.Background(), &awssqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 600, WaitTimeSeconds: 1,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return msgs
		}
		msgs = append(msgs, out.Messages...)
	}
}

// listed returns the dead-letter queue's messages by body, leaving them
// there (visible).
func (s *stack) listed(t *testing.T) map[string]sqs.DeadLetterMessage {
	t.Helper()
	l, err := sqs.ListDeadLetters(context.Background(), s.sqs, s.queues.DeadLetterURL, 100, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	byBody := map[string]sqs.DeadLetterMessage{}
	for _, m := range l.Messages {
		byBody[m.Body] = m
	}
	return byBody
}

func (s *stack) redrive(r sqs.Redrive) sqs.Redrive {
	r.Client, r.DeadLetterURL, r.QueueURL = s.sqs, s.queues.DeadLetterURL, s.queues.URL
	return r
}

func attr(m sqstypes.Message, name string) string {
	return aws.ToString(m.MessageAttributes[name].StringValue)
}

// TestRedriveSendsBackUnchangedWithTheEventsIdentity: every message goes
// back with its body unchanged, the first delivery's message ID and its
// first send time, and leaves the dead-letter queue.
func TestRedriveSendsBackUnchangedWithTheEventsIdentity(t *testing.T) {
	skipShort(t)
	s := newStack(t, emulator.UniqueName(t, "q"))
	const (
		bodyA = `{"userId":"u","entitlementKey":"a","amount":1}`
		bodyB = `{"userId":"u","entitlementKey":"b","amount":2}`
		bodyC = `{"userId":"u","entitlementKey":"c","amount":3}`
	)
	// A rejected on its first delivery; B rejected as a replay (it carries
	// its first delivery's ID); C moved by the redrive policy (no
	// attributes, and SQS keeps its ID).
	s.deadLetter(t, deadLetter("orig-a", "", bodyA), deadLetter("replay-b", "orig-b", bodyB))
	s.send(t, s.queues.DeadLetterURL, bodyC)
	idC := s.listed(t)[bodyC].MessageID

	progress := 0
	rep, err := s.redrive(sqs.Redrive{Progress: func(sqs.RedriveReport) { progress++ }}).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Redriven) != 3 || len(rep.Failed)+len(rep.Refused)+len(rep.NotFound) != 0 || progress == 0 {
		t.Fatalf("report %+v (progress calls %d), want 3 redriven", rep, progress)
	}
	wantOriginal := map[string]string{bodyA: "orig-a", bodyB: "orig-b", bodyC: idC}
	got := s.receiveAll(t, s.queues.URL)
	if len(got) != 3 {
		t.Fatalf("the queue holds %d messages, want 3", len(got))
	}
	for _, m := range got {
		body := aws.ToString(m.Body)
		want, ok := wantOriginal[body]
		if !ok {
			t.Errorf("unexpected body %s", body)
			continue
		}
		if attr(m, sqs.AttrOriginalMessageID) != want {
			t.Errorf("%s carries original ID %q, want %q", body, attr(m, sqs.AttrOriginalMessageID), want)
		}
		if sent, err := time.Parse(time.RFC3339Nano, attr(m, sqs.AttrOriginalSentAt)); err != nil || time.Since(sent) > time.Minute {
			t.Errorf("%s carries first send %q (%v), want the dead letter's send time", body, attr(m, sqs.AttrOriginalSentAt), err)
		}
		if _, ok := m.MessageAttributes[sqs.AttrReason]; ok {
			t.Errorf("%s carries the dead-lettering attributes into the queue", body)
		}
	}
	for _, r := range rep.Redriven {
		if r.NewMessageID == "" || r.MessageID == r.NewMessageID {
			t.Errorf("redriven %+v: want a new message ID", r)
		}
	}
	if n := s.depth(t, s.queues.DeadLetterURL); n != 0 {
		t.Errorf("%d messages left in the dead-letter queue", n)
	}
}

// TestRedriveRefusesEventsOlderThanTheDedupRetention: they stay in the
// dead-letter queue, visible, unless Force.
func TestRedriveRefusesEventsOlderThanTheDedupRetention(t *testing.T) {
	skipShort(t)
	s := newStack(t, emulator.UniqueName(t, "q"))
	ctx := context.Background()
	s.deadLetter(t, deadLetter("m-1", "", `{"userId":"u","entitlementKey":"k","amount":1}`), deadLetter("m-2", "", `{"userId":"u","entitlementKey":"k","amount":2}`))

	later := func() time.Time { return time.Now().Add(2 * time.Hour) }
	rep, err := s.redrive(sqs.Redrive{Retention: time.Hour, Now: later}).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Refused) != 2 || len(rep.Redriven) != 0 {
		t.Fatalf("report %+v, want both refused", rep)
	}
	for _, r := range rep.Refused {
		if r.Reason != string(usage.ReasonEntitlementNotFound) || r.FirstSentAt == "" || r.AgeSeconds < 7100 ||
			!strings.Contains(r.Error, "older than the dedup retention (1h0m0s)") {
			t.Errorf("refusal %+v", r)
		}
	}
	if n := len(s.listed(t)); n != 2 || s.depth(t, s.queues.URL) != 0 {
		t.Fatalf("after the refusal: %d visible in the dead-letter queue, %d in the queue; want 2 and 0", n, s.depth(t, s.queues.URL))
	}

	rep, err = s.redrive(sqs.Redrive{Retention: time.Hour, Now: later, Force: true}).Run(ctx)
	if err != nil || len(rep.Redriven) != 2 || len(rep.Refused) != 0 {
		t.Fatalf("with Force: %+v, %v; want both redriven", rep, err)
	}
	s.receiveAll(t, s.queues.URL)

	// A replay carries its first send: that is what it is aged by, and
	// what it carries on.
	twentyDays := time.Now().Add(-20 * 24 * time.Hour).UTC().Format(time.RFC3339Nano)
	oneDay := time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339Nano)
	s.sendWithAttributes(t, s.queues.DeadLetterURL, `{"old":1}`, map[string]string{sqs.AttrOriginalSentAt: twentyDays})
	s.sendWithAttributes(t, s.queues.DeadLetterURL, `{"old":0}`, map[string]string{sqs.AttrOriginalSentAt: oneDay})
	rep, err = s.redrive(sqs.Redrive{}).Run(ctx) // the default retention, 14 days
	if err != nil || len(rep.Refused) != 1 || rep.Refused[0].FirstSentAt != twentyDays || len(rep.Redriven) != 1 {
		t.Fatalf("replays first sent 20 days and 1 day ago: %+v, %v; want the first refused, the second redriven", rep, err)
	}
	got := s.receiveAll(t, s.queues.URL)
	if len(got) != 1 || aws.ToString(got[0].Body) != `{"old":0}` || attr(got[0], sqs.AttrOriginalSentAt) != oneDay {
		t.Errorf("the queue holds %+v, want the 1-day-old replay carrying its first send %s", got, oneDay)
	}
}

// TestRedriveDeletesOnlyWhatWasSent: when the send fails, every message
// stays in the dead-letter queue and is visible again.
func TestRedriveDeletesOnlyWhatWasSent(t *testing.T) {
	skipShort(t)
	s := newStack(t, emulator.UniqueName(t, "q"))
	s.deadLetter(t, deadLetter("m-1", "", `{"n":1}`), deadLetter("m-2", "", `{"n":2}`))
	r := s.redrive(sqs.Redrive{})
	r.QueueURL = strings.TrimSuffix(s.queues.URL, path.Base(s.queues.URL)) + "no-such-queue"
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Redriven) != 0 || len(rep.Failed) != 2 {
		t.Fatalf("report %+v, want both failed", rep)
	}
	for _, f := range rep.Failed {
		if f.Sent || !strings.HasPrefix(f.Error, "send: ") {
			t.Errorf("failure %+v, want a send failure", f)
		}
	}
	if n := len(s.listed(t)); n != 2 {
		t.Errorf("%d messages visible in the dead-letter queue, want both", n)
	}
}

// TestRedriveSelectsByIDAndReason: only the selected messages move; IDs
// not in the dead-letter queue are reported.
func TestRedriveSelectsByIDAndReason(t *testing.T) {
	skipShort(t)
	s := newStack(t, emulator.UniqueName(t, "q"))
	ctx := context.Background()
	limit := deadLetter("m-limit", "", `{"r":"limit"}`)
	limit.Reason = usage.ReasonLimitExceeded
	s.deadLetter(t, deadLetter("m-1", "", `{"r":"missing-1"}`), deadLetter("m-2", "", `{"r":"missing-2"}`), limit)
	s.send(t, s.queues.DeadLetterURL, `{"r":"policy"}`)
	ids := map[string]string{}
	for body, m := range s.listed(t) {
		ids[body] = m.MessageID
	}

	rep, err := s.redrive(sqs.Redrive{IDs: []string{ids[`{"r":"missing-1"}`], ids[`{"r":"limit"}`], "nope"}, Reason: string(usage.ReasonEntitlementNotFound)}).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Redriven) != 1 || rep.Redriven[0].MessageID != ids[`{"r":"missing-1"}`] || len(rep.NotFound) != 1 || rep.NotFound[0] != "nope" {
		t.Errorf("by ID and reason: %+v", rep)
	}
	rep, err = s.redrive(sqs.Redrive{Reason: sqs.ReasonNone}).Run(ctx)
	if err != nil || len(rep.Redriven) != 1 || rep.Redriven[0].MessageID != ids[`{"r":"policy"}`] || rep.Redriven[0].Reason != "" {
		t.Errorf("reason none: %+v, %v", rep, err)
	}
	left := s.listed(t)
	if len(left) != 2 || left[`{"r":"missing-2"}`].MessageID == "" || left[`{"r":"limit"}`].MessageID == "" {
		t.Errorf("left in the dead-letter queue: %+v, want missing-2 and limit", left)
	}
	var bodies []string
	for _, m := range s.receiveAll(t, s.queues.URL) {
		bodies = append(bodies, aws.ToString(m.Body))
	}
	if len(bodies) != 2 {
		t.Errorf("the queue holds %q, want missing-1 and policy", bodies)
	}
}

// TestRedrivenCopiesOfOneEventAreAppliedOnce: dead-lettering is at least
// once, so the dead-letter queue can hold two copies of an event without
// an idempotency key. Redriven, they carry the same original message ID,
// the service's dedup key, and the event is applied once.
func TestRedrivenCopiesOfOneEventAreAppliedOnce(t *testing.T) {
	skipShort(t)
	s := newStack(t, emulator.UniqueName(t, "q"))
	ctx := context.Background()
	letter := deadLetter("orig-1", "", `{"userId":"late","entitlementKey":"seats","amount":1}`)
	s.deadLetter(t, letter, letter)
	if err := dynamodb.PutEntitlement(ctx, s.ddb, s.entitlements, dynamodb.DefaultEntitlementKeys, dynamodb.EntitlementItem{UserID: "late", EntitlementKey: "seats"}); err != nil {
		t.Fatal(err)
	}
	rep, err := s.redrive(sqs.Redrive{}).Run(ctx)
	if err != nil || len(rep.Redriven) != 2 {
		t.Fatalf("redrive: %+v, %v; want both copies redriven", rep, err)
	}

	runCtx, stop := context.WithCancel(ctx)
	w := &sqs.Worker{Client: s.sqs, QueueURL: s.queues.URL, Handler: s.handler(false), Pollers: 1, WaitTime: time.Second}
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	waitUntil(t, "the queue to drain", 30*time.Second, func() bool { return s.depth(t, s.queues.URL) == 0 })
	stop()
	if err := <-done; err != nil {
		t.Fatalf("worker: %v", err)
	}
	if got := s.used(t, "late", "seats"); got.Cmp(usage.MustDecimal("1")) != 0 {
		t.Errorf("used %s after redriving two copies of one event, want 1", got)
	}
}
