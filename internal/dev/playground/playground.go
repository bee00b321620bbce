// Package playground is `make up`: the service running locally for as long
// as you like, to send your own events to from a second shell.
//
// It builds the service and usagectl from this checkout, starts DynamoDB
// Local and the SQS/SNS emulator, creates the tables, the queues and the
// notifications topic with `usagectl setup --local --topic`, subscribes a
// queue to the topic (the inbox), seeds a few entitlements with
// `usagectl entitlement put` and a top-up grant with `usagectl grant`, runs
// the worker in the foreground (publishing
// notifications to the topic) with its JSON logs shown as readable lines,
// and prints the export lines for the second shell. When ctx ends (Ctrl-C), it stops the worker the way
// production does (SIGTERM), then the emulators, and removes what it built:
// nothing is left running or on disk, and the next run starts clean (the
// emulators keep their data in memory only).
package playground

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/usage-event-service/usage-event-service/internal/dev/devstack"
	"github.com/usage-event-service/usage-event-service/usage"
)

// The names `usagectl setup --local` is asked to create.
const (
	entitlementsTable = "entitlements"
	ledgerTable       = "usage-ledger"
	queueName         = "usage-event-queue"
)

// The notifications topic the worker publishes to, and the queue
// subscribed to it, as a subscriber would subscribe one.
const (
	topicName = "usage-notifications"
	inboxName = "usage-notifications-inbox"
)

// seed is one entitlement written at start, with why it is there.
type seed struct {
	user, key, why string
	flags          []string // for usagectl entitlement put
	grant          []string // for usagectl grant, when it gets one
}

// seeds gives the second shell something to try at once: room to consume,
// a limit to hit, a monthly period that has rolled over, and an allowance
// nearly used up with a top-up grant to spill into.
func seeds(now time.Time) []seed {
	lastMonth := usage.PeriodStart(usage.ResetMonthly, nil, now).AddDate(0, -1, 0)
	inAYear := usage.FormatInstant(now.AddDate(1, 0, 0).Truncate(time.Second))
	return []seed{
		{"alice", "AI_TUTOR_ACCESS", "limit 100, used 10: room to consume",
			[]string{"--limit", "100", "--used", "10"}, nil},
		{"bob", "AI_TUTOR_ACCESS", "limit 5, used 5: his next event is rejected (LIMIT_EXCEEDED)",
			[]string{"--limit", "5", "--used", "5"}, nil},
		{"carol", "AI_TUTOR_ACCESS", "limit 10 a month, used 10 last month: her next event resets the period first",
			[]string{"--limit", "10", "--used", "10", "--reset-period", "MONTHLY", "--period-start", usage.FormatInstant(lastMonth)}, nil},
		{"erin", "AI_TUTOR_ACCESS", "limit 10, used 8, and a top-up grant topup-1 of 50 for a year: her next 5 spill into it",
			[]string{"--limit", "10", "--used", "8"},
			[]string{"--grant", "topup-1", "--amount", "50", "--expires-at", inAYear}},
		{"frank", "AI_TUTOR_ACCESS", "capped at 5, used 3, a member of team-1", []string{"--limit", "5", "--used", "3", "--pool", teamPool}, nil},
		{"grace", "AI_TUTOR_ACCESS", "capped at 5, used 4, a member of team-1", []string{"--limit", "5", "--used", "4", "--pool", teamPool}, nil},
		{"heidi", "AI_TUTOR_ACCESS", "capped at 5, used 0, a member of team-1: the pool's room, not her cap, stops her", []string{"--limit", "5", "--used", "0", "--pool", teamPool}, nil},
	}
}

// teamPool is the seeded pool: 10 for frank, grace and heidi together,
// 7 of it used.
const teamPool = "team-1"

