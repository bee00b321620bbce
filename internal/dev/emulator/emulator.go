// Package emulator installs and runs real AWS protocol peers on loopback
// ports: DynamoDB Local (the AWS jar), fauxqs for SQS and the AWS Lambda
// Runtime Interface Emulator. Tests, the demo and the benchmarks talk to them
// with the production SDK clients, so what is exercised is the wire protocol
// rather than a hand-written fake.
//
// Installs are cached under CacheDir and shared by concurrently running test
// binaries. Every emulator runs in its own process group with a parent-death
// signal, so it dies with the process that started it even when Stop is never
// reached (a panicking or killed test binary).
package emulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// startTimeout bounds the wait for an emulator to become healthy. The
	// DynamoDB Local JVM takes ~5 s on an idle 2-core machine and much
	// longer while go test compiles and runs other packages next to it.
	startTimeout = 60 * time.Second
	// stopGrace is how long Stop waits after SIGTERM before SIGKILL. All
	// three emulators keep state in memory only, so there is nothing to
	// flush; the grace just lets them exit cleanly and log it.
	stopGrace = 3 * time.Second
)

// Process is a running emulator.
type Process struct {
	Name     string // "dynamodb", "sqs" or "lambda"
	Endpoint string // http://127.0.0.1:port
	Port     int
	PID      int    // also the process group id
	LogPath  string // combined stdout/stderr; removed by Stop unless kept by Main after a failure

	cmd      *exec.Cmd
	exited   chan struct{} // closed once the process has been reaped
	waitErr  error         // valid after exited is closed
	stopOnce sync.Once
	stopErr  error
}

// running tracks every started and not yet stopped process, so Main can
// stop them whatever the tests did.
var running struct {
	sync.Mutex
	procs map[*Process]struct{}
}

// StartDynamoDB starts DynamoDB Local in memory. It runs with -sharedDb so
// that all clients see the same tables regardless of the access key and
// region they sign with (by default DynamoDB Local keeps a separate database
// per key and region, which makes a test's setup client and the code under
// test silently disagree).
func StartDynamoDB(ctx context.Context) (*Process, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("DynamoDB Local needs Java 17+ on PATH: %w", err)
	}
	dir, err := installDynamoDB(ctx)
	if err != nil {
		return nil, err
	}
	return start(ctx, "dynamodb", dir, dynamoDBHealthy, func(port int) ([]string, []string) {
		return []string{java,
			"-Djava.library.path=" + filepath.Join(dir, "DynamoDBLocal_lib"),
			"-jar", filepath.Join(dir, "DynamoDBLocal.jar"),
			"-inMemory", "-sharedDb", "-port", strconv.Itoa(port)}, nil
	})
}

// StartSQS starts fauxqs, an SQS (and SNS/S3) emulator speaking both the
// JSON and query protocols.
//
// It calls fauxqs's startFauxqs instead of running its CLI because the CLI
// hard-codes per-request logging (ignoring FAUXQS_LOGGER), which costs
// noticeable CPU under benchmark load; FAUXQS_LOGGER=true turns it back on.
func StartSQS(ctx context.Context) (*Process, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("the SQS emulator (fauxqs) needs Node.js 20+ on PATH: %w", err)
	}
	bin, err := installFauxqs(ctx)
	if err != nil {
		return nil, err
	}
	app := filepath.Join(filepath.Dir(filepath.Dir(bin)), "fauxqs", "dist", "app.js")
	script := fmt.Sprintf(`import(%q).then(m => m.startFauxqs({logger: process.env.FAUXQS_LOGGER === "true"}))`+
		`.catch(e => { console.error(e); process.exit(1) })`, "file://"+app)
	return start(ctx, "sqs", filepath.Dir(app), sqsHealthy, func(port int) ([]string, []string) {
		// fauxqs always binds 0.0.0.0; FAUXQS_HOST only changes queue URLs.
		return []string{node, "--input-type=module", "-e", script}, []string{"FAUXQS_PORT=" + strconv.Itoa(port)}
	})
}

