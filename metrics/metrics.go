// Package metrics counts outcomes for operators: as CloudWatch Embedded
// Metric Format lines in Lambda (CloudWatch Logs turns them into metrics
// without any API call), and with the Prometheus client library for the
// worker. EMF is written by hand: it is a JSON shape, and no maintained
// Go library writes it.
package metrics

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Namespace is the CloudWatch namespace of the service's metrics; the
// Terraform dashboard and alarms read it.
const Namespace = "UsageEventService"

// Batch is what one processed batch contributes.
type Batch struct {
	Applied, Duplicates, Retried, DeadLettered int
	// Panics is the number of recovered panics (pipeline.ErrPanic); their
	// messages are among Retried.
	Panics         int
	Rejected       map[usage.Reason]int
	AmountConsumed float64 // a metric, so float is fine; the ledger has the exact amounts
	AmountRefunded float64 // given back by applied refunds
	Duration       time.Duration
}

// Count summarises a batch's results.
func Count(results []pipeline.Result, d time.Duration) Batch {
	b := Batch{Rejected: map[usage.Reason]int{}, Duration: d, Panics: len(pipeline.Panics(results))}
	for _, r := range results {
		switch r.Status {
		case usage.Applied:
			b.Applied++
			amount := r.Event.Amount
			if r.Entry != nil {
				amount = r.Entry.Amount // a refund's resolved amount
			}
			f, _ := strconv.ParseFloat(amount.String(), 64)
			switch {
			case r.Event.Is(usage.OperationRefund):
				b.AmountRefunded += f
			case r.Event.Is(usage.OperationGrant) || r.Event.Is(usage.OperationVoid):
				// balances given or taken, not usage
			default:
				b.AmountConsumed += f
			}
		case usage.Duplicate:
			b.Duplicates++
		case usage.Rejected:
			b.Rejected[r.Reason()]++
		case usage.Retry:
			b.Retried++
		}
		if r.DeadLettered {
			b.DeadLettered++
		}
	}
	return b
}

// Recorder receives batch counts.
type Recorder interface {
	Record(ctx context.Context, b Batch)
}

// Middleware records every batch that passes through.
func Middleware(r Recorder) pipeline.Middleware {
	return func(next pipeline.Handler) pipeline.Handler {
		return func(ctx context.Context, msgs []pipeline.Message) []pipeline.Result {
			start := time.Now()
			results := next(ctx, msgs)
			r.Record(ctx, Count(results, time.Since(start)))
			if hr, ok := r.(HoldRecorder); ok {
				evs, outcomes := make([]usage.Event, len(results)), make([]usage.Outcome, len(results))
				for i, res := range results {
					evs[i], outcomes[i] = res.Event, res.Outcome
				}
				if h := HoldsOf(evs, outcomes); h != (Holds{}) {
					hr.RecordHolds(ctx, h)
				}
			}
			return results
		}
	}
}

