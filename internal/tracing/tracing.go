// Package tracing is the service's OpenTelemetry tracing: the tracer
// provider built from the standard OTEL_* variables, the trace context
// carried in SQS messages (a W3C traceparent message attribute and the
// X-Ray tracecontext.AWSTraceHeader system attribute), and the pipeline middleware
// that makes a span per batch and per event decision.
//
// Tracing is off unless configured (config.Tracing): then nothing here is
// used, the AWS clients get no tracer provider and the pipeline no
// middleware, so the service does what it did before, at the same cost.
package tracing

import (
	"context"
	"fmt"

	smithytracing "github.com/aws/smithy-go/tracing"
	"github.com/aws/smithy-go/tracing/smithyoteltracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// DefaultServiceName is service.name unless OTEL_SERVICE_NAME (or
// OTEL_RESOURCE_ATTRIBUTES) says otherwise.
const DefaultServiceName = "usage-event-service"

// NewProvider returns a tracer provider that exports over OTLP/HTTP in
// batches. The exporter reads its own standard variables
// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
// OTEL_EXPORTER_OTLP_HEADERS, ...; default http://localhost:4318, where
// a collector or the ADOT Lambda layer listens), the SDK its sampler
// (OTEL_TRACES_SAMPLER, default parentbased_always_on) and the resource
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES. Its trace IDs start with
// the time, as X-Ray's do (xrayIDs). Call Shutdown when done
// (it flushes), and in Lambda ForceFlush after each invocation.
func NewProvider(ctx context.Context) (*sdktrace.TracerProvider, error) {
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", DefaultServiceName)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // after the default, so that OTEL_SERVICE_NAME wins
	)
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithIDGenerator(xrayIDs{})), nil
}

// AWS is tp for an AWS SDK client's Options.TracerProvider: the client
// then records its calls (DynamoDB.TransactWriteItems,
// SQS.SendMessageBatch, ...) as client spans of tp, children of the span
// in the call's context. It is the SDK's own instrumentation, through its
// OpenTelemetry adapter. Clients built without it get the SDK's no-op
// tracer, as before.
func AWS(tp trace.TracerProvider) smithytracing.TracerProvider {
	return smithyoteltracing.Adapt(tp)
}