// StartLambda runs the Lambda Runtime Interface Emulator with bootstrapPath
// as the function's runtime. The RIE starts the bootstrap lazily, on the
// first invocation, with the RIE's own environment plus env (later entries
// win), in the bootstrap's directory. Invoke it with
// POST <Endpoint>/2015-03-31/functions/function/invocations.
func StartLambda(ctx context.Context, bootstrapPath string, env []string) (*Process, error) {
	bootstrap, err := filepath.Abs(bootstrapPath)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(bootstrap); err != nil {
		return nil, fmt.Errorf("lambda bootstrap: %w", err)
	} else if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("lambda bootstrap %s is not an executable file", bootstrap)
	}
	rie, err := installRIE(ctx)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(bootstrap)
	env = append([]string{"LAMBDA_TASK_ROOT=" + dir}, env...)
	return start(ctx, "lambda", dir, tcpHealthy, func(port int) ([]string, []string) {
		// The Runtime API (which the bootstrap polls) defaults to the fixed
		// port 9001, so parallel RIEs would collide without their own port.
		apiPort, err := freePort()
		if err != nil {
			apiPort = 0 // let the RIE fail and be retried with new ports
		}
		return []string{rie,
			"--runtime-interface-emulator-address", "127.0.0.1:" + strconv.Itoa(port),
			"--runtime-api-address", "127.0.0.1:" + strconv.Itoa(apiPort),
			bootstrap}, env
	})
}

// start launches command(port) on a free port and waits until healthy. The port
// is picked by binding :0 and closing, which leaves a window for someone else
// to take it; an emulator that exits before becoming healthy is therefore
// retried once on a new port. A timeout is not retried: a second 60 s wait
// would not help a machine that is too slow.
func start(ctx context.Context, name, dir string, healthy func(context.Context, int) bool, command func(port int) (args, env []string)) (*Process, error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var p *Process
		var exitedEarly bool
		p, exitedEarly, err = startOnce(ctx, name, dir, healthy, command)
		if err == nil {
			return p, nil
		}
		if !exitedEarly {
			break
		}
	}
	return nil, err
}

func startOnce(ctx context.Context, name, dir string, healthy func(context.Context, int) bool, command func(port int) (args, env []string)) (_ *Process, exitedEarly bool, _ error) {
	port, err := freePort()
	if err != nil {
		return nil, false, err
	}
	logDir, err := os.MkdirTemp("", "emulator-"+name+"-")
	if err != nil {
		return nil, false, err
	}
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, false, err
	}
	defer logFile.Close() // the child holds its own copy of the descriptor

	args, env := command(port)
	cmd := exec.Command(args[0], args[1:]...) // not CommandContext: ctx bounds the start, not the lifetime
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, false, fmt.Errorf("emulator %s: %w", name, err)
	}
	p := &Process{
		Name:     name,
		Endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		Port:     port,
		PID:      cmd.Process.Pid,
		LogPath:  logPath,
		cmd:      cmd,
		exited:   make(chan struct{}),
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	running.Lock()
	if running.procs == nil {
		running.procs = map[*Process]struct{}{}
	}
	running.procs[p] = struct{}{}
	running.Unlock()

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	began := time.Now()
	for {
		if healthy(ctx, port) {
			return p, false, nil
		}
		select {
		case <-p.exited:
			err := fmt.Errorf("emulator %s exited before becoming healthy on port %d (%v); log %s:\n%s",
				name, port, p.waitErr, logPath, logTail(logPath))
			p.stop(true) // already exited; this unregisters it and keeps the log
			return nil, true, err
		case <-ctx.Done():
			err := fmt.Errorf("emulator %s not healthy on port %d after %s (%v); log %s:\n%s",
				name, port, time.Since(began).Round(time.Millisecond), context.Cause(ctx), logPath, logTail(logPath))
			p.stop(true) // the error above is the one that matters
			return nil, false, err
		case <-tick.C:
		}
	}
}

