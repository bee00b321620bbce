package faultinjection_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
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

const poolsRaceSeed = 20261207

// poolsRaceRefundWait is the workers' REFUND_TARGET_WAIT: a queued refund
// whose consume is not (yet) in the ledger is retried until it is that
// old, then rejected REFUND_TARGET_NOT_FOUND.
const poolsRaceRefundWait = 6 * time.Second

// The queued messages go in poolsRaceWaves waves, the first at once, the
// next each time the synchronous caller has made another
// poolsRaceSyncRequests/poolsRaceWaves requests: paced by the race itself,
// not by the clock, so that on a slow machine as on a fast one the pool
// runs dry part-way through, with the three processes at work.
const (
	poolsRaceWaves        = 6
	poolsRaceSyncRequests = 120
)

// poolsRaceMember is one member's entitlement: capped (its limit binds
// before the pool's) or limited by the pool alone.
type poolsRaceMember struct {
	scope usage.Scope
	cap   *usage.Decimal // nil: no limit of its own
	reset usage.ResetPeriod
}

// TestPoolRaceOfFiftyMembersWhileWorkersAreKilled: one pool with a
// monthly limit well below what its members ask for, and fifty members
// of the same entitlement key naming it, thirty capped (caps of 3 to 8)
// and twenty limited by the pool alone. Two worker processes drain queued
// consumes and refunds of them (and a few commits of holds), while one
// function process under the Runtime Interface Emulator answers
// synchronous consumes, refunds of them, reserves and their commits and
// releases; each worker is killed with SIGKILL once, mid-run, and
// restarted. The members ask for about twice what the pool holds, so it
// runs dry part-way through and is refilled by refunds while the race
// goes on.
//
// The verdict reads only the ledger, the entitlement items and the
// queues:
//   - the pool's used is exactly what its members' ledger entries counted
//     against it this period (pool draws minus pool give-backs, a hold
//     counting what it holds or committed), within its limit;
//   - every member's used is exactly its own applied draws minus its
//     give-backs, within its cap; neither the pool's limit nor a cap was
//     seen exceeded by a reader polling the items during the race, or in
//     a synchronous answer;
//   - every ledger entry is an event that was sent, with its amount, once,
//     counted against the pool in the pool's current period; a consume's
//     refunds add up to its refunded, never above its amount;
//   - every queued message is applied, or dead-lettered with a reason it
//     deserves (both, where one delivery was rejected for the moment and
//     another applied it); a refund is not rejected REFUND_TARGET_NOT_FOUND
//     before its wait, nor after its target was seen in the ledger before
//     the wait ended; nothing is left on the queue;
//   - every synchronous APPLIED is in the ledger (a settlement: on its
//     hold), and nothing answered otherwise is;
//   - POOL_LIMIT_EXCEEDED and LIMIT_EXCEEDED both happened, and both
//     workers were killed mid-run.
func TestPoolRaceOfFiftyMembersWhileWorkersAreKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the emulators")
	}
	const kills = 2
	began := time.Now()
	w := newWorld(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(poolsRaceSeed, 5))
	const key, poolID = "AI_TUTOR_ACCESS", "school-1"
	poolLimit := usage.MustDecimal("300")
	// The anchors lie days back, so that no period boundary falls within
	// the run: the verdict checks one period's totals.
	poolAnchor, capAnchor := began.Add(-10*24*time.Hour).UTC(), began.Add(-20*24*time.Hour).UTC()
	if err := dynamodb.PutPool(ctx, w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys, poolID, dynamodb.EntitlementItem{
		EntitlementKey: key, Limit: &poolLimit, ResetPeriod: usage.ResetMonthly, ResetAnchor: &poolAnchor,
	}); err != nil {
		t.Fatal(err)
	}
	var members []poolsRaceMember
	for i := range 50 {
		m := poolsRaceMember{scope: usage.Scope{UserID: fmt.Sprintf("student-%02d", i), EntitlementKey: key}, reset: usage.ResetNone}
		item := dynamodb.EntitlementItem{UserID: m.scope.UserID, EntitlementKey: key, Pool: poolID}
		if i%5 < 3 {
			c := usage.DecimalFromInt(int64(3 + i%6))
			m.cap, m.reset = &c, usage.ResetMonthly
			item.Limit, item.ResetPeriod, item.ResetAnchor = &c, usage.ResetMonthly, &capAnchor
		}
		if err := dynamodb.PutEntitlement(ctx, w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys, item); err != nil {
			t.Fatal(err)
		}
		members = append(members, m)
	}
	var uncapped []poolsRaceMember
	for _, m := range members {
		if m.cap == nil {
			uncapped = append(uncapped, m)
		}
	}
	body := func(m poolsRaceMember, format string, args ...any) string {
		return fmt.Sprintf(`{"userId":%q,"entitlementKey":%q,`, m.scope.UserID, key) + fmt.Sprintf(format, args...) + "}"
	}

	// What was sent, by scope and dedup key: the verdict accepts no other
	// entry.
	var mu sync.Mutex
	sent := map[usage.Scope]map[string]sentEvent{}
	for _, m := range members {
		sent[m.scope] = map[string]sentEvent{}
	}
	record := func(m poolsRaceMember, e sentEvent) {
		mu.Lock()
		defer mu.Unlock()
		sent[m.scope][e.key] = e
	}

	// Queued: 320 consumes of 1 to 3 on members drawn at random, and 60
	// refunds of them: of 1, or of all that remains (each such target
	// once).
	var queued []message
	var queuedEvents []poolsQueued
	addQueued := func(m poolsRaceMember, e sentEvent) {
		queued = append(queued, message{body: e.body})
		queuedEvents = append(queuedEvents, poolsQueued{m, e})
		record(m, e)
	}
	const queuedConsumes = 320
	consumeOf := make([]poolsRaceMember, queuedConsumes)
	for i := range queuedConsumes {
		m := members[rng.IntN(len(members))]
		consumeOf[i] = m
		amount := 1 + rng.IntN(3)
		addQueued(m, sentEvent{key: fmt.Sprintf("q-%d", i), op: usage.OperationConsume, amount: usage.DecimalFromInt(int64(amount)),
			body: body(m, `"amount":%d,"idempotencyKey":"q-%d"`, amount, i)})
	}
	wholeTargets := rng.Perm(queuedConsumes)
	for i := range 60 {
		r := sentEvent{key: fmt.Sprintf("qr-%d", i), op: usage.OperationRefund}
		var m poolsRaceMember
		if i%2 == 0 {
			n := rng.IntN(queuedConsumes)
			m, r.refundOf, r.amount = consumeOf[n], fmt.Sprintf("q-%d", n), usage.DecimalFromInt(1)
			r.body = body(m, `"operation":"refund","refundOf":%q,"amount":1,"idempotencyKey":%q`, r.refundOf, r.key)
		} else {
			n := wholeTargets[i]
			m, r.refundOf, r.whole = consumeOf[n], fmt.Sprintf("q-%d", n), true
			r.body = body(m, `"operation":"refund","refundOf":%q,"idempotencyKey":%q`, r.refundOf, r.key)
		}
		addQueued(m, r)
	}
	rng.Shuffle(len(queued), func(i, j int) {
		queued[i], queued[j] = queued[j], queued[i]
		queuedEvents[i], queuedEvents[j] = queuedEvents[j], queuedEvents[i]
	})

	// Synchronous: one function process (an emulator serves one
	// invocation at a time), one caller.
	bootstrap := emulator.LambdaBootstrap(t)
	fn, err := emulator.StartLambda(ctx, bootstrap, []string{"ENTITLEMENTS_TABLE=" + w.entitlements, "USAGE_LEDGER_TABLE=" + w.ledger, "LOG_LEVEL=WARN"})
	if err != nil {
		t.Fatal(err)
	}
	defer fn.Stop()
	client := awslambda.NewFromConfig(emulator.Stack(t), func(o *awslambda.Options) {
		o.BaseEndpoint, o.Retryer = aws.String(fn.Endpoint), aws.NopRetryer{}
	})
	bin := buildWorker(t)
	env := append(w.workerEnv(emulator.DynamoDB(t)), "REFUND_TARGET_WAIT="+poolsRaceRefundWait.String())
	workers := []*workerProcess{startWorker(t, bin, env), startWorker(t, bin, env)}
	runs := slices.Clone(workers)

	// A reader polls the pool and its members while the race goes on:
	// neither limit may be seen exceeded, at any moment; and the ledger of
	// the consumes queued refunds name, to learn by when each was applied.
	refundTargets := map[usage.Scope][]string{}
	for _, q := range queuedEvents {
		if q.e.op == usage.OperationRefund {
			refundTargets[q.m.scope] = append(refundTargets[q.m.scope], q.e.refundOf)
		}
	}
	watch := startPoolWatch(t, w, poolID, key, poolLimit, members, refundTargets)

	var answers []poolsAnswer
	// invoke asks synchronously; a RETRY answer (contention on the pool
	// outlasted the function's attempts) is asked again, as a caller
	// would, a few times: the last answer is the one recorded, and how
	// many RETRY answers came before it.
	invoke := func(m poolsRaceMember, e sentEvent) (decision.Answer, bool) {
		var a decision.Answer
		retries := 0
		for attempt := 0; attempt == 0 || a.Status == decision.Retry && attempt < 8; attempt++ {
			if attempt > 0 {
				retries++
				time.Sleep(100 * time.Millisecond)
			}
			out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("function"), Payload: []byte(e.body)})
			a = decision.Answer{}
			if err != nil || out.FunctionError != nil || json.Unmarshal(out.Payload, &a) != nil || a.Status == "" {
				var payload []byte
				if out != nil {
					payload = out.Payload
				}
				t.Errorf("%s %s: %v %s", m.scope.UserID, e.key, err, payload)
				return a, false
			}
		}
		if e.op != usage.OperationCommit && e.op != usage.OperationRelease {
			record(m, e)
		}
		mu.Lock()
		answers = append(answers, poolsAnswer{m, e, a, retries})
		mu.Unlock()
		return a, true
	}

	waves := slices.Collect(chunkIndexes(len(queued), poolsRaceWaves))
	sendWave := func(wave [2]int) {
		at := time.Now()
		w.send(t, queued[wave[0]:wave[1]])
		for i := wave[0]; i < wave[1]; i++ {
			queuedEvents[i].e.messageID, queuedEvents[i].e.queuedAt = queued[i].id, at
		}
	}
	sendWave(waves[0])
	sentAt := time.Now()
	t.Logf("set up in %v (emulators, tables, queues, builds, a function, two workers)", sentAt.Sub(began).Round(time.Millisecond))
	var wg sync.WaitGroup
	next := make(chan struct{}, poolsRaceWaves) // closed when the caller is done
	wg.Go(func() {
		for _, wave := range waves[1:] {
			<-next
			sendWave(wave)
		}
	})

	// The caller: consumes of 1 or 2 on members drawn at random; every
	// fourth request a refund of all of its latest consume applied and not
	// refunded yet (of its latest consume, applied or not, when there is
	// none); every sixth a reserve of 2, settled three requests later:
	// committed (1) or released synchronously, committed (2) from the
	// queue, or left active.
	var queuedSettlements []poolsQueued
	wg.Go(func() {
		defer close(next)
		srng := rand.New(rand.NewPCG(poolsRaceSeed, 6))
		type ref struct {
			m   poolsRaceMember
			key string
			at  int
		}
		var holds, applied []ref
		var latest ref
		settled := 0
		for i := range poolsRaceSyncRequests {
			if i > 0 && i%(poolsRaceSyncRequests/poolsRaceWaves) == 0 {
				next <- struct{}{}
			}
			m := members[srng.IntN(len(members))]
			var e sentEvent
			switch {
			case i%6 == 5:
				m = uncapped[srng.IntN(len(uncapped))]
				e = sentEvent{key: fmt.Sprintf("h-%d", i), op: usage.OperationReserve, amount: usage.DecimalFromInt(2)}
				e.body = body(m, `"operation":"reserve","amount":2,"idempotencyKey":%q`, e.key)
			case i%4 == 3 && latest.key != "":
				target := latest
				if len(applied) > 0 {
					target, applied = applied[len(applied)-1], applied[:len(applied)-1]
				}
				m = target.m
				e = sentEvent{key: fmt.Sprintf("s-%d", i), op: usage.OperationRefund, refundOf: target.key, whole: true}
				e.body = body(m, `"operation":"refund","refundOf":%q,"idempotencyKey":%q`, e.refundOf, e.key)
			default:
				e = sentEvent{key: fmt.Sprintf("s-%d", i), op: usage.OperationConsume, amount: usage.DecimalFromInt(int64(1 + srng.IntN(2)))}
				e.body = body(m, `"amount":%s,"idempotencyKey":%q`, e.amount, e.key)
			}
			a, ok := invoke(m, e)
			if !ok {
				return
			}
			switch {
			case e.op == usage.OperationConsume:
				latest = ref{m, e.key, i}
				if a.Status == decision.Applied {
					applied = append(applied, latest)
				}
			case e.op == usage.OperationReserve && a.Status == decision.Applied:
				holds = append(holds, ref{m, e.key, i})
			}
			for len(holds) > 0 && holds[0].at+3 <= i {
				h := holds[0]
				holds = holds[1:]
				settled++
				switch settled % 4 {
				case 1:
					invoke(h.m, sentEvent{key: h.key, op: usage.OperationCommit, amount: usage.DecimalFromInt(1),
						body: body(h.m, `"operation":"commit","holdId":%q,"amount":1`, h.key)})
				case 2:
					invoke(h.m, sentEvent{key: h.key, op: usage.OperationRelease, body: body(h.m, `"operation":"release","holdId":%q`, h.key)})
				case 3:
					c := sentEvent{key: h.key, op: usage.OperationCommit, amount: usage.DecimalFromInt(2),
						body: body(h.m, `"operation":"commit","holdId":%q,"amount":2`, h.key)}
					msg := []message{{body: c.body}}
					c.queuedAt = time.Now()
					w.send(t, msg)
					c.messageID = msg[0].id
					mu.Lock()
					queuedSettlements = append(queuedSettlements, poolsQueued{h.m, c})
					mu.Unlock()
				} // else: left active
			}
		}
	})

	// Meanwhile each worker in turn is killed mid-run and restarted: the
	// first once it has finished a batch or two, the other a moment
	// later, each while messages are in flight (a worker has
	// WORKER_POLLERS batches at most). Between waves the queue may be
	// empty for a while: only once nothing more is sent and the queue has
	// drained is it too late.
	sendersDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(sendersDone)
	}()
	over := func(victim *workerProcess) bool {
		if err := victim.alive(); err != nil {
			t.Fatalf("the worker died: %v", err)
		}
		select {
		case <-sendersDone:
			return w.queued(t) == 0
		default:
			return false
		}
	}
	var killedAt []string
	for k := range kills {
		victim := workers[k]
		batches := 1 + rng.IntN(2)
		if k > 0 {
			time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
			batches = 0
		}
		for victim.batches() < batches && !over(victim) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
		visible, inFlight := w.depth(t, w.queues.URL)
		for inFlight == 0 && !over(victim) {
			time.Sleep(20 * time.Millisecond)
			visible, inFlight = w.depth(t, w.queues.URL)
		}
		if inFlight == 0 {
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
	syncDone := time.Since(sentAt)
	w.waitDrained(t, allAlive(workers))
	drained := time.Since(sentAt)
	watched := watch.stop()
	stopAll(t, workers)
	checkNoRaces(t, runs...)
	if len(killedAt) < kills {
		t.Errorf("only %d of %d kills happened before the queue drained: the race ran without a worker killed mid-run", len(killedAt), kills)
	}
	t.Logf("killed with SIGKILL: %s", strings.Join(killedAt, "; "))
	t.Logf("synchronous traffic done after %v, the queue drained after %v", syncDone.Round(time.Millisecond), drained.Round(time.Millisecond))
	t.Logf("watched during the race: %s", watched)
	for _, o := range watched.overs {
		t.Errorf("OVER A LIMIT while the race went on: %s", o)
	}

	verifying := time.Now()
	v := verifyPoolsRace(t, w, began, poolID, key, poolLimit, members, sent, append(queuedEvents, queuedSettlements...), answers, watched.seenAt)
	var service serviceReport
	for _, r := range runs {
		service.add(r.out.String())
	}
	t.Logf("verified in %v: %s", time.Since(verifying).Round(time.Millisecond), v)
	t.Logf("the worker runs reported (killed runs lose their last batches): %+v; run took %v", service, time.Since(began).Round(time.Millisecond))
	if v.reasons[usage.ReasonPoolLimitExceeded] == 0 || v.reasons[usage.ReasonLimitExceeded] == 0 || v.poolGivenBack.IsZero() || v.capsReached == 0 || v.holds[usage.HoldCommitted] == 0 || v.holds[usage.HoldReleased] == 0 {
		t.Errorf("the race exercised too little: rejections %v, given back to the pool %s, %d members at their cap, holds %v",
			v.reasons, v.poolGivenBack, v.capsReached, v.holds)
	}
}

// chunkIndexes yields the bounds of n items cut into k nearly equal
// chunks.
func chunkIndexes(n, k int) func(yield func([2]int) bool) {
	return func(yield func([2]int) bool) {
		for i := range k {
			if !yield([2]int{i * n / k, (i + 1) * n / k}) {
				return
			}
		}
	}
}

// poolsQueued is a queued event and the member it is for.
type poolsQueued struct {
	m poolsRaceMember
	e sentEvent
}

// poolsAnswer is a synchronous answer, with the RETRY answers before it.
type poolsAnswer struct {
	m       poolsRaceMember
	e       sentEvent
	a       decision.Answer
	retries int
}

// poolWatch reads, while the race goes on, the pool's item (every 100
// ms), its members' (every second, a scan), and the ledgers of the
// consumes that queued refunds name (every 250 ms, until each is found).
type poolWatch struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
	// peak is the most the pool was seen using; reads, how often it was
	// read; overs, what was seen over a limit.
	peak  usage.Decimal
	reads int
	overs []string
	// seen is, by scope and key, when a watched consume was first found
	// in the ledger: it was committed before then (the consistent read
	// that found it had returned).
	seen   map[usage.Scope]map[string]time.Time
	sweeps int
}

