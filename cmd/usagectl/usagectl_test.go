package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/sqs"
	"github.com/usage-event-service/usage-event-service/usage"
)

func TestMain(m *testing.M) { emulator.Main(m) }

// cli runs the built usagectl binary as a user would: real flags, the
// process environment (pointed at the emulators by emulator.Env) plus
// extra variables.
type cli struct {
	bin string
	env []string // extra NAME=value entries, appended last (so they win)
}

type result struct {
	stdout, stderr string
	code           int
}

func (c cli) with(env ...string) cli {
	return cli{bin: c.bin, env: append(append([]string{}, c.env...), env...)}
}

func (c cli) run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("usagectl %s: %v", strings.Join(args, " "), err)
	}
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

// must runs a command that has to succeed.
func (c cli) must(t *testing.T, args ...string) result {
	t.Helper()
	r := c.run(t, "", args...)
	if r.code != 0 {
		t.Fatalf("usagectl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return v
}

// build compiles usagectl into a temporary directory, once per test.
func build(t *testing.T) cli {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "usagectl")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return cli{bin: bin}
}

// stack is a fresh set of resources made by "usagectl setup --local".
type stack struct {
	cli
	sqs    *awssqs.Client
	queues setupResult
}

func newStack(t *testing.T, c cli) *stack {
	t.Helper()
	emulator.Env(t)
	r := c.must(t, "setup", "--local", "--json",
		"--queue", emulator.UniqueName(t, "q"),
		"--ledger-table", emulator.UniqueName(t, "ledger"),
		"--entitlements-table", emulator.UniqueName(t, "ent"))
	res := decodeJSON[setupResult](t, r.stdout)
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &stack{
		cli: c.with("USAGE_EVENT_QUEUE_URL="+res.Queue.URL, "DEAD_LETTER_QUEUE_URL="+res.DeadLetterQueue.URL,
			"ENTITLEMENTS_TABLE="+res.EntitlementsTable.Name, "USAGE_LEDGER_TABLE="+res.LedgerTable.Name),
		sqs:    awssqs.NewFromConfig(cfg),
		queues: res,
	}
}

func (s *stack) depth(t *testing.T, url string) int {
	t.Helper()
	out, err := s.sqs.GetQueueAttributes(context.Background(), &awssqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages},
	})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)])
	return n
}

// receiveBodies receives every visible message of a queue (hiding them
// for the rest of the test) and returns their bodies.
func (s *stack) receiveBodies(t *testing.T, url string) []string {
	t.Helper()
	var bodies []string
	for {
		out, err := s.sqs.ReceiveMessage(context.Background(), &awssqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 600,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return bodies
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
		}
	}
}

// receiveAll receives every visible message of a queue with its
// attributes (hiding them for the rest of the test).
func (s *stack) receiveAll(t *testing.T, url string) []sqstypes.Message {
	t.Helper()
	var msgs []sqstypes.Message
	for {
		out, err := s.sqs.ReceiveMessage(context.Background(), &awssqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 600, MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return msgs
		}
		msgs = append(msgs, out.Messages...)
	}
}

