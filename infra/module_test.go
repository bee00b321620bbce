package infra_test

// Offline checks of the Terraform module infra/services/usage-event-service
// (and the example that calls it). Nothing here needs terraform or a
// provider: the HCL is parsed and evaluated by hcleval_test.go. Least
// privilege is checked against the Go code itself: the DynamoDB grants of both
// execution roles (the queue consumer's and the decisions function's) must
// equal dynamodb.IAMActions, the dashboard must chart every usage.Reasons in
// metrics.Namespace, and DEDUP_RETENTION must parse as config.ParseRetention
// parses it.

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/config"
	"github.com/usage-event-service/usage-event-service/metrics"
	"github.com/usage-event-service/usage-event-service/usage"
)

const (
	moduleDir  = "services/usage-event-service"
	exampleDir = "examples/usage-event-service"

	entitlementsTableName = "acme-prod-entitlements"
	entitlementsTableARN  = "arn:aws:dynamodb:eu-west-1:111122223333:table/acme-prod-entitlements"
	kmsKeyARN             = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	snsTopicARN           = "arn:aws:sns:eu-west-1:111122223333:on-call"

	functionName          = "acme-prod-usage-event-service"
	decisionsFunctionName = "acme-prod-usage-decisions"
	queueName             = "acme-prod-usage-event-queue"
	dlqName               = "acme-prod-usage-event-dlq"
	ledgerName            = "acme-prod-usage-ledger"
	topicName             = "acme-prod-usage-notifications"
	sweepRuleName         = "acme-prod-usage-sweeps"

	// Placeholders: a resource attribute evaluates to its own address.
	mainQueueARN = "aws_sqs_queue.main.arn"
	dlqARN       = "aws_sqs_queue.dead_letter.arn"
	ledgerARN    = "aws_dynamodb_table.ledger.arn"
	logStreamARN = "aws_cloudwatch_log_group.function.arn:*"

	// The decisions function's resources are counted (decisions_enabled).
	decisionsARN          = "aws_lambda_function.decisions[0].arn"
	decisionsLogStreamARN = "aws_cloudwatch_log_group.decisions[0].arn:*"

	// The notifications topic is counted (notifications_enabled).
	topicARN = "aws_sns_topic.notifications[0].arn"
	// A customer managed key for the topic, other than the queues' key.
	notificationsKeyARN = "arn:aws:kms:eu-west-1:111122223333:key/5678efgh-56ef-78gh-90ij-5678901234ef"

	// deadlineMarginSeconds is metering.Processor's default DeadlineMargin
	// (pipeline/pipeline.go; the Lambda adapter does not override it): no
	// entitlement is started when less than this remains before the
	// invocation deadline, so the function timeout must exceed it.
	deadlineMarginSeconds = 2
)

// inputs returns the module's required inputs plus overrides.
func inputs(overrides map[string]cty.Value) map[string]cty.Value {
	in := map[string]cty.Value{
		"project":                 cty.StringVal("acme"),
		"env":                     cty.StringVal("prod"),
		"entitlements_table_name": cty.StringVal(entitlementsTableName),
		"entitlements_table_arn":  cty.StringVal(entitlementsTableARN),
		"package_path":            cty.StringVal("function.zip"),
		"alarm_actions":           cty.ListValEmpty(cty.String),
	}
	maps.Copy(in, overrides)
	return in
}

// configurations covers every switch that changes the IAM policy.
var configurations = []struct {
	name string
	in   map[string]cty.Value
}{
	{"SSE-SQS, direct dead-lettering", nil},
	{"SSE-SQS, dead-lettering by SQS only", map[string]cty.Value{"direct_dead_lettering": cty.False}},
	{"KMS key, direct dead-lettering", map[string]cty.Value{"kms_key_arn": cty.StringVal(kmsKeyARN)}},
	{"KMS key, dead-lettering by SQS only", map[string]cty.Value{"kms_key_arn": cty.StringVal(kmsKeyARN), "direct_dead_lettering": cty.False}},
	{"notifications off", map[string]cty.Value{"notifications_enabled": cty.False}},
	{"notifications with their own key", map[string]cty.Value{"notifications_kms_key_arn": cty.StringVal(notificationsKeyARN)}},
	{"KMS keys for queues and notifications", map[string]cty.Value{"kms_key_arn": cty.StringVal(kmsKeyARN), "notifications_kms_key_arn": cty.StringVal(notificationsKeyARN)}},
	{"notifications off, their key ignored", map[string]cty.Value{"notifications_enabled": cty.False, "notifications_kms_key_arn": cty.StringVal(notificationsKeyARN)}},
	{"tracing: X-Ray active tracing and the ADOT layer, user IDs off", map[string]cty.Value{"xray_tracing": cty.True, "adot_layer_arn": cty.StringVal(adotLayerARN), "trace_ids": cty.False}},
	{"tracing to an OTLP endpoint only", map[string]cty.Value{"tracing_environment": cty.MapVal(map[string]cty.Value{"OTEL_EXPORTER_OTLP_ENDPOINT": cty.StringVal("http://collector.internal:4318"), "OTEL_SERVICE_NAME": cty.StringVal("usage-events")})}},
}

// adotLayerARN is an ADOT collector layer version ARN of the test region.
const adotLayerARN = "arn:aws:lambda:eu-west-1:901920570463:layer:aws-otel-collector-arm64-ver-0-117-0:1"

// xrayWrite: the configuration's roles write traces to X-Ray.
func xrayWrite(in map[string]cty.Value) bool {
	x, ok := in["xray_tracing"]
	_, adot := in["adot_layer_arn"]
	return (ok && x.True()) || adot
}

func directDeadLettering(in map[string]cty.Value) bool {
	v, ok := in["direct_dead_lettering"]
	return !ok || v.True()
}

func withKMS(in map[string]cty.Value) bool {
	_, ok := in["kms_key_arn"]
	return ok
}

func notificationsEnabled(in map[string]cty.Value) bool {
	v, ok := in["notifications_enabled"]
	return !ok || v.True()
}

// withNotificationsKey: the topic exists and is encrypted with a customer
// managed key.
func withNotificationsKey(in map[string]cty.Value) bool {
	_, ok := in["notifications_kms_key_arn"]
	return ok && notificationsEnabled(in)
}

// roles are the module's execution roles (aws_iam_role resource names):
// the queue consumer's and the decisions function's.
var roles = []string{"function", "decisions"}

// functionPolicy returns the statements of the queue consumer role's inline policy.
func functionPolicy(t *testing.T, e *evaluator) []statement {
	t.Helper()
	return rolePolicy(t, e, "function")
}

// decisionsPolicy returns the statements of the decisions role's inline policy.
func decisionsPolicy(t *testing.T, e *evaluator) []statement {
	t.Helper()
	return rolePolicy(t, e, "decisions")
}

// rolePolicy returns the statements of the one inline policy of
// aws_iam_role.<role>, after checking that no role of the module carries
// anything else (managed policies, inline_policy blocks, a second policy).
func rolePolicy(t *testing.T, e *evaluator, role string) []statement {
	t.Helper()
	m := e.m
	if bs := m.blocksOf("resource", "aws_iam_role_policy_attachment"); len(bs) > 0 {
		t.Fatalf("the module attaches managed policies (%v); each role must carry only its least-privilege inline policy", bs[0].Labels)
	}
	if bs := m.blocksOf("resource", "aws_iam_policy"); len(bs) > 0 {
		t.Fatalf("the module defines managed policy %v; keep the grants in the inline policies", bs[0].Labels)
	}
	if got := len(m.blocksOf("resource", "aws_iam_role")); got != len(roles) {
		t.Fatalf("the module has %d aws_iam_role resources, want %d (%v): a new role needs its own least-privilege tests", got, len(roles), roles)
	}
	for _, name := range roles {
		b := m.resource(t, "aws_iam_role", name)
		for _, forbidden := range []string{"managed_policy_arns", "inline_policy"} {
			if _, ok := b.Body.Attributes[forbidden]; ok {
				t.Fatalf("aws_iam_role.%s sets %s", name, forbidden)
			}
		}
	}
	var mine []*hclsyntax.Block
	for _, p := range m.blocksOf("resource", "aws_iam_role_policy") {
		got := strings.Replace(asString(t, e.evalAttr(t, p, "role")), "[0]", "", 1)
		attached, ok := strings.CutPrefix(got, "aws_iam_role.")
		attached, ok2 := strings.CutSuffix(attached, ".id")
		if !ok2 {
			attached, ok2 = strings.CutSuffix(attached, ".name")
		}
		if !ok || !ok2 || !slices.Contains(roles, attached) {
			t.Fatalf("aws_iam_role_policy.%s is attached to %s, not to a role of the module", p.Labels[1], got)
		}
		if attached == role {
			mine = append(mine, p)
		}
	}
	if len(mine) != 1 {
		t.Fatalf("want exactly one aws_iam_role_policy on aws_iam_role.%s, have %d", role, len(mine))
	}
	return e.policyStatements(t, policyDocName(t, asString(t, e.evalAttr(t, mine[0], "policy"))))
}

// grants maps resource -> sorted actions for the Allow statements whose
// actions start with prefix.
func grants(t *testing.T, stmts []statement, prefix string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, st := range stmts {
		for _, a := range st.Actions {
			if !strings.HasPrefix(a, prefix) {
				continue
			}
			if st.Effect != "Allow" {
				t.Fatalf("%s: unexpected %s statement", st, st.Effect)
			}
			for _, r := range st.Resources {
				out[r] = sorted(append(out[r], a))
			}
		}
	}
	return out
}

func assertGrants(t *testing.T, what string, got, want map[string][]string) {
	t.Helper()
	for r, actions := range want {
		want[r] = sorted(actions)
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("%s granted %v, want exactly %v", what, got, want)
	}
}

// pendingIndexARN is the ledger's sparse index of work left to do, the only
// index the module grants anything on.
const pendingIndexARN = ledgerARN + "/index/" + dynamodb.PendingIndex

// dynamoDBGrants is dynamodb.IAMActions with each table replaced by the
// ARN the module grants it on, and for the queue consumer (sweeps) also the
// ledger's index: its sweeps (dynamodb.PendingNotifications, the holds'
// SweepExpiredHolds) send the ledger's dynamodb:Query to the index
// PendingIndex, and IAM authorizes a request on an index against the
// index's ARN, which a grant on the table's ARN does not cover. The
// decisions function runs no sweep and is granted nothing on the index.
func dynamoDBGrants(t *testing.T, sweeps bool) map[string][]string {
	t.Helper()
	// Where each table of dynamodb.IAMActions lives in the module.
	tableARN := map[dynamodb.Table]string{
		dynamodb.EntitlementsTable: entitlementsTableARN, // var.entitlements_table_arn
		dynamodb.LedgerTable:       ledgerARN,
	}
	want := map[string][]string{}
	for table, actions := range dynamodb.IAMActions {
		arn, ok := tableARN[table]
		if !ok {
			t.Fatalf("dynamodb.IAMActions names table %q, which this test does not map to a Terraform ARN: add it here and grant it in the module", table)
		}
		want[arn] = slices.Clone(actions)
	}
	if sweeps {
		if !slices.Contains(dynamodb.IAMActions[dynamodb.LedgerTable], "dynamodb:Query") {
			t.Fatal("dynamodb.IAMActions lacks dynamodb:Query on the ledger, which the sweeps send to its index")
		}
		want[pendingIndexARN] = []string{"dynamodb:Query"}
	}
	return want
}

