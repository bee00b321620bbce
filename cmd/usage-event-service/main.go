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
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	smithytracing "github.com/aws/smithy-go/tracing"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/awslog"
	"github.com/usage-event-service/usage-event-service/internal/backoff"
	"github.com/usage-event-service/usage-event-service/internal/config"
	"github.com/usage-event-service/usage-event-service/internal/queueurl"
	"github.com/usage-event-service/usage-event-service/internal/tracing"
	lambdaadapter "github.com/usage-event-service/usage-event-service/lambda"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/metrics"
	"github.com/usage-event-service/usage-event-service/notify"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/sqs"
	"github.com/usage-event-service/usage-event-service/usage"
)

const usageText = `usage: usage-event-service [worker [--queue-url URL] [--pollers N]]

Without arguments, under the AWS Lambda runtime (AWS_LAMBDA_RUNTIME_API set),
serves SQS-triggered invocations and direct (synchronous) requests, told
apart by their shape. "worker" long-polls the queue instead.
Configuration comes from the environment; see the README.
`

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stderr))
}

// errUsage marks a usage or configuration error: exit code 2.
type errUsage struct{ error }

// run takes lookup (os.LookupEnv) rather than os.Getenv because a
// variable set to the empty string can mean something (NOTIFY_THRESHOLDS).
func run(args []string, lookup func(string) (string, bool), stderr io.Writer) int {
	err := dispatch(args, lookup, stderr)
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

func dispatch(args []string, lookup func(string) (string, bool), stderr io.Writer) error {
	switch {
	case len(args) == 0 && getenv(lookup, "AWS_LAMBDA_RUNTIME_API") != "":
		return serveLambda(lookup)
	case len(args) > 0 && args[0] == "worker":
		return runWorker(args[1:], lookup, stderr)
	case len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help"):
		fmt.Fprint(stderr, usageText)
		return nil
	case len(args) == 0:
		return errUsage{errors.New("not running under the Lambda runtime (AWS_LAMBDA_RUNTIME_API is unset); to poll a queue, run: usage-event-service worker (see --help)")}
	default:
		return errUsage{fmt.Errorf("unknown command %q (see --help)", args[0])}
	}
}

func getenv(lookup func(string) (string, bool), name string) string {
	v, _ := lookup(name)
	return v
}

// app is everything both run modes share.
type app struct {
	cfg    config.Config
	aws    aws.Config
	logger *slog.Logger
	core   pipeline.Handler
	opts   pipeline.Options
	engine *metering.Decisions
	sqs    *awssqs.Client
	// publisher publishes notifications to NOTIFY_TOPIC_ARN; nil when
	// unset.
	publisher *notify.Publisher
	store     *dynamodb.Store
	holds     metrics.HoldRecorder // nil without metrics
	// tracer exports the spans; nil with tracing off (config.Tracing).
	tracer *sdktrace.TracerProvider
}

// shutdownTracing flushes the spans not yet exported and stops the
// exporter, within a few seconds.
func (a *app) shutdownTracing() {
	if a.tracer == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.tracer.Shutdown(ctx); err != nil {
		a.logger.Warn("trace export at shutdown failed", "error", err.Error())
	}
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

func setup(ctx context.Context, lookup func(string) (string, bool), recorder metrics.Recorder) (*app, error) {
	cfg, err := config.LoadEnv(lookup)
	if err != nil {
		return nil, errUsage{fmt.Errorf("configuration:\n%w", err)}
	}
	logger, tp, err := observability(ctx, cfg)
	if err != nil {
		return nil, err
	}
	awsCfg, err := loadAWS(ctx, logger)
	if err != nil {
		return nil, err
	}
	ddb := awsdynamodb.NewFromConfig(awsCfg, traced[awsdynamodb.Options](tp, func(o *awsdynamodb.Options) *smithytracing.TracerProvider { return &o.TracerProvider })...)
	publisher := newPublisher(cfg, awsCfg, ddb, logger, recorder, tp)
	store := newStore(cfg, ddb, publisher)
	// ReleaseEarly: in the worker, an entitlement is free for the next
	// batch as soon as its own write returns (a pass-through in Lambda).
	writer := metering.Writer{Store: store}
	processor := &metering.Processor{Store: sqs.ReleaseEarly(writer), Parallel: cfg.ApplyConcurrency, TargetWait: cfg.RefundTargetWait, Notify: cfg.Notify}
	sqsClient := awssqs.NewFromConfig(awsCfg, traced[awssqs.Options](tp, func(o *awssqs.Options) *smithytracing.TracerProvider { return &o.TracerProvider })...)
	a := &app{
		cfg: cfg, aws: awsCfg, logger: logger, sqs: sqsClient, publisher: publisher, store: store, tracer: tp,
		core: processor.Handle, opts: pipelineOptions(cfg, logger, tp, recorder, sqsClient),
		engine: &metering.Decisions{Store: writer, Logger: logger, Notify: cfg.Notify},
	}
	if hr, ok := recorder.(metrics.HoldRecorder); ok {
		a.holds = hr
		a.engine.Observe = func(ctx context.Context, ev usage.Event, o usage.Outcome) {
			if h := metrics.HoldsOf([]usage.Event{ev}, []usage.Outcome{o}); h != (metrics.Holds{}) {
				hr.RecordHolds(ctx, h)
			}
		}
	}
	return a, nil
}

// observability is the JSON logger and, with tracing on, a tracer
// provider exporting over OTLP and log lines with their trace. Off, none
// of the tracing exists (tp is nil).
func observability(ctx context.Context, cfg config.Config) (logger *slog.Logger, tp *sdktrace.TracerProvider, err error) {
	var logHandler slog.Handler = slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel})
	if cfg.Tracing.Enabled {
		if tp, err = tracing.NewProvider(ctx); err != nil {
			return nil, nil, errUsage{fmt.Errorf("tracing: %w", err)}
		}
		logHandler = tracing.LogHandler(logHandler)
	}
	logger = slog.New(logHandler)
	if tp != nil {
		otel.SetTracerProvider(tp)
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { logger.Warn("tracing", "error", err.Error()) }))
	}
	return logger, tp, nil
}

