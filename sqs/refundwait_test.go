package sqs_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/sqs"
	"github.com/usage-event-service/usage-event-service/usage"
)

// TestAQueuedRefundWaitsForItsConsume, against the SQS emulator: the
// queue allows 3 receives with a 2 s visibility timeout, and a refund
// waits up to 6 s for its consume. Its redeliveries are stretched, so it
// is still on the queue when the wait ends and is dead-lettered by the
// service with its reason (on the visibility timeout alone, SQS would
// have moved it after its third receive, without one). A refund whose
// consume arrives while it waits applies.
func TestAQueuedRefundWaitsForItsConsume(t *testing.T) {
	s := newStack(t, emulator.UniqueName(t, "q"))
	ctx := context.Background()
	dynamodb.PutEntitlement(ctx, s.ddb, s.entitlements, dynamodb.DefaultEntitlementKeys, dynamodb.EntitlementItem{UserID: "u", EntitlementKey: "k", Limit: dp("10")})
	const wait = 6 * time.Second
	store := metering.Writer{Store: dynamodb.NewStore(s.ddb, dynamodb.Config{EntitlementsTable: s.entitlements, LedgerTable: s.ledger})}
	p := &metering.Processor{Store: store, TargetWait: wait}
	h := pipeline.New(p.Handle, pipeline.Options{
		DeadLetters: sqs.DeadLetterQueue{Client: s.sqs, QueueURL: s.queues.DeadLetterURL},
		Visibility:  sqs.Visibility{Client: s.sqs, QueueURL: s.queues.URL},
	})
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	w := &sqs.Worker{Client: s.sqs, QueueURL: s.queues.URL, Handler: h, Pollers: 1, WaitTime: time.Second}
	go w.Run(runCtx)

	start := time.Now()
	s.send(t, s.queues.URL,
		`{"operation":"refund","userId":"u","entitlementKey":"k","refundOf":"never","idempotencyKey":"r-never"}`,
		`{"operation":"refund","userId":"u","entitlementKey":"k","refundOf":"c-1","amount":2,"idempotencyKey":"r-1"}`)
	time.Sleep(time.Second)
	s.send(t, s.queues.URL, `{"userId":"u","entitlementKey":"k","amount":5,"idempotencyKey":"c-1"}`)

	waitUntil(t, "the refund to apply", 20*time.Second, func() bool { return s.used(t, "u", "k").Cmp(usage.MustDecimal("3")) == 0 })
	var reason, receives string
	waitUntil(t, "the unmatched refund to be dead-lettered", 30*time.Second, func() bool {
		out, err := s.sqs.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(s.queues.DeadLetterURL), MessageAttributeNames: []string{"All"}, WaitTimeSeconds: 1})
		if err != nil || len(out.Messages) == 0 {
			return false
		}
		m := out.Messages[0]
		reason, receives = aws.ToString(m.MessageAttributes[sqs.AttrReason].StringValue), aws.ToString(m.MessageAttributes[sqs.AttrReceiveCount].StringValue)
		return true
	})
	if reason != string(usage.ReasonRefundTargetNotFound) {
		t.Errorf("dead letter's reason %q (receive %s), want %s: its redeliveries were not stretched", reason, receives, usage.ReasonRefundTargetNotFound)
	}
	if took := time.Since(start); took < wait {
		t.Errorf("dead-lettered after %v, before the %v wait ended", took, wait)
	}
	t.Logf("dead-lettered on receive %s", receives)
}
