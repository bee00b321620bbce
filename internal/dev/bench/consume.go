package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	ddbstore "github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/producer"
	"github.com/usage-event-service/usage-event-service/sqs"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Run sets up fresh tables, seeds the workload's entitlements (and makes
// their grants, Entitlement.Grants, through ours, unmetered), delivers
// every message through sys (cfg.Mode: Lambda invocations or worker
// processes, cfg.Concurrency of them), checks the result, drops the
// tables and returns the measurements. The error is non-nil for a failed
// set-up or a failed correctness check (Result is still returned in the
// latter case, with the check's findings).
func Run(ctx context.Context, sys System, w *Workload, cfg RunConfig) (*Result, error) {
	cfg.defaults()
	if sys != Ours && len(w.Pools) > 0 {
		return nil, fmt.Errorf("the %s has no pools", sys)
	}
	admin, err := NewAWSConfig(ctx, nil)
	if err != nil {
		return nil, err
	}
	adminClient := dynamodb.NewFromConfig(admin)
	tb := tables{entitlements: cfg.TablePrefix + "-entitlements"}
	if sys == Ours {
		tb.ledger = cfg.TablePrefix + "-ledger"
	} else {
		tb.idempotency = cfg.TablePrefix + "-idempotency"
	}
	defer dropTables(adminClient, tb)
	if err := createTables(ctx, adminClient, tb); err != nil {
		return nil, err
	}
	if err := seed(ctx, adminClient, tb.entitlements, w); err != nil {
		return nil, err
	}
	if err := grantAll(ctx, sys, adminClient, tb, w, cfg); err != nil {
		return nil, err
	}
	// The entitlement items as the run starts: writes to them and reads of
	// them are priced by their size.
	before, err := scanAll(ctx, adminClient, tb.entitlements)
	if err != nil {
		return nil, err
	}

	meter := NewMeter()
	keys := ddbstore.DefaultEntitlementKeys
	meter.KnowItems(tb.entitlements, before, keys.PartitionAttr, keys.SortAttr)
	measured, err := NewAWSConfig(ctx, meter)
	if err != nil {
		return nil, err
	}
	// The same delay for both systems: every attempt of the measured
	// client, after the SDK's retry middleware.
	rtt := NewRTT(cfg.RTT)
	measured.APIOptions = append(measured.APIOptions, rtt.APIOption)
	client := dynamodb.NewFromConfig(measured)
	col := &collector{}

	arrivals := ArrivalOffsets(len(w.Messages), cfg.Rate, cfg.Seed)
	fmt.Fprintf(cfg.Progress, "    %-8s %s: %d events, %s ... ", sys, cfg.describe(), len(w.Messages), rateText(cfg.Rate))
	if cfg.Settle > 0 {
		runtime.GC()
		select {
		case <-time.After(cfg.Settle):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	cpu0, emu0 := processCPU(), emulatorCPU(cfg.EmulatorPID)
	start := time.Now()
	q := newQueue(len(w.Messages), start, arrivals, cfg.VisibilityTimeout, cfg.FIFO, func(i int) string { return groupOf(w.Messages[i]) })
	arrival := func(msg int) time.Time { return q.fresh[msg].visibleAt }
	var fake *sqsFake
	switch cfg.Mode {
	case Worker:
		fake = newSQSFake(q, w, cfg.MaxReceives)
		runWorkers(ctx, sys, w, cfg, q, fake, col, arrival, func(dl pipeline.DeadLetterSender) pipeline.Handler {
			return newHandler(sys, client, tb, cfg, col, dl)
		})
	default:
		var wg sync.WaitGroup
		for i := range cfg.Concurrency {
			// One handler per invocation environment: its own store and so
			// its own per-process cache.
			h := newHandler(sys, client, tb, cfg, col, col)
			wg.Go(func() { invocations(ctx, i, h, w, q, col, cfg, arrival) })
		}
		wg.Wait()
	}
	wall := time.Since(start)
	cpu, emu := processCPU()-cpu0, emulatorCPU(cfg.EmulatorPID)-emu0
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Progress, "%.1f s\n", wall.Seconds())

	idle := q.idleTime()
	res := summarize(sys, w, cfg, wall-idle, meter.Snapshot(), col)
	res.IdleSeconds = idle.Seconds()
	res.RTTMs = ms(cfg.RTT)
	res.MeanInjectedDelayMs = ms(rtt.MeanDelay())
	res.BenchCPUSeconds, res.EmulatorCPUSeconds = cpu.Seconds(), emu.Seconds()
	res.BenchCPUMsPerEvent = ratio(float64(cpu)/float64(time.Millisecond), float64(res.Events))
	res.EmulatorCPUMsPerEvent = ratio(float64(emu)/float64(time.Millisecond), float64(res.Events))
	res.EmulatorCores = ratio(emu.Seconds(), (wall - idle).Seconds())
	res.price(cfg, col, fake)
	res.Check = verify(ctx, adminClient, sys, tb, w, col.deliveries)
	if err := res.entitlementSizes(ctx, adminClient, tb, before); err != nil {
		return nil, err
	}
	if !res.Check.OK {
		return res, fmt.Errorf("%s (%s): correctness check failed: %v", sys, cfg.describe(), res.Check.Errors)
	}
	return res, nil
}

// grantAll makes the workload's grants through the service (grant events
// through ours' handler, on an unmetered client), before a run: each
// must be applied.
func grantAll(ctx context.Context, sys System, c *dynamodb.Client, tb tables, w *Workload, cfg RunConfig) error {
	// Batches of whole entitlements (up to 100 messages, or one
	// entitlement's grants), so that each entitlement's grants are one write.
	var batches [][]pipeline.Message
	var batch []pipeline.Message
	for i := range w.Entitlements {
		e := &w.Entitlements[i]
		if len(e.Grants) == 0 {
			continue
		}
		if sys != Ours {
			return fmt.Errorf("the %s has no grants", sys)
		}
		if len(batch) > 0 && len(batch)+len(e.Grants) > 100 {
			batches, batch = append(batches, batch), nil
		}
		for _, g := range e.Grants {
			ev := usage.NewEvent(e.Scope.UserID, e.Scope.EntitlementKey)
			ev.Operation, ev.GrantID, ev.Amount, ev.ExpiresAt = usage.OperationGrant, g.ID, g.Amount, g.ExpiresAt
			body, err := ev.MarshalJSON()
			if err != nil {
				return err
			}
			batch = append(batch, pipeline.Message{ID: fmt.Sprintf("grant-%d-%s", i, g.ID), Body: string(body), ReceiveCount: 1})
		}
	}
	if len(batch) > 0 {
		batches = append(batches, batch)
	}
	work := make(chan []pipeline.Message)
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for range min(8, len(batches)) {
		h := newHandler(Ours, c, tb, cfg, &collector{}, &collector{})
		wg.Go(func() {
			for b := range work {
				for i, r := range h(ctx, b) {
					if r.Status != usage.Applied {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%s: %s %v", b[i].ID, r.Status, r.Err))
						mu.Unlock()
					}
				}
			}
		})
	}
	for _, b := range batches {
		work <- b
	}
	close(work)
	wg.Wait()
	if len(failures) > 0 {
		return fmt.Errorf("making the grants before the run: %d not applied, e.g. %s", len(failures), failures[0])
	}
	return nil
}

// describe names the delivery settings in progress lines and errors.
func (c RunConfig) describe() string {
	fifo := ""
	if c.FIFO {
		fifo = ", FIFO"
	}
	if c.Mode == Worker {
		return fmt.Sprintf("%d worker processes, COALESCE_WINDOW %v%s", c.Concurrency, c.Window, fifo)
	}
	return fmt.Sprintf("concurrency %d, batches of %d, window %v%s", c.Concurrency, c.BatchSize, c.Window, fifo)
}

func rateText(rate float64) string {
	if rate <= 0 {
		return "all queued at the start"
	}
	return fmt.Sprintf("arriving at %.0f/s", rate)
}

// groupOf is a message's FIFO message group: its entitlement, as the
// producer library sets it; a message that is no valid event has a group
// of its own.
func groupOf(m Message) string {
	if m.Kind == Malformed {
		return "malformed:" + m.ID
	}
	return producer.GroupID(m.Scope.UserID, m.Scope.EntitlementKey)
}

// ArrivalOffsets are n arrival times from the start at mean rate per
// second, with exponential gaps (a Poisson process) from seed; nil for
// rate 0 (everything at the start).
func ArrivalOffsets(n int, rate float64, seed uint64) []time.Duration {
	if rate <= 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(seed, 0x6172726976616c73)) // "arrivals"
	out := make([]time.Duration, n)
	var t float64
	for i := range out {
		out[i] = time.Duration(t * float64(time.Second))
		t += rng.ExpFloat64() / rate
	}
	return out
}

