package lambda_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/sqs"
	"github.com/usage-event-service/usage-event-service/usage"
)

func TestMain(m *testing.M) { emulator.Main(m) }

// peakRSS reads the high-water mark of resident memory of the running
// bootstrap from /proc (the emulator's REPORT line only repeats the
// configured memory size).
func peakRSS(bootstrap string) string {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if exe, err := os.Readlink(filepath.Join(d, "exe")); err != nil || exe != bootstrap {
			continue
		}
		status, _ := os.ReadFile(filepath.Join(d, "status"))
		if m := regexp.MustCompile(`VmHWM:\s+(\d+ kB)`).FindSubmatch(status); m != nil {
			return string(m[1])
		}
	}
	return ""
}

// sqsEvent is a batch in the shape Lambda's SQS poller sends.
func sqsEvent(bodies []string, receiveCount int) events.SQSEvent {
	var ev events.SQSEvent
	for i, b := range bodies {
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId:     fmt.Sprintf("msg-%03d", i),
			ReceiptHandle: "handle-" + strconv.Itoa(i),
			Body:          b,
			Attributes: map[string]string{
				"ApproximateReceiveCount":          strconv.Itoa(receiveCount),
				"SentTimestamp":                    strconv.FormatInt(time.Now().UnixMilli(), 10),
				"SenderId":                         "AIDAEXAMPLE",
				"ApproximateFirstReceiveTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10),
			},
			MessageAttributes: map[string]events.SQSMessageAttribute{},
			Md5OfBody:         "00000000000000000000000000000000",
			EventSource:       "aws:sqs",
			EventSourceARN:    "arn:aws:sqs:us-east-1:000000000000:usage-event-queue",
			AWSRegion:         "us-east-1",
		})
	}
	return ev
}

