package sqs_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/sqs"
	"github.com/usage-event-service/usage-event-service/usage"
)

func TestMain(m *testing.M) { emulator.Main(m) }

type stack struct {
	ddb          *awsdynamodb.Client
	sqs          *awssqs.Client
	entitlements string
	ledger       string
	queues       sqs.Queues
}

func newStack(t *testing.T, queueName string) *stack {
	t.Helper()
	cfg := emulator.Stack(t)
	ctx := context.Background()
	var err error
	s := &stack{ddb: awsdynamodb.NewFromConfig(cfg), sqs: awssqs.NewFromConfig(cfg),
		entitlements: emulator.UniqueName(t, "ent"), ledger: emulator.UniqueName(t, "ledger")}
	if _, err := dynamodb.CreateEntitlementsTable(ctx, s.ddb, s.entitlements, dynamodb.DefaultEntitlementKeys); err != nil {
		t.Fatal(err)
	}
	if _, err := dynamodb.CreateLedgerTable(ctx, s.ddb, s.ledger); err != nil {
		t.Fatal(err)
	}
	if s.queues, err = sqs.CreateQueues(ctx, s.sqs, queueName, 3, 2); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *stack) handler(deadLetters bool) pipeline.Handler {
	store := metering.Writer{Store: dynamodb.NewStore(s.ddb, dynamodb.Config{EntitlementsTable: s.entitlements, LedgerTable: s.ledger})}
	p := &metering.Processor{Store: store}
	var opts pipeline.Options
	if deadLetters {
		opts.DeadLetters = sqs.DeadLetterQueue{Client: s.sqs, QueueURL: s.queues.DeadLetterURL}
	}
	return pipeline.New(p.Handle, opts)
}

func (s *stack) send(t *testing.T, url string, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		in := &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(b)}
		if _, err := s.sqs.SendMessage(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
}

func (s *stack) depth(t *testing.T, url string) int {
	t.Helper()
	out, err := s.sqs.GetQueueAttributes(context.Background(), &awssqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)])
	b, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return a + b
}

func (s *stack) used(t *testing.T, user, key string) usage.Decimal {
	t.Helper()
	ents, err := dynamodb.ListEntitlements(context.Background(), s.ddb, s.entitlements, dynamodb.DefaultEntitlementKeys, user, key)
	if err != nil || len(ents) != 1 {
		t.Fatalf("entitlement %s/%s: %v %v", user, key, ents, err)
	}
	return ents[0].Used
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func dp(s string) *usage.Decimal {
	d := usage.MustDecimal(s)
	return &d
}

// TestWorkerDrainsTheQueueExactly: several pollers on one hot entitlement,
// redeliveries included; used ends at exactly the applied total.
func TestWorkerDrainsTheQueueExactly(t *testing.T) {
	s := newStack(t, emulator.UniqueName(t, "q"))
	ctx := context.Background()
	dynamodb.PutEntitlement(ctx, s.ddb, s.entitlements, dynamodb.DefaultEntitlementKeys, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("1000")})
	dynamodb.PutEntitlement(ctx, s.ddb, s.entitlements, dynamodb.DefaultEntitlementKeys, dynamodb.EntitlementItem{UserID: "v", EntitlementKey: "k"})
	var bodies []string
	for i := range 200 {
		user := []string{"u", "v"}[i%2]
		// Every fifth event is sent twice with the same idempotency key.
		body := fmt.Sprintf(`{"userId":%q,"entitlementKey":"k","amount":2,"idempotencyKey":"e-%d"}`, user, i)
		bodies = append(bodies, body)
		if i%5 == 0 {
			bodies = append(bodies, body)
		}
	}
	s.send(t, s.queues.URL, bodies...)

	runCtx, stop := context.WithCancel(ctx)
	w := &sqs.Worker{Client: s.sqs, QueueURL: s.queues.URL, Handler: s.handler(false), Pollers: 4, WaitTime: time.Second}
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	waitUntil(t, "the queue to drain", 60*time.Second, func() bool { return s.depth(t, s.queues.URL) == 0 })
	stop()
	if err := <-done; err != nil {
		t.Fatalf("worker: %v", err)
	}
	if got := s.used(t, "u", "k"); got.Cmp(usage.MustDecimal("200")) != 0 {
		t.Errorf("u used %s, want 200", got)
	}
	if got := s.used(t, "v", "k"); got.Cmp(usage.MustDecimal("200")) != 0 {
		t.Errorf("v used %s, want 200", got)
	}
}

