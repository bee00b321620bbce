// Package config reads the service's settings from the environment and
// says precisely what is wrong with them, so a bad deployment fails at
// start (exit code 2) rather than on the first message.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/usage-event-service/usage-event-service/metering"

	"github.com/usage-event-service/usage-event-service/internal/queueurl"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Config is the service's configuration. AWS endpoints, region and
// credentials are not here: the AWS SDK reads its standard variables
// (AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_SQS, ...).
type Config struct {
	EntitlementsTable  string
	LedgerTable        string
	QueueURL           string // worker only
	DeadLetterQueueURL string // optional: direct dead-lettering
	LogLevel           slog.Level
	DedupRetention     time.Duration
	KeyLayout          // the entitlements table's key layout
	ApplyConcurrency   int
	WorkerPollers      int
	StateCache         bool
	MetricsAddr        string // worker only: opt-in Prometheus endpoint
	RefundTargetWait   time.Duration
	// NotifyTopicARN is the SNS topic notifications are published to;
	// empty: none are recorded or published.
	NotifyTopicARN string
	// Notify is what is notified (NOTIFY_THRESHOLDS, NOTIFY_LIMIT_REJECTED,
	// NOTIFY_OVERAGE); nil when NotifyTopicARN is empty or nothing is to
	// be notified, so that nothing extra is written.
	Notify *usage.Notify
	// NotifyRecoveryInterval is how often the outbox's recovery sweep runs
	// (NOTIFY_RECOVERY_INTERVAL).
	NotifyRecoveryInterval time.Duration
	// HoldSweepInterval is how often the worker releases expired holds
	// (HOLD_SWEEP_INTERVAL); in Lambda the schedule decides.
	HoldSweepInterval time.Duration
	CoalesceWindow    time.Duration // worker only
	// Tracing is what the standard OTEL_* variables and TRACE_IDS say
	// about tracing (LoadTracing).
	Tracing Tracing
}

// Tracing is the tracing configuration.
type Tracing struct {
	// Enabled: spans are made and exported over OTLP/HTTP (LoadTracing
	// says when). Off, the service makes none and reads no trace context.
	Enabled bool
	// IDs puts the userId, entitlementKey and idempotency key on event
	// spans (TRACE_IDS, default true).
	IDs bool
}

// DefaultHoldSweepInterval is the worker's hold sweep interval unless set.
const DefaultHoldSweepInterval = 30 * time.Second

// Defaults of the notification settings.
const (
	DefaultNotifyThresholds       = "80,100"
	DefaultNotifyRecoveryInterval = time.Minute
)

// DefaultCoalesceWindow is COALESCE_WINDOW's default: how long the worker
// keeps received messages for more of the same entitlement from later
// receives (chosen from the benchmark, docs/performance.md).
const DefaultCoalesceWindow = 25 * time.Millisecond

// MaxCoalesceWindow bounds COALESCE_WINDOW: a message waits at most about
// that long before its decision starts, which must stay far inside any
// visibility timeout (the module's is minutes; SQS's default 30 s).
const MaxCoalesceWindow = time.Second

// KeyLayout is the entitlements table's key layout: the fields of
// dynamodb.EntitlementKeys, to which it converts
// (dynamodb.EntitlementKeys(l)). It is declared here rather than imported
// so that the producer library, which imports this package, does not
// pull in the DynamoDB client.
type KeyLayout struct {
	PartitionAttr string // ENTITLEMENT_PK_ATTRIBUTE
	SortAttr      string // ENTITLEMENT_SK_ATTRIBUTE
	UserPrefix    string // ENTITLEMENT_PK_PREFIX, before the userId
	KeyPrefix     string // ENTITLEMENT_SK_PREFIX, before the entitlementKey
	PoolPrefix    string // POOL_PK_PREFIX, before a pool's ID
}

// DefaultKeyLayout is access-service's documented layout
// (dynamodb.DefaultEntitlementKeys; a test keeps the two equal).
var DefaultKeyLayout = KeyLayout{PartitionAttr: "pk", SortAttr: "sk", UserPrefix: "USER#", KeyPrefix: "ENTITLEMENT#", PoolPrefix: "POOL#"}

var (
	tableName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)
	attrName  = regexp.MustCompile(`^.{1,255}$`)
)

// Load reads the configuration through getenv. A variable set to the
// empty string counts as unset; LoadEnv tells the two apart.
// It reports every problem at once.
func Load(getenv func(string) string) (Config, error) {
	return LoadEnv(func(name string) (string, bool) {
		v := getenv(name)
		return v, v != ""
	})
}

