package infra_test

// The module's side of usage notifications (docs/notifications.md): the
// ledger's index of unpublished notifications exactly as the Go code
// creates it, the topic, who may publish to it, the schedule that runs the
// recovery sweep in the queue consumer, and the alarm on the outbox.

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/config"
	"github.com/usage-event-service/usage-event-service/metrics"
)

const (
	sweepRuleARN = "aws_cloudwatch_event_rule.sweeps.arn"
	consumerARN  = "aws_lambda_function.this.arn"
)

// recordingAdmin answers dynamodb.CreateLedgerTable as DynamoDB would for a
// new table, and keeps what it was asked to create.
type recordingAdmin struct {
	dynamodb.AdminClient // every other call panics: CreateLedgerTable makes none
	created              *awsdynamodb.CreateTableInput
}

func (r *recordingAdmin) CreateTable(_ context.Context, in *awsdynamodb.CreateTableInput, _ ...func(*awsdynamodb.Options)) (*awsdynamodb.CreateTableOutput, error) {
	r.created = in
	return &awsdynamodb.CreateTableOutput{}, nil
}

func (r *recordingAdmin) DescribeTable(_ context.Context, in *awsdynamodb.DescribeTableInput, _ ...func(*awsdynamodb.Options)) (*awsdynamodb.DescribeTableOutput, error) {
	return &awsdynamodb.DescribeTableOutput{Table: &types.TableDescription{TableName: in.TableName, TableStatus: types.TableStatusActive}}, nil
}

func (r *recordingAdmin) UpdateTimeToLive(context.Context, *awsdynamodb.UpdateTimeToLiveInput, ...func(*awsdynamodb.Options)) (*awsdynamodb.UpdateTimeToLiveOutput, error) {
	return &awsdynamodb.UpdateTimeToLiveOutput{}, nil
}

// goLedgerTable is the CreateTableInput dynamodb.CreateLedgerTable sends:
// what usagectl setup, the demo and the tests create.
func goLedgerTable(t *testing.T) *awsdynamodb.CreateTableInput {
	t.Helper()
	r := &recordingAdmin{}
	if _, err := dynamodb.CreateLedgerTable(context.Background(), r, ledgerName); err != nil {
		t.Fatalf("CreateLedgerTable: %v", err)
	}
	if r.created == nil {
		t.Fatal("CreateLedgerTable created no table")
	}
	return r.created
}

