// Package devstack runs the service on this machine the way the demo and the
// playground need it: DynamoDB Local and the SQS emulator (started by
// internal/dev/emulator), the service's own binaries built from this checkout,
// and the worker as a child process that is stopped as in production, with
// SIGTERM.
//
// Every process it starts dies with the process that started it, even when
// that one is killed (parent-death signal), and Stop waits until it is gone.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
)

// Region and Credentials are what the local stack is signed with. DynamoDB
// Local runs with -sharedDb and fauxqs ignores signatures, so any value
// works; one value everywhere keeps the tools in agreement.
const (
	Region      = "us-east-1"
	Credentials = "local"
)

// Emulators are the running DynamoDB Local and SQS emulator.
type Emulators struct {
	DynamoDB, SQS *emulator.Process
}

// StartEmulators starts DynamoDB Local and the SQS emulator on free loopback
// ports (installing them into the cache on first use). If the second cannot
// start, the first is stopped again.
func StartEmulators(ctx context.Context) (*Emulators, error) {
	ddb, err := emulator.StartDynamoDB(ctx)
	if err != nil {
		return nil, err
	}
	sqs, err := emulator.StartSQS(ctx)
	if err != nil {
		ddb.Stop()
		return nil, err
	}
	return &Emulators{DynamoDB: ddb, SQS: sqs}, nil
}

// Env is what the service, usagectl and the AWS SDK need to talk to the
// emulators and nothing else: region, dummy credentials and the
// service-specific endpoint variables. fauxqs serves SNS as well as SQS, on
// the same endpoint.
func (e *Emulators) Env() map[string]string {
	return map[string]string{
		"AWS_REGION":                Region,
		"AWS_ACCESS_KEY_ID":         Credentials,
		"AWS_SECRET_ACCESS_KEY":     Credentials,
		"AWS_ENDPOINT_URL_DYNAMODB": e.DynamoDB.Endpoint,
		"AWS_ENDPOINT_URL_SQS":      e.SQS.Endpoint,
		"AWS_ENDPOINT_URL_SNS":      e.SQS.Endpoint,
	}
}

// Stop stops both emulators and waits until they are gone.
func (e *Emulators) Stop() error {
	return errors.Join(e.SQS.Stop(), e.DynamoDB.Stop())
}

// Build compiles the given main packages of this module (such as
// "./cmd/usage-event-service") into dir, each named after its directory, so
// that what runs is exactly what ships. Build output goes to stderr.
func Build(ctx context.Context, dir string, stderr io.Writer, pkgs ...string) error {
	root, err := emulator.ModuleRoot()
	if err != nil {
		return err
	}
	args := append([]string{"build", "-o", dir + string(os.PathSeparator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %v: %w", pkgs, err)
	}
	return nil
}

// Environ returns the current process environment with vars set over it,
// for a child process.
func Environ(vars map[string]string) []string {
	env := os.Environ()
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+vars[k]) // later entries win
	}
	return env
}

// stopGrace is how long Stop waits for the worker to finish its in-flight
// batches after SIGTERM before it kills it. A batch against the emulators
// takes milliseconds; the long poll is cancelled at once.
const stopGrace = 20 * time.Second

// Worker is a running "usage-event-service worker" process.
type Worker struct {
	PID int
	// Logs is the worker's stdout (its JSON log lines). Read it to the
	// end and close it: it reaches EOF once the worker has exited, and a
	// worker whose output is not read blocks when the pipe fills.
	Logs io.ReadCloser

	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	stopOnce sync.Once
	stopErr  error
}

// StartWorker starts bin ("usage-event-service") as a worker with env as its
// whole environment and its stderr on stderr. The worker gets a process
// group of its own, so a Ctrl-C in the terminal reaches only its owner,
// which stops it in order with Stop.
func StartWorker(bin string, env []string, stderr io.Writer) (*Worker, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "worker")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = w, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	w.Close() // the child has its own copy; EOF on r once it exits
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("start the worker: %w", err)
	}
	wk := &Worker{PID: cmd.Process.Pid, Logs: r, cmd: cmd, exited: make(chan struct{})}
	go func() {
		wk.waitErr = cmd.Wait()
		close(wk.exited)
	}()
	return wk, nil
}

// Exited is closed when the worker process has exited.
func (w *Worker) Exited() <-chan struct{} { return w.exited }

// Err is the worker's exit status once Exited is closed: nil for exit 0.
func (w *Worker) Err() error {
	<-w.exited
	return w.waitErr
}

// Stop sends SIGTERM (the worker finishes the batches in flight, deletes them
// and exits 0), kills it if it has not exited within a grace period, and
// returns its exit status. It is safe to call more than once.
func (w *Worker) Stop() error {
	w.stopOnce.Do(func() {
		select {
		case <-w.exited:
		default:
			w.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-w.exited:
			case <-time.After(stopGrace):
				w.cmd.Process.Kill()
				<-w.exited
				w.stopErr = fmt.Errorf("the worker did not stop within %s of SIGTERM and was killed", stopGrace)
				return
			}
		}
		if w.waitErr != nil {
			w.stopErr = fmt.Errorf("the worker did not stop cleanly: %w", w.waitErr)
		}
	})
	return w.stopErr
}