func startPoolWatch(t *testing.T, w *world, poolID, key string, limit usage.Decimal, members []poolsRaceMember, targets map[usage.Scope][]string) *poolWatch {
	ctx, cancel := context.WithCancel(context.Background())
	p := &poolWatch{cancel: cancel, seen: map[usage.Scope]map[string]time.Time{}}
	caps := map[string]*usage.Decimal{}
	for _, m := range members {
		caps[m.scope.UserID] = m.cap
	}
	every := func(d time.Duration, f func(i int)) {
		p.done.Go(func() {
			tick := time.NewTicker(d)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				f(i)
			}
		})
	}
	// A read that fails (the run is ending, or a transient error) is
	// made again at the next tick.
	every(100*time.Millisecond, func(i int) {
		if pool, err := dynamodb.ReadPool(ctx, w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys, poolID, key); err == nil {
			p.reads++
			if pool.Used.Cmp(p.peak) > 0 {
				p.peak = pool.Used
			}
			if pool.Used.Cmp(limit) > 0 {
				p.overs = append(p.overs, fmt.Sprintf("the pool used %s of its limit %s", pool.Used, limit))
			}
		}
		if i%10 != 0 {
			return
		}
		ms, err := dynamodb.PoolMembers(ctx, w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys, poolID, key)
		if err != nil {
			return
		}
		for _, m := range ms {
			if c := caps[m.UserID]; c != nil && m.Used.Cmp(*c) > 0 {
				p.overs = append(p.overs, fmt.Sprintf("%s used %s of its cap %s", m.UserID, m.Used, c))
			}
		}
	})
	for scope := range targets {
		p.seen[scope] = map[string]time.Time{}
	}
	every(250*time.Millisecond, func(int) {
		p.sweeps++
		for scope, keys := range targets {
			if len(p.seen[scope]) == len(keys) {
				continue
			}
			ledger, err := dynamodb.ListLedger(ctx, w.ddb, w.ledger, scope)
			if err != nil {
				continue
			}
			at := time.Now()
			for _, e := range ledger {
				if _, ok := p.seen[scope][e.DedupKey]; !ok && slices.Contains(keys, e.DedupKey) {
					p.seen[scope][e.DedupKey] = at
				}
			}
		}
	})
	t.Cleanup(func() { p.stop() })
	return p
}