// LoadEnv reads the configuration through lookup (os.LookupEnv in
// production), which tells a variable set to the empty string from an
// unset one: NOTIFY_THRESHOLDS="" means no thresholds, unset the default.
// It reports every problem at once.
func LoadEnv(lookup func(string) (string, bool)) (Config, error) {
	getenv := func(name string) string {
		v, _ := lookup(name)
		return v
	}
	get := func(name, def string) string { return trimmed(getenv, name, def) }
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	c := Config{}
	c.loadResources(get, bad)
	var err error
	if c.KeyLayout, err = LoadKeyLayout(getenv); err != nil {
		errs = append(errs, err)
	}
	c.LogLevel = logLevel(get("LOG_LEVEL", "INFO"), bad)
	if c.DedupRetention, err = LoadDedupRetention(getenv); err != nil {
		errs = append(errs, err)
	}
	c.loadTuning(get, bad)
	c.loadNotify(lookup, bad)
	c.Tracing = LoadTracing(lookup, bad)
	return c, errors.Join(errs...)
}

// loadResources reads the tables, queues and the metrics address.
func (c *Config) loadResources(get func(name, def string) string, bad func(name, format string, args ...any)) {
	c.EntitlementsTable, c.LedgerTable = get("ENTITLEMENTS_TABLE", ""), get("USAGE_LEDGER_TABLE", "")
	c.QueueURL, c.DeadLetterQueueURL = get("USAGE_EVENT_QUEUE_URL", ""), get("DEAD_LETTER_QUEUE_URL", "")
	c.MetricsAddr = get("METRICS_ADDR", "")
	for _, t := range []struct{ name, value string }{{"ENTITLEMENTS_TABLE", c.EntitlementsTable}, {"USAGE_LEDGER_TABLE", c.LedgerTable}} {
		switch {
		case t.value == "":
			bad(t.name, "is required (the DynamoDB table name)")
		case !tableName.MatchString(t.value):
			bad(t.name, "%q is not a valid DynamoDB table name (3-255 of a-z A-Z 0-9 _ . -)", t.value)
		}
	}
	if c.EntitlementsTable != "" && c.EntitlementsTable == c.LedgerTable {
		bad("USAGE_LEDGER_TABLE", "must differ from ENTITLEMENTS_TABLE")
	}
	for _, q := range []struct{ name, value string }{{"USAGE_EVENT_QUEUE_URL", c.QueueURL}, {"DEAD_LETTER_QUEUE_URL", c.DeadLetterQueueURL}} {
		if q.value != "" {
			if err := queueurl.Check(q.value); err != nil {
				bad(q.name, "%v", err)
			}
		}
	}
	if c.DeadLetterQueueURL != "" && c.DeadLetterQueueURL == c.QueueURL {
		bad("DEAD_LETTER_QUEUE_URL", "must differ from USAGE_EVENT_QUEUE_URL")
	}
}

func logLevel(level string, bad func(name, format string, args ...any)) slog.Level {
	switch level = strings.ToUpper(level); level {
	case "DEBUG":
		return slog.LevelDebug
	case "INFO":
		return slog.LevelInfo
	case "WARN", "WARNING":
		return slog.LevelWarn
	case "ERROR":
		return slog.LevelError
	}
	bad("LOG_LEVEL", "%q is not one of DEBUG, INFO, WARN, ERROR", level)
	return slog.LevelInfo
}

// loadTuning reads the concurrency, the intervals and the cache switch.
func (c *Config) loadTuning(get func(name, def string) string, bad func(name, format string, args ...any)) {
	c.ApplyConcurrency = positiveInt(get("APPLY_CONCURRENCY", strconv.Itoa(metering.DefaultParallel)), "APPLY_CONCURRENCY", 1, 256, bad)
	c.HoldSweepInterval = duration(get("HOLD_SWEEP_INTERVAL", DefaultHoldSweepInterval.String()), "HOLD_SWEEP_INTERVAL",
		100*time.Millisecond, time.Hour, "from 100ms to 1h (e.g. 30s)", bad)
	c.RefundTargetWait = duration(get("REFUND_TARGET_WAIT", metering.DefaultTargetWait.String()), "REFUND_TARGET_WAIT",
		0, 24*time.Hour, "from 0s to 24h (e.g. 15m)", bad)
	c.WorkerPollers = positiveInt(get("WORKER_POLLERS", "4"), "WORKER_POLLERS", 1, 256, bad)
	c.CoalesceWindow = duration(get("COALESCE_WINDOW", DefaultCoalesceWindow.String()), "COALESCE_WINDOW",
		0, MaxCoalesceWindow, fmt.Sprintf("from 0s to %v (e.g. 25ms)", MaxCoalesceWindow), bad)
	c.StateCache = boolean(get("STATE_CACHE", "true"), "STATE_CACHE", bad)
}

