package emulator

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Pinned versions. They are part of the install directory names, so bumping
// one installs the new version next to the old one instead of silently
// reusing a stale copy.
const (
	// dynamoDBSimulatorPkg is an npm package that happens to vendor the
	// official DynamoDB Local distribution (v1.25.1) under package/emulator/.
	// npm is the only registry reachable from CI besides the Go proxy, so
	// this is how we get the real AWS jar without downloading from S3.
	dynamoDBSimulatorPkg = "amplify-dynamodb-simulator@2.9.30"
	dynamoDBLocalVersion = "1.25.1"
	// dynamoDBLocalJarSHA256 pins the jar inside the tarball: npm checks the
	// tarball's integrity, this checks that it still carries the jar we tested.
	dynamoDBLocalJarSHA256 = "454305e9bc3e6ebcca5b62569869e31563b8d7e346474e94557b2600702146c7"

	// fauxqsVersion is the newest fauxqs that still runs on Node 20.
	fauxqsVersion = "1.9.2"

	riePackage = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
	rieVersion = "v0.0.0-20261030222936-bef5c4ba774d"
)

// CacheDir returns the directory emulators are installed into: $USAGE_CACHE_DIR
// if set, else <repo root>/.cache (git-ignored), where the repo root is
// ModuleRoot. Tests run with the package directory as working directory, so
// every test binary of the repository, the nested benchmark module's
// included, shares one cache.
func CacheDir() (string, error) {
	if d := os.Getenv("USAGE_CACHE_DIR"); d != "" {
		return filepath.Abs(d)
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", fmt.Errorf("emulator: %w; set USAGE_CACHE_DIR", err)
	}
	return filepath.Join(root, ".cache"), nil
}

// ModuleRoot is the outermost directory at or above the working directory
// that holds go.mod: the repository, wherever a command or test runs in it.
// Outermost, not nearest, because the benchmark (internal/dev/bench) is a
// module of its own nested in the repository, and it too must find the
// repository's single .cache and its cmd/ directories.
func ModuleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root := ""
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			root = dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if root == "" {
		return "", fmt.Errorf("no go.mod above %s", wd)
	}
	return root, nil
}

