package faultinjection_test

// The harness of the end-to-end proofs: a workload of usage events with
// known expectations, the real worker binary, and a verification that
// reads only DynamoDB and the queues, never the service's own reports.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/sqs"
	"github.com/usage-event-service/usage-event-service/usage"
)

// ---------------------------------------------------------------------
// The world: tables and queues of one test, reached directly (never
// through the proxy) by the test's own clients.

type world struct {
	ddb          *awsdynamodb.Client
	sqs          *awssqs.Client
	entitlements string
	ledger       string
	queues       sqs.Queues
}

// The main queue's settings: a short visibility timeout, so that messages
// left for retry (and those of a killed worker) come back within seconds;
// a maxReceiveCount far above what transient failures need, so that they
// are retried, never redriven: every dead letter must be a rejection the
// service made, with its reason.
const (
	visibilityTimeoutSeconds = 3
	maxReceiveCount          = 100
)

func newWorld(t *testing.T) *world {
	t.Helper()
	cfg := emulator.Stack(t)
	ctx := context.Background()
	var err error
	w := &world{
		ddb: awsdynamodb.NewFromConfig(cfg), sqs: awssqs.NewFromConfig(cfg),
		entitlements: emulator.UniqueName(t, "ent"), ledger: emulator.UniqueName(t, "ledger"),
	}
	if _, err := dynamodb.CreateEntitlementsTable(ctx, w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys); err != nil {
		t.Fatal(err)
	}
	if _, err := dynamodb.CreateLedgerTable(ctx, w.ddb, w.ledger); err != nil {
		t.Fatal(err)
	}
	if w.queues, err = sqs.CreateQueues(ctx, w.sqs, emulator.UniqueName(t, "q"), maxReceiveCount, visibilityTimeoutSeconds); err != nil {
		t.Fatal(err)
	}
	return w
}

