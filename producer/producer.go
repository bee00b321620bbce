// Package producer publishes usage events to the usage-event-service
// queue.
//
// A Publisher validates each event with the same rules the service
// applies (usage.Event.Validate), so a producer learns about a bad event
// at once, with the same *usage.RejectionError reason codes, instead of
// finding it in the dead-letter queue later. It serialises events with
// their exact decimal amounts (usage.Event.MarshalJSON, with the few
// characters SQS refuses in a body escaped), sends them in
// SendMessageBatch calls that respect SQS's limits, retries the entries
// SQS reports as failed, and returns one result per event: nothing is
// dropped silently.
//
// With WithAutoIdempotencyKeys, every event without an idempotency key
// gets a UUIDv7 before its first attempt, so that any resend of the same
// Event value — by the SDK after a timeout, by this package, or by the
// caller using the key from the Receipt — is applied at most once.
//
// A Publisher is safe for concurrent use.
package producer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/usage-event-service/usage-event-service/internal/config"
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
	// every character escaped by usage.Event.MarshalJSON. Nothing is lost by staying
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
	client      Client
	queueURL    string
	fifo        bool
	autoKeys    bool
	concurrency int
	maxAttempts int
	baseBackoff time.Duration
	maxBackoff  time.Duration
	newKey      func() string
	sleep       func(context.Context, time.Duration) error
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

// WithAutoIdempotencyKeys gives every event that has no idempotency key
// a new UUIDv7 (see NewUUIDv7) before it is first sent. The key is in the
// Receipt, so the caller can log it and resend the event with it.
//
// Without a key the service deduplicates by SQS message ID, which is new
// for every send: a resend after an ambiguous failure (a timeout after
// SQS had already enqueued the message) would then be counted twice. An
// explicit key always wins over an automatic one.
func WithAutoIdempotencyKeys() Option {
	return func(p *Publisher) error {
		p.autoKeys = true
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
		p.maxAttempts, p.baseBackoff, p.maxBackoff = maxAttempts, base, max
		return nil
	}
}

