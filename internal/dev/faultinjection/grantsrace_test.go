package faultinjection_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/usage"
)

const grantsRaceSeed = 20261205

// grantsRaceRefundWait is the workers' REFUND_TARGET_WAIT: a queued
// refund whose consume is not (yet) in the ledger is retried until it is
// that old, then rejected REFUND_TARGET_NOT_FOUND.
const grantsRaceRefundWait = 6 * time.Second

// TestGrantsAndOverageRaceOnOneEntitlementWhileWorkersAreKilled: one
// limited entitlement with an overage limit and five grants of different
// priorities and expiries (two granted from the queue, three
// synchronously; one voided mid-run, one expiring mid-run). Two worker
// processes drain queued consumes and refunds (and the two grants) while
// two function processes under the Runtime Interface Emulator answer
// synchronous consumes, refunds, grants and the void; each worker is
// killed with SIGKILL once, mid-run, and restarted. The demand is about
// twice what all buckets hold, so every bucket is drawn dry and refilled
// by refunds while the race goes on.
//
// The verdict reads only the ledger, the entitlement item and the
// queues:
//   - every bucket's stored total is exactly its applied draws minus what
//     refunds gave back to it (lapsed give-backs gave nothing): used for
//     the allowance, amount - remaining for each grant (amount - voided
//     for the voided one, whose remaining the void recorded), overageUsed
//     for the overage; each within its bucket, and the sum of all net
//     draws within allowance + grants + overage limit;
//   - every entry's draws add up to its amount; a consume's refunds gave
//     back to the buckets it drew from, the last drawn first, no more than
//     it drew, adding up to its refunded (never above its amount);
//   - every ledger entry is an event that was sent, with its amount, once;
//   - every queued message is applied, or dead-lettered with a reason it
//     deserves, or both where one delivery was rejected for the moment
//     (LIMIT_EXCEEDED, REFUND_TARGET_NOT_FOUND) and another applied it:
//     dead-lettering is at least once; nothing is left on the queue;
//   - every synchronous APPLIED is in the ledger with the draws (or
//     give-backs) it answered, and nothing answered otherwise is.
func TestGrantsAndOverageRaceOnOneEntitlementWhileWorkersAreKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the emulators")
	}
	const kills = 2
	began := time.Now()
	w := newWorld(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(grantsRaceSeed, 3))
	scope := usage.Scope{UserID: "granted", EntitlementKey: "AI_TUTOR_ACCESS"}
	limit, overageLimit := usage.MustDecimal("60"), usage.MustDecimal("15")
	if err := dynamodb.PutEntitlement(ctx, w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys, dynamodb.EntitlementItem{
		UserID: scope.UserID, EntitlementKey: scope.EntitlementKey, Limit: &limit,
		Extra: map[string]ddbtypes.AttributeValue{usage.AttrOverageLimit: &ddbtypes.AttributeValueMemberN{Value: overageLimit.String()}},
	}); err != nil {
		t.Fatal(err)
	}
	body := func(format string, args ...any) string {
		return fmt.Sprintf(`{"userId":%q,"entitlementKey":%q,`, scope.UserID, scope.EntitlementKey) + fmt.Sprintf(format, args...) + "}"
	}
	in := func(d time.Duration) string { return usage.FormatInstant(time.Now().Add(d).UTC()) }

	// What was sent, by dedup key: the verdict accepts no other entry.
	sent := map[string]sentEvent{}

	// Queued: two grants among the first messages, consumes of 1 to 3,
	// and refunds: of 1, or of all that remains (each such target once).
	var queued []message
	var queuedEvents []sentEvent
	addQueued := func(e sentEvent) {
		queued = append(queued, message{body: e.body})
		queuedEvents = append(queuedEvents, e)
		sent[e.key] = e
	}
	for i := range 200 {
		amount := 1 + rng.IntN(3)
		addQueued(sentEvent{key: fmt.Sprintf("q-%d", i), op: usage.OperationConsume, amount: usage.DecimalFromInt(int64(amount)),
			body: body(`"amount":%d,"idempotencyKey":"q-%d"`, amount, i)})
	}
	wholeTargets := rng.Perm(200)
	for i := range 50 {
		r := sentEvent{key: fmt.Sprintf("qr-%d", i), op: usage.OperationRefund}
		if i%2 == 0 {
			r.refundOf, r.amount = fmt.Sprintf("q-%d", rng.IntN(200)), usage.DecimalFromInt(1)
			r.body = body(`"operation":"refund","refundOf":%q,"amount":1,"idempotencyKey":%q`, r.refundOf, r.key)
		} else {
			r.refundOf, r.whole = fmt.Sprintf("q-%d", wholeTargets[i]), true
			r.body = body(`"operation":"refund","refundOf":%q,"idempotencyKey":%q`, r.refundOf, r.key)
		}
		addQueued(r)
	}
	rng.Shuffle(len(queued), func(i, j int) {
		queued[i], queued[j] = queued[j], queued[i]
		queuedEvents[i], queuedEvents[j] = queuedEvents[j], queuedEvents[i]
	})
	for i, g := range []sentEvent{
		{key: "qa", op: usage.OperationGrant, amount: usage.MustDecimal("20"), body: body(`"operation":"grant","grantId":"qa","amount":20,"priority":50,"expiresAt":%q`, in(2*time.Hour))},
		{key: "qb", op: usage.OperationGrant, amount: usage.MustDecimal("15"), body: body(`"operation":"grant","grantId":"qb","amount":15`)},
	} {
		sent[g.key] = g
		at := 5 + 10*i
		queued = slices.Insert(queued, at, message{body: g.body})
		queuedEvents = slices.Insert(queuedEvents, at, g)
	}

	// Synchronous: two function processes, one caller each.
	bootstrap := emulator.LambdaBootstrap(t)
	var clients []*awslambda.Client
	for range 2 {
		fn, err := emulator.StartLambda(ctx, bootstrap, []string{"ENTITLEMENTS_TABLE=" + w.entitlements, "USAGE_LEDGER_TABLE=" + w.ledger, "LOG_LEVEL=WARN"})
		if err != nil {
			t.Fatal(err)
		}
		defer fn.Stop()
		clients = append(clients, awslambda.NewFromConfig(emulator.Stack(t), func(o *awslambda.Options) {
			o.BaseEndpoint, o.Retryer = aws.String(fn.Endpoint), aws.NopRetryer{}
		}))
	}
	bin := buildWorker(t)
	env := append(w.workerEnv(emulator.DynamoDB(t)), "REFUND_TARGET_WAIT="+grantsRaceRefundWait.String())
	workers := []*workerProcess{startWorker(t, bin, env), startWorker(t, bin, env)}
	runs := slices.Clone(workers)

	var mu sync.Mutex
	var answers []syncAnswer
	var voidAnswer *decision.Answer
	// invoke asks synchronously; a RETRY answer (contention outlasted the
	// function's attempts) is asked again, as a caller would, a few
	// times: the last answer is the one recorded.
	invoke := func(client *awslambda.Client, e sentEvent) (decision.Answer, bool) {
		var a decision.Answer
		for attempt := 0; attempt == 0 || a.Status == decision.Retry && attempt < 5; attempt++ {
			if attempt > 0 {
				time.Sleep(100 * time.Millisecond)
			}
			out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("function"), Payload: []byte(e.body)})
			a = decision.Answer{}
			if err != nil || out.FunctionError != nil || json.Unmarshal(out.Payload, &a) != nil || a.Status == "" {
				var payload []byte
				if out != nil {
					payload = out.Payload
				}
				t.Errorf("%s: %v %s", e.key, err, payload)
				return a, false
			}
		}
		mu.Lock()
		defer mu.Unlock()
		switch e.op {
		case usage.OperationBalance:
		case usage.OperationVoid:
			voidAnswer = &a
		default:
			sent[e.key] = e
			answers = append(answers, syncAnswer{e, a})
		}
		return a, true
	}
	syncGrant := func(id string, amount, priority int, expires string) sentEvent {
		return sentEvent{key: id, op: usage.OperationGrant, amount: usage.DecimalFromInt(int64(amount)),
			body: body(`"operation":"grant","grantId":%q,"amount":%d,"priority":%d,"expiresAt":%q`, id, amount, priority, expires)}
	}
	// The mid-run void and the grant that expires mid-run come once the
	// queued grants are in and consumes draw from sv, so that they race
	// with the void; nothing adds or removes a
	// grant after them, so the expired grant stays on the item, where its
	// remaining can be read.
	var shortExpires time.Time
	voidAndShortGrant := func(client *awslambda.Client) {
		v := sentEvent{key: "void-sv", op: usage.OperationVoid, body: body(`"operation":"void","grantId":"sv"`)}
		if a, ok := invoke(client, v); !ok || a.Status != decision.Applied {
			t.Errorf("the void of sv answered %s %s: %s", a.Status, a.Reason, a.Message)
		}
		shortExpires = time.Now().Add(4 * time.Second).UTC()
		if a, ok := invoke(client, syncGrant("ss", 10, 0, usage.FormatInstant(shortExpires))); !ok || a.Status != decision.Applied {
			t.Errorf("the grant ss answered %s %s: %s", a.Status, a.Reason, a.Message)
		}
	}
	// ready: the queued grants are in, and consumes have begun to draw
	// from sv (or the caller is half-way through).
	ready := func(a decision.Answer, late bool) bool {
		ids, svDrawn := map[string]bool{}, false
		for _, g := range a.Grants {
			ids[g.GrantID] = true
			svDrawn = svDrawn || g.GrantID == "sv" && string(g.Remaining) != "80"
		}
		return ids["qa"] && ids["qb"] && (late || svDrawn)
	}
	var voidedAt, syncDone time.Duration

	queuedAt := time.Now()
	w.send(t, queued)
	for i := range queued {
		queuedEvents[i].messageID, queuedEvents[i].queuedAt = queued[i].id, queuedAt
	}
	sentAt := time.Now()
	t.Logf("set up in %v (emulators, tables, queues, builds, two functions, two workers)", sentAt.Sub(began).Round(time.Millisecond))

	// Caller 0 also refunds, whole, one of its consumes that drew from sv
	// once sv is voided, and one that drew from ss once ss has expired:
	// those parts lapse (nothing is given back).
	lapses := 0
	refundWhole := func(client *awslambda.Client, key, of string) {
		e := sentEvent{key: key, op: usage.OperationRefund, refundOf: of, whole: true,
			body: body(`"operation":"refund","refundOf":%q,"idempotencyKey":%q`, of, key)}
		if a, ok := invoke(client, e); ok && a.Status != decision.Applied {
			t.Errorf("%s: the refund of %s answered %s %s: %s", key, of, a.Status, a.Reason, a.Message)
		}
		lapses++
	}
	var wg sync.WaitGroup
	for g, client := range clients {
		wg.Go(func() {
			voided := g != 0
			drewFrom := map[string][]string{} // grant -> this caller's consumes that drew from it, not refunded
			afterVoid := func() {
				voidAndShortGrant(client)
				voided, voidedAt = true, time.Since(sentAt)
				if keys := drewFrom["sv"]; len(keys) > 0 {
					refundWhole(client, "s-0-lapse-sv", keys[0])
				}
			}
			if g == 0 {
				for _, e := range []sentEvent{syncGrant("sc", 25, 100, in(time.Hour)), syncGrant("sv", 80, 900, in(3*time.Hour))} {
					if a, ok := invoke(client, e); !ok || a.Status != decision.Applied {
						t.Errorf("the grant %s answered %s %s: %s", e.key, a.Status, a.Reason, a.Message)
					}
				}
			}
			for i := range 50 {
				e := sentEvent{key: fmt.Sprintf("s-%d-%d", g, i), op: usage.OperationConsume, amount: usage.DecimalFromInt(int64(1 + i%2))}
				e.body = body(`"amount":%s,"idempotencyKey":%q`, e.amount, e.key)
				if i%4 == 3 { // refund this caller's previous consume, all of it
					e = sentEvent{key: e.key, op: usage.OperationRefund, refundOf: fmt.Sprintf("s-%d-%d", g, i-1), whole: true}
					e.body = body(`"operation":"refund","refundOf":%q,"idempotencyKey":%q`, e.refundOf, e.key)
				}
				a, ok := invoke(client, e)
				if !ok {
					return
				}
				if e.op == usage.OperationConsume && a.Status == decision.Applied && i%4 != 2 {
					for _, d := range a.Draws {
						if d.Bucket == usage.BucketGrant {
							drewFrom[d.GrantID] = append(drewFrom[d.GrantID], e.key)
						}
					}
				}
				if !voided && ready(a, i >= 25) {
					afterVoid()
				}
			}
			// Not ready yet (the queued grants slow to come): wait for it.
			for deadline := time.Now().Add(time.Minute); !voided; time.Sleep(100 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Errorf("a minute after the synchronous traffic, the queued grants still not seen")
					return
				}
				if a, ok := invoke(client, sentEvent{key: "balance", op: usage.OperationBalance, body: body(`"operation":"balance"`)}); ok && ready(a, true) {
					afterVoid()
				}
			}
			if keys := drewFrom["ss"]; g == 0 && len(keys) > 0 {
				time.Sleep(time.Until(shortExpires.Add(100 * time.Millisecond)))
				refundWhole(client, "s-0-lapse-ss", keys[0])
			}
		})
	}

	// Meanwhile each worker in turn is killed mid-run and restarted: the
	// first once it has finished a batch or two, the other a moment
	// later, while the queue still holds messages (so with batches in
	// flight: a worker has WORKER_POLLERS of them).
	var killedAt []string
	for k := range kills {
		victim := workers[k]
		if k == 0 {
			if !w.waitBatches(t, victim, 1+rng.IntN(2)) {
				break
			}
		} else {
			time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
		visible, inFlight := w.depth(t, w.queues.URL)
		if visible+inFlight == 0 {
			break
		}
		victim.cmd.Process.Kill()
		<-victim.exited
		killedAt = append(killedAt, fmt.Sprintf("worker %d after %d batches, %s into the run (%d messages in flight, %d waiting)",
			k, victim.batches(), time.Since(sentAt).Round(time.Millisecond), inFlight, visible))
		workers[k] = startWorker(t, bin, env)
		runs = append(runs, workers[k])
	}
	wg.Wait()
	syncDone = time.Since(sentAt)
	w.waitDrained(t, allAlive(workers))
	drained := time.Since(sentAt)
	stopAll(t, workers)
	checkNoRaces(t, runs...)
	if len(killedAt) < kills {
		t.Errorf("only %d of %d kills happened before the queue drained: the race ran without a worker killed mid-run", len(killedAt), kills)
	}
	t.Logf("killed with SIGKILL: %s", strings.Join(killedAt, "; "))
	t.Logf("sv voided and ss granted %v after the queued messages were sent, synchronous traffic done after %v, the queue drained after %v",
		voidedAt.Round(time.Millisecond), syncDone.Round(time.Millisecond), drained.Round(time.Millisecond))

	verifying := time.Now()
	v := verifyGrantsRace(t, w, scope, limit, overageLimit, sent, queuedEvents, answers, voidAnswer)
	var service serviceReport
	redeliveries := 0
	for _, r := range runs {
		service.add(r.out.String())
		redeliveries += strings.Count(r.out.String(), `"outcome":"DUPLICATE"`)
	}
	if !shortExpires.IsZero() && time.Now().Before(shortExpires) {
		t.Logf("the grant ss had not expired when the race ended")
	}
	t.Logf("verified in %v: %s", time.Since(verifying).Round(time.Millisecond), v)
	t.Logf("the worker runs reported (killed runs lose their last batches): %+v; %d redeliveries absorbed; run took %v",
		service, redeliveries, time.Since(began).Round(time.Millisecond))
	if v.grantsDrawn < 4 || v.drawn["overage"].IsZero() || v.limitExceeded == 0 || v.givenBackToGrants.IsZero() || lapses > 0 && v.lapsed.IsZero() {
		t.Errorf("the race exercised too little: %d grants drawn from, overage drawn %s, %d LIMIT_EXCEEDED, given back to grants %s, lapsed %s (%d refunds meant to lapse)",
			v.grantsDrawn, v.drawn["overage"], v.limitExceeded, v.givenBackToGrants, v.lapsed, lapses)
	}
}