// TestRejectedMessagesAreDeadLetteredWithTheirReason: with a dead-letter
// queue configured, a rejection leaves the main queue at once and arrives
// in the DLQ with the body unchanged and its reason as attributes.
func TestRejectedMessagesAreDeadLetteredWithTheirReason(t *testing.T) {
	s := newStack(t, emulator.UniqueName(t, "q"))
	ctx := context.Background()
	dynamodb.PutEntitlement(ctx, s.ddb, s.entitlements, dynamodb.DefaultEntitlementKeys, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("1"), Used: dp("1")})
	bodies := map[string]usage.Reason{
		`{"userId":"u","entitlementKey":"k","amount":1}`:   usage.ReasonLimitExceeded,
		`{"userId":"u","entitlementKey":"nope"}`:           usage.ReasonEntitlementNotFound,
		`{"userId":"u","entitlementKey":"k","amount":"1"}`: usage.ReasonInvalidAmount,
		`not json`: usage.ReasonInvalidJSON,
	}
	for b := range bodies {
		s.send(t, s.queues.URL, b)
	}
	runCtx, stop := context.WithCancel(ctx)
	w := &sqs.Worker{Client: s.sqs, QueueURL: s.queues.URL, Handler: s.handler(true), Pollers: 1, WaitTime: time.Second}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.Run(runCtx) }()
	waitUntil(t, "the main queue to drain", 30*time.Second, func() bool { return s.depth(t, s.queues.URL) == 0 })
	stop()
	wg.Wait()

	got := map[string]usage.Reason{}
	for len(got) < len(bodies) {
		out, err := s.sqs.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
			QueueUrl: aws.String(s.queues.DeadLetterURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 2,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			got[aws.ToString(m.Body)] = usage.Reason(aws.ToString(m.MessageAttributes[sqs.AttrReason].StringValue))
			for _, a := range []string{sqs.AttrReasonMessage, sqs.AttrOriginalMessageID, sqs.AttrReceiveCount, sqs.AttrRejectedAt} {
				if aws.ToString(m.MessageAttributes[a].StringValue) == "" {
					t.Errorf("dead letter %s lacks attribute %s", aws.ToString(m.Body), a)
				}
			}
		}
	}
	for b, want := range bodies {
		if got[b] != want {
			t.Errorf("%s: dead-lettered with reason %q, want %q", b, got[b], want)
		}
	}
	if got := s.used(t, "u", "k"); got.Cmp(usage.MustDecimal("1")) != 0 {
		t.Errorf("used changed to %s", got)
	}
}

// TestWithoutADeadLetterQueueRejectionsStayForTheRedrivePolicy: the
// seed's behaviour: rejected messages are not deleted, so SQS redelivers
// them and its redrive policy moves them after maxReceiveCount.
func TestWithoutADeadLetterQueueRejectionsStayForTheRedrivePolicy(t *testing.T) {
	s := newStack(t, emulator.UniqueName(t, "q"))
	s.send(t, s.queues.URL, `{"userId":"u","entitlementKey":"missing"}`)
	runCtx, stop := context.WithCancel(context.Background())
	w := &sqs.Worker{Client: s.sqs, QueueURL: s.queues.URL, Handler: s.handler(false), Pollers: 1, WaitTime: time.Second}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.Run(runCtx) }()
	// maxReceiveCount is 3 and the visibility timeout 2 s.
	waitUntil(t, "the redrive policy to move the message", 40*time.Second, func() bool { return s.depth(t, s.queues.DeadLetterURL) == 1 })
	stop()
	wg.Wait()
	if d := s.depth(t, s.queues.URL); d != 0 {
		t.Errorf("main queue still holds %d", d)
	}
}

// countingStore counts Store.Update calls (each is one transaction per
// 50 records, when nothing conflicts).
type countingStore struct {
	inner metering.Updater
	mu    sync.Mutex
	calls int
}

func (s *countingStore) Update(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	return s.inner.Update(ctx, scope, records, decide)
}

// TestWorkerCoalescesAcrossReceives: against the emulators, 40 events of
// one entitlement arrive in receives of at most 10; with a window they
// are decided in fewer Store.Update calls than there were receives, and
// exactly: the limit holds, the applied total is what one by one gives.
func TestWorkerCoalescesAcrossReceives(t *testing.T) {
	s := newStack(t, emulator.UniqueName(t, "q"))
	ctx := context.Background()
	dynamodb.PutEntitlement(ctx, s.ddb, s.entitlements, dynamodb.DefaultEntitlementKeys, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("30")})
	var bodies []string
	for i := range 40 {
		bodies = append(bodies, fmt.Sprintf(`{"userId":"u","entitlementKey":"k","amount":1,"idempotencyKey":"e-%d"}`, i))
	}
	s.send(t, s.queues.URL, bodies...)
	store := &countingStore{inner: metering.Writer{Store: dynamodb.NewStore(s.ddb, dynamodb.Config{EntitlementsTable: s.entitlements, LedgerTable: s.ledger})}}
	p := &metering.Processor{Store: store}
	h := pipeline.New(p.Handle, pipeline.Options{DeadLetters: sqs.DeadLetterQueue{Client: s.sqs, QueueURL: s.queues.DeadLetterURL}})
	runCtx, stop := context.WithCancel(ctx)
	w := &sqs.Worker{Client: s.sqs, QueueURL: s.queues.URL, Handler: h, Pollers: 4, WaitTime: time.Second, CoalesceWindow: time.Second}
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	waitUntil(t, "the queue to drain", 60*time.Second, func() bool { return s.depth(t, s.queues.URL) == 0 })
	stop()
	if err := <-done; err != nil {
		t.Fatalf("worker: %v", err)
	}
	if got := s.used(t, "u", "k"); got.Cmp(usage.MustDecimal("30")) != 0 {
		t.Errorf("used %s, want the limit, 30", got)
	}
	if d := s.depth(t, s.queues.DeadLetterURL); d != 10 {
		t.Errorf("%d dead letters, want the 10 over the limit", d)
	}
	if store.calls >= 4 {
		t.Errorf("%d Store.Update calls for 40 events in receives of at most 10: nothing was coalesced across receives", store.calls)
	}
}
