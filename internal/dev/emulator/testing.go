package emulator

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Main runs the package's tests and stops every emulator this process
// started, even after a failure. Use it from TestMain:
//
//	func TestMain(m *testing.M) { emulator.Main(m) }
//
// When tests failed, the emulators' logs are kept and their paths printed.
// A test binary that panics or is killed never gets here; the parent-death
// signal set on every emulator covers that case.
func Main(m *testing.M) {
	code := m.Run()
	failed := code != 0
	removeBinaries()
	stopped, err := stopAll(failed)
	if err != nil {
		fmt.Fprintln(os.Stderr, "emulator:", err)
		if code == 0 {
			code = 1
		}
	}
	if failed {
		for _, p := range stopped {
			fmt.Fprintf(os.Stderr, "emulator: %s log kept at %s\n", p.Name, p.LogPath)
		}
	}
	os.Exit(code)
}

// sharedEmulator is started at most once per test binary. A failure is
// remembered too, so that a broken install fails every test quickly instead
// of each one waiting out the start timeout again.
type sharedEmulator struct {
	once sync.Once
	p    *Process
	err  error
}

var shared struct {
	dynamodb, sqs, env sharedEmulator
}

func (s *sharedEmulator) get(start func(context.Context) (*Process, error)) (*Process, error) {
	s.once.Do(func() {
		// Not the test's context: the emulator outlives the first test that
		// asks for it and is stopped by Main.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		s.p, s.err = start(ctx)
	})
	return s.p, s.err
}

// SkipShort skips a test that needs an emulator (or a real process of the
// service) when the tests run with -short. DynamoDB, SQS, Env and Stack
// call it, so every test that asks for an emulator is skipped the same way;
// tests that start emulators or binaries themselves call it first.
func SkipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the emulators or the service's binaries; skipped with -short")
	}
}

// DynamoDB returns the endpoint of the DynamoDB Local shared by this test
// binary, starting it on first use. Tables persist for the binary's lifetime,
// so tests should use UniqueName for theirs.
func DynamoDB(t testing.TB) string {
	t.Helper()
	SkipShort(t)
	p, err := shared.dynamodb.get(StartDynamoDB)
	if err != nil {
		t.Fatalf("emulator: DynamoDB Local is not available: %v", err)
	}
	return p.Endpoint
}

// SQS returns the endpoint of the fauxqs shared by this test binary, starting
// it on first use.
func SQS(t testing.TB) string {
	t.Helper()
	SkipShort(t)
	p, err := shared.sqs.get(StartSQS)
	if err != nil {
		t.Fatalf("emulator: SQS emulator (fauxqs) is not available: %v", err)
	}
	return p.Endpoint
}

// Env points the standard AWS environment variables of this process at the
// shared emulators, so that code under test loads its configuration with
// config.LoadDefaultConfig exactly as in production. It uses os.Setenv, not
// t.Setenv, because the emulators are per binary and t.Setenv forbids
// parallel tests. It also blanks the shared config files and profile so a
// developer's ~/.aws cannot leak real settings or credentials into tests.
func Env(t testing.TB) {
	t.Helper()
	SkipShort(t)
	// Start both at once: DynamoDB Local's JVM dominates, fauxqs hides in it.
	var wg sync.WaitGroup
	wg.Go(func() { shared.dynamodb.get(StartDynamoDB) })
	wg.Go(func() { shared.sqs.get(StartSQS) })
	wg.Wait()
	ddb, sqs := DynamoDB(t), SQS(t)
	_, err := shared.env.get(func(context.Context) (*Process, error) {
		for k, v := range map[string]string{
			"AWS_REGION":                  "us-east-1",
			"AWS_ACCESS_KEY_ID":           "test",
			"AWS_SECRET_ACCESS_KEY":       "test",
			"AWS_ENDPOINT_URL_DYNAMODB":   ddb,
			"AWS_ENDPOINT_URL_SQS":        sqs,
			"AWS_CONFIG_FILE":             os.DevNull,
			"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
			"AWS_EC2_METADATA_DISABLED":   "true",
		} {
			if err := os.Setenv(k, v); err != nil {
				return nil, err
			}
		}
		for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"} {
			os.Unsetenv(k)
		}
		return nil, nil
	})
	if err != nil {
		t.Fatalf("emulator: setting AWS environment: %v", err)
	}
}

