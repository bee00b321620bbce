package tracing_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/internal/tracing"
	lambdaadapter "github.com/usage-event-service/usage-event-service/lambda"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/producer"
	"github.com/usage-event-service/usage-event-service/sqs"
	"github.com/usage-event-service/usage-event-service/usage"
)

func TestMain(m *testing.M) { emulator.Main(m) }

// rig is the service's code as cmd/usage-event-service wires it with
// tracing on, against the emulators (reached through the SDK's standard
// variables), with one in-memory exporter for the producer and the
// service: what a collector would receive from both.
type rig struct {
	exp         *tracetest.InMemoryExporter
	tp          *sdktrace.TracerProvider
	plain       *awssqs.Client // the test's own checks, untraced
	tracedSQS   *awssqs.Client
	queueURL    string
	handler     pipeline.Handler
	publisher   *producer.Publisher
	sent        *capture
	user, key   string
	entitlement string
	ddb         *awsdynamodb.Client
}

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

func newRig(t *testing.T) *rig {
	t.Helper()
	cfg := emulator.Stack(t)
	ctx := context.Background()
	r := &rig{exp: tracetest.NewInMemoryExporter(), plain: awssqs.NewFromConfig(cfg), user: "user-1", key: "API_CALLS"}
	r.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(r.exp))
	t.Cleanup(func() { r.tp.Shutdown(context.Background()) })
	plainDDB := awsdynamodb.NewFromConfig(cfg)
	r.entitlement = emulator.UniqueName(t, "ent")
	ledger := emulator.UniqueName(t, "ledger")
	if _, err := dynamodb.CreateEntitlementsTable(ctx, plainDDB, r.entitlement, dynamodb.DefaultEntitlementKeys); err != nil {
		t.Fatal(err)
	}
	if _, err := dynamodb.CreateLedgerTable(ctx, plainDDB, ledger); err != nil {
		t.Fatal(err)
	}
	limit := usage.MustDecimal("100")
	if err := dynamodb.PutEntitlement(ctx, plainDDB, r.entitlement, dynamodb.DefaultEntitlementKeys, dynamodb.EntitlementItem{UserID: r.user, EntitlementKey: r.key, Limit: &limit}); err != nil {
		t.Fatal(err)
	}
	queues, err := sqs.CreateQueues(ctx, r.plain, emulator.UniqueName(t, "q"), 3, 30)
	if err != nil {
		t.Fatal(err)
	}
	r.queueURL = queues.URL

	// The service: its clients with the SDK's instrumentation, the
	// pipeline with the tracing middleware.
	r.ddb = awsdynamodb.NewFromConfig(cfg, func(o *awsdynamodb.Options) { o.TracerProvider = tracing.AWS(r.tp) })
	r.tracedSQS = awssqs.NewFromConfig(cfg, func(o *awssqs.Options) { o.TracerProvider = tracing.AWS(r.tp) })
	store := dynamodb.NewStore(r.ddb, dynamodb.Config{EntitlementsTable: r.entitlement, LedgerTable: ledger})
	p := &metering.Processor{Store: sqs.ReleaseEarly(metering.Writer{Store: store})}
	r.handler = pipeline.New(p.Handle, pipeline.Options{Tracing: tracing.Middleware(r.tp, true)})

	// The producer, with its own instrumented client.
	r.sent = &capture{next: r.tracedSQS}
	if r.publisher, err = producer.New(cfg, r.queueURL, producer.WithClient(r.sent), producer.WithTracerProvider(r.tp)); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) publish(t *testing.T, amount string) {
	t.Helper()
	ev := usage.NewEvent(r.user, r.key)
	ev.Amount = usage.MustDecimal(amount)
	if _, err := r.publisher.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) used(t *testing.T) string {
	t.Helper()
	ents, err := dynamodb.ListEntitlements(context.Background(), r.ddb, r.entitlement, dynamodb.DefaultEntitlementKeys, r.user, r.key)
	if err != nil || len(ents) != 1 {
		t.Fatalf("entitlement: %v %v", ents, err)
	}
	return ents[0].Used.String()
}

