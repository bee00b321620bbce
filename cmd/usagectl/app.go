package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/spf13/cobra"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/config"
	"github.com/usage-event-service/usage-event-service/internal/queueurl"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the operation failed: something not sent, an AWS error
	exitUsage  = 2 // bad usage or configuration
)

// app is one invocation: its streams and environment.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// started is set when a command's own code begins: an error before
	// that is cobra rejecting the command line.
	started bool
}

// usageError is a mistake in the command line or the configuration: exit
// code 2, with a pointer to --help.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

const rootLong = `usagectl: send and inspect usage events for usage-event-service.

Configuration comes from the same environment variables as the service,
and flags override them:
  USAGE_EVENT_QUEUE_URL   the usage event queue (--queue-url)
  DEAD_LETTER_QUEUE_URL   its dead-letter queue (--dlq-url)
  ENTITLEMENTS_TABLE      access-service's entitlements table (--table)
  USAGE_LEDGER_TABLE      the ledger table (--ledger-table)
  DECISIONS_FUNCTION      the decisions function of refund, commit and release
                          --sync (--function)
  DEDUP_RETENTION         how long the service deduplicates (--dedup-retention
                          of dlq redrive; default 336h)
  ENTITLEMENT_PK_ATTRIBUTE, ENTITLEMENT_SK_ATTRIBUTE, ENTITLEMENT_PK_PREFIX,
  ENTITLEMENT_SK_PREFIX, POOL_PK_PREFIX
                          the entitlements table's key layout
  AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_DYNAMODB,
  AWS_ENDPOINT_URL_LAMBDA, AWS_ENDPOINT_URL_SNS, ...
                          read by the AWS SDK as usual

Exit codes: 0 success, 1 the operation failed, 2 bad usage or configuration.`

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := a.root()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue) || !a.started:
		fmt.Fprintf(stderr, "usagectl: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return exitUsage
	default:
		fmt.Fprintf(stderr, "usagectl: %v\n", err)
		return exitFailed
	}
}

// root is the command tree. Every command's own code runs through a.runE.
func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:           "usagectl",
		Short:         "send and inspect usage events for usage-event-service",
		Long:          rootLong,
		SilenceErrors: true, // run reports them, with the exit code
		SilenceUsage:  true,
		// Suggest commands within two edits of a mistyped one.
		SuggestionsMinimumDistance: 2,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q (run 'usagectl help' for the list)", args[0])
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return usageError{errors.New(msg)}
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(a.stderr, cmd.UsageString())
			return usagef("no command given")
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		a.sendCmd(),
		a.usageCmd(),
		a.balanceCmd(),
		a.refundCmd(),
		a.reserveCmd(),
		a.commitCmd(),
		a.releaseCmd(),
		a.holdsCmd(),
		a.grantCmd(),
		a.voidCmd(),
		a.grantsCmd(),
		a.historyCmd(),
		group("entitlement", "write test entitlements", a.entitlementPutCmd()),
		group("pool", "write and inspect team pools", a.poolPutCmd(), a.poolShowCmd()),
		a.setupCmd(),
		group("dlq", "list or redrive dead-lettered events", a.dlqListCmd(), a.dlqRedriveCmd()),
		a.notificationsCmd(),
	)
	// cobra's "completion bash|zsh|fish|powershell", made a group like
	// ours so that an unknown shell is a usage error.
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			asGroup(c)
		}
	}
	return root
}

// runE wraps a command's own code: errors from here on are the
// command's, not cobra's.
func (a *app) runE(fn func(ctx context.Context, cmd *cobra.Command) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		a.started = true
		return fn(cmd.Context(), cmd)
	}
}

// noArgs rejects positional arguments: no command takes any.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q (flags start with --)", args[0])
	}
	return nil
}

// group is a command that only holds subcommands.
func group(name, short string, subs ...*cobra.Command) *cobra.Command {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.Name()
	}
	g := &cobra.Command{Use: name + " <" + strings.Join(names, "|") + ">", Short: short}
	g.AddCommand(subs...)
	asGroup(g)
	return g
}

// asGroup makes g, a command that only holds subcommands, reject being
// run alone or with a subcommand it does not have, as a usage error.
func asGroup(g *cobra.Command) {
	var names []string
	for _, s := range g.Commands() {
		names = append(names, s.Name())
	}
	list := strings.Join(names, ", ")
	g.Args = func(_ *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("%s: unknown subcommand %q (one of: %s)", g.Name(), args[0], list)
		}
		return nil
	}
	g.RunE = func(*cobra.Command, []string) error {
		return usagef("%s: missing subcommand (one of: %s)", g.Name(), list)
	}
}

// setting resolves a value from its flag or, when the flag was not
// given, its environment variable.
func (a *app) setting(flagValue, envName string) string {
	if v := strings.TrimSpace(flagValue); v != "" {
		return v
	}
	return strings.TrimSpace(a.getenv(envName))
}

// queueURL resolves and checks a queue URL setting.
func (a *app) queueURL(flagValue, flagName, envName string) (string, error) {
	u := a.setting(flagValue, envName)
	if u == "" {
		return "", usagef("no queue: set %s or pass %s", envName, flagName)
	}
	if err := queueurl.Check(u); err != nil {
		return "", usagef("%s: %v", flagName, err)
	}
	return u, nil
}

// table resolves a table name setting.
func (a *app) table(flagValue, flagName, envName string) (string, error) {
	t := a.setting(flagValue, envName)
	if t == "" {
		return "", usagef("no table: set %s or pass %s", envName, flagName)
	}
	return t, nil
}

// entitlementKeys reads the entitlements table's key layout exactly as
// the service does.
func (a *app) entitlementKeys() (dynamodb.EntitlementKeys, error) {
	l, err := config.LoadKeyLayout(a.getenv)
	if err != nil {
		return dynamodb.EntitlementKeys{}, usageError{err}
	}
	return dynamodb.EntitlementKeys(l), nil
}

// awsConfig loads the AWS configuration the way the service does: the
// SDK's standard variables and files (read from the process environment,
// not through getenv).
func (a *app) awsConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, usagef("AWS configuration: %v", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, usagef("AWS_REGION is not set")
	}
	return cfg, nil
}

// dynamoDB returns a DynamoDB client for cfg. With an endpoint override
// (DynamoDB Local and other emulators) it skips the SDK's CRC32 check of
// responses: those endpoints omit the x-amz-crc32 header on error
// responses, and the SDK then logs a spurious "failed to close HTTP
// response body" warning for every expected error (a table that already
// exists), which buries usagectl's own output (aws/aws-sdk-go-v2#3545).
// AWS's endpoints keep the check.
func (a *app) dynamoDB(cfg aws.Config) *awsdynamodb.Client {
	override := a.getenv("AWS_ENDPOINT_URL_DYNAMODB") != "" || a.getenv("AWS_ENDPOINT_URL") != ""
	return awsdynamodb.NewFromConfig(cfg, func(o *awsdynamodb.Options) {
		if override {
			o.DisableValidateResponseChecksum = true
		}
	})
}

// writeJSON writes v as indented JSON to stdout.
func (a *app) writeJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// isTerminal reports whether w is a terminal (a character device), where
// a progress display helps rather than pollutes.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// completions completes a flag with a fixed list of values.
func completions[T ~string](values []T) cobra.CompletionFunc {
	s := make([]string, len(values))
	for i, v := range values {
		s[i] = string(v)
	}
	return cobra.FixedCompletions(s, cobra.ShellCompDirectiveNoFileComp)
}