// newHandler is one consumer's handler: its own store (and so its own
// per-process cache), the chain pipeline.New builds in production.
func newHandler(sys System, client *dynamodb.Client, tb tables, cfg RunConfig, col *collector, deadLetters pipeline.DeadLetterSender) pipeline.Handler {
	seen := &seenSet{m: map[usage.Scope]bool{}}
	var h pipeline.Handler
	switch sys {
	case Ours:
		// The store and processor as cmd/usage-event-service builds them
		// (default keys and retention, state cache on, ReleaseEarly), the
		// store wrapped only to attribute each group's requests to it.
		store := ddbstore.NewStore(client, ddbstore.Config{
			EntitlementsTable: tb.entitlements,
			LedgerTable:       tb.ledger,
			Keys:              ddbstore.DefaultEntitlementKeys,
		})
		proc := &metering.Processor{Store: sqs.ReleaseEarly(newMeasuredStore(metering.Writer{Store: store}, col, seen)), Parallel: cfg.ApplyConcurrency}
		h = proc.Handle
	default:
		n := &Naive{Client: client, EntitlementsTable: tb.entitlements, IdempotencyTable: tb.idempotency, Sequential: cfg.FIFO}
		n.observe = func(ctx context.Context, scope usage.Scope) (context.Context, func([]usage.Outcome)) {
			return col.observe(seen, ctx, scope)
		}
		h = n.Handle
	}
	// The service's chain minus metrics, for both systems: Logging (to a
	// discarded logger), FIFOOrder, and DeadLetters (rejected messages
	// straight to the dead-letter queue, as with the function's default
	// direct_dead_lettering).
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return pipeline.New(h, pipeline.Options{Logger: logger, DeadLetters: deadLetters})
}

