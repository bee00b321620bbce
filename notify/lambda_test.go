package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/usage"
)

// sqsEvent is a batch in the shape Lambda's SQS poller sends.
func sqsEvent(bodies []string) []byte {
	var ev events.SQSEvent
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	for i, b := range bodies {
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: fmt.Sprintf("msg-%03d", i), ReceiptHandle: "handle-" + strconv.Itoa(i), Body: b,
			Attributes:  map[string]string{"ApproximateReceiveCount": "1", "SentTimestamp": now, "ApproximateFirstReceiveTimestamp": now},
			EventSource: "aws:sqs", EventSourceARN: "arn:aws:sqs:us-east-1:000000000000:usage-event-queue", AWSRegion: "us-east-1",
		})
	}
	b, _ := json.Marshal(ev)
	return b
}

// scheduledEvent is what an EventBridge schedule sends.
const scheduledEvent = `{"version":"0","id":"7bf73129-1428-4cd3-a780-95db273d1602","detail-type":"Scheduled Event","source":"aws.events",` +
	`"account":"123456789012","time":"2026-12-01T00:00:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/usage-every-minute"],"detail":{}}`

// invokeRaw invokes the function under the RIE and returns its answer,
// failing on a function error (which the RIE reports in the payload).
func invokeRaw(t *testing.T, endpoint string, payload []byte) []byte {
	t.Helper()
	res, err := http.Post(endpoint+"/2015-03-31/functions/function/invocations", "application/json", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || bytes.Contains(body, []byte(`"errorType"`)) || res.Header.Get("X-Amz-Function-Error") != "" {
		t.Fatalf("invocation answered %d %s", res.StatusCode, body)
	}
	return body
}

// TestTheFunctionPublishesAfterTheWriteAndSweepsOnSchedule: the Lambda
// deployment's mechanism under the Runtime Interface Emulator. A batch
// handled while SNS is unreachable commits and records its
// notifications; a scheduled event then (still unreachable) answers, with
// no function error, that they are left, and reports their age; a new
// function process with SNS reachable publishes them all on the next
// scheduled event. A synchronous request that crosses a threshold is
// published at once.
func TestTheFunctionPublishesAfterTheWriteAndSweepsOnSchedule(t *testing.T) {
	emulator.SkipShort(t)
	w := newWorld(t, false)
	ctx := context.Background()
	a, b, c := usage.Scope{UserID: "fn-a", EntitlementKey: "K"}, usage.Scope{UserID: "fn-b", EntitlementKey: "K"}, usage.Scope{UserID: "fn-c", EntitlementKey: "K"}
	for _, s := range []usage.Scope{a, b, c} {
		w.limited(t, s, "10")
	}
	var bodies []string
	for i := range 12 {
		bodies = append(bodies, consumeBody(a, 1, fmt.Sprintf("a-%d", i)))
	}
	for i := range 8 {
		bodies = append(bodies, consumeBody(b, 1, fmt.Sprintf("b-%d", i)))
	}
	bootstrap := emulator.LambdaBootstrap(t)
	env := []string{"ENTITLEMENTS_TABLE=" + w.entitlements, "USAGE_LEDGER_TABLE=" + w.ledger, "NOTIFY_TOPIC_ARN=" + w.topicARN,
		"NOTIFY_RECOVERY_INTERVAL=1s", "AWS_LAMBDA_FUNCTION_NAME=usage-event-service", "AWS_ENDPOINT_URL_SNS=" + os.Getenv("AWS_ENDPOINT_URL_SNS")}

	down, err := emulator.StartLambda(ctx, bootstrap, append(env, "AWS_ENDPOINT_URL_SNS="+closedPort(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer down.Stop()
	var resp events.SQSEventResponse
	if err := json.Unmarshal(invokeRaw(t, down.Endpoint, sqsEvent(bodies)), &resp); err != nil || len(resp.BatchItemFailures) != 2 {
		t.Fatalf("batch answer %+v %v: want the 2 over-limit events as failures (no dead-letter queue)", resp, err)
	}
	for _, s := range []usage.Scope{a, b} {
		for _, n := range w.recorded(t, s) {
			if !n.PublishedAt.IsZero() {
				t.Errorf("published with SNS unreachable: %+v", n)
			}
		}
	}
	time.Sleep(1100 * time.Millisecond) // the grace
	answer := invokeRaw(t, down.Endpoint, []byte(scheduledEvent))
	if !bytes.Contains(answer, []byte(`"name":"notification-recovery","error":"4 notifications left unpublished`)) {
		t.Errorf("scheduled event with SNS unreachable answered %s", answer)
	}
	logs, _ := os.ReadFile(down.LogPath) // Stop removes it
	down.Stop()
	if age := emfValue(t, logs, "OldestUnpublishedNotificationAge"); age < 1 {
		t.Errorf("the sweep reported the oldest unpublished notification %v s old, want at least the grace (1 s)", age)
	}
	if failed := emfValue(t, logs, "NotificationsFailed"); failed < 1 {
		t.Errorf("NotificationsFailed %v", failed)
	}
	if got := w.receive(t, 0, time.Second, 2*time.Second); len(got) != 0 {
		t.Fatalf("%d published with SNS unreachable", len(got))
	}

	up, err := emulator.StartLambda(ctx, bootstrap, env)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Stop()
	if answer := invokeRaw(t, up.Endpoint, []byte(scheduledEvent)); string(answer) != `{"periodic":[{"name":"hold-expiry"},{"name":"notification-recovery"}]}` {
		t.Errorf("scheduled event with SNS reachable answered %s", answer)
	}
	recorded := w.waitPublished(t, a, b)
	got := w.receive(t, 4, 2*time.Second, 30*time.Second)
	checkDelivery(t, recorded, map[usage.Scope][]string{a: {reached80, reached100, rejected}, b: {reached80}}, got)

	// The decisions path: published right after its write.
	answer = invokeRaw(t, up.Endpoint, []byte(consumeBody(c, 9, "sync-1")))
	if !bytes.Contains(answer, []byte(`"status":"APPLIED"`)) {
		t.Fatalf("synchronous consume answered %s", answer)
	}
	got = w.receive(t, 1, 2*time.Second, 20*time.Second)
	notes := w.recorded(t, c)
	if len(got) != 1 || len(notes) != 1 || notes[0].PublishedAt.IsZero() || got[0].msg.EventID != "sync-1" || got[0].msg.Used != "9" {
		t.Errorf("synchronous crossing: published %+v, recorded %+v", got, notes)
	}
	logs, _ = os.ReadFile(up.LogPath)
	if published := emfValue(t, logs, "NotificationsPublished"); published < 1 {
		t.Errorf("NotificationsPublished %v", published)
	}
}

// emfValue is the largest value of an EMF metric in a function's output.
func emfValue(t *testing.T, logs []byte, name string) float64 {
	t.Helper()
	best := -1.0
	for line := range strings.Lines(string(logs)) {
		var doc map[string]any
		if !strings.Contains(line, `"_aws"`) || json.Unmarshal([]byte(line), &doc) != nil {
			continue
		}
		if v, ok := doc[name].(float64); ok && v > best {
			best = v
		}
	}
	if best < 0 {
		t.Errorf("no EMF document with %s in the function's output", name)
	}
	return best
}
