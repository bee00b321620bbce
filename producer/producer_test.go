package producer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/uuid"

	"github.com/usage-event-service/usage-event-service/producer"
	"github.com/usage-event-service/usage-event-service/usage"
)

func event(user, key, amount string) usage.Event {
	ev := usage.NewEvent(user, key)
	ev.Amount = usage.MustDecimal(amount)
	return ev
}

func TestPublishedBodiesRoundTripWithExactAmounts(t *testing.T) {
	cfg, c := awsEnv(t)
	url := newQueue(t, c, "", nil)
	pub, err := producer.New(cfg, url)
	if err != nil {
		t.Fatal(err)
	}
	events := []usage.Event{
		event("u-1", "api-calls", "1"),
		event("u-1", "api-calls", "0.1"),
		event("u-2", "storage-gb", "12345678901234567890.123456789012345678"), // 38 digits: float64 would round it
		event("u-3", "tokens", "1E+100"),
		event("ü-ser ☃", "clé", "0.000000000000000000000000000001"),
	}
	events[1].IdempotencyKey = "order-17"
	events[2].Metadata = json.RawMessage(`{ "region": "eu-west-1", "tags": [1, 2.50, "x"] }`)

	var want []string
	for _, ev := range events {
		r, err := pub.Publish(context.Background(), ev)
		if err != nil {
			t.Fatalf("Publish(%+v): %v", ev, err)
		}
		if r.MessageID == "" || r.Attempts != 1 {
			t.Errorf("receipt %+v: want a message ID after 1 attempt", r)
		}
		ev.IdempotencyKey = r.IdempotencyKey // the caller's, or the generated one
		body, _ := producer.Body(ev)
		want = append(want, string(body))
	}
	got := receiveAll(t, c, url, len(events))
	slices.Sort(want)
	if g := sortedBodies(got); !slices.Equal(g, want) {
		t.Fatalf("bodies:\n got %q\nwant %q", g, want)
	}
	for _, m := range got {
		ev, err := usage.ParseEvent([]byte(aws.ToString(m.Body)))
		if err != nil {
			t.Fatalf("the service would reject %s: %v", aws.ToString(m.Body), err)
		}
		found := false
		for _, orig := range events {
			if orig.UserID == ev.UserID && orig.Amount.Cmp(ev.Amount) == 0 && orig.Amount.String() == ev.Amount.String() {
				found = true
			}
		}
		if !found {
			t.Errorf("received %s: amount %s matches no published event exactly", aws.ToString(m.Body), ev.Amount)
		}
	}
}

