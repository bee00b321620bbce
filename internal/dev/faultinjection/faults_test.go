package faultinjection_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/internal/dev/faultinjection"
)

// faultSeed fixes the workload and the proxy's draws; timing still varies
// from run to run, the verified outcome does not.
const faultSeed = 20260514

// productionFaults fail about 15% of DynamoDB calls, in every way the
// network and DynamoDB fail, and slow down some more.
var productionFaults = faultinjection.Faults{
	Throttle:    0.03,
	Throttling:  0.02,
	ServerError: 0.03,
	DropBefore:  0.03,
	DropAfter:   0.04,
	Latency:     0.05, MaxLatency: 150 * time.Millisecond,
}

// outageFaults fail every call, half of them after DynamoDB acted on it;
// outageLength is longer than the SDK's five attempts take to give up on
// errors that are not throttling (backoff 50ms doubling, full jitter).
var outageFaults = faultinjection.Faults{ServerError: 0.3, DropBefore: 0.2, DropAfter: 0.5}

const outageLength = 2 * time.Second

// TestExactlyOnceUnderInjectedFaults proves the service's guarantee with
// DynamoDB failing under it: the worker binary, configured only through
// its environment, drains 3000 messages (hot and cold entitlements, limits
// that are hit, resends, idempotency conflicts, invalid events) while
// about 15% of its DynamoDB calls are throttled, fail with 500, or lose
// their connection before or after DynamoDB acted on them, and a
// two-second outage outlasts the SDK's retries, so that messages also
// take the RETRY path back to the queue. Every event is applied exactly
// once or dead-lettered with the reason it deserves;
// every entitlement's usage is exactly the sum of its ledger and within
// its limit. See verify for the full list.
func TestExactlyOnceUnderInjectedFaults(t *testing.T) {
	w := newWorld(t)
	bin := buildWorker(t)
	proxy, err := faultinjection.Start(emulator.DynamoDB(t), faultSeed, productionFaults)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })

	ents, msgs := workload(faultSeed, mix{keyed: 2300, unkeyed: 250, duplicates: 250, conflicts: 40, invalid: 120, notFound: 40})
	started := time.Now()
	w.provision(t, ents, started)
	w.send(t, msgs)
	sent := time.Now()

	worker := startWorker(t, bin, w.workerEnv(proxy.URL))
	// A quarter of the way through, an outage outlasts the SDK's retries:
	// groups come back RETRY and their messages return to the queue, some
	// of them after their transaction committed unseen.
	outage := "skipped: the queue drained first"
	outageRetries := 0
	if w.waitBatches(t, worker, 75) {
		before, logged := proxy.Stats(), len(worker.out.String())
		if err := proxy.SetFaults(outageFaults); err != nil {
			t.Fatal(err)
		}
		time.Sleep(outageLength)
		if err := proxy.SetFaults(productionFaults); err != nil {
			t.Fatal(err)
		}
		after := proxy.Stats()
		// The batches in flight when the outage ended finish within the
		// SDK's retries; by the time the worker has finished as many more
		// as it has pollers, twice, their summaries are in the log.
		w.waitBatches(t, worker, worker.batches()+2*workerPollers)
		var phase serviceReport
		phase.add(worker.out.String()[logged:])
		outageRetries = phase.Retried
		outage = fmt.Sprintf("%v, %d of %d calls failed (before it: %v); %d messages came back RETRY in and just after it",
			outageLength, after.Failed()-before.Failed(), after.Requests-before.Requests, before, outageRetries)
	}
	w.waitDrained(t, worker.alive)
	drained := time.Now()
	worker.stop(t)

	checkNoRaces(t, worker)
	o := w.verify(t, ents, msgs, started)
	stats := proxy.Stats()
	var service serviceReport
	service.add(worker.out.String())
	t.Logf("faults injected (seed %d): %v; outage window: %s", faultSeed, stats, outage)
	t.Logf("verified: %v", o)
	t.Logf("hot entitlements: %s", w.summarizeScopes(t, ents))
	t.Logf("the worker reported: %+v; redeliveries absorbed as duplicates: about %d", service, service.Duplicates-o.absorbed)
	t.Logf("provision and send %v, drain %v, verify %v (race detector in the worker: %v)",
		sent.Sub(started).Round(time.Millisecond), drained.Sub(sent).Round(time.Millisecond), time.Since(drained).Round(time.Millisecond), emulator.RaceEnabled)

	// The proof is only as good as the faults it survived.
	if stats.Failed() == 0 || stats.LostSuccesses["TransactWriteItems"] == 0 {
		t.Errorf("the run did not exercise the faults it claims to: %v", stats)
	}
	if outageRetries == 0 {
		t.Errorf("the outage did not send any message back to the queue as RETRY (%s): the RETRY path is not proven; make the workload or the outage larger", outage)
	}
	// The service's own count may call a lost-then-retried commit a
	// duplicate, but it never claims more applications than happened.
	if service.Applied > o.eventsApplied {
		t.Errorf("the worker reported %d events applied, the ledger holds %d", service.Applied, o.eventsApplied)
	}
}
