package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
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
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/sqs"
	"github.com/usage-event-service/usage-event-service/usage"
)

func TestMain(m *testing.M) { emulator.Main(m) }

func build(t *testing.T) string {
	t.Helper()
	return emulator.Binary(t, "./cmd/usage-event-service")
}

func run(t *testing.T, bin string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), o.String(), e.String()
		}
		return 0, o.String(), e.String()
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%v did not exit", args)
		return 0, "", ""
	}
}

func TestExitCodesAndMessages(t *testing.T) {
	bin := build(t)
	good := []string{"ENTITLEMENTS_TABLE=ent-table", "USAGE_LEDGER_TABLE=ledger-table", "AWS_REGION=us-east-1"}
	tests := []struct {
		name   string
		env    []string
		args   []string
		code   int
		stderr []string
	}{
		{"help", nil, []string{"--help"}, 0, []string{"usage: usage-event-service"}},
		{"no arguments outside Lambda", good, nil, 2, []string{"AWS_LAMBDA_RUNTIME_API is unset", "worker"}},
		{"unknown command", good, []string{"serve"}, 2, []string{`unknown command "serve"`}},
		{"worker without tables", []string{"AWS_REGION=us-east-1"}, []string{"worker", "--queue-url", "http://localhost:1/q"}, 2, []string{"ENTITLEMENTS_TABLE: is required", "USAGE_LEDGER_TABLE: is required"}},
		{"worker without a queue", good, []string{"worker"}, 2, []string{"USAGE_EVENT_QUEUE_URL: is required"}},
		{"worker with a bad queue URL", good, []string{"worker", "--queue-url", "queue"}, 2, []string{"not a queue URL"}},
		{"worker with a bad flag", good, []string{"worker", "--fast"}, 2, []string{"flag provided but not defined"}},
		{"worker without a region", good[:2], []string{"worker", "--queue-url", "http://localhost:1/q"}, 2, []string{"AWS_REGION is not set"}},
		{"bad log level", append([]string{"LOG_LEVEL=chatty"}, good...), []string{"worker", "--queue-url", "http://localhost:1/q"}, 2, []string{"LOG_LEVEL"}},
		{"bad notification settings, reported together", append([]string{"NOTIFY_THRESHOLDS=80,abc", "NOTIFY_RECOVERY_INTERVAL=often", "NOTIFY_TOPIC_ARN=topic"}, good...),
			[]string{"worker", "--queue-url", "http://localhost:1/q"}, 2, []string{`NOTIFY_THRESHOLDS: "abc"`, "NOTIFY_RECOVERY_INTERVAL", "NOTIFY_TOPIC_ARN"}},
		{"bad tracing settings, reported with the others", append([]string{"LOG_LEVEL=chatty", "OTEL_TRACES_EXPORTER=zipkin", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc", "TRACE_IDS=some"}, good...),
			[]string{"worker", "--queue-url", "http://localhost:1/q"}, 2, []string{"LOG_LEVEL", `OTEL_TRACES_EXPORTER: "zipkin"`, "OTEL_EXPORTER_OTLP_PROTOCOL", "TRACE_IDS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, bin, tt.env, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tt.code, stderr)
			}
			for _, w := range tt.stderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestWorkerAgainstTheEmulators(t *testing.T) {
	cfg := emulator.Stack(t)
	bin := build(t)
	ctx := context.Background()
	ddb, sq := awsdynamodb.NewFromConfig(cfg), awssqs.NewFromConfig(cfg)
	ent, ledger := emulator.UniqueName(t, "ent"), emulator.UniqueName(t, "ledger")
	dynamodb.CreateEntitlementsTable(ctx, ddb, ent, dynamodb.DefaultEntitlementKeys)
	dynamodb.CreateLedgerTable(ctx, ddb, ledger)
	queues, err := sqs.CreateQueues(ctx, sq, emulator.UniqueName(t, "q"), 3, 30)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"ENTITLEMENTS_TABLE=" + ent, "USAGE_LEDGER_TABLE=" + ledger}
	for _, k := range []string{"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS"} {
		env = append(env, k+"="+os.Getenv(k))
	}

	t.Run("a queue that does not exist is a runtime failure", func(t *testing.T) {
		u := strings.TrimSuffix(queues.URL, "/"+filepath.Base(queues.URL)) + "/no-such-queue"
		code, _, stderr := run(t, bin, env, "worker", "--queue-url", u)
		if code != 1 {
			t.Errorf("exit code %d, want 1; stderr:\n%s", code, stderr)
		}
	})

	t.Run("SIGTERM stops the worker cleanly; it served its metrics until then", func(t *testing.T) {
		cmd := exec.Command(bin, "worker", "--queue-url", queues.URL)
		cmd.Env = append(env, "METRICS_ADDR=127.0.0.1:0", "PATH="+os.Getenv("PATH"))
		var out emulator.LockedBuffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(out.String(), "worker started") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		checkMetricsEndpoint(t, out.String())
		cmd.Process.Signal(syscall.SIGTERM)
		err := cmd.Wait()
		if err != nil {
			t.Errorf("worker exited with %v; output:\n%s", err, out.String())
		}
		for _, w := range []string{`"msg":"metrics listening"`, `"msg":"worker stopped"`} {
			if !strings.Contains(out.String(), w) {
				t.Errorf("output lacks %s:\n%s", w, out.String())
			}
		}
	})

	t.Run("SIGTERM mid-window decides and deletes what was received before exiting", func(t *testing.T) {
		dynamodb.PutEntitlement(ctx, ddb, ent, dynamodb.DefaultEntitlementKeys, dynamodb.EntitlementItem{UserID: "sigterm", EntitlementKey: "k"})
		// A queue of its own: the emulator may still hand a message to a
		// long poll of the previous worker, cut off when it stopped.
		queues, err := sqs.CreateQueues(ctx, sq, emulator.UniqueName(t, "q"), 3, 30)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			body := fmt.Sprintf(`{"userId":"sigterm","entitlementKey":"k","amount":1,"idempotencyKey":"s-%d"}`, i)
			if _, err := sq.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(queues.URL), MessageBody: aws.String(body)}); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(bin, "worker", "--queue-url", queues.URL)
		// The longest window allowed: the signal surely arrives inside it.
		cmd.Env = append(env, "COALESCE_WINDOW=1s", "LOG_LEVEL=DEBUG", "PATH="+os.Getenv("PATH"))
		var out emulator.LockedBuffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		// In the worker's hands: the messages are in flight and its
		// receives have returned them (a receive cut short by the signal
		// could leave one in flight without it).
		for queueCounts(t, sq, queues.URL)[1] < 5 || received(out.String()) < 5 {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("the worker did not receive the 5 messages; output:\n%s", out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("worker exited with %v; output:\n%s", err, out.String())
		}
		if !strings.Contains(out.String(), `"msg":"worker stopping: deciding the messages received","pending":5`) {
			t.Errorf("no line saying the 5 pending messages were decided at shutdown:\n%s", out.String())
		}
		if c := queueCounts(t, sq, queues.URL); c != [2]int{0, 0} {
			t.Errorf("queue holds %v (visible, in flight) after the stop: not deleted", c)
		}
		ents, err := dynamodb.ListEntitlements(ctx, ddb, ent, dynamodb.DefaultEntitlementKeys, "sigterm", "k")
		if err != nil || len(ents) != 1 || ents[0].Used.Cmp(usage.MustDecimal("5")) != 0 {
			t.Errorf("entitlement after the stop: %+v, %v; want used 5", ents, err)
		}
	})
}

// received adds up the worker's "messages received" debug lines.
// TestWorkerExportsItsSpansOverOTLP: the binary as deployed, with tracing
// turned on by OTEL_EXPORTER_OTLP_ENDPOINT alone, exports the spans of an
// event (its decision, its DynamoDB transaction) in the trace of the
// traceparent the message carries, to an OTLP/HTTP receiver, by the time
// it has stopped; its log lines name that trace.
func TestWorkerExportsItsSpansOverOTLP(t *testing.T) {
	cfg := emulator.Stack(t)
	bin := build(t)
	ctx := context.Background()
	ddb, sq := awsdynamodb.NewFromConfig(cfg), awssqs.NewFromConfig(cfg)
	ent, ledger := emulator.UniqueName(t, "ent"), emulator.UniqueName(t, "ledger")
	dynamodb.CreateEntitlementsTable(ctx, ddb, ent, dynamodb.DefaultEntitlementKeys)
	dynamodb.CreateLedgerTable(ctx, ddb, ledger)
	dynamodb.PutEntitlement(ctx, ddb, ent, dynamodb.DefaultEntitlementKeys, dynamodb.EntitlementItem{UserID: "traced", EntitlementKey: "k"})
	queues, err := sqs.CreateQueues(ctx, sq, emulator.UniqueName(t, "q"), 3, 30)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	spans := map[string][]byte{} // span name -> trace ID
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "not an OTLP/HTTP trace export", http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					spans[s.Name] = s.TraceId
				}
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Write(out)
	}))
	defer receiver.Close()

	const traceID = "5f3a9c014bd862e3fe1be46a99427279"
	if _, err := sq.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(queues.URL),
		MessageBody: aws.String(`{"userId":"traced","entitlementKey":"k","amount":1,"idempotencyKey":"t-1"}`),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"traceparent": {DataType: aws.String("String"), StringValue: aws.String("00-" + traceID + "-53995c3f42cd8ad8-01")},
		}}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "worker", "--queue-url", queues.URL)
	cmd.Env = []string{"ENTITLEMENTS_TABLE=" + ent, "USAGE_LEDGER_TABLE=" + ledger, "PATH=" + os.Getenv("PATH"),
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + receiver.URL}
	for _, k := range []string{"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS"} {
		cmd.Env = append(cmd.Env, k+"="+os.Getenv(k))
	}
	var out emulator.LockedBuffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), `"msg":"batch processed"`) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the worker processed no batch; output:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("worker exited with %v; output:\n%s", err, out.String())
	}
	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"usage-events process", "usage-event decide", "DynamoDB.TransactWriteItems"} {
		if got := fmt.Sprintf("%x", spans[name]); got != traceID {
			t.Errorf("span %q in trace %q, want the message's %s (spans received: %d)", name, got, traceID, len(spans))
		}
	}
	if !strings.Contains(out.String(), `"msg":"batch processed"`) || !strings.Contains(out.String(), `"traceId":"`+traceID+`"`) {
		t.Errorf("the batch's log line does not name its trace:\n%s", out.String())
	}
}

