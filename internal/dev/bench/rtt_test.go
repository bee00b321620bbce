package bench

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// A fake DynamoDB that fails the first attempt with a retryable 500 and
// answers the second: the delay is paid by both attempts, as the meter
// counts them, and before each request is sent.
func TestRTTDelaysEveryAttempt(t *testing.T) {
	var served atomic.Int32
	var mu sync.Mutex
	var events []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		events = append(events, "send")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		if served.Add(1) == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"try again"}`))
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()

	rtt := NewRTT(7 * time.Millisecond)
	var asked []time.Duration
	rtt.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		asked = append(asked, d)
		events = append(events, "wait")
		mu.Unlock()
		return nil
	}
	meter := NewMeter()
	client := dynamodb.New(dynamodb.Options{
		Region: "us-east-1", Credentials: aws.AnonymousCredentials{}, BaseEndpoint: aws.String(srv.URL),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		}),
		APIOptions: []func(*middleware.Stack) error{meter.APIOption, rtt.APIOption},
	})
	_, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String("t"),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	if served.Load() != 2 || meter.Snapshot().Attempts["GetItem"] != 2 {
		t.Fatalf("served %d attempts, meter counted %v; want 2", served.Load(), meter.Snapshot().Attempts)
	}
	if len(asked) != 2 || asked[0] != 7*time.Millisecond || asked[1] != 7*time.Millisecond || rtt.Attempts() != 2 {
		t.Fatalf("waits %v (%d attempts), want 7ms for each of 2", asked, rtt.Attempts())
	}
	if want := []string{"wait", "send", "wait", "send"}; !slices.Equal(events, want) {
		t.Fatalf("order %v, want %v", events, want)
	}
}

// With the real timer: at least the delay (no upper bound asserted), and
// a canceled context ends the wait at once with its error.
func TestRTTWaitsAndHonoursCancellation(t *testing.T) {
	rtt := NewRTT(20 * time.Millisecond)
	t0 := time.Now()
	if err := rtt.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(t0); took < 20*time.Millisecond {
		t.Fatalf("waited %v, want at least 20ms", took)
	}
	if rtt.MeanDelay() < 20*time.Millisecond {
		t.Fatalf("MeanDelay %v, want at least 20ms", rtt.MeanDelay())
	}

	long := NewRTT(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if err := long.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait on a canceled context: %v", err)
	}
}

// No delay, no middleware.
func TestRTTZeroInstallsNothing(t *testing.T) {
	stack := middleware.NewStack("test", nil)
	if err := NewRTT(0).APIOption(stack); err != nil {
		t.Fatal(err)
	}
	if ids := stack.Finalize.List(); len(ids) != 0 {
		t.Fatalf("finalize step %v, want empty", ids)
	}
	var nilRTT *RTT
	if err := nilRTT.APIOption(stack); err != nil || nilRTT.MeanDelay() != 0 || nilRTT.Attempts() != 0 {
		t.Fatal("a nil RTT must be a no-op")
	}
}