// The table the module creates and the one the Go code creates are the
// same: keys, attribute types and every global secondary index (name,
// keys, projection), so the recovery sweep's Query of dynamodb.PendingIndex
// finds in AWS what it finds locally.
func TestLedgerTableHasTheIndexesTheGoCodeCreates(t *testing.T) {
	m := loadModule(t, moduleDir)
	tb := m.resource(t, "aws_dynamodb_table", "ledger")
	e := m.evaluator(t, inputs(nil))
	want := goLedgerTable(t)

	t.Run("keys", func(t *testing.T) {
		var hash, rng string
		for _, k := range want.KeySchema {
			switch k.KeyType {
			case types.KeyTypeHash:
				hash = aws.ToString(k.AttributeName)
			case types.KeyTypeRange:
				rng = aws.ToString(k.AttributeName)
			}
		}
		if got := asString(t, e.evalAttr(t, tb, "hash_key")); got != hash {
			t.Errorf("hash_key %q, the Go code's is %q", got, hash)
		}
		if got := asString(t, e.evalAttr(t, tb, "range_key")); got != rng {
			t.Errorf("range_key %q, the Go code's is %q", got, rng)
		}
	})
	t.Run("attribute definitions", func(t *testing.T) {
		var got, wantAttrs []string
		for _, a := range nested(tb, "attribute") {
			got = append(got, asString(t, e.evalAttr(t, a, "name"))+" "+asString(t, e.evalAttr(t, a, "type")))
		}
		for _, a := range want.AttributeDefinitions {
			wantAttrs = append(wantAttrs, aws.ToString(a.AttributeName)+" "+string(a.AttributeType))
		}
		if !slices.Equal(sorted(got), sorted(wantAttrs)) {
			t.Errorf("attributes %v, the Go code's are %v", sorted(got), sorted(wantAttrs))
		}
	})
	t.Run("global secondary indexes", func(t *testing.T) {
		type index struct{ name, hash, rng, projection string }
		var got, wantIx []index
		for _, ix := range nested(tb, "global_secondary_index") {
			got = append(got, index{
				asString(t, e.evalAttr(t, ix, "name")), asString(t, e.evalAttr(t, ix, "hash_key")),
				asString(t, e.evalAttr(t, ix, "range_key")), asString(t, e.evalAttr(t, ix, "projection_type")),
			})
			for _, a := range []string{"non_key_attributes", "read_capacity", "write_capacity"} {
				if _, ok := ix.Body.Attributes[a]; ok {
					t.Errorf("index sets %s: the Go code's projects ALL, on demand", a)
				}
			}
		}
		for _, ix := range want.GlobalSecondaryIndexes {
			w := index{name: aws.ToString(ix.IndexName), projection: string(ix.Projection.ProjectionType)}
			for _, k := range ix.KeySchema {
				if k.KeyType == types.KeyTypeHash {
					w.hash = aws.ToString(k.AttributeName)
				} else {
					w.rng = aws.ToString(k.AttributeName)
				}
			}
			wantIx = append(wantIx, w)
		}
		if !slices.Equal(got, wantIx) {
			t.Errorf("indexes %+v, the Go code's are %+v", got, wantIx)
		}
		if !slices.ContainsFunc(wantIx, func(ix index) bool { return ix.name == dynamodb.PendingIndex }) {
			t.Errorf("the Go code creates no index %s", dynamodb.PendingIndex)
		}
	})
	t.Run("the sweep's grant names the index", func(t *testing.T) {
		if got := asString(t, e.local(t, "pending_index_name")); got != dynamodb.PendingIndex {
			t.Errorf("local.pending_index_name %q, want dynamodb.PendingIndex %q", got, dynamodb.PendingIndex)
		}
	})
}

// notificationBlocks are everything notifications_enabled switches.
func notificationBlocks(t *testing.T, m *tfModule) []*hclsyntax.Block {
	t.Helper()
	return []*hclsyntax.Block{
		m.resource(t, "aws_sns_topic", "notifications"),
		m.resource(t, "aws_sns_topic_policy", "notifications"),
		m.block(t, "data", "aws_iam_policy_document", "notifications_topic"),
		m.resource(t, "aws_cloudwatch_metric_alarm", "notifications_unpublished"),
	}
}

func TestNotificationsExistUnlessDisabled(t *testing.T) {
	m := loadModule(t, moduleDir)
	for _, c := range []struct {
		in   map[string]cty.Value
		want int64
	}{{nil, 1}, {map[string]cty.Value{"notifications_enabled": cty.True}, 1}, {map[string]cty.Value{"notifications_enabled": cty.False}, 0}} {
		e := m.evaluator(t, inputs(c.in))
		for _, b := range notificationBlocks(t, m) {
			if got := e.instances(t, b); got != c.want {
				t.Errorf("inputs %v: %s %s has %d instances, want %d", c.in, b.Type, strings.Join(b.Labels, "."), got, c.want)
			}
		}
	}
}

