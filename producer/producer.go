// Package producer publishes usage events to the usage-event-service
// queue.
//
// A Publisher validates each event with the same rules the service
// applies to a queued event (usage.Event.Validate and CheckQueued), so a
// producer learns about a bad event at once, with the same
// *usage.RejectionError reason codes, instead of
// finding it in the dead-letter queue later. It serialises events with
// their exact decimal amounts (Body: usage.Event.MarshalJSON with the few
// characters SQS refuses in a body escaped), sends them in
// SendMessageBatch calls that respect SQS's limits, retries the entries
// SQS reports as failed, and returns one result per event: nothing is
// dropped silently.
//
// Every event without an idempotency key gets a generated one, a UUIDv7
// (github.com/google/uuid), before its first attempt, so that any resend
// of the same Event value — by the SDK after a timeout, by this package,
// or by the caller using the key from the Receipt — is applied at most
// once. Without a key the service can only deduplicate by SQS message ID,
// and that ID changes whenever the message is sent again: SQS's own
// dead-letter redrive gives every message it moves back a new ID, so a
// key-less event that was applied but not acknowledged could be applied a
// second time. WithoutGeneratedKeys turns generation off, for callers who
// accept that; key-less events should be the exception. A grant never
// gets a generated key: its GrantID is its key in the contract, so a
// grant without one is sent with its GrantID, whatever the options.
//
// Each PublishBatch (and Publish) call is a span of kind producer,
// "usage-events publish", whose trace context every message carries: as
// the message attribute traceparent (W3C) and as the AWSTraceHeader
// system attribute (X-Ray's format, which Lambda and X-Ray read), so that
// the service's spans for the events join the producer's trace. The span
// comes from the global OpenTelemetry tracer provider (otel.SetTracerProvider)
// or the one given WithTracerProvider, as a child of the span in the
// caller's context. With neither (OpenTelemetry's default, a no-op) and
// no span in the context, nothing is added to the messages.
//
// A Publisher is safe for concurrent use.
package producer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/usage-event-service/usage-event-service/internal/backoff"
	"github.com/usage-event-service/usage-event-service/internal/queueurl"
	"github.com/usage-event-service/usage-event-service/internal/tracecontext"
	"github.com/usage-event-service/usage-event-service/usage"
)

// SQS limits the publisher works within.
const (
	// MaxBatchEntries is the most entries one SendMessageBatch call takes.
	MaxBatchEntries = 10
	// MaxBatchBytes bounds the total message size of one call. SQS now
	// accepts up to 1 MiB, but 256 KiB is the limit every SQS deployment
	// and emulator has enforced, and usage events are small: typically a
	// few hundred bytes, at most about 40 KiB (32 KiB of metadata plus
	// three 256-character IDs), or about 110 KiB in the worst case of
	// every character escaped by Body. Nothing is lost by staying
	// under it.
	MaxBatchBytes = 256 << 10
)

// Client is the one SQS call a Publisher makes. *sqs.Client implements
// it; WithClient accepts a wrapper (for tests, or for middleware of the
// caller's own).
type Client interface {
	SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Publisher sends usage events to one queue.
type Publisher struct {
	client       Client
	queueURL     string
	fifo         bool
	generateKeys bool
	concurrency  int
	maxAttempts  int
	retryDelay   backoff.Exponential
	tracer       trace.Tracer
}

// PublishSpan is the name of the span of a PublishBatch call.
const PublishSpan = "usage-events publish"

// WithTracerProvider makes the Publisher's spans with tp instead of the
// global tracer provider.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(p *Publisher) error {
		if tp == nil {
			return errors.New("producer: WithTracerProvider(nil)")
		}
		p.tracer = tp.Tracer(tracecontext.ScopeName)
		return nil
	}
}

// Option configures a Publisher.
type Option func(*Publisher) error

// WithClient makes the Publisher call c instead of an SQS client built
// from the aws.Config given to New.
func WithClient(c Client) Option {
	return func(p *Publisher) error {
		if c == nil {
			return errors.New("producer: WithClient(nil)")
		}
		p.client = c
		return nil
	}
}

// WithoutGeneratedKeys sends events that have no idempotency key
// without one, instead of giving each a new UUIDv7 (the default). The
// service then deduplicates them by SQS message ID, which is new for
// every send: a resend after an ambiguous failure (a timeout after SQS
// had already enqueued the message) is counted twice, and so is an event
// that was applied but not acknowledged and then moved back from the
// dead-letter queue by SQS's own redrive, which gives it a new ID. Use it
// only where counting twice does not matter. Events with a key are sent
// with it either way, and FIFO queues always get a key, since they need a
// deduplication ID.
func WithoutGeneratedKeys() Option {
	return func(p *Publisher) error {
		p.generateKeys = false
		return nil
	}
}

