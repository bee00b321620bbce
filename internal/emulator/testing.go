package emulator

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

// DynamoDB returns the endpoint of the DynamoDB Local shared by this test
// binary, starting it on first use. Tables persist for the binary's lifetime,
// so tests should use UniqueName for theirs.
func DynamoDB(t testing.TB) string {
	t.Helper()
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
