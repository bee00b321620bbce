package emulator_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
)

// TestHelpersSkipUnderShort: every helper that needs an emulator skips
// its test with -short, before starting anything.
func TestHelpersSkipUnderShort(t *testing.T) {
	if !testing.Short() {
		if err := flag.Set("test.short", "true"); err != nil {
			t.Fatal(err)
		}
		defer flag.Set("test.short", "false")
	}
	for name, helper := range map[string]func(testing.TB){
		"DynamoDB": func(t testing.TB) { emulator.DynamoDB(t) },
		"SQS":      func(t testing.TB) { emulator.SQS(t) },
		"Env":      emulator.Env,
		"Stack":    func(t testing.TB) { emulator.Stack(t) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if !t.Skipped() {
					t.Errorf("%s did not skip under -short", name)
				}
			}()
			helper(t)
		})
	}
}

func TestLockedBufferTakesConcurrentWritesAndReads(t *testing.T) {
	var b emulator.LockedBuffer
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprintf(&b, "w%d\n", i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 400 {
		t.Errorf("%d lines, want 400", n)
	}
}

func TestBinaryIsBuiltOncePerTestBinary(t *testing.T) {
	first := emulator.Binary(t, "./internal/dev/emulator/testdata/echo")
	if fi, err := os.Stat(first); err != nil || fi.Mode()&0o111 == 0 || filepath.Base(first) != "echo" {
		t.Fatalf("Binary = %s (%v, %v)", first, fi, err)
	}
	if again := emulator.Binary(t, "./internal/dev/emulator/testdata/echo"); again != first {
		t.Errorf("built twice: %s, %s", first, again)
	}
	if other := emulator.Binary(t, "github.com/usage-event-service/usage-event-service/internal/dev/emulator/testdata/echo"); other == first {
		t.Errorf("two keys share %s", other)
	}
}

// TestLambdaBuildIsTheShippedBuild pins the one definition of the
// function's build: the flags, the environment, and the README's
// account of `make package`.
func TestLambdaBuildIsTheShippedBuild(t *testing.T) {
	cmd, err := emulator.LambdaBuild(t.Context(), "arm64", "/tmp/x/bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]string{"go", "build"}, emulator.LambdaBuildFlags()...), "-o", "/tmp/x/bootstrap", "./cmd/usage-event-service")
	if got := append([]string{filepath.Base(cmd.Path)}, cmd.Args[1:]...); !slices.Equal(got, want) {
		t.Errorf("args %q, want %q", got, want)
	}
	for _, f := range []string{"-tags", "lambda.norpc", "-trimpath", "-buildvcs=false", "-s -w -buildid="} {
		if !slices.Contains(emulator.LambdaBuildFlags(), f) {
			t.Errorf("flags lack %q", f)
		}
	}
	env := strings.Join(cmd.Env, "\n") + "\n"
	for _, v := range []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64"} {
		if !strings.HasSuffix(env, v+"\n") && !strings.Contains(env, "\n"+v+"\n") {
			t.Errorf("environment lacks %s", v)
		}
	}
	if _, err := os.Stat(filepath.Join(cmd.Dir, "go.mod")); err != nil {
		t.Errorf("runs in %s, not the module root", cmd.Dir)
	}
	readme, err := os.ReadFile(filepath.Join(cmd.Dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if line := emulator.LambdaBuildCommandLine("arm64"); !strings.Contains(string(readme), "`make package` runs `"+line+"`") {
		t.Errorf("README.md does not say `make package` runs `%s`", line)
	}
}
