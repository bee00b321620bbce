package faultinjection_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/usage"
)

// TestSynchronousAndQueuedTrafficRaceOnOneEntitlement: two worker
// processes drain queued consumes and refunds while two function
// processes under the Runtime Interface Emulator answer synchronous
// consumes and refunds, all on one limited entitlement. The ledger alone
// decides the verdict: used ends at exactly the consumes applied minus
// what refunds gave back, never above the limit; no consume is refunded
// beyond its amount; every synchronous APPLIED is in the ledger.
func TestSynchronousAndQueuedTrafficRaceOnOneEntitlement(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the emulators")
	}
	w := newWorld(t)
	ctx := context.Background()
	scope := usage.Scope{UserID: "racer", EntitlementKey: "AI_TUTOR_ACCESS"}
	limit := usage.MustDecimal("150")
	if err := dynamodb.PutEntitlement(ctx, w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys,
		dynamodb.EntitlementItem{UserID: scope.UserID, EntitlementKey: scope.EntitlementKey, Limit: &limit}); err != nil {
		t.Fatal(err)
	}

	// Queued: 160 consumes of 1 to 3, then refunds of 40 of them (which
	// may overtake their consume: they wait at most 10 s).
	rng := rand.New(rand.NewPCG(7, 11))
	var bodies []string
	for i := range 160 {
		bodies = append(bodies, fmt.Sprintf(`{"userId":%q,"entitlementKey":%q,"amount":%d,"idempotencyKey":"q-%d"}`, scope.UserID, scope.EntitlementKey, 1+i%3, i))
	}
	for i := range 40 {
		bodies = append(bodies, fmt.Sprintf(`{"operation":"refund","userId":%q,"entitlementKey":%q,"refundOf":"q-%d","amount":1,"idempotencyKey":"qr-%d"}`,
			scope.UserID, scope.EntitlementKey, rng.IntN(160), i))
	}
	var msgs []message
	for _, b := range bodies {
		msgs = append(msgs, message{body: b})
	}

	bin := buildWorker(t)
	env := append(w.workerEnv(emulator.DynamoDB(t)), "REFUND_TARGET_WAIT=10s")
	workers := []*workerProcess{startWorker(t, bin, env), startWorker(t, bin, env)}
	w.send(t, msgs)

	// Synchronous: two function processes, one caller each (an emulator
	// serves one invocation at a time), consuming and refunding.
	bootstrap := emulator.LambdaBootstrap(t)
	type answer struct {
		key string
		a   decision.Answer
	}
	var mu sync.Mutex
	var answers []answer
	var wg sync.WaitGroup
	for g := range 2 {
		fn, err := emulator.StartLambda(ctx, bootstrap, []string{"ENTITLEMENTS_TABLE=" + w.entitlements, "USAGE_LEDGER_TABLE=" + w.ledger, "LOG_LEVEL=WARN"})
		if err != nil {
			t.Fatal(err)
		}
		defer fn.Stop()
		client := awslambda.NewFromConfig(emulator.Stack(t), func(o *awslambda.Options) {
			o.BaseEndpoint, o.Retryer = aws.String(fn.Endpoint), aws.NopRetryer{}
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				key := fmt.Sprintf("s-%d-%d", g, i)
				req := fmt.Sprintf(`{"userId":%q,"entitlementKey":%q,"amount":1,"idempotencyKey":%q}`, scope.UserID, scope.EntitlementKey, key)
				if i%4 == 3 { // refund this caller's previous consume
					req = fmt.Sprintf(`{"operation":"refund","userId":%q,"entitlementKey":%q,"refundOf":"s-%d-%d","idempotencyKey":%q}`, scope.UserID, scope.EntitlementKey, g, i-1, key)
				}
				out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("function"), Payload: []byte(req)})
				if err != nil || out.FunctionError != nil {
					t.Errorf("%s: %v %s", key, err, out.Payload)
					return
				}
				var a decision.Answer
				if err := json.Unmarshal(out.Payload, &a); err != nil || a.Status == "" {
					t.Errorf("%s: answer %s: %v", key, out.Payload, err)
					return
				}
				mu.Lock()
				answers = append(answers, answer{key, a})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	w.waitDrained(t, allAlive(workers))
	stopAll(t, workers)

	ledger, err := dynamodb.ListLedger(ctx, w.ddb, w.ledger, scope)
	if err != nil {
		t.Fatal(err)
	}
	entries := map[string]usage.LedgerEntry{}
	consumed, refunded := usage.Decimal{}, usage.Decimal{}
	refundsOf := map[string]usage.Decimal{}
	for _, e := range ledger {
		entries[e.DedupKey] = e
		if e.Operation == usage.OperationRefund {
			refunded = refunded.Add(e.Amount)
			refundsOf[e.RefundOf] = refundsOf[e.RefundOf].Add(e.Amount)
		} else {
			consumed = consumed.Add(e.Amount)
		}
	}
	ents, err := dynamodb.ListEntitlements(ctx, w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys, scope.UserID, scope.EntitlementKey)
	if err != nil || len(ents) != 1 {
		t.Fatal(ents, err)
	}
	used := ents[0].Used
	if want := consumed.Sub(refunded); used.Cmp(want) != 0 {
		t.Errorf("used %s, but the ledger says consumed %s - refunded %s = %s", used, consumed, refunded, want)
	}
	if used.Cmp(limit) > 0 {
		t.Errorf("used %s is above the limit %s", used, limit)
	}
	for key, e := range entries {
		if e.Operation != usage.OperationRefund && e.Refunded.Cmp(refundsOf[key]) != 0 {
			t.Errorf("consume %s records refunded %s, its refunds add up to %s", key, e.Refunded, refundsOf[key])
		}
		if e.Refunded.Cmp(e.Amount) > 0 {
			t.Errorf("consume %s of %s was refunded %s", key, e.Amount, e.Refunded)
		}
	}
	statuses := map[string]int{}
	for _, a := range answers {
		statuses[string(a.a.Status)+" "+string(a.a.Reason)]++
		if _, ok := entries[a.key]; (a.a.Status == decision.Applied) != ok {
			t.Errorf("%s answered %s %s, ledger entry present: %v", a.key, a.a.Status, a.a.Reason, ok)
		}
	}
	syncRefunds := 0
	for _, e := range ledger {
		if e.Operation == usage.OperationRefund && e.DedupKey[0] == 's' {
			syncRefunds++
		}
	}
	if statuses["REJECTED LIMIT_EXCEEDED"] == 0 || syncRefunds == 0 || refunded.Cmp(usage.MustDecimal(fmt.Sprint(syncRefunds))) <= 0 {
		t.Errorf("the race exercised too little: answers %v, %d synchronous refunds, refunded %s in all", statuses, syncRefunds, refunded)
	}
	t.Logf("used %s = consumed %s - refunded %s; %d ledger entries; synchronous answers %v", used, consumed, refunded, len(ledger), statuses)
}
