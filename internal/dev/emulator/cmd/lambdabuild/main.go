// Command lambdabuild builds the function's bootstrap for Lambda, with the
// build flags defined once in package emulator (LambdaBuildFlags), which
// the tests that run the bootstrap under the Lambda emulator use too.
// `make package` runs it:
//
//	go run ./internal/dev/emulator/cmd/lambdabuild -goarch arm64 -o dist/bootstrap
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
)

func main() {
	goarch := flag.String("goarch", "arm64", "target architecture: arm64 or amd64 (the function's architecture)")
	out := flag.String("o", "dist/bootstrap", "output file")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: lambdabuild [-goarch arm64|amd64] [-o dist/bootstrap]")
		os.Exit(2)
	}
	if err := build(*goarch, *out); err != nil {
		fmt.Fprintln(os.Stderr, "lambdabuild:", err)
		os.Exit(1)
	}
}

func build(goarch, out string) error {
	if goarch != "arm64" && goarch != "amd64" {
		return fmt.Errorf("-goarch %q: Lambda runs arm64 or amd64", goarch)
	}
	abs, err := filepath.Abs(out) // the build runs from the module root
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return err
	}
	cmd, err := emulator.LambdaBuild(context.Background(), goarch, abs)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	fmt.Fprintln(os.Stderr, emulator.LambdaBuildCommandLine(goarch), "-o", out, "./cmd/usage-event-service")
	return cmd.Run()
}