func invoke(t *testing.T, endpoint string, ev events.SQSEvent) events.SQSEventResponse {
	t.Helper()
	payload, _ := json.Marshal(ev)
	res, err := http.Post(endpoint+"/2015-03-31/functions/function/invocations", "application/json", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body bytes.Buffer
	body.ReadFrom(res.Body)
	var resp events.SQSEventResponse
	if res.StatusCode != 200 || json.Unmarshal(body.Bytes(), &resp) != nil {
		t.Fatalf("invocation answered %d: %s", res.StatusCode, body.String())
	}
	return resp
}

func failures(r events.SQSEventResponse) map[string]bool {
	m := map[string]bool{}
	for _, f := range r.BatchItemFailures {
		m[f.ItemIdentifier] = true
	}
	return m
}

// TestRealBootstrapUnderTheLambdaEmulator runs the shipped binary under
// the official Runtime Interface Emulator against DynamoDB Local, with
// batches of 20 as Lambda sends them.
func TestRealBootstrapUnderTheLambdaEmulator(t *testing.T) {
	cfg := emulator.Stack(t)
	ctx := context.Background()
	ddb := awsdynamodb.NewFromConfig(cfg)
	entTable, ledgerTable := emulator.UniqueName(t, "ent"), emulator.UniqueName(t, "ledger")
	if _, err := dynamodb.CreateEntitlementsTable(ctx, ddb, entTable, dynamodb.DefaultEntitlementKeys); err != nil {
		t.Fatal(err)
	}
	if _, err := dynamodb.CreateLedgerTable(ctx, ddb, ledgerTable); err != nil {
		t.Fatal(err)
	}
	limit := usage.MustDecimal("10")
	for _, user := range []string{"hot", "cold"} {
		if err := dynamodb.PutEntitlement(ctx, ddb, entTable, dynamodb.DefaultEntitlementKeys, dynamodb.EntitlementItem{UserID: user, EntitlementKey: "k", Limit: &limit}); err != nil {
			t.Fatal(err)
		}
	}
	sq := awssqs.NewFromConfig(cfg)
	queues, err := sqs.CreateQueues(ctx, sq, emulator.UniqueName(t, "q"), 3, 30)
	if err != nil {
		t.Fatal(err)
	}

	bootstrap := emulator.LambdaBootstrap(t) // built as `make package` does, for this machine
	if fi, err := os.Stat(bootstrap); err == nil {
		t.Logf("bootstrap (host architecture, stripped): %d bytes", fi.Size())
	}
	base := []string{"ENTITLEMENTS_TABLE=" + entTable, "USAGE_LEDGER_TABLE=" + ledgerTable, "LOG_LEVEL=INFO", "AWS_LAMBDA_FUNCTION_NAME=usage-event-service"}

	// 12 events for "hot" (limit 10: the last two do not fit), 4 for
	// "cold", 2 invalid, 1 unknown entitlement, 1 duplicate of the first.
	var bodies []string
	for i := range 12 {
		bodies = append(bodies, fmt.Sprintf(`{"userId":"hot","entitlementKey":"k","idempotencyKey":"h-%d"}`, i))
	}
	for i := range 4 {
		bodies = append(bodies, fmt.Sprintf(`{"userId":"cold","entitlementKey":"k","amount":2,"idempotencyKey":"c-%d"}`, i))
	}
	bodies = append(bodies, `{"userId":"cold"}`, `{"userId":"cold","entitlementKey":"k","amount":-1}`,
		`{"userId":"nobody","entitlementKey":"k"}`, `{"userId":"hot","entitlementKey":"k","idempotencyKey":"h-0"}`)
	if len(bodies) != 20 {
		t.Fatalf("batch of %d", len(bodies))
	}
	rejected := []string{"msg-010", "msg-011", "msg-016", "msg-017", "msg-018"}

	t.Run("rejections are batch item failures without a dead-letter queue", func(t *testing.T) {
		fn, err := emulator.StartLambda(ctx, bootstrap, base)
		if err != nil {
			t.Fatal(err)
		}
		defer fn.Stop()
		start := time.Now()
		resp := invoke(t, fn.Endpoint, sqsEvent(bodies, 1))
		t.Logf("first invocation, process start included, answered after %v", time.Since(start))
		got := failures(resp)
		if len(got) != len(rejected) {
			t.Errorf("batchItemFailures %v, want exactly %v", resp.BatchItemFailures, rejected)
		}
		for _, id := range rejected {
			if !got[id] {
				t.Errorf("%s not reported as failed", id)
			}
		}
		// Redelivery of the whole batch: everything applied is a duplicate now.
		resp = invoke(t, fn.Endpoint, sqsEvent(bodies, 2))
		if len(failures(resp)) != len(rejected) {
			t.Errorf("redelivery: batchItemFailures %v", resp.BatchItemFailures)
		}
		for user, want := range map[string]string{"hot": "10", "cold": "8"} {
			ents, err := dynamodb.ListEntitlements(ctx, ddb, entTable, dynamodb.DefaultEntitlementKeys, user, "k")
			if err != nil || len(ents) != 1 {
				t.Fatal(ents, err)
			}
			if ents[0].Used.Cmp(usage.MustDecimal(want)) != 0 {
				t.Errorf("%s used %s, want %s", user, ents[0].Used, want)
			}
		}
		// Measurements, reported not asserted: the machines are shared.
		logs, _ := os.ReadFile(fn.LogPath)
		if m := regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`).FindSubmatch(logs); m != nil {
			t.Logf("cold start: init duration %s ms (the emulator's INIT REPORT)", m[1])
		}
		if rss := peakRSS(bootstrap); rss != "" {
			t.Logf("bootstrap peak resident memory after two batches of 20: %s", rss)
		}
		for _, want := range []string{`"msg":"event rejected"`, `"reason":"LIMIT_EXCEEDED"`, `"msg":"batch processed"`, `"_aws":`} {
			if !bytes.Contains(logs, []byte(want)) {
				t.Errorf("function output lacks %s", want)
			}
		}
	})

	t.Run("with a dead-letter queue, rejections are handled and dead-lettered", func(t *testing.T) {
		fn, err := emulator.StartLambda(ctx, bootstrap, append(base, "DEAD_LETTER_QUEUE_URL="+queues.DeadLetterURL))
		if err != nil {
			t.Fatal(err)
		}
		defer fn.Stop()
		resp := invoke(t, fn.Endpoint, sqsEvent(bodies, 1))
		if len(resp.BatchItemFailures) != 0 {
			t.Errorf("batchItemFailures %v, want none", resp.BatchItemFailures)
		}
		n := 0
		for n < len(rejected) {
			out, err := sq.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: &queues.DeadLetterURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
			if err != nil || len(out.Messages) == 0 {
				break
			}
			n += len(out.Messages)
		}
		if n != len(rejected) {
			t.Errorf("%d messages in the dead-letter queue, want %d", n, len(rejected))
		}
	})

	t.Run("missing configuration fails the init, not silently", func(t *testing.T) {
		fn, err := emulator.StartLambda(ctx, bootstrap, []string{"ENTITLEMENTS_TABLE=", "USAGE_LEDGER_TABLE="})
		if err != nil {
			t.Fatal(err)
		}
		defer fn.Stop()
		payload, _ := json.Marshal(sqsEvent(bodies[:1], 1))
		res, err := http.Post(fn.Endpoint+"/2015-03-31/functions/function/invocations", "application/json", bytes.NewReader(payload))
		if err == nil {
			var b bytes.Buffer
			b.ReadFrom(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 && bytes.Contains(b.Bytes(), []byte("batchItemFailures")) {
				t.Fatalf("a misconfigured function answered %s", b.String())
			}
		}
		logs, _ := os.ReadFile(fn.LogPath)
		if !bytes.Contains(logs, []byte("ENTITLEMENTS_TABLE: is required")) {
			t.Errorf("the init error does not name the setting:\n%s", logs)
		}
	})
}