func TestFunctionRoleGrantsExactlyTheDynamoDBActionsTheGoCodeUses(t *testing.T) {
	m := loadModule(t, moduleDir)
	for _, c := range configurations {
		t.Run(c.name, func(t *testing.T) {
			stmts := functionPolicy(t, m.evaluator(t, inputs(c.in)))
			assertGrants(t, "DynamoDB", grants(t, stmts, "dynamodb:"), dynamoDBGrants(t, true))
		})
	}
}

// The decisions function answers synchronous requests with the same
// DynamoDB calls as the consumer, and nothing of the queue: its role grants
// exactly dynamodb.IAMActions (without the sweeps' index Query),
// its own log streams, publishing to the notifications topic (with its
// customer managed key, through SNS), and no SQS action, whatever the queue
// options.
func TestDecisionsRoleGrantsExactlyTheDynamoDBActionsAndNothingOfTheQueue(t *testing.T) {
	m := loadModule(t, moduleDir)
	for _, c := range configurations {
		t.Run(c.name, func(t *testing.T) {
			stmts := decisionsPolicy(t, m.evaluator(t, inputs(c.in)))
			assertGrants(t, "DynamoDB", grants(t, stmts, "dynamodb:"), dynamoDBGrants(t, false))
			assertGrants(t, "CloudWatch Logs", grants(t, stmts, "logs:"),
				map[string][]string{decisionsLogStreamARN: {"logs:CreateLogStream", "logs:PutLogEvents"}})
			for _, st := range stmts {
				if st.Effect != "Allow" || len(st.NotActions) > 0 || len(st.NotResources) > 0 {
					t.Errorf("%s: want only Allow statements naming their actions and resources", st)
				}
				for _, a := range st.Actions {
					if service, _, _ := strings.Cut(a, ":"); !slices.Contains([]string{"dynamodb", "logs", "sns", "kms", "xray"}, service) {
						t.Errorf("%s: unexpected action %s (the decisions role reaches DynamoDB, the notifications topic and its logs only)", st, a)
					}
				}
			}
		})
	}
}

func TestFunctionRoleGrantsSQSOnlyToConsumeTheQueueAndDeadLetter(t *testing.T) {
	m := loadModule(t, moduleDir)
	consume := []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"}
	for _, c := range configurations {
		t.Run(c.name, func(t *testing.T) {
			in := inputs(c.in)
			want := map[string][]string{mainQueueARN: consume}
			if directDeadLettering(in) {
				want[dlqARN] = []string{"sqs:SendMessage"}
			}
			stmts := functionPolicy(t, m.evaluator(t, in))
			assertGrants(t, "SQS", grants(t, stmts, "sqs:"), want)
		})
	}
}

func TestFunctionRoleUsesTheQueueKeyOnlyWhenOneIsGiven(t *testing.T) {
	m := loadModule(t, moduleDir)
	for _, c := range configurations {
		t.Run(c.name, func(t *testing.T) {
			in := inputs(c.in)
			want := map[string][]string{}
			switch {
			case withKMS(in) && directDeadLettering(in):
				want[kmsKeyARN] = []string{"kms:Decrypt", "kms:GenerateDataKey"}
			case withKMS(in):
				want[kmsKeyARN] = []string{"kms:Decrypt"}
			}
			if withNotificationsKey(in) {
				want[notificationsKeyARN] = []string{"kms:Decrypt", "kms:GenerateDataKey"}
			}
			stmts := functionPolicy(t, m.evaluator(t, in))
			assertGrants(t, "KMS", grants(t, stmts, "kms:"), want)
			assertKeysUsedOnlyVia(t, stmts)
		})
	}
}

// assertKeysUsedOnlyVia checks that every KMS statement is limited, by
// kms:ViaService, to the one service its key is for: the queues' key to
// SQS, the topic's key to SNS.
func assertKeysUsedOnlyVia(t *testing.T, stmts []statement) {
	t.Helper()
	via := map[string]string{kmsKeyARN: "sqs", notificationsKeyARN: "sns"}
	for _, st := range stmts {
		if len(st.Actions) == 0 || !strings.HasPrefix(st.Actions[0], "kms:") {
			continue
		}
		if len(st.Resources) != 1 || via[st.Resources[0]] == "" {
			t.Errorf("%s: want one known key", st)
			continue
		}
		service := via[st.Resources[0]]
		if !slices.ContainsFunc(st.Conditions, func(c condition) bool {
			return c.Test == "StringEquals" && c.Variable == "kms:ViaService" && slices.Equal(c.Values, []string{service + "." + testRegion + ".amazonaws.com"})
		}) {
			t.Errorf("%s: want a kms:ViaService condition limiting the key to %s", st, strings.ToUpper(service))
		}
	}
}

func TestFunctionRoleWritesOnlyToItsOwnLogGroup(t *testing.T) {
	m := loadModule(t, moduleDir)
	stmts := functionPolicy(t, m.evaluator(t, inputs(nil)))
	assertGrants(t, "CloudWatch Logs", grants(t, stmts, "logs:"),
		map[string][]string{logStreamARN: {"logs:CreateLogStream", "logs:PutLogEvents"}})
}

func TestFunctionRoleGrantsNoOtherService(t *testing.T) {
	m := loadModule(t, moduleDir)
	for _, c := range configurations {
		t.Run(c.name, func(t *testing.T) {
			for _, st := range functionPolicy(t, m.evaluator(t, inputs(c.in))) {
				if len(st.NotActions) > 0 || len(st.NotResources) > 0 {
					t.Errorf("%s: not_actions/not_resources grant by exclusion", st)
				}
				for _, a := range st.Actions {
					service, _, _ := strings.Cut(a, ":")
					if !slices.Contains([]string{"dynamodb", "sqs", "kms", "logs", "sns", "xray"}, service) {
						t.Errorf("%s: unexpected action %s", st, a)
					}
				}
			}
		})
	}
}

func TestRolesAreAssumedOnlyByLambda(t *testing.T) {
	m := loadModule(t, moduleDir)
	e := m.evaluator(t, inputs(nil))
	for _, role := range roles {
		t.Run(role, func(t *testing.T) {
			doc := policyDocName(t, asString(t, e.evalAttr(t, m.resource(t, "aws_iam_role", role), "assume_role_policy")))
			stmts := e.policyStatements(t, doc)
			if len(stmts) != 1 || !slices.Equal(stmts[0].Actions, []string{"sts:AssumeRole"}) ||
				!slices.EqualFunc(stmts[0].Principals, []principal{{"Service", []string{"lambda.amazonaws.com"}}}, func(a, b principal) bool {
					return a.Type == b.Type && slices.Equal(a.Identifiers, b.Identifiers)
				}) {
				t.Errorf("trust policy %v, want one statement letting lambda.amazonaws.com sts:AssumeRole", stmts)
			}
		})
	}
}

// wildcardViolations lists the wildcards in a statement that AWS does not
// require. The exceptions, and why AWS needs them:
//   - Deny statements may use principal "*" (type "*"): the only way to name
//     every caller, so the TLS-only Deny covers all of them;
//   - Deny statements may use "sqs:*": a Deny must cover every action,
//     including ones added later;
//   - each function's log streams, "<log group ARN>:*": Lambda names each
//     stream at run time, so they cannot be listed;
//   - X-Ray's write actions (xray:PutTraceSegments,
//     xray:PutTelemetryRecords) on "*": they have no resource-level
//     permissions.
func wildcardViolations(st statement) []string {
	xrayOnly := st.Effect == "Allow" && len(st.Actions) > 0
	for _, a := range st.Actions {
		xrayOnly = xrayOnly && (a == "xray:PutTraceSegments" || a == "xray:PutTelemetryRecords")
	}
	var out []string
	deny := st.Effect == "Deny"
	if len(st.NotActions)+len(st.NotResources)+len(st.NotPrincipal) > 0 {
		out = append(out, "not_actions/not_resources/not_principals")
	}
	for _, a := range st.Actions {
		if strings.Contains(a, "*") && !(deny && a == "sqs:*") {
			out = append(out, "action "+a)
		}
	}
	for _, r := range st.Resources {
		if strings.Contains(r, "*") && r != logStreamARN && r != decisionsLogStreamARN && !(xrayOnly && r == "*") {
			out = append(out, "resource "+r)
		}
	}
	for _, p := range st.Principals {
		for _, id := range p.Identifiers {
			if (strings.Contains(id, "*") || p.Type == "*") && !(deny && p.Type == "*" && id == "*") {
				out = append(out, "principal "+p.Type+" "+id)
			}
		}
	}
	return out
}