// Stack is the set-up of a test that talks to AWS: it starts the shared
// DynamoDB Local and SQS emulator (Env) and returns the SDK configuration
// loaded the production way, from the standard variables alone.
func Stack(t testing.TB) aws.Config {
	t.Helper()
	Env(t)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatalf("emulator: loading the AWS configuration: %v", err)
	}
	return cfg
}

// LockedBuffer collects a child process's output: exec's copier writes it
// while the test reads it.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// RaceEnabled reports whether this binary runs with the race detector.
const RaceEnabled = raceEnabled

// builtBinaries are the binaries built by this test binary, each once,
// in one directory that Main removes.
var builtBinaries struct {
	sync.Mutex
	dir   string
	paths map[string]*builtBinary
}

type builtBinary struct {
	dir  string // within builtBinaries.dir
	once sync.Once
	path string
	err  error
}

// Binary builds the main package pkg (an import path, or a path relative
// to the module root such as "./cmd/usagectl") once per test binary and
// returns its path; with the race detector when the tests run with it,
// so that the processes they start are checked too. The package's
// TestMain must be Main, which removes the binaries.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	var flags []string
	if RaceEnabled {
		flags = append(flags, "-race")
	}
	return build(t, pkg, path.Base(pkg), func(ctx context.Context, out string) (*exec.Cmd, error) {
		return GoBuild(ctx, out, pkg, flags...)
	})
}

// LambdaBootstrap builds the function's bootstrap as it ships
// (LambdaBuild), for this machine's architecture, once per test binary.
func LambdaBootstrap(t testing.TB) string {
	t.Helper()
	return build(t, "lambda bootstrap", "bootstrap", func(ctx context.Context, out string) (*exec.Cmd, error) {
		return LambdaBuild(ctx, runtime.GOARCH, out)
	})
}

// build runs command once per key, into a directory of its own as name.
func build(t testing.TB, key, name string, command func(ctx context.Context, out string) (*exec.Cmd, error)) string {
	t.Helper()
	builtBinaries.Lock()
	if builtBinaries.paths == nil {
		builtBinaries.paths = map[string]*builtBinary{}
	}
	b := builtBinaries.paths[key]
	if b == nil {
		b = &builtBinary{dir: strconv.Itoa(len(builtBinaries.paths))}
		builtBinaries.paths[key] = b
	}
	builtBinaries.Unlock()
	b.once.Do(func() {
		builtBinaries.Lock()
		if builtBinaries.dir == "" {
			builtBinaries.dir, b.err = os.MkdirTemp("", "emulator-bin-")
		}
		dir := filepath.Join(builtBinaries.dir, b.dir)
		builtBinaries.Unlock()
		if b.err == nil {
			b.err = os.Mkdir(dir, 0o755)
		}
		if b.err != nil {
			return
		}
		out := filepath.Join(dir, name)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd, err := command(ctx, out)
		if err != nil {
			b.err = err
			return
		}
		if o, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("%s: %v\n%s", cmd, err, o)
			return
		}
		b.path = out
	})
	if b.err != nil {
		t.Fatalf("emulator: building %s: %v", key, b.err)
	}
	return b.path
}

func removeBinaries() {
	builtBinaries.Lock()
	defer builtBinaries.Unlock()
	if builtBinaries.dir != "" {
		os.RemoveAll(builtBinaries.dir)
	}
}

var (
	nameCounter atomic.Uint64
	nonName     = regexp.MustCompile(`[^a-z0-9]+`)
)

// UniqueName returns a short name, unique within this process and unlikely to
// clash with other processes sharing an emulator, that is valid both as a
// DynamoDB table and as an SQS queue name: [a-z0-9-], 3 to 60 characters,
// built from prefix, the test name (to find it in emulator state when
// debugging), the pid and a counter.
func UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	clean := func(s string, max int) string {
		s = strings.Trim(nonName.ReplaceAllString(strings.ToLower(s), "-"), "-")
		if len(s) > max {
			s = strings.Trim(s[:max], "-")
		}
		return s
	}
	test := clean(strings.TrimPrefix(t.Name(), "Test"), 28)
	parts := []string{clean(prefix, 16), test,
		strconv.FormatInt(int64(os.Getpid()), 36), strconv.FormatUint(nameCounter.Add(1), 36)}
	var kept []string
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	name := strings.Join(kept, "-")
	if len(name) < 3 {
		name = "t-" + name
	}
	return name
}