// sentEvent is one event the test sent, queued or synchronously.
type sentEvent struct {
	key, body string
	op        usage.Operation
	amount    usage.Decimal // a consume's, a grant's, a refund's (unless whole)
	refundOf  string
	whole     bool      // a refund of all that remains
	messageID string    // queued: the SQS message ID
	queuedAt  time.Time // queued: no later than SQS's SentTimestamp
}

type syncAnswer struct {
	e sentEvent
	a decision.Answer
}

// grantsVerdict is what verifyGrantsRace established.
type grantsVerdict struct {
	drawn, back, net  map[string]usage.Decimal // by bucket: "allowance", "overage", "grant:<id>"
	capacity, netSum  usage.Decimal
	lapsed            usage.Decimal
	givenBackToGrants usage.Decimal
	grantsDrawn       int
	limitExceeded     int
	entries           int
	queuedOutcomes    map[string]int
	syncOutcomes      map[string]int
	report            []string
	// rejectedThenApplied are queued events dead-lettered by one
	// delivery, applied by another.
	rejectedThenApplied []string
}

func (v grantsVerdict) String() string {
	var buckets []string
	for _, b := range slices.Sorted(maps.Keys(v.net)) {
		buckets = append(buckets, fmt.Sprintf("%s %s-%s=%s", b, v.drawn[b], v.back[b], v.net[b]))
	}
	return fmt.Sprintf("%d ledger entries; net draws by bucket (drawn-given back): %s; all buckets %s of %s; lapsed give-backs %s; queued %v (dead-lettered by one delivery, applied by another: %v); synchronous %v; %s",
		v.entries, strings.Join(buckets, ", "), v.netSum, v.capacity, v.lapsed, v.queuedOutcomes, v.rejectedThenApplied, v.syncOutcomes, strings.Join(v.report, "; "))
}