func TestPoliciesUseNoWildcardsButThoseAWSRequires(t *testing.T) {
	// The detector itself, on statements the module must never contain.
	detector := []struct {
		name string
		st   statement
		want bool
	}{
		{"action wildcard in an Allow", statement{Effect: "Allow", Actions: []string{"dynamodb:*"}, Resources: []string{ledgerARN}}, true},
		{"partial action wildcard", statement{Effect: "Allow", Actions: []string{"sqs:Get*"}, Resources: []string{mainQueueARN}}, true},
		{"sqs:* in an Allow", statement{Effect: "Allow", Actions: []string{"sqs:*"}, Resources: []string{mainQueueARN}}, true},
		{"resource wildcard", statement{Effect: "Allow", Actions: []string{"logs:CreateLogGroup"}, Resources: []string{"*"}}, true},
		{"table index wildcard", statement{Effect: "Allow", Actions: []string{"dynamodb:Query"}, Resources: []string{entitlementsTableARN + "/index/*"}}, true},
		{"any principal in an Allow", statement{Effect: "Allow", Actions: []string{"sqs:SendMessage"}, Resources: []string{mainQueueARN}, Principals: []principal{{"*", []string{"*"}}}}, true},
		{"not_actions", statement{Effect: "Allow", NotActions: []string{"iam:CreateUser"}, Resources: []string{mainQueueARN}}, true},
		{"TLS deny for everyone", statement{Effect: "Deny", Actions: []string{"sqs:*"}, Resources: []string{mainQueueARN}, Principals: []principal{{"*", []string{"*"}}}}, false},
		{"log streams of the function's group", statement{Effect: "Allow", Actions: []string{"logs:PutLogEvents"}, Resources: []string{logStreamARN}}, false},
		{"log streams of the decisions function's group", statement{Effect: "Allow", Actions: []string{"logs:PutLogEvents"}, Resources: []string{decisionsLogStreamARN}}, false},
		{"every lambda function", statement{Effect: "Allow", Actions: []string{"lambda:InvokeFunction"}, Resources: []string{"arn:aws:lambda:eu-west-1:111122223333:function:*"}}, true},
		{"X-Ray's write actions", statement{Effect: "Allow", Actions: []string{"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, Resources: []string{"*"}}, false},
		{"X-Ray reads on every resource", statement{Effect: "Allow", Actions: []string{"xray:PutTraceSegments", "xray:GetTraceSummaries"}, Resources: []string{"*"}}, true},
	}
	for _, d := range detector {
		t.Run("detects/"+d.name, func(t *testing.T) {
			if got := len(wildcardViolations(d.st)) > 0; got != d.want {
				t.Errorf("violation = %v, want %v", got, d.want)
			}
		})
	}

	m := loadModule(t, moduleDir)
	for _, c := range configurations {
		t.Run("module/"+c.name, func(t *testing.T) {
			for _, st := range m.evaluator(t, inputs(c.in)).allPolicyStatements(t) {
				if v := wildcardViolations(st); len(v) > 0 {
					t.Errorf("%s: wildcards AWS does not require: %v", st, v)
				}
			}
		})
	}
}

func TestQueuePoliciesDenyRequestsWithoutTLS(t *testing.T) {
	m := loadModule(t, moduleDir)
	e := m.evaluator(t, inputs(nil))
	queuePolicy := map[string][]statement{}
	for _, b := range m.blocksOf("resource", "aws_sqs_queue_policy") {
		url := asString(t, e.evalAttr(t, b, "queue_url"))
		queue := strings.TrimSuffix(strings.TrimSuffix(url, ".id"), ".url")
		queuePolicy[queue] = e.policyStatements(t, policyDocName(t, asString(t, e.evalAttr(t, b, "policy"))))
	}
	for _, queue := range []string{"aws_sqs_queue.main", "aws_sqs_queue.dead_letter"} {
		t.Run(queue, func(t *testing.T) {
			stmts, ok := queuePolicy[queue]
			if !ok {
				t.Fatalf("no aws_sqs_queue_policy for %s", queue)
			}
			if !slices.ContainsFunc(stmts, func(st statement) bool {
				return st.Effect == "Deny" &&
					slices.Equal(st.Actions, []string{"sqs:*"}) &&
					slices.Equal(st.Resources, []string{queue + ".arn"}) &&
					len(st.Principals) == 1 && st.Principals[0].Type == "*" && slices.Equal(st.Principals[0].Identifiers, []string{"*"}) &&
					slices.ContainsFunc(st.Conditions, func(c condition) bool {
						return c.Test == "Bool" && c.Variable == "aws:SecureTransport" && slices.Equal(c.Values, []string{"false"})
					})
			}) {
				t.Errorf("%s policy %v lacks Deny sqs:* for everyone when aws:SecureTransport is false", queue, stmts)
			}
			for _, st := range stmts {
				if st.Effect != "Allow" {
					continue
				}
				for _, p := range st.Principals {
					if p.Type != "AWS" || !slices.Equal(p.Identifiers, []string{"arn:aws:iam::" + testAccountID + ":root"}) {
						t.Errorf("%s: allows %v, want only this account", st, p)
					}
				}
			}
		})
	}
	t.Run("main queue accepts sends from this account only", func(t *testing.T) {
		if !slices.ContainsFunc(queuePolicy["aws_sqs_queue.main"], func(st statement) bool {
			return st.Effect == "Allow" && slices.Equal(st.Actions, []string{"sqs:SendMessage"}) &&
				slices.Equal(st.Resources, []string{mainQueueARN}) &&
				slices.ContainsFunc(st.Conditions, func(c condition) bool {
					return c.Test == "StringEquals" && strings.HasSuffix(c.Variable, "Account") && slices.Equal(c.Values, []string{testAccountID})
				})
		}) {
			t.Errorf("main queue policy lacks Allow sqs:SendMessage for this account, conditioned on the account id")
		}
	})
}

func TestQueues(t *testing.T) {
	m := loadModule(t, moduleDir)
	main := m.resource(t, "aws_sqs_queue", "main")
	dlq := m.resource(t, "aws_sqs_queue", "dead_letter")

	t.Run("are named after project and env", func(t *testing.T) {
		e := m.evaluator(t, inputs(nil))
		if got := asString(t, e.evalAttr(t, main, "name")); got != queueName {
			t.Errorf("main queue name %q, want %q", got, queueName)
		}
		if got := asString(t, e.evalAttr(t, dlq, "name")); got != dlqName {
			t.Errorf("DLQ name %q, want %q", got, dlqName)
		}
	})

	t.Run("are FIFO queues with fifo_queue, in high-throughput mode, deduplicated by the producers' IDs", func(t *testing.T) {
		std := m.evaluator(t, inputs(nil))
		fifo := m.evaluator(t, inputs(map[string]cty.Value{"fifo_queue": cty.True}))
		for q, name := range map[*hclsyntax.Block]string{main: queueName, dlq: dlqName} {
			if got := asString(t, fifo.evalAttr(t, q, "name")); got != name+".fifo" {
				t.Errorf("FIFO queue name %q, want %q", got, name+".fifo")
			}
			if got := fifo.evalAttr(t, q, "fifo_queue"); !got.RawEquals(cty.True) {
				t.Errorf("%s: fifo_queue = %#v with fifo_queue", q.Labels[1], got)
			}
			if got := std.evalAttr(t, q, "fifo_queue"); !got.IsNull() {
				t.Errorf("%s: fifo_queue = %#v by default, want unset (a standard queue)", q.Labels[1], got)
			}
		}
		for attr, want := range map[string]cty.Value{
			"content_based_deduplication": cty.False,
			"deduplication_scope":         cty.StringVal("messageGroup"),
			"fifo_throughput_limit":       cty.StringVal("perMessageGroupId"),
		} {
			if got := fifo.evalAttr(t, main, attr); !got.RawEquals(want) {
				t.Errorf("FIFO main queue %s = %#v, want %#v", attr, got, want)
			}
			if got := std.evalAttr(t, main, attr); !got.IsNull() {
				t.Errorf("standard main queue %s = %#v, want unset", attr, got)
			}
		}
		if got := asInt(t, fifo.evalAttr(t, main, "visibility_timeout_seconds")); got != 6*30 {
			t.Errorf("FIFO visibility timeout %d, want 6 timeouts (no batching window)", got)
		}
	})

	t.Run("main queue dead-letters after max_receive_count receives", func(t *testing.T) {
		for _, c := range []struct {
			in   map[string]cty.Value
			want float64
		}{{nil, 5}, {map[string]cty.Value{"max_receive_count": cty.NumberIntVal(3)}, 3}} {
			e := m.evaluator(t, inputs(c.in))
			var redrive struct {
				DeadLetterTargetArn string
				MaxReceiveCount     float64
			}
			if err := json.Unmarshal([]byte(asString(t, e.evalAttr(t, main, "redrive_policy"))), &redrive); err != nil {
				t.Fatal(err)
			}
			if redrive.DeadLetterTargetArn != dlqARN || redrive.MaxReceiveCount != c.want {
				t.Errorf("redrive policy %+v, want the DLQ after %v receives", redrive, c.want)
			}
		}
	})

	t.Run("DLQ accepts messages and redrives only from the main queue", func(t *testing.T) {
		e := m.evaluator(t, inputs(nil))
		b := m.resource(t, "aws_sqs_queue_redrive_allow_policy", "dead_letter")
		if got := asString(t, e.evalAttr(t, b, "queue_url")); got != "aws_sqs_queue.dead_letter.id" && got != "aws_sqs_queue.dead_letter.url" {
			t.Errorf("redrive allow policy is on %s, want the DLQ", got)
		}
		var allow struct {
			RedrivePermission string
			SourceQueueArns   []string
		}
		if err := json.Unmarshal([]byte(asString(t, e.evalAttr(t, b, "redrive_allow_policy"))), &allow); err != nil {
			t.Fatal(err)
		}
		if allow.RedrivePermission != "byQueue" || !slices.Equal(allow.SourceQueueArns, []string{mainQueueARN}) {
			t.Errorf("redrive allow policy %+v, want byQueue from the main queue only", allow)
		}
	})

	for _, c := range []struct {
		name    string
		in      map[string]cty.Value
		wantSSE bool
		wantKey string
	}{
		{"are encrypted with SQS-managed keys by default", nil, true, ""},
		{"are encrypted with the given KMS key", map[string]cty.Value{"kms_key_arn": cty.StringVal(kmsKeyARN)}, false, kmsKeyARN},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := m.evaluator(t, inputs(c.in))
			for _, q := range []*hclsyntax.Block{main, dlq} {
				sse := e.evalAttr(t, q, "sqs_managed_sse_enabled")
				key := e.evalAttr(t, q, "kms_master_key_id")
				gotSSE := !sse.IsNull() && sse.True()
				gotKey := ""
				if !key.IsNull() {
					gotKey = asString(t, key)
				}
				if gotSSE != c.wantSSE || gotKey != c.wantKey {
					t.Errorf("queue %s: sqs_managed_sse_enabled=%v kms_master_key_id=%q, want %v %q", q.Labels[1], gotSSE, gotKey, c.wantSSE, c.wantKey)
				}
			}
		})
	}

	t.Run("visibility timeout is six function timeouts plus the batching window", func(t *testing.T) {
		for _, c := range []struct {
			in   map[string]cty.Value
			want int64
		}{
			{nil, 6*30 + 1},
			{map[string]cty.Value{"timeout": cty.NumberIntVal(60), "maximum_batching_window_in_seconds": cty.NumberIntVal(5)}, 6*60 + 5},
		} {
			if got := asInt(t, m.evaluator(t, inputs(c.in)).evalAttr(t, main, "visibility_timeout_seconds")); got != c.want {
				t.Errorf("visibility timeout %d, want %d", got, c.want)
			}
		}
	})

	t.Run("retain messages 4 days in the queue and 14 in the DLQ by default", func(t *testing.T) {
		e := m.evaluator(t, inputs(nil))
		if got := asInt(t, e.evalAttr(t, main, "message_retention_seconds")); got != 4*86400 {
			t.Errorf("main queue retention %d", got)
		}
		if got := asInt(t, e.evalAttr(t, dlq, "message_retention_seconds")); got != 14*86400 {
			t.Errorf("DLQ retention %d", got)
		}
	})
}

func TestEventSourceMapping(t *testing.T) {
	m := loadModule(t, moduleDir)
	esm := m.blocksOf("resource", "aws_lambda_event_source_mapping")
	if len(esm) != 1 {
		t.Fatalf("want one event source mapping, have %d", len(esm))
	}
	b := esm[0]
	e := m.evaluator(t, inputs(nil))
	for _, c := range []struct {
		name, attr string
		want       cty.Value
	}{
		{"polls the main queue", "event_source_arn", cty.StringVal(mainQueueARN)},
		{"invokes the function", "function_name", cty.StringVal("aws_lambda_function.this.arn")},
		{"delivers batches of up to 100 by default (docs/performance.md)", "batch_size", cty.NumberIntVal(100)},
		{"waits at most 1 s to fill a batch by default", "maximum_batching_window_in_seconds", cty.NumberIntVal(1)},
		{"reports partial batch failures", "function_response_types", cty.TupleVal([]cty.Value{cty.StringVal("ReportBatchItemFailures")})},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := e.evalAttr(t, b, c.attr); !got.RawEquals(c.want) {
				t.Errorf("%s = %#v, want %#v", c.attr, got, c.want)
			}
		})
	}
	t.Run("batch size and window: the defaults per queue type, the seed's 20 still available", func(t *testing.T) {
		num := cty.NumberIntVal
		for _, c := range []struct {
			in            map[string]cty.Value
			batch, window cty.Value
		}{
			{nil, num(100), num(1)},
			{map[string]cty.Value{"batch_size": num(20)}, num(20), num(1)},
			{map[string]cty.Value{"batch_size": num(10), "maximum_batching_window_in_seconds": num(0)}, num(10), num(0)},
			{map[string]cty.Value{"maximum_batching_window_in_seconds": num(3)}, num(100), num(3)},
			// FIFO: at most 10 and no window, which is left unset.
			{map[string]cty.Value{"fifo_queue": cty.True}, num(10), cty.NullVal(cty.Number)},
			{map[string]cty.Value{"fifo_queue": cty.True, "batch_size": num(5)}, num(5), cty.NullVal(cty.Number)},
		} {
			e := m.evaluator(t, inputs(c.in))
			if got := e.evalAttr(t, b, "batch_size"); !got.RawEquals(c.batch) {
				t.Errorf("%v: batch_size = %#v, want %#v", c.in, got, c.batch)
			}
			if got := e.evalAttr(t, b, "maximum_batching_window_in_seconds"); !got.RawEquals(c.window) {
				t.Errorf("%v: maximum_batching_window_in_seconds = %#v, want %#v", c.in, got, c.window)
			}
		}
	})
	t.Run("caps concurrency at maximum_concurrency", func(t *testing.T) {
		scaling := oneNested(t, b, "scaling_config")
		for in, want := range map[int64]int64{0: 10, 50: 50} {
			over := map[string]cty.Value{}
			if in != 0 {
				over["maximum_concurrency"] = cty.NumberIntVal(in)
			}
			if got := asInt(t, m.evaluator(t, inputs(over)).evalAttr(t, scaling, "maximum_concurrency")); got != want {
				t.Errorf("maximum_concurrency %d, want %d", got, want)
			}
		}
	})
}