// invocations is one Lambda execution environment: it takes a batch as
// the event source gathers it, runs it to completion, and takes the next.
func invocations(ctx context.Context, id int, h pipeline.Handler, w *Workload, q *queue, col *collector, cfg RunConfig, arrival func(int) time.Time) {
	for n := 1; ctx.Err() == nil; n++ {
		batch, receives := q.gather(ctx, cfg.BatchSize, cfg.Window)
		if batch == nil {
			return
		}
		msgs := make([]pipeline.Message, len(batch))
		for i, d := range batch {
			m := w.Messages[d.msg]
			msgs[i] = pipeline.Message{ID: m.ID, Body: m.Body, ReceiveCount: d.receive}
			if m.Kind == Redelivery && m.ID == w.Messages[m.Original].ID {
				msgs[i].ReceiveCount++ // an SQS redelivery: received before
			}
			if cfg.FIFO {
				msgs[i].GroupID = groupOf(m)
			}
		}
		bctx, cancel := context.WithTimeout(pipeline.WithRequestID(ctx, fmt.Sprintf("w%d-b%d", id, n)), cfg.InvocationTimeout)
		t0 := time.Now()
		results := h(bctx, msgs)
		end := time.Now()
		cancel()

		var again []pending
		done := 0
		col.mu.Lock()
		for i, r := range results {
			col.deliveries = append(col.deliveries, Delivery{Message: batch[i].msg, Receive: batch[i].receive, Status: r.Status, Reason: reasonOf(r.Outcome)})
			switch {
			case r.Done():
				done++
				col.endToEnd = append(col.endToEnd, ms(end.Sub(arrival(batch[i].msg))))
			case batch[i].receive < cfg.MaxReceives:
				again = append(again, pending{msg: batch[i].msg, receive: batch[i].receive + 1})
			}
		}
		col.batches = append(col.batches, batchSample{latency: end.Sub(t0), size: len(batch), receives: receives, done: done})
		col.mu.Unlock()
		q.done(batch, again)
	}
}