// loadAWS is the SDK's configuration: throttling, 5xx and network errors
// retried with exponential backoff and jitter, bounded so that a batch
// finishes well within the function timeout.
func loadAWS(ctx context.Context, logger *slog.Logger) (aws.Config, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithLogger(awslog.Logger{Logger: logger}), awsconfig.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 5
			o.MaxBackoff = time.Second
		})
	}))
	if err != nil {
		return aws.Config{}, errUsage{fmt.Errorf("AWS configuration: %w", err)}
	}
	if awsCfg.Region == "" {
		return aws.Config{}, errUsage{errors.New("AWS_REGION is not set")}
	}
	return awsCfg, nil
}

// newStore is the DynamoDB store with the configured tables, key layout
// and retention, handing what it records to the publisher (if any).
func newStore(cfg config.Config, ddb *awsdynamodb.Client, publisher *notify.Publisher) *dynamodb.Store {
	var outbox dynamodb.Outbox
	if publisher != nil {
		outbox = publisher
	}
	return dynamodb.NewStore(ddb, dynamodb.Config{
		EntitlementsTable: cfg.EntitlementsTable,
		LedgerTable:       cfg.LedgerTable,
		Keys: dynamodb.EntitlementKeys{
			PartitionAttr: cfg.PartitionAttr, SortAttr: cfg.SortAttr,
			UserPrefix: cfg.UserPrefix, KeyPrefix: cfg.KeyPrefix, PoolPrefix: cfg.PoolPrefix,
		},
		Retention:    cfg.DedupRetention,
		DisableCache: !cfg.StateCache,
		Outbox:       outbox,
	})
}