// InstallAll fetches every emulator into the cache so that later starts need
// no network. CI and make targets call it up front; the installs run
// concurrently because the RIE build dominates and is CPU bound while the npm
// downloads are network bound.
func InstallAll(ctx context.Context) error {
	installs := []func(context.Context) (string, error){installDynamoDB, installFauxqs, installRIE}
	errs := make([]error, len(installs))
	var wg sync.WaitGroup
	for i, install := range installs {
		wg.Go(func() { _, errs[i] = install(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// installDynamoDB returns the directory holding DynamoDBLocal.jar and
// DynamoDBLocal_lib.
func installDynamoDB(ctx context.Context) (string, error) {
	if _, err := exec.LookPath("npm"); err != nil {
		return "", fmt.Errorf("installing DynamoDB Local needs npm on PATH (it is fetched as the npm package %s): %w", dynamoDBSimulatorPkg, err)
	}
	return ensureInstalled(ctx, "dynamodb-local-"+dynamoDBLocalVersion, func(ctx context.Context, dir string) error {
		dl := filepath.Join(dir, "download")
		if err := os.Mkdir(dl, 0o755); err != nil {
			return err
		}
		if err := run(ctx, dl, nil, "npm", "pack", "--silent", "--no-fund", dynamoDBSimulatorPkg); err != nil {
			return err
		}
		tgz, err := filepath.Glob(filepath.Join(dl, "*.tgz"))
		if err != nil || len(tgz) != 1 {
			return fmt.Errorf("npm pack %s: expected one .tgz, found %v", dynamoDBSimulatorPkg, tgz)
		}
		if err := extractTarGz(tgz[0], "package/emulator/", dir); err != nil {
			return fmt.Errorf("extracting %s: %w", tgz[0], err)
		}
		if err := os.RemoveAll(dl); err != nil {
			return err
		}
		return checkSHA256(filepath.Join(dir, "DynamoDBLocal.jar"), dynamoDBLocalJarSHA256)
	})
}

// installFauxqs returns the path of the fauxqs executable.
func installFauxqs(ctx context.Context) (string, error) {
	if _, err := exec.LookPath("npm"); err != nil {
		return "", fmt.Errorf("installing the SQS emulator (fauxqs) needs Node.js 20+ and npm on PATH: %w", err)
	}
	dir, err := ensureInstalled(ctx, "fauxqs-"+fauxqsVersion, func(ctx context.Context, dir string) error {
		return run(ctx, dir, nil, "npm", "install", "--prefix", dir, "--no-audit", "--no-fund",
			"--omit=dev", "--loglevel=error", "fauxqs@"+fauxqsVersion)
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "node_modules", ".bin", "fauxqs"), nil
}

// installRIE returns the path of the aws-lambda-rie binary. It is built from
// source through the Go module proxy, the one place it is published that CI
// can reach.
func installRIE(ctx context.Context) (string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the Lambda Runtime Interface Emulator is built from source and needs the go command on PATH: %w", err)
	}
	short := rieVersion[strings.LastIndexByte(rieVersion, '-')+1:]
	dir, err := ensureInstalled(ctx, "aws-lambda-rie-"+short, func(ctx context.Context, dir string) error {
		// GOFLAGS is cleared because a -mod=... inherited from the caller
		// makes "go install pkg@version" fail; the command runs outside the
		// module (in dir) so the repo's go.mod is neither read nor changed.
		env := []string{"GOBIN=" + dir, "GOFLAGS=", "CGO_ENABLED=0"}
		return run(ctx, dir, env, goCmd, "install", riePackage+"@"+rieVersion)
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "aws-lambda-rie"), nil
}

// ensureInstalled makes <cache>/<name> exist, running fill on a fresh
// temporary directory and renaming it into place. The rename is the commit
// point, so an existing directory is always a complete install and the fast
// path needs neither the lock nor the network. The flock serialises
// concurrent installers (go test runs one binary per package in parallel),
// and the re-check under the lock makes the losers reuse the winner's work.
func ensureInstalled(ctx context.Context, name string, fill func(ctx context.Context, dir string) error) (string, error) {
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	final := filepath.Join(cache, name)
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(ctx, filepath.Join(cache, "."+name+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	tmp, err := os.MkdirTemp(cache, ".tmp-"+name+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // no-op after a successful rename
	start := time.Now()
	if err := fill(ctx, tmp); err != nil {
		return "", fmt.Errorf("emulator: installing %s: %w", name, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp made it 0700
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "emulator: installed %s in %s\n", final, time.Since(start).Round(100*time.Millisecond))
	return final, nil
}

// lockFile takes an exclusive flock, polling so that ctx can abort the wait
// (a blocking flock cannot be interrupted).
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for install lock %s: %w", path, context.Cause(ctx))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// run executes an install command, returning its output in the error since
// npm and go explain their failures there.
func run(ctx context.Context, dir string, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(out, 4096))
	}
	return nil
}

// extractTarGz extracts the entries under prefix into dst, stripping prefix.
// Names escaping dst and non-regular entries are rejected or skipped.
func extractTarGz(path, prefix, dst string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		rel, ok := strings.CutPrefix(h.Name, prefix)
		if !ok || rel == "" || h.Typeflag != tar.TypeReg {
			continue
		}
		if !filepath.IsLocal(rel) {
			return fmt.Errorf("unsafe path %q in archive", h.Name)
		}
		target := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644|os.FileMode(h.Mode)&0o111)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, tr); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("no files under %s", prefix)
	}
	return nil
}

func checkSHA256(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%s: sha256 %s, want %s", path, got, want)
	}
	return nil
}
