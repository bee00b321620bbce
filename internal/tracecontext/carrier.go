// Package tracecontext carries a producer's trace context on an SQS
// message and reads it back: the W3C traceparent message attribute and
// the AWSTraceHeader system attribute (X-Ray's format). A leaf on the
// OpenTelemetry API alone, so that the producer library links no SDK,
// exporter or anything of the service's server side.
package tracecontext

import (
	"context"
	"encoding/hex"
	"strings"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the spans this module makes.
const ScopeName = "github.com/usage-event-service/usage-event-service"

// The two places a message carries its producer's trace context.
const (
	// TraceParentAttribute is the message attribute (DataType String)
	// with the W3C traceparent of the producer's span.
	TraceParentAttribute = "traceparent"
	// AWSTraceHeader is the SQS message system attribute with the same
	// context in X-Ray's header format, which Lambda and X-Ray read.
	AWSTraceHeader = "AWSTraceHeader"
)

// traceContext is the W3C propagator; only traceparent is carried.
var traceContext propagation.TraceContext

// Inject returns the carriers of the span context in ctx: its W3C
// traceparent and its X-Ray trace header. Both are "" when ctx has no
// valid span context (tracing off): nothing is added to the message.
func Inject(ctx context.Context) (traceparent, xray string) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", ""
	}
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	return c.Get(TraceParentAttribute), FormatXRay(sc)
}

// Remote is the producer's span context a message carries: from its
// traceparent attribute if that is valid, else from its AWSTraceHeader;
// the zero (invalid) SpanContext when neither is. A malformed value is
// ignored, never an error: tracing must not fail an event.
func Remote(traceparent, xray string) trace.SpanContext {
	if traceparent != "" {
		ctx := traceContext.Extract(context.Background(), oneKey(traceparent))
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			return sc
		}
	}
	if xray != "" {
		if sc, ok := ParseXRay(xray); ok {
			return sc
		}
	}
	return trace.SpanContext{}
}

// oneKey is a carrier holding only a traceparent.
type oneKey string

func (c oneKey) Get(key string) string {
	if key == TraceParentAttribute {
		return string(c)
	}
	return ""
}
func (oneKey) Set(string, string) {}
func (oneKey) Keys() []string     { return []string{TraceParentAttribute} }

// FormatXRay writes sc as an X-Ray trace header:
// "Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>". The Root is
// the 32 hex digits of the trace ID, split after the first 8.
func FormatXRay(sc trace.SpanContext) string {
	tid := sc.TraceID().String()
	sampled := "0"
	if sc.IsSampled() {
		sampled = "1"
	}
	return "Root=1-" + tid[:8] + "-" + tid[8:] + ";Parent=" + sc.SpanID().String() + ";Sampled=" + sampled
}

// ParseXRay reads an X-Ray trace header (keys in any order, others such
// as Lineage ignored). It needs a valid Root and Parent; Sampled=1 marks
// it sampled, anything else (0, ?, absent) not. ok is false for a header
// it cannot use.
func ParseXRay(h string) (sc trace.SpanContext, ok bool) {
	var cfg trace.SpanContextConfig
	var root, parent bool
	for part := range strings.SplitSeq(h, ";") {
		k, v, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found {
			continue
		}
		switch k {
		case "Root":
			// 1-<8 hex: epoch seconds>-<24 hex>
			ver, rest, ok1 := strings.Cut(v, "-")
			epoch, unique, ok2 := strings.Cut(rest, "-")
			if !ok1 || !ok2 || ver != "1" || len(epoch) != 8 || len(unique) != 24 {
				return trace.SpanContext{}, false
			}
			if _, err := hex.Decode(cfg.TraceID[:], []byte(epoch+unique)); err != nil {
				return trace.SpanContext{}, false
			}
			root = true
		case "Parent":
			if len(v) != 16 {
				return trace.SpanContext{}, false
			}
			if _, err := hex.Decode(cfg.SpanID[:], []byte(v)); err != nil {
				return trace.SpanContext{}, false
			}
			parent = true
		case "Sampled":
			if v == "1" {
				cfg.TraceFlags = trace.FlagsSampled
			}
		}
	}
	if !root || !parent {
		return trace.SpanContext{}, false
	}
	cfg.Remote = true
	sc = trace.NewSpanContext(cfg)
	return sc, sc.IsValid()
}
