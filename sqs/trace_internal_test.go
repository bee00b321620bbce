package sqs

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/usage-event-service/usage-event-service/pipeline"
)

// Receives ask for the trace context only with tracing on, and toMessage
// carries it to the pipeline.
func TestReceivesAskForTheTraceContextOnlyWhenTracing(t *testing.T) {
	off := (&Worker{QueueURL: "http://q"}).receiveInput(0)
	if slices.Contains(off.MessageSystemAttributeNames, types.MessageSystemAttributeNameAWSTraceHeader) || slices.Contains(off.MessageAttributeNames, "traceparent") {
		t.Errorf("tracing off: asks for %v and %v", off.MessageSystemAttributeNames, off.MessageAttributeNames)
	}
	on := (&Worker{QueueURL: "http://q", TraceContext: true}).receiveInput(0)
	if !slices.Contains(on.MessageSystemAttributeNames, types.MessageSystemAttributeNameAWSTraceHeader) || !slices.Contains(on.MessageAttributeNames, "traceparent") ||
		!slices.Contains(on.MessageAttributeNames, "usage.originalMessageId") {
		t.Errorf("tracing on: asks for %v and %v", on.MessageSystemAttributeNames, on.MessageAttributeNames)
	}
	m := toMessage(types.Message{MessageId: aws.String("m1"), Body: aws.String("{}"),
		Attributes: map[string]string{"AWSTraceHeader": "Root=1-5f3a9c01-4bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8;Sampled=1"},
		MessageAttributes: map[string]types.MessageAttributeValue{
			"traceparent": {DataType: aws.String("String"), StringValue: aws.String("00-5f3a9c014bd862e3fe1be46a99427279-53995c3f42cd8ad8-01")},
		}})
	if m.TraceParent != "00-5f3a9c014bd862e3fe1be46a99427279-53995c3f42cd8ad8-01" || m.AWSTraceHeader != "Root=1-5f3a9c01-4bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8;Sampled=1" {
		t.Errorf("toMessage: %+v", m)
	}
}

// A dead letter keeps the producer's traceparent, and its replay carries
// it on, so that the replay is traced in the event's trace.
func TestDeadLettersAndTheirReplaysKeepTheTraceContext(t *testing.T) {
	const tp = "00-5f3a9c014bd862e3fe1be46a99427279-53995c3f42cd8ad8-01"
	letter := pipeline.DeadLetter{Message: pipeline.Message{ID: "m1", Body: "{}", TraceParent: tp}, Reason: "INVALID_JSON"}
	e := deadLetterEntry("0", letter, false)
	if got := aws.ToString(e.MessageAttributes["traceparent"].StringValue); got != tp {
		t.Errorf("dead letter traceparent %q, want %q", got, tp)
	}
	if e := deadLetterEntry("0", pipeline.DeadLetter{Message: pipeline.Message{ID: "m2", Body: "{}"}, Reason: "INVALID_JSON"}, false); len(e.MessageAttributes) != 5 {
		t.Errorf("a dead letter without trace context has attributes %v, want the 5 usage.* ones", e.MessageAttributes)
	}
	d := newDeadLetterMessage(types.Message{MessageId: aws.String("d1"), Body: aws.String("{}"), MessageAttributes: e.MessageAttributes})
	if got := aws.ToString(replayAttributes(d)["traceparent"].StringValue); got != tp {
		t.Errorf("replay traceparent %q, want %q", got, tp)
	}
}