// WithAutoIdempotencyKeys asks for what is now the default, a generated
// UUIDv7 for every event without an idempotency key. It is kept so that
// callers written before keys were generated by default still build.
// Options apply in order: the later of it and WithoutGeneratedKeys wins.
func WithAutoIdempotencyKeys() Option {
	return func(p *Publisher) error {
		p.generateKeys = true
		return nil
	}
}

// WithConcurrency sets how many SendMessageBatch calls PublishBatch makes
// at once (default 4). FIFO queues always use 1, so that the events of a
// message group are enqueued in the order given.
func WithConcurrency(n int) Option {
	return func(p *Publisher) error {
		if n < 1 {
			return fmt.Errorf("producer: concurrency must be at least 1, got %d", n)
		}
		p.concurrency = n
		return nil
	}
}

// WithRetry sets how entries that SQS reports as failed without sender
// fault (an internal error, throttling of one entry) are retried:
// maxAttempts sends in all (default 5), waiting between them an
// exponentially growing delay from base (default 100ms) up to max
// (default 5s), with jitter so that many producers do not retry in step.
//
// Errors of a whole call (network, throttling, 5xx) are retried by the
// AWS SDK's retryer configured in the aws.Config, not here.
func WithRetry(maxAttempts int, base, max time.Duration) Option {
	return func(p *Publisher) error {
		if maxAttempts < 1 || base <= 0 || max < base {
			return fmt.Errorf("producer: WithRetry(%d, %v, %v): want maxAttempts >= 1 and 0 < base <= max", maxAttempts, base, max)
		}
		p.maxAttempts, p.retryDelay = maxAttempts, backoff.Exponential{Base: base, Max: max}
		return nil
	}
}

// New returns a Publisher for the queue at queueURL. It builds an SQS
// client from cfg (region, credentials, endpoint and retryer are the
// caller's) unless WithClient is given. A queue URL ending in ".fifo"
// selects FIFO behaviour (see Publisher.PublishBatch).
func New(cfg aws.Config, queueURL string, opts ...Option) (*Publisher, error) {
	if err := queueurl.Check(queueURL); err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	p := &Publisher{
		queueURL:     queueURL,
		fifo:         strings.HasSuffix(queueURL, ".fifo"),
		generateKeys: true,
		concurrency:  4,
		maxAttempts:  5,
		retryDelay:   backoff.Exponential{Base: 100 * time.Millisecond, Max: 5 * time.Second},
	}
	for _, opt := range opts {
		if err := opt(p); err != nil {
			return nil, err
		}
	}
	if p.client == nil {
		p.client = sqs.NewFromConfig(cfg)
	}
	if p.tracer == nil {
		p.tracer = otel.GetTracerProvider().Tracer(tracecontext.ScopeName)
	}
	if p.fifo {
		p.concurrency = 1
	}
	return p, nil
}

// Receipt says how an event was sent.
type Receipt struct {
	// MessageID is the SQS message ID; empty when the event was not sent.
	MessageID string
	// IdempotencyKey is the key the event was sent with: the caller's, a
	// grant's GrantID (whatever the options), a generated UUIDv7, or ""
	// with WithoutGeneratedKeys (then the service deduplicates by
	// MessageID).
	// It is set even when sending failed, so the event can be resent with
	// the same key.
	IdempotencyKey string
	// SequenceNumber is set by FIFO queues.
	SequenceNumber string
	// Attempts is the number of SendMessageBatch calls that carried the
	// event (0 when it was rejected before sending).
	Attempts int
}

// Result is what happened to one event of a batch.
type Result struct {
	Receipt
	// Err is nil when SQS accepted the event. Otherwise it is a
	// *usage.RejectionError (the event breaks the message contract and
	// was not sent), a *SendError (SQS refused it), or wraps the context's
	// error (see PublishBatch).
	Err error
}

// SendError is an event that SQS did not accept.
type SendError struct {
	// Code is SQS's error code for the entry (e.g. "InvalidParameterValue")
	// or, when the whole call failed, the API error code of the call
	// (e.g. "AWS.SimpleQueueService.NonExistentQueue"), if it had one.
	Code    string
	Message string
	// SenderFault is true when SQS blamed the request: sending it again
	// unchanged fails the same way, so it is not retried.
	SenderFault bool
	Attempts    int
	// Err is the call's error when the whole SendMessageBatch call failed.
	Err error
}

