// Command usage-event-service applies usage events from SQS to DynamoDB.
//
//	usage-event-service          under the Lambda runtime (AWS_LAMBDA_RUNTIME_API set): serve invocations
//	usage-event-service worker   long-poll USAGE_EVENT_QUEUE_URL until SIGINT/SIGTERM
//
// Exit codes: 0 clean stop, 1 runtime failure, 2 bad usage or configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/awslog"
	"github.com/usage-event-service/usage-event-service/internal/config"
	lambdaadapter "github.com/usage-event-service/usage-event-service/lambda"
	"github.com/usage-event-service/usage-event-service/metrics"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/sqs"
)

const usageText = `usage: usage-event-service [worker [--queue-url URL] [--pollers N]]

Without arguments, under the AWS Lambda runtime (AWS_LAMBDA_RUNTIME_API set),
serves SQS-triggered invocations and direct (synchronous) requests, told
apart by their shape. "worker" long-polls the queue instead.
Configuration comes from the environment; see the README.
`

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

// errUsage marks a usage or configuration error: exit code 2.
type errUsage struct{ error }

func run(args []string, getenv func(string) string, stderr io.Writer) int {
	err := dispatch(args, getenv, stderr)
	var ue errUsage
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "usage-event-service: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "usage-event-service: %v\n", err)
		return 1
	}
}

func dispatch(args []string, getenv func(string) string, stderr io.Writer) error {
	switch {
	case len(args) == 0 && getenv("AWS_LAMBDA_RUNTIME_API") != "":
		return serveLambda(getenv)
	case len(args) > 0 && args[0] == "worker":
		return runWorker(args[1:], getenv, stderr)
	case len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help"):
		fmt.Fprint(stderr, usageText)
		return nil
	case len(args) == 0:
		return errUsage{errors.New("not running under the Lambda runtime (AWS_LAMBDA_RUNTIME_API is unset); to poll a queue, run: usage-event-service worker (see --help)")}
	default:
		return errUsage{fmt.Errorf("unknown command %q (see --help)", args[0])}
	}
}

// app is everything both run modes share.
type app struct {
	cfg    config.Config
	aws    aws.Config
	logger *slog.Logger
	core   pipeline.Handler
	opts   pipeline.Options
	engine *decision.Engine
	sqs    *awssqs.Client
}

// handler is the pipeline for messages of queueURL ("" when unknown:
// then waiting messages come back after the visibility timeout).
func (a *app) handler(queueURL string) pipeline.Handler {
	opts := a.opts
	if queueURL != "" {
		opts.Visibility = sqs.Visibility{Client: a.sqs, QueueURL: queueURL}
	}
	return pipeline.New(a.core, opts)
}

func setup(ctx context.Context, getenv func(string) string, recorder metrics.Recorder) (*app, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, errUsage{fmt.Errorf("configuration:\n%w", err)}
	}
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithLogger(awslog.Logger{Logger: logger}), awsconfig.WithRetryer(func() aws.Retryer {
		// Throttling, 5xx and network errors are retried here with
		// exponential backoff and jitter, bounded so that a batch
		// finishes well within the function timeout.
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 5
			o.MaxBackoff = time.Second
		})
	}))
	if err != nil {
		return nil, errUsage{fmt.Errorf("AWS configuration: %w", err)}
	}
	if awsCfg.Region == "" {
		return nil, errUsage{errors.New("AWS_REGION is not set")}
	}
	store := dynamodb.NewStore(awsdynamodb.NewFromConfig(awsCfg), dynamodb.Config{
		EntitlementsTable: cfg.EntitlementsTable,
		LedgerTable:       cfg.LedgerTable,
		Keys: dynamodb.EntitlementKeys{
			PartitionAttr: cfg.PartitionAttr, SortAttr: cfg.SortAttr,
			UserPrefix: cfg.UserPrefix, KeyPrefix: cfg.KeyPrefix,
		},
		Retention:    cfg.DedupRetention,
		DisableCache: !cfg.StateCache,
	})
	// ReleaseEarly: in the worker, an entitlement is free for the next
	// batch as soon as its own write returns (a pass-through in Lambda).
	processor := &pipeline.Processor{Store: sqs.ReleaseEarly(store), Parallel: cfg.ApplyConcurrency, TargetWait: cfg.RefundTargetWait}
	sqsClient := awssqs.NewFromConfig(awsCfg)
	opts := pipeline.Options{Logger: logger}
	if recorder != nil {
		opts.Metrics = metrics.Middleware(recorder)
	}
	if cfg.DeadLetterQueueURL != "" {
		opts.DeadLetters = sqs.DeadLetterQueue{Client: sqsClient, QueueURL: cfg.DeadLetterQueueURL}
	}
	return &app{
		cfg: cfg, aws: awsCfg, logger: logger, sqs: sqsClient,
		core: processor.Handle, opts: opts, engine: &decision.Engine{Store: store, Logger: logger},
	}, nil
}

func serveLambda(getenv func(string) string) error {
	emf := &metrics.EMF{Out: os.Stdout, FunctionName: getenv("AWS_LAMBDA_FUNCTION_NAME")}
	a, err := setup(context.Background(), getenv, emf)
	if err != nil {
		return err
	}
	// One function serves SQS batches and direct (synchronous) requests,
	// told apart by their shape.
	lambda.Start(lambdaadapter.Bytes(lambdaadapter.Function(a.handler(a.cfg.QueueURL), a.engine)))
	return nil
}

func runWorker(args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	queueURL := fs.String("queue-url", "", "queue to poll (default $USAGE_EVENT_QUEUE_URL)")
	pollers := fs.Int("pollers", 0, "concurrent long-poll loops (default $WORKER_POLLERS or 4)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage{err}
	}
	if fs.NArg() > 0 {
		return errUsage{fmt.Errorf("worker takes no arguments, got %q", fs.Args())}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	prom := metrics.NewPrometheus()
	a, err := setup(ctx, getenv, prom)
	if err != nil {
		return err
	}
	if *queueURL == "" {
		*queueURL = a.cfg.QueueURL
	}
	if *queueURL == "" {
		return errUsage{errors.New("configuration:\nUSAGE_EVENT_QUEUE_URL: is required by the worker (or pass --queue-url)")}
	}
	if err := config.CheckQueueURL(*queueURL); err != nil {
		return errUsage{fmt.Errorf("--queue-url: %w", err)}
	}
	if *pollers <= 0 {
		*pollers = a.cfg.WorkerPollers
	}
	if a.cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", a.cfg.MetricsAddr)
		if err != nil {
			return errUsage{fmt.Errorf("METRICS_ADDR: %w", err)}
		}
		srv := &http.Server{Handler: prom.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		a.logger.Info("metrics listening", "addr", ln.Addr().String())
	}
	a.logger.Info("worker started", "queue", *queueURL, "pollers", *pollers, "coalesceWindow", a.cfg.CoalesceWindow.String(), "deadLetterQueue", a.cfg.DeadLetterQueueURL)
	w := &sqs.Worker{Client: a.sqs, QueueURL: *queueURL, Handler: a.handler(*queueURL), Pollers: *pollers,
		CoalesceWindow: a.cfg.CoalesceWindow, Logger: a.logger}
	if err := w.Run(ctx); err != nil {
		return err
	}
	a.logger.Info("worker stopped")
	return nil
}