func TestNotificationsTopic(t *testing.T) {
	m := loadModule(t, moduleDir)
	topic := m.resource(t, "aws_sns_topic", "notifications")
	for _, c := range []struct {
		name string
		in   map[string]cty.Value
		key  string
	}{
		{"is encrypted with the AWS managed key by default", nil, "alias/aws/sns"},
		{"is encrypted with the given customer managed key", map[string]cty.Value{"notifications_kms_key_arn": cty.StringVal(notificationsKeyARN)}, notificationsKeyARN},
		{"keeps its own key when the queues have one", map[string]cty.Value{"kms_key_arn": cty.StringVal(kmsKeyARN)}, "alias/aws/sns"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := m.evaluator(t, inputs(c.in))
			if got := asString(t, e.evalAttr(t, topic, "name")); got != topicName {
				t.Errorf("name %q, want %q", got, topicName)
			}
			if got := asString(t, e.evalAttr(t, topic, "kms_master_key_id")); got != c.key {
				t.Errorf("kms_master_key_id %q, want %q", got, c.key)
			}
		})
	}
	for _, c := range []struct {
		name string
		in   map[string]cty.Value
		fifo bool
		want string
	}{
		{"is a standard topic by default", nil, false, topicName},
		{"is a FIFO topic named .fifo when asked", map[string]cty.Value{"notifications_fifo": cty.True}, true, topicName + ".fifo"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := m.evaluator(t, inputs(c.in))
			if got := asString(t, e.evalAttr(t, topic, "name")); got != c.want {
				t.Errorf("name %q, want %q", got, c.want)
			}
			if got := e.evalAttr(t, topic, "fifo_topic"); !got.RawEquals(cty.BoolVal(c.fifo)) {
				t.Errorf("fifo_topic = %#v, want %v", got, c.fifo)
			}
			// The functions set each message's deduplication ID (its
			// notificationId): content-based deduplication would drop two
			// notifications whose bodies happen to be equal, and nothing else.
			if _, ok := topic.Body.Attributes["content_based_deduplication"]; ok {
				t.Error("content_based_deduplication is set")
			}
		})
	}
	t.Run("policy admits this account only and denies publishing without TLS", func(t *testing.T) {
		e := m.evaluator(t, inputs(nil))
		pol := m.resource(t, "aws_sns_topic_policy", "notifications")
		if got := asString(t, e.evalAttr(t, pol, "arn")); got != topicARN {
			t.Errorf("topic policy on %s", got)
		}
		stmts := e.policyStatements(t, policyDocName(t, asString(t, e.evalAttr(t, pol, "policy"))))
		if !slices.ContainsFunc(stmts, func(st statement) bool {
			return st.Effect == "Deny" && slices.Equal(st.Actions, []string{"sns:Publish"}) && slices.Equal(st.Resources, []string{topicARN}) &&
				len(st.Principals) == 1 && st.Principals[0].Type == "*" && slices.Equal(st.Principals[0].Identifiers, []string{"*"}) &&
				slices.ContainsFunc(st.Conditions, func(c condition) bool {
					return c.Test == "Bool" && c.Variable == "aws:SecureTransport" && slices.Equal(c.Values, []string{"false"})
				})
		}) {
			t.Errorf("topic policy %v lacks Deny sns:Publish for everyone when aws:SecureTransport is false", stmts)
		}
		for _, st := range stmts {
			if st.Effect != "Allow" {
				continue
			}
			if !slices.Equal(st.Actions, []string{"sns:Subscribe"}) || !slices.Equal(st.Resources, []string{topicARN}) {
				t.Errorf("%s: the topic policy may allow only sns:Subscribe on the topic", st)
			}
			for _, p := range st.Principals {
				if p.Type != "AWS" || !slices.Equal(p.Identifiers, []string{"arn:aws:iam::" + testAccountID + ":root"}) {
					t.Errorf("%s: allows %v, want only this account", st, p)
				}
			}
			if !slices.ContainsFunc(st.Conditions, func(c condition) bool {
				return c.Test == "StringEquals" && c.Variable == "aws:PrincipalAccount" && slices.Equal(c.Values, []string{testAccountID})
			}) {
				t.Errorf("%s: want an aws:PrincipalAccount condition on this account", st)
			}
		}
	})
}

// Both functions publish right after their writes; nothing else may.
func TestRolesPublishOnlyToTheNotificationsTopic(t *testing.T) {
	m := loadModule(t, moduleDir)
	for _, role := range roles {
		for _, c := range configurations {
			t.Run(role+"/"+c.name, func(t *testing.T) {
				in := inputs(c.in)
				want := map[string][]string{}
				if notificationsEnabled(in) {
					want[topicARN] = []string{"sns:Publish"}
				}
				stmts := rolePolicy(t, m.evaluator(t, in), role)
				assertGrants(t, "SNS", grants(t, stmts, "sns:"), want)
				if role == "decisions" {
					keys := map[string][]string{}
					if withNotificationsKey(in) {
						keys[notificationsKeyARN] = []string{"kms:Decrypt", "kms:GenerateDataKey"}
					}
					assertGrants(t, "KMS", grants(t, stmts, "kms:"), keys)
					assertKeysUsedOnlyVia(t, stmts)
				}
			})
		}
	}
}

