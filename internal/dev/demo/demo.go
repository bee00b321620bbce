// Package demo runs the service's main job end to end on this machine:
// real DynamoDB Local and SQS/SNS emulators, the real worker binary, a
// handful of events that show every kind of outcome, and the usage
// notifications they cause, read from a queue subscribed to the topic.
package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/logging"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/devstack"
	"github.com/usage-event-service/usage-event-service/notify"
	"github.com/usage-event-service/usage-event-service/sqs"
	"github.com/usage-event-service/usage-event-service/usage"
)

type step struct {
	what string
	body string
	// notifies is how many notifications the step's event causes.
	notifies int
}

// The notifications topic and the queue subscribed to it.
const topicName, inboxName = "demo-usage-notifications", "demo-notifications-inbox"

// Run executes the demo, writing a report to out.
func Run(ctx context.Context, out io.Writer) (err error) {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	say("==> starting DynamoDB Local and the SQS/SNS emulator (first run downloads them into .cache/)")
	emulators, err := devstack.StartEmulators(ctx)
	if err != nil {
		return err
	}
	defer emulators.Stop()
	for k, v := range emulators.Env() {
		os.Setenv(k, v)
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithLogger(logging.Nop{}))
	if err != nil {
		return err
	}
	ddb, sq, sn := awsdynamodb.NewFromConfig(cfg), awssqs.NewFromConfig(cfg), awssns.NewFromConfig(cfg)

	const entTable, ledgerTable = "demo-entitlements", "demo-usage-ledger"
	say("==> creating tables %s, %s and queues", entTable, ledgerTable)
	if _, err := dynamodb.CreateEntitlementsTable(ctx, ddb, entTable, dynamodb.DefaultEntitlementKeys); err != nil {
		return err
	}
	if _, err := dynamodb.CreateLedgerTable(ctx, ddb, ledgerTable); err != nil {
		return err
	}
	queues, err := sqs.CreateQueues(ctx, sq, "demo-usage-event-queue", 3, 30)
	if err != nil {
		return err
	}
	say("==> creating the notifications topic %s and subscribing the queue %s to it", topicName, inboxName)
	topicARN, err := notify.CreateTopic(ctx, sn, topicName)
	if err != nil {
		return err
	}
	inbox, err := devstack.SubscribeInbox(ctx, sn, sq, topicARN, inboxName)
	if err != nil {
		return err
	}

	now := time.Now().UTC()
	lastMonth := usage.PeriodStart(usage.ResetMonthly, nil, now).AddDate(0, -1, 0)
	seed := []dynamodb.EntitlementItem{
		{UserID: "alice", EntitlementKey: "AI_TUTOR_ACCESS", Limit: dec("100"), Used: dec("10"), ResetPeriod: usage.ResetNone},
		{UserID: "bob", EntitlementKey: "AI_TUTOR_ACCESS", Limit: dec("5"), Used: dec("5"), ResetPeriod: usage.ResetNone},
		{UserID: "carol", EntitlementKey: "AI_TUTOR_ACCESS", Limit: dec("10"), Used: dec("10"), ResetPeriod: usage.ResetMonthly, PeriodStart: &lastMonth},
	}
	say("==> seeding entitlements")
	for _, e := range seed {
		if err := dynamodb.PutEntitlement(ctx, ddb, entTable, dynamodb.DefaultEntitlementKeys, e); err != nil {
			return err
		}
		say("    %-6s %s limit=%s used=%s resetPeriod=%s%s", e.UserID, e.EntitlementKey, e.Limit, e.Used, e.ResetPeriod, periodNote(e))
	}

	// Build the service binary, so the demo runs exactly what ships.
	binDir, err := os.MkdirTemp("", "usage-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(binDir)
	if err := devstack.Build(ctx, binDir, os.Stderr, "./cmd/usage-event-service"); err != nil {
		return err
	}
	bin := filepath.Join(binDir, "usage-event-service")
	say("==> starting the worker: %s worker (NOTIFY_TOPIC_ARN=%s; thresholds 80 %% and 100 %%, and the first LIMIT_EXCEEDED)", bin, inbox.TopicARN)
	worker, err := devstack.StartWorker(bin, devstack.Environ(map[string]string{
		"ENTITLEMENTS_TABLE": entTable, "USAGE_LEDGER_TABLE": ledgerTable,
		"USAGE_EVENT_QUEUE_URL": queues.URL, "DEAD_LETTER_QUEUE_URL": queues.DeadLetterURL, "LOG_LEVEL": "DEBUG",
		"NOTIFY_TOPIC_ARN": inbox.TopicARN,
	}), os.Stderr)
	if err != nil {
		return err
	}
	defer worker.Logs.Close()
	defer worker.Stop()
	lines := newLogWatcher(worker.Logs)

	steps := []step{
		{"a normal event", `{"userId":"alice","entitlementKey":"AI_TUTOR_ACCESS","amount":1,"idempotencyKey":"demo-1","metadata":{"resourceId":"session-456"}}`, 0},
		{"the same event again (a producer retry)", `{"userId":"alice","entitlementKey":"AI_TUTOR_ACCESS","amount":1,"idempotencyKey":"demo-1"}`, 0},
		{"bob is at his limit of 5", `{"userId":"bob","entitlementKey":"AI_TUTOR_ACCESS","amount":1}`, 1},
		{"an invalid event (amount as a string)", `{"userId":"alice","entitlementKey":"AI_TUTOR_ACCESS","amount":"1"}`, 0},
		{"carol's month has rolled over: reset, then consume", `{"userId":"carol","entitlementKey":"AI_TUTOR_ACCESS","amount":1}`, 0},
		{"an entitlement that does not exist", `{"userId":"dave","entitlementKey":"AI_TUTOR_ACCESS","amount":1}`, 0},
		{"alice uses 70 more: 81 of 100 crosses 80 %", `{"userId":"alice","entitlementKey":"AI_TUTOR_ACCESS","amount":70}`, 1},
		{"alice uses 19 more: 100 of 100 reaches 100 %", `{"userId":"alice","entitlementKey":"AI_TUTOR_ACCESS","amount":19}`, 1},
		{"alice asks for 1 more, over her limit", `{"userId":"alice","entitlementKey":"AI_TUTOR_ACCESS","amount":1}`, 1},
		{"and once more (no second notification)", `{"userId":"alice","entitlementKey":"AI_TUTOR_ACCESS","amount":1}`, 0},
	}
	say("==> sending %d events, one at a time, and reading what the worker logged for each", len(steps))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "    #\tEVENT\tOUTCOME\tREASON")
	for i, s := range steps {
		sent, err := sq.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(queues.URL), MessageBody: aws.String(s.body)})
		if err != nil {
			return err
		}
		rec, err := lines.waitFor(aws.ToString(sent.MessageId), 60*time.Second)
		if err != nil {
			return err
		}
		reason := rec.Reason
		if rec.Detail != "" {
			reason = rec.Detail
		}
		fmt.Fprintf(tw, "    %d\t%s\t%s\t%s\n", i+1, s.what, rec.Outcome, reason)
	}
	tw.Flush()

	say("==> resulting usage")
	for _, user := range []string{"alice", "bob", "carol"} {
		ents, err := dynamodb.ListEntitlements(ctx, ddb, entTable, dynamodb.DefaultEntitlementKeys, user, "AI_TUTOR_ACCESS")
		if err != nil {
			return err
		}
		for _, e := range ents {
			ps := ""
			if e.PeriodStart != nil {
				ps = " periodStart=" + usage.FormatInstant(*e.PeriodStart)
			}
			say("    %-6s %s used=%s limit=%s%s", user, e.EntitlementKey, e.Used, limitText(e.Limit), ps)
		}
	}
	dlq, err := sq.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
		QueueUrl: aws.String(queues.DeadLetterURL), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}, WaitTimeSeconds: 1,
	})
	if err != nil {
		return err
	}
	say("==> dead-letter queue: %d message(s), each with its reason", len(dlq.Messages))
	for _, m := range dlq.Messages {
		say("    %s  %s", attr(m, sqs.AttrReason), aws.ToString(m.Body))
	}

	want := 0
	for _, s := range steps {
		want += s.notifies
	}
	if err := showNotifications(ctx, out, sq, inbox, want); err != nil {
		return err
	}

	say("==> stopping the worker (SIGTERM: it finishes in-flight messages and exits 0)")
	if err := worker.Stop(); err != nil {
		return err
	}
	say("==> done; emulators stopped")
	return nil
}

