package pipeline_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/metering"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/usage-event-service/usage-event-service/internal/tracecontext"
	"github.com/usage-event-service/usage-event-service/internal/tracing"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// planStore decides every scope against one fixed entitlement and
// writes nothing: the pipeline's own CPU work, without I/O.
type planStore struct{ state usage.State }

func (s planStore) Update(_ context.Context, _ usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome {
	return decide(s.state, records).Outcomes
}

// batch20 is BenchmarkBatch20's "hot" batch (package usage) as messages:
// 20 events, half of them from 2 hot users.
func batch20() []pipeline.Message {
	msgs := make([]pipeline.Message, 20)
	for i := range msgs {
		user := fmt.Sprintf("user-%05d", 100+i)
		if i%2 == 0 {
			user = fmt.Sprintf("user-%05d", i/2%2)
		}
		ev := usage.NewEvent(user, []string{"AI_TUTOR_ACCESS", "API_CALLS"}[i/4%2])
		ev.Amount = usage.MustDecimal([]string{"1", "1", "2", "0.5", "3"}[i%5])
		ev.Metadata = []byte(`{"feature":"chat","requestId":"0b7e4c9a-5d21-4f3e-8a6b-1c2d3e4f5a6b"}`)
		b, err := ev.MarshalJSON()
		if err != nil {
			panic(err)
		}
		msgs[i] = pipeline.Message{ID: fmt.Sprintf("6f1c2e3d-4b5a-4978-8e6f-%012d", i), Body: string(b), ReceiveCount: 1,
			SentAt: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	}
	return msgs
}

// planStoreOf is a planStore of an entitlement with room for every batch.
func planStoreOf() metering.Updater {
	return planStore{usage.State{Entitlement: usage.ParseEntitlement(usage.Item{Exists: true, Attrs: map[string]usage.Value{
		usage.AttrLimit: usage.NumberValue(usage.MustDecimal("1000000")), usage.AttrUsed: usage.NumberValue(usage.MustDecimal("41.5")),
	}})}}
}

// BenchmarkHandle20 is one batch of 20 through the handler chain as
// pipeline.New builds it without logging or metrics, against planStore:
// "off" with tracing off (no Tracing middleware: the chain the service
// runs unless tracing is configured), "on" with the tracing middleware
// and a provider that samples everything (the spans are recorded, not
// exported), the messages carrying a producer's context.
func BenchmarkHandle20(b *testing.B) {
	now := func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }
	traced := batch20()
	producer := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled}))
	tp, xray := tracecontext.Inject(producer)
	for i := range traced {
		traced[i].TraceParent, traced[i].AWSTraceHeader = tp, xray
	}
	provider := sdktrace.NewTracerProvider()
	defer provider.Shutdown(context.Background())
	for _, c := range []struct {
		name string
		msgs []pipeline.Message
		opts pipeline.Options
	}{
		{"off", batch20(), pipeline.Options{}},
		{"on", traced, pipeline.Options{Tracing: tracing.Middleware(provider, true)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := &metering.Processor{Store: planStoreOf(), Now: now}
			h := pipeline.New(p.Handle, c.opts)
			b.ReportAllocs()
			for b.Loop() {
				for _, r := range h(context.Background(), c.msgs) {
					if r.Status != usage.Applied {
						b.Fatal(r.Status, r.Err)
					}
				}
			}
		})
	}
}
