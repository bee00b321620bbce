package config_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/config"
	"github.com/usage-event-service/usage-event-service/usage"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func base(extra map[string]string) map[string]string {
	m := map[string]string{"ENTITLEMENTS_TABLE": "ent-table", "USAGE_LEDGER_TABLE": "ledger-table"}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestLoadDefaults(t *testing.T) {
	c, err := config.Load(env(base(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if c.DedupRetention != 336*time.Hour || c.LogLevel != slog.LevelInfo || c.PartitionAttr != "pk" || c.SortAttr != "sk" ||
		c.UserPrefix != "USER#" || c.KeyPrefix != "ENTITLEMENT#" || !c.StateCache || c.ApplyConcurrency != 8 || c.WorkerPollers != 4 ||
		c.CoalesceWindow != config.DefaultCoalesceWindow {
		t.Errorf("defaults: %+v", c)
	}
}

func TestLoadNamesEveryBadSetting(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"nothing set", map[string]string{}, []string{"ENTITLEMENTS_TABLE: is required", "USAGE_LEDGER_TABLE: is required"}},
		{"short table name", base(map[string]string{"ENTITLEMENTS_TABLE": "ab"}), []string{"ENTITLEMENTS_TABLE", "not a valid DynamoDB table name"}},
		{"same table twice", base(map[string]string{"USAGE_LEDGER_TABLE": "ent-table"}), []string{"must differ"}},
		{"bad log level", base(map[string]string{"LOG_LEVEL": "loud"}), []string{"LOG_LEVEL"}},
		{"bad retention", base(map[string]string{"DEDUP_RETENTION": "soon"}), []string{"DEDUP_RETENTION"}},
		{"retention too short", base(map[string]string{"DEDUP_RETENTION": "5m"}), []string{"shorter than 1h"}},
		{"bad queue URL", base(map[string]string{"USAGE_EVENT_QUEUE_URL": "my-queue"}), []string{"USAGE_EVENT_QUEUE_URL", "not a queue URL"}},
		{"bad concurrency", base(map[string]string{"APPLY_CONCURRENCY": "0"}), []string{"APPLY_CONCURRENCY"}},
		{"bad boolean", base(map[string]string{"STATE_CACHE": "maybe"}), []string{"STATE_CACHE"}},
		{"coalesce window not a duration", base(map[string]string{"COALESCE_WINDOW": "25"}), []string{"COALESCE_WINDOW", "not a Go duration"}},
		{"coalesce window negative", base(map[string]string{"COALESCE_WINDOW": "-1ms"}), []string{"COALESCE_WINDOW"}},
		{"coalesce window beyond a second", base(map[string]string{"COALESCE_WINDOW": "2s"}), []string{"COALESCE_WINDOW", "from 0s to 1s"}},
		{"same key attribute twice", base(map[string]string{"ENTITLEMENT_SK_ATTRIBUTE": "pk"}), []string{"ENTITLEMENT_SK_ATTRIBUTE: must differ"}},
		{"several at once", base(map[string]string{"LOG_LEVEL": "loud", "DEDUP_RETENTION": "5m", "ENTITLEMENT_PK_ATTRIBUTE": strings.Repeat("a", 256)}),
			[]string{"LOG_LEVEL", "DEDUP_RETENTION", "ENTITLEMENT_PK_ATTRIBUTE: must be 1-255 characters"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(env(tt.env))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 168 * time.Hour, "1h": time.Hour, "36h30m": 36*time.Hour + 30*time.Minute} {
		if got, err := config.ParseRetention(in); err != nil || got != want {
			t.Errorf("%s: got %v %v, want %v", in, got, err, want)
		}
	}
}

// TestLoadKeyLayout: one parser for the key layout, shared by the service
// and usagectl.
func TestLoadKeyLayout(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    config.KeyLayout
		wantErr string
	}{
		{"unset: the documented layout", nil, config.DefaultKeyLayout, ""},
		{"all set; attribute names trimmed, prefixes kept as written",
			map[string]string{"ENTITLEMENT_PK_ATTRIBUTE": " PK ", "ENTITLEMENT_SK_ATTRIBUTE": "SK", "ENTITLEMENT_PK_PREFIX": "u ", "ENTITLEMENT_SK_PREFIX": " e|", "POOL_PK_PREFIX": "p "},
			config.KeyLayout{PartitionAttr: "PK", SortAttr: "SK", UserPrefix: "u ", KeyPrefix: " e|", PoolPrefix: "p "}, ""},
		{"a pool prefix a user prefix begins with", map[string]string{"ENTITLEMENT_PK_PREFIX": "USER#", "POOL_PK_PREFIX": "USER#POOL#"}, config.KeyLayout{}, "POOL_PK_PREFIX: neither it nor ENTITLEMENT_PK_PREFIX may begin with the other"},
		{"blank attribute name: the default", map[string]string{"ENTITLEMENT_PK_ATTRIBUTE": "  "}, config.DefaultKeyLayout, ""},
		{"same attribute twice", map[string]string{"ENTITLEMENT_PK_ATTRIBUTE": "k", "ENTITLEMENT_SK_ATTRIBUTE": "k"}, config.KeyLayout{}, "ENTITLEMENT_SK_ATTRIBUTE: must differ from ENTITLEMENT_PK_ATTRIBUTE"},
		{"attribute name too long", map[string]string{"ENTITLEMENT_SK_ATTRIBUTE": strings.Repeat("s", 256)}, config.KeyLayout{}, "ENTITLEMENT_SK_ATTRIBUTE: must be 1-255 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.LoadKeyLayout(env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestDefaultKeyLayoutIsTheStoresDefault(t *testing.T) {
	if got := dynamodb.EntitlementKeys(config.DefaultKeyLayout); got != dynamodb.DefaultEntitlementKeys {
		t.Errorf("config.DefaultKeyLayout %+v, dynamodb.DefaultEntitlementKeys %+v", got, dynamodb.DefaultEntitlementKeys)
	}
}

func TestLoadDedupRetention(t *testing.T) {
	tests := []struct {
		value   string
		want    time.Duration
		wantErr string
	}{
		{"", usage.DefaultDedupRetention, ""},
		{" 14d ", 336 * time.Hour, ""},
		{"720h", 720 * time.Hour, ""},
		{"30m", 0, "DEDUP_RETENTION: \"30m\" is shorter than 1h"},
		{"two weeks", 0, "DEDUP_RETENTION: \"two weeks\" is not a duration"},
	}
	for _, tt := range tests {
		got, err := config.LoadDedupRetention(env(map[string]string{"DEDUP_RETENTION": tt.value}))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: error %v, want %q", tt.value, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: got %v, %v; want %v", tt.value, got, err, tt.want)
		}
	}
}

// TestNotifySettings: without a topic nothing is notified (Notify nil);
// with one, the thresholds default to 80,100, an empty NOTIFY_THRESHOLDS
// means none, NOTIFY_LIMIT_REJECTED=false turns rejections off and
// NOTIFY_OVERAGE=false the overage's start; Notify is nil when nothing at
// all is to be notified.
func TestNotifySettings(t *testing.T) {
	const topic = "arn:aws:sns:us-east-1:123456789012:usage-notifications"
	unset := "\x00unset"
	tests := []struct {
		name          string
		env           map[string]string
		want          []string // thresholds; nil Notify when wantNil
		limitRejected bool
		overage       bool
		wantNil       bool
		interval      time.Duration
	}{
		{"no topic: nothing recorded", map[string]string{}, nil, false, false, true, time.Minute},
		{"no topic, thresholds still checked but unused", map[string]string{"NOTIFY_THRESHOLDS": "50"}, nil, false, false, true, time.Minute},
		{"topic: the defaults", map[string]string{"NOTIFY_TOPIC_ARN": topic}, []string{"80", "100"}, true, true, false, time.Minute},
		{"topic, FIFO", map[string]string{"NOTIFY_TOPIC_ARN": topic + ".fifo"}, []string{"80", "100"}, true, true, false, time.Minute},
		{"explicitly empty thresholds: rejections and overage only", map[string]string{"NOTIFY_TOPIC_ARN": topic, "NOTIFY_THRESHOLDS": ""}, nil, true, true, false, time.Minute},
		{"nothing to notify at all: nil", map[string]string{"NOTIFY_TOPIC_ARN": topic, "NOTIFY_THRESHOLDS": " ", "NOTIFY_LIMIT_REJECTED": "false", "NOTIFY_OVERAGE": "false"},
			nil, false, false, true, time.Minute},
		{"the overage alone is something to notify", map[string]string{"NOTIFY_TOPIC_ARN": topic, "NOTIFY_THRESHOLDS": "", "NOTIFY_LIMIT_REJECTED": "false"},
			nil, false, true, false, time.Minute},
		{"overage off", map[string]string{"NOTIFY_TOPIC_ARN": topic, "NOTIFY_OVERAGE": " off "}, []string{"80", "100"}, true, false, false, time.Minute},
		{"overage explicitly on, rejections off", map[string]string{"NOTIFY_TOPIC_ARN": topic, "NOTIFY_OVERAGE": "TRUE", "NOTIFY_LIMIT_REJECTED": "0"},
			[]string{"80", "100"}, false, true, false, time.Minute},
		{"empty overage reads as the default", map[string]string{"NOTIFY_TOPIC_ARN": topic, "NOTIFY_OVERAGE": ""}, []string{"80", "100"}, true, true, false, time.Minute},
		{"sorted, repeats once, decimals exact", map[string]string{"NOTIFY_TOPIC_ARN": topic, "NOTIFY_THRESHOLDS": "100, 50,80.0,80,12.5", "NOTIFY_LIMIT_REJECTED": "off"},
			[]string{"12.5", "50", "80", "100"}, false, true, false, time.Minute},
		{"interval", map[string]string{"NOTIFY_TOPIC_ARN": topic, "NOTIFY_RECOVERY_INTERVAL": "15s"}, []string{"80", "100"}, true, true, false, 15 * time.Second},
		{"unset thresholds read as the default", map[string]string{"NOTIFY_TOPIC_ARN": topic, "NOTIFY_THRESHOLDS": unset}, []string{"80", "100"}, true, true, false, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := base(tt.env)
			c, err := config.LoadEnv(func(k string) (string, bool) {
				v, ok := env[k]
				if v == unset {
					return "", false
				}
				return v, ok
			})
			if err != nil {
				t.Fatal(err)
			}
			if c.NotifyRecoveryInterval != tt.interval {
				t.Errorf("interval %v, want %v", c.NotifyRecoveryInterval, tt.interval)
			}
			if tt.wantNil {
				if c.Notify != nil {
					t.Errorf("Notify %+v, want nil", c.Notify)
				}
				return
			}
			if c.Notify == nil {
				t.Fatal("Notify nil")
			}
			var got []string
			for _, d := range c.Notify.Thresholds {
				got = append(got, d.String())
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") || c.Notify.LimitRejected != tt.limitRejected || c.Notify.OverageStarted != tt.overage {
				t.Errorf("thresholds %v limitRejected %v overage %v, want %v %v %v", got, c.Notify.LimitRejected, c.Notify.OverageStarted,
					tt.want, tt.limitRejected, tt.overage)
			}
		})
	}
}

func TestNotifySettingsErrorsAreReportedWithTheOthers(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"NOTIFY_THRESHOLDS": "80,0"}, []string{`NOTIFY_THRESHOLDS: "0"`, "greater than 0 and at most 100"}},
		{map[string]string{"NOTIFY_THRESHOLDS": "101"}, []string{`NOTIFY_THRESHOLDS: "101"`}},
		{map[string]string{"NOTIFY_THRESHOLDS": "80,,100"}, []string{`NOTIFY_THRESHOLDS: ""`}},
		{map[string]string{"NOTIFY_THRESHOLDS": "80%"}, []string{`NOTIFY_THRESHOLDS: "80%"`}},
		{map[string]string{"NOTIFY_THRESHOLDS": "-5"}, []string{`NOTIFY_THRESHOLDS: "-5"`}},
		{map[string]string{"NOTIFY_LIMIT_REJECTED": "sometimes"}, []string{"NOTIFY_LIMIT_REJECTED"}},
		{map[string]string{"NOTIFY_OVERAGE": "maybe"}, []string{`NOTIFY_OVERAGE: "maybe" is not a boolean`}},
		{map[string]string{"NOTIFY_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t", "NOTIFY_OVERAGE": "2"}, []string{"NOTIFY_OVERAGE"}},
		{map[string]string{"NOTIFY_RECOVERY_INTERVAL": "60"}, []string{"NOTIFY_RECOVERY_INTERVAL", "1s to 24h"}},
		{map[string]string{"NOTIFY_RECOVERY_INTERVAL": "100ms"}, []string{"NOTIFY_RECOVERY_INTERVAL"}},
		{map[string]string{"NOTIFY_TOPIC_ARN": "usage-notifications"}, []string{"NOTIFY_TOPIC_ARN", "not an SNS topic ARN"}},
		{map[string]string{"NOTIFY_TOPIC_ARN": "arn:aws:sqs:us-east-1:123456789012:q"}, []string{"NOTIFY_TOPIC_ARN"}},
		{map[string]string{"LOG_LEVEL": "loud", "NOTIFY_THRESHOLDS": "x", "NOTIFY_RECOVERY_INTERVAL": "soon"}, []string{"LOG_LEVEL", "NOTIFY_THRESHOLDS", "NOTIFY_RECOVERY_INTERVAL"}},
		{map[string]string{"ENTITLEMENTS_TABLE": "", "NOTIFY_LIMIT_REJECTED": "x", "NOTIFY_OVERAGE": "y"}, []string{"ENTITLEMENTS_TABLE", "NOTIFY_LIMIT_REJECTED", "NOTIFY_OVERAGE"}},
	} {
		_, err := config.Load(env(base(tt.env)))
		if err == nil {
			t.Errorf("%v: no error", tt.env)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not mention %q", tt.env, err, w)
			}
		}
	}
}

