// Package faultinjection puts a misbehaving network between the service
// and DynamoDB, so that tests can prove the exactly-once guarantee under
// the failures production sees: throttling, server errors, dropped
// connections and slow answers.
//
// The proxy speaks plain HTTP on loopback and forwards to an upstream
// endpoint (DynamoDB Local). The code under test reaches it only through
// the standard AWS_ENDPOINT_URL_DYNAMODB variable, so it loads its
// configuration, signs its requests and retries exactly as in production.
//
// The dangerous fault is DropAfter: the request reaches DynamoDB, the
// transaction commits, and the answer is lost. The caller cannot tell it
// from DropBefore (nothing happened), retries, and must not count the
// event twice.
package faultinjection

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kind is a fault the proxy injects into one request.
type Kind string

// The faults, each shaped like what the real service or network does, so
// that the AWS SDK classifies it as it would in production: all of them
// are retried by the SDK's standard retryer (the throttles as throttles,
// with their cheaper retry cost and longer backoff).
const (
	// Throttle answers 400 ProvisionedThroughputExceededException, what
	// DynamoDB returns when a table or partition is over its capacity.
	Throttle Kind = "throttle"
	// Throttling answers 400 ThrottlingException, what DynamoDB returns
	// when control-plane or on-demand request rates are exceeded.
	Throttling Kind = "throttling"
	// ServerError answers 500 InternalServerError.
	ServerError Kind = "server-error"
	// DropBefore closes the connection without answering and without
	// forwarding: the request never reached DynamoDB.
	DropBefore Kind = "drop-before"
	// DropAfter forwards the request, waits for DynamoDB's answer, then
	// closes the connection without passing it on: the write happened but
	// the caller never learns it.
	DropAfter Kind = "drop-after"
	// Latency delays the request by up to Faults.MaxLatency, then forwards
	// it normally.
	Latency Kind = "latency"
)

// Kinds lists every fault kind in a fixed order: the order in which a
// random draw is matched against the probabilities, and the order of
// reports.
var Kinds = []Kind{Throttle, Throttling, ServerError, DropBefore, DropAfter, Latency}

// Faults are the per-request probabilities of each kind. At most one fault
// is injected into a request, so their sum must not exceed 1.
type Faults struct {
	Throttle, Throttling, ServerError float64
	DropBefore, DropAfter             float64
	Latency                           float64
	// MaxLatency bounds the delay of a Latency fault, drawn uniformly from
	// (0, MaxLatency]. Default 200ms.
	MaxLatency time.Duration
	// TransactionConflict is the probability that a TransactWriteItems is
	// answered TransactionCanceledException with the reason
	// TransactionConflict on its first item, as DynamoDB answers when
	// another transaction is in flight on that item. DynamoDB Local never
	// does (it runs them one after another), and the SDK does not retry
	// it: the caller must. Drawn separately from the kinds above.
	TransactionConflict float64
}

const defaultMaxLatency = 200 * time.Millisecond

func (f Faults) probability(k Kind) float64 {
	switch k {
	case Throttle:
		return f.Throttle
	case Throttling:
		return f.Throttling
	case ServerError:
		return f.ServerError
	case DropBefore:
		return f.DropBefore
	case DropAfter:
		return f.DropAfter
	case Latency:
		return f.Latency
	}
	return 0
}

// Failing is the probability that a request fails (every kind but Latency).
func (f Faults) Failing() float64 {
	return f.Throttle + f.Throttling + f.ServerError + f.DropBefore + f.DropAfter
}

func (f Faults) validate() error {
	sum := 0.0
	for _, k := range Kinds {
		p := f.probability(k)
		if p < 0 || p > 1 {
			return fmt.Errorf("faultinjection: probability of %s is %v, want 0..1", k, p)
		}
		sum += p
	}
	if sum > 1+1e-9 {
		return fmt.Errorf("faultinjection: probabilities add up to %v, want at most 1", sum)
	}
	if f.TransactionConflict < 0 || f.TransactionConflict > 1 {
		return fmt.Errorf("faultinjection: probability of a transaction conflict is %v, want 0..1", f.TransactionConflict)
	}
	if f.MaxLatency < 0 {
		return errors.New("faultinjection: MaxLatency is negative")
	}
	return nil
}

// Stats is what the proxy saw and did.
type Stats struct {
	// Requests is the number of requests received.
	Requests int
	// Injected counts the faults injected, by kind.
	Injected map[Kind]int
	// LostSuccesses counts DropAfter faults whose forwarded request
	// succeeded (HTTP 2xx), by operation (the X-Amz-Target action, e.g.
	// TransactWriteItems): writes that committed while their caller saw a
	// network error.
	LostSuccesses map[string]int
	// Conflicts counts TransactWriteItems answered with a TransactionConflict.
	Conflicts int
}