// EventBridge invokes the queue consumer every minute with its own scheduled
// event, and only that rule may: the notifications' recovery sweep and the
// expired holds' run then. The schedule stays without notifications (the
// holds need it).
func TestSweepSchedule(t *testing.T) {
	m := loadModule(t, moduleDir)
	e := m.evaluator(t, inputs(nil))
	rule := m.resource(t, "aws_cloudwatch_event_rule", "sweeps")
	target := m.resource(t, "aws_cloudwatch_event_target", "sweeps")
	perm := m.resource(t, "aws_lambda_permission", "sweeps")
	for _, in := range []map[string]cty.Value{nil, {"notifications_enabled": cty.False}} {
		for _, b := range []*hclsyntax.Block{rule, target, perm} {
			if got := m.evaluator(t, inputs(in)).instances(t, b); got != 1 {
				t.Errorf("inputs %v: %s has %d instances, want 1", in, strings.Join(b.Labels, "."), got)
			}
		}
	}
	for _, c := range []struct {
		name string
		b    *hclsyntax.Block
		attr string
		want string
	}{
		{"the rule is named after project and env", rule, "name", sweepRuleName},
		{"the rule fires every minute", rule, "schedule_expression", "rate(1 minute)"},
		{"the target is the rule's", target, "rule", "aws_cloudwatch_event_rule.sweeps.name"},
		{"the target is the queue consumer", target, "arn", consumerARN},
		{"the permission lets EventBridge invoke", perm, "principal", "events.amazonaws.com"},
		{"the permission is for invoking only", perm, "action", "lambda:InvokeFunction"},
		{"the permission is on the queue consumer", perm, "function_name", "aws_lambda_function.this.function_name"},
		{"the permission admits this rule only", perm, "source_arn", sweepRuleARN},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := asString(t, e.evalAttr(t, c.b, c.attr)); got != c.want {
				t.Errorf("%s = %q, want %q", c.attr, got, c.want)
			}
		})
	}
	t.Run("the target passes EventBridge's own event", func(t *testing.T) {
		// The binary tells a scheduled event ("source": "aws.events") from
		// an SQS batch by its shape; a constant input would hide it.
		for _, a := range []string{"input", "input_path", "input_transformer"} {
			if _, ok := target.Body.Attributes[a]; ok {
				t.Errorf("target sets %s", a)
			}
		}
		if len(nested(target, "input_transformer")) > 0 {
			t.Error("target has an input_transformer block")
		}
	})
	t.Run("nothing schedules the decisions function", func(t *testing.T) {
		for _, b := range m.blocksOf("resource", "aws_cloudwatch_event_target") {
			if got := asString(t, e.evalAttr(t, b, "arn")); got != consumerARN {
				t.Errorf("%s targets %s", strings.Join(b.Labels, "."), got)
			}
		}
		for _, b := range m.blocksOf("resource", "aws_lambda_permission") {
			if got := asString(t, e.evalAttr(t, b, "function_name")); strings.Contains(got, "decisions") {
				t.Errorf("%s lets %s be invoked", strings.Join(b.Labels, "."), got)
			}
		}
	})
}

