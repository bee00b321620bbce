package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	ddbstore "github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/usage"
)

// ColdStart is the real bootstrap started under the Lambda Runtime
// Interface Emulator and invoked once, several times over.
type ColdStart struct {
	// GOARCH of the measured build (this machine's); the function ships
	// for arm64 by default, whose size is BootstrapBytesArm64.
	GOARCH              string `json:"goarch"`
	BootstrapBytes      int64  `json:"bootstrapBytes"`
	BootstrapBytesArm64 int64  `json:"bootstrapBytesArm64,omitempty"`
	BuildFlags          string `json:"buildFlags"`
	// ColdInvokeMs: the first invocation of a fresh RIE, request to
	// response: starting the bootstrap process, its init (configuration,
	// AWS SDK set-up) and the handling of one message (a GetItem and a
	// TransactWriteItems on new connections). WarmInvokeMs: the second
	// invocation of the same process. InitMs is their difference: the
	// cold-start overhead.
	ColdInvokeMs []float64 `json:"coldInvokeMs"`
	WarmInvokeMs []float64 `json:"warmInvokeMs"`
	InitMs       []float64 `json:"initMs"`
	// What the RIE logs. Its "Init Duration" only times handing the init
	// to a goroutine (rapidcore's SandboxContext.Init is asynchronous), so
	// it is near zero whatever the bootstrap does; its "Duration" of the
	// first invocation includes waiting for the init.
	RIEInitDurationMs  []float64 `json:"rieInitDurationMs"`
	RIEFirstDurationMs []float64 `json:"rieFirstDurationMs"`
	MedianInitMs       float64   `json:"medianInitMs"`
	MedianColdInvokeMs float64   `json:"medianColdInvokeMs"`
	MedianWarmInvokeMs float64   `json:"medianWarmInvokeMs"`
}

var (
	initDuration   = regexp.MustCompile(`Init Duration: ([0-9.]+) ms`)
	invokeDuration = regexp.MustCompile(`REPORT RequestId: \S+\s+(?:Init Duration: [0-9.]+ ms\s+)?Duration: ([0-9.]+) ms`)
)

// buildFlags are exactly the flags of `make package` (defined once, in
// internal/dev/emulator).
var buildFlags = emulator.LambdaBuildFlags()

// MeasureColdStart builds cmd/usage-event-service, then runs it under the
// RIE runs times, each a fresh process invoked once with a one-message SQS
// event against DynamoDB Local (whose endpoint is in the environment), and
// reads the "Init Duration" the RIE reports.
func MeasureColdStart(ctx context.Context, runs int, progress io.Writer) (*ColdStart, error) {
	root, err := emulator.ModuleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "usage-bench-coldstart-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cs := &ColdStart{GOARCH: runtime.GOARCH, BuildFlags: "CGO_ENABLED=0 go build " + strings.Join(quoteFlags(buildFlags), " ")}
	build := func(goarch, out string) (int64, error) {
		args := append([]string{"build"}, buildFlags...)
		args = append(args, "-o", out, "./cmd/usage-event-service")
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
		if b, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("go build (GOARCH=%s): %v\n%s", goarch, err, b)
		}
		fi, err := os.Stat(out)
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
	bootstrap := filepath.Join(dir, "bootstrap")
	if cs.BootstrapBytes, err = build(runtime.GOARCH, bootstrap); err != nil {
		return nil, err
	}
	if runtime.GOARCH != "arm64" {
		if cs.BootstrapBytesArm64, err = build("arm64", filepath.Join(dir, "bootstrap-arm64")); err != nil {
			return nil, err
		}
	}

	cfg, err := NewAWSConfig(ctx, nil)
	if err != nil {
		return nil, err
	}
	c := dynamodb.NewFromConfig(cfg)
	tb := tables{entitlements: "coldstart-entitlements", ledger: "coldstart-ledger"}
	defer dropTables(c, tb)
	if err := createTables(ctx, c, tb); err != nil {
		return nil, err
	}
	if err := ddbstore.PutEntitlement(ctx, c, tb.entitlements, ddbstore.DefaultEntitlementKeys, ddbstore.EntitlementItem{
		UserID: "cold-user", EntitlementKey: "API_CALLS", ResetPeriod: usage.ResetNone,
	}); err != nil {
		return nil, err
	}
	env := []string{
		"ENTITLEMENTS_TABLE=" + tb.entitlements, "USAGE_LEDGER_TABLE=" + tb.ledger,
		"AWS_REGION=" + os.Getenv("AWS_REGION"),
		"AWS_ACCESS_KEY_ID=" + os.Getenv("AWS_ACCESS_KEY_ID"), "AWS_SECRET_ACCESS_KEY=" + os.Getenv("AWS_SECRET_ACCESS_KEY"),
		"AWS_ENDPOINT_URL_DYNAMODB=" + os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256", "AWS_LAMBDA_FUNCTION_TIMEOUT=30",
	}
	for i := 0; i < runs; i++ {
		r, err := coldStartOnce(ctx, bootstrap, env, i)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(progress, "    cold start %d: first invocation %.1f ms, second %.1f ms (RIE: Init Duration %.2f ms, Duration %.1f ms)\n",
			i+1, r.coldWallMs, r.warmWallMs, r.rieInitMs, r.coldRIEms)
		cs.ColdInvokeMs = append(cs.ColdInvokeMs, r.coldWallMs)
		cs.WarmInvokeMs = append(cs.WarmInvokeMs, r.warmWallMs)
		cs.InitMs = append(cs.InitMs, r.coldWallMs-r.warmWallMs)
		cs.RIEInitDurationMs = append(cs.RIEInitDurationMs, r.rieInitMs)
		cs.RIEFirstDurationMs = append(cs.RIEFirstDurationMs, r.coldRIEms)
	}
	cs.MedianInitMs = Percentile(cs.InitMs, 50)
	cs.MedianColdInvokeMs = Percentile(cs.ColdInvokeMs, 50)
	cs.MedianWarmInvokeMs = Percentile(cs.WarmInvokeMs, 50)
	return cs, nil
}