func (e *SendError) Error() string {
	fault := ""
	if e.SenderFault {
		fault = ", sender fault"
	}
	attempts := "1 attempt"
	if e.Attempts != 1 {
		attempts = strconv.Itoa(e.Attempts) + " attempts"
	}
	if e.Err != nil {
		return fmt.Sprintf("not sent after %s: %v", attempts, e.Err)
	}
	return fmt.Sprintf("not sent after %s: SQS %s%s: %s", attempts, e.Code, fault, e.Message)
}

func (e *SendError) Unwrap() error { return e.Err }

// Publish validates and sends one event. The error is the event's: a
// *usage.RejectionError, a *SendError, or the context's error.
func (p *Publisher) Publish(ctx context.Context, ev usage.Event) (Receipt, error) {
	results, _ := p.PublishBatch(ctx, []usage.Event{ev}) // the context's error is in the result too
	return results[0].Receipt, results[0].Err
}

// PublishBatch validates and sends events, returning one Result per
// event, in order.
//
// Invalid events are not sent; the others go out in SendMessageBatch
// calls of at most MaxBatchEntries entries and MaxBatchBytes, up to
// WithConcurrency calls at a time. Entries that SQS reports as failed
// without sender fault are resent alone, with backoff (WithRetry).
//
// On a FIFO queue each event's MessageGroupId is its entitlement
// (GroupID of its userId and entitlementKey) and its
// MessageDeduplicationId is its idempotency key, which is generated when
// absent because FIFO queues require one. So one entitlement's events
// stay in order, are never in the hands of two consumers at once (SQS
// hands out a group's next messages only when the earlier ones are done),
// and arrive together in a batch, where the service decides them in one
// transaction; different entitlements proceed in parallel. SQS allows
// only printable ASCII and 128 characters in both IDs; a value outside
// that is replaced by "sha256:" and its hex SHA-256, which keeps equal
// values equal. Calls are made one at a time so that a group's events are
// enqueued in the order given, except that an entry SQS failed and that
// is resent after backoff lands after the events that followed it.
//
// The error is non-nil only when ctx ends before every event was sent: it
// is then ctx.Err(), and the Results of the events not confirmed say so
// (errors.Is(r.Err, context.Canceled) or DeadlineExceeded). An event whose
// call was in flight may still have been enqueued; resending it with
// Receipt.IdempotencyKey is safe.
func (p *Publisher) PublishBatch(ctx context.Context, events []usage.Event) ([]Result, error) {
	ctx, span := p.tracer.Start(ctx, PublishSpan, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		attribute.String("messaging.system", "aws_sqs"), attribute.String("messaging.operation.type", "send"),
		attribute.String("messaging.destination.name", queueName(p.queueURL)), attribute.Int("messaging.batch.message_count", len(events))))
	defer span.End()
	traceparent, xray := tracecontext.Inject(ctx)
	results := make([]Result, len(events))
	var pending []entry
	for i, ev := range events {
		if e, ok := p.prepare(ev, &results[i]); ok {
			e.index, e.traceparent, e.xray = i, traceparent, xray
			if e.size() > MaxBatchBytes {
				// Not reachable by a valid event (see MaxBatchBytes); SQS
				// would refuse it, so it is not worth a call.
				results[i].Err = &SendError{Code: "MessageTooLong", SenderFault: true,
					Message: fmt.Sprintf("message is %d bytes, more than %d", e.size(), MaxBatchBytes)}
				continue
			}
			pending = append(pending, e)
		}
	}
	p.sendAll(ctx, calls(pending), results)
	if failed := countFailed(results); failed > 0 {
		span.SetAttributes(attribute.Int("usage.failed", failed))
		span.SetStatus(codes.Error, fmt.Sprintf("%d of %d events not sent", failed, len(events)))
	}
	if err := ctx.Err(); err != nil {
		for _, r := range results {
			if errors.Is(r.Err, err) {
				return results, err
			}
		}
	}
	return results, nil
}

