package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"

	ddbstore "github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// System names the implementation a run measures.
type System string

const (
	Ours     System = "ours"
	Baseline System = "baseline"
)

// RunConfig is how a workload is delivered.
type RunConfig struct {
	// Concurrency is the number of concurrent "Lambda invocations": workers
	// that each take a batch, run it to completion, and take the next.
	Concurrency int
	// BatchSize is the SQS batch size (20, the function's default).
	BatchSize int
	// ApplyConcurrency is the Processor's Parallel (production default 8).
	ApplyConcurrency int
	// InvocationTimeout is each batch's deadline (the function's 30 s).
	InvocationTimeout time.Duration
	// VisibilityTimeout is how long a message that was not done stays
	// invisible before its redelivery (SQS: at least the function timeout;
	// scaled down here so that a run does not wait for long).
	VisibilityTimeout time.Duration
	// MaxReceives: a message not done after this many deliveries counts as
	// dead-lettered (the queue's redrive policy).
	MaxReceives int
	// TablePrefix names the run's tables (a run never shares tables).
	TablePrefix string
	// Progress receives progress lines (may be nil).
	Progress io.Writer
	// EmulatorPID, when set, is DynamoDB Local's process, whose CPU time
	// the run reports.
	EmulatorPID int
	// RTT, when positive, is a modelled network round trip added to every
	// HTTP attempt of the measured client (see RTT); set-up, seeding and
	// the correctness check are not delayed.
	RTT time.Duration
	// Mode is how the queue is consumed: Lambda's event source (the
	// default) or worker processes (sqs.Worker). Concurrency is the number
	// of concurrent invocations, or of worker processes.
	Mode Mode
	// Window is Lambda's maximum batching window, or the worker's
	// COALESCE_WINDOW (the baseline's worker does not coalesce).
	Window time.Duration
	// CoalesceMax is the worker's bound on a batch (0: its default).
	CoalesceMax int
	// Rate, when positive, is the mean arrival rate in events per second
	// (exponential gaps, seeded by Seed): an open loop, in which batches
	// form as messages arrive. 0: every message is in the queue at the
	// start (a closed loop: batches are full and windows do not matter).
	Rate float64
	Seed uint64
	// Settle, when positive, is a pause after the set-up (tables, seeding,
	// grants) before the measured run starts, so that the garbage the
	// set-up left is collected before CPU time is counted.
	Settle time.Duration
	// FIFO delivers as a FIFO queue whose message group is the
	// entitlement (the producer library's GroupID): a group's messages in
	// order, a group in one consumer's hands at a time, as many of a
	// group together as a receive holds. The baseline then handles a
	// batch in order (Powertools' FIFO batch processor).
	FIFO bool
}

// Mode is how the queue is consumed.
type Mode string

const (
	Lambda Mode = "lambda"
	Worker Mode = "worker"
)

func (c *RunConfig) defaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 20
	}
	if c.ApplyConcurrency <= 0 {
		c.ApplyConcurrency = 8
	}
	if c.InvocationTimeout <= 0 {
		c.InvocationTimeout = 30 * time.Second
	}
	if c.Mode == "" {
		c.Mode = Lambda
	}
	if c.VisibilityTimeout <= 0 {
		c.VisibilityTimeout = time.Second
		if c.Mode == Worker {
			// Longer than a worker holds a message (a window plus a
			// batch), so that only failures come back.
			c.VisibilityTimeout = 3 * time.Second
		}
	}
	if c.MaxReceives <= 0 {
		c.MaxReceives = 10
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// NewAWSConfig loads the SDK configuration the way production does (the
// standard environment variables, the same retryer), with meter (if not
// nil) on every client made from it. The HTTP client keeps more idle
// connections than the SDK default (10 per host) so that neither
// implementation pays for reconnecting on loopback; nothing else differs.
func NewAWSConfig(ctx context.Context, meter *Meter) (aws.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRetryer(func() aws.Retryer {
			// As in cmd/usage-event-service.
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 5
				o.MaxBackoff = time.Second
			})
		}),
		awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = 1024
			t.MaxIdleConnsPerHost = 1024
		})),
	}
	// DynamoDB Local sends "X-Amz-Crc32: 0" with error responses, which
	// the SDK logs as a checksum warning on every failed condition. The
	// warnings are counted (MeterSnapshot.SDKWarnings), not printed.
	var sdkLogger logging.Logger = logging.Nop{}
	if meter != nil {
		opts = append(opts, awsconfig.WithAPIOptions([]func(*middleware.Stack) error{meter.APIOption}))
		sdkLogger = logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
			if c == logging.Warn {
				meter.warning()
			}
		})
	}
	opts = append(opts, awsconfig.WithLogger(sdkLogger))
	return awsconfig.LoadDefaultConfig(ctx, opts...)
}

