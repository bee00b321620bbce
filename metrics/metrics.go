// Package metrics counts outcomes for operators: as CloudWatch Embedded
// Metric Format lines in Lambda (CloudWatch Logs turns them into metrics
// without any API call), and as Prometheus text for the worker.
package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Namespace is the CloudWatch namespace of the service's metrics; the
// Terraform dashboard and alarms read it.
const Namespace = "UsageEventService"

// Batch is what one processed batch contributes.
type Batch struct {
	Applied, Duplicates, Retried, DeadLettered int
	Rejected                                   map[usage.Reason]int
	AmountConsumed                             float64 // a metric, so float is fine; the ledger has the exact amounts
	Duration                                   time.Duration
}

// Count summarises a batch's results.
func Count(results []pipeline.Result, d time.Duration) Batch {
	b := Batch{Rejected: map[usage.Reason]int{}, Duration: d}
	for _, r := range results {
		switch r.Status {
		case usage.Applied:
			b.Applied++
			f, _ := strconv.ParseFloat(r.Event.Amount.String(), 64)
			b.AmountConsumed += f
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
		"AmountConsumed":     b.AmountConsumed,
		"ProcessingLatency":  float64(b.Duration.Microseconds()) / 1000,
	}
	metrics := []emfMetric{
		{"EventsApplied", "Count"}, {"EventsDuplicate", "Count"}, {"EventsRejected", "Count"},
		{"EventsRetried", "Count"}, {"EventsDeadLettered", "Count"}, {"AmountConsumed", "None"},
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

// Prometheus accumulates counters for the worker's /metrics endpoint.
type Prometheus struct {
	mu           sync.Mutex
	applied      int64
	duplicates   int64
	retried      int64
	deadLettered int64
	rejected     map[usage.Reason]int64
	amount       float64
	batches      int64
	durationSum  float64
	buckets      []int64 // cumulative counts per durationBuckets bound
}

var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

func NewPrometheus() *Prometheus {
	return &Prometheus{rejected: map[usage.Reason]int64{}, buckets: make([]int64, len(durationBuckets))}
}

func (p *Prometheus) Record(_ context.Context, b Batch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.applied += int64(b.Applied)
	p.duplicates += int64(b.Duplicates)
	p.retried += int64(b.Retried)
	p.deadLettered += int64(b.DeadLettered)
	for r, n := range b.Rejected {
		p.rejected[r] += int64(n)
	}
	p.amount += b.AmountConsumed
	p.batches++
	s := b.Duration.Seconds()
	p.durationSum += s
	for i, le := range durationBuckets {
		if s <= le {
			p.buckets[i]++
		}
	}
}

// WriteTo writes the Prometheus text exposition format.
func (p *Prometheus) WriteTo(w io.Writer) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	counter := func(name, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
	}
	counter("usage_events_total", "Usage events processed, by outcome.")
	for _, o := range []struct {
		name string
		n    int64
	}{{"applied", p.applied}, {"duplicate", p.duplicates}, {"retry", p.retried}} {
		fmt.Fprintf(&b, "usage_events_total{outcome=%q} %d\n", o.name, o.n)
	}
	var rejected int64
	for _, n := range p.rejected {
		rejected += n
	}
	fmt.Fprintf(&b, "usage_events_total{outcome=\"rejected\"} %d\n", rejected)
	counter("usage_events_rejected_total", "Rejected usage events, by reason code.")
	for _, r := range usage.Reasons {
		fmt.Fprintf(&b, "usage_events_rejected_total{reason=%q} %d\n", r, p.rejected[r])
	}
	counter("usage_events_dead_lettered_total", "Rejected events sent to the dead-letter queue by the service.")
	fmt.Fprintf(&b, "usage_events_dead_lettered_total %d\n", p.deadLettered)
	counter("usage_amount_consumed_total", "Sum of applied amounts.")
	fmt.Fprintf(&b, "usage_amount_consumed_total %s\n", strconv.FormatFloat(p.amount, 'g', -1, 64))
	fmt.Fprintf(&b, "# HELP usage_batch_duration_seconds Time to process one received batch.\n# TYPE usage_batch_duration_seconds histogram\n")
	for i, le := range durationBuckets {
		fmt.Fprintf(&b, "usage_batch_duration_seconds_bucket{le=%q} %d\n", strconv.FormatFloat(le, 'g', -1, 64), p.buckets[i])
	}
	fmt.Fprintf(&b, "usage_batch_duration_seconds_bucket{le=\"+Inf\"} %d\n", p.batches)
	fmt.Fprintf(&b, "usage_batch_duration_seconds_sum %s\nusage_batch_duration_seconds_count %d\n", strconv.FormatFloat(p.durationSum, 'g', -1, 64), p.batches)
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// Handler serves /metrics and /healthz.
func (p *Prometheus) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		p.WriteTo(w)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	return mux
}