// coldStart is one fresh bootstrap under the RIE, invoked twice.
type coldStart struct {
	rieInitMs  float64 // the RIE's "Init Duration"
	coldWallMs float64 // first invocation, request to response, bootstrap start included
	warmWallMs float64 // second invocation, same process
	coldRIEms  float64 // the RIE's "Duration" of the first invocation
}

func coldStartOnce(ctx context.Context, bootstrap string, env []string, n int) (coldStart, error) {
	var cs coldStart
	p, err := emulator.StartLambda(ctx, bootstrap, env)
	if err != nil {
		return cs, err
	}
	defer p.Stop()
	invoke := func(k int) (float64, error) {
		body, _ := usage.Event{UserID: "cold-user", EntitlementKey: "API_CALLS", Amount: usage.DecimalFromInt(1)}.MarshalJSON()
		ev := events.SQSEvent{Records: []events.SQSMessage{{
			MessageId: fmt.Sprintf("cold-start-%d-%d-%d", time.Now().UnixNano(), n, k), Body: string(body), EventSource: "aws:sqs",
			Attributes: map[string]string{"ApproximateReceiveCount": "1", "SentTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10)},
		}}}
		payload, _ := json.Marshal(ev)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Endpoint+"/2015-03-31/functions/function/invocations", bytes.NewReader(payload))
		if err != nil {
			return 0, err
		}
		t0 := time.Now()
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, fmt.Errorf("invoke: %w", err)
		}
		out, _ := io.ReadAll(res.Body)
		res.Body.Close()
		wall := float64(time.Since(t0)) / float64(time.Millisecond)
		var resp events.SQSEventResponse
		if res.StatusCode != http.StatusOK || json.Unmarshal(out, &resp) != nil || len(resp.BatchItemFailures) != 0 {
			return 0, fmt.Errorf("invoke: status %d, response %s; log:\n%s", res.StatusCode, out, readLog(p.LogPath))
		}
		return wall, nil
	}
	if cs.coldWallMs, err = invoke(0); err != nil {
		return cs, err
	}
	if cs.warmWallMs, err = invoke(1); err != nil {
		return cs, err
	}
	// The RIE prints its REPORT line after the response has been sent.
	deadline := time.Now().Add(5 * time.Second)
	for {
		log := readLog(p.LogPath)
		mi, md := initDuration.FindStringSubmatch(log), invokeDuration.FindStringSubmatch(log)
		if mi != nil && md != nil {
			cs.rieInitMs, _ = strconv.ParseFloat(mi[1], 64)
			cs.coldRIEms, _ = strconv.ParseFloat(md[1], 64)
			return cs, nil
		}
		if time.Now().After(deadline) {
			return cs, fmt.Errorf("no REPORT line with Init Duration in the RIE's log:\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readLog(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func quoteFlags(flags []string) []string {
	out := make([]string, len(flags))
	for i, f := range flags {
		if strings.ContainsAny(f, " ") {
			f = "'" + f + "'"
		}
		out[i] = f
	}
	return out
}
