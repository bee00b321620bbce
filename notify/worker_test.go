package notify_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/usage"
)

// TestOneWorkerNotifiesWhatItIsConfiguredTo: one worker process, the
// production binary, one notification per threshold and one
// usage.limit.rejected per period; an entitlement's notifyThresholds
// override the defaults; an unlimited entitlement notifies nothing. Its
// /metrics shows the counts. Then, on an entitlement that goes into its
// overage and then past it, NOTIFY_THRESHOLDS="" leaves the rejection and
// the overage's start (NOTIFY_OVERAGE is on by default),
// NOTIFY_OVERAGE=false too only the rejection, and with
// NOTIFY_LIMIT_REJECTED=false as well nothing is recorded.
func TestOneWorkerNotifiesWhatItIsConfiguredTo(t *testing.T) {
	emulator.SkipShort(t)
	w := newWorld(t, false)
	q := w.queues(t)
	plain, custom, unlimited := usage.Scope{UserID: "plain", EntitlementKey: "K"}, usage.Scope{UserID: "custom", EntitlementKey: "K"}, usage.Scope{UserID: "free", EntitlementKey: "K"}
	w.limited(t, plain, "10")
	w.limited(t, custom, "10", map[string]string{"notifyThresholds": "25,50"})
	w.entitlement(t, dynamodbItem(unlimited))
	var bodies []string
	for i := range 14 { // 10 fit, 4 over the limit
		for _, s := range []usage.Scope{plain, custom, unlimited} {
			bodies = append(bodies, consumeBody(s, 1, fmt.Sprintf("%s-%d", s.UserID, i)))
		}
	}
	// The counts below are exact: a recovery interval of a minute (so
	// the sweep's grace is 10 s) leaves every notification to its write's
	// publication even on a loaded machine. With 1s, the sweep publishes
	// one whose publication after the write took over a second a second
	// time (allowed: at least once), and the counts say 7.
	p := startWorker(t, w.serviceEnv(q, "METRICS_ADDR=127.0.0.1:0", "WORKER_POLLERS=2", "NOTIFY_RECOVERY_INTERVAL=1m"))
	w.send(t, q.URL, bodies)
	w.waitDrained(t, q.URL, p)
	recorded := w.waitPublished(t, plain, custom, unlimited)
	got := w.receive(t, 5, 2*time.Second, 30*time.Second)
	checkDelivery(t, recorded, map[usage.Scope][]string{
		plain:  {reached80, reached100, rejected},
		custom: {usage.NotifyThresholdReached + " 25", usage.NotifyThresholdReached + " 50", rejected},
	}, got)
	if n := len(recorded[unlimited]); n != 0 {
		t.Errorf("an unlimited entitlement recorded %d notifications", n)
	}
	metrics := scrape(t, p.out.String())
	for _, want := range []string{"usage_notifications_recorded_total 6", "usage_notifications_published_total 6", "usage_notifications_failed_total 0",
		"usage_notification_oldest_unpublished_age_seconds 0"} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	p.stop(t)

	for _, c := range []struct {
		name string
		env  []string
		want []string
	}{
		{"no thresholds", []string{"NOTIFY_THRESHOLDS="}, []string{rejected, overageStarted}},
		{"no overage", []string{"NOTIFY_THRESHOLDS=", "NOTIFY_OVERAGE=false"}, []string{rejected}},
		{"nothing", []string{"NOTIFY_THRESHOLDS=", "NOTIFY_LIMIT_REJECTED=false", "NOTIFY_OVERAGE=false"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := usage.Scope{UserID: strings.ReplaceAll(c.name, " ", "-"), EntitlementKey: "K"}
			w.limited(t, s, "5", map[string]string{"overageLimit": "2"}) // 8 consumes of 1: 5 allowance, 2 overage, 1 rejected
			p := startWorker(t, w.serviceEnv(q, c.env...))
			var bodies []string
			for i := range 8 {
				bodies = append(bodies, consumeBody(s, 1, fmt.Sprint(i)))
			}
			w.send(t, q.URL, bodies)
			w.waitDrained(t, q.URL, p)
			recorded := w.waitPublished(t, s)
			got := w.receive(t, len(c.want), 2*time.Second, 20*time.Second)
			checkDelivery(t, recorded, map[usage.Scope][]string{s: c.want}, got)
			p.stop(t)
		})
	}
}

