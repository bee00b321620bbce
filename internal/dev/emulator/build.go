package emulator

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// lambdaBuildFlags are the go build flags of the function as it ships:
// no RPC shim (the provided.al2023 runtime speaks the Runtime API), no
// paths, VCS stamp or build ID in the binary, no symbol tables, so that
// two builds of one commit are byte for byte the same. `make package`,
// the tests that run the bootstrap under the Lambda emulator and the
// cold-start benchmark all build with them, through LambdaBuild.
var lambdaBuildFlags = []string{"-tags", "lambda.norpc", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -buildid="}

// lambdaPackage is the function's main package.
const lambdaPackage = "./cmd/usage-event-service"

// LambdaBuildFlags returns the go build flags of the shipped function.
func LambdaBuildFlags() []string { return slices.Clone(lambdaBuildFlags) }

// LambdaBuildCommandLine is the build as a shell command, for docs and
// reports: CGO_ENABLED=0 GOOS=linux GOARCH=<goarch> go build <flags>.
func LambdaBuildCommandLine(goarch string) string {
	quoted := make([]string, len(lambdaBuildFlags))
	for i, f := range lambdaBuildFlags {
		if strings.Contains(f, " ") {
			f = "'" + f + "'"
		}
		quoted[i] = f
	}
	return "CGO_ENABLED=0 GOOS=linux GOARCH=" + goarch + " go build " + strings.Join(quoted, " ")
}

// GoBuild returns the command that builds the main package pkg (an
// import path, or a path relative to the module root such as
// "./cmd/usagectl") into out, with flags, from the module root. The
// caller runs it (Run, CombinedOutput) and may add to its Env.
func GoBuild(ctx context.Context, out, pkg string, flags ...string) (*exec.Cmd, error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	args := append([]string{"build"}, flags...)
	args = append(args, "-o", out, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = os.Environ()
	return cmd, nil
}

// LambdaBuild returns the command that builds the function's bootstrap
// for linux/goarch into out, exactly as it ships.
func LambdaBuild(ctx context.Context, goarch, out string) (*exec.Cmd, error) {
	cmd, err := GoBuild(ctx, out, lambdaPackage, lambdaBuildFlags...)
	if err != nil {
		return nil, err
	}
	cmd.Env = append(cmd.Env, "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	return cmd, nil
}