func TestUsagectl(t *testing.T) {
	c := build(t)
	emulator.Env(t)

	t.Run("every command has --help and exits 0", func(t *testing.T) {
		cases := [][]string{
			{"--help"}, {"-h"}, {"help"}, {"help", "send"},
			{"send", "--help"}, {"usage", "--help"}, {"entitlement", "put", "--help"}, {"setup", "--help"},
			{"dlq", "list", "--help"}, {"dlq", "redrive", "--help"}, {"dlq", "--help"}, {"entitlement", "--help"},
			{"balance", "--help"}, {"refund", "--help"}, {"history", "--help"},
			{"holds", "--help"}, {"reserve", "--help"}, {"commit", "--help"}, {"release", "--help"},
			{"grant", "--help"}, {"void", "--help"}, {"grants", "--help"},
			{"pool", "--help"}, {"pool", "put", "--help"}, {"pool", "show", "--help"},
		}
		for _, args := range cases {
			r := c.run(t, "", args...)
			if r.code != 0 || !strings.Contains(r.stdout, "usage") || strings.Contains(r.stdout, "%!") || r.stderr != "" {
				t.Errorf("usagectl %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), r.code, r.stdout, r.stderr)
			}
		}
		r := c.run(t, "", "send", "--help")
		for _, want := range []string{"usagectl send (--user U --key K | --file FILE|-)", "--idempotency-key", "--file", "--queue-url", `(default "1")`} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("send --help lacks %q:\n%s", want, r.stdout)
			}
		}
	})

	t.Run("completion scripts for bash, zsh and fish", func(t *testing.T) {
		for shell, want := range map[string]string{"bash": "complete -o default -F __start_usagectl usagectl", "zsh": "#compdef usagectl", "fish": "complete -c usagectl"} {
			r := c.run(t, "", "completion", shell)
			if r.code != 0 || !strings.Contains(r.stdout, want) || r.stderr != "" {
				t.Errorf("completion %s: exit %d, stderr %q, script lacks %q", shell, r.code, r.stderr, want)
			}
		}
		// The hidden request the scripts make: flag values complete too.
		r := c.run(t, "", "__complete", "dlq", "redrive", "--reason", "")
		for _, want := range []string{"none", "ENTITLEMENT_NOT_FOUND", "LIMIT_EXCEEDED"} {
			if !strings.Contains(r.stdout, want+"\n") {
				t.Errorf("completing --reason: %q lacks %s", r.stdout, want)
			}
		}
	})

	t.Run("usage and configuration errors exit 2 with a message on stderr", func(t *testing.T) {
		noQueue := c.with("USAGE_EVENT_QUEUE_URL=", "DEAD_LETTER_QUEUE_URL=", "ENTITLEMENTS_TABLE=")
		tests := []struct {
			name string
			c    cli
			args []string
			want string
		}{
			{"no command", c, nil, "no command given"},
			{"unknown command", c, []string{"sned"}, `unknown command "sned"`},
			{"unknown flag", c, []string{"send", "--bogus"}, "unknown flag: --bogus"},
			{"bad flag value", c, []string{"send", "--file", "x", "--concurrency", "many"}, `invalid argument "many" for "--concurrency"`},
			{"positional argument", c, []string{"usage", "u-1"}, `unexpected argument "u-1"`},
			{"missing --user", c, []string{"send", "--key", "k"}, "--user is required"},
			{"invalid amount", c, []string{"send", "--user", "u", "--key", "k", "--amount", "0"}, "INVALID_AMOUNT"},
			{"amount not a number", c, []string{"send", "--user", "u", "--key", "k", "--amount", "ten"}, "INVALID_AMOUNT"},
			{"metadata not an object", c, []string{"send", "--user", "u", "--key", "k", "--metadata", "[1]"}, "INVALID_METADATA"},
			{"--file with --user", c, []string{"send", "--file", "x", "--user", "u"}, "cannot be combined with --file"},
			{"no queue configured", noQueue, []string{"send", "--user", "u", "--key", "k"}, "USAGE_EVENT_QUEUE_URL"},
			{"bad queue URL", c, []string{"send", "--user", "u", "--key", "k", "--queue-url", "not-a-url"}, "--queue-url"},
			{"no AWS region", c.with("AWS_REGION="), []string{"send", "--user", "u", "--key", "k", "--queue-url", "http://localhost:1/q"}, "AWS_REGION"},
			{"no table configured", noQueue, []string{"usage", "--user", "u"}, "ENTITLEMENTS_TABLE"},
			{"unknown reset period", c, []string{"entitlement", "put", "--user", "u", "--key", "k", "--reset-period", "monthly"}, "unknown reset period"},
			{"bad instant", c, []string{"entitlement", "put", "--user", "u", "--key", "k", "--period-start", "yesterday"}, "--period-start"},
			{"missing subcommand", c, []string{"dlq"}, "missing subcommand"},
			{"unknown subcommand", c, []string{"entitlement", "get"}, `unknown subcommand "get"`},
			{"redrive without a selection", c, []string{"dlq", "redrive"}, "--all, or --id"},
			{"redrive with --all and --id", c, []string{"dlq", "redrive", "--all", "--id", "x"}, "exclude each other"},
			{"redrive with an unknown reason", c, []string{"dlq", "redrive", "--all", "--reason", "BAD"}, "not a reason code"},
			{"no dead-letter queue configured", noQueue, []string{"dlq", "list"}, "DEAD_LETTER_QUEUE_URL"},
			{"--entitlements-table without --local", c, []string{"setup", "--entitlements-table", "x"}, "needs --local"},
			{"redrive with a bad --dedup-retention", c, []string{"dlq", "redrive", "--all", "--dedup-retention", "5m"}, "--dedup-retention: \"5m\" is shorter than 1h"},
			{"redrive with a bad DEDUP_RETENTION", c.with("DEDUP_RETENTION=soon"), []string{"dlq", "redrive", "--all"}, "DEDUP_RETENTION"},
			{"a key layout the service would refuse", c.with("ENTITLEMENT_SK_ATTRIBUTE=pk"), []string{"usage", "--user", "u", "--table", "t"}, "ENTITLEMENT_SK_ATTRIBUTE: must differ"},
			{"completion for an unknown shell", c, []string{"completion", "tcsh"}, "tcsh"},
			{"balance without --key", c, []string{"balance", "--user", "u"}, "--user and --key are required"},
			{"balance with --table and --function", c, []string{"balance", "--user", "u", "--key", "k", "--table", "t", "--function", "f"}, "exclude each other"},
			{"balance with no table configured", noQueue, []string{"balance", "--user", "u", "--key", "k"}, "ENTITLEMENTS_TABLE"},
			{"refund without --refund-of", c, []string{"refund", "--user", "u", "--key", "k"}, "--refund-of is required"},
			{"refund of amount 0", c, []string{"refund", "--user", "u", "--key", "k", "--refund-of", "o", "--amount", "0"}, "INVALID_AMOUNT"},
			{"refund of a negative amount", c, []string{"refund", "--user", "u", "--key", "k", "--refund-of", "o", "--amount", "-1"}, "INVALID_AMOUNT"},
			{"refund --sync without a function", c.with("DECISIONS_FUNCTION="), []string{"refund", "--user", "u", "--key", "k", "--refund-of", "o", "--sync"}, "DECISIONS_FUNCTION"},
			{"refund --function without --sync", c, []string{"refund", "--user", "u", "--key", "k", "--refund-of", "o", "--function", "f"}, "--function needs --sync"},
			{"refund --sync with --queue-url", c, []string{"refund", "--user", "u", "--key", "k", "--refund-of", "o", "--sync", "--queue-url", "http://localhost:1/q"}, "exclude each other"},
			{"refund with no queue configured", noQueue, []string{"refund", "--user", "u", "--key", "k", "--refund-of", "o"}, "USAGE_EVENT_QUEUE_URL"},
			{"history without --user", c, []string{"history", "--key", "k"}, "--user and --key are required"},
			{"history with a negative --limit", c, []string{"history", "--user", "u", "--key", "k", "--limit", "-1"}, "--limit must be 0"},
			{"history with no ledger table configured", c.with("USAGE_LEDGER_TABLE="), []string{"history", "--user", "u", "--key", "k"}, "USAGE_LEDGER_TABLE"},
			{"holds without --key", c, []string{"holds", "--user", "u"}, "--user and --key are required"},
			{"holds with no ledger table configured", c.with("USAGE_LEDGER_TABLE="), []string{"holds", "--user", "u", "--key", "k"}, "USAGE_LEDGER_TABLE"},
			{"reserve without --hold", c, []string{"reserve", "--user", "u", "--key", "k", "--amount", "5"}, "--hold is required"},
			{"reserve without --amount", c, []string{"reserve", "--user", "u", "--key", "k", "--hold", "h"}, "--amount is required"},
			{"reserve of amount 0", c, []string{"reserve", "--user", "u", "--key", "k", "--hold", "h", "--amount", "0"}, "INVALID_AMOUNT"},
			{"reserve for 0 seconds", c, []string{"reserve", "--user", "u", "--key", "k", "--hold", "h", "--amount", "1", "--seconds", "0"}, "--seconds: INVALID_FIELD"},
			{"reserve for more than a day", c, []string{"reserve", "--user", "u", "--key", "k", "--hold", "h", "--amount", "1", "--seconds", "86401"}, "from 1 to 86400"},
			{"reserve with metadata not an object", c, []string{"reserve", "--user", "u", "--key", "k", "--hold", "h", "--amount", "1", "--metadata", "[1]"}, "INVALID_METADATA"},
			{"reserve with --function and --table", c, []string{"reserve", "--user", "u", "--key", "k", "--hold", "h", "--amount", "1", "--function", "f", "--table", "t"}, "exclude --function"},
			{"reserve with no ledger table configured", c.with("ENTITLEMENTS_TABLE=t", "USAGE_LEDGER_TABLE="), []string{"reserve", "--user", "u", "--key", "k", "--hold", "h", "--amount", "1"}, "USAGE_LEDGER_TABLE"},
			{"commit without --hold", c, []string{"commit", "--user", "u", "--key", "k"}, "--hold is required"},
			{"commit of a negative amount", c, []string{"commit", "--user", "u", "--key", "k", "--hold", "h", "--amount", "-1"}, "INVALID_AMOUNT"},
			{"commit --function without --sync", c, []string{"commit", "--user", "u", "--key", "k", "--hold", "h", "--function", "f"}, "--function needs --sync"},
			{"commit with no queue configured", noQueue, []string{"commit", "--user", "u", "--key", "k", "--hold", "h"}, "USAGE_EVENT_QUEUE_URL"},
			{"release without --user", c, []string{"release", "--key", "k", "--hold", "h"}, "--user is required"},
			{"release with --amount", c, []string{"release", "--user", "u", "--key", "k", "--hold", "h", "--amount", "1"}, "unknown flag: --amount"},
			{"release --sync without a function", c.with("DECISIONS_FUNCTION="), []string{"release", "--user", "u", "--key", "k", "--hold", "h", "--sync"}, "DECISIONS_FUNCTION"},
			{"release --sync with --queue-url", c, []string{"release", "--user", "u", "--key", "k", "--hold", "h", "--sync", "--queue-url", "http://localhost:1/q"}, "exclude each other"},
			{"grant without --grant", c, []string{"grant", "--user", "u", "--key", "k", "--amount", "5"}, "--grant is required"},
			{"grant without --amount", c, []string{"grant", "--user", "u", "--key", "k", "--grant", "g"}, "--amount is required"},
			{"grant of amount 0", c, []string{"grant", "--user", "u", "--key", "k", "--grant", "g", "--amount", "0"}, "INVALID_AMOUNT"},
			{"grant with a bad --expires-at", c, []string{"grant", "--user", "u", "--key", "k", "--grant", "g", "--amount", "1", "--expires-at", "2027-12-05"}, "--expires-at: INVALID_FIELD"},
			{"grant with --priority out of range", c, []string{"grant", "--user", "u", "--key", "k", "--grant", "g", "--amount", "1", "--priority", "1001"}, "priority: must be a whole number from 0 to 1000"},
			{"grant with metadata not an object", c, []string{"grant", "--user", "u", "--key", "k", "--grant", "g", "--amount", "1", "--metadata", "[1]"}, "INVALID_METADATA"},
			{"grant --queue with --function", c, []string{"grant", "--user", "u", "--key", "k", "--grant", "g", "--amount", "1", "--queue", "--function", "f"}, "exclude --queue"},
			{"grant --queue-url without --queue", c, []string{"grant", "--user", "u", "--key", "k", "--grant", "g", "--amount", "1", "--queue-url", "http://localhost:1/q"}, "--queue-url needs --queue"},
			{"grant with --function and --table", c, []string{"grant", "--user", "u", "--key", "k", "--grant", "g", "--amount", "1", "--function", "f", "--table", "t"}, "exclude --function"},
			{"grant with no ledger table configured", c.with("ENTITLEMENTS_TABLE=t", "USAGE_LEDGER_TABLE="), []string{"grant", "--user", "u", "--key", "k", "--grant", "g", "--amount", "1"}, "USAGE_LEDGER_TABLE"},
			{"grant --queue with no queue configured", noQueue, []string{"grant", "--user", "u", "--key", "k", "--grant", "g", "--amount", "1", "--queue"}, "USAGE_EVENT_QUEUE_URL"},
			{"void without --grant", c, []string{"void", "--user", "u", "--key", "k"}, "--grant is required"},
			{"void with --amount", c, []string{"void", "--user", "u", "--key", "k", "--grant", "g", "--amount", "1"}, "unknown flag: --amount"},
			{"void --queue with --table", c, []string{"void", "--user", "u", "--key", "k", "--grant", "g", "--queue", "--table", "t"}, "exclude --queue"},
			{"grants without --key", c, []string{"grants", "--user", "u"}, "--user and --key are required"},
			{"grants --ledger-table without --all", c, []string{"grants", "--user", "u", "--key", "k", "--ledger-table", "l"}, "--ledger-table needs --all"},
			{"grants --all with no ledger table configured", c.with("ENTITLEMENTS_TABLE=t", "USAGE_LEDGER_TABLE="), []string{"grants", "--user", "u", "--key", "k", "--all"}, "USAGE_LEDGER_TABLE"},
			{"entitlement put with a bad --overage-limit", c, []string{"entitlement", "put", "--user", "u", "--key", "k", "--overage-limit", "lots"}, "--overage-limit"},
			{"entitlement put with a bad --rollover-max", c, []string{"entitlement", "put", "--user", "u", "--key", "k", "--rollover-max", "1e"}, "--rollover-max"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := tt.c.run(t, "", tt.args...)
				if r.code != 2 || !strings.Contains(r.stderr, tt.want) || r.stdout != "" {
					t.Errorf("exit %d, stderr %q, stdout %q; want exit 2 and stderr mentioning %q", r.code, r.stderr, r.stdout, tt.want)
				}
			})
		}
	})

	t.Run("setup is idempotent", func(t *testing.T) {
		args := []string{"setup", "--local", "--json",
			"--queue", emulator.UniqueName(t, "q"),
			"--ledger-table", emulator.UniqueName(t, "ledger"),
			"--entitlements-table", emulator.UniqueName(t, "ent")}
		first := decodeJSON[setupResult](t, c.must(t, args...).stdout)
		again := c.must(t, args...)
		second := decodeJSON[setupResult](t, again.stdout)
		if again.stderr != "" {
			t.Errorf("stderr of a second setup: %q, want nothing (no SDK warnings about expected errors)", again.stderr)
		}
		if !first.LedgerTable.Created || !first.EntitlementsTable.Created {
			t.Errorf("first run: %+v, want both tables created", first)
		}
		if second.LedgerTable.Created || second.EntitlementsTable.Created {
			t.Errorf("second run: %+v, want nothing created", second)
		}
		if first.Queue != second.Queue || first.DeadLetterQueue != second.DeadLetterQueue || first.Queue.URL == "" || first.DeadLetterQueue.ARN == "" {
			t.Errorf("queues differ or are empty: %+v / %+v", first, second)
		}
		r := c.must(t, "setup", "--queue", args[4], "--ledger-table", args[6]) // human output, without --local

		for _, want := range []string{"already existed", "export USAGE_EVENT_QUEUE_URL=" + first.Queue.URL, "export DEAD_LETTER_QUEUE_URL=" + first.DeadLetterQueue.URL} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("human output lacks %q:\n%s", want, r.stdout)
			}
		}
	})
}

