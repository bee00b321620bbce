// Command usagectl is the operator's and producer's tool for
// usage-event-service: send usage events, inspect a user's entitlements,
// their balances, holds, grants and ledger history, refund consumes,
// reserve, commit and release holds, grant and void top-ups, write test
// entitlements, create local resources, and list or redrive
// dead-lettered events.
//
// Run "usagectl help" for the commands. Exit codes: 0 success, 1 the
// operation failed (an event not sent, an AWS error), 2 bad usage or
// configuration.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