func TestFunction(t *testing.T) {
	m := loadModule(t, moduleDir)
	fn := m.resource(t, "aws_lambda_function", "this")
	e := m.evaluator(t, inputs(nil))
	for _, c := range []struct {
		name, attr string
		want       cty.Value
	}{
		{"is named after project and env", "function_name", cty.StringVal(functionName)},
		{"runs on the OS-only Amazon Linux 2023 runtime", "runtime", cty.StringVal("provided.al2023")},
		{"starts the bootstrap binary", "handler", cty.StringVal("bootstrap")},
		{"runs on arm64 by default", "architectures", cty.TupleVal([]cty.Value{cty.StringVal("arm64")})},
		{"deploys the package at package_path", "filename", cty.StringVal("function.zip")},
		{"has 256 MB by default", "memory_size", cty.NumberIntVal(256)},
		{"times out after 30 s by default", "timeout", cty.NumberIntVal(30)},
		{"runs as its own role", "role", cty.StringVal("aws_iam_role.function.arn")},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := e.evalAttr(t, fn, c.attr); !got.RawEquals(c.want) {
				t.Errorf("%s = %#v, want %#v", c.attr, got, c.want)
			}
		})
	}
	t.Run("runs on x86_64 when asked", func(t *testing.T) {
		got := asStrings(t, m.evaluator(t, inputs(map[string]cty.Value{"architecture": cty.StringVal("x86_64")})).evalAttr(t, fn, "architectures"))
		if !slices.Equal(got, []string{"x86_64"}) {
			t.Errorf("architectures %v", got)
		}
	})
	t.Run("redeploys when the package changes", func(t *testing.T) {
		if got := m.source(attr(t, fn, "source_code_hash").Expr.Range()); got != "filebase64sha256(var.package_path)" {
			t.Errorf("source_code_hash = %s", got)
		}
	})
	t.Run("logs to its own log group, created first", func(t *testing.T) {
		logging := oneNested(t, fn, "logging_config")
		if got := asString(t, e.evalAttr(t, logging, "log_format")); got != "JSON" && got != "Text" {
			t.Errorf("log_format %q", got)
		}
		if got := asString(t, e.evalAttr(t, logging, "log_group")); got != "aws_cloudwatch_log_group.function.name" {
			t.Errorf("log_group %q", got)
		}
		if deps := m.source(attr(t, fn, "depends_on").Expr.Range()); !strings.Contains(deps, "aws_cloudwatch_log_group.function") {
			t.Errorf("depends_on %s lacks the log group", deps)
		}
	})

	env := func(in map[string]cty.Value) map[string]string {
		v := m.evaluator(t, inputs(in)).eval(t, attr(t, oneNested(t, fn, "environment"), "variables").Expr, nil)
		out := map[string]string{}
		for k, val := range v.AsValueMap() {
			out[k] = asString(t, val)
		}
		return out
	}
	base := map[string]string{
		"ENTITLEMENTS_TABLE":       entitlementsTableName,
		"USAGE_LEDGER_TABLE":       "aws_dynamodb_table.ledger.name",
		"DEDUP_RETENTION":          "336h",
		"LOG_LEVEL":                "INFO",
		"ENTITLEMENT_PK_ATTRIBUTE": "pk",
		"ENTITLEMENT_SK_ATTRIBUTE": "sk",
		"ENTITLEMENT_PK_PREFIX":    "USER#",
		"ENTITLEMENT_SK_PREFIX":    "ENTITLEMENT#",
		"POOL_PK_PREFIX":           "POOL#",
		"USAGE_EVENT_QUEUE_URL":    "aws_sqs_queue.main.url",
		"REFUND_TARGET_WAIT":       "15m",
		"NOTIFY_TOPIC_ARN":         topicARN,
		"NOTIFY_THRESHOLDS":        "80,100",
		"NOTIFY_LIMIT_REJECTED":    "true",
		"NOTIFY_OVERAGE":           "true",
		"NOTIFY_RECOVERY_INTERVAL": "1m",
	}
	withDLQ := maps.Clone(base)
	withDLQ["DEAD_LETTER_QUEUE_URL"] = "aws_sqs_queue.dead_letter.url"
	custom := maps.Clone(withDLQ)
	custom["LOG_LEVEL"] = "DEBUG"
	custom["DEDUP_RETENTION"] = "720h"
	custom["REFUND_TARGET_WAIT"] = "2m"
	layout := maps.Clone(withDLQ)
	layout["ENTITLEMENT_PK_ATTRIBUTE"] = "PK"
	layout["ENTITLEMENT_SK_ATTRIBUTE"] = "SK"
	layout["ENTITLEMENT_PK_PREFIX"] = "TENANT#1#USER#"
	layout["ENTITLEMENT_SK_PREFIX"] = "ENT#"
	silent := maps.Clone(withDLQ)
	for k := range silent {
		if strings.HasPrefix(k, "NOTIFY_") {
			delete(silent, k)
		}
	}
	notify := maps.Clone(withDLQ)
	notify["NOTIFY_THRESHOLDS"] = "50,90.5,100"
	notify["NOTIFY_LIMIT_REJECTED"] = "false"
	notify["NOTIFY_OVERAGE"] = "false"
	notify["NOTIFY_RECOVERY_INTERVAL"] = "30s"
	noThresholds := maps.Clone(withDLQ)
	noThresholds["NOTIFY_THRESHOLDS"] = ""
	for _, c := range []struct {
		name string
		in   map[string]cty.Value
		want map[string]string
	}{
		{"environment names both tables and the DLQ for direct dead-lettering", nil, withDLQ},
		{"environment omits the DLQ when SQS alone dead-letters", map[string]cty.Value{"direct_dead_lettering": cty.False}, base},
		{"environment passes dedup retention, the refund wait and the upper-cased log level", map[string]cty.Value{"log_level": cty.StringVal("debug"), "dedup_retention": cty.StringVal("720h"), "refund_target_wait": cty.StringVal("2m")}, custom},
		{"environment passes the entitlements table's key layout", map[string]cty.Value{
			"entitlement_pk_attribute": cty.StringVal("PK"), "entitlement_sk_attribute": cty.StringVal("SK"),
			"entitlement_pk_prefix": cty.StringVal("TENANT#1#USER#"), "entitlement_sk_prefix": cty.StringVal("ENT#"),
		}, layout},
		{"environment names no topic and no NOTIFY_* setting without notifications", map[string]cty.Value{"notifications_enabled": cty.False}, silent},
		{"environment passes the notification settings", map[string]cty.Value{
			"notify_thresholds":     cty.ListVal([]cty.Value{cty.NumberIntVal(50), cty.NumberFloatVal(90.5), cty.NumberIntVal(100)}),
			"notify_limit_rejected": cty.False, "notify_overage": cty.False, "notify_recovery_interval": cty.StringVal("30s"),
		}, notify},
		{"environment passes no thresholds as an empty NOTIFY_THRESHOLDS", map[string]cty.Value{"notify_thresholds": cty.ListValEmpty(cty.Number)}, noThresholds},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := env(c.in); !maps.Equal(got, c.want) {
				t.Errorf("environment %v, want %v", got, c.want)
			}
		})
	}
}

func TestLogGroup(t *testing.T) {
	m := loadModule(t, moduleDir)
	lg := m.resource(t, "aws_cloudwatch_log_group", "function")
	for _, c := range []struct {
		name string
		in   map[string]cty.Value
		want int64
	}{
		{"keeps logs 30 days by default", nil, 30},
		{"keeps logs as long as asked", map[string]cty.Value{"log_retention_days": cty.NumberIntVal(365)}, 365},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := m.evaluator(t, inputs(c.in))
			if got := asString(t, e.evalAttr(t, lg, "name")); got != "/aws/lambda/"+functionName {
				t.Errorf("log group %q, want the function's", got)
			}
			if got := asInt(t, e.evalAttr(t, lg, "retention_in_days")); got != c.want {
				t.Errorf("retention %d, want %d", got, c.want)
			}
		})
	}
}

func TestLedgerTable(t *testing.T) {
	m := loadModule(t, moduleDir)
	tb := m.resource(t, "aws_dynamodb_table", "ledger")
	e := m.evaluator(t, inputs(nil))
	for _, c := range []struct {
		name string
		b    *hclsyntax.Block
		attr string
		want cty.Value
	}{
		{"is named after project and env", tb, "name", cty.StringVal(ledgerName)},
		{"bills per request", tb, "billing_mode", cty.StringVal("PAY_PER_REQUEST")},
		{"is keyed by pk", tb, "hash_key", cty.StringVal("pk")},
		{"is sorted by sk", tb, "range_key", cty.StringVal("sk")},
		{"is protected from deletion by default", tb, "deletion_protection_enabled", cty.True},
		{"expires records through TTL on expiresAt", oneNested(t, tb, "ttl"), "attribute_name", cty.StringVal("expiresAt")},
		{"has TTL enabled", oneNested(t, tb, "ttl"), "enabled", cty.True},
		{"has point-in-time recovery", oneNested(t, tb, "point_in_time_recovery"), "enabled", cty.True},
		{"is encrypted server-side", oneNested(t, tb, "server_side_encryption"), "enabled", cty.True},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := e.evalAttr(t, c.b, c.attr); !got.RawEquals(c.want) {
				t.Errorf("%s = %#v, want %#v", c.attr, got, c.want)
			}
		})
	}
	t.Run("declares its keys and the pending index's as strings", func(t *testing.T) {
		got := map[string]string{}
		for _, a := range nested(tb, "attribute") {
			got[asString(t, e.evalAttr(t, a, "name"))] = asString(t, e.evalAttr(t, a, "type"))
		}
		if !maps.Equal(got, map[string]string{"pk": "S", "sk": "S", "pendingPk": "S", "pendingAt": "S"}) {
			t.Errorf("attributes %v, want the keys pk and sk and those of the index %s", got, dynamodb.PendingIndex)
		}
	})
	t.Run("deletion protection can be lifted for a disposable environment", func(t *testing.T) {
		e := m.evaluator(t, inputs(map[string]cty.Value{"ledger_deletion_protection": cty.False}))
		if got := e.evalAttr(t, tb, "deletion_protection_enabled"); !got.RawEquals(cty.False) {
			t.Errorf("deletion_protection_enabled = %#v", got)
		}
	})
}

