package producer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/usage-event-service/usage-event-service/producer"
	"github.com/usage-event-service/usage-event-service/usage"
)

// A producer sends one event per business action, after the action has
// committed, keyed by the action so that a retry of this code cannot count
// it twice. The body of this example is the Go snippet of
// docs/usage-events-sqs.md (TestGuideGoSnippetIsTheExample keeps them
// identical, and TestGuideExampleRuns runs it against the SQS emulator).
func ExamplePublisher_Publish() {
	ctx := context.Background()

	// Region and credentials come from the usual places (environment,
	// profile, instance or task role). Create the Publisher once and share it.
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	pub, err := producer.New(cfg, os.Getenv("USAGE_EVENT_QUEUE_URL"))
	if err != nil {
		log.Fatal(err)
	}

	// After the business action has committed: its ID is the idempotency key.
	ev := usage.NewEvent("user-123", "api-calls")
	ev.Amount = usage.MustDecimal("2.5") // exact; usage.ParseDecimal for input
	ev.IdempotencyKey = "invoice-7781:line-3"
	ev.Metadata = json.RawMessage(`{"requestId":"req-42"}`)

	receipt, err := pub.Publish(ctx, ev)
	var rejected *usage.RejectionError
	switch {
	case errors.As(err, &rejected):
		// The event breaks the contract (e.g. INVALID_AMOUNT): a bug to fix,
		// retrying cannot help.
		log.Printf("usage event rejected: %v", rejected)
	case err != nil:
		// Not sent (SQS, network, cancelled): retry later with the same key.
		log.Printf("usage event not sent (key %s): %v", receipt.IdempotencyKey, err)
	default:
		fmt.Println("sent with key", receipt.IdempotencyKey)
	}

	// Many events at once: one result per event, in order. Events without a
	// key get a generated UUIDv7 key before the first attempt.
	results, err := pub.PublishBatch(ctx, []usage.Event{
		usage.NewEvent("user-123", "exports"),
		usage.NewEvent("user-456", "exports"),
	})
	if err != nil {
		log.Printf("interrupted: %v", err) // only when ctx ends
	}
	for _, r := range results {
		if r.Err != nil {
			log.Printf("not sent (key %s): %v", r.IdempotencyKey, r.Err)
		}
	}
	fmt.Println(len(results), "results")
}