// depth is the number of messages in a queue, visible or in flight.
func (w *world) depth(t *testing.T, url string) (visible, inFlight int) {
	t.Helper()
	out, err := w.sqs.GetQueueAttributes(context.Background(), &awssqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := func(a sqstypes.QueueAttributeName) int {
		v, _ := strconv.Atoi(out.Attributes[string(a)])
		return v
	}
	return n(sqstypes.QueueAttributeNameApproximateNumberOfMessages) + n(sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed),
		n(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)
}

func (w *world) queued(t *testing.T) int {
	v, f := w.depth(t, w.queues.URL)
	return v + f
}

// drainTimeout only guards against a hang (a message that can never leave
// the queue); it is not a performance assertion.
const drainTimeout = 8 * time.Minute

// waitDrained waits until the main queue holds no message at all. Once
// empty it stays empty: nothing else sends to it, and a message leaves it
// only after its outcome is final (applied, duplicate, or dead-lettered).
func (w *world) waitDrained(t *testing.T, alive func() error) {
	t.Helper()
	deadline := time.Now().Add(drainTimeout)
	for {
		n := w.queued(t)
		if n == 0 {
			return
		}
		if err := alive(); err != nil {
			t.Fatalf("the worker died with %d messages left: %v", n, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the queue did not drain within %v: %d messages left", drainTimeout, n)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitBatches waits until the worker has finished n batches; it reports
// false if the queue drained before.
func (w *world) waitBatches(t *testing.T, p *workerProcess, n int) bool {
	t.Helper()
	for i := 0; p.batches() < n; i++ {
		if err := p.alive(); err != nil {
			t.Fatalf("the worker died: %v", err)
		}
		if i%10 == 0 && w.queued(t) == 0 {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// ---------------------------------------------------------------------
// The workload.

// entitlement is one provisioned entitlement and the amounts its events
// carry.
type entitlement struct {
	scope usage.Scope
	limit string // "" for unlimited
	reset usage.ResetPeriod
	// anchorAge places the periods' anchor that long before provisioning,
	// so that no period boundary falls within a run: the proofs check one
	// period's totals, not the reset rule (package usage has its tests).
	anchorAge time.Duration
	weight    int // share of the valid events
	amounts   []string
}

// message is one message sent to the queue, with what must become of it.
type message struct {
	body        string
	scope       usage.Scope
	idemKey     string // "" when the dedup key is the SQS message ID
	amount      usage.Decimal
	wantReason  usage.Reason // set for messages that can only be rejected
	conflicting bool         // reuses another event's key with another amount
	id          string       // SQS message ID, known once sent
}

func (m message) dedupKey() string {
	if m.idemKey != "" {
		return m.idemKey
	}
	return m.id
}

// mix says how many messages of each kind a workload has.
type mix struct {
	keyed      int // valid events with an idempotency key
	unkeyed    int // valid events without one: deduplicated by message ID
	duplicates int // resends of a keyed event, same body (producer retries)
	conflicts  int // a keyed event's key with a different amount
	invalid    int // contract violations, each with a known reason
	notFound   int // events for entitlements that do not exist
}

// entitlements: two hot ones (one unlimited, one whose limit is hit early),
// a periodic one with exact decimals and a '#' in the user ID (escaped in
// the ledger key), a daily one, and forty cold ones with small limits,
// some of which are hit.
func entitlements() []entitlement {
	ents := []entitlement{
		{scope: usage.Scope{UserID: "hot-unlimited", EntitlementKey: "API_CALLS"}, weight: 300, amounts: []string{"1", "2", "3"}},
		{scope: usage.Scope{UserID: "hot-limited", EntitlementKey: "AI_TUTOR_ACCESS"}, limit: "500", weight: 250, amounts: []string{"1", "2", "5"}},
		{scope: usage.Scope{UserID: "team#42", EntitlementKey: "EXPORTS"}, limit: "150.75", reset: usage.ResetMonthly, anchorAge: 14 * 24 * time.Hour, weight: 80, amounts: []string{"0.25", "1.5", "2"}},
		{scope: usage.Scope{UserID: "daily-user", EntitlementKey: "SEARCHES"}, limit: "100", reset: usage.ResetDaily, anchorAge: 12 * time.Hour, weight: 70, amounts: []string{"1"}},
	}
	for i := range 40 {
		ents = append(ents, entitlement{
			scope: usage.Scope{UserID: fmt.Sprintf("user-%02d", i), EntitlementKey: "SEATS"},
			limit: strconv.Itoa(20 + 2*i), weight: 7, amounts: []string{"1", "2"},
		})
	}
	return ents
}

// invalidBodies are contract violations and the reason each must be
// dead-lettered with.
var invalidBodies = []struct {
	body   string
	reason usage.Reason
}{
	{`not json`, usage.ReasonInvalidJSON},
	{`{"userId":"user-01","entitlementKey":"SEATS"} {}`, usage.ReasonInvalidJSON},
	{`{"entitlementKey":"SEATS","amount":1}`, usage.ReasonMissingField},
	{`{"userId":"   ","entitlementKey":"SEATS"}`, usage.ReasonInvalidField},
	{`{"userId":"user-01","entitlementKey":"SEATS","idempotencyKey":""}`, usage.ReasonInvalidField},
	{`{"userId":"user-01","entitlementKey":"SEATS","amount":"1"}`, usage.ReasonInvalidAmount},
	{`{"userId":"user-01","entitlementKey":"SEATS","amount":-2}`, usage.ReasonInvalidAmount},
	{`{"userId":"user-01","entitlementKey":"SEATS","metadata":[1,2]}`, usage.ReasonInvalidMetadata},
}

// workload builds the messages of a mix, in a seeded random order.
func workload(seed uint64, m mix) ([]entitlement, []message) {
	rng := rand.New(rand.NewPCG(seed, 1))
	ents := entitlements()
	total := 0
	for _, e := range ents {
		total += e.weight
	}
	pick := func() entitlement {
		n := rng.IntN(total)
		for _, e := range ents {
			if n -= e.weight; n < 0 {
				return e
			}
		}
		panic("unreachable")
	}
	event := func(e entitlement, idemKey, amount string) message {
		body := map[string]any{"userId": e.scope.UserID, "entitlementKey": e.scope.EntitlementKey, "amount": json.Number(amount)}
		if idemKey != "" {
			body["idempotencyKey"] = idemKey
		}
		if rng.IntN(4) == 0 {
			body["metadata"] = map[string]any{"resourceId": fmt.Sprintf("session-%d", rng.IntN(1e6))}
		}
		b, _ := json.Marshal(body)
		return message{body: string(b), scope: e.scope, idemKey: idemKey, amount: usage.MustDecimal(amount)}
	}
	var msgs, keyed, unlimited []message
	for i := range m.keyed {
		e := pick()
		msg := event(e, fmt.Sprintf("ev-%05d", i), e.amounts[rng.IntN(len(e.amounts))])
		msgs, keyed = append(msgs, msg), append(keyed, msg)
		if e.limit == "" {
			unlimited = append(unlimited, msg)
		}
	}
	for range m.unkeyed {
		e := pick()
		msgs = append(msgs, event(e, "", e.amounts[rng.IntN(len(e.amounts))]))
	}
	for range m.duplicates {
		msgs = append(msgs, keyed[rng.IntN(len(keyed))])
	}
	// Conflicts only on unlimited entitlements: with a limit, the
	// conflicting event may be rejected for the limit before the original
	// is applied, which is right too but not IDEMPOTENCY_CONFLICT.
	for i := range m.conflicts {
		orig := unlimited[(i*7919)%len(unlimited)]
		c := event(entitlement{scope: orig.scope}, orig.idemKey, orig.amount.Add(usage.DecimalFromInt(1)).String())
		c.conflicting = true
		msgs = append(msgs, c)
	}
	for i := range m.invalid {
		inv := invalidBodies[i%len(invalidBodies)]
		msgs = append(msgs, message{body: inv.body, wantReason: inv.reason})
	}
	for i := range m.notFound {
		e := entitlement{scope: usage.Scope{UserID: fmt.Sprintf("ghost-%d", i%5), EntitlementKey: "SEATS"}}
		msg := event(e, fmt.Sprintf("nf-%d", i), "1")
		msg.wantReason = usage.ReasonEntitlementNotFound
		msgs = append(msgs, msg)
	}
	rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	return ents, msgs
}

// provision writes the entitlements as access-service would, with no
// usage and no period started yet.
func (w *world) provision(t *testing.T, ents []entitlement, now time.Time) {
	t.Helper()
	for _, e := range ents {
		item := dynamodb.EntitlementItem{UserID: e.scope.UserID, EntitlementKey: e.scope.EntitlementKey, ResetPeriod: e.reset}
		if e.limit != "" {
			l := usage.MustDecimal(e.limit)
			item.Limit = &l
		}
		if e.anchorAge != 0 {
			anchor := now.Add(-e.anchorAge).UTC()
			item.ResetAnchor = &anchor
		}
		if err := dynamodb.PutEntitlement(context.Background(), w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys, item); err != nil {
			t.Fatal(err)
		}
	}
}

// send sends every message, ten per SendMessageBatch, eight batches at a
// time, and records the message IDs SQS assigned.
func (w *world) send(t *testing.T, msgs []message) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(msgs)/10+1)
	sem := make(chan struct{}, 8)
	for start := 0; start < len(msgs); start += 10 {
		chunk := msgs[start:min(start+10, len(msgs))]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			entries := make([]sqstypes.SendMessageBatchRequestEntry, len(chunk))
			for i, m := range chunk {
				entries[i] = sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(m.body)}
			}
			out, err := w.sqs.SendMessageBatch(context.Background(), &awssqs.SendMessageBatchInput{QueueUrl: aws.String(w.queues.URL), Entries: entries})
			if err != nil {
				errs <- err
				return
			}
			if len(out.Failed) > 0 {
				errs <- fmt.Errorf("send failed: %s", aws.ToString(out.Failed[0].Message))
				return
			}
			for _, ok := range out.Successful {
				i, _ := strconv.Atoi(aws.ToString(ok.Id))
				chunk[i].id = aws.ToString(ok.MessageId)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------
// The worker: the production binary, configured the production way.

// buildWorker builds cmd/usage-event-service (emulator.Binary: with the
// race detector when the test binary has it, so that the worker under
// faults is checked too).
func buildWorker(t *testing.T) string {
	t.Helper()
	return emulator.Binary(t, "./cmd/usage-event-service")
}

// workerPollers is the worker's WORKER_POLLERS: its receive loops, and
// so the batches it has in flight at most.
const workerPollers = 4

// workerEnv is the worker's whole environment: the service's variables and
// the AWS SDK's standard ones, with DynamoDB at dynamoEndpoint (the proxy,
// or DynamoDB Local itself).
func (w *world) workerEnv(dynamoEndpoint string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(),
		"ENTITLEMENTS_TABLE=" + w.entitlements, "USAGE_LEDGER_TABLE=" + w.ledger,
		"USAGE_EVENT_QUEUE_URL=" + w.queues.URL, "DEAD_LETTER_QUEUE_URL=" + w.queues.DeadLetterURL,
		"AWS_ENDPOINT_URL_DYNAMODB=" + dynamoEndpoint, "WORKER_POLLERS=" + strconv.Itoa(workerPollers),
	}
	for _, k := range []string{"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_SQS",
		"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_EC2_METADATA_DISABLED"} {
		env = append(env, k+"="+os.Getenv(k))
	}
	return env
}

// workerProcess is one run of the worker binary.
type workerProcess struct {
	cmd    *exec.Cmd
	out    emulator.LockedBuffer
	exited chan struct{}
	err    error // valid once exited is closed
}

// startWorker starts the worker. It is killed when the test ends, and by
// the kernel if the test binary dies first, so no run outlives the test.
func startWorker(t *testing.T, bin string, env []string) *workerProcess {
	t.Helper()
	p := &workerProcess{exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "worker")
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("worker pid %d output (tail):\n%s", p.cmd.Process.Pid, tail(p.out.String(), 20))
		}
	})
	return p
}

// alive returns an error if the worker has exited.
func (p *workerProcess) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("exited: %v; output (tail):\n%s", p.err, tail(p.out.String(), 20))
	default:
		return nil
	}
}

// batches is how many batches the worker has finished.
func (p *workerProcess) batches() int {
	return strings.Count(p.out.String(), `"msg":"batch processed"`)
}

// stop sends SIGTERM and requires the clean exit the README promises.
func (p *workerProcess) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		t.Fatal("the worker did not stop within a minute of SIGTERM")
	}
	if p.err != nil {
		t.Errorf("the worker exited with %v after SIGTERM, want 0", p.err)
	}
}

