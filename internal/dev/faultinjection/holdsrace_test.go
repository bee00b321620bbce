package faultinjection_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/usage"
)

// TestAMixedRaceOfEveryOperation: on one limited entitlement, two
// functions under the RIE take synchronous reserves, consumes and
// releases; two worker processes take queued consumes, refunds, commits
// and releases and sweep expired holds every second. At the end, from
// the ledger alone: used = consumes - refunds + committed actuals +
// active holds (one period), never above the limit.
func TestAMixedRaceOfEveryOperation(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	scope := usage.Scope{UserID: "mixed", EntitlementKey: "AI_TUTOR_ACCESS"}
	limit := usage.MustDecimal("200")
	if err := dynamodb.PutEntitlement(ctx, w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys,
		dynamodb.EntitlementItem{UserID: scope.UserID, EntitlementKey: scope.EntitlementKey, Limit: &limit}); err != nil {
		t.Fatal(err)
	}
	bin := buildWorker(t)
	env := append(w.workerEnv(emulator.DynamoDB(t)), "REFUND_TARGET_WAIT=5s", "HOLD_SWEEP_INTERVAL=1s")
	workers := []*workerProcess{startWorker(t, bin, env), startWorker(t, bin, env)}
	body := func(format string, args ...any) string {
		return fmt.Sprintf(`{"userId":%q,"entitlementKey":%q,`, scope.UserID, scope.EntitlementKey) + fmt.Sprintf(format, args...) + "}"
	}

	// Queued: consumes, and refunds of some of them.
	var queued []message
	for i := range 80 {
		queued = append(queued, message{body: body(`"amount":%d,"idempotencyKey":"q-%d"`, 1+i%2, i)})
	}
	for i := range 20 {
		queued = append(queued, message{body: body(`"operation":"refund","refundOf":"q-%d","amount":1,"idempotencyKey":"qr-%d"`, i*4, i)})
	}
	w.send(t, queued)

	bootstrap := emulator.LambdaBootstrap(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var settlements []message
	for g := range 2 {
		fn, err := emulator.StartLambda(ctx, bootstrap, []string{"ENTITLEMENTS_TABLE=" + w.entitlements, "USAGE_LEDGER_TABLE=" + w.ledger, "LOG_LEVEL=WARN"})
		if err != nil {
			t.Fatal(err)
		}
		defer fn.Stop()
		client := awslambda.NewFromConfig(emulator.Stack(t), func(o *awslambda.Options) { o.BaseEndpoint, o.Retryer = aws.String(fn.Endpoint), aws.NopRetryer{} })
		invoke := func(req string) decision.Answer {
			out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("function"), Payload: []byte(req)})
			var a decision.Answer
			if err != nil || out.FunctionError != nil || json.Unmarshal(out.Payload, &a) != nil {
				t.Errorf("%s: %v %s", req, err, out.Payload)
			}
			return a
		}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for i := range 40 {
				hold := fmt.Sprintf("h-%d-%d", g, i)
				a := invoke(body(`"operation":"reserve","amount":3,"idempotencyKey":%q,"holdSeconds":%d`, hold, 1+rng.IntN(3)))
				if i%5 == 4 {
					invoke(body(`"amount":1,"idempotencyKey":"s-%d-%d"`, g, i))
				}
				if a.Status != decision.Applied {
					continue
				}
				switch rng.IntN(4) {
				case 0: // released at once, synchronously
					invoke(body(`"operation":"release","holdId":%q`, hold))
				case 1, 2: // committed from the queue, perhaps after it expired
					mu.Lock()
					settlements = append(settlements, message{body: body(`"operation":"commit","holdId":%q,"amount":%d`, hold, rng.IntN(4))})
					mu.Unlock()
				} // else: left to the sweeper
			}
		})
	}
	wg.Wait()
	w.send(t, settlements)
	time.Sleep(4 * time.Second) // every hold expired; the sweepers release the unsettled ones
	w.waitDrained(t, allAlive(workers))
	deadline := time.Now().Add(time.Minute)
	for w.holdStates(t, scope)[usage.HoldActive] > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("holds still active a minute after expiring: %v", w.holdStates(t, scope))
		}
		time.Sleep(200 * time.Millisecond)
	}
	stopAll(t, workers)

	ledger, err := dynamodb.ListLedger(ctx, w.ddb, w.ledger, scope)
	if err != nil {
		t.Fatal(err)
	}
	var consumed, refunded, committed, active usage.Decimal
	states := map[string]int{}
	for _, e := range ledger {
		switch e.Operation {
		case usage.OperationRefund:
			refunded = refunded.Add(e.Amount)
		case usage.OperationReserve:
			states[e.HoldState]++
			switch e.HoldState {
			case usage.HoldActive:
				active = active.Add(e.Amount)
			case usage.HoldCommitted:
				committed = committed.Add(*e.Actual)
			}
		default:
			consumed = consumed.Add(e.Amount)
		}
	}
	used := w.used(t, scope)
	want := consumed.Sub(refunded).Add(committed).Add(active)
	if used.Cmp(want) != 0 {
		t.Errorf("used %s; consumed %s - refunded %s + committed %s + active %s = %s", used, consumed, refunded, committed, active, want)
	}
	if used.Cmp(limit) > 0 {
		t.Errorf("used %s above the limit %s", used, limit)
	}
	if states[usage.HoldCommitted] == 0 || states[usage.HoldReleased] == 0 || states[usage.HoldExpired] == 0 || refunded.IsZero() {
		t.Errorf("the race exercised too little: holds %v, refunded %s", states, refunded)
	}
	t.Logf("used %s = consumed %s - refunded %s + committed %s + active %s; holds %v", used, consumed, refunded, committed, active, states)
}