func TestAlarmsNotifyOnCall(t *testing.T) {
	m := loadModule(t, moduleDir)
	e := m.evaluator(t, inputs(map[string]cty.Value{"alarm_actions": cty.ListVal([]cty.Value{cty.StringVal(snsTopicARN)})}))
	byMetric := map[string]*hclsyntax.Block{}
	for _, b := range m.blocksOf("resource", "aws_cloudwatch_metric_alarm") {
		key := asString(t, e.evalAttr(t, b, "namespace")) + " " + asString(t, e.evalAttr(t, b, "metric_name"))
		dims := e.evalAttr(t, b, "dimensions").AsValueMap()
		for _, d := range []string{"QueueName", "FunctionName"} {
			if v, ok := dims[d]; ok {
				key += " " + asString(t, v)
			}
		}
		byMetric[key] = b
	}
	for _, c := range []struct {
		name, metric string
		threshold    int64
		// missing is how missing data counts: "notBreaching" unless the
		// metric is published every minute whatever happens.
		missing       string
		periods, stat string
	}{
		{"when the DLQ holds a message", "AWS/SQS ApproximateNumberOfMessagesVisible aws_sqs_queue.dead_letter.name", 0, "notBreaching", "", ""},
		{"when the oldest queued message is older than the threshold", "AWS/SQS ApproximateAgeOfOldestMessage aws_sqs_queue.main.name", 300, "notBreaching", "", ""},
		{"when an invocation fails", "AWS/Lambda Errors aws_lambda_function.this.function_name", 0, "notBreaching", "", ""},
		{"when the function is throttled", "AWS/Lambda Throttles aws_lambda_function.this.function_name", 0, "notBreaching", "", ""},
		{"when a notification stays unpublished", metrics.Namespace + " OldestUnpublishedNotificationAge aws_lambda_function.this.function_name", 300, "notBreaching", "", ""},
		// Every hold sweep (every minute, on the schedule) reports the
		// age: no data means no sweep, which leaves expired holds
		// counting as used too.
		{"when an expired hold stays unreleased, or no hold sweep runs", metrics.Namespace + " OldestExpiredHoldAge aws_lambda_function.this.function_name", 300, "breaching", "2/2", "Maximum"},
		{"when the hold sweeps keep failing", metrics.Namespace + " HoldSweepsFailed aws_lambda_function.this.function_name", 0, "notBreaching", "3/3", "Sum"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, ok := byMetric[c.metric]
			if !ok {
				t.Fatalf("no alarm on %s (have %v)", c.metric, slices.Collect(maps.Keys(byMetric)))
			}
			if got := asString(t, e.evalAttr(t, b, "comparison_operator")); got != "GreaterThanThreshold" {
				t.Errorf("comparison %s", got)
			}
			if got := asInt(t, e.evalAttr(t, b, "threshold")); got != c.threshold {
				t.Errorf("threshold %d, want %d", got, c.threshold)
			}
			if got := asString(t, e.evalAttr(t, b, "treat_missing_data")); got != c.missing {
				t.Errorf("treat_missing_data %s, want %s (an idle queue or function stops publishing, which is not an outage; a sweep that stops is)", got, c.missing)
			}
			if c.periods != "" {
				got := fmt.Sprintf("%d/%d", asInt(t, e.evalAttr(t, b, "datapoints_to_alarm")), asInt(t, e.evalAttr(t, b, "evaluation_periods")))
				if got != c.periods || asInt(t, e.evalAttr(t, b, "period")) != 60 {
					t.Errorf("%s datapoints of one-minute periods, want %s", got, c.periods)
				}
			}
			if c.stat != "" {
				if got := asString(t, e.evalAttr(t, b, "statistic")); got != c.stat {
					t.Errorf("statistic %s, want %s", got, c.stat)
				}
			}
			for _, a := range []string{"alarm_actions", "ok_actions"} {
				if got := asStrings(t, e.evalAttr(t, b, a)); !slices.Equal(got, []string{snsTopicARN}) {
					t.Errorf("%s %v, want var.alarm_actions", a, got)
				}
			}
		})
	}
}

// dashboardMetric is one line of a metric widget.
type dashboardMetric struct {
	Namespace, Name string
	Dimensions      map[string]string
	Stat            string
}

func dashboardMetrics(t *testing.T, body string) []dashboardMetric {
	t.Helper()
	var dash struct {
		Widgets []struct {
			Type                string
			X, Y, Width, Height int
			Properties          struct {
				Stat    string
				Metrics [][]any
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &dash); err != nil {
		t.Fatalf("dashboard body: %v", err)
	}
	var out []dashboardMetric
	for _, w := range dash.Widgets {
		if w.X+w.Width > 24 {
			t.Errorf("widget at x=%d width=%d overflows the 24-column grid", w.X, w.Width)
		}
		for _, line := range w.Properties.Metrics {
			dm := dashboardMetric{Dimensions: map[string]string{}, Stat: w.Properties.Stat}
			var strs []string
			for _, el := range line {
				switch v := el.(type) {
				case string:
					strs = append(strs, v)
				case map[string]any:
					if s, ok := v["stat"].(string); ok {
						dm.Stat = s
					}
				}
			}
			if len(strs) < 2 || len(strs)%2 != 0 || strs[0] == "." {
				t.Fatalf("metric line %v: want namespace, name, then dimension pairs (no \".\" shorthand)", line)
			}
			dm.Namespace, dm.Name = strs[0], strs[1]
			for i := 2; i < len(strs); i += 2 {
				dm.Dimensions[strs[i]] = strs[i+1]
			}
			out = append(out, dm)
		}
	}
	return out
}

func TestDashboardShowsWhatOnCallNeeds(t *testing.T) {
	m := loadModule(t, moduleDir)
	e := m.evaluator(t, inputs(nil))
	charted := dashboardMetrics(t, asString(t, e.evalAttr(t, m.resource(t, "aws_cloudwatch_dashboard", "this"), "dashboard_body")))

	has := func(ns, name string, dims map[string]string, stat string) bool {
		return slices.ContainsFunc(charted, func(dm dashboardMetric) bool {
			return dm.Namespace == ns && dm.Name == name && maps.Equal(dm.Dimensions, dims) && (stat == "" || dm.Stat == stat)
		})
	}
	fn := map[string]string{"FunctionName": functionName}
	type want struct {
		ns, name string
		dims     map[string]string
		stat     string
	}
	cases := map[string]want{}
	for _, name := range []string{"EventsApplied", "EventsDuplicate", "EventsRejected", "EventsRetried", "EventsDeadLettered", "AmountConsumed",
		"NotificationsRecorded", "NotificationsPublished", "NotificationsFailed"} {
		cases["service metric "+name] = want{metrics.Namespace, name, fn, "Sum"}
	}
	cases["age of the oldest unpublished notification"] = want{metrics.Namespace, "OldestUnpublishedNotificationAge", fn, "Maximum"}
	decisions := map[string]string{"FunctionName": decisionsFunctionName}
	for _, name := range []string{"HoldsCommitted", "HoldsReleased", "HoldsExpired", "HoldSweepsFailed"} {
		cases["service metric "+name] = want{metrics.Namespace, name, fn, "Sum"}
	}
	for _, name := range []string{"HoldsReserved", "HoldsCommitted", "HoldsReleased"} {
		cases["the decisions function's "+name] = want{metrics.Namespace, name, decisions, "Sum"}
	}
	cases["age of the oldest expired hold"] = want{metrics.Namespace, "OldestExpiredHoldAge", fn, "Maximum"}
	for _, stat := range []string{"p50", "p99"} {
		cases["processing latency "+stat] = want{metrics.Namespace, "ProcessingLatency", fn, stat}
		cases["function duration "+stat] = want{"AWS/Lambda", "Duration", fn, stat}
	}
	for _, r := range usage.Reasons {
		cases["rejections with reason "+string(r)] = want{metrics.Namespace, "EventsRejected", map[string]string{"FunctionName": functionName, "Reason": string(r)}, "Sum"}
	}
	for _, q := range []string{queueName, dlqName} {
		cases["depth of "+q] = want{"AWS/SQS", "ApproximateNumberOfMessagesVisible", map[string]string{"QueueName": q}, ""}
	}
	cases["age of the oldest message"] = want{"AWS/SQS", "ApproximateAgeOfOldestMessage", map[string]string{"QueueName": queueName}, "Maximum"}
	cases["function errors"] = want{"AWS/Lambda", "Errors", fn, "Sum"}
	cases["function throttles"] = want{"AWS/Lambda", "Throttles", fn, "Sum"}
	cases["concurrent executions"] = want{"AWS/Lambda", "ConcurrentExecutions", fn, "Maximum"}

	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if !has(c.ns, c.name, c.dims, c.stat) {
				t.Errorf("dashboard lacks %s %s %v (stat %q)", c.ns, c.name, c.dims, c.stat)
			}
		})
	}
	t.Run("every service metric carries the FunctionName dimension", func(t *testing.T) {
		for _, dm := range charted {
			if fn := dm.Dimensions["FunctionName"]; dm.Namespace == metrics.Namespace && fn != functionName && (fn != decisionsFunctionName || !strings.HasPrefix(dm.Name, "Holds")) {
				t.Errorf("%s %v lacks FunctionName=%s (or the decisions function's, for its holds); EMF publishes every metric with it", dm.Name, dm.Dimensions, functionName)
			}
		}
	})
	t.Run("without the decisions function, no line of it", func(t *testing.T) {
		e := m.evaluator(t, inputs(map[string]cty.Value{"decisions_enabled": cty.False}))
		for _, dm := range dashboardMetrics(t, asString(t, e.evalAttr(t, m.resource(t, "aws_cloudwatch_dashboard", "this"), "dashboard_body"))) {
			if dm.Dimensions["FunctionName"] == decisionsFunctionName {
				t.Errorf("charted %s of the decisions function, which is not deployed", dm.Name)
			}
		}
	})
	t.Run("namespace is the one the function publishes to", func(t *testing.T) {
		if got := asString(t, e.local(t, "metric_namespace")); got != metrics.Namespace {
			t.Errorf("local.metric_namespace %q, want metrics.Namespace %q", got, metrics.Namespace)
		}
	})
	t.Run("rejection reasons match the Go code's", func(t *testing.T) {
		var want []string
		for _, r := range usage.Reasons {
			want = append(want, string(r))
		}
		if got := asStrings(t, e.local(t, "rejection_reasons")); !slices.Equal(got, want) {
			t.Errorf("local.rejection_reasons %v, want usage.Reasons %v", got, want)
		}
	})
}

func TestOutputs(t *testing.T) {
	m := loadModule(t, moduleDir)
	e := m.evaluator(t, inputs(nil))
	for name, want := range map[string]string{
		"usage_event_queue_url":   "aws_sqs_queue.main.url",
		"usage_event_queue_arn":   mainQueueARN,
		"dead_letter_queue_url":   "aws_sqs_queue.dead_letter.url",
		"dead_letter_queue_arn":   dlqARN,
		"function_name":           "aws_lambda_function.this.function_name",
		"function_arn":            "aws_lambda_function.this.arn",
		"ledger_table_name":       "aws_dynamodb_table.ledger.name",
		"ledger_table_arn":        ledgerARN,
		"dashboard_name":          "aws_cloudwatch_dashboard.this.dashboard_name",
		"decisions_function_name": "aws_lambda_function.decisions[0].function_name",
		"decisions_function_arn":  decisionsARN,

		"usage_notifications_topic_arn": topicARN,
	} {
		t.Run(name, func(t *testing.T) {
			out := m.block(t, "output", name)
			if got := asString(t, e.evalAttr(t, out, "value")); got != want {
				t.Errorf("value %s, want %s", got, want)
			}
			if d := asString(t, e.evalAttr(t, out, "description")); d == "" {
				t.Error("no description")
			}
		})
	}
	t.Run("the topic's ARN is null without notifications", func(t *testing.T) {
		e := m.evaluator(t, inputs(map[string]cty.Value{"notifications_enabled": cty.False}))
		if got := e.evalAttr(t, m.block(t, "output", "usage_notifications_topic_arn"), "value"); !got.IsNull() {
			t.Errorf("usage_notifications_topic_arn = %#v, want null", got)
		}
	})
	t.Run("decisions outputs are null without the decisions function", func(t *testing.T) {
		e := m.evaluator(t, inputs(map[string]cty.Value{"decisions_enabled": cty.False}))
		for _, name := range []string{"decisions_function_name", "decisions_function_arn", "decisions_invoke_policy_json"} {
			if got := e.evalAttr(t, m.block(t, "output", name), "value"); !got.IsNull() {
				t.Errorf("%s = %#v, want null", name, got)
			}
		}
	})
}