// checkOneTrace finds the producer span and asserts that the service's
// batch span, its event span (APPLIED) and the DynamoDB
// TransactWriteItems span are in the producer's trace: producer →
// event decision → TransactWriteItems, and producer → batch.
func (r *rig) checkOneTrace(t *testing.T) {
	t.Helper()
	spans := r.exp.GetSpans().Snapshots()
	var publish sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == producer.PublishSpan {
			publish = s
		}
	}
	if publish == nil {
		t.Fatalf("no producer span among %d spans", len(spans))
	}
	tid := publish.SpanContext().TraceID()
	inTrace := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		if s.SpanContext().TraceID() == tid {
			inTrace[s.Name()] = append(inTrace[s.Name()], s)
		}
	}
	names := func() []string {
		var n []string
		for k := range inTrace {
			n = append(n, k)
		}
		return n
	}
	if len(inTrace["SQS.SendMessageBatch"]) != 1 || inTrace["SQS.SendMessageBatch"][0].Parent().SpanID() != publish.SpanContext().SpanID() {
		t.Errorf("the SDK's SendMessageBatch span is not a child of the publish span; the trace has %v", names())
	}
	if b := inTrace[tracing.BatchSpan]; len(b) != 1 || b[0].Parent().SpanID() != publish.SpanContext().SpanID() {
		t.Fatalf("no batch span under the producer span; the trace has %v", names())
	}
	events := inTrace[tracing.EventSpan]
	if len(events) != 1 || events[0].Parent().SpanID() != publish.SpanContext().SpanID() || attrs(events[0])[tracing.AttrOutcome].AsString() != "APPLIED" {
		t.Fatalf("event spans in the trace: %v; want one APPLIED under the producer span", events)
	}
	ev := events[0]
	var write sdktrace.ReadOnlySpan
	for _, s := range inTrace["DynamoDB.TransactWriteItems"] {
		if s.Parent().SpanID() == ev.SpanContext().SpanID() {
			write = s
		}
	}
	if write == nil {
		t.Fatalf("no DynamoDB.TransactWriteItems span under the event span; the trace has %v", names())
	}
	if write.SpanKind() != trace.SpanKindClient {
		t.Errorf("TransactWriteItems span kind %v, want client", write.SpanKind())
	}
}

// TestOneTraceFromTheProducerThroughTheWorkerToTheWrite: the Go producer
// publishes to the SQS emulator; the worker (sqs.Worker, the pipeline,
// the DynamoDB store against DynamoDB Local) applies the event; the
// producer's span, the worker's batch and event spans and the
// TransactWriteItems span share one trace.
func TestOneTraceFromTheProducerThroughTheWorkerToTheWrite(t *testing.T) {
	r := newRig(t)
	r.publish(t, "3")
	ctx, stop := context.WithCancel(context.Background())
	w := &sqs.Worker{Client: r.tracedSQS, QueueURL: r.queueURL, Handler: r.handler, Pollers: 1, WaitTime: time.Second, TraceContext: true}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for r.used(t) != "3" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := r.used(t); got != "3" {
		t.Fatalf("used %s, want 3", got)
	}
	r.checkOneTrace(t)
}

// lambdaEvent is the SQS event Lambda would build from m: its system
// attributes in Attributes, its message attributes in MessageAttributes.
func lambdaEvent(m sqstypes.Message, queueARN string) events.SQSEvent {
	rec := events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
		Attributes: m.Attributes, MessageAttributes: map[string]events.SQSMessageAttribute{},
		EventSource: "aws:sqs", EventSourceARN: queueARN, AWSRegion: "us-east-1"}
	for k, v := range m.MessageAttributes {
		rec.MessageAttributes[k] = events.SQSMessageAttribute{DataType: aws.ToString(v.DataType), StringValue: v.StringValue}
	}
	return events.SQSEvent{Records: []events.SQSMessage{rec}}
}

// TestOneTraceFromTheProducerThroughTheLambdaHandlerToTheWrite: the same
// through the Lambda function's handler (lambda.Function, as the
// bootstrap serves it), given the SQS event built from the received
// message. Twice: with the traceparent message attribute as received,
// and with only the AWSTraceHeader system attribute, as SQS hands it to
// Lambda. The SQS emulator keeps the AWSTraceHeader the producer sends
// but does not return it, so the second event gets the header the
// producer sent, where SQS puts it.
func TestOneTraceFromTheProducerThroughTheLambdaHandlerToTheWrite(t *testing.T) {
	for _, carrier := range []string{"traceparent", "AWSTraceHeader"} {
		t.Run(carrier, func(t *testing.T) {
			r := newRig(t)
			r.publish(t, "2")
			out, err := r.plain.ReceiveMessage(context.Background(), &awssqs.ReceiveMessageInput{QueueUrl: aws.String(r.queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 5,
				MessageAttributeNames: []string{"All"}, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
			if err != nil || len(out.Messages) != 1 {
				t.Fatalf("receive: %v, %v", out, err)
			}
			ev := lambdaEvent(out.Messages[0], "arn:aws:sqs:us-east-1:000000000000:q")
			if carrier == "AWSTraceHeader" {
				delete(ev.Records[0].MessageAttributes, "traceparent")
				ev.Records[0].Attributes["AWSTraceHeader"] = aws.ToString(r.sent.entries[0].MessageSystemAttributes["AWSTraceHeader"].StringValue)
			} else if ev.Records[0].MessageAttributes["traceparent"].StringValue == nil {
				t.Fatal("the received message has no traceparent attribute")
			}
			payload, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			fn := lambdaadapter.Flushed(lambdaadapter.Function(r.handler, nil), r.tp.ForceFlush)
			answer, err := fn(context.Background(), payload)
			if resp, ok := answer.(events.SQSEventResponse); err != nil || !ok || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("answer %#v, %v", answer, err)
			}
			if got := r.used(t); got != "2" {
				t.Fatalf("used %s, want 2", got)
			}
			r.checkOneTrace(t)
		})
	}
}
