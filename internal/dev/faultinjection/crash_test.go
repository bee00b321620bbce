package faultinjection_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
)

const crashSeed = 20260515

// TestExactlyOnceAcrossWorkerCrashes proves that no moment is a bad moment
// to lose the worker: the binary is killed with SIGKILL four times while
// it drains 3000 messages, each time after a random number of batches and
// a random few milliseconds more (so mid-transaction, between commit and
// delete, between dead-lettering and delete...), and restarted. Messages
// whose transaction committed but which were never deleted come back
// after the visibility timeout and are absorbed as duplicates; the
// verification is the same as under injected faults.
func TestExactlyOnceAcrossWorkerCrashes(t *testing.T) {
	const kills = 4
	w := newWorld(t)
	bin := buildWorker(t)
	env := w.workerEnv(emulator.DynamoDB(t))
	rng := rand.New(rand.NewPCG(crashSeed, 2))

	// No deliberate resends: every DUPLICATE the worker logs is then a
	// redelivery that dedup absorbed.
	ents, msgs := workload(crashSeed, mix{keyed: 2500, unkeyed: 300, invalid: 120, notFound: 80})
	started := time.Now()
	w.provision(t, ents, started)
	w.send(t, msgs)

	var runs []*workerProcess
	var killedAt []string
	for len(killedAt) < kills {
		worker := startWorker(t, bin, env)
		runs = append(runs, worker)
		if !w.waitBatches(t, worker, 10+rng.IntN(30)) {
			break // drained early: the remaining kills would prove nothing
		}
		time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
		_, inFlight := w.depth(t, w.queues.URL)
		worker.cmd.Process.Kill()
		<-worker.exited
		killedAt = append(killedAt, fmt.Sprintf("after %d batches (%d messages in flight)", worker.batches(), inFlight))
	}
	last := startWorker(t, bin, env)
	runs = append(runs, last)
	w.waitDrained(t, last.alive)
	last.stop(t)

	checkNoRaces(t, runs...)
	o := w.verify(t, ents, msgs, started)
	var service serviceReport
	redeliveries := 0
	for _, r := range runs {
		service.add(r.out.String())
		redeliveries += strings.Count(r.out.String(), `"outcome":"DUPLICATE"`)
	}
	t.Logf("killed %d times with SIGKILL: %s", len(killedAt), strings.Join(killedAt, "; "))
	t.Logf("redeliveries absorbed as duplicates: %d", redeliveries)
	t.Logf("verified: %v", o)
	t.Logf("hot entitlements: %s", w.summarizeScopes(t, ents))
	t.Logf("the worker runs reported (killed runs lose their last batches): %+v; run took %v", service, time.Since(started).Round(time.Millisecond))
	if len(killedAt) < kills {
		t.Errorf("only %d of %d kills happened before the queue drained; make the workload larger", len(killedAt), kills)
	}
}