// stop ends the reads; what they saw is for the verdict (it is read only
// after stop).
func (p *poolWatch) stop() *poolWatch {
	p.cancel()
	p.done.Wait()
	return p
}

// seenAt is when the consume key of scope was first found in the ledger
// (false: never, while watched).
func (p *poolWatch) seenAt(scope usage.Scope, key string) (time.Time, bool) {
	at, ok := p.seen[scope][key]
	return at, ok
}

func (p *poolWatch) String() string {
	return fmt.Sprintf("the pool read %d times, its peak used %s; %d observations over a limit; the ledgers of refunded consumes swept %d times",
		p.reads, p.peak, len(p.overs), p.sweeps)
}

// poolsVerdict is what verifyPoolsRace established.
type poolsVerdict struct {
	entries                            int
	poolUsed, poolDrawn, poolGivenBack usage.Decimal
	capsReached                        int
	reasons                            map[usage.Reason]int
	holds                              map[string]int
	queuedOutcomes, syncOutcomes       map[string]int
	// rejectedThenApplied are queued events dead-lettered by one
	// delivery, applied by another.
	rejectedThenApplied []string
	overs               []string
	retried             int
	// duplicateAfterRetry are synchronous requests answered RETRY, then
	// DUPLICATE when asked again.
	duplicateAfterRetry []string
}