// TestEveryHelpNamesExactlyTheFlagsItsCommandHas: the flag list of each
// --help is generated from the command's flags, and the prose (usage line,
// description, examples) mentions no flag the command does not have.
func TestEveryHelpNamesExactlyTheFlagsItsCommandHas(t *testing.T) {
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	root := a.root()
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	mention := regexp.MustCompile(`--[a-z][a-z-]*`)
	anyCommand := map[string]bool{}
	var commands []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.InitDefaultHelpFlag()
		commands = append(commands, c)
		c.Flags().VisitAll(func(f *pflag.Flag) { anyCommand[f.Name] = true })
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for _, c := range commands {
		var help bytes.Buffer
		c.SetOut(&help)
		if err := c.Help(); err != nil {
			t.Fatal(err)
		}
		has := func(f *pflag.Flag) {
			if !f.Hidden && !strings.Contains(help.String(), "--"+f.Name+" ") {
				t.Errorf("%s --help does not list its flag --%s", c.CommandPath(), f.Name)
			}
		}
		c.LocalFlags().VisitAll(has)
		c.InheritedFlags().VisitAll(has)
		if c.Name() == "help" || c.Name() == "completion" || (c.HasParent() && c.Parent().Name() == "completion") {
			continue // cobra's own
		}
		for _, m := range mention.FindAllString(c.Use+"\n"+c.Long+"\n"+c.Example, -1) {
			name := strings.TrimPrefix(m, "--")
			switch {
			case c == root && !anyCommand[name]:
				t.Errorf("usagectl --help mentions %s, which no command has", m)
			case c != root && c.Flags().Lookup(name) == nil && c.InheritedFlags().Lookup(name) == nil:
				t.Errorf("%s --help mentions %s, which it does not have", c.CommandPath(), m)
			}
		}
	}
}