// allAlive reports the first of the workers that has exited, for waitDrained.
func allAlive(workers []*workerProcess) func() error {
	return func() error {
		for _, p := range workers {
			if err := p.alive(); err != nil {
				return err
			}
		}
		return nil
	}
}

// stopAll stops the workers cleanly and requires that none raced.
func stopAll(t *testing.T, workers []*workerProcess) {
	t.Helper()
	for _, p := range workers {
		p.stop(t)
	}
	checkNoRaces(t, workers...)
}

// checkNoRaces fails the test if the race detector reported a race in any
// run of the worker (a killed run never gets to exit with status 66).
func checkNoRaces(t *testing.T, runs ...*workerProcess) {
	t.Helper()
	for _, p := range runs {
		out := p.out.String()
		if i := strings.Index(out, "WARNING: DATA RACE"); i >= 0 {
			t.Errorf("data race in the worker (pid %d):\n%s", p.cmd.Process.Pid, out[i:min(len(out), i+4000)])
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// serviceReport sums what the worker logged: its batch summaries and its
// per-message lines. It is reported next to the verified outcomes, never
// relied upon.
type serviceReport struct {
	Applied, Duplicates, Rejected, Retried, DeadLettered int
}

func (r *serviceReport) add(output string) {
	for line := range strings.Lines(output) {
		var rec struct {
			Msg                                                  string
			Applied, Duplicates, Rejected, Retried, DeadLettered int
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "batch processed" {
			continue
		}
		r.Applied += rec.Applied
		r.Duplicates += rec.Duplicates
		r.Rejected += rec.Rejected
		r.Retried += rec.Retried
		r.DeadLettered += rec.DeadLettered
	}
}

// ---------------------------------------------------------------------
// The verification.

// deadLetter is a message found in the dead-letter queue.
type deadLetter struct {
	body, reason, originalID string
	// rejectedAt is when the service rejected the delivery it
	// dead-lettered (usage.rejectedAt; zero if unreadable), receiveCount
	// that delivery's receive count.
	rejectedAt   time.Time
	receiveCount string
}

// readDeadLetters receives every message of the dead-letter queue, with
// its attributes, each once (by message ID). A receive whose answer is lost
// on the way (a connection closed under it: seen here as SDK warnings)
// leaves its messages in flight without the reader seeing them, as in SQS;
// the visibility timeout is therefore short, so such messages come back
// and are read, and long enough that a full pass over the queue finishes
// before the first messages reappear.
func (w *world) readDeadLetters(t *testing.T) []deadLetter {
	t.Helper()
	want, _ := w.depth(t, w.queues.DeadLetterURL)
	seen := map[string]deadLetter{}
	var order []string
	for empty := 0; len(seen) < want && empty < 45; {
		out, err := w.sqs.ReceiveMessage(context.Background(), &awssqs.ReceiveMessageInput{
			QueueUrl: aws.String(w.queues.DeadLetterURL), MaxNumberOfMessages: 10, VisibilityTimeout: 20,
			WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			empty++
			continue
		}
		for _, m := range out.Messages {
			id := aws.ToString(m.MessageId)
			if _, dup := seen[id]; dup {
				continue
			}
			attr := func(name string) string { return aws.ToString(m.MessageAttributes[name].StringValue) }
			rejectedAt, _ := time.Parse(time.RFC3339Nano, attr(sqs.AttrRejectedAt))
			seen[id] = deadLetter{body: aws.ToString(m.Body), reason: attr(sqs.AttrReason), originalID: attr(sqs.AttrOriginalMessageID),
				rejectedAt: rejectedAt, receiveCount: attr(sqs.AttrReceiveCount)}
			order = append(order, id)
		}
	}
	if len(seen) != want {
		// ApproximateNumberOfMessages is approximate, in SQS as in the
		// emulator. The verification does not rest on it: every message
		// sent must be found applied or among these letters, or it is
		// reported LOST.
		t.Logf("read %d dead letters; the queue had reported %d", len(seen), want)
	}
	got := make([]deadLetter, len(order))
	for i, id := range order {
		got[i] = seen[id]
	}
	return got
}

// outcomes is what verification established, independently of the service.
type outcomes struct {
	messages        int            // sent
	eventsApplied   int            // ledger entries, i.e. distinct dedup keys applied
	absorbed        int            // messages whose key was applied by another message (resends)
	rejected        map[string]int // messages dead-lettered, by reason
	repeatedLetters int            // extra copies of a message in the dead-letter queue
	onQueue         int
}

func (o outcomes) String() string {
	var reasons []string
	for r, n := range o.rejected {
		reasons = append(reasons, fmt.Sprintf("%s=%d", r, n))
	}
	sort.Strings(reasons)
	return fmt.Sprintf("%d messages: %d events applied once, %d resent messages absorbed, rejected {%s}, %d repeated dead letters, %d still on the queue",
		o.messages, o.eventsApplied, o.absorbed, strings.Join(reasons, " "), o.repeatedLetters, o.onQueue)
}

// verify proves the exactly-once guarantee from the tables and queues
// alone:
//
//   - every message sent is accounted for exactly once: its event is in the
//     ledger with its amount (applied, by it or by an identical resend) and
//     it is not in the dead-letter queue; or it is in the dead-letter queue
//     with the reason it deserves and its event was not applied;
//   - nothing is in the ledger that was not sent;
//   - for every entitlement, used is exactly the sum of the amounts of its
//     ledger entries, all in the current period, and never over the limit;
//   - a LIMIT_EXCEEDED rejection was deserved: the event does not fit even
//     now, and usage only grows within a period;
//   - nothing is left on the main queue, and nothing was redriven there
//     without a reason.
func (w *world) verify(t *testing.T, ents []entitlement, msgs []message, started time.Time) outcomes {
	t.Helper()
	ctx := context.Background()
	o := outcomes{messages: len(msgs), rejected: map[string]int{}, onQueue: w.queued(t)}
	if o.onQueue != 0 {
		t.Errorf("%d messages still on the main queue", o.onQueue)
	}

	// The dead-letter queue, by original message ID.
	letters := map[string][]deadLetter{}
	for _, d := range w.readDeadLetters(t) {
		if d.reason == "" {
			t.Errorf("dead letter without a reason (moved by the redrive policy, i.e. a transient failure outlasted %d receives): %s", maxReceiveCount, d.body)
			continue
		}
		letters[d.originalID] = append(letters[d.originalID], d)
	}

	// The ledger and the entitlements, by scope.
	type scopeState struct {
		ent     dynamodb.Entitlement
		spec    entitlement
		entries map[string]usage.LedgerEntry // by dedup key
	}
	scopes := map[usage.Scope]*scopeState{}
	for _, e := range ents {
		got, err := dynamodb.ListEntitlements(ctx, w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys, e.scope.UserID, e.scope.EntitlementKey)
		if err != nil || len(got) != 1 {
			t.Fatalf("entitlement %v: %v %v", e.scope, got, err)
		}
		entries, err := dynamodb.ListLedger(ctx, w.ddb, w.ledger, e.scope)
		if err != nil {
			t.Fatal(err)
		}
		s := &scopeState{ent: got[0], spec: e, entries: map[string]usage.LedgerEntry{}}
		for _, l := range entries {
			if _, dup := s.entries[l.DedupKey]; dup {
				t.Errorf("%v: two ledger entries for key %s", e.scope, l.DedupKey)
			}
			s.entries[l.DedupKey] = l
		}
		scopes[e.scope] = s
		o.eventsApplied += len(entries)
	}

	// Every message, exactly once.
	sentKeys := map[usage.Scope]map[string][]string{} // scope -> dedup key -> message IDs
	for _, m := range msgs {
		dl := letters[m.id]
		if len(dl) > 1 {
			o.repeatedLetters += len(dl) - 1
			for _, d := range dl[1:] {
				if d.reason != dl[0].reason {
					t.Errorf("message %s dead-lettered twice with different reasons: %s, %s", m.id, dl[0].reason, d.reason)
				}
			}
		}
		delete(letters, m.id)
		reason := ""
		if len(dl) > 0 {
			reason = dl[0].reason
			o.rejected[reason]++
		}
		if m.wantReason != "" {
			if reason != string(m.wantReason) {
				t.Errorf("message %s %s: dead-lettered with %q, want %s", m.id, m.body, reason, m.wantReason)
			}
			continue
		}
		s := scopes[m.scope]
		if sentKeys[m.scope] == nil {
			sentKeys[m.scope] = map[string][]string{}
		}
		sentKeys[m.scope][m.dedupKey()] = append(sentKeys[m.scope][m.dedupKey()], m.id)
		entry, applied := s.entries[m.dedupKey()]
		switch {
		case applied && entry.Amount.Cmp(m.amount) == 0:
			if reason != "" {
				t.Errorf("message %s (%v key %s): applied, and also dead-lettered with %s", m.id, m.scope, m.dedupKey(), reason)
			}
			if entry.MessageID != m.id {
				o.absorbed++
			}
		case applied:
			if reason != string(usage.ReasonIdempotencyConflict) {
				t.Errorf("message %s (%v key %s, amount %s): its key was applied with amount %s; dead-lettered with %q, want IDEMPOTENCY_CONFLICT",
					m.id, m.scope, m.dedupKey(), m.amount, entry.Amount, reason)
			}
		case reason == string(usage.ReasonLimitExceeded) && s.spec.limit != "":
			// Usage only grows within a period: if the event did not fit
			// when rejected, it does not fit now.
			limit := usage.MustDecimal(s.spec.limit)
			if s.ent.Used.Add(m.amount).Cmp(limit) <= 0 {
				t.Errorf("message %s (%v, amount %s) rejected LIMIT_EXCEEDED, yet it fits: used %s, limit %s", m.id, m.scope, m.amount, s.ent.Used, limit)
			}
		case reason == "":
			t.Errorf("LOST: message %s (%v key %s, amount %s) was neither applied nor dead-lettered", m.id, m.scope, m.dedupKey(), m.amount)
		default:
			t.Errorf("message %s (%v key %s, amount %s) dead-lettered with %s, which it does not deserve", m.id, m.scope, m.dedupKey(), m.amount, reason)
		}
	}
	for id, dl := range letters {
		t.Errorf("dead letter %s (%s) is not a message that was sent: %s", id, dl[0].reason, dl[0].body)
	}

	// Every entitlement: used is the sum of its ledger, within the limit,
	// all in the period that began before the run.
	for scope, s := range scopes {
		period := ""
		if s.ent.PeriodStart != nil {
			period = usage.FormatInstant(*s.ent.PeriodStart)
			if s.ent.PeriodStart.After(started) {
				t.Errorf("%v: a period began during the run (%s); the workload's anchors should prevent that", scope, period)
			}
		} else if s.spec.reset != "" && len(s.entries) > 0 {
			t.Errorf("%v: usage was applied but no period was started", scope)
		}
		sum := usage.Decimal{}
		for key, l := range s.entries {
			ids, sent := sentKeys[scope][key]
			if !sent {
				t.Errorf("%v: ledger entry for key %s, which no message carried", scope, key)
			} else if !slices.Contains(ids, l.MessageID) {
				t.Errorf("%v: ledger entry for key %s names message %s, not one of %v", scope, key, l.MessageID, ids)
			}
			if l.PeriodStart != period {
				t.Errorf("%v: ledger entry %s counted in period %q, the entitlement is in %q", scope, key, l.PeriodStart, period)
			}
			sum = sum.Add(l.Amount)
		}
		if s.ent.Used.Cmp(sum) != 0 {
			t.Errorf("%v: used %s, but its ledger entries add up to %s", scope, s.ent.Used, sum)
		}
		if s.spec.limit != "" && s.ent.Used.Cmp(usage.MustDecimal(s.spec.limit)) > 0 {
			t.Errorf("%v: used %s is over the limit %s", scope, s.ent.Used, s.spec.limit)
		}
	}
	return o
}

// summarizeScopes is a short report of the hot entitlements' final state.
func (w *world) summarizeScopes(t *testing.T, ents []entitlement) string {
	t.Helper()
	var parts []string
	for _, e := range ents[:4] {
		got, err := dynamodb.ListEntitlements(context.Background(), w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys, e.scope.UserID, e.scope.EntitlementKey)
		if err != nil || len(got) != 1 {
			continue
		}
		limit := "unlimited"
		if e.limit != "" {
			limit = "limit " + e.limit
		}
		parts = append(parts, fmt.Sprintf("%s/%s used %s (%s)", e.scope.UserID, e.scope.EntitlementKey, got[0].Used, limit))
	}
	return strings.Join(parts, "; ")
}