// Failed is the number of requests that failed because of a fault.
func (s Stats) Failed() int {
	n := 0
	for k, c := range s.Injected {
		if k != Latency {
			n += c
		}
	}
	return n
}

// String is a one-line report, e.g. "1200 requests, 150 failed (12.5%):
// throttle=40 ...; lost successes: TransactWriteItems=12".
func (s Stats) String() string {
	var b strings.Builder
	pct := 0.0
	if s.Requests > 0 {
		pct = 100 * float64(s.Failed()) / float64(s.Requests)
	}
	fmt.Fprintf(&b, "%d requests, %d failed (%.1f%%):", s.Requests, s.Failed(), pct)
	for _, k := range Kinds {
		fmt.Fprintf(&b, " %s=%d", k, s.Injected[k])
	}
	b.WriteString("; lost successes:")
	ops := make([]string, 0, len(s.LostSuccesses))
	for op := range s.LostSuccesses {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	if len(ops) == 0 {
		b.WriteString(" none")
	}
	for _, op := range ops {
		fmt.Fprintf(&b, " %s=%d", op, s.LostSuccesses[op])
	}
	return b.String()
}

// Proxy is a running fault-injecting HTTP proxy.
type Proxy struct {
	// URL is the proxy's endpoint, http://127.0.0.1:port: the value for
	// AWS_ENDPOINT_URL_DYNAMODB.
	URL string

	upstream *url.URL
	server   *http.Server
	client   *http.Client
	done     chan struct{}

	mu     sync.Mutex
	faults Faults
	rng    *rand.Rand
	stats  Stats
}

// Start listens on 127.0.0.1:0 and forwards to upstream (e.g. DynamoDB
// Local's endpoint), injecting faults with the given probabilities. The
// draws come from a PCG generator seeded with seed, so a run's sequence of
// decisions is reproducible (which request gets which decision still
// depends on timing).
func Start(upstream string, seed uint64, faults Faults) (*Proxy, error) {
	if err := faults.validate(); err != nil {
		return nil, err
	}
	if faults.MaxLatency == 0 {
		faults.MaxLatency = defaultMaxLatency
	}
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("faultinjection: upstream %q is not an absolute URL", upstream)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultinjection: %w", err)
	}
	p := &Proxy{
		URL:      "http://" + ln.Addr().String(),
		upstream: u,
		faults:   faults,
		// Compression off: bodies pass through byte for byte, so the
		// caller's checksum validation (x-amz-crc32) still holds.
		client: &http.Client{Transport: &http.Transport{
			DisableCompression:  true,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
		}},
		done:  make(chan struct{}),
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		stats: Stats{Injected: map[Kind]int{}, LostSuccesses: map[string]int{}},
	}
	p.server = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(p.done)
		p.server.Serve(ln)
	}()
	return p, nil
}

// Close stops the proxy and drops its open connections.
func (p *Proxy) Close() error {
	err := p.server.Close()
	<-p.done
	p.client.CloseIdleConnections()
	return err
}

// SetFaults replaces the probabilities for the requests that follow, e.g.
// to open an outage window (every call failing) and close it again. The
// counters and the random sequence carry on.
func (p *Proxy) SetFaults(faults Faults) error {
	if err := faults.validate(); err != nil {
		return err
	}
	if faults.MaxLatency == 0 {
		faults.MaxLatency = defaultMaxLatency
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = faults
	return nil
}

// Stats returns a snapshot of the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Stats{Requests: p.stats.Requests, Injected: map[Kind]int{}, LostSuccesses: map[string]int{}, Conflicts: p.stats.Conflicts}
	for k, v := range p.stats.Injected {
		s.Injected[k] = v
	}
	for k, v := range p.stats.LostSuccesses {
		s.LostSuccesses[k] = v
	}
	return s
}

// decide draws the fault for one request ("" for none) and, for Latency,
// its delay, and counts both the request and the fault.
func (p *Proxy) decide() (Kind, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Requests++
	r := p.rng.Float64()
	for _, k := range Kinds {
		if r -= p.faults.probability(k); r < 0 {
			p.stats.Injected[k]++
			var delay time.Duration
			if k == Latency {
				delay = time.Duration(p.rng.Int64N(int64(p.faults.MaxLatency))) + 1
			}
			return k, delay
		}
	}
	return "", 0
}

// conflict draws whether a transaction meets a conflicting one, and
// counts it as a request if so.
func (p *Proxy) conflict() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.faults.TransactionConflict == 0 || p.rng.Float64() >= p.faults.TransactionConflict {
		return false
	}
	p.stats.Requests++
	p.stats.Conflicts++
	return true
}