// EMF writes CloudWatch Embedded Metric Format documents, one JSON line
// each, with the dimension FunctionName on every metric and, for
// rejections, also Reason.
type EMF struct {
	mu           sync.Mutex
	Out          io.Writer
	FunctionName string
	Now          func() time.Time
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

func (e *EMF) Record(_ context.Context, b Batch) {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	ts := now().UnixMilli()
	rejected := 0
	for _, n := range b.Rejected {
		rejected += n
	}
	doc := map[string]any{
		"FunctionName":       e.FunctionName,
		"EventsApplied":      b.Applied,
		"EventsDuplicate":    b.Duplicates,
		"EventsRejected":     rejected,
		"EventsRetried":      b.Retried,
		"EventsDeadLettered": b.DeadLettered,
		"Panics":             b.Panics,
		"AmountConsumed":     b.AmountConsumed,
		"AmountRefunded":     b.AmountRefunded,
		"ProcessingLatency":  float64(b.Duration.Microseconds()) / 1000,
	}
	metrics := []emfMetric{
		{"EventsApplied", "Count"}, {"EventsDuplicate", "Count"}, {"EventsRejected", "Count"},
		{"EventsRetried", "Count"}, {"EventsDeadLettered", "Count"}, {"Panics", "Count"}, {"AmountConsumed", "None"}, {"AmountRefunded", "None"},
		{"ProcessingLatency", "Milliseconds"},
	}
	lines := []map[string]any{withMeta(doc, ts, [][]string{{"FunctionName"}}, metrics)}
	for _, reason := range sortedReasons(b.Rejected) {
		d := map[string]any{"FunctionName": e.FunctionName, "Reason": string(reason), "EventsRejected": b.Rejected[reason]}
		lines = append(lines, withMeta(d, ts, [][]string{{"FunctionName", "Reason"}}, []emfMetric{{"EventsRejected", "Count"}}))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range lines {
		enc, _ := json.Marshal(l) // maps of plain values always encode
		e.Out.Write(append(enc, '\n'))
	}
}

func withMeta(doc map[string]any, ts int64, dims [][]string, metrics []emfMetric) map[string]any {
	doc["_aws"] = map[string]any{
		"Timestamp": ts,
		"CloudWatchMetrics": []map[string]any{{
			"Namespace": Namespace, "Dimensions": dims, "Metrics": metrics,
		}},
	}
	return doc
}

func sortedReasons(m map[usage.Reason]int) []usage.Reason {
	out := make([]usage.Reason, 0, len(m))
	for r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Notifications is what the notification outbox contributes: the
// notifications writes recorded and the publications that succeeded or
// failed (right after the write or by the recovery sweep), and, from a
// sweep, the age of the oldest notification it left unpublished.
type Notifications struct {
	Recorded, Published, Failed int
	// Swept is set by a recovery sweep, which measured OldestUnpublished
	// (zero when it left nothing unpublished).
	Swept             bool
	OldestUnpublished time.Duration
}

// RecordNotifications writes one EMF document with the notification
// metrics (the age only from a sweep, so that the alarm on it sees one
// data point per sweep).
func (e *EMF) RecordNotifications(_ context.Context, n Notifications) {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	doc := map[string]any{
		"FunctionName":           e.FunctionName,
		"NotificationsRecorded":  n.Recorded,
		"NotificationsPublished": n.Published,
		"NotificationsFailed":    n.Failed,
	}
	ms := []emfMetric{{"NotificationsRecorded", "Count"}, {"NotificationsPublished", "Count"}, {"NotificationsFailed", "Count"}}
	if n.Swept {
		doc["OldestUnpublishedNotificationAge"] = n.OldestUnpublished.Seconds()
		ms = append(ms, emfMetric{"OldestUnpublishedNotificationAge", "Seconds"})
	}
	enc, _ := json.Marshal(withMeta(doc, now().UnixMilli(), [][]string{{"FunctionName"}}, ms))
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Out.Write(append(enc, '\n'))
}

// Holds is what holds contribute: reserves granted, settlements by kind,
// and, from a sweep, how long the oldest expired hold it found had been
// due (how far the sweeper is behind).
type Holds struct {
	Reserved, Committed, Released, Expired int
	Swept                                  bool
	OldestDue                              time.Duration
	// SweepFailed is set by a sweep that failed (throttled, no index...);
	// the next one retries.
	SweepFailed bool
	// Deferred counts expired holds a sweep could not settle (their
	// entitlement or entry cannot be read) and set aside for
	// usage.HoldDeferral.
	Deferred int
}

// HoldRecorder receives hold counts (EMF and Prometheus implement it).
type HoldRecorder interface {
	RecordHolds(ctx context.Context, h Holds)
}

// HoldsOf counts the holds among applied outcomes of requests.
func HoldsOf(evs []usage.Event, outcomes []usage.Outcome) Holds {
	var h Holds
	for i, o := range outcomes {
		if o.Status != usage.Applied {
			continue
		}
		switch {
		case evs[i].Is(usage.OperationReserve):
			h.Reserved++
		case evs[i].Is(usage.OperationCommit):
			h.Committed++
		case evs[i].Is(usage.OperationRelease):
			h.Released++
		}
	}
	return h
}

// RecordHolds writes one EMF document with the hold metrics (the age
// only from a sweep).
func (e *EMF) RecordHolds(_ context.Context, h Holds) {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	doc := map[string]any{"FunctionName": e.FunctionName,
		"HoldsReserved": h.Reserved, "HoldsCommitted": h.Committed, "HoldsReleased": h.Released, "HoldsExpired": h.Expired}
	ms := []emfMetric{{"HoldsReserved", "Count"}, {"HoldsCommitted", "Count"}, {"HoldsReleased", "Count"}, {"HoldsExpired", "Count"}}
	if h.Swept {
		doc["OldestExpiredHoldAge"] = h.OldestDue.Seconds()
		doc["HoldSweepsFailed"] = b2i(h.SweepFailed)
		doc["HoldsDeferred"] = h.Deferred
		ms = append(ms, emfMetric{"OldestExpiredHoldAge", "Seconds"}, emfMetric{"HoldSweepsFailed", "Count"}, emfMetric{"HoldsDeferred", "Count"})
	}
	enc, _ := json.Marshal(withMeta(doc, now().UnixMilli(), [][]string{{"FunctionName"}}, ms))
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Out.Write(append(enc, '\n'))
}

// Prometheus holds the worker's metrics for its /metrics endpoint, with
// the Go runtime's (go_*) and the process's (process_*) next to them.
type Prometheus struct {
	registry     *prometheus.Registry
	events       *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	deadLettered prometheus.Counter
	panics       prometheus.Counter
	amount       prometheus.Counter
	refunded     prometheus.Counter
	duration     prometheus.Histogram

	notesRecorded, notesPublished, notesFailed prometheus.Counter
	oldestUnpublished                          prometheus.Gauge

	holds             *prometheus.CounterVec
	oldestDueHold     prometheus.Gauge
	holdSweepFailures prometheus.Counter
}

// NewPrometheus registers the metrics on a registry of their own, so
// that tests and several workers in one process never collide.
func NewPrometheus() *Prometheus {
	p := &Prometheus{registry: prometheus.NewRegistry()}
	p.eventMetrics()
	p.notificationMetrics()
	p.holdMetrics()
	// Every series exists from the start, at zero: a rate() over a
	// counter that appears only with its first increment misses it.
	for _, o := range []string{"applied", "duplicate", "rejected", "retry"} {
		p.events.WithLabelValues(o)
	}
	for _, r := range usage.Reasons {
		p.rejected.WithLabelValues(string(r))
	}
	for _, e := range []string{"reserved", "committed", "released", "expired", "deferred"} {
		p.holds.WithLabelValues(e)
	}
	p.registry.MustRegister(p.events, p.rejected, p.deadLettered, p.panics, p.amount, p.refunded, p.duration,
		p.notesRecorded, p.notesPublished, p.notesFailed, p.oldestUnpublished, p.holds, p.oldestDueHold, p.holdSweepFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return p
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

func gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}

func (p *Prometheus) eventMetrics() {
	p.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "usage_events_total", Help: "Usage events processed, by outcome.",
	}, []string{"outcome"})
	p.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "usage_events_rejected_total", Help: "Rejected usage events, by reason code.",
	}, []string{"reason"})
	p.deadLettered = counter("usage_events_dead_lettered_total", "Rejected events sent to the dead-letter queue by the service.")
	p.panics = counter("usage_panics_total", "Recovered panics; their messages were left on the queue to be retried.")
	p.amount = counter("usage_amount_consumed_total", "Sum of applied consumes' amounts.")
	p.refunded = counter("usage_amount_refunded_total", "Sum of what applied refunds gave back.")
	p.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "usage_batch_duration_seconds", Help: "Time to process one received batch.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	})
}