// mergeKeys is the union of two maps' keys (with a's values).
func mergeKeys(a, b map[string]usage.Decimal) map[string]usage.Decimal {
	out := map[string]usage.Decimal{}
	for k := range b {
		out[k] = usage.Decimal{}
	}
	for k, x := range a {
		out[k] = x
	}
	return out
}

func bucketOf(d usage.Draw) string {
	if d.Bucket == usage.BucketGrant {
		return "grant:" + d.GrantID
	}
	return string(d.Bucket)
}

func drawsString(ds []usage.Draw) string {
	var s []string
	for _, d := range ds {
		x := bucketOf(d) + "=" + d.Amount.String()
		if d.Lapsed {
			x += "(lapsed)"
		}
		s = append(s, x)
	}
	return strings.Join(s, ",")
}

func answerDrawsString(ds []decision.Draw) string {
	var s []usage.Draw
	for _, d := range ds {
		s = append(s, usage.Draw{Bucket: d.Bucket, GrantID: d.GrantID, Amount: usage.MustDecimal(string(d.Amount)), Lapsed: d.Lapsed})
	}
	return drawsString(s)
}

// beyondAllowanceOnly: draws an answer shows (it leaves out those of the
// allowance alone).
func beyondAllowanceOnly(ds []usage.Draw) bool {
	for _, d := range ds {
		if d.Bucket != usage.BucketAllowance || d.Lapsed {
			return true
		}
	}
	return false
}

