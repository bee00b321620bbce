package emulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
)

func TestMain(m *testing.M) { emulator.Main(m) }

func TestStartDynamoDB(t *testing.T) {
	emulator.SkipShort(t)
	t.Parallel()
	start := time.Now()
	p, err := emulator.StartDynamoDB(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("DynamoDB Local healthy after %s", time.Since(start).Round(time.Millisecond))
	req, _ := http.NewRequest(http.MethodPost, p.Endpoint+"/", strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00")
	if code, body := do(t, req); code != http.StatusOK || !strings.Contains(body, "TableNames") {
		t.Errorf("ListTables: %d %s", code, body)
	}
	stopAndCheck(t, p)
}

func TestStartSQS(t *testing.T) {
	emulator.SkipShort(t)
	t.Parallel()
	start := time.Now()
	p, err := emulator.StartSQS(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fauxqs healthy after %s", time.Since(start).Round(time.Millisecond))
	req, _ := http.NewRequest(http.MethodGet, p.Endpoint+"/health", nil)
	if code, body := do(t, req); code != http.StatusOK {
		t.Errorf("GET /health: %d %s", code, body)
	}
	stopAndCheck(t, p)
}

// TestStartLambda runs a real aws-lambda-go bootstrap under the RIE and
// checks that env reaches it and that Stop also kills it, although the RIE
// puts it in a process group of its own.
func TestStartLambda(t *testing.T) {
	emulator.SkipShort(t)
	t.Parallel()
	ctx := t.Context()
	if err := emulator.InstallAll(ctx); err != nil {
		t.Fatal(err)
	}
	bootstrap := emulator.Binary(t, "./internal/dev/emulator/testdata/echo")
	p, err := emulator.StartLambda(ctx, bootstrap, []string{"ECHO_ENV=from-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	url := p.Endpoint + "/2015-03-31/functions/function/invocations"
	var got struct {
		Input map[string]string `json:"input"`
		Env   string            `json:"env"`
		PID   int               `json:"pid"`
	}
	for i := range 2 { // the second invocation reuses the warm bootstrap
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"hello":"world"}`))
		code, body := do(t, req)
		if code != http.StatusOK {
			t.Fatalf("invoke %d: %d %s\nlog:\n%s", i, code, body, readLog(p))
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("invoke %d: %v: %s", i, err, body)
		}
	}
	if got.Input["hello"] != "world" || got.Env != "from-test" || got.PID == 0 {
		t.Errorf("invoke: got %+v", got)
	}
	stopAndCheck(t, p)
	if !gone(got.PID) {
		t.Errorf("bootstrap pid %d still running after Stop", got.PID)
	}
}

func TestStartLambdaRejectsMissingBootstrap(t *testing.T) {
	t.Parallel()
	_, err := emulator.StartLambda(t.Context(), filepath.Join(t.TempDir(), "nope"), nil)
	if err == nil || !strings.Contains(err.Error(), "bootstrap") {
		t.Fatalf("err = %v", err)
	}
}

// TestStartErrors runs sequentially because it changes PATH: the parallel
// tests only resume after all sequential ones have finished.
func TestStartErrors(t *testing.T) {
	emulator.SkipShort(t)
	if err := emulator.InstallAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	path := os.Getenv("PATH")
	t.Setenv("TMPDIR", t.TempDir()) // failed starts keep their logs; drop them with the test

	t.Setenv("PATH", t.TempDir())
	if _, err := emulator.StartDynamoDB(t.Context()); err == nil || !strings.Contains(err.Error(), "needs Java 17+ on PATH") {
		t.Errorf("StartDynamoDB without java: %v", err)
	}
	if _, err := emulator.StartSQS(t.Context()); err == nil || !strings.Contains(err.Error(), "needs Node.js 20+ on PATH") {
		t.Errorf("StartSQS without node: %v", err)
	}

	// A java that dies at once: the start is retried once, then the error
	// carries the log.
	fake := t.TempDir()
	script := "#!/bin/sh\necho \"attempt on $*\"\nexit 3\n"
	if err := os.WriteFile(filepath.Join(fake, "java"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", fake+string(os.PathListSeparator)+path)
	_, err := emulator.StartDynamoDB(t.Context())
	if err == nil || !strings.Contains(err.Error(), "exited before becoming healthy") || !strings.Contains(err.Error(), "attempt on -Djava.library.path") {
		t.Errorf("StartDynamoDB with failing java: %v", err)
	}
	t.Log(err)
}

func TestUniqueName(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^[a-z0-9-]{3,60}$`)
	seen := map[string]bool{}
	for _, prefix := range []string{"", "x", "Usage_Events.Table", strings.Repeat("p", 100)} {
		for range 3 {
			n := emulator.UniqueName(t, prefix)
			if !valid.MatchString(n) || seen[n] {
				t.Errorf("UniqueName(%q) = %q (valid %v, duplicate %v)", prefix, n, valid.MatchString(n), seen[n])
			}
			seen[n] = true
		}
	}
	t.Run("Sub/Test With Spaces", func(t *testing.T) {
		if n := emulator.UniqueName(t, "q"); !valid.MatchString(n) || !strings.HasPrefix(n, "q-uniquename-sub-test-with") {
			t.Errorf("UniqueName = %q", n)
		}
	})
}

func TestCacheDir(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("USAGE_CACHE_DIR", dir)
	if got, err := emulator.CacheDir(); err != nil || got != dir {
		t.Errorf("CacheDir() = %q, %v; want %q", got, err, dir)
	}
	t.Setenv("USAGE_CACHE_DIR", "")
	got, err := emulator.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(got), "go.mod")); err != nil || filepath.Base(got) != ".cache" {
		t.Errorf("CacheDir() = %q, want <repo root>/.cache", got)
	}
}

// A nested module (the benchmark's) shares the repository's root and so
// its cache.
func TestModuleRootIsTheOutermostModule(t *testing.T) {
	repo := t.TempDir()
	pkg := filepath.Join(repo, "internal", "bench", "cmd", "usage-bench")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{repo, filepath.Join(repo, "internal", "bench")} {
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/m\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, wd := range []string{repo, filepath.Join(repo, "internal"), filepath.Join(repo, "internal", "bench"), pkg} {
		t.Chdir(wd)
		if got, err := emulator.ModuleRoot(); err != nil || got != repo {
			t.Errorf("from %s: ModuleRoot() = %q, %v; want %q", wd, got, err, repo)
		}
	}
}

// stopAndCheck stops p and checks that the process is gone, its log removed
// and a second Stop harmless.
func stopAndCheck(t *testing.T, p *emulator.Process) {
	t.Helper()
	start := time.Now()
	if err := p.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	t.Logf("%s stopped in %s", p.Name, time.Since(start).Round(time.Millisecond))
	if !gone(p.PID) {
		t.Errorf("%s pid %d still running after Stop", p.Name, p.PID)
	}
	if _, err := os.Stat(p.LogPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("log %s not removed: %v", p.LogPath, err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// gone reports whether pid no longer runs; a zombie awaiting its reaper counts
// as gone.
func gone(pid int) bool {
	for range 50 {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
			if f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); len(f) > 0 && f[0] == "Z" {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func readLog(p *emulator.Process) string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}
