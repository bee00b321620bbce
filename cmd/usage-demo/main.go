// Command usage-demo runs the service end to end on this machine, with no
// AWS account and no Docker: DynamoDB Local, an SQS emulator, the real
// worker, and one event of each kind. Run it from the repository root:
//
//	go run ./cmd/usage-demo
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/usage-event-service/usage-event-service/internal/dev/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := demo.Run(ctx, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "usage-demo: %v\n", err)
		os.Exit(1)
	}
}
