package producer_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/usage-event-service/usage-event-service/producer"
	"github.com/usage-event-service/usage-event-service/usage"
)

// The body carries every character of the contract, escaped where SQS
// refuses it raw, and parses to the same event.
func TestBodyEscapesCharactersSQSRefuses(t *testing.T) {
	ev := usage.NewEvent("a\uFFFEb😀", "k\uFFFF")
	ev.Metadata = []byte("{\"x\":\"\uFFFE\"}")
	body, err := producer.Body(ev)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(string(body), "\uFFFE\uFFFF😀") {
		t.Fatalf("raw U+FFFE/U+FFFF or a character above U+FFFF in %q", body)
	}
	back, err := usage.ParseEvent(body)
	if err != nil || back.UserID != ev.UserID || back.EntitlementKey != ev.EntitlementKey {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}

// What only a synchronous caller can ask is refused before sending, as
// the service refuses it from the queue (and as the TypeScript package
// does).
func TestSynchronousOnlyOperationsAreNotSent(t *testing.T) {
	p, err := producer.New(aws.Config{}, "https://sqs.us-east-1.amazonaws.com/000000000000/q", producer.WithClient(nobody{t}))
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []usage.Operation{usage.OperationBalance, usage.OperationReserve} {
		ev := usage.NewEvent("u", "k")
		ev.Operation, ev.IdempotencyKey = op, "h-1"
		if op == usage.OperationBalance {
			ev.Amount = usage.Decimal{}
		}
		if _, err := p.Publish(context.Background(), ev); !errors.Is(err, usage.ErrInvalidField) {
			t.Errorf("%s: %v, want INVALID_FIELD before sending", op, err)
		}
	}
}

// nobody is an SQS client that fails the test if it is called.
type nobody struct{ t *testing.T }

func (n nobody) SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	n.t.Error("SendMessageBatch called")
	return &sqs.SendMessageBatchOutput{}, nil
}
