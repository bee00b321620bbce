package sqs

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
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
