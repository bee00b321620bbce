package tracing_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/usage-event-service/usage-event-service/metering"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/usage-event-service/usage-event-service/internal/tracecontext"
	"github.com/usage-event-service/usage-event-service/internal/tracing"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// spyStore applies everything and remembers the span each scope's
// Update ran under.
type spyStore struct {
	mu     sync.Mutex
	spans  map[usage.Scope]trace.SpanContext
	status usage.Status
}

func (s *spyStore) Update(ctx context.Context, scope usage.Scope, records []usage.Record, _ usage.Decide) []usage.Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spans[scope] = trace.SpanContextFromContext(ctx)
	out := make([]usage.Outcome, len(records))
	for i := range out {
		out[i].Status = s.status
		if s.status == usage.Retry {
			out[i].Err = errors.New("throttled")
		}
	}
	return out
}

func body(t *testing.T, user, key string) string {
	t.Helper()
	ev := usage.NewEvent(user, key)
	ev.Amount = usage.MustDecimal("1")
	b, err := ev.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// keyed is an API_CALLS event of user with an idempotency key.
func keyed(t *testing.T, user, key string) string {
	t.Helper()
	ev := usage.NewEvent(user, "API_CALLS")
	ev.IdempotencyKey = key
	b, err := ev.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, a := range s.Attributes() {
		m[a.Key] = a.Value
	}
	return m
}

func traced(t *testing.T, store metering.Updater, ids bool) (pipeline.Handler, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	p := &metering.Processor{Store: store}
	return pipeline.New(p.Handle, pipeline.Options{Tracing: tracing.Middleware(tp, ids)}), exp
}

func TestEventSpansJoinTheirProducersTraces(t *testing.T) {
	store := &spyStore{spans: map[usage.Scope]trace.SpanContext{}, status: usage.Applied}
	h, exp := traced(t, store, true)
	producer := spanContext(true)
	tp, xray := tracecontext.Inject(trace.ContextWithSpanContext(context.Background(), producer))
	msgs := []pipeline.Message{
		{ID: "m1", Body: keyed(t, "user-1", "key-m1"), TraceParent: tp},                    // W3C attribute
		{ID: "m2", Body: keyed(t, "user-2", "key-m2"), AWSTraceHeader: xray},               // X-Ray only (e.g. a producer in another language)
		{ID: "m3", Body: body(t, "user-3", "API_CALLS")},                                   // none
		{ID: "m4", Body: "{not json", TraceParent: "00-garbage", AWSTraceHeader: "Root=x"}, // malformed context, invalid body
	}
	results := h(context.Background(), msgs)
	if len(results) != 4 {
		t.Fatalf("%d results", len(results))
	}
	spans := exp.GetSpans().Snapshots()
	var batch sdktrace.ReadOnlySpan
	events := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		switch s.Name() {
		case tracing.BatchSpan:
			batch = s
		case tracing.EventSpan:
			events[attrs(s)[tracing.AttrMessageID].AsString()] = s
		}
	}
	if batch == nil || len(events) != 4 {
		t.Fatalf("spans: batch %v, %d event spans; want 1 and 4", batch, len(events))
	}
	if batch.SpanKind() != trace.SpanKindConsumer || len(batch.Links()) != 1 || !batch.Links()[0].SpanContext.Equal(producer.WithRemote(true)) {
		t.Errorf("batch span: kind %v, links %v; want consumer, linked to the producer once", batch.SpanKind(), batch.Links())
	}
	if batch.Parent().IsValid() || batch.SpanContext().TraceID() == producer.TraceID() {
		t.Errorf("batch span with messages of no trace: parent %v, want a trace of its own", batch.Parent())
	}
	for _, id := range []string{"m1", "m2"} {
		s := events[id]
		if s.SpanContext().TraceID() != producer.TraceID() || s.Parent().SpanID() != producer.SpanID() {
			t.Errorf("%s: trace %v parent %v; want the producer's %v", id, s.SpanContext().TraceID(), s.Parent().SpanID(), producer)
		}
		if len(s.Links()) != 1 || s.Links()[0].SpanContext.SpanID() != batch.SpanContext().SpanID() {
			t.Errorf("%s: links %v, want the batch span", id, s.Links())
		}
		a := attrs(s)
		if a[tracing.AttrOutcome].AsString() != "APPLIED" || a[tracing.AttrUserID].AsString() == "" || a[tracing.AttrEntitlementKey].AsString() != "API_CALLS" ||
			a[tracing.AttrIdempotencyKey].AsString() != "key-"+id || a[tracing.AttrEventID].AsString() != id {
			t.Errorf("%s: attributes %v", id, a)
		}
		// The store ran under this event's span (each event is its own scope here).
		if got := store.spans[usage.Scope{UserID: a[tracing.AttrUserID].AsString(), EntitlementKey: "API_CALLS"}]; got.SpanID() != s.SpanContext().SpanID() {
			t.Errorf("%s: store ran under %v, want the event span %v", id, got.SpanID(), s.SpanContext().SpanID())
		}
	}
	for _, id := range []string{"m3", "m4"} {
		if s := events[id]; s.Parent().SpanID() != batch.SpanContext().SpanID() {
			t.Errorf("%s (no valid context): parent %v, want the batch span", id, s.Parent())
		}
	}
	if a := attrs(events["m4"]); a[tracing.AttrOutcome].AsString() != "REJECTED" || a[tracing.AttrReason].AsString() != string(usage.ReasonInvalidJSON) {
		t.Errorf("m4: %v, want REJECTED with its reason", a)
	}
}