func (p *Proxy) lostSuccess(op string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.LostSuccesses[op]++
}

// ServeHTTP handles one request: inject, forward, or both.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Read the whole request first: the caller has sent it in every case,
	// and closing a connection with unread data would turn a clean close
	// into a reset, a different failure than the one asked for.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the caller went away
	}
	if operation(r) == "TransactWriteItems" && p.conflict() {
		writeConflict(w, body)
		return
	}
	kind, delay := p.decide()
	switch kind {
	case Throttle:
		writeError(w, http.StatusBadRequest, "ProvisionedThroughputExceededException",
			"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API. (injected)")
		return
	case Throttling:
		writeError(w, http.StatusBadRequest, "ThrottlingException", "Rate of requests exceeds the allowed throughput. (injected)")
		return
	case ServerError:
		writeError(w, http.StatusInternalServerError, "InternalServerError", "Internal server error (injected)")
		return
	case DropBefore:
		hangUp(w)
		return
	case Latency:
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}

	resp, err := p.forward(r, body)
	if err != nil {
		http.Error(w, "faultinjection: upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if kind == DropAfter {
		// Wait for the whole answer, so the write has certainly happened,
		// then lose it.
		_, err := io.Copy(io.Discard, resp.Body)
		if err == nil && resp.StatusCode/100 == 2 {
			p.lostSuccess(operation(r))
		}
		hangUp(w)
		return
	}
	for k, vs := range resp.Header {
		if !hopByHop[http.CanonicalHeaderKey(k)] {
			w.Header()[k] = vs
		}
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// forward sends the request upstream unchanged, Host header included (it
// is part of the SigV4 signature).
func (p *Proxy) forward(r *http.Request, body []byte) (*http.Response, error) {
	target := *p.upstream
	target.Path = r.URL.Path
	target.RawPath = r.URL.RawPath
	target.RawQuery = r.URL.RawQuery
	// Not r.Context(): a lost answer (DropAfter) must still be waited for
	// even if the caller gives up first.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Minute)
	out, err := http.NewRequestWithContext(ctx, r.Method, target.String(), bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, err
	}
	for k, vs := range r.Header {
		if !hopByHop[http.CanonicalHeaderKey(k)] {
			out.Header[k] = vs
		}
	}
	out.Host = r.Host
	out.ContentLength = int64(len(body))
	resp, err := p.client.Do(out)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// hopByHop are the headers that describe one connection, not the message
// (RFC 9110, section 7.6.1).
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// writeError answers like DynamoDB: an awsJson1_0 error document, the
// error type in both the body and X-Amzn-ErrorType, and the CRC32 of the
// body that the DynamoDB client checks.
func writeError(w http.ResponseWriter, status int, code, message string) {
	body := fmt.Appendf(nil, `{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":%q}`, code, message)
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("X-Amzn-ErrorType", code)
	h.Set("X-Amzn-RequestId", "faultinjection-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// writeConflict answers a TransactWriteItems the way DynamoDB cancels a
// transaction that overlaps another one in flight: one cancellation reason
// per item, TransactionConflict on the first, None on the others.
func writeConflict(w http.ResponseWriter, request []byte) {
	var in struct{ TransactItems []json.RawMessage }
	json.Unmarshal(request, &in) // a malformed request still gets one reason
	reasons := []string{`{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item (injected)"}`}
	codes := []string{"TransactionConflict"}
	for range max(len(in.TransactItems)-1, 0) {
		reasons = append(reasons, `{"Code":"None"}`)
		codes = append(codes, "None")
	}
	body := fmt.Appendf(nil, `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [%s]","CancellationReasons":[%s]}`,
		strings.Join(codes, ", "), strings.Join(reasons, ","))
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("X-Amzn-ErrorType", "TransactionCanceledException")
	h.Set("X-Amzn-RequestId", "faultinjection-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusBadRequest)
	w.Write(body)
}

// hangUp closes the connection without a response: to the caller, a
// connection closed by the peer (an EOF), as when a load balancer or the
// network drops it.
func hangUp(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // HTTP/2: resets the stream instead
	}
	if conn, _, err := hj.Hijack(); err == nil {
		conn.Close()
	}
}

// operation is the DynamoDB action of a request, from its X-Amz-Target
// header ("DynamoDB_20120810.TransactWriteItems").
func operation(r *http.Request) string {
	target := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(target, '.'); i >= 0 {
		return target[i+1:]
	}
	if target == "" {
		return "unknown"
	}
	return target
}
