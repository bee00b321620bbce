// Command emulators installs or runs the local AWS emulators for the demo and
// for manual testing against the same peers the tests use.
//
//	go run ./internal/dev/emulator/cmd/emulators install  # fetch into .cache/ once
//	go run ./internal/dev/emulator/cmd/emulators run      # start, print exports, wait
//
// "run" prints shell export lines for the endpoints (and dummy credentials)
// on stdout, to paste into the shell running the service, then waits for
// SIGINT or SIGTERM and stops the emulators. If it is killed instead, the
// emulators die with it (parent-death signal).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
)

func main() {
	if len(os.Args) != 2 || (os.Args[1] != "install" && os.Args[1] != "run") {
		fmt.Fprintln(os.Stderr, "usage: emulators install|run")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "emulators:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string) error {
	if cmd == "install" {
		return emulator.InstallAll(ctx)
	}
	ddb, err := emulator.StartDynamoDB(ctx)
	if err != nil {
		return err
	}
	defer ddb.Stop()
	sqs, err := emulator.StartSQS(ctx)
	if err != nil {
		return err
	}
	defer sqs.Stop()
	fmt.Printf("export AWS_ENDPOINT_URL_DYNAMODB=%s\nexport AWS_ENDPOINT_URL_SQS=%s\n", ddb.Endpoint, sqs.Endpoint)
	fmt.Printf("export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test\n")
	fmt.Fprintln(os.Stderr, "emulators: running; Ctrl-C to stop")
	<-ctx.Done()
	return nil
}
