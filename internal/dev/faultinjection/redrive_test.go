package faultinjection_test

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/sqs"
	"github.com/usage-event-service/usage-event-service/usage"
)

// TestRedriveOfARepeatedDeadLetterAppliesItOnce follows the runbook
// (docs/operations.md, "Replaying dead letters") after a crash.
// Dead-lettering is at least once: a worker killed between sending a
// rejected message to the DLQ and deleting it from the main queue
// dead-letters it again on redelivery, so the DLQ holds two copies with
// the same usage.originalMessageId (TestExactlyOnceAcrossWorkerCrashes
// sees a few in most runs). Once the cause is fixed, "usagectl dlq
// redrive --all" must not turn those two copies of one event into two
// applications. Events without an idempotencyKey are deduplicated by
// message ID, and every redriven copy gets a new one: redrive therefore
// carries the first delivery's ID (usage.originalMessageId), which the
// service keeps as the dedup key.
func TestRedriveOfARepeatedDeadLetterAppliesItOnce(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()

	// The event: no idempotencyKey, for an entitlement not provisioned yet.
	event := pipeline.DeadLetter{
		Message:    pipeline.Message{ID: "3f0c1b9e-original", Body: `{"userId":"late-user","entitlementKey":"SEATS","amount":1}`, ReceiveCount: 1},
		Reason:     usage.ReasonEntitlementNotFound,
		Detail:     "ENTITLEMENT_NOT_FOUND: no entitlement SEATS for user late-user",
		RejectedAt: time.Now().UTC(),
	}
	// Dead-lettered, not deleted (the worker was killed), redelivered and
	// dead-lettered again: exactly what the service's sender does each time.
	dlq := sqs.DeadLetterQueue{Client: w.sqs, QueueURL: w.queues.DeadLetterURL}
	for range 2 {
		if errs := dlq.SendDeadLetters(ctx, []pipeline.DeadLetter{event}); errs[0] != nil {
			t.Fatal(errs[0])
		}
	}

	// The runbook: fix the cause, then redrive.
	started := time.Now()
	w.provision(t, []entitlement{{scope: usage.Scope{UserID: "late-user", EntitlementKey: "SEATS"}}}, started)
	redrive := exec.Command(emulator.Binary(t, "./cmd/usagectl"), "dlq", "redrive", "--all")
	redrive.Env = w.workerEnv(emulator.DynamoDB(t))
	if out, err := redrive.CombinedOutput(); err != nil {
		t.Fatalf("usagectl dlq redrive --all: %v\n%s", err, out)
	}
	worker := startWorker(t, buildWorker(t), w.workerEnv(emulator.DynamoDB(t)))
	w.waitDrained(t, worker.alive)
	worker.stop(t)

	got, err := dynamodb.ListEntitlements(ctx, w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys, "late-user", "SEATS")
	if err != nil || len(got) != 1 {
		t.Fatalf("entitlement: %v %v", got, err)
	}
	ledger, err := dynamodb.ListLedger(ctx, w.ddb, w.ledger, usage.Scope{UserID: "late-user", EntitlementKey: "SEATS"})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Used.Cmp(usage.MustDecimal("1")) != 0 || len(ledger) != 1 {
		t.Errorf("one event of amount 1, dead-lettered twice and redriven: used %s, %d ledger entries; want used 1, one entry", got[0].Used, len(ledger))
	}
}