// TestWorkersRacingOnOneEntitlement: three worker processes drain, in
// several runs, consumes of one limited entitlement across 80 % and
// 100 % and far beyond, with producer retries (the same key resent),
// messages that coalesce in batches, and the retries and redeliveries
// contention brings; in one run a worker is killed with SIGKILL and
// replaced, so what it had received is redelivered. Each run records exactly one notification per
// threshold and one usage.limit.rejected, each published at least once.
func TestWorkersRacingOnOneEntitlement(t *testing.T) {
	emulator.SkipShort(t)
	w := newWorld(t, false)
	q := w.queues(t)
	env := w.serviceEnv(q, "WORKER_POLLERS=3")
	workers := []*worker{startWorker(t, env), startWorker(t, env), startWorker(t, env)}
	rng := rand.New(rand.NewPCG(12, 1))
	repeats := 0
	var killed []*worker
	for run := range 3 {
		s := usage.Scope{UserID: fmt.Sprintf("racer-%d", run), EntitlementKey: "AI_TUTOR_ACCESS"}
		w.limited(t, s, "100")
		var bodies []string
		for i := range 140 { // amounts of 1 to 3: 100 is crossed somewhere in the first ~50
			bodies = append(bodies, consumeBody(s, 1+rng.IntN(3), fmt.Sprintf("e-%d", i)))
		}
		for range 30 { // producer retries
			bodies = append(bodies, bodies[rng.IntN(len(bodies))])
		}
		rng.Shuffle(len(bodies), func(i, j int) { bodies[i], bodies[j] = bodies[j], bodies[i] })
		w.send(t, q.URL, bodies)
		if run == 1 {
			// A worker dies mid-run: what it had received comes back
			// after the visibility timeout, to the others and its
			// replacement, as redeliveries.
			time.Sleep(300 * time.Millisecond)
			workers[0].kill()
			killed = append(killed, workers[0])
			workers[0] = startWorker(t, env)
		}
		w.waitDrained(t, q.URL, workers...)
		recorded := w.waitPublished(t, s)
		got := w.receive(t, 3, 2*time.Second, 30*time.Second)
		repeats += checkDelivery(t, recorded, map[usage.Scope][]string{s: {reached80, reached100, rejected}}, got)
		for _, n := range recorded[s] {
			if n.Type == usage.NotifyThresholdReached && n.Used.Cmp(n.Limit.Mul(*n.ThresholdPercent).Shift(-2)) < 0 {
				t.Errorf("%s %s: used %s is below the threshold it reached", s.UserID, noteKey(n.Type, n.ThresholdPercent), n.Used)
			}
		}
	}
	retried, redelivered := 0, 0
	for _, p := range append(workers, killed...) {
		if !slices.Contains(killed, p) {
			p.stop(t)
		}
		retried += strings.Count(p.out.String(), `"msg":"event will be retried"`)
		redelivered += strings.Count(p.out.String(), `"receiveCount":2`) + strings.Count(p.out.String(), `"receiveCount":3`)
	}
	t.Logf("3 runs, 3 workers: %d events retried (RETRY, redelivered by SQS), %d logged redeliveries, %d repeated notification deliveries (subscribers drop them by notificationId)",
		retried, redelivered, repeats)
}

// TestAKilledWorkerPublishesAfterRestart: a worker whose SNS endpoint is
// a closed port applies events and records their notifications, but
// cannot publish them; it is killed with SIGKILL while still busy, so
// some messages are redelivered. A new worker with SNS reachable applies
// the rest and its recovery sweep publishes what the first one left: no
// notification lost, none recorded twice.
func TestAKilledWorkerPublishesAfterRestart(t *testing.T) {
	emulator.SkipShort(t)
	w := newWorld(t, false)
	q := w.queues(t)
	var scopes []usage.Scope
	var bodies []string
	for i := range 4 {
		s := usage.Scope{UserID: fmt.Sprintf("crash-%d", i), EntitlementKey: "K"}
		scopes = append(scopes, s)
		w.limited(t, s, "20")
		for j := range 25 {
			bodies = append(bodies, consumeBody(s, 1, fmt.Sprint(j)))
		}
	}
	first := startWorker(t, w.serviceEnv(q, "AWS_ENDPOINT_URL_SNS="+closedPort(t), "WORKER_POLLERS=2"))
	w.send(t, q.URL, bodies)
	first.waitLog(t, `"msg":"notification not published; left for the recovery sweep"`)
	time.Sleep(500 * time.Millisecond)
	first.kill()
	if strings.Contains(first.out.String(), `"msg":"notification published"`) {
		t.Fatal("the first worker published although SNS was unreachable")
	}
	unpublished := 0
	for _, s := range scopes {
		for _, n := range w.recorded(t, s) {
			if n.PublishedAt.IsZero() {
				unpublished++
			}
		}
	}
	if unpublished == 0 {
		t.Fatal("the first worker left nothing unpublished: the test proves nothing")
	}
	if got := w.receive(t, 0, time.Second, 2*time.Second); len(got) != 0 {
		t.Fatalf("%d messages published while SNS was unreachable", len(got))
	}

	second := startWorker(t, w.serviceEnv(q, "WORKER_POLLERS=2"))
	w.waitDrained(t, q.URL, second)
	recorded := w.waitPublished(t, scopes...)
	want := map[usage.Scope][]string{}
	for _, s := range scopes {
		want[s] = []string{reached80, reached100, rejected}
	}
	got := w.receive(t, 3*len(scopes), 2*time.Second, 30*time.Second)
	checkDelivery(t, recorded, want, got)
	second.waitLog(t, `"msg":"notification recovery sweep"`)
	second.stop(t)
	t.Logf("%d notifications left unpublished by the killed worker; all %d published after the restart", unpublished, 3*len(scopes))
}

// scrape reads the worker's /metrics at the address it logged.
func scrape(t *testing.T, output string) string {
	t.Helper()
	var addr string
	for line := range strings.Lines(output) {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "metrics listening" {
			addr = rec.Addr
		}
	}
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}
