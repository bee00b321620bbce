package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/usage-event-service/usage-event-service/client"
	"github.com/usage-event-service/usage-event-service/usage"
)

// A caller that needs the decision before it acts consumes first, keyed
// by the business action, and gives the consume back if the action fails.
// The body of this example is the Go snippet of the README's "The Go
// client" (TestREADMESnippetIsTheExample keeps them identical, and
// TestExampleRuns runs it against the real bootstrap under the Lambda
// Runtime Interface Emulator).
func ExampleNewLambda() {
	ctx := context.Background()

	// Region, credentials and retries come from the usual places; create
	// the client once and share it.
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	decisions, err := client.NewLambda(cfg, os.Getenv("DECISIONS_FUNCTION"))
	if err != nil {
		log.Fatal(err)
	}

	res, err := decisions.Consume(ctx, client.ConsumeRequest{
		UserID: "user-123", EntitlementKey: "api-calls",
		Amount:         usage.MustDecimal("2.5"), // exact; usage.ParseDecimal for input
		IdempotencyKey: "invoice-7781:line-3",
	})
	var rejected *client.RejectedError
	switch {
	case errors.Is(err, usage.ErrLimitExceeded):
		fmt.Println("over the limit: refuse the action")
		return
	case errors.As(err, &rejected):
		// The request breaks the contract or names no entitlement:
		// retrying cannot help.
		log.Printf("rejected: %v", rejected)
		return
	case err != nil:
		// RETRY (errors.Is(err, client.ErrRetry)) or no answer (network,
		// timeout): retry with the same key. A DUPLICATE (res.Duplicate())
		// then tells what was decided, with res.Original.
		log.Printf("no decision yet: %v", err)
		return
	}
	fmt.Println(res.Status, res.Amount)

	// The action failed after all: give the consume back (no amount: all of it).
	res, err = decisions.Refund(ctx, client.RefundRequest{
		UserID: "user-123", EntitlementKey: "api-calls",
		RefundOf:       "invoice-7781:line-3",
		IdempotencyKey: "invoice-7781:line-3:refund",
	})
	if err != nil {
		log.Printf("refund: %v", err)
		return
	}
	fmt.Println("refunded", res.Amount)

	bal, err := decisions.Balance(ctx, "user-123", "api-calls")
	if err != nil {
		log.Printf("balance: %v", err)
		return
	}
	fmt.Println("used", bal.Used, "of", bal.Limit, "until", bal.NextReset.Format("2006-01-02"))
}