func received(output string) int {
	n := 0
	for line := range strings.Lines(output) {
		var rec struct {
			Msg   string
			Count int
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "messages received" {
			n += rec.Count
		}
	}
	return n
}

// queueCounts is a queue's visible and in-flight message counts.
func queueCounts(t *testing.T, c *awssqs.Client, url string) [2]int {
	t.Helper()
	out, err := c.GetQueueAttributes(context.Background(), &awssqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)])
	b, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return [2]int{a, b}
}

// checkMetricsEndpoint scrapes the worker's /metrics and /healthz at the
// address its "metrics listening" line names.
func checkMetricsEndpoint(t *testing.T, output string) {
	t.Helper()
	var addr string
	for line := range strings.Lines(output) {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "metrics listening" {
			addr = rec.Addr
		}
	}
	if addr == "" {
		t.Errorf("no metrics address logged:\n%s", output)
		return
	}
	for path, want := range map[string][]string{
		"/metrics": {`usage_events_total{outcome="applied"} 0`, "usage_panics_total 0", "# TYPE usage_batch_duration_seconds histogram", "go_goroutines ", "process_start_time_seconds "},
		"/healthz": {"ok"},
	} {
		res, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			continue
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		for _, w := range want {
			if res.StatusCode != http.StatusOK || !strings.Contains(string(body), w) {
				t.Errorf("GET %s: %d, lacks %q:\n%.2000s", path, res.StatusCode, w, body)
			}
		}
	}
}
