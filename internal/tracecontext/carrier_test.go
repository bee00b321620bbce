package tracecontext_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/usage-event-service/usage-event-service/internal/tracecontext"
)

func spanContext(sampled bool) trace.SpanContext {
	cfg := trace.SpanContextConfig{
		TraceID: trace.TraceID{0x5f, 0x3a, 0x9c, 0x01, 0x4b, 0xd8, 0x62, 0xe3, 0xfe, 0x1b, 0xe4, 0x6a, 0x99, 0x42, 0x72, 0x79},
		SpanID:  trace.SpanID{0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8},
	}
	if sampled {
		cfg.TraceFlags = trace.FlagsSampled
	}
	return trace.NewSpanContext(cfg)
}

func TestInjectWritesBothCarriers(t *testing.T) {
	ctx := trace.ContextWithSpanContext(context.Background(), spanContext(true))
	tp, xray := tracecontext.Inject(ctx)
	if want := "00-5f3a9c014bd862e3fe1be46a99427279-53995c3f42cd8ad8-01"; tp != want {
		t.Errorf("traceparent %q, want %q", tp, want)
	}
	if want := "Root=1-5f3a9c01-4bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8;Sampled=1"; xray != want {
		t.Errorf("X-Ray header %q, want %q", xray, want)
	}
	ctx = trace.ContextWithSpanContext(context.Background(), spanContext(false))
	if tp, xray := tracecontext.Inject(ctx); tp != "00-5f3a9c014bd862e3fe1be46a99427279-53995c3f42cd8ad8-00" || xray[len(xray)-9:] != "Sampled=0" {
		t.Errorf("not sampled: %q, %q", tp, xray)
	}
}

func TestInjectWithoutASpanAddsNothing(t *testing.T) {
	if tp, xray := tracecontext.Inject(context.Background()); tp != "" || xray != "" {
		t.Errorf("no span: %q, %q; want nothing", tp, xray)
	}
}

func TestRemoteReadsEitherCarrier(t *testing.T) {
	want := spanContext(true).WithRemote(true)
	tp, xray := tracecontext.Inject(trace.ContextWithSpanContext(context.Background(), spanContext(true)))
	for _, c := range []struct{ name, traceparent, xray string }{
		{"both", tp, xray},
		{"traceparent only", tp, ""},
		{"X-Ray header only", "", xray},
		{"malformed traceparent, X-Ray header used", "00-zz", xray},
		{"X-Ray keys in another order, with Lineage", "", "Parent=53995c3f42cd8ad8;Lineage=a87bd80c:1|68fd508a:5;Sampled=1;Root=1-5f3a9c01-4bd862e3fe1be46a99427279"},
	} {
		if got := tracecontext.Remote(c.traceparent, c.xray); !got.Equal(want) {
			t.Errorf("%s: %v, want %v", c.name, got, want)
		}
	}
}

func TestRemoteIgnoresMalformedHeaders(t *testing.T) {
	for _, h := range []string{
		"",
		"garbage",
		"Root=1-5f3a9c01-4bd862e3fe1be46a99427279",                                   // no Parent
		"Parent=53995c3f42cd8ad8;Sampled=1",                                          // no Root
		"Root=2-5f3a9c01-4bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8",           // version
		"Root=1-5f3a9c01-4bd862e3fe1be46a9942727;Parent=53995c3f42cd8ad8",            // short
		"Root=1-5f3a9c01-4bd862e3fe1be46a9942727x;Parent=53995c3f42cd8ad8",           // not hex
		"Root=1-5f3a9c014bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8",            // no second dash
		"Root=1-5f3a9c01-4bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad",            // short parent
		"Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8;Sampled=1", // zero trace ID
		"Root=1-5f3a9c01-4bd862e3fe1be46a99427279;Parent=0000000000000000;Sampled=1", // zero span ID
	} {
		if sc := tracecontext.Remote("not-a-traceparent", h); sc.IsValid() {
			t.Errorf("%q: %v, want nothing", h, sc)
		}
		if _, ok := tracecontext.ParseXRay(h); ok {
			t.Errorf("ParseXRay(%q) ok", h)
		}
	}
}

func TestXRaySampledFlag(t *testing.T) {
	for h, sampled := range map[string]bool{
		"Root=1-5f3a9c01-4bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8;Sampled=1": true,
		"Root=1-5f3a9c01-4bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8;Sampled=0": false,
		"Root=1-5f3a9c01-4bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8;Sampled=?": false,
		"Root=1-5f3a9c01-4bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8":           false,
	} {
		sc, ok := tracecontext.ParseXRay(h)
		if !ok || sc.IsSampled() != sampled || !sc.IsRemote() {
			t.Errorf("%q: %v %v, want sampled %v", h, sc, ok, sampled)
		}
	}
}