// Delivery is one delivery of one message and what became of it.
type Delivery struct {
	Message int // index into Workload.Messages
	Receive int // 1 for the first delivery
	Status  usage.Status
	Reason  usage.Reason
}

// unit is one piece of work the requests are attributed to: a group (one
// scope of one batch) for ours, one event for the baseline.
type unit struct {
	cold     bool // the worker had not handled the scope before
	events   int
	applied  int
	requests int
	rcu, wcu float64
	rru, wru float64
	// The unit's GetItem requests and their units.
	reads            int
	readRCU, readRRU float64
}

// collector gathers a run's measurements.
type collector struct {
	mu          sync.Mutex
	deliveries  []Delivery
	batches     []batchSample
	units       []unit
	deadLetters int
	// dlqRequests: SendMessageBatch calls of the in-memory dead-letter
	// queue (10 letters each at most).
	dlqRequests int
	// endToEnd: for each message done, from its arrival in the queue to
	// the end of the delivery that did it.
	endToEnd []float64
}

type batchSample struct {
	latency  time.Duration
	size     int
	receives int // ReceiveMessage calls that gathered it (Lambda)
	done     int // messages done, deleted afterwards
}

func (c *collector) addUnit(u unit) {
	c.mu.Lock()
	c.units = append(c.units, u)
	c.mu.Unlock()
}

// SendDeadLetters is the in-memory dead-letter queue.
func (c *collector) SendDeadLetters(_ context.Context, letters []pipeline.DeadLetter) []error {
	c.mu.Lock()
	c.deadLetters += len(letters)
	c.dlqRequests += (len(letters) + 9) / 10
	c.mu.Unlock()
	return make([]error, len(letters))
}

// seenSet is one worker's (one process's) memory of the scopes it handled:
// the same lifetime as the store's per-process cache.
type seenSet struct {
	mu sync.Mutex
	m  map[usage.Scope]bool
}

func (s *seenSet) seen(scope usage.Scope) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[scope]
}

func (s *seenSet) mark(scope usage.Scope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[scope] = true
}

// observe starts a unit for scope and returns the context its requests are
// counted on, and the function that ends it.
func (c *collector) observe(seen *seenSet, ctx context.Context, scope usage.Scope) (context.Context, func([]usage.Outcome)) {
	t := &tally{}
	cold := !seen.seen(scope)
	return withTally(ctx, t), func(out []usage.Outcome) {
		u := unit{cold: cold, events: len(out)}
		for _, o := range out {
			if o.Status == usage.Applied {
				u.applied++
			}
		}
		t.mu.Lock()
		u.requests, u.rcu, u.wcu, u.rru, u.wru = t.requests, t.rcu, t.wcu, t.rru, t.wru
		u.reads, u.readRCU, u.readRRU = t.reads, t.readRCU, t.readRRU
		t.mu.Unlock()
		c.addUnit(u)
		seen.mark(scope)
	}
}

// measuredStore wraps the real store only to attribute each group's
// requests to it; Update is passed through unchanged. It is a
// metering.Teamer, as the writer it wraps is: the Processor observes a
// batch's scopes of one key before deciding (to form the teams of a
// pool's members), and those reads are counted with the group that then
// decides the scope (a team's group, for its members).
type measuredStore struct {
	inner metering.Teamer
	c     *collector
	seen  *seenSet

	mu       sync.Mutex
	observed map[usage.Scope]*tally // reads made for a scope before its group started
}