func dec(s string) *usage.Decimal {
	d := usage.MustDecimal(s)
	return &d
}

func limitText(d *usage.Decimal) string {
	if d == nil {
		return "unlimited"
	}
	return d.String()
}

func periodNote(e dynamodb.EntitlementItem) string {
	if e.PeriodStart == nil {
		return ""
	}
	return " periodStart=" + usage.FormatInstant(*e.PeriodStart)
}

func attr(m sqstypes.Message, name string) string {
	if v, ok := m.MessageAttributes[name]; ok {
		return aws.ToString(v.StringValue)
	}
	return ""
}

// logRecord is the part of the worker's JSON log lines the demo reads.
type logRecord struct {
	Msg       string `json:"msg"`
	MessageID string `json:"messageId"`
	Outcome   string `json:"outcome"`
	Reason    string `json:"reason"`
	Detail    string `json:"detail"`
}

type logWatcher struct {
	mu      sync.Mutex
	seen    map[string]logRecord
	changed chan struct{}
}

func newLogWatcher(r io.Reader) *logWatcher {
	w := &logWatcher{seen: map[string]logRecord{}, changed: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var rec logRecord
			if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.MessageID == "" || rec.Outcome == "" {
				continue
			}
			w.mu.Lock()
			w.seen[rec.MessageID] = rec
			w.mu.Unlock()
			select {
			case w.changed <- struct{}{}:
			default:
			}
		}
	}()
	return w
}

func (w *logWatcher) waitFor(id string, timeout time.Duration) (logRecord, error) {
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		rec, ok := w.seen[id]
		w.mu.Unlock()
		if ok {
			return rec, nil
		}
		select {
		case <-w.changed:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			return logRecord{}, errors.New("no outcome logged for message " + id + " within " + timeout.String())
		}
	}
}