// New returns a Publisher for the queue at queueURL. It builds an SQS
// client from cfg (region, credentials, endpoint and retryer are the
// caller's) unless WithClient is given. A queue URL ending in ".fifo"
// selects FIFO behaviour (see Publisher.PublishBatch).
func New(cfg aws.Config, queueURL string, opts ...Option) (*Publisher, error) {
	if err := config.CheckQueueURL(queueURL); err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	p := &Publisher{
		queueURL:    queueURL,
		fifo:        strings.HasSuffix(queueURL, ".fifo"),
		concurrency: 4,
		maxAttempts: 5,
		baseBackoff: 100 * time.Millisecond,
		maxBackoff:  5 * time.Second,
		newKey:      NewUUIDv7,
		sleep:       sleep,
	}
	for _, opt := range opts {
		if err := opt(p); err != nil {
			return nil, err
		}
	}
	if p.client == nil {
		p.client = sqs.NewFromConfig(cfg)
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
	// IdempotencyKey is the key the event was sent with: the caller's, an
	// automatic one, or "" (then the service deduplicates by MessageID).
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
// On a FIFO queue each event's MessageGroupId is its userId (one user's
// events stay in order; different users proceed in parallel) and its
// MessageDeduplicationId is its idempotency key, which is generated when
// absent because FIFO queues require one. SQS allows only printable ASCII
// and 128 characters in both; a value outside that is replaced by
// "sha256:" and its hex SHA-256, which keeps equal values equal. Calls
// are made one at a time so that a group's events are enqueued in the
// order given, except that an entry SQS failed and that is resent after
// backoff lands after the events that followed it.
//
// The error is non-nil only when ctx ends before every event was sent: it
// is then ctx.Err(), and the Results of the events not confirmed say so
// (errors.Is(r.Err, context.Canceled) or DeadlineExceeded). An event whose
// call was in flight may still have been enqueued; resending it with
// Receipt.IdempotencyKey is safe.
func (p *Publisher) PublishBatch(ctx context.Context, events []usage.Event) ([]Result, error) {
	results := make([]Result, len(events))
	var pending []entry
	for i, ev := range events {
		if err := ev.Validate(); err != nil {
			results[i].Err = err
			continue
		}
		if ev.IdempotencyKey == "" && (p.autoKeys || p.fifo) {
			ev.IdempotencyKey = p.newKey()
		}
		results[i].IdempotencyKey = ev.IdempotencyKey
		body, err := ev.MarshalJSON()
		if err != nil {
			results[i].Err = err
			continue
		}
		if len(body) > MaxBatchBytes {
			// Not reachable by a valid event (see MaxBatchBytes); SQS
			// would refuse it, so it is not worth a call.
			results[i].Err = &SendError{Code: "MessageTooLong", SenderFault: true,
				Message: fmt.Sprintf("message is %d bytes, more than %d", len(body), MaxBatchBytes)}
			continue
		}
		e := entry{index: i, body: string(body)}
		if p.fifo {
			e.group = FIFOID(ev.UserID)
			e.dedup = FIFOID(ev.IdempotencyKey)
		}
		pending = append(pending, e)
	}

	chunks := split(pending)
	work := make(chan []entry)
	var wg sync.WaitGroup
	for range min(p.concurrency, len(chunks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				p.send(ctx, c, results)
			}
		}()
	}
	for _, c := range chunks {
		work <- c
	}
	close(work)
	wg.Wait()

	if err := ctx.Err(); err != nil {
		for _, r := range results {
			if errors.Is(r.Err, err) {
				return results, err
			}
		}
	}
	return results, nil
}

// entry is a validated, serialised event on its way to SQS.
type entry struct {
	index        int // into the caller's slice
	body         string
	group, dedup string // FIFO only
}

// split groups entries, in order, into SendMessageBatch calls within the
// entry-count and payload limits.
func split(entries []entry) [][]entry {
	var chunks [][]entry
	var cur []entry
	size := 0
	for _, e := range entries {
		if len(cur) == MaxBatchEntries || (len(cur) > 0 && size+len(e.body) > MaxBatchBytes) {
			chunks = append(chunks, cur)
			cur, size = nil, 0
		}
		cur = append(cur, e)
		size += len(e.body)
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}
	return chunks
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
		in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(p.queueURL), Entries: make([]types.SendMessageBatchRequestEntry, len(pending))}
		byID := make(map[string]entry, len(pending))
		for i, e := range pending {
			id := strconv.Itoa(i)
			byID[id] = e
			in.Entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(e.body)}
			if p.fifo {
				in.Entries[i].MessageGroupId = aws.String(e.group)
				in.Entries[i].MessageDeduplicationId = aws.String(e.dedup)
			}
			results[e.index].Attempts = attempt
		}
		out, err := p.client.SendMessageBatch(ctx, in)
		if err != nil {
			for _, e := range pending {
				results[e.index].Err = callError(ctx, err, attempt)
			}
			return
		}
		var retry []entry
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
		if len(retry) == 0 {
			return
		}
		if err := p.sleep(ctx, p.backoff(attempt)); err != nil {
			for _, e := range retry {
				results[e.index].Err = fmt.Errorf("not sent (SQS failed it on attempt %d, and the retry was cancelled): %w", attempt, err)
			}
			return
		}
		pending = retry
	}
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

// backoff returns the delay before attempt+1: exponential from
// baseBackoff, capped at maxBackoff, with "equal jitter" (half fixed, half
// random) so that retries are spread out but never immediate.
func (p *Publisher) backoff(attempt int) time.Duration {
	d := p.baseBackoff << min(attempt-1, 30)
	if d <= 0 || d > p.maxBackoff {
		d = p.maxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// FIFOID maps s (a userId or an idempotency key) to a valid FIFO
// MessageGroupId or MessageDeduplicationId: 1 to 128 characters of
// printable ASCII ('!' to '~') are kept as they are; anything else is
// replaced by "sha256:" and its hex SHA-256, deterministically, so the
// same userId is always the same group and the same key always the same
// deduplication ID.
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
