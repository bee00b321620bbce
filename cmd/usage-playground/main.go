// Command usage-playground is `make up`: the service running on this
// machine until Ctrl-C, for sending your own events from a second shell with
// usagectl. Run it from the repository root:
//
//	make up   # builds bin/usage-playground and runs it
//
// It prints the export lines for the second shell once everything runs, then
// the worker's logs. Ctrl-C stops the worker and the emulators and removes
// what it built.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/usage-event-service/usage-event-service/internal/dev/playground"
)

func main() {
	// Signals stay caught until Run has cleaned up: a second Ctrl-C while
	// stopping is ignored rather than killing the playground halfway.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := playground.Run(ctx, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "usage-playground: %v\n", err)
		os.Exit(1)
	}
}
