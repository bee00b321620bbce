package faultinjection_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/internal/dev/faultinjection"
)

// TestMain stops the emulators the end-to-end proofs start; the unit tests
// of the proxy need none.
func TestMain(m *testing.M) { emulator.Main(m) }

// upstream is a stand-in for DynamoDB that answers every request with an
// empty JSON document and remembers what it received.
type upstream struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.requests = append(u.requests, r)
		u.bodies = append(u.bodies, string(b))
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("X-Upstream", "yes")
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.requests)
}

func start(t *testing.T, upstreamURL string, f faultinjection.Faults) *faultinjection.Proxy {
	t.Helper()
	p, err := faultinjection.Start(upstreamURL, 1, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// productionRetryer is the retry policy of cmd/usage-event-service.
func productionRetryer() *retry.Standard {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 5
		o.MaxBackoff = time.Second
	})
}

// TestEveryFaultIsOneTheSDKRetries specifies what each fault looks like to
// the service's DynamoDB client: an error the production retryer retries
// (the throttles classified as throttling, with their own backoff), with
// the modeled error type real DynamoDB would produce, and reaching
// DynamoDB only in the DropAfter case, the write whose answer is lost.
func TestEveryFaultIsOneTheSDKRetries(t *testing.T) {
	tests := []struct {
		kind          faultinjection.Kind
		faults        faultinjection.Faults
		wantErrType   any // pointer to the modeled error type; nil: a transport error
		wantThrottle  bool
		wantForwarded bool
	}{
		{faultinjection.Throttle, faultinjection.Faults{Throttle: 1}, new(*types.ProvisionedThroughputExceededException), true, false},
		{faultinjection.Throttling, faultinjection.Faults{Throttling: 1}, new(*types.ThrottlingException), true, false},
		{faultinjection.ServerError, faultinjection.Faults{ServerError: 1}, new(*types.InternalServerError), false, false},
		{faultinjection.DropBefore, faultinjection.Faults{DropBefore: 1}, nil, false, false},
		{faultinjection.DropAfter, faultinjection.Faults{DropAfter: 1}, nil, false, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			up := newUpstream(t)
			p := start(t, up.URL, tt.faults)
			// One attempt, so the test sees the error the retryer judges.
			client := awsdynamodb.New(awsdynamodb.Options{
				Region: "us-east-1", BaseEndpoint: aws.String(p.URL),
				Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
				Retryer:     aws.NopRetryer{},
			})
			_, err := client.GetItem(context.Background(), &awsdynamodb.GetItemInput{
				TableName: aws.String("t"),
				Key:       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}},
			})
			if err == nil {
				t.Fatal("GetItem succeeded through the fault")
			}
			if !productionRetryer().IsErrorRetryable(err) {
				t.Errorf("the production retryer would not retry %v", err)
			}
			if got := retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool(); got != tt.wantThrottle {
				t.Errorf("classified as throttling: %v, want %v (%v)", got, tt.wantThrottle, err)
			}
			if tt.wantErrType != nil && !errors.As(err, tt.wantErrType) {
				t.Errorf("error %T (%v), want %T", err, err, tt.wantErrType)
			}
			if got := up.count() == 1; got != tt.wantForwarded {
				t.Errorf("forwarded: %v, want %v", got, tt.wantForwarded)
			}
			stats := p.Stats()
			if stats.Requests != 1 || stats.Injected[tt.kind] != 1 || stats.Failed() != 1 {
				t.Errorf("stats %v, want one %s", stats, tt.kind)
			}
			if wantLost := map[bool]int{true: 1}[tt.wantForwarded]; stats.LostSuccesses["GetItem"] != wantLost {
				t.Errorf("lost successes %v, want GetItem=%d", stats.LostSuccesses, wantLost)
			}
		})
	}
}