// What a caller attaches: one statement allowing exactly
// lambda:InvokeFunction on exactly the decisions function.
func TestDecisionsInvokePolicyGrantsOnlyInvokingTheDecisionsFunction(t *testing.T) {
	m := loadModule(t, moduleDir)
	e := m.evaluator(t, inputs(nil))
	out := m.block(t, "output", "decisions_invoke_policy_json")
	if got := m.source(attr(t, out, "value").Expr.Range()); got != "local.decisions_invoke_policy_json" {
		t.Fatalf("decisions_invoke_policy_json = %s, want local.decisions_invoke_policy_json", got)
	}
	var doc struct {
		Version   string
		Statement []map[string]any
	}
	if err := json.Unmarshal([]byte(asString(t, e.evalAttr(t, out, "value"))), &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	want := []map[string]any{{"Sid": "InvokeUsageDecisions", "Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": decisionsARN}}
	if doc.Version != "2012-10-17" || !slices.EqualFunc(doc.Statement, want, maps.Equal) {
		t.Errorf("invoke policy %+v, want version 2012-10-17 and exactly %v", doc, want)
	}
}

// The decisions function runs the consumer's package under its own name,
// role and log group, with the consumer's configuration minus the queue.
func TestDecisionsFunction(t *testing.T) {
	m := loadModule(t, moduleDir)
	fn := m.resource(t, "aws_lambda_function", "decisions")
	consumer := m.resource(t, "aws_lambda_function", "this")
	e := m.evaluator(t, inputs(nil))

	t.Run("exists unless decisions_enabled is false, with everything it needs", func(t *testing.T) {
		for _, c := range []struct {
			in   map[string]cty.Value
			want int64
		}{{nil, 1}, {map[string]cty.Value{"decisions_enabled": cty.True}, 1}, {map[string]cty.Value{"decisions_enabled": cty.False}, 0}} {
			e := m.evaluator(t, inputs(c.in))
			for _, b := range []*hclsyntax.Block{
				fn, m.resource(t, "aws_iam_role", "decisions"), m.resource(t, "aws_iam_role_policy", "decisions"),
				m.resource(t, "aws_cloudwatch_log_group", "decisions"), m.block(t, "data", "aws_iam_policy_document", "decisions"),
			} {
				if got := e.instances(t, b); got != c.want {
					t.Errorf("inputs %v: %s %s has %d instances, want %d", c.in, b.Type, strings.Join(b.Labels, "."), got, c.want)
				}
			}
			if got := e.instances(t, consumer); got != 1 {
				t.Errorf("inputs %v: the queue consumer has %d instances", c.in, got)
			}
		}
	})
	for _, c := range []struct {
		name, attr string
		want       cty.Value
	}{
		{"is named after project and env", "function_name", cty.StringVal(decisionsFunctionName)},
		{"runs as its own role", "role", cty.StringVal("aws_iam_role.decisions[0].arn")},
		{"is unreserved by default", "reserved_concurrent_executions", cty.NumberIntVal(-1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := e.evalAttr(t, fn, c.attr); !got.RawEquals(c.want) {
				t.Errorf("%s = %#v, want %#v", c.attr, got, c.want)
			}
		})
	}
	t.Run("runs the consumer's package the same way", func(t *testing.T) {
		for _, in := range []map[string]cty.Value{nil, {
			"architecture": cty.StringVal("x86_64"), "memory_size": cty.NumberIntVal(512), "timeout": cty.NumberIntVal(60),
		}} {
			e := m.evaluator(t, inputs(in))
			for _, a := range []string{"runtime", "handler", "architectures", "filename", "memory_size", "timeout"} {
				if got, want := e.evalAttr(t, fn, a), e.evalAttr(t, consumer, a); !got.RawEquals(want) {
					t.Errorf("inputs %v: %s = %#v, the consumer's is %#v", in, a, got, want)
				}
			}
			if got, want := m.source(attr(t, fn, "source_code_hash").Expr.Range()), m.source(attr(t, consumer, "source_code_hash").Expr.Range()); got != want {
				t.Errorf("source_code_hash = %s, the consumer's is %s", got, want)
			}
		}
	})
	t.Run("reserves the concurrency asked for", func(t *testing.T) {
		for _, n := range []int64{1, 25} {
			e := m.evaluator(t, inputs(map[string]cty.Value{"decisions_reserved_concurrency": cty.NumberIntVal(n)}))
			if got := asInt(t, e.evalAttr(t, fn, "reserved_concurrent_executions")); got != n {
				t.Errorf("decisions_reserved_concurrency %d: reserved_concurrent_executions %d", n, got)
			}
		}
		if _, ok := consumer.Body.Attributes["reserved_concurrent_executions"]; ok {
			t.Errorf("the queue consumer reserves concurrency; its event source's maximum_concurrency bounds it")
		}
	})
	t.Run("logs JSON to its own log group, created first", func(t *testing.T) {
		logging := oneNested(t, fn, "logging_config")
		if got := asString(t, e.evalAttr(t, logging, "log_format")); got != "JSON" {
			t.Errorf("log_format %q", got)
		}
		if got := asString(t, e.evalAttr(t, logging, "log_group")); got != "aws_cloudwatch_log_group.decisions[0].name" {
			t.Errorf("log_group %q", got)
		}
		if deps := m.source(attr(t, fn, "depends_on").Expr.Range()); !strings.Contains(deps, "aws_cloudwatch_log_group.decisions") || !strings.Contains(deps, "aws_iam_role_policy.decisions") {
			t.Errorf("depends_on %s lacks the log group or the role's policy", deps)
		}
		lg := m.resource(t, "aws_cloudwatch_log_group", "decisions")
		for _, days := range []int64{30, 365} {
			e := m.evaluator(t, inputs(map[string]cty.Value{"log_retention_days": cty.NumberIntVal(days)}))
			if got := asString(t, e.evalAttr(t, lg, "name")); got != "/aws/lambda/"+decisionsFunctionName {
				t.Errorf("log group %q", got)
			}
			if got := asInt(t, e.evalAttr(t, lg, "retention_in_days")); got != days {
				t.Errorf("retention %d, want %d", got, days)
			}
		}
	})
	t.Run("gets the consumer's configuration without the queue, and starts with it", func(t *testing.T) {
		env := func(e *evaluator, b *hclsyntax.Block) map[string]string {
			out := map[string]string{}
			for k, v := range e.eval(t, attr(t, oneNested(t, b, "environment"), "variables").Expr, nil).AsValueMap() {
				out[k] = asString(t, v)
			}
			return out
		}
		for _, c := range configurations {
			e := m.evaluator(t, inputs(c.in))
			got, want := env(e, fn), env(e, consumer)
			for _, queued := range []string{"DEAD_LETTER_QUEUE_URL", "USAGE_EVENT_QUEUE_URL", "REFUND_TARGET_WAIT"} {
				delete(want, queued)
			}
			if !maps.Equal(got, want) {
				t.Errorf("%s: environment %v, want the consumer's without the queue's settings %v", c.name, got, want)
			}
			for k, v := range got {
				if r, ok := awsValues[v]; ok {
					got[k] = r // what AWS fills in
				}
			}
			if _, err := config.Load(func(k string) string { return got[k] }); err != nil {
				t.Errorf("%s: the function refuses the environment %v: %v", c.name, got, err)
			}
		}
	})
}

// Lambda function and IAM role names are at most 64 characters: with the
// longest project and env the validation admits, every name still fits.
func TestNamesFitAWSLimitsForTheLongestProjectAndEnv(t *testing.T) {
	m := loadModule(t, moduleDir)
	in := inputs(map[string]cty.Value{
		"project": cty.StringVal("a" + strings.Repeat("b", 19)),
		"env":     cty.StringVal("e" + strings.Repeat("f", 15)),
	})
	for name, v := range in {
		if (name == "project" || name == "env") && !validationPasses(t, m, name, v) {
			t.Fatalf("%s %#v is not the longest valid value", name, v)
		}
	}
	e := m.evaluator(t, in)
	for _, c := range []struct {
		typ, name, attr string
		max             int
	}{
		{"aws_lambda_function", "this", "function_name", 64},
		{"aws_lambda_function", "decisions", "function_name", 64},
		{"aws_iam_role", "function", "name", 64},
		{"aws_iam_role", "decisions", "name", 64},
		{"aws_cloudwatch_event_rule", "sweeps", "name", 64},
		{"aws_sns_topic", "notifications", "name", 256},
		{"aws_cloudwatch_metric_alarm", "notifications_unpublished", "alarm_name", 255},
	} {
		if got := asString(t, e.evalAttr(t, m.resource(t, c.typ, c.name), c.attr)); len(got) > c.max {
			t.Errorf("%s.%s %s %q is %d characters, AWS allows %d", c.typ, c.name, c.attr, got, len(got), c.max)
		}
	}
}

func TestInputsAreTypedAndDescribed(t *testing.T) {
	m := loadModule(t, moduleDir)
	for _, b := range m.blocksOf("variable", "") {
		t.Run(b.Labels[0], func(t *testing.T) {
			for _, a := range []string{"type", "description"} {
				if _, ok := b.Body.Attributes[a]; !ok {
					t.Errorf("no %s", a)
				}
			}
		})
	}
}

// validationPasses evaluates every validation block of a variable for a value.
func validationPasses(t *testing.T, m *tfModule, variable string, value cty.Value) bool {
	t.Helper()
	b := m.block(t, "variable", variable)
	e := m.evaluator(t, inputs(map[string]cty.Value{variable: value}))
	for _, v := range nested(b, "validation") {
		if got := e.evalAttr(t, v, "condition"); !got.True() {
			return false
		}
	}
	return true
}

func TestInputValidationRejectsWhatAWSWouldRejectAtApply(t *testing.T) {
	m := loadModule(t, moduleDir)
	str, num := cty.StringVal, cty.NumberIntVal
	for _, c := range []struct {
		variable string
		value    cty.Value
		valid    bool
	}{
		{"project", str("acme"), true},
		{"project", str("Acme"), false},
		{"project", str("a-project-name-too-long"), false},
		{"env", str("prod"), true},
		{"env", str("prod_eu"), false},
		{"entitlements_table_name", str("acme-prod-entitlements"), true},
		{"entitlements_table_name", str("ab"), false},
		{"entitlements_table_arn", str(entitlementsTableARN), true},
		{"entitlements_table_arn", str("arn:aws:dynamodb:eu-west-1:111122223333:table/*"), false},
		{"entitlements_table_arn", str("acme-prod-entitlements"), false},
		{"package_path", str("dist/function.zip"), true},
		{"package_path", str("bootstrap"), false},
		{"architecture", str("arm64"), true},
		{"architecture", str("x86_64"), true},
		{"architecture", str("amd64"), false},
		{"memory_size", num(128), true},
		{"memory_size", num(127), false},
		{"memory_size", num(10241), false},
		{"timeout", num(900), true},
		{"timeout", num(901), false},
		{"timeout", num(deadlineMarginSeconds + 1), true},
		{"timeout", num(deadlineMarginSeconds), false},
		{"timeout", num(1), false},
		{"timeout", num(0), false},
		{"entitlement_pk_attribute", str("PK"), true},
		{"entitlement_pk_attribute", str(""), false},
		{"entitlement_pk_attribute", str(" pk"), false},
		{"entitlement_pk_attribute", str(strings.Repeat("a", 256)), false},
		{"entitlement_sk_attribute", str("entitlement key"), true},
		{"entitlement_sk_attribute", str("sk\n"), false},
		{"entitlement_pk_prefix", str("TENANT#1#USER#"), true},
		{"entitlement_pk_prefix", str(""), false},
		{"entitlement_sk_prefix", str("E "), true},
		{"entitlement_sk_prefix", str(""), false},
		{"batch_size", cty.NullVal(cty.Number), true},
		{"batch_size", num(10000), true},
		{"batch_size", num(0), false},
		{"batch_size", num(10001), false},
		{"batch_size", cty.NumberFloatVal(10.5), false},
		{"maximum_batching_window_in_seconds", cty.NullVal(cty.Number), true},
		{"maximum_batching_window_in_seconds", num(0), true},
		{"maximum_batching_window_in_seconds", num(301), false},
		{"maximum_concurrency", num(2), true},
		{"maximum_concurrency", num(1), false},
		{"maximum_concurrency", num(1001), false},
		{"max_receive_count", num(0), false},
		{"message_retention_seconds", num(1209600), true},
		{"message_retention_seconds", num(1209601), false},
		{"dlq_message_retention_seconds", num(59), false},
		{"dedup_retention", str("168h"), true},
		{"dedup_retention", str("1h30m"), true},
		{"dedup_retention", str("1.5h"), true},
		{"dedup_retention", str("14d"), true},
		{"dedup_retention", str("1w"), false},
		{"dedup_retention", str("-1h"), false},
		{"dedup_retention", str("168"), false},
		{"dedup_retention", str("1h 30m"), false},
		{"dedup_retention", str(""), false},
		{"log_retention_days", num(30), true},
		{"log_retention_days", num(3653), true},
		{"log_retention_days", num(31), false},
		{"log_retention_days", num(0), false},
		{"log_level", str("info"), true},
		{"log_level", str("TRACE"), false},
		{"kms_key_arn", cty.NullVal(cty.String), true},
		{"kms_key_arn", str(kmsKeyARN), true},
		{"kms_key_arn", str("arn:aws:kms:eu-west-1:111122223333:alias/queues"), false},
		{"alarm_actions", cty.ListValEmpty(cty.String), true},
		{"alarm_actions", cty.ListVal([]cty.Value{str(snsTopicARN)}), true},
		{"alarm_actions", cty.ListVal([]cty.Value{str("arn:aws:sqs:eu-west-1:111122223333:q")}), false},
		{"oldest_message_age_alarm_seconds", num(59), false},
		{"decisions_reserved_concurrency", cty.NullVal(cty.Number), true},
		{"decisions_reserved_concurrency", num(1), true},
		{"decisions_reserved_concurrency", num(100), true},
		{"decisions_reserved_concurrency", num(0), false},
		{"decisions_reserved_concurrency", num(-1), false},
		{"decisions_reserved_concurrency", cty.NumberFloatVal(2.5), false},
		{"notifications_kms_key_arn", cty.NullVal(cty.String), true},
		{"notifications_kms_key_arn", str(notificationsKeyARN), true},
		{"notifications_kms_key_arn", str("arn:aws:kms:eu-west-1:111122223333:alias/aws/sns"), false},
		{"notifications_kms_key_arn", str("alias/aws/sns"), false},
		{"notify_thresholds", cty.ListValEmpty(cty.Number), true},
		{"notify_thresholds", cty.ListVal([]cty.Value{num(80), num(100)}), true},
		{"notify_thresholds", cty.ListVal([]cty.Value{cty.NumberFloatVal(0.5), cty.NumberFloatVal(99.9)}), true},
		{"notify_thresholds", cty.ListVal([]cty.Value{num(0)}), false},
		{"notify_thresholds", cty.ListVal([]cty.Value{num(80), num(101)}), false},
		{"notify_thresholds", cty.ListVal([]cty.Value{num(-10)}), false},
		{"notify_recovery_interval", str("1m"), true},
		{"notify_recovery_interval", str("1m30s"), true},
		{"notify_recovery_interval", str("1"), false},
		{"notify_recovery_interval", str("-1m"), false},
		{"notify_recovery_interval", str(""), false},
		{"oldest_unpublished_notification_alarm_seconds", num(120), true},
		{"oldest_unpublished_notification_alarm_seconds", num(119), false},
		{"oldest_unpublished_notification_alarm_seconds", num(1209601), false},
	} {
		name := "rejects"
		if c.valid {
			name = "accepts"
		}
		t.Run(c.variable+"/"+name+"/"+c.value.GoString(), func(t *testing.T) {
			if got := validationPasses(t, m, c.variable, c.value); got != c.valid {
				t.Errorf("validation passed = %v, want %v", got, c.valid)
			}
		})
	}
}

// The module reads DEDUP_RETENTION as the function does (config.ParseRetention):
// what plan accepts, the function accepts at start, with the same length.
func TestDedupRetentionIsReadLikeTheFunctionReadsIt(t *testing.T) {
	m := loadModule(t, moduleDir)
	for _, s := range []string{
		"168h", "336h", "14d", "7d", "1d", "1h", "3600s", "60m", "1h30m", "1.5h", "2h45m30.5s", "90m",
		"59m", "3599s", "0d", "0h", "-1h", "-7d", "7 d", "1w", "7D", "168", "", "h", "1.5d",
	} {
		t.Run(strconv.Quote(s), func(t *testing.T) {
			d, goErr := config.ParseRetention(s)
			e := m.evaluator(t, inputs(map[string]cty.Value{"dedup_retention": cty.StringVal(s)}))
			tfOK := validationPasses(t, m, "dedup_retention", cty.StringVal(s))
			var seconds float64
			if tfOK {
				seconds, _ = e.local(t, "dedup_retention_seconds").AsBigFloat().Float64()
				tfOK = seconds >= 3600 // the precondition's floor
			}
			if tfOK != (goErr == nil) {
				t.Fatalf("module accepts = %v, function accepts = %v (%v)", tfOK, goErr == nil, goErr)
			}
			if tfOK && math.Abs(seconds-d.Seconds()) > 1e-6 {
				t.Errorf("module reads %vs, function reads %v", seconds, d)
			}
		})
	}
}

// A timeout the function can do nothing with is rejected at plan: the whole
// invocation would be inside the deadline margin, so every message would be
// redelivered until the redrive policy dead-letters it.
func TestTimeoutMustExceedTheDeadlineMargin(t *testing.T) {
	m := loadModule(t, moduleDir)
	for timeout := int64(1); timeout <= deadlineMarginSeconds+2; timeout++ {
		want := timeout > deadlineMarginSeconds
		if got := validationPasses(t, m, "timeout", cty.NumberIntVal(timeout)); got != want {
			t.Errorf("timeout %d s: validation passed = %v, want %v", timeout, got, want)
		}
	}
	b := m.block(t, "variable", "timeout")
	var msgs []string
	for _, v := range nested(b, "validation") {
		msgs = append(msgs, asString(t, m.evaluator(t, inputs(nil)).evalAttr(t, v, "error_message")))
	}
	if !slices.ContainsFunc(msgs, func(s string) bool { return strings.Contains(s, "deadline margin") && strings.Contains(s, "2 s") }) {
		t.Errorf("no validation message explains the deadline margin: %q", msgs)
	}
}

// awsValues are what AWS fills in for the placeholders the harness
// evaluates resource attributes to, where the function would reject the
// placeholder.
var awsValues = map[string]string{
	"aws_dynamodb_table.ledger.name": ledgerName,
	"aws_sqs_queue.dead_letter.url":  "https://sqs.eu-west-1.amazonaws.com/111122223333/" + dlqName,
	"aws_sqs_queue.main.url":         "https://sqs.eu-west-1.amazonaws.com/111122223333/" + queueName,
	topicARN:                         "arn:aws:sns:eu-west-1:111122223333:" + topicName,
}

// The environment the module gives the function is one the function starts
// with (config.Load), and it reads the entitlements table's key layout
// exactly as the module's inputs state it.
func TestEntitlementKeyLayoutReachesTheFunction(t *testing.T) {
	m := loadModule(t, moduleDir)
	fn := m.resource(t, "aws_lambda_function", "this")
	// Placeholders the function would reject (resource addresses) become
	// what AWS fills in.
	real := awsValues
	for _, c := range []struct {
		name string
		in   map[string]cty.Value
		want config.Config
	}{
		{"defaults: the documented layout", nil, config.Config{KeyLayout: config.KeyLayout{PartitionAttr: "pk", SortAttr: "sk", UserPrefix: "USER#", KeyPrefix: "ENTITLEMENT#", PoolPrefix: "POOL#"}}},
		{"access-service's own layout", map[string]cty.Value{
			"entitlement_pk_attribute": cty.StringVal("PK"), "entitlement_sk_attribute": cty.StringVal("entitlement key"),
			"entitlement_pk_prefix": cty.StringVal("TENANT#1#USER#"), "entitlement_sk_prefix": cty.StringVal("E "),
			"pool_pk_prefix": cty.StringVal("TENANT#1#POOL#"),
		}, config.Config{KeyLayout: config.KeyLayout{PartitionAttr: "PK", SortAttr: "entitlement key", UserPrefix: "TENANT#1#USER#", KeyPrefix: "E ", PoolPrefix: "TENANT#1#POOL#"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := inputs(c.in)
			for name, v := range c.in {
				if !validationPasses(t, m, name, v) {
					t.Fatalf("module rejects %s = %#v", name, v)
				}
			}
			env := map[string]string{}
			vars := m.evaluator(t, in).eval(t, attr(t, oneNested(t, fn, "environment"), "variables").Expr, nil)
			for k, v := range vars.AsValueMap() {
				env[k] = asString(t, v)
				if r, ok := real[env[k]]; ok {
					env[k] = r
				}
			}
			cfg, err := config.Load(func(k string) string { return env[k] })
			if err != nil {
				t.Fatalf("the function refuses the module's environment %v: %v", env, err)
			}
			got := config.Config{KeyLayout: cfg.KeyLayout}
			if got != c.want {
				t.Errorf("function reads key layout %+v, want %+v", got, c.want)
			}
		})
	}
}

// Every setting the on-call guide tells the reader to check or change is one
// the module can set on the function (worker-only settings aside: the module
// deploys no worker).
func TestOperationsGuideNamesOnlySettingsTheModuleSets(t *testing.T) {
	guide, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	workerOnly := []string{"USAGE_EVENT_QUEUE_URL", "WORKER_POLLERS", "METRICS_ADDR", "HOLD_SWEEP_INTERVAL"}
	m := loadModule(t, moduleDir)
	fn := m.resource(t, "aws_lambda_function", "this")
	set := map[string]bool{}
	for _, c := range configurations {
		vars := m.evaluator(t, inputs(c.in)).eval(t, attr(t, oneNested(t, fn, "environment"), "variables").Expr, nil)
		for k := range vars.AsValueMap() {
			set[k] = true
		}
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	// Every setting: the rows of the README's configuration table.
	_, table, _ := strings.Cut(string(readme), "\n## Configuration\n")
	table, _, _ = strings.Cut(table, "\n## ")
	settings := regexp.MustCompile("(?m)^\\| `([A-Z][A-Z0-9_]+)` \\|").FindAllSubmatch([]byte(table), -1)
	if len(settings) < 10 {
		t.Fatalf("found %d settings in the README's configuration table", len(settings))
	}
	for _, m := range settings {
		name := string(m[1])
		if !regexp.MustCompile(`\b`+name+`\b`).Match(guide) || slices.Contains(workerOnly, name) {
			continue
		}
		if !set[name] {
			t.Errorf("docs/operations.md names %s, which the module never sets on the function: add a module variable for it", name)
		}
	}
}

// Deduplication must outlive the DLQ's 14-day retention by default, so a
// message redriven on its last day is still recognised as a duplicate.
func TestDedupRetentionDefaultCoversTheDLQRetention(t *testing.T) {
	m := loadModule(t, moduleDir)
	e := m.evaluator(t, inputs(nil))
	seconds, _ := e.local(t, "dedup_retention_seconds").AsBigFloat().Float64()
	if seconds < 14*86400 {
		t.Errorf("default dedup_retention is %v s, want at least 14 days (336h)", seconds)
	}
	d, err := config.ParseRetention(asString(t, e.eval(t, attr(t, m.block(t, "variable", "dedup_retention"), "default").Expr, nil)))
	if err != nil || d.Hours() < 336 {
		t.Errorf("the function reads the default dedup_retention as %v (%v), want at least 336h", d, err)
	}
}

func TestPreconditionsRejectInconsistentInputsAtPlan(t *testing.T) {
	m := loadModule(t, moduleDir)
	str, num := cty.StringVal, cty.NumberIntVal
	for _, c := range []struct {
		name     string
		resource [2]string
		in       map[string]cty.Value
		pass     bool
	}{
		{"defaults are consistent: batch", [2]string{"aws_lambda_event_source_mapping", "queue"}, nil, true},
		{"batch over 10 needs a batching window", [2]string{"aws_lambda_event_source_mapping", "queue"}, map[string]cty.Value{"maximum_batching_window_in_seconds": num(0)}, false},
		{"batch of 10 needs no batching window", [2]string{"aws_lambda_event_source_mapping", "queue"}, map[string]cty.Value{"batch_size": num(10), "maximum_batching_window_in_seconds": num(0)}, true},
		{"the seed's batch of 20 with its 1 s window", [2]string{"aws_lambda_event_source_mapping", "queue"}, map[string]cty.Value{"batch_size": num(20), "maximum_batching_window_in_seconds": num(1)}, true},
		{"FIFO defaults are consistent", [2]string{"aws_lambda_event_source_mapping", "queue"}, map[string]cty.Value{"fifo_queue": cty.True}, true},
		{"FIFO batch over 10", [2]string{"aws_lambda_event_source_mapping", "queue"}, map[string]cty.Value{"fifo_queue": cty.True, "batch_size": num(20)}, false},
		{"FIFO with a batching window", [2]string{"aws_lambda_event_source_mapping", "queue"}, map[string]cty.Value{"fifo_queue": cty.True, "maximum_batching_window_in_seconds": num(1)}, false},
		{"FIFO with a window of 0", [2]string{"aws_lambda_event_source_mapping", "queue"}, map[string]cty.Value{"fifo_queue": cty.True, "maximum_batching_window_in_seconds": num(0)}, true},
		{"defaults are consistent: function", [2]string{"aws_lambda_function", "this"}, nil, true},
		{"dedup retention shorter than the DLQ retention", [2]string{"aws_lambda_function", "this"}, map[string]cty.Value{"dedup_retention": str("168h")}, false},
		{"dedup retention in mixed units covering the DLQ", [2]string{"aws_lambda_function", "this"}, map[string]cty.Value{"dedup_retention": str("335h59m60s")}, true},
		{"dedup retention covering a shorter DLQ retention", [2]string{"aws_lambda_function", "this"}, map[string]cty.Value{"dedup_retention": str("168h"), "dlq_message_retention_seconds": num(7 * 86400)}, true},
		{"dedup retention in whole days", [2]string{"aws_lambda_function", "this"}, map[string]cty.Value{"dedup_retention": str("14d")}, true},
		{"dedup retention under the function's 1h minimum", [2]string{"aws_lambda_function", "this"}, map[string]cty.Value{"dedup_retention": str("30m"), "dlq_message_retention_seconds": num(60), "message_retention_seconds": num(60)}, false},
		{"entitlements ARN of another table", [2]string{"aws_lambda_function", "this"}, map[string]cty.Value{"entitlements_table_name": str("other-table")}, false},
		{"one attribute for both entitlement keys", [2]string{"aws_lambda_function", "this"}, map[string]cty.Value{"entitlement_sk_attribute": str("pk")}, false},
		{"custom entitlement key attributes", [2]string{"aws_lambda_function", "this"}, map[string]cty.Value{"entitlement_pk_attribute": str("PK"), "entitlement_sk_attribute": str("SK")}, true},
		{"defaults are consistent: queue", [2]string{"aws_sqs_queue", "main"}, nil, true},
		{"DLQ retention shorter than the queue's", [2]string{"aws_sqs_queue", "main"}, map[string]cty.Value{"dlq_message_retention_seconds": num(86400)}, false},
		{"defaults are consistent: age alarm", [2]string{"aws_cloudwatch_metric_alarm", "queue_oldest_message_age"}, nil, true},
		{"age alarm beyond the queue's retention", [2]string{"aws_cloudwatch_metric_alarm", "queue_oldest_message_age"}, map[string]cty.Value{"oldest_message_age_alarm_seconds": num(400000)}, false},
		{"defaults are consistent: notifications topic", [2]string{"aws_sns_topic", "notifications"}, nil, true},
		{"recovery interval under the functions' 1s", [2]string{"aws_sns_topic", "notifications"}, map[string]cty.Value{"notify_recovery_interval": str("500ms")}, false},
		{"recovery interval over the functions' 24h", [2]string{"aws_sns_topic", "notifications"}, map[string]cty.Value{"notify_recovery_interval": str("24h1s")}, false},
		{"recovery interval of 24h", [2]string{"aws_sns_topic", "notifications"}, map[string]cty.Value{"notify_recovery_interval": str("23h60m")}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := m.resource(t, c.resource[0], c.resource[1])
			e := m.evaluator(t, inputs(c.in))
			pass := true
			for _, lc := range nested(b, "lifecycle") {
				for _, pre := range nested(lc, "precondition") {
					if !e.evalAttr(t, pre, "condition").True() {
						pass = false
					}
				}
			}
			if pass != c.pass {
				t.Errorf("preconditions pass = %v, want %v", pass, c.pass)
			}
		})
	}
}

func TestExampleWiresTheModuleToAccessServiceTable(t *testing.T) {
	mod := loadModule(t, moduleDir)
	ex := loadModule(t, exampleDir)
	call := ex.block(t, "module", "usage_event_service")
	if got := ex.source(attr(t, call, "source").Expr.Range()); got != `"../../services/usage-event-service"` {
		t.Errorf("module source %s", got)
	}
	for _, c := range []struct{ input, want string }{
		{"entitlements_table_name", "var.entitlements_table_name"},
		{"entitlements_table_arn", "var.entitlements_table_arn"},
	} {
		if got := ex.source(attr(t, call, c.input).Expr.Range()); got != c.want {
			t.Errorf("example passes %s = %s, want %s", c.input, got, c.want)
		}
	}
	t.Run("sets every required input", func(t *testing.T) {
		for _, v := range mod.blocksOf("variable", "") {
			if _, hasDefault := v.Body.Attributes["default"]; !hasDefault {
				if _, ok := call.Body.Attributes[v.Labels[0]]; !ok {
					t.Errorf("example does not set required input %s", v.Labels[0])
				}
			}
		}
	})
	t.Run("re-exports the queue, the decisions function and the notifications topic", func(t *testing.T) {
		for name, want := range map[string]string{
			"usage_event_queue_url":        "module.usage_event_service.usage_event_queue_url",
			"usage_event_queue_arn":        "module.usage_event_service.usage_event_queue_arn",
			"decisions_function_name":      "module.usage_event_service.decisions_function_name",
			"decisions_function_arn":       "module.usage_event_service.decisions_function_arn",
			"decisions_invoke_policy_json": "module.usage_event_service.decisions_invoke_policy_json",

			"usage_notifications_topic_arn": "module.usage_event_service.usage_notifications_topic_arn",
		} {
			if got := ex.source(attr(t, ex.block(t, "output", name), "value").Expr.Range()); got != want {
				t.Errorf("output %s = %s, want %s", name, got, want)
			}
		}
	})
}

func TestREADMEDocumentsTheWildcardsAndApplyOrder(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(moduleDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"aws:SecureTransport", "`sqs:*`", "`\"*\"`", ":*", "access-service", "AWSLambdaBasicExecutionRole"} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("README.md does not mention %s", want)
		}
	}
	for _, b := range loadModule(t, moduleDir).blocksOf("output", "") {
		if !strings.Contains(string(readme), "`"+b.Labels[0]+"`") {
			t.Errorf("README.md does not document output %s", b.Labels[0])
		}
	}
	for _, b := range loadModule(t, moduleDir).blocksOf("variable", "") {
		if !strings.Contains(string(readme), "`"+b.Labels[0]+"`") {
			t.Errorf("README.md does not document input %s", b.Labels[0])
		}
	}
}