func (v poolsVerdict) String() string {
	return fmt.Sprintf("%d ledger entries; the pool used %s = drawn %s - given back %s; %d capped members at their cap; rejections %v; holds %v; "+
		"queued %v (dead-lettered by one delivery, applied by another: %v); synchronous %v (%d answers came after RETRY answers; applied, answered RETRY then DUPLICATE: %v)",
		v.entries, v.poolUsed, v.poolDrawn, v.poolGivenBack, v.capsReached, v.reasons, v.holds, v.queuedOutcomes, v.rejectedThenApplied,
		v.syncOutcomes, v.retried, v.duplicateAfterRetry)
}

// verifyPoolsRace is the verdict of the race from the ledger, the items
// and the queues alone.
func verifyPoolsRace(t *testing.T, w *world, began time.Time, poolID, key string, poolLimit usage.Decimal, members []poolsRaceMember,
	sent map[usage.Scope]map[string]sentEvent, queued []poolsQueued, answers []poolsAnswer, seenAt func(usage.Scope, string) (time.Time, bool)) poolsVerdict {
	t.Helper()
	ctx := context.Background()
	v := poolsVerdict{reasons: map[usage.Reason]int{}, holds: map[string]int{}, queuedOutcomes: map[string]int{}, syncOutcomes: map[string]int{}}
	if n := w.queued(t); n != 0 {
		t.Errorf("%d messages still on the main queue", n)
	}
	pool, err := dynamodb.ReadPool(ctx, w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys, poolID, key)
	if err != nil || !pool.Exists || pool.Malformed != nil {
		t.Fatalf("the pool: %+v %v", pool, err)
	}
	poolPeriod := ""
	if pool.PeriodStart != nil {
		poolPeriod = usage.FormatInstant(*pool.PeriodStart)
	}
	if pool.Limit == nil || pool.Limit.Cmp(poolLimit) != 0 {
		t.Errorf("the pool's limit is %v, want %s", pool.Limit, poolLimit)
	}
	entryErr := &cappedErrors{t: t, left: 10}
	defer entryErr.done()

	// Every member: its ledger and its item.
	ledgers := map[usage.Scope]map[string]usage.LedgerEntry{}
	for _, m := range members {
		ents, err := dynamodb.ListEntitlements(ctx, w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys, m.scope.UserID, key)
		if err != nil || len(ents) != 1 {
			t.Fatalf("%s: %v %v", m.scope.UserID, ents, err)
		}
		item := ents[0].Entitlement
		if item.Pool != poolID {
			t.Errorf("%s names pool %q, want %q", m.scope.UserID, item.Pool, poolID)
		}
		period := ""
		if item.PeriodStart != nil {
			period = usage.FormatInstant(*item.PeriodStart)
		}
		ledger, err := dynamodb.ListLedger(ctx, w.ddb, w.ledger, m.scope)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case item.ResetPeriod != m.reset:
			t.Errorf("%s resets %s, want %s", m.scope.UserID, item.ResetPeriod, m.reset)
		case m.reset != usage.ResetNone && len(ledger) > 0 && (item.PeriodStart == nil || item.PeriodStart.After(began)):
			t.Errorf("%s: its period is %q, one begun before the run was expected (the anchors lie days back)", m.scope.UserID, period)
		}
		v.entries += len(ledger)
		entries := map[string]usage.LedgerEntry{}
		for _, e := range ledger {
			if _, dup := entries[e.DedupKey]; dup {
				entryErr.Errorf("%s: two ledger entries for key %s", m.scope.UserID, e.DedupKey)
			}
			entries[e.DedupKey] = e
		}
		ledgers[m.scope] = entries

		// Each entry: an event sent, with its amount, counted against the
		// pool in its current period; what it counts for the member and
		// for the pool.
		own, refundsOf := usage.Decimal{}, map[string]usage.Decimal{}
		for _, e := range ledger {
			s, ok := sent[m.scope][e.DedupKey]
			switch {
			case !ok:
				entryErr.Errorf("%s: ledger entry %s (%s %s): no such event was sent", m.scope.UserID, e.DedupKey, e.Operation, e.Amount)
				continue
			case !e.Is(s.op):
				entryErr.Errorf("%s: ledger entry %s is a %s, the event sent a %s", m.scope.UserID, e.DedupKey, e.Operation, s.op)
			case !s.whole && e.Amount.Cmp(s.amount) != 0:
				entryErr.Errorf("%s: ledger entry %s has amount %s, the event sent %s", m.scope.UserID, e.DedupKey, e.Amount, s.amount)
			case s.op == usage.OperationRefund && e.RefundOf != s.refundOf:
				entryErr.Errorf("%s: ledger entry %s refunds %s, the event refunded %s", m.scope.UserID, e.DedupKey, e.RefundOf, s.refundOf)
			}
			if e.Pool != poolID {
				entryErr.Errorf("%s: ledger entry %s counted against pool %q, want %q", m.scope.UserID, e.DedupKey, e.Pool, poolID)
			}
			if e.PoolPeriodStart != poolPeriod {
				entryErr.Errorf("%s: ledger entry %s counted in the pool's period %q, the pool is in %q", m.scope.UserID, e.DedupKey, e.PoolPeriodStart, poolPeriod)
			}
			if e.PeriodStart != period {
				entryErr.Errorf("%s: ledger entry %s counted in period %q, the member is in %q", m.scope.UserID, e.DedupKey, e.PeriodStart, period)
			}
			mine, pools := usage.Decimal{}, usage.Decimal{}
			for _, d := range usage.DrawsOf(e) {
				if d.Bucket != usage.BucketAllowance || d.Lapsed {
					entryErr.Errorf("%s: ledger entry %s drew or gave back %s: a member without grants or overage, in one period, has its allowance alone",
						m.scope.UserID, e.DedupKey, drawsString(e.Draws))
				}
				mine = mine.Add(d.Amount)
			}
			for _, d := range usage.PoolDrawsOf(e) {
				if d.Bucket != usage.BucketAllowance || d.Lapsed {
					entryErr.Errorf("%s: ledger entry %s drew or gave back %s of the pool: a pool without grants or overage, in one period, has its allowance alone",
						m.scope.UserID, e.DedupKey, drawsString(e.PoolDraws))
				}
				pools = pools.Add(d.Amount)
			}
			if mine.Cmp(e.Amount) != 0 || pools.Cmp(e.Amount) != 0 {
				entryErr.Errorf("%s: ledger entry %s of %s: its draws add up to %s, its pool draws to %s", m.scope.UserID, e.DedupKey, e.Amount, mine, pools)
			}
			switch {
			case e.Is(usage.OperationConsume):
				own, v.poolDrawn = own.Add(mine), v.poolDrawn.Add(pools)
			case e.Is(usage.OperationRefund):
				own, v.poolGivenBack = own.Sub(mine), v.poolGivenBack.Add(pools)
				refundsOf[e.RefundOf] = refundsOf[e.RefundOf].Add(e.Amount)
				if target, ok := entries[e.RefundOf]; !ok || !target.Is(usage.OperationConsume) {
					entryErr.Errorf("%s: refund %s of %s: no such consume in the ledger", m.scope.UserID, e.DedupKey, e.RefundOf)
				}
			case e.Is(usage.OperationReserve):
				// A settled hold gave back, to both, what it did not commit
				// (released: all of it).
				v.holds[e.HoldState]++
				back := usage.Decimal{}
				switch e.HoldState {
				case usage.HoldActive:
				case usage.HoldCommitted, usage.HoldReleased:
					if e.Actual == nil || e.Actual.Cmp(e.Amount) > 0 || e.HoldState == usage.HoldReleased && !e.Actual.IsZero() {
						entryErr.Errorf("%s: hold %s of %s is %s with actual %v", m.scope.UserID, e.DedupKey, e.Amount, e.HoldState, e.Actual)
						continue
					}
					back = e.Amount.Sub(*e.Actual)
				default:
					entryErr.Errorf("%s: hold %s is %s: no hold was left to expire", m.scope.UserID, e.DedupKey, e.HoldState)
				}
				own, v.poolDrawn, v.poolGivenBack = own.Add(mine).Sub(back), v.poolDrawn.Add(pools), v.poolGivenBack.Add(back)
			}
		}
		for k, e := range entries {
			if !e.Is(usage.OperationConsume) {
				continue
			}
			if e.Refunded.Cmp(refundsOf[k]) != 0 {
				entryErr.Errorf("%s: consume %s records refunded %s, its refunds add up to %s", m.scope.UserID, k, e.Refunded, refundsOf[k])
			}
			if e.Refunded.Cmp(e.Amount) > 0 {
				entryErr.Errorf("%s: consume %s of %s was refunded %s", m.scope.UserID, k, e.Amount, e.Refunded)
			}
		}
		if item.Used.Cmp(own) != 0 {
			t.Errorf("%s: used %s, but its ledger entries net %s (%d entries)", m.scope.UserID, item.Used, own, len(ledger))
		}
		if m.cap != nil {
			if item.Used.Cmp(*m.cap) > 0 || own.Cmp(*m.cap) > 0 {
				t.Errorf("OVER THE CAP: %s used %s (ledger: %s) of its cap %s", m.scope.UserID, item.Used, own, m.cap)
			}
			if item.Used.Cmp(*m.cap) == 0 {
				v.capsReached++
			}
		}
	}

	// The pool: exactly what its members counted against it.
	v.poolUsed = v.poolDrawn.Sub(v.poolGivenBack)
	if pool.Used.Cmp(v.poolUsed) != 0 {
		t.Errorf("the pool: used %s, but its members' ledger entries counted %s against it (drawn %s - given back %s)",
			pool.Used, v.poolUsed, v.poolDrawn, v.poolGivenBack)
	}
	if pool.Used.Cmp(poolLimit) > 0 || v.poolUsed.Cmp(poolLimit) > 0 {
		t.Errorf("OVER THE POOL'S LIMIT: the pool used %s (ledger: %s) of %s", pool.Used, v.poolUsed, poolLimit)
	}
	if pool.PeriodStart == nil || pool.PeriodStart.After(began) {
		t.Errorf("the pool's period is %q, one begun before the run was expected (its anchor lies days back)", poolPeriod)
	}

	// Every queued message: applied, or dead-lettered with the reason it
	// deserves.
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
	for _, q := range queued {
		m, e := q.m, q.e
		dl := letters[e.messageID]
		delete(letters, e.messageID)
		entries := ledgers[m.scope]
		entry, applied := entries[e.key]
		switch {
		case e.op == usage.OperationCommit:
			// A settlement has no entry of its own: its hold tells.
			applied = applied && entry.HoldState == usage.HoldCommitted && entry.Actual != nil && entry.Actual.Cmp(e.amount) == 0
		case applied && entry.MessageID != e.messageID:
			msgErr.Errorf("%s: ledger entry %s names message %s, which did not carry it (%s)", m.scope.UserID, e.key, entry.MessageID, e.messageID)
		}
		for _, d := range dl {
			r := usage.Reason(d.reason)
			v.reasons[r]++
			if ok, why := poolsDeservedRejection(m, e, r, d.rejectedAt, entries, seenAt); !ok {
				msgErr.Errorf("message %s (%s) dead-lettered with %s (receive %s), which it does not deserve: %s", e.messageID, e.body, r, d.receiveCount, why)
			}
		}
		switch {
		case applied && len(dl) > 0:
			// Dead-lettering is at least once: a copy delivered again after
			// its worker was killed between the letter and the delete is
			// decided anew, and where a refund gave room back, or the
			// consume a refund named came in, applied. Only rejections of
			// the moment may be followed by an application.
			for _, d := range dl {
				if r := usage.Reason(d.reason); r != usage.ReasonLimitExceeded && r != usage.ReasonPoolLimitExceeded && r != usage.ReasonRefundTargetNotFound {
					msgErr.Errorf("message %s (%s %s): applied, and dead-lettered with %s, which its application contradicts", e.messageID, m.scope.UserID, e.key, r)
				}
			}
			v.rejectedThenApplied = append(v.rejectedThenApplied, m.scope.UserID+"/"+e.key)
			v.queuedOutcomes[string(e.op)+" APPLIED"]++
		case applied:
			v.queuedOutcomes[string(e.op)+" APPLIED"]++
		case len(dl) == 0:
			t.Errorf("LOST: message %s (%s %s %s) was neither applied nor dead-lettered", e.messageID, m.scope.UserID, e.op, e.key)
		default:
			v.queuedOutcomes[string(e.op)+" "+dl[0].reason]++
		}
	}
	for id, dl := range letters {
		t.Errorf("dead letter %s (%s) is not a message that was sent: %s", id, dl[0].reason, dl[0].body)
	}

	// Every synchronous answer agrees with the ledger.
	syncErr := &cappedErrors{t: t, left: 10}
	defer syncErr.done()
	for _, s := range answers {
		m, e, a := s.m, s.e, s.a
		v.syncOutcomes[string(e.op)+" "+string(a.Status)+" "+string(a.Reason)]++
		if s.retries > 0 {
			v.retried++
		}
		if a.Status == decision.Rejected {
			v.reasons[a.Reason]++
		}
		entries := ledgers[m.scope]
		entry, ok := entries[e.key]
		switch e.op {
		case usage.OperationCommit:
			ok = ok && entry.HoldState == usage.HoldCommitted && entry.Actual != nil && entry.Actual.Cmp(e.amount) == 0
		case usage.OperationRelease:
			ok = ok && entry.HoldState == usage.HoldReleased
		}
		applied := a.Status == decision.Applied
		if a.Status == decision.Duplicate && s.retries > 0 && ok {
			// A RETRY is an outcome not known (a write whose answer was
			// lost, a deadline): asked again, the caller learns that it
			// was applied, as the README says a retry does.
			applied = true
			v.duplicateAfterRetry = append(v.duplicateAfterRetry, m.scope.UserID+"/"+e.key)
		}
		if applied != ok {
			syncErr.Errorf("%s %s %s answered %s %s (%s) after %d RETRY answers; applied in the ledger: %v",
				m.scope.UserID, e.op, e.key, a.Status, a.Reason, a.Message, s.retries, ok)
			continue
		}
		if ok, why := poolsDeservedRejection(m, e, a.Reason, time.Time{}, entries, seenAt); a.Status == decision.Rejected && !ok {
			syncErr.Errorf("%s %s %s answered REJECTED %s (%s), which it does not deserve: %s", m.scope.UserID, e.op, e.key, a.Reason, a.Message, why)
		}
		// The balances an answer shows are read after the decision: never
		// over a limit either.
		if a.Status == decision.Applied {
			if a.Pool == nil || a.Pool.PoolID != poolID {
				syncErr.Errorf("%s %s %s answered APPLIED without its pool %q: %+v", m.scope.UserID, e.op, e.key, poolID, a.Pool)
			} else if a.Pool.Used != nil && usage.MustDecimal(string(*a.Pool.Used)).Cmp(poolLimit) > 0 {
				v.overs = append(v.overs, fmt.Sprintf("%s answered the pool used %s", e.key, *a.Pool.Used))
			}
			if a.Used != nil && m.cap != nil && usage.MustDecimal(string(*a.Used)).Cmp(*m.cap) > 0 {
				v.overs = append(v.overs, fmt.Sprintf("%s answered %s used %s of its cap %s", e.key, m.scope.UserID, *a.Used, m.cap))
			}
		}
	}
	for _, o := range v.overs {
		t.Errorf("OVER A LIMIT in a synchronous answer: %s", o)
	}
	return v
}