func newMeasuredStore(inner metering.Teamer, c *collector, seen *seenSet) *measuredStore {
	return &measuredStore{inner: inner, c: c, seen: seen, observed: map[usage.Scope]*tally{}}
}

func (m *measuredStore) Observe(ctx context.Context, scope usage.Scope, consistent bool) (usage.State, error) {
	t := &tally{}
	st, err := m.inner.Observe(withTally(ctx, t), scope, consistent)
	m.mu.Lock()
	if prev := m.observed[scope]; prev != nil {
		t.add(prev)
	}
	m.observed[scope] = t
	m.mu.Unlock()
	return st, err
}

// carry counts the reads made for scopes before their group started in
// the group's tally.
func (m *measuredStore) carry(ctx context.Context, scopes ...usage.Scope) {
	t := tallyOf(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range scopes {
		if o := m.observed[s]; o != nil && t != nil {
			t.add(o)
		}
		delete(m.observed, s)
	}
}

func (m *measuredStore) UpdateObserved(ctx context.Context, scope usage.Scope, st usage.State, records []usage.Record, decide usage.Decide) []usage.Outcome {
	ctx, done := m.c.observe(m.seen, ctx, scope)
	m.carry(ctx, scope)
	out := m.inner.UpdateObserved(ctx, scope, st, records, decide)
	done(out)
	return out
}

// UpdateTeam is one unit, under its first member's scope; every member
// is seen from then on.
func (m *measuredStore) UpdateTeam(ctx context.Context, members map[usage.Scope]usage.State, records []usage.Record, team usage.DecideTeam, decide usage.Decide) []usage.Outcome {
	ctx, done := m.c.observe(m.seen, ctx, records[0].Event.Scope())
	scopes := make([]usage.Scope, 0, len(members))
	for s := range members {
		scopes = append(scopes, s)
	}
	m.carry(ctx, scopes...)
	out := m.inner.UpdateTeam(ctx, members, records, team, decide)
	done(out)
	for _, s := range scopes {
		m.seen.mark(s)
	}
	return out
}

func (m *measuredStore) Update(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome {
	ctx, done := m.c.observe(m.seen, ctx, scope)
	out := m.inner.Update(ctx, scope, records, decide)
	done(out)
	return out
}

// tables of one run.
type tables struct {
	entitlements, ledger, idempotency string
}

func (t tables) all() []string {
	var out []string
	for _, n := range []string{t.entitlements, t.ledger, t.idempotency} {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

func createTables(ctx context.Context, c *dynamodb.Client, tb tables) error {
	if _, err := ddbstore.CreateEntitlementsTable(ctx, c, tb.entitlements, ddbstore.DefaultEntitlementKeys); err != nil {
		return err
	}
	if tb.ledger != "" {
		if _, err := ddbstore.CreateLedgerTable(ctx, c, tb.ledger); err != nil {
			return err
		}
	}
	if tb.idempotency != "" {
		_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(tb.idempotency),
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
			BillingMode:          types.BillingModePayPerRequest,
		})
		if err != nil {
			return fmt.Errorf("create table %s: %w", tb.idempotency, err)
		}
		if err := dynamodb.NewTableExistsWaiter(c).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tb.idempotency)}, time.Minute); err != nil {
			return err
		}
	}
	return nil
}

// dropTables deletes a run's tables so that DynamoDB Local's memory does
// not grow from run to run.
func dropTables(c *dynamodb.Client, tb tables) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range tb.all() {
		c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	}
}