// benchQueueURL names the fake's queue (the worker needs one).
const benchQueueURL = "https://sqs.bench.local/000000000000/bench"

// runWorkers runs cfg.Concurrency worker processes on the fake SQS until
// every message is deleted or given up on. Ours is sqs.Worker, as
// `usage-event-service worker` runs it (4 pollers, COALESCE_WINDOW
// cfg.Window); the baseline's worker hands each receive to its handler
// as it comes.
func runWorkers(ctx context.Context, sys System, w *Workload, cfg RunConfig, q *queue, fake *sqsFake, col *collector,
	arrival func(int) time.Time, handler func(pipeline.DeadLetterSender) pipeline.Handler) {
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		h := recordDeliveries(handler(sqs.DeadLetterQueue{Client: fake, QueueURL: fake.dlqURL}), fake, col, arrival)
		if sys == Ours {
			url := benchQueueURL
			if cfg.FIFO {
				url += ".fifo" // as SQS names FIFO queues: the worker neither paces nor delays deletes there
			}
			wk := &sqs.Worker{Client: fake, QueueURL: url, Handler: h, Pollers: 4, CoalesceWindow: cfg.Window, CoalesceMax: cfg.CoalesceMax, PaceReceives: true,
				Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}
			wg.Go(func() { wk.Run(wctx) })
		} else {
			wg.Go(func() { plainWorker(wctx, fake, h, 4) })
		}
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !fake.drained() {
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	stop()
	wg.Wait()
}

// recordDeliveries wraps a worker's handler to record each delivery and,
// for the messages done, the time from their arrival.
func recordDeliveries(h pipeline.Handler, fake *sqsFake, col *collector, arrival func(int) time.Time) pipeline.Handler {
	return func(ctx context.Context, msgs []pipeline.Message) []pipeline.Result {
		ds := make([]pending, len(msgs))
		for i, m := range msgs {
			ds[i], _ = fake.delivery(m.ReceiptHandle)
		}
		t0 := time.Now()
		results := h(ctx, msgs)
		end := time.Now()
		done := 0
		col.mu.Lock()
		defer col.mu.Unlock()
		for i, r := range results {
			col.deliveries = append(col.deliveries, Delivery{Message: ds[i].msg, Receive: ds[i].receive, Status: r.Status, Reason: reasonOf(r.Outcome)})
			if r.Done() {
				done++
				col.endToEnd = append(col.endToEnd, ms(end.Sub(arrival(ds[i].msg))))
			}
		}
		col.batches = append(col.batches, batchSample{latency: end.Sub(t0), size: len(msgs), done: done})
		return results
	}
}

// plainWorker is the baseline's long-polling consumer: pollers loops of
// receive, handle, delete what is done.
func plainWorker(ctx context.Context, c sqs.Client, h pipeline.Handler, pollers int) {
	var wg sync.WaitGroup
	for range pollers {
		wg.Go(func() {
			for ctx.Err() == nil {
				out, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(benchQueueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 20})
				if err != nil || len(out.Messages) == 0 {
					continue
				}
				msgs := make([]pipeline.Message, len(out.Messages))
				for i, m := range out.Messages {
					n, _ := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
					msgs[i] = pipeline.Message{ID: aws.ToString(m.MessageId), Body: aws.ToString(m.Body), ReceiveCount: n,
						ReceiptHandle: aws.ToString(m.ReceiptHandle), GroupID: m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)]}
				}
				work := context.WithoutCancel(ctx)
				results := h(work, msgs)
				var entries []types.DeleteMessageBatchRequestEntry
				for i, r := range results {
					if r.Done() {
						entries = append(entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(len(entries))), ReceiptHandle: aws.String(msgs[i].ReceiptHandle)})
					}
				}
				for chunk := range slices.Chunk(entries, 10) {
					c.DeleteMessageBatch(work, &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(benchQueueURL), Entries: chunk})
				}
			}
		})
	}
	wg.Wait()
}