// Stop terminates the emulator: SIGTERM to its process group, SIGKILL after a
// short grace, then SIGKILL to any descendant that escaped the group (the RIE
// puts the bootstrap in a group of its own). It waits until the process is
// reaped, removes the log, and is safe to call more than once or concurrently.
func (p *Process) Stop() error { return p.stop(false) }

func (p *Process) stop(keepLog bool) error {
	p.stopOnce.Do(func() {
		p.stopErr = p.terminate()
		running.Lock()
		delete(running.procs, p)
		running.Unlock()
		if !keepLog {
			os.RemoveAll(filepath.Dir(p.LogPath))
		}
	})
	return p.stopErr
}

func (p *Process) terminate() error {
	select {
	case <-p.exited:
		// Still sweep the group: a child may outlive the leader.
		syscall.Kill(-p.PID, syscall.SIGKILL)
		return nil
	default:
	}
	desc := descendants(p.PID)
	syscall.Kill(-p.PID, syscall.SIGTERM)
	for _, d := range desc {
		syscall.Kill(d.pid, syscall.SIGTERM)
	}
	select {
	case <-p.exited:
	case <-time.After(stopGrace):
	}
	// SIGKILL the group before the leader can be reaped by the wait
	// goroutine: a pgid cannot be reused while a member still exists.
	syscall.Kill(-p.PID, syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("emulator %s (pid %d) did not exit after SIGKILL", p.Name, p.PID)
	}
	var left []int
	deadline := time.Now().Add(2 * time.Second)
	for _, d := range desc {
		for d.alive() {
			syscall.Kill(d.pid, syscall.SIGKILL)
			if time.Now().After(deadline) {
				left = append(left, d.pid)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("emulator %s: descendants %v still alive after SIGKILL", p.Name, left)
	}
	return nil
}

// stopAll stops every process started by this package and not yet stopped,
// and returns them.
func stopAll(keepLogs bool) ([]*Process, error) {
	running.Lock()
	procs := make([]*Process, 0, len(running.procs))
	for p := range running.procs {
		procs = append(procs, p)
	}
	running.Unlock()
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { errs[i] = p.stop(keepLogs) })
	}
	wg.Wait()
	return procs, errors.Join(errs...)
}

type proc struct {
	pid   int
	start string // start time in clock ticks, to detect pid reuse
}

func (d proc) alive() bool {
	_, start, ok := readStat(d.pid)
	return ok && start == d.start
}

// descendants lists the live descendants of pid from /proc (Linux only; empty
// elsewhere).
func descendants(pid int) []proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]proc{}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, start, ok := readStat(child); ok {
			children[ppid] = append(children[ppid], proc{child, start})
		}
	}
	var out []proc
	queue := []int{pid}
	for len(queue) > 0 {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
		queue = queue[1:]
	}
	return out
}

// readStat returns the parent pid and start time of a live (non-zombie) pid.
func readStat(pid int) (ppid int, start string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", false
	}
	// Fields after the parenthesised command name, which may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, "", false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[19], true // field 22 of stat: starttime
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var healthClient = &http.Client{
	Timeout:   2 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true}, // no proxy: loopback only
}

// dynamoDBHealthy calls ListTables. DynamoDB Local rejects unsigned requests
// with 400 MissingAuthenticationToken but does not verify signatures, so a
// syntactically valid SigV4 header is enough; a 200 means the database, not
// only Jetty, is up.
func dynamoDBHealthy(ctx context.Context, port int) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(port)+"/", strings.NewReader("{}"))
	if err != nil {
		return false
	}
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Date", time.Now().UTC().Format("20060102T150405Z"))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
	return status(req) == http.StatusOK
}

func sqsHealthy(ctx context.Context, port int) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+"/health", nil)
	if err != nil {
		return false
	}
	return status(req) == http.StatusOK
}

// tcpHealthy is all the RIE offers: it has no health route, and its one route
// would start the bootstrap.
func tcpHealthy(ctx context.Context, port int) bool {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func status(req *http.Request) int {
	resp, err := healthClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return string(tail(b, 4096))
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return bytes.TrimSpace(b)
}