func (p *Prometheus) notificationMetrics() {
	p.notesRecorded = counter("usage_notifications_recorded_total", "Notifications recorded in the outbox by the writes that caused them.")
	p.notesPublished = counter("usage_notifications_published_total", "Notifications published to the SNS topic (right after the write or by the recovery sweep).")
	p.notesFailed = counter("usage_notifications_failed_total", "Failed publications; the notification stays in the outbox for the recovery sweep.")
	p.oldestUnpublished = gauge("usage_notification_oldest_unpublished_age_seconds",
		"Age of the oldest notification the last recovery sweep left unpublished (0: none).")
}

func (p *Prometheus) holdMetrics() {
	p.holds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "usage_holds_total", Help: "Holds reserved, and settled: committed, released, expired (released by the sweeper); deferred: expired holds a sweep could not settle and set aside for an hour.",
	}, []string{"event"})
	p.oldestDueHold = gauge("usage_hold_oldest_expired_age_seconds", "How long the oldest expired hold the last sweep found had been due (0: none).")
	p.holdSweepFailures = counter("usage_hold_sweep_failures_total", "Hold sweeps that failed (the next one retries).")
}

// Record adds a batch.
func (p *Prometheus) Record(_ context.Context, b Batch) {
	rejected := 0
	for r, n := range b.Rejected {
		p.rejected.WithLabelValues(string(r)).Add(float64(n))
		rejected += n
	}
	p.events.WithLabelValues("applied").Add(float64(b.Applied))
	p.events.WithLabelValues("duplicate").Add(float64(b.Duplicates))
	p.events.WithLabelValues("rejected").Add(float64(rejected))
	p.events.WithLabelValues("retry").Add(float64(b.Retried))
	p.deadLettered.Add(float64(b.DeadLettered))
	p.panics.Add(float64(b.Panics))
	p.amount.Add(b.AmountConsumed)
	p.refunded.Add(b.AmountRefunded)
	p.duration.Observe(b.Duration.Seconds())
}

// RecordNotifications adds the outbox's counts; a sweep sets the age.
func (p *Prometheus) RecordNotifications(_ context.Context, n Notifications) {
	p.notesRecorded.Add(float64(n.Recorded))
	p.notesPublished.Add(float64(n.Published))
	p.notesFailed.Add(float64(n.Failed))
	if n.Swept {
		p.oldestUnpublished.Set(n.OldestUnpublished.Seconds())
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// RecordHolds adds the holds' counts; a sweep sets the age.
func (p *Prometheus) RecordHolds(_ context.Context, h Holds) {
	if h.SweepFailed {
		p.holdSweepFailures.Inc()
	}
	p.holds.WithLabelValues("reserved").Add(float64(h.Reserved))
	p.holds.WithLabelValues("committed").Add(float64(h.Committed))
	p.holds.WithLabelValues("released").Add(float64(h.Released))
	p.holds.WithLabelValues("expired").Add(float64(h.Expired))
	p.holds.WithLabelValues("deferred").Add(float64(h.Deferred))
	if h.Swept {
		p.oldestDueHold.Set(h.OldestDue.Seconds())
	}
}

// Handler serves /metrics (the Prometheus exposition formats, negotiated
// by promhttp) and /healthz.
func (p *Prometheus) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	return mux
}
