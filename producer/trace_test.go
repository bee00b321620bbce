package producer_test

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/usage-event-service/usage-event-service/internal/tracecontext"
	"github.com/usage-event-service/usage-event-service/producer"
	"github.com/usage-event-service/usage-event-service/usage"
)

// capture forwards SendMessageBatch and keeps the entries sent.
type capture struct {
	next    producer.Client
	mu      sync.Mutex
	entries []sqstypes.SendMessageBatchRequestEntry
}

func (c *capture) SendMessageBatch(ctx context.Context, in *awssqs.SendMessageBatchInput, opts ...func(*awssqs.Options)) (*awssqs.SendMessageBatchOutput, error) {
	c.mu.Lock()
	c.entries = append(c.entries, in.Entries...)
	c.mu.Unlock()
	return c.next.SendMessageBatch(ctx, in, opts...)
}

// TestPublishCarriesItsSpanInEveryMessage: one producer span per
// PublishBatch, and each message carries its context both ways; the
// queue hands the traceparent attribute to consumers.
func TestPublishCarriesItsSpanInEveryMessage(t *testing.T) {
	cfg, c := awsEnv(t)
	url := newQueue(t, c, "", nil)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	sent := &capture{next: awssqs.NewFromConfig(cfg)}
	pub, err := producer.New(cfg, url, producer.WithClient(sent), producer.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	results, err := pub.PublishBatch(context.Background(), []usage.Event{event("u-1", "api-calls", "1"), event("u-2", "api-calls", "2")})
	if err != nil || results[0].Err != nil || results[1].Err != nil {
		t.Fatalf("publish: %v %v", results, err)
	}
	spans := exp.GetSpans().Snapshots()
	if len(spans) != 1 || spans[0].Name() != producer.PublishSpan || spans[0].SpanKind() != trace.SpanKindProducer {
		t.Fatalf("spans %v, want one producer span", spans)
	}
	span := spans[0].SpanContext()
	wantParent, wantXRay := tracecontext.Inject(trace.ContextWithSpanContext(context.Background(), span))
	if len(sent.entries) != 2 {
		t.Fatalf("%d entries sent", len(sent.entries))
	}
	for _, e := range sent.entries {
		if got := aws.ToString(e.MessageAttributes["traceparent"].StringValue); got != wantParent {
			t.Errorf("traceparent attribute %q, want %q", got, wantParent)
		}
		if got := aws.ToString(e.MessageSystemAttributes["AWSTraceHeader"].StringValue); got != wantXRay {
			t.Errorf("AWSTraceHeader %q, want %q", got, wantXRay)
		}
	}
	out, err := c.ReceiveMessage(context.Background(), &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
		MessageAttributeNames: []string{"All"}, WaitTimeSeconds: 1})
	if err != nil || len(out.Messages) == 0 {
		t.Fatalf("receive: %v, %v", out, err)
	}
	for _, m := range out.Messages {
		if got := tracecontext.Remote(aws.ToString(m.MessageAttributes["traceparent"].StringValue), ""); got.TraceID() != span.TraceID() || got.SpanID() != span.SpanID() {
			t.Errorf("received context %v, want the publish span %v", got, span)
		}
	}
}

// TestPublishWithoutTracingAddsNothing: with OpenTelemetry's default
// (no-op) provider and no span in the context, messages are as before.
func TestPublishWithoutTracingAddsNothing(t *testing.T) {
	cfg, c := awsEnv(t)
	url := newQueue(t, c, "", nil)
	sent := &capture{next: awssqs.NewFromConfig(cfg)}
	pub, err := producer.New(cfg, url, producer.WithClient(sent))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(context.Background(), event("u-1", "api-calls", "1")); err != nil {
		t.Fatal(err)
	}
	if len(sent.entries) != 1 || sent.entries[0].MessageAttributes != nil || sent.entries[0].MessageSystemAttributes != nil {
		t.Errorf("entries %+v, want no attributes", sent.entries)
	}
}