func TestCharactersSQSRefusesRawAreSentEscapedAndParseBackIdentically(t *testing.T) {
	cfg, c := awsEnv(t)
	url := newQueue(t, c, "", nil)
	pub, err := producer.New(cfg, url)
	if err != nil {
		t.Fatal(err)
	}
	// U+FFFF and U+FFFE are valid in the contract but rejected by SQS in a
	// body; emoji (above U+FFFF) are rejected by fauxqs.
	ev := event("user-😀-\uffff", "key-\ufffe", "1")
	ev.Metadata = json.RawMessage(`{"note":"🚀 launch \uffff"}`)
	if _, err := pub.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	got := receiveAll(t, c, url, 1)
	body := aws.ToString(got[0].Body)
	sent, err := usage.ParseEvent([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if sent.UserID != ev.UserID || sent.EntitlementKey != ev.EntitlementKey {
		t.Errorf("parsed %q/%q, want %q/%q", sent.UserID, sent.EntitlementKey, ev.UserID, ev.EntitlementKey)
	}
	var gotMeta, wantMeta any
	if json.Unmarshal(sent.Metadata, &gotMeta) != nil || json.Unmarshal(ev.Metadata, &wantMeta) != nil || fmt.Sprint(gotMeta) != fmt.Sprint(wantMeta) {
		t.Errorf("metadata %s, want the same JSON value as %s", sent.Metadata, ev.Metadata)
	}
	if strings.ContainsAny(body, "\uffff\ufffe😀🚀") {
		t.Errorf("body %q carries a character raw", body)
	}
}

func TestPublishBatchSplitsIntoCallsOfAtMostTenEntries(t *testing.T) {
	cfg, c := awsEnv(t)
	url := newQueue(t, c, "", nil)
	rec := &recorder{next: awssqs.NewFromConfig(cfg)}
	pub, err := producer.New(cfg, url, producer.WithClient(rec))
	if err != nil {
		t.Fatal(err)
	}
	var events []usage.Event
	for i := range 25 {
		events = append(events, event("u-"+itoa(i), "api-calls", "1"))
	}
	results, err := pub.PublishBatch(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if r.Err != nil || r.MessageID == "" {
			t.Errorf("event %d: %+v", i, r)
		}
	}
	sizes := rec.callSizes()
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{5, 10, 10}) {
		t.Errorf("entries per call = %v, want 10, 10 and 5", sizes)
	}
	receiveAll(t, c, url, 25)
}

func TestPublishBatchSplitsCallsThatWouldExceedTheSizeLimit(t *testing.T) {
	cfg, c := awsEnv(t)
	url := newQueue(t, c, "", nil)
	rec := &recorder{next: awssqs.NewFromConfig(cfg)}
	pub, err := producer.New(cfg, url, producer.WithClient(rec))
	if err != nil {
		t.Fatal(err)
	}
	// Ten events of about 30 KiB each: within ten entries, but 300 KiB.
	var events []usage.Event
	for i := range 10 {
		ev := event("u-"+itoa(i), "exports", "1")
		ev.Metadata = json.RawMessage(`{"blob":"` + strings.Repeat("x", 30<<10) + `"}`)
		events = append(events, ev)
	}
	results, err := pub.PublishBatch(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if r.Err != nil {
			t.Errorf("event %d: %v", i, r.Err)
		}
	}
	bytes := rec.callBytes()
	if len(bytes) < 2 {
		t.Errorf("%d call(s) for 300 KiB, want the batch split", len(bytes))
	}
	for _, n := range bytes {
		if n > producer.MaxBatchBytes {
			t.Errorf("a call carried %d bytes, more than %d", n, producer.MaxBatchBytes)
		}
	}
	receiveAll(t, c, url, 10)
}

func TestPublishBatchReportsEntriesSQSRejectsPerEvent(t *testing.T) {
	cfg, c := awsEnv(t)
	// SQS's smallest MaximumMessageSize: an event with 2 KiB of metadata
	// is valid by the contract but too large for this queue.
	url := newQueue(t, c, "", map[string]string{string(sqstypes.QueueAttributeNameMaximumMessageSize): "1024"})
	rec := &recorder{next: awssqs.NewFromConfig(cfg)}
	pub, err := producer.New(cfg, url, producer.WithClient(rec), producer.WithRetry(3, time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	big := event("u-big", "exports", "1")
	big.Metadata = json.RawMessage(`{"blob":"` + strings.Repeat("x", 2048) + `"}`)
	results, err := pub.PublishBatch(context.Background(), []usage.Event{event("u-1", "exports", "1"), big, event("u-2", "exports", "1")})
	if err != nil {
		t.Fatal(err)
	}
	if results[0].Err != nil || results[2].Err != nil {
		t.Errorf("small events: %v, %v; want both sent", results[0].Err, results[2].Err)
	}
	var se *producer.SendError
	if !errors.As(results[1].Err, &se) {
		t.Fatalf("big event: err = %v, want a *producer.SendError", results[1].Err)
	}
	if !se.SenderFault || se.Attempts != 1 || results[1].MessageID != "" {
		t.Errorf("big event: %+v, receipt %+v; want a sender fault after 1 attempt (not retried) and no message ID", se, results[1].Receipt)
	}
	if n := len(rec.callSizes()); n != 1 {
		t.Errorf("%d calls, want 1: a sender fault is not retried", n)
	}
	receiveAll(t, c, url, 2)
}

func TestPublishBatchToADeletedQueueFailsEveryEventWithoutATopLevelError(t *testing.T) {
	cfg, c := awsEnv(t)
	url := newQueue(t, c, "", nil)
	if _, err := c.DeleteQueue(context.Background(), &awssqs.DeleteQueueInput{QueueUrl: aws.String(url)}); err != nil {
		t.Fatal(err)
	}
	pub, err := producer.New(cfg, url)
	if err != nil {
		t.Fatal(err)
	}
	results, err := pub.PublishBatch(context.Background(), []usage.Event{event("u-1", "k", "1"), event("u-2", "k", "1")})
	if err != nil {
		t.Fatalf("top-level error %v: per-event failures belong in the results", err)
	}
	for i, r := range results {
		var se *producer.SendError
		if !errors.As(r.Err, &se) || !strings.Contains(se.Code, "NonExistentQueue") {
			t.Errorf("event %d: err = %v, want a SendError naming NonExistentQueue", i, r.Err)
		}
	}
}

func TestEntriesSQSFailsWithoutSenderFaultAreRetriedAlone(t *testing.T) {
	cfg, c := awsEnv(t)
	url := newQueue(t, c, "", nil)
	flaky := func(body string, attempt int) *sqstypes.BatchResultErrorEntry {
		if strings.Contains(body, `"flaky`) && attempt == 1 {
			return &sqstypes.BatchResultErrorEntry{Code: aws.String("InternalError"), Message: aws.String("try again"), SenderFault: false}
		}
		return nil
	}
	rec := &recorder{next: awssqs.NewFromConfig(cfg), fail: flaky}
	pub, err := producer.New(cfg, url, producer.WithClient(rec), producer.WithRetry(3, time.Millisecond, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	events := []usage.Event{event("ok-1", "k", "1"), event("flaky-1", "k", "1"), event("ok-2", "k", "1"), event("flaky-2", "k", "1")}
	results, err := pub.PublishBatch(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		wantAttempts := 1
		if strings.HasPrefix(events[i].UserID, "flaky") {
			wantAttempts = 2
		}
		if r.Err != nil || r.MessageID == "" || r.Attempts != wantAttempts {
			t.Errorf("%s: %+v, want sent after %d attempt(s)", events[i].UserID, r, wantAttempts)
		}
	}
	if sizes := rec.callSizes(); !slices.Equal(sizes, []int{4, 2}) {
		t.Errorf("entries per call = %v, want 4 then only the 2 failed ones", sizes)
	}
	receiveAll(t, c, url, 4) // each exactly once
}

func TestRetriesAreBoundedAndTheLastFailureIsReturned(t *testing.T) {
	cfg, c := awsEnv(t)
	url := newQueue(t, c, "", nil)
	tests := []struct {
		name         string
		senderFault  bool
		wantAttempts int
	}{
		{"transient failures stop after maxAttempts", false, 3},
		{"sender faults are not retried", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			always := func(string, int) *sqstypes.BatchResultErrorEntry {
				return &sqstypes.BatchResultErrorEntry{Code: aws.String("Boom"), Message: aws.String("no"), SenderFault: tt.senderFault}
			}
			rec := &recorder{next: awssqs.NewFromConfig(cfg), fail: always}
			pub, err := producer.New(cfg, url, producer.WithClient(rec), producer.WithRetry(3, time.Millisecond, time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			_, err = pub.Publish(context.Background(), event("u-"+tt.name[:5], "k", "1"))
			var se *producer.SendError
			if !errors.As(err, &se) || se.Code != "Boom" || se.Attempts != tt.wantAttempts || se.SenderFault != tt.senderFault {
				t.Fatalf("err = %#v, want SendError Boom after %d attempts", err, tt.wantAttempts)
			}
			if n := len(rec.callSizes()); n != tt.wantAttempts {
				t.Errorf("%d calls, want %d", n, tt.wantAttempts)
			}
		})
	}
}

func TestValidationErrorsAreReturnedBeforeAnyRequest(t *testing.T) {
	cfg, c := awsEnv(t)
	url := newQueue(t, c, "", nil)
	rec := &recorder{next: awssqs.NewFromConfig(cfg)}
	pub, err := producer.New(cfg, url, producer.WithClient(rec))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		ev    usage.Event
		want  *usage.RejectionError
		field string
	}{
		{"missing userId", usage.NewEvent("", "k"), usage.ErrMissingField, "userId"},
		{"blank entitlementKey", usage.NewEvent("u", "   "), usage.ErrInvalidField, "entitlementKey"},
		{"zero amount", event("u", "k", "0"), usage.ErrInvalidAmount, "amount"},
		{"negative amount", event("u", "k", "-1"), usage.ErrInvalidAmount, "amount"},
		{"zero value Event (amount unset)", usage.Event{UserID: "u", EntitlementKey: "k"}, usage.ErrInvalidAmount, "amount"},
		{"userId too long", usage.NewEvent(strings.Repeat("x", usage.MaxIDLength+1), "k"), usage.ErrInvalidField, "userId"},
		{"metadata not an object", func() usage.Event { e := event("u", "k", "1"); e.Metadata = json.RawMessage(`[1]`); return e }(), usage.ErrInvalidMetadata, "metadata"},
		{"metadata too large", func() usage.Event {
			e := event("u", "k", "1")
			e.Metadata = json.RawMessage(`{"a":"` + strings.Repeat("x", usage.MaxMetadataBytes) + `"}`)
			return e
		}(), usage.ErrInvalidMetadata, "metadata"},
		{"idempotency key only spaces", func() usage.Event { e := event("u", "k", "1"); e.IdempotencyKey = " "; return e }(), usage.ErrInvalidField, "idempotencyKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := pub.Publish(context.Background(), tt.ev)
			var rej *usage.RejectionError
			if !errors.Is(err, tt.want) || !errors.As(err, &rej) || rej.Field != tt.field {
				t.Fatalf("err = %v, want %s on %s", err, tt.want.Reason, tt.field)
			}
			if r.Attempts != 0 || r.IdempotencyKey != "" {
				t.Errorf("receipt %+v: a rejected event is neither sent nor given a key", r)
			}
		})
	}
	if n := len(rec.callSizes()); n != 0 {
		t.Errorf("%d SendMessageBatch calls for invalid events, want 0", n)
	}

	// In a batch, the valid events still go.
	results, err := pub.PublishBatch(context.Background(), []usage.Event{event("u", "k", "0"), event("u", "k", "2")})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(results[0].Err, usage.ErrInvalidAmount) || results[1].Err != nil {
		t.Errorf("results = %+v, want the invalid event rejected and the valid one sent", results)
	}
	receiveAll(t, c, url, 1)
}

func TestIdempotencyKeys(t *testing.T) {
	cfg, c := awsEnv(t)
	tests := []struct {
		name     string
		opts     []producer.Option
		explicit string
		wantKey  func(string) bool
	}{
		{"by default a key is generated, a UUIDv7", nil, "", isUUIDv7},
		{"an explicit key wins over a generated one", nil, "invoice-7:line-2", func(k string) bool { return k == "invoice-7:line-2" }},
		{"no key with WithoutGeneratedKeys", []producer.Option{producer.WithoutGeneratedKeys()}, "", func(k string) bool { return k == "" }},
		{"an explicit key is sent with WithoutGeneratedKeys", []producer.Option{producer.WithoutGeneratedKeys()}, "order-9", func(k string) bool { return k == "order-9" }},
		{"WithAutoIdempotencyKeys is the default", []producer.Option{producer.WithAutoIdempotencyKeys()}, "", isUUIDv7},
		{"the later option wins", []producer.Option{producer.WithAutoIdempotencyKeys(), producer.WithoutGeneratedKeys()}, "", func(k string) bool { return k == "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := newQueue(t, c, "", nil)
			pub, err := producer.New(cfg, url, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			ev := event("u-1", "api-calls", "1")
			ev.IdempotencyKey = tt.explicit
			r, err := pub.Publish(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.wantKey(r.IdempotencyKey) {
				t.Errorf("receipt key %q", r.IdempotencyKey)
			}
			got := receiveAll(t, c, url, 1)
			sent, err := usage.ParseEvent([]byte(aws.ToString(got[0].Body)))
			if err != nil {
				t.Fatal(err)
			}
			if sent.IdempotencyKey != r.IdempotencyKey {
				t.Errorf("body key %q, receipt key %q: want the same", sent.IdempotencyKey, r.IdempotencyKey)
			}
		})
	}
}

func TestGeneratedKeysAreTimeOrderedAndUniqueAcrossConcurrentPublishers(t *testing.T) {
	cfg, c := awsEnv(t)
	url := newQueue(t, c, "", nil)
	pub, err := producer.New(cfg, url)
	if err != nil {
		t.Fatal(err)
	}
	// Batches are published one after another: keys of a later batch are
	// made later and must sort after every key of an earlier one.
	var batches [][]string
	for b := range 3 {
		var events []usage.Event
		for i := range 15 {
			events = append(events, event(fmt.Sprintf("u-%d-%d", b, i), "k", "1"))
		}
		results, err := pub.PublishBatch(context.Background(), events)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, r := range results {
			if r.Err != nil || !isUUIDv7(r.IdempotencyKey) {
				t.Fatalf("result %+v", r)
			}
			keys = append(keys, r.IdempotencyKey)
		}
		if !slices.IsSorted(keys) {
			t.Errorf("keys of one batch are not in event order: %v", keys)
		}
		batches = append(batches, keys)
	}
	for i := 1; i < len(batches); i++ {
		if batches[i][0] <= batches[i-1][len(batches[i-1])-1] {
			t.Errorf("batch %d starts at %s, not after batch %d's %s", i, batches[i][0], i-1, batches[i-1][len(batches[i-1])-1])
		}
	}

	// Concurrent Publish calls: every key distinct, every event arrives.
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 5 {
				r, err := pub.Publish(context.Background(), event(fmt.Sprintf("c-%d-%d", g, i), "k", "1"))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[r.IdempotencyKey] {
					t.Errorf("key %s assigned twice", r.IdempotencyKey)
				}
				seen[r.IdempotencyKey] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	receiveAll(t, c, url, 45+40)
}

func TestFIFOQueuesGetGroupAndDeduplicationIDs(t *testing.T) {
	cfg, c := awsEnv(t)
	url := newQueue(t, c, ".fifo", nil)
	pub, err := producer.New(cfg, url, producer.WithoutGeneratedKeys()) // FIFO generates keys anyway
	if err != nil {
		t.Fatal(err)
	}
	keyed := event("user-a", "api-calls", "1")
	keyed.IdempotencyKey = "order-1"
	unkeyed := event("user-b", "api-calls", "2")
	unicode := event("usér ☃", "api-calls", "3") // not a valid group ID as is
	results, err := pub.PublishBatch(context.Background(), []usage.Event{keyed, unkeyed, unicode})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if r.Err != nil || r.SequenceNumber == "" {
			t.Fatalf("event %d: %+v, want sent with a sequence number", i, r)
		}
	}
	if results[0].IdempotencyKey != "order-1" || !isUUIDv7(results[1].IdempotencyKey) {
		t.Errorf("keys %q, %q: want the explicit one and a generated UUIDv7", results[0].IdempotencyKey, results[1].IdempotencyKey)
	}
	// The same key again is dropped by SQS's own FIFO deduplication.
	if _, err := pub.Publish(context.Background(), keyed); err != nil {
		t.Fatal(err)
	}

	got := receiveAll(t, c, url, 3)
	wantGroups := map[string]string{"user-a": "user-a#api-calls", "user-b": "user-b#api-calls", "usér ☃": producer.FIFOID("usér ☃#api-calls")}
	for _, m := range got {
		ev, err := usage.ParseEvent([]byte(aws.ToString(m.Body)))
		if err != nil {
			t.Fatal(err)
		}
		group := m.Attributes[string(sqstypes.MessageSystemAttributeNameMessageGroupId)]
		dedup := m.Attributes[string(sqstypes.MessageSystemAttributeNameMessageDeduplicationId)]
		if group != wantGroups[ev.UserID] {
			t.Errorf("%s: MessageGroupId %q, want %q", ev.UserID, group, wantGroups[ev.UserID])
		}
		if ev.IdempotencyKey == "" || dedup != ev.IdempotencyKey {
			t.Errorf("%s: MessageDeduplicationId %q, body key %q: want the key", ev.UserID, dedup, ev.IdempotencyKey)
		}
	}
	if g := producer.FIFOID("usér ☃"); !strings.HasPrefix(g, "sha256:") || len(g) > 128 {
		t.Errorf("FIFOID of a non-ASCII userId = %q", g)
	}
}

func TestCancelledContext(t *testing.T) {
	cfg, c := awsEnv(t)
	url := newQueue(t, c, "", nil)

	t.Run("before publishing nothing is sent", func(t *testing.T) {
		rec := &recorder{next: awssqs.NewFromConfig(cfg)}
		pub, err := producer.New(cfg, url, producer.WithClient(rec))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		results, err := pub.PublishBatch(ctx, []usage.Event{event("u-1", "k", "1"), event("u-2", "k", "1")})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		for i, r := range results {
			if !errors.Is(r.Err, context.Canceled) || r.IdempotencyKey == "" {
				t.Errorf("event %d: %+v, want Canceled with its key, to resend with", i, r)
			}
		}
		if n := len(rec.callSizes()); n != 0 {
			t.Errorf("%d calls after cancellation", n)
		}
		if _, err := pub.Publish(ctx, event("u-3", "k", "1")); !errors.Is(err, context.Canceled) {
			t.Errorf("Publish: err = %v, want context.Canceled", err)
		}
	})

	t.Run("while waiting to retry", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		failOnce := func(body string, attempt int) *sqstypes.BatchResultErrorEntry {
			cancel() // the context ends during the backoff that follows
			return &sqstypes.BatchResultErrorEntry{Code: aws.String("InternalError"), Message: aws.String("x")}
		}
		rec := &recorder{next: awssqs.NewFromConfig(cfg), fail: failOnce}
		pub, err := producer.New(cfg, url, producer.WithClient(rec), producer.WithRetry(5, time.Minute, time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = pub.Publish(ctx, event("u-4", "k", "1"))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("returned after %v: the one-minute backoff was not interrupted", d)
		}
	})
	receiveAll(t, c, url, 0)
}

func TestNewRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name string
		url  string
		opts []producer.Option
	}{
		{"empty queue URL", "", nil},
		{"not a URL", "usage-events", nil},
		{"nil client", "https://sqs.us-east-1.amazonaws.com/123456789012/q", []producer.Option{producer.WithClient(nil)}},
		{"zero concurrency", "https://sqs.us-east-1.amazonaws.com/123456789012/q", []producer.Option{producer.WithConcurrency(0)}},
		{"zero attempts", "https://sqs.us-east-1.amazonaws.com/123456789012/q", []producer.Option{producer.WithRetry(0, time.Millisecond, time.Second)}},
		{"max backoff below base", "https://sqs.us-east-1.amazonaws.com/123456789012/q", []producer.Option{producer.WithRetry(3, time.Second, time.Millisecond)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := producer.New(aws.Config{}, tt.url, tt.opts...); err == nil {
				t.Error("New succeeded")
			}
		})
	}
}

// isUUIDv7 reports whether s is a UUIDv7 in canonical (lower-case) form.
func isUUIDv7(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.Version() == 7 && u.Variant() == uuid.RFC4122 && u.String() == s
}