// poolsDeservedRejection: the reason is one the event may get, given the
// final ledger (a consume's refunded only grows; a consume or hold not in
// the ledger at the end never was), when a dead letter was rejected
// (zero for a synchronous answer), and by when the watch found a refunded
// consume in the ledger. why says what a refusal rests on.
func poolsDeservedRejection(m poolsRaceMember, e sentEvent, reason usage.Reason, rejectedAt time.Time, entries map[string]usage.LedgerEntry,
	seenAt func(usage.Scope, string) (time.Time, bool)) (ok bool, why string) {
	switch e.op {
	case usage.OperationConsume, usage.OperationReserve:
		// Whether it fitted depends on the moment (refunds give back); the
		// totals above bound consumes. Only a capped member has a cap to
		// refuse it.
		return reason == usage.ReasonPoolLimitExceeded || reason == usage.ReasonLimitExceeded && m.cap != nil, "no cap of its own"
	case usage.OperationRefund:
		target, applied := entries[e.refundOf]
		switch reason {
		case usage.ReasonRefundTargetNotFound:
			if e.queuedAt.IsZero() {
				// Synchronously, an unknown target is rejected at once; the
				// caller refunds only consumes answered before.
				return !applied, fmt.Sprintf("its target %s is in the ledger, applied at %s", e.refundOf, target.AppliedAt.Format(time.RFC3339Nano))
			}
			// From the queue: only once the message had waited
			// REFUND_TARGET_WAIT (its SentTimestamp is no earlier than
			// queuedAt, to the millisecond), so the decision came after
			// waited, when a target committed before then was in the
			// ledger. The rejection is stamped when the worker's batch
			// ends (batches last seconds here), and an entry's appliedAt
			// when its transaction is laid out, before it commits: the
			// target's commit is known to be before the watch first found
			// it, no earlier.
			waited := e.queuedAt.Add(poolsRaceRefundWait)
			seen, found := seenAt(m.scope, e.refundOf)
			why = fmt.Sprintf("queued at %s, rejected at %s (+%v); its target %s", e.queuedAt.Format(time.RFC3339Nano),
				rejectedAt.Format(time.RFC3339Nano), rejectedAt.Sub(e.queuedAt).Round(time.Millisecond), e.refundOf)
			if applied {
				why += fmt.Sprintf(" applied at %s (+%v)", target.AppliedAt.Format(time.RFC3339Nano), target.AppliedAt.Sub(e.queuedAt).Round(time.Millisecond))
			}
			if found {
				why += fmt.Sprintf(", found in the ledger at %s (+%v)", seen.Format(time.RFC3339Nano), seen.Sub(e.queuedAt).Round(time.Millisecond))
			}
			switch {
			case rejectedAt.Before(waited.Add(-time.Millisecond)):
				return false, "rejected before it had waited REFUND_TARGET_WAIT: " + why
			case found && seen.Before(waited):
				return false, "its target was in the ledger before the refund had waited REFUND_TARGET_WAIT: " + why
			}
			return true, why
		case usage.ReasonRefundExceedsApplied:
			return applied && (e.whole && target.Refunded.Cmp(target.Amount) == 0 || !e.whole && target.Refunded.Add(e.amount).Cmp(target.Amount) > 0),
				fmt.Sprintf("its target %s of %s was refunded %s in all", e.refundOf, target.Amount, target.Refunded)
		}
	}
	return false, ""
}