func TestOutboxAlarm(t *testing.T) {
	m := loadModule(t, moduleDir)
	alarm := m.resource(t, "aws_cloudwatch_metric_alarm", "notifications_unpublished")
	for _, c := range []struct {
		in   map[string]cty.Value
		want int64
	}{{nil, 300}, {map[string]cty.Value{"oldest_unpublished_notification_alarm_seconds": cty.NumberIntVal(900)}, 900}} {
		e := m.evaluator(t, inputs(c.in))
		if got := asString(t, e.evalAttr(t, alarm, "namespace")); got != metrics.Namespace {
			t.Errorf("namespace %q, want metrics.Namespace %q", got, metrics.Namespace)
		}
		if got := asString(t, e.evalAttr(t, alarm, "metric_name")); got != "OldestUnpublishedNotificationAge" {
			t.Errorf("metric %q", got)
		}
		dims := e.evalAttr(t, alarm, "dimensions").AsValueMap()
		if len(dims) != 1 || asString(t, dims["FunctionName"]) != "aws_lambda_function.this.function_name" {
			t.Errorf("dimensions %v, want FunctionName of the queue consumer (the sweep measures it there)", dims)
		}
		if got := asString(t, e.evalAttr(t, alarm, "statistic")); got != "Maximum" {
			t.Errorf("statistic %q", got)
		}
		if got := asInt(t, e.evalAttr(t, alarm, "threshold")); got != c.want {
			t.Errorf("threshold %d, want %d", got, c.want)
		}
	}
	t.Run("is on the dashboard's alarm list", func(t *testing.T) {
		body := asString(t, m.evaluator(t, inputs(nil)).evalAttr(t, m.resource(t, "aws_cloudwatch_dashboard", "this"), "dashboard_body"))
		if !strings.Contains(body, `"aws_cloudwatch_metric_alarm.notifications_unpublished[0].arn"`) {
			t.Error("the dashboard does not show the alarm")
		}
		body = asString(t, m.evaluator(t, inputs(map[string]cty.Value{"notifications_enabled": cty.False})).evalAttr(t, m.resource(t, "aws_cloudwatch_dashboard", "this"), "dashboard_body"))
		if strings.Contains(body, "Notification") {
			t.Error("without notifications the dashboard still charts them")
		}
	})
}

// functionEnv is the queue consumer's environment for the inputs, with the
// values AWS fills in for the placeholders the harness evaluates to.
func functionEnv(t *testing.T, m *tfModule, in map[string]cty.Value) map[string]string {
	t.Helper()
	fn := m.resource(t, "aws_lambda_function", "this")
	env := map[string]string{}
	for k, v := range m.evaluator(t, inputs(in)).eval(t, attr(t, oneNested(t, fn, "environment"), "variables").Expr, nil).AsValueMap() {
		env[k] = asString(t, v)
		if r, ok := awsValues[env[k]]; ok {
			env[k] = r
		}
	}
	return env
}