// duration parses a Go duration within [lo, hi]; what it says of a bad
// one names the range (span).
func duration(v, name string, lo, hi time.Duration, span string, bad func(name, format string, args ...any)) time.Duration {
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		bad(name, "%q is not a Go duration %s", v, span)
		return 0
	}
	return d
}

// loadNotify reads the notification settings. They are checked whether or
// not a topic is set, so that a mistake shows before it matters.
func (c *Config) loadNotify(lookup func(string) (string, bool), bad func(string, string, ...any)) {
	c.NotifyTopicARN, _ = lookup("NOTIFY_TOPIC_ARN")
	c.NotifyTopicARN = strings.TrimSpace(c.NotifyTopicARN)
	if c.NotifyTopicARN != "" && !topicARN.MatchString(c.NotifyTopicARN) {
		bad("NOTIFY_TOPIC_ARN", "%q is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)", c.NotifyTopicARN)
	}
	raw, set := lookup("NOTIFY_THRESHOLDS")
	if !set {
		raw = DefaultNotifyThresholds
	}
	thresholds, err := ParseThresholds(raw)
	if err != nil {
		bad("NOTIFY_THRESHOLDS", "%v", err)
	}
	v, _ := lookup("NOTIFY_LIMIT_REJECTED")
	limitRejected := boolean(trimmedOr(v, "true"), "NOTIFY_LIMIT_REJECTED", bad)
	v, _ = lookup("NOTIFY_OVERAGE")
	overage := boolean(trimmedOr(v, "true"), "NOTIFY_OVERAGE", bad)
	v, _ = lookup("NOTIFY_RECOVERY_INTERVAL")
	v = trimmedOr(v, DefaultNotifyRecoveryInterval.String())
	if d, err := time.ParseDuration(v); err != nil || d < time.Second || d > 24*time.Hour {
		bad("NOTIFY_RECOVERY_INTERVAL", "%q is not a Go duration from 1s to 24h (e.g. 1m)", v)
	} else {
		c.NotifyRecoveryInterval = d
	}
	if c.NotifyTopicARN != "" && (len(thresholds) > 0 || limitRejected || overage) {
		c.Notify = &usage.Notify{Thresholds: thresholds, LimitRejected: limitRejected, OverageStarted: overage}
	}
}

// LoadTracing reads the tracing settings. Tracing is off unless
// configured, and on when OTEL_TRACES_EXPORTER is "otlp", or when it is
// unset and OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set; OTEL_TRACES_EXPORTER=none
// and OTEL_SDK_DISABLED=true turn it off whatever else is set. Spans are
// exported over OTLP/HTTP only, so OTEL_EXPORTER_OTLP_PROTOCOL and
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL may only be http/protobuf (the
// default) or http/json. The
// endpoints must be http(s) URLs. The exporter and the SDK read their
// other OTEL_* variables themselves.
func LoadTracing(lookup func(string) (string, bool), bad func(string, string, ...any)) Tracing {
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	t := Tracing{IDs: boolean(trimmedOr(get("TRACE_IDS"), "true"), "TRACE_IDS", bad)}
	disabled := boolean(trimmedOr(get("OTEL_SDK_DISABLED"), "false"), "OTEL_SDK_DISABLED", bad)
	endpoint := false
	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		v := get(name)
		if v == "" {
			continue
		}
		endpoint = true
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(name, "%q is not an http(s) URL (e.g. http://localhost:4318)", v)
		}
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		if v := get(name); v != "" && v != "http/protobuf" && v != "http/json" {
			bad(name, "%q is not supported: spans are exported over OTLP/HTTP (http/protobuf or http/json)", v)
		}
	}
	switch exporter := strings.ToLower(get("OTEL_TRACES_EXPORTER")); exporter {
	case "otlp":
		t.Enabled = true
	case "":
		t.Enabled = endpoint
	case "none":
	default:
		bad("OTEL_TRACES_EXPORTER", "%q is not one of otlp, none", exporter)
	}
	if disabled {
		t.Enabled = false
	}
	return t
}