// prepare validates an event, gives it a key when it has none (a grant
// its GrantID; another a generated one, when keys are generated or the
// queue is FIFO) and writes its entry; ok is false when r.Err says why it
// is not sent.
func (p *Publisher) prepare(ev usage.Event, r *Result) (e entry, ok bool) {
	err := ev.Validate()
	if err == nil {
		err = ev.CheckQueued() // a balance or a reserve is answered only synchronously
	}
	if err != nil {
		r.Err = err
		return e, false
	}
	switch {
	case ev.IdempotencyKey != "":
	case ev.Is(usage.OperationGrant):
		// A grant's ID is its idempotency key (usage.Record.DedupKey); a
		// generated key would differ from it, which the service refuses.
		ev.IdempotencyKey = ev.GrantID
	case p.generateKeys || p.fifo:
		key, err := newKey()
		if err != nil {
			r.Err = err
			return e, false
		}
		ev.IdempotencyKey = key
	}
	r.IdempotencyKey = ev.IdempotencyKey
	body, err := Body(ev)
	if err != nil {
		r.Err = err
		return e, false
	}
	e.body = string(body)
	if p.fifo {
		e.group = GroupID(ev.UserID, ev.EntitlementKey)
		if ev.PoolID != "" {
			e.group = PoolGroupID(ev.PoolID, ev.EntitlementKey)
		}
		e.dedup = FIFOID(ev.IdempotencyKey)
	}
	return e, true
}

// sendAll sends the calls, p.concurrency at a time.
func (p *Publisher) sendAll(ctx context.Context, chunks [][]entry, results []Result) {
	work := make(chan []entry)
	var wg sync.WaitGroup
	for range min(p.concurrency, len(chunks)) {
		wg.Go(func() {
			for c := range work {
				p.send(ctx, c, results)
			}
		})
	}
	for _, c := range chunks {
		work <- c
	}
	close(work)
	wg.Wait()
}

func countFailed(results []Result) int {
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
		}
	}
	return failed
}

// entry is a validated, serialised event on its way to SQS.
type entry struct {
	index        int // into the caller's slice
	body         string
	group, dedup string // FIFO only
	// traceparent and xray are the publish span's trace context; "" when
	// there is none.
	traceparent, xray string
}

// size is what the entry counts towards SQS's message size: its body
// and its message attribute (name, data type and value). System
// attributes such as AWSTraceHeader do not count.
func (e entry) size() int {
	if e.traceparent == "" {
		return len(e.body)
	}
	return len(e.body) + len(tracecontext.TraceParentAttribute) + len("String") + len(e.traceparent)
}

// queueName is the last path element of a queue URL.
func queueName(queueURL string) string {
	return queueURL[strings.LastIndex(queueURL, "/")+1:]
}

// newKey returns a new UUIDv7 in its canonical lower-case form. Version 7
// starts with the Unix time in milliseconds, and within one process
// google/uuid keeps the IDs strictly increasing, so keys sort by creation
// time: the ledger and logs list them in the order they were made, which
// helps when reading an incident.
func newKey() (string, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("not sent: no idempotency key could be generated: %w", err)
	}
	return u.String(), nil
}

// calls groups entries, in order, into SendMessageBatch calls within the
// payload and entry-count limits: runs of at most MaxBatchBytes, each cut
// into chunks of MaxBatchEntries.
func calls(entries []entry) [][]entry {
	var out [][]entry
	for _, run := range byteRuns(entries) {
		out = slices.AppendSeq(out, slices.Chunk(run, MaxBatchEntries))
	}
	return out
}

// byteRuns cuts entries, in order, into runs whose bodies add up to at
// most MaxBatchBytes (an entry is never larger: PublishBatch refuses it).
func byteRuns(entries []entry) [][]entry {
	var runs [][]entry
	start, size := 0, 0
	for i, e := range entries {
		if i > start && size+e.size() > MaxBatchBytes {
			runs = append(runs, entries[start:i])
			start, size = i, 0
		}
		size += e.size()
	}
	if start < len(entries) {
		runs = append(runs, entries[start:])
	}
	return runs
}

// send delivers one chunk, resending the entries SQS failed without
// sender fault, and records every entry's result.
func (p *Publisher) send(ctx context.Context, chunk []entry, results []Result) {
	pending := chunk
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			for _, e := range pending {
				results[e.index].Err = fmt.Errorf("not sent: %w", err)
			}
			return
		}
		in, byID := p.batchInput(pending)
		for _, e := range pending {
			results[e.index].Attempts = attempt
		}
		out, err := p.client.SendMessageBatch(ctx, in)
		if err != nil {
			for _, e := range pending {
				results[e.index].Err = callError(ctx, err, attempt)
			}
			return
		}
		retry := p.settle(out, byID, attempt, results)
		if len(retry) == 0 {
			return
		}
		// Equal jitter: spread out, so that many producers do not retry
		// in step, but never close to immediate.
		if err := backoff.Sleep(ctx, p.retryDelay.Equal(attempt-1)); err != nil {
			for _, e := range retry {
				results[e.index].Err = fmt.Errorf("not sent (SQS failed it on attempt %d, and the retry was cancelled): %w", attempt, err)
			}
			return
		}
		pending = retry
	}
}