// lastDrawnFirst is, by bucket, what giving back amount of draws returns
// to: the last drawn first (the README's rule, written out again here).
func lastDrawnFirst(draws []usage.Draw, amount usage.Decimal) map[string]usage.Decimal {
	out := map[string]usage.Decimal{}
	for i := len(draws) - 1; i >= 0 && amount.Sign() > 0; i-- {
		take := draws[i].Amount
		if take.Cmp(amount) > 0 {
			take = amount
		}
		out[bucketOf(draws[i])] = out[bucketOf(draws[i])].Add(take)
		amount = amount.Sub(take)
	}
	return out
}

// verifyGrantsRace is the verdict of the race from the ledger, the item
// and the queues alone.
func verifyGrantsRace(t *testing.T, w *world, scope usage.Scope, limit, overageLimit usage.Decimal, sent map[string]sentEvent,
	queued []sentEvent, answers []syncAnswer, voidAnswer *decision.Answer) grantsVerdict {
	t.Helper()
	ctx := context.Background()
	v := grantsVerdict{drawn: map[string]usage.Decimal{}, back: map[string]usage.Decimal{}, net: map[string]usage.Decimal{},
		queuedOutcomes: map[string]int{}, syncOutcomes: map[string]int{}}
	if n := w.queued(t); n != 0 {
		t.Errorf("%d messages still on the main queue", n)
	}
	ledger, err := dynamodb.ListLedger(ctx, w.ddb, w.ledger, scope)
	if err != nil {
		t.Fatal(err)
	}
	v.entries = len(ledger)
	ents, err := dynamodb.ListEntitlements(ctx, w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys, scope.UserID, scope.EntitlementKey)
	if err != nil || len(ents) != 1 {
		t.Fatal(ents, err)
	}
	item := ents[0].Observed

	// Every entry is an event sent, once, with its amount; its draws add
	// up to its amount.
	entries := map[string]usage.LedgerEntry{}
	for _, e := range ledger {
		if _, dup := entries[e.DedupKey]; dup {
			t.Errorf("two ledger entries for key %s", e.DedupKey)
		}
		entries[e.DedupKey] = e
		s, ok := sent[e.DedupKey]
		switch {
		case !ok:
			t.Errorf("ledger entry %s (%s %s): no such event was sent", e.DedupKey, e.Operation, e.Amount)
			continue
		case !e.Is(s.op):
			t.Errorf("ledger entry %s is a %s, the event sent a %s", e.DedupKey, e.Operation, s.op)
		case !s.whole && e.Amount.Cmp(s.amount) != 0:
			t.Errorf("ledger entry %s has amount %s, the event sent %s", e.DedupKey, e.Amount, s.amount)
		case s.op == usage.OperationRefund && e.RefundOf != s.refundOf:
			t.Errorf("ledger entry %s refunds %s, the event refunded %s", e.DedupKey, e.RefundOf, s.refundOf)
		}
		if e.Is(usage.OperationGrant) {
			continue
		}
		sum := usage.Decimal{}
		for _, d := range usage.DrawsOf(e) {
			sum = sum.Add(d.Amount)
		}
		if sum.Cmp(e.Amount) != 0 {
			t.Errorf("ledger entry %s of %s: its draws %s add up to %s", e.DedupKey, e.Amount, drawsString(usage.DrawsOf(e)), sum)
		}
	}

	// Draws and give-backs, by bucket.
	givenBack := map[string]map[string]usage.Decimal{} // consume key -> bucket -> given back (lapsed included)
	refundsOf := map[string]usage.Decimal{}
	for _, e := range ledger {
		switch {
		case e.Is(usage.OperationConsume):
			for _, d := range usage.DrawsOf(e) {
				if d.Lapsed {
					t.Errorf("consume %s records a lapsed draw: %s", e.DedupKey, drawsString(e.Draws))
				}
				v.drawn[bucketOf(d)] = v.drawn[bucketOf(d)].Add(d.Amount)
			}
		case e.Is(usage.OperationRefund):
			target, ok := entries[e.RefundOf]
			if !ok || !target.Is(usage.OperationConsume) {
				t.Errorf("refund %s of %s: no such consume in the ledger", e.DedupKey, e.RefundOf)
				continue
			}
			refundsOf[e.RefundOf] = refundsOf[e.RefundOf].Add(e.Amount)
			if givenBack[e.RefundOf] == nil {
				givenBack[e.RefundOf] = map[string]usage.Decimal{}
			}
			for _, d := range usage.DrawsOf(e) {
				givenBack[e.RefundOf][bucketOf(d)] = givenBack[e.RefundOf][bucketOf(d)].Add(d.Amount)
				if d.Lapsed {
					v.lapsed = v.lapsed.Add(d.Amount)
				} else {
					v.back[bucketOf(d)] = v.back[bucketOf(d)].Add(d.Amount)
				}
			}
		}
	}
	// A consume's refunds gave back, to the buckets it drew from, the
	// last drawn first, and add up to its refunded.
	for key, e := range entries {
		if !e.Is(usage.OperationConsume) {
			continue
		}
		if e.Refunded.Cmp(refundsOf[key]) != 0 {
			t.Errorf("consume %s records refunded %s, its refunds add up to %s", key, e.Refunded, refundsOf[key])
		}
		if e.Refunded.Cmp(e.Amount) > 0 {
			t.Errorf("consume %s of %s was refunded %s", key, e.Amount, e.Refunded)
		}
		want := lastDrawnFirst(usage.DrawsOf(e), refundsOf[key])
		for _, b := range slices.Sorted(maps.Keys(mergeKeys(want, givenBack[key]))) {
			if want[b].Cmp(givenBack[key][b]) != 0 {
				t.Errorf("consume %s drew %s and was refunded %s: its refunds gave back %s to %s, the last drawn first gives %s",
					key, drawsString(usage.DrawsOf(e)), refundsOf[key], givenBack[key][b], b, want[b])
			}
		}
	}

	// Every bucket's stored total is exactly its net draws, within the bucket.
	for b := range mergeKeys(v.drawn, v.back) {
		v.net[b] = v.drawn[b].Sub(v.back[b])
	}
	check := func(bucket string, stored, size usage.Decimal) {
		net := v.net[bucket]
		if stored.Cmp(net) != 0 {
			t.Errorf("%s: the item says %s drawn, the ledger's draws %s minus give-backs %s = %s", bucket, stored, v.drawn[bucket], v.back[bucket], net)
		}
		if net.Cmp(size) > 0 || stored.Cmp(size) > 0 {
			t.Errorf("OVER-DRAWN: %s holds %s, yet %s drawn (ledger) and %s (item)", bucket, size, net, stored)
		}
		if net.Sign() < 0 || stored.Sign() < 0 {
			t.Errorf("%s: negative draw: %s (ledger), %s (item)", bucket, net, stored)
		}
		v.capacity = v.capacity.Add(size)
	}
	numberAt := func(val usage.Value) usage.Decimal {
		if val.Kind != usage.KindNumber {
			if val.Present() {
				t.Errorf("not a number on the item: %v", val)
			}
			return usage.Decimal{}
		}
		return val.Num
	}
	check("allowance", numberAt(item.Get(usage.AttrUsed)), limit)
	if got := numberAt(item.Get(usage.AttrOverageLimit)); got.Cmp(overageLimit) != 0 {
		t.Errorf("overageLimit is %s on the item, want %s", got, overageLimit)
	}
	check("overage", numberAt(item.Get(usage.AttrOverageUsed)), overageLimit)
	stored := item.Get(usage.AttrGrants).Fields // read raw: an over-drawn grant would not parse
	grants := map[string]bool{}
	for key, e := range entries {
		if !e.Is(usage.OperationGrant) {
			continue
		}
		grants[key] = true
		g, onItem := stored[key]
		var remaining usage.Decimal
		switch {
		case e.GrantState == usage.GrantVoided:
			if onItem {
				t.Errorf("grant %s is voided, yet still on the item", key)
			}
			if e.Voided == nil {
				t.Errorf("grant %s is voided without what was left", key)
				continue
			}
			remaining = *e.Voided
			v.report = append(v.report, fmt.Sprintf("%s voided with %s left of %s", key, remaining, e.Amount))
		case !onItem:
			t.Errorf("grant %s (%s) is not on the item: its remaining cannot be read", key, e.GrantState)
			continue
		default:
			remaining = numberAt(g.Fields[usage.GrantFieldRemaining])
			if amount := numberAt(g.Fields[usage.GrantFieldAmount]); amount.Cmp(e.Amount) != 0 {
				t.Errorf("grant %s: amount %s on the item, %s in the ledger", key, amount, e.Amount)
			}
		}
		check("grant:"+key, e.Amount.Sub(remaining), e.Amount)
		if !v.drawn["grant:"+key].IsZero() {
			v.grantsDrawn++
		}
		v.givenBackToGrants = v.givenBackToGrants.Add(v.back["grant:"+key])
	}
	for id := range stored {
		if !grants[id] {
			t.Errorf("grant %s is on the item, not in the ledger", id)
		}
	}
	for b := range v.net {
		if id, ok := strings.CutPrefix(b, "grant:"); ok && !grants[id] {
			t.Errorf("draws from grant %s, which the ledger does not know", id)
		}
	}
	for _, n := range v.net {
		v.netSum = v.netSum.Add(n)
	}
	if v.netSum.Cmp(v.capacity) > 0 {
		t.Errorf("OVER-DRAWN: all buckets hold %s (allowance %s + grants + overage %s), the applied draws net of give-backs are %s",
			v.capacity, limit, overageLimit, v.netSum)
	}

	// Every queued message: applied, or dead-lettered with the reason it
	// deserves. (One broken decision can spoil many messages: the first
	// errors of each kind are shown.)
	msgErr := &cappedErrors{t: t, left: 10}
	defer msgErr.done()
	letters := map[string][]deadLetter{}
	for _, d := range w.readDeadLetters(t) {
		if d.reason == "" {
			t.Errorf("dead letter without a reason (redriven after %d receives): %s", maxReceiveCount, d.body)
			continue
		}
		letters[d.originalID] = append(letters[d.originalID], d)
	}
	for _, m := range queued {
		dl := letters[m.messageID]
		delete(letters, m.messageID)
		entry, applied := entries[m.key]
		if applied && entry.MessageID != m.messageID {
			msgErr.Errorf("ledger entry %s names message %s, which did not carry it (%s)", m.key, entry.MessageID, m.messageID)
		}
		// Each letter is a rejection the event deserved when some delivery
		// of it was decided (the final ledger tells, see deservedRejection).
		for _, d := range dl {
			if !deservedRejection(m, usage.Reason(d.reason), entries) {
				msgErr.Errorf("message %s (%s) dead-lettered with %s, which it does not deserve", m.messageID, m.body, d.reason)
			}
			if d.reason == string(usage.ReasonLimitExceeded) {
				v.limitExceeded++
			}
		}
		switch {
		case applied && len(dl) > 0:
			// Dead-lettering is at least once (docs/operations.md): a copy
			// delivered again, after its worker was killed between the
			// letter and the delete, or while its batch outlasted the
			// visibility timeout, is decided anew; where a refund gave room
			// back, or the consume a refund named came in, the same event
			// is then applied. Only rejections that depend on the moment
			// may be followed by an application.
			for _, d := range dl {
				if r := usage.Reason(d.reason); r != usage.ReasonLimitExceeded && r != usage.ReasonRefundTargetNotFound {
					msgErr.Errorf("message %s (%s): applied, and dead-lettered with %s, which its application contradicts", m.messageID, m.key, r)
				}
			}
			v.rejectedThenApplied = append(v.rejectedThenApplied, m.key)
			v.queuedOutcomes[string(m.op)+" APPLIED"]++
		case applied:
			v.queuedOutcomes[string(m.op)+" APPLIED"]++
		case len(dl) == 0:
			t.Errorf("LOST: message %s (%s %s) was neither applied nor dead-lettered", m.messageID, m.op, m.key)
		default:
			v.queuedOutcomes[string(m.op)+" "+dl[0].reason]++
		}
	}
	for id, dl := range letters {
		t.Errorf("dead letter %s (%s) is not a message that was sent: %s", id, dl[0].reason, dl[0].body)
	}

	// Every synchronous answer agrees with the ledger.
	syncErr := &cappedErrors{t: t, left: 10}
	defer syncErr.done()
	for _, s := range answers {
		a := s.a
		v.syncOutcomes[string(s.e.op)+" "+string(a.Status)+" "+string(a.Reason)]++
		entry, ok := entries[s.e.key]
		if (a.Status == decision.Applied) != ok {
			syncErr.Errorf("%s answered %s %s (%s), ledger entry present: %v", s.e.key, a.Status, a.Reason, a.Message, ok)
			continue
		}
		switch {
		case !ok:
			if a.Status == decision.Rejected && !deservedRejection(s.e, a.Reason, entries) {
				syncErr.Errorf("%s answered REJECTED %s (%s), which it does not deserve", s.e.key, a.Reason, a.Message)
			}
			if a.Reason == usage.ReasonLimitExceeded {
				v.limitExceeded++
			}
		case s.e.op == usage.OperationConsume:
			if got, want := answerDrawsString(a.Draws), drawsString(entry.Draws); beyondAllowanceOnly(entry.Draws) && got != want || len(a.Draws) > 0 && got != want {
				syncErr.Errorf("%s answered draws %q, its ledger entry has %q", s.e.key, got, want)
			}
		case s.e.op == usage.OperationRefund:
			if got, want := answerDrawsString(a.Returned), drawsString(entry.Draws); beyondAllowanceOnly(entry.Draws) && got != want || len(a.Returned) > 0 && got != want {
				syncErr.Errorf("%s answered returned %q, its ledger entry has %q", s.e.key, got, want)
			}
		}
	}
	if voidAnswer != nil && voidAnswer.Grant != nil && voidAnswer.Grant.Voided != nil {
		if e := entries["sv"]; e.Voided == nil || e.Voided.Cmp(usage.MustDecimal(string(*voidAnswer.Grant.Voided))) != 0 {
			t.Errorf("the void answered %s left of sv; its ledger entry says %v", *voidAnswer.Grant.Voided, e.Voided)
		}
	} else {
		t.Errorf("the void of sv gave no answer with what was left: %+v", voidAnswer)
	}
	return v
}