// Tracing is off by default: no active tracing, no layer, no OTEL_*
// variable, no X-Ray grant. xray_tracing turns on Lambda's active tracing
// on both functions; adot_layer_arn adds the collector layer and the
// environment that makes the binary export to it (read back with the
// binary's own configuration code); either grants exactly X-Ray's two
// write actions, to both roles.
func TestTracingIsOffByDefaultAndTheModuleCanTurnItOn(t *testing.T) {
	m := loadModule(t, moduleDir)
	functions := map[string]*hclsyntax.Block{"this": m.resource(t, "aws_lambda_function", "this"), "decisions": m.resource(t, "aws_lambda_function", "decisions")}
	for _, c := range configurations {
		t.Run(c.name, func(t *testing.T) {
			in := inputs(c.in)
			e := m.evaluator(t, in)
			_, adot := in["adot_layer_arn"]
			xray, ok := in["xray_tracing"]
			if !ok {
				xray = cty.False
			}
			for name, fn := range functions {
				var active int
				for _, b := range nested(fn, "dynamic") {
					if b.Labels[0] == "tracing_config" {
						active = e.eval(t, attr(t, b, "for_each").Expr, nil).LengthInt()
						if mode := asString(t, e.eval(t, attr(t, oneNested(t, b, "content"), "mode").Expr, nil)); mode != "Active" {
							t.Errorf("%s: tracing mode %q, want Active", name, mode)
						}
					}
				}
				if want := xray.True(); (active == 1) != want {
					t.Errorf("%s: active tracing %v, want %v", name, active == 1, want)
				}
				layers := e.evalAttr(t, fn, "layers")
				if adot != (layers.LengthInt() == 1) || (adot && asString(t, layers.Index(cty.NumberIntVal(0))) != adotLayerARN) {
					t.Errorf("%s: layers %#v, want the ADOT layer only when given", name, layers)
				}
				env := map[string]string{}
				for k, v := range e.eval(t, attr(t, oneNested(t, fn, "environment"), "variables").Expr, nil).AsValueMap() {
					env[k] = asString(t, v)
					if r, ok := awsValues[env[k]]; ok {
						env[k] = r
					}
				}
				cfg, err := config.Load(func(k string) string { return env[k] })
				if err != nil {
					t.Errorf("%s: the function refuses the environment %v: %v", name, env, err)
				}
				_, otlp := in["tracing_environment"]
				if cfg.Tracing.Enabled != (adot || otlp) {
					t.Errorf("%s: the binary reads tracing %v from %v, want %v", name, cfg.Tracing.Enabled, env, adot || otlp)
				}
				if ids, ok := in["trace_ids"]; ok && ids.False() && cfg.Tracing.IDs {
					t.Errorf("%s: trace_ids = false, but the binary would put user IDs on spans (%v)", name, env)
				}
				for k := range env {
					if strings.HasPrefix(k, "OTEL_") && !adot && !otlp {
						t.Errorf("%s: %s set with tracing off", name, k)
					}
				}
			}
			for _, role := range roles {
				want := map[string][]string{}
				if xrayWrite(in) {
					want["*"] = []string{"xray:PutTelemetryRecords", "xray:PutTraceSegments"}
				}
				assertGrants(t, role+" X-Ray", grants(t, rolePolicy(t, e, role), "xray:"), want)
			}
		})
	}
}
