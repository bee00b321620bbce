package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/config"
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
}

// usageError is a mistake in the command line or the configuration: exit
// code 2, with a pointer to --help.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// errHelp: help was asked for and printed.
var errHelp = errors.New("help shown")

// command is one usagectl command.
type command struct {
	name     string // "send", "dlq list"
	synopsis string // one line for the command list
	run      func(ctx context.Context, a *app, args []string) error
}

func commands() []command {
	return []command{
		{"send", "send usage events to the queue (one from flags, or a JSON-lines file)", runSend},
		{"usage", "show a user's entitlements: used, limit, current period, next reset", runUsage},
		{"entitlement put", "write an entitlement item the way access-service would (development and tests)", runEntitlementPut},
		{"setup", "create the ledger table and the queues (and, with --local, the entitlements table)", runSetup},
		{"dlq list", "list dead-lettered events with their rejection reasons", runDLQList},
		{"dlq redrive", "move dead-lettered events back to the queue, bodies unchanged", runDLQRedrive},
	}
}

const overview = `usagectl: send and inspect usage events for usage-event-service.

Usage:
  usagectl <command> [flags]
  usagectl <command> --help

Commands:
%s
Configuration comes from the same environment variables as the service,
and flags override them:
  USAGE_EVENT_QUEUE_URL   the usage event queue (--queue-url)
  DEAD_LETTER_QUEUE_URL   its dead-letter queue (--dlq-url)
  ENTITLEMENTS_TABLE      access-service's entitlements table (--table)
  USAGE_LEDGER_TABLE      the ledger table (--ledger-table)
  ENTITLEMENT_PK_ATTRIBUTE, ENTITLEMENT_SK_ATTRIBUTE, ENTITLEMENT_PK_PREFIX,
  ENTITLEMENT_SK_PREFIX   the entitlements table's key layout
  AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_DYNAMODB, ...
                          read by the AWS SDK as usual

Exit codes: 0 success, 1 the operation failed, 2 bad usage or configuration.
`

func (a *app) printOverview(w io.Writer) {
	var b strings.Builder
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-16s %s\n", c.name, c.synopsis)
	}
	fmt.Fprintf(w, overview, b.String())
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	err := a.dispatch(ctx, args)
	var ue usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "usagectl: %v\nRun 'usagectl %s--help' for usage.\n", err, helpPrefix(args))
		return exitUsage
	default:
		fmt.Fprintf(stderr, "usagectl: %v\n", err)
		return exitFailed
	}
}

// helpPrefix names the command the user was running, for the hint after a
// usage error.
func helpPrefix(args []string) string {
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c.name + " "
		}
		if group, _, ok := strings.Cut(c.name, " "); ok && len(args) > 0 && args[0] == group {
			return group + " "
		}
	}
	return ""
}

func (a *app) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		a.printOverview(a.stderr)
		return usagef("no command given")
	}
	switch args[0] {
	case "-h", "-help", "--help":
		a.printOverview(a.stdout)
		return nil
	case "help":
		if len(args) == 1 {
			a.printOverview(a.stdout)
			return nil
		}
		return a.dispatch(ctx, append(append([]string{}, args[1:]...), "--help"))
	}
	// Longest match first: "dlq list" before a bare "dlq".
	cmds := commands()
	sort.SliceStable(cmds, func(i, j int) bool { return len(cmds[i].name) > len(cmds[j].name) })
	for _, c := range cmds {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c.run(ctx, a, args[len(words):])
		}
	}
	// A group name alone ("dlq", "entitlement") or with a bad subcommand.
	var subs []string
	for _, c := range commands() {
		if group, sub, ok := strings.Cut(c.name, " "); ok && group == args[0] {
			subs = append(subs, sub)
		}
	}
	if len(subs) > 0 {
		if len(args) > 1 && isHelp(args[1]) {
			fmt.Fprintf(a.stdout, "usage: usagectl %s <%s> [flags]\n\nRun 'usagectl %s <subcommand> --help' for details.\n", args[0], strings.Join(subs, "|"), args[0])
			return nil
		}
		if len(args) == 1 {
			return usagef("%s: missing subcommand (one of: %s)", args[0], strings.Join(subs, ", "))
		}
		return usagef("%s: unknown subcommand %q (one of: %s)", args[0], args[1], strings.Join(subs, ", "))
	}
	return usagef("unknown command %q (run 'usagectl help' for the list)", args[0])
}

func isHelp(s string) bool { return s == "-h" || s == "-help" || s == "--help" || s == "help" }

// flags is a command's flag set with its help text.
type flags struct {
	*flag.FlagSet
	a       *app
	usage   string // "usagectl send --user U --key K [...]"
	details string // paragraphs after the usage line
}

func (a *app) newFlags(name, usage, details string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by run, help by parse
	fs.Usage = func() {}
	return &flags{FlagSet: fs, a: a, usage: usage, details: details}
}

// parse parses args. It prints the help to stdout and returns errHelp for
// -h/--help, and returns a usageError for anything wrong, including
// positional arguments (no command takes any).
func (f *flags) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.printHelp(f.a.stdout)
			return errHelp
		}
		if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: "); ok {
			return usagef("unknown flag --%s", strings.TrimLeft(name, "-"))
		}
		return usageError{err}
	}
	if f.NArg() > 0 {
		return usagef("unexpected argument %q (flags start with --)", f.Arg(0))
	}
	return nil
}

// printHelp prints the usage line, the details and the flags, spelled
// with two dashes as the rest of the help is (the flag package accepts
// both).
func (f *flags) printHelp(w io.Writer) {
	fmt.Fprintf(w, "usage: %s\n\n%s\nFlags:\n", f.usage, f.details)
	f.VisitAll(func(fl *flag.Flag) {
		kind, usage := flag.UnquoteUsage(fl)
		line := "  --" + fl.Name
		if kind != "" {
			line += " " + kind
		}
		fmt.Fprintf(w, "%s\n      %s", line, usage)
		if fl.DefValue != "" && fl.DefValue != "false" && fl.DefValue != "0" {
			fmt.Fprintf(w, " (default %s)", fl.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// set reports whether the flag was given on the command line.
func (f *flags) set(name string) bool {
	found := false
	f.Visit(func(fl *flag.Flag) {
		if fl.Name == name {
			found = true
		}
	})
	return found
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
	if err := config.CheckQueueURL(u); err != nil {
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

// entitlementKeys reads the entitlements table's key layout from the
// service's variables.
func (a *app) entitlementKeys() dynamodb.EntitlementKeys {
	k := dynamodb.DefaultEntitlementKeys
	if v := strings.TrimSpace(a.getenv("ENTITLEMENT_PK_ATTRIBUTE")); v != "" {
		k.PartitionAttr = v
	}
	if v := strings.TrimSpace(a.getenv("ENTITLEMENT_SK_ATTRIBUTE")); v != "" {
		k.SortAttr = v
	}
	if v := a.getenv("ENTITLEMENT_PK_PREFIX"); v != "" { // prefixes are data: spaces kept, as the service does
		k.UserPrefix = v
	}
	if v := a.getenv("ENTITLEMENT_SK_PREFIX"); v != "" {
		k.KeyPrefix = v
	}
	return k
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
// a progress bar helps rather than pollutes.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
