package tracing_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/usage-event-service/usage-event-service/internal/tracing"
)

func TestLogLinesCarryTheTrace(t *testing.T) {
	var buf strings.Builder
	logger := slog.New(tracing.LogHandler(slog.NewJSONHandler(&buf, nil))).With("service", "x")
	logger.InfoContext(trace.ContextWithSpanContext(context.Background(), spanContext(true)), "traced")
	logger.InfoContext(context.Background(), "untraced")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"traceId":"5f3a9c014bd862e3fe1be46a99427279","spanId":"53995c3f42cd8ad8"`) || strings.Contains(lines[1], "traceId") {
		t.Errorf("log lines:\n%s", buf.String())
	}
}

// spanContext is a remote producer's span context.
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