func TestAScopeWritesUnderItsFirstEventsSpan(t *testing.T) {
	store := &spyStore{spans: map[usage.Scope]trace.SpanContext{}, status: usage.Applied}
	h, exp := traced(t, store, true)
	b := body(t, "user-1", "API_CALLS")
	h(context.Background(), []pipeline.Message{{ID: "m1", Body: b}, {ID: "m2", Body: b}})
	var first trace.SpanID
	for _, s := range exp.GetSpans().Snapshots() {
		if s.Name() == tracing.EventSpan && attrs(s)[tracing.AttrMessageID].AsString() == "m1" {
			first = s.SpanContext().SpanID()
		}
	}
	if got := store.spans[usage.Scope{UserID: "user-1", EntitlementKey: "API_CALLS"}]; !first.IsValid() || got.SpanID() != first {
		t.Errorf("the group's store call ran under %v, want m1's span %v", got.SpanID(), first)
	}
}

func TestIDsCanBeLeftOffAndRetryIsAnError(t *testing.T) {
	store := &spyStore{spans: map[usage.Scope]trace.SpanContext{}, status: usage.Retry}
	h, exp := traced(t, store, false)
	h(context.Background(), []pipeline.Message{{ID: "m1", Body: body(t, "user-1", "API_CALLS")}})
	for _, s := range exp.GetSpans().Snapshots() {
		a := attrs(s)
		if _, ok := a[tracing.AttrUserID]; ok {
			t.Errorf("%s has userId with ids off", s.Name())
		}
		if _, ok := a[tracing.AttrEntitlementKey]; ok {
			t.Errorf("%s has entitlementKey with ids off", s.Name())
		}
		if _, ok := a[tracing.AttrIdempotencyKey]; ok {
			t.Errorf("%s has the idempotency key with ids off", s.Name())
		}
		if s.Name() == tracing.EventSpan && (a[tracing.AttrOutcome].AsString() != "RETRY" || s.Status().Code != codes.Error || s.Status().Description != "throttled") {
			t.Errorf("event span: %v, status %v; want RETRY, an error status", a, s.Status())
		}
	}
}

// A batch whose messages are all of one trace is in that trace.
func TestABatchOfOneTraceIsInIt(t *testing.T) {
	store := &spyStore{spans: map[usage.Scope]trace.SpanContext{}, status: usage.Applied}
	h, exp := traced(t, store, true)
	tp, _ := tracecontext.Inject(trace.ContextWithSpanContext(context.Background(), spanContext(true)))
	h(context.Background(), []pipeline.Message{{ID: "m1", Body: body(t, "u1", "k"), TraceParent: tp}, {ID: "m2", Body: body(t, "u2", "k"), TraceParent: tp}})
	for _, s := range exp.GetSpans().Snapshots() {
		if s.SpanContext().TraceID() != spanContext(true).TraceID() {
			t.Errorf("%s in trace %v, want the producer's", s.Name(), s.SpanContext().TraceID())
		}
		if s.Name() == tracing.BatchSpan && s.Parent().SpanID() != spanContext(true).SpanID() {
			t.Errorf("batch span parent %v, want the producer span", s.Parent())
		}
	}
}

// With tracing off (no Tracing option, as the service builds its pipeline
// unless configured) nothing is recorded, even with a recording global
// provider and messages that carry a producer's context.
func TestTracingOffRecordsNothing(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	defer otel.SetTracerProvider(prev)
	store := &spyStore{spans: map[usage.Scope]trace.SpanContext{}, status: usage.Applied}
	p := &metering.Processor{Store: store}
	h := pipeline.New(p.Handle, pipeline.Options{})
	parent, _ := tracecontext.Inject(trace.ContextWithSpanContext(context.Background(), spanContext(true)))
	h(context.Background(), []pipeline.Message{{ID: "m1", Body: body(t, "u1", "k"), TraceParent: parent}})
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans recorded with tracing off", n)
	}
	if sc := store.spans[usage.Scope{UserID: "u1", EntitlementKey: "k"}]; sc.IsValid() {
		t.Errorf("the store ran under a span (%v) with tracing off", sc)
	}
}