// deservedRejection: the reason is one the event may get, given the
// final ledger (a consume's refunded only grows; a consume not in the
// ledger at the end never was).
func deservedRejection(e sentEvent, reason usage.Reason, entries map[string]usage.LedgerEntry) bool {
	switch e.op {
	case usage.OperationConsume:
		// Whether it fitted depends on the moment: refunds give back and
		// grants expire. The bucket totals above are what bounds consumes.
		return reason == usage.ReasonLimitExceeded
	case usage.OperationRefund:
		target, ok := entries[e.refundOf]
		switch reason {
		case usage.ReasonRefundTargetNotFound:
			// Absent for good, or applied only after the refund had waited
			// REFUND_TARGET_WAIT for it (a queued consume held up by a kill).
			return !ok || !e.queuedAt.IsZero() && target.AppliedAt.After(e.queuedAt.Add(grantsRaceRefundWait))
		case usage.ReasonRefundExceedsApplied:
			return ok && (e.whole && target.Refunded.Cmp(target.Amount) == 0 || !e.whole && target.Refunded.Add(e.amount).Cmp(target.Amount) > 0)
		}
	}
	return false
}

// cappedErrors reports the first few errors of a kind, and then how many
// more there were.
type cappedErrors struct {
	t          *testing.T
	left, more int
}

func (c *cappedErrors) Errorf(format string, args ...any) {
	c.t.Helper()
	if c.left == 0 {
		c.more++
		return
	}
	c.left--
	c.t.Errorf(format, args...)
}

func (c *cappedErrors) done() {
	if c.more > 0 {
		c.t.Errorf("... and %d more errors of that kind", c.more)
	}
}