// TestWithoutFaultsTheProxyIsTransparent: method, path, query, headers
// (Host included, which SigV4 signs) and body reach the upstream unchanged,
// and its answer comes back unchanged; added latency changes only timing.
func TestWithoutFaultsTheProxyIsTransparent(t *testing.T) {
	for _, f := range []faultinjection.Faults{{}, {Latency: 1, MaxLatency: time.Millisecond}} {
		up := newUpstream(t)
		p := start(t, up.URL, f)
		req, _ := http.NewRequest("POST", p.URL+"/some/path?x=1", strings.NewReader(`{"TableName":"t"}`))
		req.Header.Set("X-Amz-Target", "DynamoDB_20120810.GetItem")
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/...")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != `{}` || resp.Header.Get("X-Upstream") != "yes" {
			t.Errorf("answer %d %q %v", resp.StatusCode, body, resp.Header)
		}
		if up.count() != 1 {
			t.Fatalf("upstream saw %d requests", up.count())
		}
		got := up.requests[0]
		if got.Method != "POST" || got.URL.RequestURI() != "/some/path?x=1" || got.Host != strings.TrimPrefix(p.URL, "http://") ||
			got.Header.Get("X-Amz-Target") != "DynamoDB_20120810.GetItem" || got.Header.Get("Authorization") == "" || up.bodies[0] != `{"TableName":"t"}` {
			t.Errorf("upstream received %s %s host %s headers %v body %q", got.Method, got.URL, got.Host, got.Header, up.bodies[0])
		}
		if s := p.Stats(); s.Failed() != 0 || s.Injected[faultinjection.Latency] != int(f.Latency) {
			t.Errorf("stats %v", s)
		}
	}
}

// TestFaultsFollowTheirProbabilitiesAndTheSeed: over many requests each
// kind is injected at about its probability, and the same seed makes the
// same decisions.
func TestFaultsFollowTheirProbabilitiesAndTheSeed(t *testing.T) {
	faults := faultinjection.Faults{Throttle: 0.05, Throttling: 0.03, ServerError: 0.04, DropBefore: 0.02, DropAfter: 0.03, Latency: 0.1, MaxLatency: time.Microsecond}
	const n = 1000
	run := func() faultinjection.Stats {
		up := newUpstream(t)
		p, err := faultinjection.Start(up.URL, 42, faults)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		client := &http.Client{Transport: &http.Transport{}}
		for range n {
			resp, err := client.Post(p.URL, "application/x-amz-json-1.0", strings.NewReader(`{}`))
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		return p.Stats()
	}
	first, second := run(), run()
	if first.String() != second.String() {
		t.Errorf("same seed, different faults:\n%v\n%v", first, second)
	}
	for _, k := range faultinjection.Kinds {
		want := n * map[faultinjection.Kind]float64{faultinjection.Throttle: faults.Throttle, faultinjection.Throttling: faults.Throttling,
			faultinjection.ServerError: faults.ServerError, faultinjection.DropBefore: faults.DropBefore,
			faultinjection.DropAfter: faults.DropAfter, faultinjection.Latency: faults.Latency}[k]
		if got := float64(first.Injected[k]); got < want*0.6 || got > want*1.4 {
			t.Errorf("%s injected %v times in %d requests, want about %v", k, got, n, want)
		}
	}
	if first.Requests != n {
		t.Errorf("counted %d requests, want %d", first.Requests, n)
	}
	t.Log(first)
}

// TestSetFaultsTakesEffectForTheNextRequest: an outage can be opened and
// closed while the proxy runs.
func TestSetFaultsTakesEffectForTheNextRequest(t *testing.T) {
	up := newUpstream(t)
	p := start(t, up.URL, faultinjection.Faults{})
	status := func() int {
		resp, err := http.Post(p.URL, "application/x-amz-json-1.0", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var got []int
	for _, f := range []faultinjection.Faults{{ServerError: 1}, {}} {
		got = append(got, status())
		if err := p.SetFaults(f); err != nil {
			t.Fatal(err)
		}
	}
	got = append(got, status())
	if want := []int{200, 500, 200}; !slices.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	if err := p.SetFaults(faultinjection.Faults{DropAfter: 2}); err == nil {
		t.Error("SetFaults accepted a probability of 2")
	}
}

func TestStartRejectsImpossibleFaults(t *testing.T) {
	tests := []struct {
		name     string
		upstream string
		faults   faultinjection.Faults
		want     string
	}{
		{"negative probability", "http://127.0.0.1:1", faultinjection.Faults{Throttle: -0.1}, "want 0..1"},
		{"probabilities over 1", "http://127.0.0.1:1", faultinjection.Faults{Throttle: 0.6, DropAfter: 0.6}, "at most 1"},
		{"negative latency", "http://127.0.0.1:1", faultinjection.Faults{MaxLatency: -1}, "MaxLatency"},
		{"relative upstream", "127.0.0.1:1", faultinjection.Faults{}, "not an absolute URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := faultinjection.Start(tt.upstream, 1, tt.faults)
			if err == nil {
				p.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}