// pipelineOptions are the middlewares' settings: logging, tracing,
// metrics, dead-lettering.
func pipelineOptions(cfg config.Config, logger *slog.Logger, tp *sdktrace.TracerProvider, recorder metrics.Recorder, sqsClient *awssqs.Client) pipeline.Options {
	opts := pipeline.Options{Logger: logger}
	if tp != nil {
		opts.Tracing = tracing.Middleware(tp, cfg.Tracing.IDs)
	}
	if recorder != nil {
		opts.Metrics = metrics.Middleware(recorder)
	}
	if cfg.DeadLetterQueueURL != "" {
		opts.DeadLetters = sqs.DeadLetterQueue{Client: sqsClient, QueueURL: cfg.DeadLetterQueueURL}
	}
	return opts
}

// newPublisher is the notification publisher of NOTIFY_TOPIC_ARN (nil
// when unset). SNS is reached through the SDK's standard variables
// (AWS_ENDPOINT_URL_SNS, ...); a publication is tried three times, and
// what fails is left to the recovery sweep.
func newPublisher(cfg config.Config, awsCfg aws.Config, ddb *awsdynamodb.Client, logger *slog.Logger, recorder metrics.Recorder, tp *sdktrace.TracerProvider) *notify.Publisher {
	if cfg.NotifyTopicARN == "" {
		return nil
	}
	snsOpts := append([]func(*awssns.Options){func(o *awssns.Options) {
		o.Retryer = retry.AddWithMaxAttempts(o.Retryer, 3)
	}}, traced[awssns.Options](tp, func(o *awssns.Options) *smithytracing.TracerProvider { return &o.TracerProvider })...)
	p := &notify.Publisher{
		SNS:      awssns.NewFromConfig(awsCfg, snsOpts...),
		TopicARN: cfg.NotifyTopicARN, DynamoDB: ddb, LedgerTable: cfg.LedgerTable, Logger: logger,
		// A sweep more often than the default grace must not wait it out.
		Grace: min(notify.DefaultGrace, cfg.NotifyRecoveryInterval),
	}
	if r, ok := recorder.(notify.Recorder); ok {
		p.Metrics = r
	}
	return p
}

// traced is the client option that records an AWS client's calls as
// spans of tp (the SDK's own instrumentation): none with tracing off, so
// that the client is built exactly as before. field points at the
// client's Options.TracerProvider.
func traced[O any](tp *sdktrace.TracerProvider, field func(*O) *smithytracing.TracerProvider) []func(*O) {
	if tp == nil {
		return nil
	}
	return []func(*O){func(o *O) { *field(o) = tracing.AWS(tp) }}
}

// periodicTask is work done on a schedule rather than per event: the
// worker runs each task every `every`, in its own process; the Lambda
// function runs them all, in order, on each scheduled invocation.
type periodicTask struct {
	lambdaadapter.Periodic
	every time.Duration
}

// periodic is the service's periodic work.
func (a *app) periodic() []periodicTask {
	tasks := []periodicTask{{lambdaadapter.Periodic{Name: "hold-expiry", Run: a.sweepHolds}, a.cfg.HoldSweepInterval}}
	if a.publisher != nil {
		tasks = append(tasks, periodicTask{lambdaadapter.Periodic{Name: "notification-recovery", Run: a.publisher.Recover}, a.cfg.NotifyRecoveryInterval})
	}
	return tasks
}

