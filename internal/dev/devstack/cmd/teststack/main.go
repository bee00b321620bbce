// Command teststack runs the service locally for a test written in another
// language (the TypeScript producer's end-to-end test, producer-ts/test): it
// builds usage-event-service and usagectl from this checkout, starts DynamoDB
// Local and the SQS emulator on free ports, creates the tables and the queue
// with `usagectl setup --local`, and starts the real worker. Then it prints
// one JSON line on stdout:
//
//	{"env":{"AWS_REGION":…,"AWS_ENDPOINT_URL_SQS":…,"USAGE_EVENT_QUEUE_URL":…,…},"usagectl":"/tmp/…/usagectl","workerPid":…}
//
// env is what the AWS SDKs and usagectl need to reach the stack (standard
// variables only); usagectl is the built tool, for seeding entitlements and
// reading usage. The stack runs until its standard input closes (the test's
// end, or its death) or it gets SIGINT or SIGTERM; then it stops the worker
// (SIGTERM, as in production) and the emulators, and removes what it built.
// The worker's logs go to stderr.
//
//	go build -o /tmp/teststack ./internal/dev/devstack/cmd/teststack
//	/tmp/teststack [-queue usage-event-queue]   # from the repository root
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/usage-event-service/usage-event-service/internal/dev/devstack"
)

func main() {
	queue := flag.String("queue", "usage-event-queue", "the queue to create and work (a name ending in .fifo makes a FIFO queue)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *queue, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "teststack:", err)
		os.Exit(1)
	}
}

// ready is the line printed once the stack runs.
type ready struct {
	Env       map[string]string `json:"env"`
	Usagectl  string            `json:"usagectl"`
	WorkerPID int               `json:"workerPid"`
}

func run(ctx context.Context, queue string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	dir, err := os.MkdirTemp("", "usage-teststack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := devstack.Build(ctx, dir, stderr, "./cmd/usage-event-service", "./cmd/usagectl"); err != nil {
		return err
	}
	service, usagectl := filepath.Join(dir, "usage-event-service"), filepath.Join(dir, "usagectl")

	emulators, err := devstack.StartEmulators(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := emulators.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stop the emulators: %w", stopErr))
		}
	}()
	env := emulators.Env()
	if err := setup(ctx, usagectl, env, queue); err != nil {
		return err
	}

	worker, err := devstack.StartWorker(service, devstack.Environ(env), stderr)
	if err != nil {
		return err
	}
	logsDone := make(chan struct{})
	go func() {
		io.Copy(stderr, worker.Logs)
		worker.Logs.Close()
		close(logsDone)
	}()
	defer func() {
		if stopErr := worker.Stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		<-logsDone
	}()

	line, err := json.Marshal(ready{Env: env, Usagectl: usagectl, WorkerPID: worker.PID})
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		return err
	}

	stdinClosed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, stdin)
		close(stdinClosed)
	}()
	select {
	case <-ctx.Done():
	case <-stdinClosed:
	case <-worker.Exited():
		return fmt.Errorf("the worker exited on its own: %v", worker.Err())
	}
	return nil
}

// setup creates the tables, the queue and its dead-letter queue, and adds
// their names and URLs to env as the service reads them.
func setup(ctx context.Context, usagectl string, env map[string]string, queue string) error {
	cmd := exec.CommandContext(ctx, usagectl, "setup", "--local", "--json",
		"--entitlements-table", "entitlements", "--ledger-table", "usage-ledger", "--queue", queue)
	cmd.Env = devstack.Environ(env)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("usagectl setup: %w\n%s", err, stderr.Bytes())
	}
	var res struct {
		LedgerTable       struct{ Name string } `json:"ledgerTable"`
		EntitlementsTable struct{ Name string } `json:"entitlementsTable"`
		Queue             struct{ URL string }  `json:"queue"`
		DeadLetterQueue   struct{ URL string }  `json:"deadLetterQueue"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return fmt.Errorf("read the output of usagectl setup: %w\n%s", err, out)
	}
	if res.EntitlementsTable.Name == "" || res.LedgerTable.Name == "" || res.Queue.URL == "" || res.DeadLetterQueue.URL == "" {
		return fmt.Errorf("usagectl setup did not report every table and queue:\n%s", out)
	}
	env["ENTITLEMENTS_TABLE"] = res.EntitlementsTable.Name
	env["USAGE_LEDGER_TABLE"] = res.LedgerTable.Name
	env["USAGE_EVENT_QUEUE_URL"] = res.Queue.URL
	env["DEAD_LETTER_QUEUE_URL"] = res.DeadLetterQueue.URL
	return nil
}