// topicARN is an SNS topic ARN: partition, region, 12-digit account, and
// a name of letters, digits, - and _ (FIFO topics end in .fifo).
var topicARN = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$`)

// ParseThresholds reads NOTIFY_THRESHOLDS: comma-separated percentages of
// the limit, each a number with 0 < p <= 100; "" (or only spaces) is none.
// They come back ascending, a value given twice once ("80" and "80.0" are
// one threshold: one notification).
func ParseThresholds(s string) ([]usage.Decimal, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []usage.Decimal
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		d, err := usage.ParseDecimal(part)
		if err != nil || d.Sign() <= 0 || d.Cmp(usage.DecimalFromInt(100)) > 0 {
			return nil, fmt.Errorf("%q: each threshold must be a percentage of the limit, a number greater than 0 and at most 100 (e.g. 80,100)", part)
		}
		i, found := slices.BinarySearchFunc(out, d, usage.Decimal.Cmp)
		if !found {
			out = slices.Insert(out, i, d)
		}
	}
	return out, nil
}

func boolean(s, name string, bad func(string, string, ...any)) bool {
	switch v := strings.ToLower(s); v {
	case "true", "1", "yes", "on":
		return true
	case "false", "0", "no", "off":
		return false
	default:
		bad(name, "%q is not a boolean (true or false)", v)
		return false
	}
}

func trimmedOr(v, def string) string {
	if v = strings.TrimSpace(v); v != "" {
		return v
	}
	return def
}

// LoadKeyLayout reads the entitlements table's key layout from
// ENTITLEMENT_PK_ATTRIBUTE, ENTITLEMENT_SK_ATTRIBUTE, ENTITLEMENT_PK_PREFIX
// and ENTITLEMENT_SK_PREFIX; unset (empty) means DefaultKeyLayout's value.
// The service (Load) and usagectl both read the layout here, so they
// cannot disagree about where an entitlement is stored. Attribute names
// are trimmed; prefixes keep surrounding spaces, because a prefix is data,
// not a setting to tidy up.
func LoadKeyLayout(getenv func(string) string) (KeyLayout, error) {
	l := KeyLayout{
		PartitionAttr: trimmed(getenv, "ENTITLEMENT_PK_ATTRIBUTE", DefaultKeyLayout.PartitionAttr),
		SortAttr:      trimmed(getenv, "ENTITLEMENT_SK_ATTRIBUTE", DefaultKeyLayout.SortAttr),
		UserPrefix:    raw(getenv, "ENTITLEMENT_PK_PREFIX", DefaultKeyLayout.UserPrefix),
		KeyPrefix:     raw(getenv, "ENTITLEMENT_SK_PREFIX", DefaultKeyLayout.KeyPrefix),
		PoolPrefix:    raw(getenv, "POOL_PK_PREFIX", DefaultKeyLayout.PoolPrefix),
	}
	var errs []error
	for _, a := range []struct{ name, value string }{{"ENTITLEMENT_PK_ATTRIBUTE", l.PartitionAttr}, {"ENTITLEMENT_SK_ATTRIBUTE", l.SortAttr}} {
		if !attrName.MatchString(a.value) {
			errs = append(errs, fmt.Errorf("%s: must be 1-255 characters", a.name))
		}
	}
	if l.PartitionAttr == l.SortAttr {
		errs = append(errs, errors.New("ENTITLEMENT_SK_ATTRIBUTE: must differ from ENTITLEMENT_PK_ATTRIBUTE"))
	}
	if strings.HasPrefix(l.PoolPrefix, l.UserPrefix) || strings.HasPrefix(l.UserPrefix, l.PoolPrefix) {
		// Else a pool's item and some user's could share a key.
		errs = append(errs, errors.New("POOL_PK_PREFIX: neither it nor ENTITLEMENT_PK_PREFIX may begin with the other"))
	}
	return l, errors.Join(errs...)
}

// LoadDedupRetention reads DEDUP_RETENTION (ParseRetention's syntax),
// usage.DefaultDedupRetention when unset. usagectl reads it too: "dlq redrive"
// refuses events older than it.
func LoadDedupRetention(getenv func(string) string) (time.Duration, error) {
	s := strings.TrimSpace(getenv("DEDUP_RETENTION"))
	if s == "" {
		return usage.DefaultDedupRetention, nil
	}
	d, err := ParseRetention(s)
	if err != nil {
		return 0, fmt.Errorf("DEDUP_RETENTION: %w", err)
	}
	return d, nil
}

func trimmed(getenv func(string) string, name, def string) string {
	if v := strings.TrimSpace(getenv(name)); v != "" {
		return v
	}
	return def
}

func raw(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

func positiveInt(s, name string, lo, hi int, bad func(string, string, ...any)) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		bad(name, "%q must be a whole number from %d to %d", s, lo, hi)
		return lo
	}
	return n
}

// ParseRetention accepts a Go duration ("336h", "90m") or whole days
// ("14d"), at least one hour: shorter would let SQS redeliveries (which
// can arrive hours later) through dedup.
func ParseRetention(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q is not a duration (use e.g. 336h or 14d)", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q is not a duration (use e.g. 336h or 14d)", s)
		}
	}
	if d < time.Hour {
		return 0, fmt.Errorf("%q is shorter than 1h", s)
	}
	return d, nil
}
