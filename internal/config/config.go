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
	"strconv"
	"strings"
	"time"
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
	PartitionAttr      string
	SortAttr           string
	UserPrefix         string
	KeyPrefix          string
	ApplyConcurrency   int
	WorkerPollers      int
	StateCache         bool
	MetricsAddr        string // worker only: opt-in Prometheus endpoint
}

// Variable describes one environment variable, for errors and docs.
type Variable struct {
	Name, Default, Meaning string
}

// Variables lists every setting, in README order.
var Variables = []Variable{
	{"ENTITLEMENTS_TABLE", "(required)", "access-service's entitlements table"},
	{"USAGE_LEDGER_TABLE", "(required)", "the service's ledger table (dedup + audit)"},
	{"USAGE_EVENT_QUEUE_URL", "(required by the worker)", "queue the worker long-polls (or --queue-url)"},
	{"DEAD_LETTER_QUEUE_URL", "(unset)", "when set, rejected messages are sent there at once with their reason"},
	{"LOG_LEVEL", "INFO", "DEBUG, INFO, WARN or ERROR"},
	{"DEDUP_RETENTION", "168h", "how long applied keys are remembered (Go duration, or days as 7d); at least 1h"},
	{"ENTITLEMENT_PK_ATTRIBUTE", "pk", "partition key attribute of the entitlements table"},
	{"ENTITLEMENT_SK_ATTRIBUTE", "sk", "sort key attribute of the entitlements table"},
	{"ENTITLEMENT_PK_PREFIX", "USER#", "prefix of the partition key value before the userId"},
	{"ENTITLEMENT_SK_PREFIX", "ENTITLEMENT#", "prefix of the sort key value before the entitlementKey"},
	{"APPLY_CONCURRENCY", "8", "entitlements applied in parallel within one batch"},
	{"WORKER_POLLERS", "4", "concurrent long-poll loops in the worker"},
	{"STATE_CACHE", "true", "cache entitlement state per process to save reads (never affects correctness)"},
	{"METRICS_ADDR", "(unset)", "worker only: serve Prometheus metrics and /healthz on this address, e.g. :9090"},
}

var (
	tableName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)
	attrName  = regexp.MustCompile(`^.{1,255}$`)
)

// Load reads the configuration through getenv (os.Getenv in production).
// It reports every problem at once.
func Load(getenv func(string) string) (Config, error) {
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	c := Config{
		EntitlementsTable:  get("ENTITLEMENTS_TABLE", ""),
		LedgerTable:        get("USAGE_LEDGER_TABLE", ""),
		QueueURL:           get("USAGE_EVENT_QUEUE_URL", ""),
		DeadLetterQueueURL: get("DEAD_LETTER_QUEUE_URL", ""),
		PartitionAttr:      get("ENTITLEMENT_PK_ATTRIBUTE", "pk"),
		SortAttr:           get("ENTITLEMENT_SK_ATTRIBUTE", "sk"),
		UserPrefix:         getenvRaw(getenv, "ENTITLEMENT_PK_PREFIX", "USER#"),
		KeyPrefix:          getenvRaw(getenv, "ENTITLEMENT_SK_PREFIX", "ENTITLEMENT#"),
		MetricsAddr:        get("METRICS_ADDR", ""),
	}
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
			if err := CheckQueueURL(q.value); err != nil {
				bad(q.name, "%v", err)
			}
		}
	}
	if c.DeadLetterQueueURL != "" && c.DeadLetterQueueURL == c.QueueURL {
		bad("DEAD_LETTER_QUEUE_URL", "must differ from USAGE_EVENT_QUEUE_URL")
	}
	for _, a := range []struct{ name, value string }{{"ENTITLEMENT_PK_ATTRIBUTE", c.PartitionAttr}, {"ENTITLEMENT_SK_ATTRIBUTE", c.SortAttr}} {
		if !attrName.MatchString(a.value) {
			bad(a.name, "must be 1-255 characters")
		}
	}
	if c.PartitionAttr == c.SortAttr {
		bad("ENTITLEMENT_SK_ATTRIBUTE", "must differ from ENTITLEMENT_PK_ATTRIBUTE")
	}

	switch level := strings.ToUpper(get("LOG_LEVEL", "INFO")); level {
	case "DEBUG":
		c.LogLevel = slog.LevelDebug
	case "INFO":
		c.LogLevel = slog.LevelInfo
	case "WARN", "WARNING":
		c.LogLevel = slog.LevelWarn
	case "ERROR":
		c.LogLevel = slog.LevelError
	default:
		bad("LOG_LEVEL", "%q is not one of DEBUG, INFO, WARN, ERROR", level)
	}

	var err error
	if c.DedupRetention, err = ParseRetention(get("DEDUP_RETENTION", "168h")); err != nil {
		bad("DEDUP_RETENTION", "%v", err)
	}
	c.ApplyConcurrency = positiveInt(get("APPLY_CONCURRENCY", "8"), "APPLY_CONCURRENCY", 1, 256, bad)
	c.WorkerPollers = positiveInt(get("WORKER_POLLERS", "4"), "WORKER_POLLERS", 1, 256, bad)
	switch v := strings.ToLower(get("STATE_CACHE", "true")); v {
	case "true", "1", "yes", "on":
		c.StateCache = true
	case "false", "0", "no", "off":
	default:
		bad("STATE_CACHE", "%q is not a boolean (true or false)", v)
	}
	return c, errors.Join(errs...)
}

// getenvRaw keeps surrounding spaces: a key prefix is data, not a setting
// to tidy up. Unset (empty) means the default.
func getenvRaw(getenv func(string) string, name, def string) string {
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

// ParseRetention accepts a Go duration ("168h", "90m") or whole days
// ("7d"), at least one hour: shorter would let SQS redeliveries (which
// can arrive hours later) through dedup.
func ParseRetention(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q is not a duration (use e.g. 168h or 7d)", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q is not a duration (use e.g. 168h or 7d)", s)
		}
	}
	if d < time.Hour {
		return 0, fmt.Errorf("%q is shorter than 1h", s)
	}
	return d, nil
}

// CheckQueueURL checks that s looks like an SQS queue URL.
func CheckQueueURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return fmt.Errorf("%q is not a queue URL (expected https://sqs.<region>.amazonaws.com/<account>/<name>)", s)
	}
	return nil
}