// batchInput is one SendMessageBatch call of entries, with the entries
// by their ID in it.
func (p *Publisher) batchInput(pending []entry) (*sqs.SendMessageBatchInput, map[string]entry) {
	in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(p.queueURL), Entries: make([]types.SendMessageBatchRequestEntry, len(pending))}
	byID := make(map[string]entry, len(pending))
	for i, e := range pending {
		id := strconv.Itoa(i)
		byID[id] = e
		in.Entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(e.body)}
		if e.traceparent != "" {
			in.Entries[i].MessageAttributes = map[string]types.MessageAttributeValue{
				tracecontext.TraceParentAttribute: {DataType: aws.String("String"), StringValue: aws.String(e.traceparent)},
			}
			in.Entries[i].MessageSystemAttributes = map[string]types.MessageSystemAttributeValue{
				tracecontext.AWSTraceHeader: {DataType: aws.String("String"), StringValue: aws.String(e.xray)},
			}
		}
		if p.fifo {
			in.Entries[i].MessageGroupId = aws.String(e.group)
			in.Entries[i].MessageDeduplicationId = aws.String(e.dedup)
		}
	}
	return in, byID
}

// settle records a call's answer per entry and returns the entries to
// send again: those SQS failed without the sender's fault, while attempts
// remain.
func (p *Publisher) settle(out *sqs.SendMessageBatchOutput, byID map[string]entry, attempt int, results []Result) (retry []entry) {
	for _, s := range out.Successful {
		e, ok := byID[aws.ToString(s.Id)]
		if !ok {
			continue
		}
		delete(byID, aws.ToString(s.Id))
		results[e.index].MessageID = aws.ToString(s.MessageId)
		results[e.index].SequenceNumber = aws.ToString(s.SequenceNumber)
		results[e.index].Err = nil
	}
	for _, f := range out.Failed {
		e, ok := byID[aws.ToString(f.Id)]
		if !ok {
			continue
		}
		delete(byID, aws.ToString(f.Id))
		if !f.SenderFault && attempt < p.maxAttempts {
			retry = append(retry, e)
			continue
		}
		results[e.index].Err = &SendError{Code: aws.ToString(f.Code), Message: aws.ToString(f.Message), SenderFault: f.SenderFault, Attempts: attempt}
	}
	for _, e := range byID { // neither successful nor failed: SQS broke its contract
		results[e.index].Err = &SendError{Code: "MissingResult", Message: "SQS reported neither success nor failure for this entry; it may have been enqueued", Attempts: attempt}
	}
	return retry
}

// callError describes a SendMessageBatch call that failed as a whole.
func callError(ctx context.Context, err error, attempt int) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("outcome unknown, the request was in flight when the context ended (SQS may have enqueued the message): %w", ctxErr)
	}
	se := &SendError{Attempts: attempt, Err: err}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		se.Code, se.Message = apiErr.ErrorCode(), apiErr.ErrorMessage()
		se.SenderFault = apiErr.ErrorFault() == smithy.FaultClient
	}
	return se
}

// GroupID is the FIFO MessageGroupId of an entitlement's events: the
// userId and the entitlementKey, "%" and "#" in each escaped as "%25" and
// "%23", joined by "#" (so that no two entitlements share a group), made
// valid by FIFOID. For example "user-123#AI_TUTOR_ACCESS".
func GroupID(userID, entitlementKey string) string {
	return FIFOID(groupEscaper.Replace(userID) + "#" + groupEscaper.Replace(entitlementKey))
}

// PoolGroupID is the MessageGroupId of a pool's own events (a grant to
// the pool): "pool#", then the pool's ID and the entitlementKey escaped
// and joined as GroupID does. Its two unescaped "#" keep it apart from
// every user's group.
func PoolGroupID(poolID, entitlementKey string) string {
	return FIFOID("pool#" + groupEscaper.Replace(poolID) + "#" + groupEscaper.Replace(entitlementKey))
}

var groupEscaper = strings.NewReplacer("%", "%25", "#", "%23")

// FIFOID maps s (a group name or an idempotency key) to a valid FIFO
// MessageGroupId or MessageDeduplicationId: 1 to 128 characters of
// printable ASCII ('!' to '~') are kept as they are; anything else is
// replaced by "sha256:" and its hex SHA-256, deterministically, so the
// same entitlement is always the same group and the same key always the
// same deduplication ID.
func FIFOID(s string) string {
	ok := len(s) > 0 && len(s) <= 128
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] >= '!' && s[i] <= '~'
	}
	if ok {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}