func seed(ctx context.Context, c *dynamodb.Client, table string, w *Workload) error {
	work := make(chan *Entitlement)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for e := range work {
				used := e.Used
				item := ddbstore.EntitlementItem{UserID: e.Scope.UserID, EntitlementKey: e.Scope.EntitlementKey,
					Limit: e.Limit, Used: &used, ResetPeriod: e.ResetPeriod, PeriodStart: e.PeriodStart, Pool: e.Pool,
					Extra: map[string]types.AttributeValue{
						// access-service's own attributes, never read by metering
						"displayName": &types.AttributeValueMemberS{Value: "Plan feature " + e.Scope.EntitlementKey},
						"grantedBy":   &types.AttributeValueMemberS{Value: "subscription"},
					}}
				if err := ddbstore.PutEntitlement(ctx, c, table, ddbstore.DefaultEntitlementKeys, item); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range w.Entitlements {
		work <- &w.Entitlements[i]
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("seeding %s: %w", table, err)
	default:
	}
	for _, p := range w.Pools {
		used := p.Used
		item := ddbstore.EntitlementItem{EntitlementKey: p.EntitlementKey, Limit: p.Limit, Used: &used, ResetPeriod: p.ResetPeriod, PeriodStart: p.PeriodStart}
		if err := ddbstore.PutPool(ctx, c, table, ddbstore.DefaultEntitlementKeys, p.ID, item); err != nil {
			return fmt.Errorf("seeding pool %s in %s: %w", p.ID, table, err)
		}
	}
	return nil
}

// Result is one run's measurements.
type Result struct {
	System      string `json:"system"`
	Concurrency int    `json:"concurrency"`
	// The delivery settings: Mode, Lambda's BatchSize, the batching or
	// coalescing window, the arrival rate (0: all at the start), FIFO.
	Mode          string  `json:"mode"`
	BatchSize     int     `json:"batchSize"`
	WindowMs      float64 `json:"windowMs"`
	RatePerSecond float64 `json:"ratePerSecond"`
	FIFO          bool    `json:"fifo,omitempty"`
	CoalesceMax   int     `json:"coalesceMax,omitempty"`
	// Events is the number of generated messages; Deliveries counts
	// redeliveries of messages that were not done too.
	Events     int `json:"events"`
	Deliveries int `json:"deliveries"`
	Batches    int `json:"batches"`
	// RTTMs is the modelled round trip added to every DynamoDB attempt
	// (0: none, DynamoDB Local on loopback as it is);
	// MeanInjectedDelayMs is how long an attempt actually waited for it,
	// timer and scheduling overshoot included.
	RTTMs               float64 `json:"rttMs"`
	MeanInjectedDelayMs float64 `json:"meanInjectedDelayMs,omitempty"`
	// WallSeconds is the time the run processed batches: from the first
	// delivery to the last, less IdleSeconds, when every worker only
	// waited for a redelivery to become visible. EventsPerSecond is
	// Events over WallSeconds.
	WallSeconds     float64 `json:"wallSeconds"`
	IdleSeconds     float64 `json:"idleSeconds"`
	EventsPerSecond float64 `json:"eventsPerSecond"`
	// Batch latency (one invocation); an event's latency is its batch's,
	// so the event-weighted percentiles differ only through batch sizes.
	P50Ms      float64 `json:"p50Ms"`
	P99Ms      float64 `json:"p99Ms"`
	MaxMs      float64 `json:"maxMs"`
	EventP50Ms float64 `json:"eventP50Ms"`
	EventP99Ms float64 `json:"eventP99Ms"`
	// End to end, per message done: from its arrival in the queue to the
	// end of the delivery that did it (batching window, queueing and
	// redeliveries included). With every message queued at the start
	// (rate 0) it is mostly the wait in the queue.
	EndToEndP50Ms float64 `json:"endToEndP50Ms"`
	EndToEndP99Ms float64 `json:"endToEndP99Ms"`
	EndToEndMaxMs float64 `json:"endToEndMaxMs"`
	MeanBatchSize float64 `json:"meanBatchSize"`

	AppliedEvents              int     `json:"appliedEvents"`
	DDBRequests                int     `json:"ddbRequests"`
	DDBRequestsPerEvent        float64 `json:"ddbRequestsPerEvent"`
	DDBRequestsPerAppliedEvent float64 `json:"ddbRequestsPerAppliedEvent"`
	// WCU and RCU: ConsumedCapacity as DynamoDB Local reported it
	// (successful requests only).
	WCU         float64 `json:"wcu"`
	RCU         float64 `json:"rcu"`
	WCUPerEvent float64 `json:"wcuPerEvent"`
	RCUPerEvent float64 `json:"rcuPerEvent"`
	// WRU and RRU: on-demand request units by DynamoDB's documented
	// rules (Meter.requestUnits), failed conditional writes included
	// (FailedWRU of the WRU).
	WRU                float64 `json:"wru"`
	RRU                float64 `json:"rru"`
	FailedWRU          float64 `json:"failedWru"`
	WRUPerEvent        float64 `json:"wruPerEvent"`
	RRUPerEvent        float64 `json:"rruPerEvent"`
	WRUPerAppliedEvent float64 `json:"wruPerAppliedEvent"`
	MaxPutItemBytes    int     `json:"maxPutItemBytes"`
	// The entitlement items' sizes as the run started (ItemSize), by which
	// writes to them are priced (Meter.KnowItems), and how many of them
	// ended the run in another 1 KB step (0, or their writes were priced
	// by the smaller size).
	EntitlementBytesMin  int `json:"entitlementBytesMin"`
	EntitlementBytesMax  int `json:"entitlementBytesMax"`
	EntitlementKBChanged int `json:"entitlementKbChanged,omitempty"`
	// PoolItemBytesMax: the largest pool's entitlement item as the run
	// started (counted among the entitlement items above too).
	PoolItemBytesMax int `json:"poolItemBytesMax,omitempty"`
	// EntitlementWrites: the committed updates of entitlement items by
	// their expressions (MeterSnapshot.KnownItemWrites); not in the JSON.
	EntitlementWrites map[string]int `json:"-"`
	// CostUSDPerMillionEvents prices WRU and RRU at on-demand rates
	// (Prices); the steady state has its own.
	CostUSDPerMillionEvents float64 `json:"costUsdPerMillionEvents"`
	// FailedWRUShare is FailedWRU over WRU: write units spent on writes
	// that failed (canceled transactions, failed conditions).
	FailedWRUShare float64 `json:"failedWruShare"`
	SDKWarnings    int     `json:"sdkWarnings"`

	// The rest of the bill (see price): SQS requests and, for Lambda,
	// invocations and GB-seconds; TotalUSDPerMillionEvents adds them to
	// the DynamoDB cost.
	SQSRequests               int            `json:"sqsRequests"`
	SQSRequestsByOperation    map[string]int `json:"sqsRequestsByOperation"`
	SQSRequestsPerEvent       float64        `json:"sqsRequestsPerEvent"`
	SQSUSDPerMillionEvents    float64        `json:"sqsUsdPerMillionEvents"`
	Invocations               int            `json:"invocations,omitempty"`
	LambdaGBSeconds           float64        `json:"lambdaGbSeconds,omitempty"`
	LambdaUSDPerMillionEvents float64        `json:"lambdaUsdPerMillionEvents"`
	TotalUSDPerMillionEvents  float64        `json:"totalUsdPerMillionEvents"`
	// GaveUp counts deliveries past MaxReceives (worker mode: SQS's
	// redrive policy would move them).
	GaveUp int `json:"gaveUp,omitempty"`

	RequestsByOperation map[string]int     `json:"requestsByOperation"`
	MeanCallMs          map[string]float64 `json:"meanCallMsByOperation"`
	FailedCalls         map[string]int     `json:"failedCalls,omitempty"`
	// FailedConditions: ours' canceled transactions' failed conditions by
	// item (Meter.FailedConditionsBy).
	FailedConditions map[string]int `json:"failedConditions,omitempty"`
	// Outcomes of every delivery, by status or status:reason.
	Outcomes map[string]int `json:"outcomes"`
	// FinalOutcomes: the last outcome of each message.
	FinalOutcomes map[string]int `json:"finalOutcomes"`
	// Units are groups (one scope of one batch) for ours, events for the
	// baseline; MeanEventsPerUnit is ours' coalescing factor.
	// CPU time during the run: this process (the handlers, the AWS SDK,
	// and the bench's own bookkeeping) and DynamoDB Local's JVM.
	BenchCPUSeconds       float64 `json:"benchCpuSeconds"`
	EmulatorCPUSeconds    float64 `json:"emulatorCpuSeconds,omitempty"`
	BenchCPUMsPerEvent    float64 `json:"benchCpuMsPerEvent"`
	EmulatorCPUMsPerEvent float64 `json:"emulatorCpuMsPerEvent,omitempty"`
	// EmulatorCores is DynamoDB Local's CPU time over the run's time: how
	// busy the server was (about 1: saturated, it sets the pace).
	EmulatorCores float64 `json:"emulatorCores,omitempty"`

	Units             int     `json:"units"`
	DeadLettered      int     `json:"deadLettered"`
	MeanEventsPerUnit float64 `json:"meanEventsPerUnit"`
	// Ours: Store.Update calls of more than 50 records, which the store
	// writes as several transactions (its maxGroup), and how many
	// transactions fewer a limit of 99 (DynamoDB's 100 items less the
	// entitlement) would have written.
	GroupsOver50          int `json:"groupsOver50,omitempty"`
	TransactionsSavedAt99 int `json:"transactionsSavedAt99,omitempty"`
	// CommittedTransactions: TransactWriteItems calls that succeeded;
	// AppliedPerTransaction: applied events over them.
	CommittedTransactions int     `json:"committedTransactions"`
	AppliedPerTransaction float64 `json:"appliedPerTransaction"`
	// Writes of pools' entitlement items in committed transactions
	// (updates and condition checks), per event too, and in transactions
	// that failed; GetItems of pools' items (MeterSnapshot).
	PoolItemWrites         int     `json:"poolItemWrites,omitempty"`
	PoolItemWritesPerEvent float64 `json:"poolItemWritesPerEvent,omitempty"`
	PoolItemWritesCanceled int     `json:"poolItemWritesCanceled,omitempty"`
	PoolItemReads          int     `json:"poolItemReads,omitempty"`
	// EntitlementItemWritesPerEvent: the committed transactions' writes
	// (updates, condition checks) of users' entitlement items, per event.
	EntitlementItemWritesPerEvent float64 `json:"entitlementItemWritesPerEvent"`

	SteadyState SteadyState `json:"steadyState"`
	Check       Check       `json:"check"`
}

// SteadyState is the run with warm per-process caches: the whole run's
// requests and units minus the GetItems that filled a cold cache (ours'
// reads in units whose worker had not handled the scope before). The
// baseline keeps no cache, so its steady state is its whole run. The
// denominators are the whole run's, so the workload mix is unchanged.
type SteadyState struct {
	CacheFillReads             int     `json:"cacheFillReads"`
	DDBRequests                int     `json:"ddbRequests"`
	DDBRequestsPerEvent        float64 `json:"ddbRequestsPerEvent"`
	DDBRequestsPerAppliedEvent float64 `json:"ddbRequestsPerAppliedEvent"`
	WCUPerEvent                float64 `json:"wcuPerEvent"`
	RCUPerEvent                float64 `json:"rcuPerEvent"`
	WRUPerEvent                float64 `json:"wruPerEvent"`
	RRUPerEvent                float64 `json:"rruPerEvent"`
	CostUSDPerMillionEvents    float64 `json:"costUsdPerMillionEvents"`
	TotalUSDPerMillionEvents   float64 `json:"totalUsdPerMillionEvents"`
}

// entitlementSizes reports the entitlement items' sizes as the run
// started (before) and how many ended it in another 1 KB step.
func (r *Result) entitlementSizes(ctx context.Context, c *dynamodb.Client, tb tables, before []map[string]types.AttributeValue) error {
	keys := ddbstore.DefaultEntitlementKeys
	sizes := &itemSizes{keys: map[string][]string{tb.entitlements: {keys.PartitionAttr, keys.SortAttr}}, bytes: map[string]int{}}
	for i, it := range before {
		n := ItemSize(it)
		sizes.bytes[sizes.key(tb.entitlements, it)] = n
		if i == 0 || n < r.EntitlementBytesMin {
			r.EntitlementBytesMin = n
		}
		r.EntitlementBytesMax = max(r.EntitlementBytesMax, n)
		if pk, ok := it[keys.PartitionAttr].(*types.AttributeValueMemberS); ok && strings.HasPrefix(pk.Value, keys.PoolPrefix) {
			r.PoolItemBytesMax = max(r.PoolItemBytesMax, n)
		}
	}
	after, err := scanAll(ctx, c, tb.entitlements)
	if err != nil {
		return err
	}
	kb := func(n int) int { return max(1, (n+1023)/1024) }
	for _, it := range after {
		if kb(ItemSize(it)) != kb(sizes.of(&tb.entitlements, it)) {
			r.EntitlementKBChanged++
		}
	}
	return nil
}

// costPerMillion is the cost of a million events at wru and rru per event.
func costPerMillion(wru, rru float64) float64 { return wru*Prices.WRU + rru*Prices.RRU }

func summarize(sys System, w *Workload, cfg RunConfig, wall time.Duration, m MeterSnapshot, col *collector) *Result {
	r := &Result{
		System: string(sys), Concurrency: cfg.Concurrency, Mode: string(cfg.Mode), BatchSize: cfg.BatchSize,
		WindowMs: ms(cfg.Window), RatePerSecond: cfg.Rate, FIFO: cfg.FIFO, CoalesceMax: cfg.CoalesceMax, Events: len(w.Messages),
		Deliveries: len(col.deliveries), Batches: len(col.batches), WallSeconds: wall.Seconds(),
		DDBRequests: m.Requests, WCU: m.WCU, RCU: m.RCU, WRU: m.WRU, RRU: m.RRU, FailedWRU: m.FailedWRU,
		MaxPutItemBytes: m.MaxPutBytes, SDKWarnings: m.SDKWarnings,
		EntitlementWrites: m.KnownItemWrites, RequestsByOperation: m.Attempts, MeanCallMs: m.MeanMs, FailedCalls: m.Failures, FailedConditions: m.FailedConditionsBy,
		Outcomes: map[string]int{}, FinalOutcomes: map[string]int{}, Units: len(col.units),
		DeadLettered: col.deadLetters, CommittedTransactions: m.CommittedTransactions,
		PoolItemWrites: m.PoolItemWrites, PoolItemWritesCanceled: m.PoolItemWritesCanceled, PoolItemReads: m.PoolItemReads,
	}
	r.EventsPerSecond = float64(r.Events) / wall.Seconds()
	lat := make([]float64, len(col.batches))
	weights := make([]float64, len(col.batches))
	for i, b := range col.batches {
		lat[i] = float64(b.latency) / float64(time.Millisecond)
		weights[i] = float64(b.size)
	}
	r.P50Ms, r.P99Ms = Percentile(lat, 50), Percentile(lat, 99)
	r.MaxMs = Percentile(lat, 100)
	r.EventP50Ms, r.EventP99Ms = WeightedPercentile(lat, weights, 50), WeightedPercentile(lat, weights, 99)
	r.EndToEndP50Ms, r.EndToEndP99Ms, r.EndToEndMaxMs = Percentile(col.endToEnd, 50), Percentile(col.endToEnd, 99), Percentile(col.endToEnd, 100)
	r.MeanBatchSize = ratio(float64(len(col.deliveries)), float64(len(col.batches)))

	final := make([]string, len(w.Messages))
	for _, d := range col.deliveries {
		k := outcomeKey(d.Status, d.Reason)
		r.Outcomes[k]++
		final[d.Message] = k
		if d.Status == usage.Applied {
			r.AppliedEvents++
		}
	}
	for _, k := range final {
		r.FinalOutcomes[k]++
	}
	ev, applied := float64(r.Events), float64(r.AppliedEvents)
	r.DDBRequestsPerEvent = ratio(float64(r.DDBRequests), ev)
	r.DDBRequestsPerAppliedEvent = ratio(float64(r.DDBRequests), applied)
	r.WCUPerEvent, r.RCUPerEvent = ratio(r.WCU, ev), ratio(r.RCU, ev)
	r.WRUPerEvent, r.RRUPerEvent = ratio(r.WRU, ev), ratio(r.RRU, ev)
	r.WRUPerAppliedEvent = ratio(r.WRU, applied)
	r.AppliedPerTransaction = ratio(applied, float64(r.CommittedTransactions))
	r.PoolItemWritesPerEvent = ratio(float64(r.PoolItemWrites), ev)
	r.EntitlementItemWritesPerEvent = ratio(float64(m.EntitlementItemWrites), ev)
	r.CostUSDPerMillionEvents = costPerMillion(r.WRUPerEvent, r.RRUPerEvent)
	r.FailedWRUShare = ratio(r.FailedWRU, r.WRU)

	var events int
	ss := SteadyState{DDBRequests: r.DDBRequests}
	rcu, rru := r.RCU, r.RRU
	for _, u := range col.units {
		events += u.events
		if sys == Ours && u.events > 50 {
			r.GroupsOver50++
			r.TransactionsSavedAt99 += (u.events+49)/50 - (u.events+98)/99
		}
		if u.cold && sys == Ours {
			ss.CacheFillReads += u.reads
			ss.DDBRequests -= u.reads
			rcu, rru = rcu-u.readRCU, rru-u.readRRU
		}
	}
	r.MeanEventsPerUnit = ratio(float64(events), float64(len(col.units)))
	ss.DDBRequestsPerEvent = ratio(float64(ss.DDBRequests), ev)
	ss.DDBRequestsPerAppliedEvent = ratio(float64(ss.DDBRequests), applied)
	ss.WCUPerEvent, ss.RCUPerEvent = r.WCUPerEvent, ratio(rcu, ev)
	ss.WRUPerEvent, ss.RRUPerEvent = r.WRUPerEvent, ratio(rru, ev)
	ss.CostUSDPerMillionEvents = costPerMillion(ss.WRUPerEvent, ss.RRUPerEvent)
	r.SteadyState = ss
	return r
}

// reasonOf is the rejection reason, or for RETRY a short cause.
func reasonOf(o usage.Outcome) usage.Reason {
	if o.Status != usage.Retry {
		return o.Reason()
	}
	switch {
	case errors.Is(o.Err, metering.ErrContention):
		return "CONTENTION"
	case errors.Is(o.Err, ErrInProgress):
		return "IN_PROGRESS"
	case errors.Is(o.Err, metering.ErrDeadline), errors.Is(o.Err, context.DeadlineExceeded):
		return "DEADLINE"
	case errors.Is(o.Err, errRetriesExhausted):
		return "CONTENTION"
	}
	return "OTHER"
}

func outcomeKey(s usage.Status, r usage.Reason) string {
	if r != "" {
		return string(s) + ":" + string(r)
	}
	return string(s)
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of xs; 0
// for no values.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := int(math.Ceil(float64(len(s)) * p / 100))
	return s[min(max(rank, 1), len(s))-1]
}

// WeightedPercentile is the nearest-rank percentile of xs where xs[i]
// counts weights[i] times.
func WeightedPercentile(xs, weights []float64, p float64) float64 {
	if len(xs) == 0 || len(xs) != len(weights) {
		return 0
	}
	idx := make([]int, len(xs))
	var total float64
	for i := range idx {
		idx[i] = i
		total += weights[i]
	}
	sort.SliceStable(idx, func(a, b int) bool { return xs[idx[a]] < xs[idx[b]] })
	target := total * p / 100
	var cum float64
	for _, i := range idx {
		cum += weights[i]
		if cum >= target-1e-9 && cum > 0 {
			return xs[i]
		}
	}
	return xs[idx[len(idx)-1]]
}

// processCPU is this process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// emulatorCPU is the user+system CPU time of process pid (0: none), from
// /proc/<pid>/stat, in clock ticks of 1/100 s.
func emulatorCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are
	// the 14th and 15th fields of the line.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