// sweepHolds releases the holds that have expired, a page at a time
// until none is left, through the one write path; it logs and counts
// what it did. A failed sweep is retried by the next.
func (a *app) sweepHolds(ctx context.Context) error {
	total := metrics.Holds{Swept: true}
	defer func() {
		if a.holds != nil {
			a.holds.RecordHolds(ctx, total)
		}
	}()
	for {
		now := time.Now()
		sw, err := metering.SweepExpiredHolds(ctx, metering.Writer{Store: a.store}, a.store, now, 100, usage.Rules{Now: now, Notify: a.cfg.Notify}.Plan)
		total.Expired += sw.Expired
		total.Deferred += sw.Deferred
		total.OldestDue = max(total.OldestDue, sw.OldestDue)
		if err != nil {
			total.SweepFailed = true
			a.logger.Warn("hold sweep failed", "err", err.Error(), "expired", total.Expired)
			return err
		}
		if sw.Expired > 0 || sw.Failed > 0 {
			a.logger.Info("expired holds released", "found", sw.Found, "expired", sw.Expired, "failed", sw.Failed, "oldestDueSeconds", sw.OldestDue.Seconds())
		}
		if sw.Deferred > 0 {
			a.logger.Warn("expired holds set aside", "deferred", sw.Deferred, "retryAfterSeconds", usage.HoldDeferral.Seconds())
		}
		if sw.Expired+sw.Deferred == 0 || ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// runPeriodic runs each task at once and then every task.every until ctx
// is done; a failure is the task's to log, and the next run retries.
func runPeriodic(ctx context.Context, tasks []periodicTask) (wait func()) {
	var wg sync.WaitGroup
	for _, t := range tasks {
		wg.Go(func() {
			for {
				t.Run(ctx)
				if backoff.Sleep(ctx, t.every) != nil {
					return
				}
			}
		})
	}
	return wg.Wait
}

func serveLambda(lookup func(string) (string, bool)) error {
	emf := &metrics.EMF{Out: os.Stdout, FunctionName: getenv(lookup, "AWS_LAMBDA_FUNCTION_NAME")}
	a, err := setup(context.Background(), lookup, emf)
	if err != nil {
		return err
	}
	// One function serves SQS batches, scheduled events (the periodic
	// work) and direct (synchronous) requests, told apart by their shape.
	var periodic []lambdaadapter.Periodic
	for _, t := range a.periodic() {
		periodic = append(periodic, t.Periodic)
	}
	fn := lambdaadapter.Bytes(lambdaadapter.Function(a.handler(a.cfg.QueueURL), a.engine, periodic...))
	if a.tracer != nil {
		fn = lambdaadapter.Flushed(fn, a.tracer.ForceFlush)
	}
	lambda.Start(fn)
	return nil
}

func runWorker(args []string, lookup func(string) (string, bool), stderr io.Writer) error {
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
	a, err := setup(ctx, lookup, prom)
	if err != nil {
		return err
	}
	defer a.shutdownTracing()
	if *queueURL == "" {
		*queueURL = a.cfg.QueueURL
	}
	if *queueURL == "" {
		return errUsage{errors.New("configuration:\nUSAGE_EVENT_QUEUE_URL: is required by the worker (or pass --queue-url)")}
	}
	if err := queueurl.Check(*queueURL); err != nil {
		return errUsage{fmt.Errorf("--queue-url: %w", err)}
	}
	if *pollers <= 0 {
		*pollers = a.cfg.WorkerPollers
	}
	closeMetrics, err := a.serveMetrics(prom)
	if err != nil {
		return err
	}
	defer closeMetrics()
	a.logger.Info("worker started", "queue", *queueURL, "pollers", *pollers, "coalesceWindow", a.cfg.CoalesceWindow.String(),
		"deadLetterQueue", a.cfg.DeadLetterQueueURL, "notificationTopic", a.cfg.NotifyTopicARN)
	w := &sqs.Worker{Client: a.sqs, QueueURL: *queueURL, Handler: a.handler(*queueURL), Pollers: *pollers,
		CoalesceWindow: a.cfg.CoalesceWindow, PaceReceives: true, TraceContext: a.tracer != nil, Logger: a.logger}
	// The periodic work (the notification recovery sweep) runs beside
	// the pollers, in this process, and stops with them.
	periodicCtx, stopPeriodic := context.WithCancel(ctx)
	periodicDone := runPeriodic(periodicCtx, a.periodic())
	err = w.Run(ctx)
	stopPeriodic()
	periodicDone()
	if err != nil {
		return err
	}
	a.logger.Info("worker stopped")
	return nil
}

// serveMetrics serves the worker's Prometheus metrics on METRICS_ADDR,
// when set, until the returned function closes it.
func (a *app) serveMetrics(prom *metrics.Prometheus) (func(), error) {
	if a.cfg.MetricsAddr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", a.cfg.MetricsAddr)
	if err != nil {
		return nil, errUsage{fmt.Errorf("METRICS_ADDR: %w", err)}
	}
	srv := &http.Server{Handler: prom.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	a.logger.Info("metrics listening", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}