// Run runs the playground until ctx ends, writing progress, the export lines
// and the worker's logs to out. It returns nil after a clean stop.
func Run(ctx context.Context, out io.Writer) (err error) {
	w := &lineWriter{w: out}
	say := func(format string, args ...any) { w.printf(format+"\n", args...) }

	dir, err := os.MkdirTemp("", "usage-playground-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	say("==> building usage-event-service and usagectl from this checkout")
	if err := devstack.Build(ctx, dir, w, "./cmd/usage-event-service", "./cmd/usagectl"); err != nil {
		return err
	}
	service, usagectl := filepath.Join(dir, "usage-event-service"), filepath.Join(dir, "usagectl")

	say("==> starting DynamoDB Local and the SQS/SNS emulator (the first run downloads them into .cache/)")
	emulators, err := devstack.StartEmulators(ctx)
	if err != nil {
		return err
	}
	emulatorsStopped := false
	defer func() {
		if emulatorsStopped {
			return
		}
		if stopErr := emulators.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stop the emulators: %w", stopErr))
		}
	}()
	say("    DynamoDB Local   %s  (pid %d)", emulators.DynamoDB.Endpoint, emulators.DynamoDB.PID)
	say("    SQS/SNS emulator %s  (pid %d)", emulators.SQS.Endpoint, emulators.SQS.PID)
	env := emulators.Env()
	ctl := func(args ...string) ([]byte, error) { return runTool(ctx, usagectl, env, args...) }

	say("==> creating the tables, queues and notifications topic: usagectl setup --local --topic %s", topicName)
	res, err := setup(ctl)
	if err != nil {
		return err
	}
	env["ENTITLEMENTS_TABLE"] = res.EntitlementsTable.Name
	env["USAGE_LEDGER_TABLE"] = res.LedgerTable.Name
	env["USAGE_EVENT_QUEUE_URL"] = res.Queue.URL
	env["DEAD_LETTER_QUEUE_URL"] = res.DeadLetterQueue.URL
	say("    tables  %s, %s", res.EntitlementsTable.Name, res.LedgerTable.Name)
	say("    queue   %s", res.Queue.URL)
	say("    DLQ     %s", res.DeadLetterQueue.URL)
	say("    topic   %s", res.Topic.ARN)

	say("==> subscribing a queue to the topic, as a subscriber would")
	inbox, err := subscribeInbox(ctx, env, res.Topic.ARN)
	if err != nil {
		return err
	}
	env["NOTIFY_TOPIC_ARN"] = inbox.TopicARN
	env["NOTIFICATIONS_INBOX_URL"] = inbox.QueueURL
	say("    inbox   %s", inbox.QueueURL)

	say("==> seeding entitlements and a grant: usagectl entitlement put, usagectl grant (decided in process)")
	if _, err := ctl("pool", "put", "--pool", teamPool, "--key", "AI_TUTOR_ACCESS", "--limit", "10", "--used", "7"); err != nil {
		return err
	}
	say("    %-6s %s  a team pool of 10 for frank, grace and heidi, 7 of it used", teamPool, "AI_TUTOR_ACCESS")
	for _, s := range seeds(time.Now().UTC()) {
		if _, err := ctl(append([]string{"entitlement", "put", "--user", s.user, "--key", s.key}, s.flags...)...); err != nil {
			return err
		}
		if s.grant != nil {
			if _, err := ctl(append([]string{"grant", "--user", s.user, "--key", s.key}, s.grant...)...); err != nil {
				return err
			}
		}
		say("    %-6s %s  %s", s.user, s.key, s.why)
	}

	workerEnv := map[string]string{"LOG_LEVEL": "DEBUG"} // one line per applied event too
	for k, v := range env {
		workerEnv[k] = v
	}
	worker, err := devstack.StartWorker(service, devstack.Environ(workerEnv), w)
	if err != nil {
		return err
	}
	defer worker.Logs.Close()
	defer worker.Stop() // on an early return; a no-op after the stop below
	say("==> worker started  (pid %d)", worker.PID)

	say("\n==> ready. In a second shell, paste these lines:\n")
	w.printf("%s", exports(env, dir))
	say("\n    then try, for example:")
	say("      usagectl send --user alice --key AI_TUTOR_ACCESS --amount 2")
	say("      usagectl usage --user alice")
	say("    (README.md, \"Try it yourself\", has a longer session)")
	say("\n==> worker logs; Ctrl-C stops everything\n")

	logsDone := make(chan error, 1)
	go func() { logsDone <- copyHuman(w, worker.Logs, time.Local) }()

	select {
	case <-ctx.Done():
	case <-worker.Exited():
		<-logsDone
		return fmt.Errorf("the worker exited on its own (%v); its log is above", worker.Err())
	}
	w.printf("\n")
	say("==> stopping: the worker (SIGTERM: it finishes what it has received), then the emulators")
	stopErr := worker.Stop()
	select {
	case <-logsDone:
	case <-time.After(5 * time.Second):
	}
	if stopErr != nil {
		return stopErr
	}
	emulatorsStopped = true
	if err := emulators.Stop(); err != nil {
		return fmt.Errorf("stop the emulators: %w", err)
	}
	say("==> stopped; nothing is left running. `make up` starts afresh.")
	return nil
}