// TestUsagectlAgainstAStack covers the commands that need resources.
func TestUsagectlAgainstAStack(t *testing.T) {
	c := build(t)
	s := newStack(t, c)

	t.Run("entitlement put then usage", func(t *testing.T) {
		s.must(t, "entitlement", "put", "--user", "u-1", "--key", "api-calls", "--limit", "100", "--used", "40",
			"--reset-period", "MONTHLY", "--period-start", "2026-10-01T00:00:00Z")
		s.must(t, "entitlement", "put", "--user", "u-1", "--key", "exports", "--limit", "10", "--used", "2.5",
			"--reset-period", "MONTHLY", "--period-start", "2026-11-01T00:00:00Z")
		s.must(t, "entitlement", "put", "--user", "u-1", "--key", "seats", "--used", "3")

		v := decodeJSON[usageView](t, s.must(t, "usage", "--user", "u-1", "--at", "2026-11-14T10:00:00Z", "--json").stdout)
		if len(v.Entitlements) != 3 || v.At != "2026-11-14T10:00:00Z" {
			t.Fatalf("usage: %+v", v)
		}
		byKey := map[string]entitlementView{}
		for _, e := range v.Entitlements {
			byKey[e.EntitlementKey] = e
		}
		api := byKey["api-calls"]
		if !api.WouldReset || api.UsedNow != "0" || api.Used != "40" || *api.Remaining != "100" ||
			*api.CurrentPeriodStart != "2026-11-01T00:00:00Z" || *api.NextReset != "2026-12-01T00:00:00Z" {
			t.Errorf("api-calls (stored period over): %+v", api)
		}
		exports := byKey["exports"]
		if exports.WouldReset || exports.UsedNow != "2.5" || *exports.Remaining != "7.5" {
			t.Errorf("exports (current period): %+v", exports)
		}
		seats := byKey["seats"]
		if seats.ResetPeriod != "NONE" || seats.Limit != nil || seats.Remaining != nil || seats.NextReset != nil || seats.UsedNow != "3" {
			t.Errorf("seats (unlimited, never resets): %+v", seats)
		}

		human := s.must(t, "usage", "--user", "u-1", "--key", "api-calls", "--at", "2026-11-14T10:00:00Z").stdout
		for _, want := range []string{"api-calls", "used now         0 (the stored period is over", "next reset 2026-12-01T00:00:00Z", "limit            100"} {
			if !strings.Contains(human, want) {
				t.Errorf("human usage lacks %q:\n%s", want, human)
			}
		}
		if r := s.run(t, "", "usage", "--user", "u-1", "--key", "nope"); r.code != 1 || !strings.Contains(r.stderr, `no entitlement "nope"`) {
			t.Errorf("usage of a missing key: exit %d, stderr %q; want 1", r.code, r.stderr)
		}
		if r := s.must(t, "usage", "--user", "nobody"); !strings.Contains(r.stdout, "has no entitlements") {
			t.Errorf("usage of an unknown user: %q", r.stdout)
		}
	})

	t.Run("send one event and receive it", func(t *testing.T) {
		r := s.must(t, "send", "--user", "u-1", "--key", "api-calls", "--amount", "2.50", "--idempotency-key", "order-9",
			"--metadata", `{"requestId": "r-1"}`, "--json")
		rec := decodeJSON[receiptJSON](t, r.stdout)
		if rec.MessageID == "" || rec.IdempotencyKey != "order-9" {
			t.Errorf("receipt %+v", rec)
		}
		r = s.must(t, "send", "--user", "u-2", "--key", "api-calls")
		if !strings.Contains(r.stdout, "sent message ") || !strings.Contains(r.stdout, "idempotency key ") {
			t.Errorf("human receipt %q: want the message ID and the automatic key", r.stdout)
		}
		bodies := s.receiveBodies(t, s.queues.Queue.URL)
		if len(bodies) != 2 {
			t.Fatalf("received %d messages, want 2", len(bodies))
		}
		for _, b := range bodies {
			ev, err := usage.ParseEvent([]byte(b))
			if err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			switch ev.UserID {
			case "u-1":
				if ev.Amount.String() != "2.5" || ev.IdempotencyKey != "order-9" || string(ev.Metadata) != `{"requestId":"r-1"}` {
					t.Errorf("sent %s", b)
				}
			case "u-2":
				if ev.Amount.String() != "1" || len(ev.IdempotencyKey) != 36 {
					t.Errorf("sent %s: want amount 1 and a UUIDv7 key", b)
				}
			}
		}
	})

	t.Run("AWS errors exit 1 with the cause on stderr", func(t *testing.T) {
		missingQueue := strings.TrimSuffix(s.queues.Queue.URL, "/"+filepath.Base(s.queues.Queue.URL)) + "/no-such-queue"
		tests := []struct {
			name string
			args []string
			want string
		}{
			{"send to a queue that does not exist", []string{"send", "--user", "u", "--key", "k", "--queue-url", missingQueue}, "NonExistentQueue"},
			{"usage of a table that does not exist", []string{"usage", "--user", "u", "--table", "no-such-table"}, "ResourceNotFoundException"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := s.run(t, "", tt.args...)
				if r.code != 1 || !strings.Contains(r.stderr, tt.want) {
					t.Errorf("exit %d, stderr %q; want 1 and %q", r.code, r.stderr, tt.want)
				}
			})
		}
	})

	t.Run("send a file of 10,000 lines with a few bad ones", func(t *testing.T) {
		bad := map[int]struct{ line, reason string }{
			17:   {`{"userId":"u","entitlementKey":"k","amount":0}`, "INVALID_AMOUNT"},
			2500: {`not json`, "INVALID_JSON"},
			5003: {`{"entitlementKey":"k"}`, "MISSING_FIELD"},
			9999: {`{"userId":"u","entitlementKey":"k","amount":null}`, "INVALID_AMOUNT"},
		}
		var b strings.Builder
		good := 0
		for i := 1; i <= 10_000; i++ {
			switch {
			case bad[i].line != "":
				b.WriteString(bad[i].line)
			case i == 100:
				// A blank line: skipped, not an event.
			default:
				fmt.Fprintf(&b, `{"userId":"user-%d","entitlementKey":"api-calls","amount":%d.25,"extra":"ignored"}`, i%37, i)
				good++
			}
			b.WriteString("\n")
		}
		path := filepath.Join(t.TempDir(), "events.jsonl")
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		before := s.depth(t, s.queues.Queue.URL)
		start := time.Now()
		r := s.run(t, "", "send", "--file", path)
		elapsed := time.Since(start)
		if r.code != 1 {
			t.Fatalf("exit %d, want 1 (bad lines)\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout, fmt.Sprintf("sent %d of %d events", good, good+len(bad))) {
			t.Errorf("summary:\n%s", r.stdout)
		}
		for n, l := range bad {
			if !strings.Contains(r.stdout, fmt.Sprintf("line %-7d %-22s", n, l.reason)) {
				t.Errorf("summary does not name line %d (%s):\n%s", n, l.reason, r.stdout)
			}
		}
		if !strings.Contains(r.stderr, fmt.Sprintf("%d of %d events were not sent", len(bad), good+len(bad))) || strings.Contains(r.stderr, "\r") {
			t.Errorf("stderr %q: want the failure count and no progress bar (not a terminal)", r.stderr)
		}
		if got := s.depth(t, s.queues.Queue.URL) - before; got != good {
			t.Errorf("queue grew by %d messages, want %d", got, good)
		}
		t.Logf("10,000 lines in %v", elapsed)
		if elapsed > 30*time.Second {
			t.Errorf("10,000 lines took %v", elapsed)
		}
	})

	t.Run("send from stdin with a JSON summary", func(t *testing.T) {
		before := s.depth(t, s.queues.Queue.URL)
		in := `{"userId":"s-1","entitlementKey":"k"}` + "\n" +
			`{"userId":"s-2","entitlementKey":"k","amount":3,"idempotencyKey":"stdin-2"}` + "\r\n" +
			`{"userId":"s-3","entitlementKey":"k","amount":"3"}` // no final newline; amount as a string is rejected
		r := s.run(t, in, "send", "--file", "-", "--json")
		if r.code != 1 {
			t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
		}
		sum := decodeJSON[sendSummary](t, r.stdout)
		if sum.Lines != 3 || sum.Events != 3 || sum.Sent != 2 || sum.Failed != 1 ||
			len(sum.Failures) != 1 || sum.Failures[0].Line != 3 || sum.Failures[0].Reason != "INVALID_AMOUNT" || sum.Failures[0].Field != "amount" {
			t.Errorf("summary %+v", sum)
		}
		if got := s.depth(t, s.queues.Queue.URL) - before; got != 2 {
			t.Errorf("queue grew by %d, want 2", got)
		}
		if r := s.run(t, `{"userId":"s-4","entitlementKey":"k"}`, "send", "--file", "-"); r.code != 0 || !strings.Contains(r.stdout, "sent 1 of 1 events") {
			t.Errorf("all good: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
}

func TestUsagectlDeadLetterQueue(t *testing.T) {
	c := build(t)
	s := newStack(t, c)
	ctx := context.Background()

	// Two events the service rejected and dead-lettered itself, and one
	// that the redrive policy moved (no attributes).
	rejectedAt := time.Date(2026, 11, 14, 9, 30, 0, 0, time.UTC)
	letters := []pipeline.DeadLetter{
		{Message: pipeline.Message{ID: "orig-1", Body: `{"userId":"u-9","entitlementKey":"missing","amount":1}`, ReceiveCount: 1},
			Reason: usage.ReasonEntitlementNotFound, Detail: "no entitlement missing for user u-9", RejectedAt: rejectedAt},
		{Message: pipeline.Message{ID: "orig-2", Body: `{"userId":"u-9","entitlementKey":"k","amount":0}`, ReceiveCount: 2},
			Reason: usage.ReasonInvalidAmount, Detail: "amount: must be greater than 0, got 0", RejectedAt: rejectedAt},
	}
	for i, err := range (sqs.DeadLetterQueue{Client: s.sqs, QueueURL: s.queues.DeadLetterQueue.URL}).SendDeadLetters(ctx, letters) {
		if err != nil {
			t.Fatalf("dead letter %d: %v", i, err)
		}
	}
	const plainBody = `{"userId":"u-9","entitlementKey":"k","amount":5}`
	if _, err := s.sqs.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(s.queues.DeadLetterQueue.URL), MessageBody: aws.String(plainBody)}); err != nil {
		t.Fatal(err)
	}

	list := func(t *testing.T) sqs.DeadLetterListing {
		t.Helper()
		return decodeJSON[sqs.DeadLetterListing](t, s.must(t, "dlq", "list", "--json").stdout)
	}
	l := list(t)
	if len(l.Messages) != 3 {
		t.Fatalf("listed %d messages, want 3: %+v", len(l.Messages), l)
	}
	ids := map[string]string{} // reason (or "none") -> DLQ message ID
	for _, m := range l.Messages {
		switch {
		case m.MovedByRedrivePolicy:
			if m.Reason != nil || m.Body != plainBody {
				t.Errorf("redrive-policy message %+v", m)
			}
			ids["none"] = m.MessageID
		case *m.Reason == "ENTITLEMENT_NOT_FOUND":
			if *m.ReasonMessage != "no entitlement missing for user u-9" || *m.OriginalMessageID != "orig-1" || *m.ReceiveCount != 1 ||
				*m.RejectedAt != "2026-11-14T09:30:00Z" || m.Body != letters[0].Message.Body {
				t.Errorf("ENTITLEMENT_NOT_FOUND message %+v", m)
			}
			ids[*m.Reason] = m.MessageID
		default:
			ids[*m.Reason] = m.MessageID
		}
	}

	human := s.run(t, "", "dlq", "list")
	for _, want := range []string{"messages: about 3", "ENTITLEMENT_NOT_FOUND", "moved by the queue's redrive policy", "original id     orig-1", plainBody} {
		if !strings.Contains(human.stdout, want) {
			t.Errorf("human listing lacks %q:\n%s", want, human.stdout)
		}
	}
	if !strings.Contains(human.stderr, "visible again") {
		t.Errorf("the listing does not say it received the messages: stderr %q", human.stderr)
	}

	// Listing made them visible again: a redrive right after finds them.
	r := s.must(t, "dlq", "redrive", "--id", ids["ENTITLEMENT_NOT_FOUND"], "--json")
	rep := decodeJSON[sqs.RedriveReport](t, r.stdout)
	if len(rep.Redriven) != 1 || rep.Redriven[0].MessageID != ids["ENTITLEMENT_NOT_FOUND"] || rep.Redriven[0].Reason != "ENTITLEMENT_NOT_FOUND" {
		t.Errorf("redrive --id: %+v", rep)
	}
	if got := s.receiveBodies(t, s.queues.Queue.URL); len(got) != 1 || got[0] != letters[0].Message.Body {
		t.Errorf("main queue holds %q, want the body unchanged", got)
	}
	if l := list(t); len(l.Messages) != 2 {
		t.Errorf("%d messages left in the DLQ, want 2", len(l.Messages))
	}

	r = s.must(t, "dlq", "redrive", "--all", "--reason", "none")
	if !strings.Contains(r.stdout, "redrove 1 message(s)") || !strings.Contains(r.stdout, ids["none"]) {
		t.Errorf("redrive --reason none:\n%s", r.stdout)
	}
	if got := s.receiveBodies(t, s.queues.Queue.URL); len(got) != 1 || got[0] != plainBody {
		t.Errorf("main queue holds %q, want the redrive-policy body", got)
	}

	if r := s.run(t, "", "dlq", "redrive", "--id", "no-such-id"); r.code != 1 || !strings.Contains(r.stdout, "not found in the dead-letter queue: no-such-id") {
		t.Errorf("redrive of a missing ID: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	s.must(t, "dlq", "redrive", "--all")
	if l := list(t); len(l.Messages) != 0 {
		t.Errorf("DLQ still holds %+v after redrive --all", l.Messages)
	}
	if got := s.receiveBodies(t, s.queues.Queue.URL); len(got) != 1 || got[0] != letters[1].Message.Body {
		t.Errorf("main queue holds %q after redrive --all", got)
	}

	// An event first sent longer ago than the dedup retention (as a replay
	// carries it in usage.originalSentAt) is refused unless the retention
	// covers it or --force is given.
	sendOld := func(t *testing.T, id string, age time.Duration) string {
		t.Helper()
		sentAt := time.Now().Add(-age).UTC().Format(time.RFC3339Nano)
		_, err := s.sqs.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(s.queues.DeadLetterQueue.URL),
			MessageBody: aws.String(`{"userId":"u-9","entitlementKey":"k","amount":7}`),
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{
				sqs.AttrOriginalMessageID: {DataType: aws.String("String"), StringValue: aws.String(id)},
				sqs.AttrOriginalSentAt:    {DataType: aws.String("String"), StringValue: aws.String(sentAt)},
			}})
		if err != nil {
			t.Fatal(err)
		}
		return sentAt
	}
	twentyDays := sendOld(t, "orig-20d", 20*24*time.Hour)
	r = s.run(t, "", "dlq", "redrive", "--all")
	if r.code != 1 || !strings.Contains(r.stdout, "refused (1) with a dedup retention of 336h0m0s") ||
		!strings.Contains(r.stdout, "first sent "+twentyDays) || !strings.Contains(r.stderr, "1 refused") {
		t.Errorf("redrive of a 20-day-old event: exit %d, want 1 and the refusal\n%s%s", r.code, r.stdout, r.stderr)
	}
	if l := list(t); len(l.Messages) != 1 || l.Messages[0].FirstSentAt != twentyDays {
		t.Errorf("after the refusal the DLQ holds %+v, want the event, first sent %s", l.Messages, twentyDays)
	}
	if got := s.receiveBodies(t, s.queues.Queue.URL); len(got) != 0 {
		t.Errorf("a refused event reached the queue: %q", got)
	}
	rep = decodeJSON[sqs.RedriveReport](t, s.with("DEDUP_RETENTION=720h").must(t, "dlq", "redrive", "--all", "--json").stdout)
	if len(rep.Redriven) != 1 || len(rep.Refused) != 0 || rep.Redriven[0].OriginalMessageID != "orig-20d" {
		t.Errorf("with DEDUP_RETENTION=720h: %+v, want it redriven", rep)
	}
	replayed := s.receiveAll(t, s.queues.Queue.URL)
	if len(replayed) != 1 || aws.ToString(replayed[0].MessageAttributes[sqs.AttrOriginalSentAt].StringValue) != twentyDays ||
		aws.ToString(replayed[0].MessageAttributes[sqs.AttrOriginalMessageID].StringValue) != "orig-20d" {
		t.Errorf("the replay does not carry its first send and delivery: %+v", replayed)
	}

	sendOld(t, "orig-40d", 40*24*time.Hour)
	if r := s.with("DEDUP_RETENTION=720h").run(t, "", "dlq", "redrive", "--all", "--json"); r.code != 1 || len(decodeJSON[sqs.RedriveReport](t, r.stdout).Refused) != 1 {
		t.Errorf("a 40-day-old event with DEDUP_RETENTION=720h: exit %d, want 1 and a refusal\n%s", r.code, r.stdout)
	}
	if r := s.must(t, "dlq", "redrive", "--all", "--force"); !strings.Contains(r.stdout, "redrove 1 message(s)") {
		t.Errorf("redrive --force:\n%s", r.stdout)
	}
	if l := list(t); len(l.Messages) != 0 {
		t.Errorf("DLQ still holds %+v after redrive --force", l.Messages)
	}
}