// loadFunctionConfig is what the function makes of an environment
// (config.LoadEnv: an empty variable is set, not unset, as in Lambda).
func loadFunctionConfig(env map[string]string) (config.Config, error) {
	return config.LoadEnv(func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
}

// NOTIFY_RECOVERY_INTERVAL: what plan accepts (the variable's validation,
// then the topic's precondition) is exactly what the function accepts at
// start, and it reads the same duration.
func TestRecoveryIntervalIsReadLikeTheFunctionsReadIt(t *testing.T) {
	m := loadModule(t, moduleDir)
	topic := m.resource(t, "aws_sns_topic", "notifications")
	for _, s := range []string{
		"1m", "30s", "1m30s", "1.5m", "2h", "24h", "1s", "1000ms", "23h59m60s",
		"500ms", "0.5s", "0s", "0.0m", "25h", "24h0m1s", "1", "-1m", "1 m", "m", "1d",
	} {
		t.Run(strconv.Quote(s), func(t *testing.T) {
			over := map[string]cty.Value{"notify_recovery_interval": cty.StringVal(s)}
			tfOK := validationPasses(t, m, "notify_recovery_interval", cty.StringVal(s))
			if tfOK {
				for _, pre := range nested(oneNested(t, topic, "lifecycle"), "precondition") {
					tfOK = tfOK && m.evaluator(t, inputs(over)).evalAttr(t, pre, "condition").True()
				}
			}
			env := functionEnv(t, m, nil)
			env["NOTIFY_RECOVERY_INTERVAL"] = s
			cfg, err := loadFunctionConfig(env)
			if tfOK != (err == nil) {
				t.Fatalf("module accepts = %v, the function accepts = %v (%v)", tfOK, err == nil, err)
			}
			if d, _ := time.ParseDuration(s); tfOK && cfg.NotifyRecoveryInterval != d {
				t.Errorf("the function reads %v, want %v", cfg.NotifyRecoveryInterval, d)
			}
		})
	}
}

// NOTIFY_THRESHOLDS is rendered as the function reads it: the function's
// thresholds are the module's input, and [] is none.
func TestThresholdsReachTheFunction(t *testing.T) {
	m := loadModule(t, moduleDir)
	for _, c := range []struct {
		in   []cty.Value // nil: the default
		want []string
	}{
		{nil, []string{"80", "100"}},
		{[]cty.Value{cty.NumberIntVal(50), cty.NumberFloatVal(75.5), cty.NumberIntVal(100)}, []string{"50", "75.5", "100"}},
		{[]cty.Value{cty.NumberFloatVal(0.25)}, []string{"0.25"}},
		{[]cty.Value{}, nil},
	} {
		over := map[string]cty.Value{}
		if c.in != nil {
			over["notify_thresholds"] = cty.ListValEmpty(cty.Number)
			if len(c.in) > 0 {
				over["notify_thresholds"] = cty.ListVal(c.in)
			}
		}
		cfg, err := loadFunctionConfig(functionEnv(t, m, over))
		if err != nil {
			t.Fatalf("notify_thresholds %v: the function refuses the environment: %v", c.in, err)
		}
		var got []string
		if cfg.Notify != nil {
			for _, d := range cfg.Notify.Thresholds {
				got = append(got, d.String())
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("notify_thresholds %v: the function notifies at %v, want %v", c.in, got, c.want)
		}
		if cfg.NotifyTopicARN != awsValues[topicARN] || cfg.Notify == nil || !cfg.Notify.LimitRejected || !cfg.Notify.OverageStarted {
			t.Errorf("notify_thresholds %v: the function publishes to %q, limit rejections %v", c.in, cfg.NotifyTopicARN, cfg.Notify)
		}
	}
	t.Run("nothing without notifications", func(t *testing.T) {
		cfg, err := loadFunctionConfig(functionEnv(t, m, map[string]cty.Value{"notifications_enabled": cty.False}))
		if err != nil || cfg.NotifyTopicARN != "" || cfg.Notify != nil {
			t.Errorf("the function publishes to %q with %+v (%v), want nothing", cfg.NotifyTopicARN, cfg.Notify, err)
		}
	})
	t.Run("no limit rejections when asked", func(t *testing.T) {
		cfg, err := loadFunctionConfig(functionEnv(t, m, map[string]cty.Value{"notify_limit_rejected": cty.False}))
		if err != nil || cfg.Notify == nil || cfg.Notify.LimitRejected {
			t.Errorf("notify_limit_rejected = false: the function notifies %+v (%v)", cfg.Notify, err)
		}
	})
	t.Run("no overage starts when asked", func(t *testing.T) {
		cfg, err := loadFunctionConfig(functionEnv(t, m, map[string]cty.Value{"notify_overage": cty.False}))
		if err != nil || cfg.Notify == nil || cfg.Notify.OverageStarted || !cfg.Notify.LimitRejected {
			t.Errorf("notify_overage = false: the function notifies %+v (%v)", cfg.Notify, err)
		}
	})
	t.Run("nothing to notify: no Notify", func(t *testing.T) {
		cfg, err := loadFunctionConfig(functionEnv(t, m, map[string]cty.Value{
			"notify_thresholds": cty.ListValEmpty(cty.Number), "notify_limit_rejected": cty.False, "notify_overage": cty.False,
		}))
		if err != nil || cfg.NotifyTopicARN == "" || cfg.Notify != nil {
			t.Errorf("every kind off: the function publishes to %q with %+v (%v), want a topic and nothing to notify", cfg.NotifyTopicARN, cfg.Notify, err)
		}
	})
}