func TestLoadCoalesceWindow(t *testing.T) {
	for in, want := range map[string]time.Duration{"0s": 0, "0": 0, "50ms": 50 * time.Millisecond, "1s": time.Second} {
		c, err := config.Load(env(base(map[string]string{"COALESCE_WINDOW": in})))
		if err != nil || c.CoalesceWindow != want {
			t.Errorf("COALESCE_WINDOW=%s: %v, %v; want %v", in, c.CoalesceWindow, err, want)
		}
	}
}

func TestTracingIsOffUnlessConfigured(t *testing.T) {
	for _, tt := range []struct {
		env     map[string]string
		enabled bool
	}{
		{nil, false},
		{map[string]string{"OTEL_SERVICE_NAME": "usage"}, false},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "OTLP"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector.example:4318/v1/traces"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, false},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, true},
	} {
		c, err := config.Load(env(base(tt.env)))
		if err != nil {
			t.Errorf("%v: %v", tt.env, err)
			continue
		}
		if c.Tracing.Enabled != tt.enabled || !c.Tracing.IDs {
			t.Errorf("%v: %+v, want enabled %v and IDs", tt.env, c.Tracing, tt.enabled)
		}
	}
	c, err := config.Load(env(base(map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "TRACE_IDS": "off"})))
	if err != nil || !c.Tracing.Enabled || c.Tracing.IDs {
		t.Errorf("TRACE_IDS=off: %+v, %v", c.Tracing, err)
	}
}

func TestTracingErrorsAreReportedWithTheOthers(t *testing.T) {
	_, err := config.Load(env(base(map[string]string{
		"LOG_LEVEL": "loud", "TRACE_IDS": "perhaps", "OTEL_SDK_DISABLED": "maybe", "OTEL_TRACES_EXPORTER": "jaeger",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
	})))
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"LOG_LEVEL", "TRACE_IDS", "OTEL_SDK_DISABLED", `OTEL_TRACES_EXPORTER: "jaeger"`,
		"OTEL_EXPORTER_OTLP_ENDPOINT", `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "grpc" is not supported`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}
