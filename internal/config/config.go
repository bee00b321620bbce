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

	"github.com/usage-event-service/usage-event-service/pipeline"
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
}

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
}

// DefaultKeyLayout is access-service's documented layout
// (dynamodb.DefaultEntitlementKeys; a test keeps the two equal).
var DefaultKeyLayout = KeyLayout{PartitionAttr: "pk", SortAttr: "sk", UserPrefix: "USER#", KeyPrefix: "ENTITLEMENT#"}

var (
	tableName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)
	attrName  = regexp.MustCompile(`^.{1,255}$`)
)

// Load reads the configuration through getenv (os.Getenv in production).
// It reports every problem at once.
func Load(getenv func(string) string) (Config, error) {
	get := func(name, def string) string { return trimmed(getenv, name, def) }
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	c := Config{
		EntitlementsTable:  get("ENTITLEMENTS_TABLE", ""),
		LedgerTable:        get("USAGE_LEDGER_TABLE", ""),
		QueueURL:           get("USAGE_EVENT_QUEUE_URL", ""),
		DeadLetterQueueURL: get("DEAD_LETTER_QUEUE_URL", ""),
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
	var err error
	if c.KeyLayout, err = LoadKeyLayout(getenv); err != nil {
		errs = append(errs, err)
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

	if c.DedupRetention, err = LoadDedupRetention(getenv); err != nil {
		errs = append(errs, err)
	}
	c.ApplyConcurrency = positiveInt(get("APPLY_CONCURRENCY", strconv.Itoa(pipeline.DefaultParallel)), "APPLY_CONCURRENCY", 1, 256, bad)
	wait := get("REFUND_TARGET_WAIT", pipeline.DefaultTargetWait.String())
	if d, err := time.ParseDuration(wait); err != nil || d < 0 || d > 24*time.Hour {
		bad("REFUND_TARGET_WAIT", "%q is not a Go duration from 0s to 24h (e.g. 15m)", wait)
	} else {
		c.RefundTargetWait = d
	}
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

// CheckQueueURL checks that s looks like an SQS queue URL.
func CheckQueueURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return fmt.Errorf("%q is not a queue URL (expected https://sqs.<region>.amazonaws.com/<account>/<name>)", s)
	}
	return nil
}