// Price lists on-demand prices in us-east-1, USD: DynamoDB per million
// request units, SQS per million requests (each 64 KB of a payload is a
// request; every message here is far smaller), Lambda per million
// invocations and per GB-second on arm64, the function's architecture.
var Prices = struct {
	WRU                float64 `json:"wruUsdPerMillion"`
	RRU                float64 `json:"rruUsdPerMillion"`
	SQSStandard        float64 `json:"sqsStandardUsdPerMillionRequests"`
	SQSFIFO            float64 `json:"sqsFifoUsdPerMillionRequests"`
	LambdaRequest      float64 `json:"lambdaUsdPerMillionInvocations"`
	LambdaGBSecond     float64 `json:"lambdaUsdPerGbSecondArm64"`
	LambdaMemoryGB     float64 `json:"lambdaMemoryGb"`
	ProducerBatchEntry int     `json:"producerMessagesPerSendMessageBatch"`
}{WRU: 0.625, RRU: 0.125, SQSStandard: 0.40, SQSFIFO: 0.50, LambdaRequest: 0.20, LambdaGBSecond: 0.0000133334, LambdaMemoryGB: 0.25, ProducerBatchEntry: 10}

// price adds the SQS requests and the Lambda bill to a run's DynamoDB
// cost. SQS: the producer's SendMessageBatch calls (10 messages each,
// the producer library's batches; the same for both systems), and the
// consumer's ReceiveMessage, DeleteMessageBatch and dead-letter
// SendMessageBatch calls: counted by the fake SQS for workers; for Lambda
// modelled as the event source makes them (a receive of up to 10 per
// gathered part of a batch, a delete per 10 messages done). Lambda's
// pollers' empty long polls on an idle queue (a few per minute) are left
// out. Lambda: one invocation per batch, billed per millisecond of the
// handler's time at Prices.LambdaMemoryGB (the module's 256 MB); workers
// have no Lambda bill (their compute is a container's, not priced here).
func (r *Result) price(cfg RunConfig, col *collector, fake *sqsFake) {
	sqsReq := map[string]int{"SendMessageBatch (producer)": (r.Events + Prices.ProducerBatchEntry - 1) / Prices.ProducerBatchEntry}
	var gbs float64
	switch {
	case fake != nil:
		reqs, letters, dropped := fake.snapshot()
		sqsReq["ReceiveMessage"] = reqs["ReceiveMessage"]
		sqsReq["DeleteMessageBatch"] = reqs["DeleteMessageBatch"]
		sqsReq["SendMessageBatch (dead letters)"] = reqs["SendMessageBatch"]
		r.DeadLettered = letters
		r.GaveUp = dropped
	default:
		for _, b := range col.batches {
			sqsReq["ReceiveMessage"] += b.receives
			sqsReq["DeleteMessageBatch"] += (b.done + 9) / 10
			gbs += math.Ceil(ms(b.latency)) / 1000 * Prices.LambdaMemoryGB
		}
		sqsReq["SendMessageBatch (dead letters)"] = col.dlqRequests
		r.Invocations = len(col.batches)
	}
	for _, n := range sqsReq {
		r.SQSRequests += n
	}
	r.SQSRequestsByOperation = sqsReq
	r.SQSRequestsPerEvent = ratio(float64(r.SQSRequests), float64(r.Events))
	price := Prices.SQSStandard
	if cfg.FIFO {
		price = Prices.SQSFIFO
	}
	r.SQSUSDPerMillionEvents = r.SQSRequestsPerEvent * price
	r.LambdaGBSeconds = gbs
	r.LambdaUSDPerMillionEvents = ratio(float64(r.Invocations)*Prices.LambdaRequest/1e6+gbs*Prices.LambdaGBSecond, float64(r.Events)) * 1e6
	r.TotalUSDPerMillionEvents = r.CostUSDPerMillionEvents + r.SQSUSDPerMillionEvents + r.LambdaUSDPerMillionEvents
	r.SteadyState.TotalUSDPerMillionEvents = r.SteadyState.CostUSDPerMillionEvents + r.SQSUSDPerMillionEvents + r.LambdaUSDPerMillionEvents
}