// setupResult is the part of `usagectl setup --json` the playground reads.
type setupResult struct {
	LedgerTable       struct{ Name string } `json:"ledgerTable"`
	EntitlementsTable struct{ Name string } `json:"entitlementsTable"`
	Queue             struct{ URL string }  `json:"queue"`
	DeadLetterQueue   struct{ URL string }  `json:"deadLetterQueue"`
	Topic             struct{ ARN string }  `json:"topic"`
}

func setup(ctl func(args ...string) ([]byte, error)) (setupResult, error) {
	out, err := ctl("setup", "--local", "--json",
		"--entitlements-table", entitlementsTable, "--ledger-table", ledgerTable, "--queue", queueName, "--topic", topicName)
	if err != nil {
		return setupResult{}, err
	}
	var res setupResult
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("read the output of usagectl setup: %w\n%s", err, out)
	}
	if res.EntitlementsTable.Name == "" || res.LedgerTable.Name == "" || res.Queue.URL == "" || res.DeadLetterQueue.URL == "" || res.Topic.ARN == "" {
		return res, fmt.Errorf("usagectl setup did not report every table, queue and the topic:\n%s", out)
	}
	return res, nil
}

// subscribeInbox subscribes a new queue to the topic on the emulator, with
// clients configured from env alone, as the tools get it.
func subscribeInbox(ctx context.Context, env map[string]string, topicARN string) (devstack.Inbox, error) {
	cfg := aws.Config{
		Region:      env["AWS_REGION"],
		Credentials: credentials.NewStaticCredentialsProvider(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], ""),
	}
	sn := awssns.NewFromConfig(cfg, func(o *awssns.Options) { o.BaseEndpoint = aws.String(env["AWS_ENDPOINT_URL_SNS"]) })
	sq := awssqs.NewFromConfig(cfg, func(o *awssqs.Options) { o.BaseEndpoint = aws.String(env["AWS_ENDPOINT_URL_SQS"]) })
	return devstack.SubscribeInbox(ctx, sn, sq, topicARN, inboxName)
}

// runTool runs one of the built tools with env over this process's
// environment and returns its stdout; a failure carries its stderr.
func runTool(ctx context.Context, bin string, env map[string]string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = devstack.Environ(env)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}

// exportOrder is the order of the export lines, grouped as a reader thinks
// of them: AWS SDK settings, then the service's.
var exportOrder = []string{
	"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
	"AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_SNS",
	"ENTITLEMENTS_TABLE", "USAGE_LEDGER_TABLE", "USAGE_EVENT_QUEUE_URL", "DEAD_LETTER_QUEUE_URL",
	"NOTIFY_TOPIC_ARN", "NOTIFICATIONS_INBOX_URL",
}

// exports renders env as shell export lines, one variable a line, followed by
// the PATH line that puts the built usagectl first.
func exports(env map[string]string, binDir string) string {
	var b strings.Builder
	done := map[string]bool{}
	line := func(k string) {
		if v, ok := env[k]; ok && !done[k] {
			fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
			done[k] = true
		}
	}
	for _, k := range exportOrder {
		line(k)
	}
	var rest []string
	for k := range env {
		if !done[k] {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	for _, k := range rest {
		line(k)
	}
	fmt.Fprintf(&b, "export PATH=%s:\"$PATH\"\n", shellQuote(binDir))
	return b.String()
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes s for a POSIX shell, leaving it bare when that is safe.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// lineWriter serialises writes from the log copier and the main goroutine,
// so that lines never interleave.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lineWriter) printf(format string, args ...any) {
	fmt.Fprintf(l, format, args...)
}
