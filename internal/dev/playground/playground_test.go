package playground_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/usage-event-service/usage-event-service/internal/dev/devstack"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
)

// TestMakeUp drives `make up` as a newcomer would: start it, wait for the
// export lines, paste them into a second shell and run the README's "Try it
// yourself" session there (send, usage, dlq list, ...), press Ctrl-C, and
// check that every process it started is gone (by PID, by process group, and
// by an environment marker every descendant inherits) and that the binaries
// it built were removed. It runs it twice, because a second run must start
// clean.
func TestMakeUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the emulators, builds and runs the worker")
	}
	for _, tool := range []string{"make", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	root, err := emulator.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	session := readmeSession(t, filepath.Join(root, "README.md"))
	for run := 1; run <= 2; run++ {
		t.Run(fmt.Sprintf("run %d", run), func(t *testing.T) {
			up := startMakeUp(t, root)
			shell := up.waitReady(t, 4*time.Minute) // a cold build cache on a busy machine is slow

			// The first run's events are gone: every run starts from the seed.
			if got := usedNow(t, shell, "alice"); got != "10" {
				t.Fatalf("alice starts at used %s, want the seeded 10", got)
			}
			if got := grantsRemaining(t, shell, "erin"); got != "topup-1 50 of 50" {
				t.Fatalf("erin starts with grants %q, want the seeded topup-1 50 of 50", got)
			}
			// Typed at once rather than at a person's pace: what the
			// session prints is not checked, only that every command works.
			sh(t, shell, session)
			// What the README's comments promise, once the worker has
			// caught up with the session's events.
			up.waitFor(t, 30*time.Second, regexp.MustCompile(`INFO\s+duplicate event ignored\s.*userId=dave`))
			up.waitFor(t, 30*time.Second, regexp.MustCompile(`WARN\s+event rejected\s.*userId=bob.*reason=LIMIT_EXCEEDED`))
			// alice: 10 + 2, and a hold of 5 reserved and released; dave:
			// 3 once, then 1 of it refunded; erin: 8 + the 2 left of her
			// allowance, the other 3 of her 5 from her grant.
			// grace: 4 + 1 within her cap and team-1's 10; heidi's 4 fit
			// her cap but not the pool's 2 left.
			up.waitFor(t, 30*time.Second, regexp.MustCompile(`WARN\s+event rejected\s.*userId=heidi.*reason=POOL_LIMIT_EXCEEDED`))
			for user, want := range map[string]string{"alice": "12", "carol": "1", "dave": "2", "erin": "10", "frank": "3", "grace": "5", "heidi": "0"} {
				eventually(t, 30*time.Second, user+"'s events to be applied", func() bool { return usedNow(t, shell, user) == want })
			}
			if got := grantsRemaining(t, shell, "erin"); got != "topup-1 47 of 50" {
				t.Errorf("erin's grants: %q, want topup-1 47 of 50", got)
			}
			if got := draws(t, shell, "erin", "erin-1"); got != "allowance 2, grant topup-1 3" {
				t.Errorf("erin-1 drew from %q, want allowance 2, grant topup-1 3", got)
			}
			if state := holdState(t, shell, "alice", "tutor-1"); state != "released" {
				t.Errorf("alice's hold tutor-1 is %q, want released", state)
			}
			if out := sh(t, shell, "usagectl dlq list"); !strings.Contains(out, "LIMIT_EXCEEDED") {
				t.Errorf("usagectl dlq list does not show bob's rejection:\n%s", out)
			}
			// Bob's first rejection is notified: the worker publishes it to
			// the topic, and the inbox the export lines name receives it.
			expectNotification(t, shell, "usage.limit.rejected", "bob")
			eventually(t, 30*time.Second, "usagectl notifications to show bob's rejection and dave's two thresholds as published", func() bool {
				return publishedNotifications(t, shell, "bob", "usage.limit.rejected") == 1 &&
					publishedNotifications(t, shell, "dave", "usage.threshold.reached") == 2
			})
			if !regexp.MustCompile(`\d\d:\d\d:\d\d\.\d{3} DEBUG event applied\s.*userId=alice.*amount=2`).MatchString(up.output()) {
				t.Errorf("the worker's log lines are not shown readably:\n%s", up.output())
			}

			up.stop(t)
		})
	}
}

// readmeSession is the second shell's session of the README's "Try it
// yourself": its second sh block (the first is `make up`).
func readmeSession(t *testing.T, path string) string {
	t.Helper()
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Try it yourself\n")
	if !ok {
		t.Fatal(`README.md has no "## Try it yourself" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) != 2 || !strings.HasPrefix(blocks[0][1], "make up") {
		t.Fatalf("want two sh blocks in Try it yourself, `make up` and the second shell's session; got %d", len(blocks))
	}
	return blocks[1][1]
}

// makeUp is one `make up`, started like a terminal's foreground job.
type makeUp struct {
	cmd    *exec.Cmd
	marker string // NAME=VALUE in the environment of make and all it starts
	exited chan struct{}

	mu    sync.Mutex
	out   bytes.Buffer
	added chan struct{}
	procs map[int]string // pid -> start time, of the processes it reported
}

func startMakeUp(t *testing.T, root string) *makeUp {
	t.Helper()
	up := &makeUp{
		marker: fmt.Sprintf("USAGE_PLAYGROUND_TEST_RUN=%d-%d", os.Getpid(), time.Now().UnixNano()),
		exited: make(chan struct{}),
		added:  make(chan struct{}, 1),
		procs:  map[int]string{},
	}
	up.cmd = exec.Command("make", "--no-print-directory", "up")
	up.cmd.Dir = root
	up.cmd.Env = append(environWithout("MAKEFLAGS", "MFLAGS", "MAKELEVEL"), up.marker)
	up.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group, as a shell gives a job
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	up.cmd.Stdout, up.cmd.Stderr = w, w
	if err := up.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go func() {
		up.cmd.Wait()
		close(up.exited)
	}()
	go up.read(r)
	t.Cleanup(func() {
		select {
		case <-up.exited:
		default: // the test failed before the stop: kill it all
			syscall.Kill(-up.cmd.Process.Pid, syscall.SIGKILL)
			<-up.exited
		}
		for _, pid := range processesWith(up.marker) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("make up printed:\n%s", up.output())
		}
	})
	return up
}

var pidLine = regexp.MustCompile(`\(pid (\d+)\)`)

func (up *makeUp) read(r *os.File) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		up.mu.Lock()
		up.out.WriteString(line + "\n")
		if m := pidLine.FindStringSubmatch(line); m != nil {
			pid, _ := strconv.Atoi(m[1])
			if start, ok := startTime(pid); ok {
				up.procs[pid] = start
			}
		}
		up.mu.Unlock()
		select {
		case up.added <- struct{}{}:
		default:
		}
	}
}

func (up *makeUp) output() string {
	up.mu.Lock()
	defer up.mu.Unlock()
	return up.out.String()
}

// waitFor waits until the output matches re and returns the first match.
func (up *makeUp) waitFor(t *testing.T, timeout time.Duration, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if m := re.FindStringSubmatch(up.output()); m != nil {
			return m
		}
		select {
		case <-up.added:
		case <-up.exited:
			if m := re.FindStringSubmatch(up.output()); m != nil {
				return m
			}
			t.Fatalf("make up exited (%v) before printing %q", up.cmd.ProcessState, re)
		case <-deadline:
			t.Fatalf("make up did not print %q within %s", re, timeout)
		}
	}
}

// waitReady waits for the export lines and returns them: the start of
// every command of the second shell.
func (up *makeUp) waitReady(t *testing.T, timeout time.Duration) string {
	t.Helper()
	up.waitFor(t, timeout, regexp.MustCompile(`worker logs; Ctrl-C stops everything`))
	var exports []string
	for _, line := range strings.Split(up.output(), "\n") {
		if strings.HasPrefix(line, "export ") {
			exports = append(exports, line)
		}
	}
	up.mu.Lock()
	n := len(up.procs)
	up.mu.Unlock()
	if n != 3 {
		t.Fatalf("want the PIDs of DynamoDB Local, the SQS emulator and the worker, got %d", n)
	}
	return strings.Join(exports, "\n") + "\n"
}

// stop presses Ctrl-C (SIGINT to the job's process group) and checks that
// everything is gone.
func (up *makeUp) stop(t *testing.T) {
	t.Helper()
	binDir := regexp.MustCompile(`(?m)^export PATH=(\S+):"\$PATH"$`).FindStringSubmatch(up.output())
	began := time.Now()
	if err := syscall.Kill(-up.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-up.exited:
	case <-time.After(time.Minute):
		t.Fatal("make up did not exit within a minute of Ctrl-C")
	}
	t.Logf("stopped in %s", time.Since(began).Round(time.Millisecond))
	// GNU make, interrupted itself, waits for its recipe and then dies of
	// the same signal, silently when the recipe exited 0; the playground's
	// own clean stop shows in its last line.
	if ws, ok := up.cmd.ProcessState.Sys().(syscall.WaitStatus); !up.cmd.ProcessState.Success() && !(ok && ws.Signaled() && ws.Signal() == syscall.SIGINT) {
		t.Errorf("make up exited with %v after Ctrl-C, want 0 or make's own SIGINT", up.cmd.ProcessState)
	}
	if out := strings.TrimSpace(up.output()); !strings.HasSuffix(out, "==> stopped; nothing is left running. `make up` starts afresh.") {
		t.Errorf("make up did not end with a clean stop")
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	for pid, start := range up.procs {
		if now, ok := startTime(pid); ok && now == start {
			t.Errorf("process %d is still running after the stop", pid)
		}
		// The emulators and the worker lead process groups of their own.
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group %d still has members (kill: %v)", pid, err)
		}
	}
	if err := syscall.Kill(-up.cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the job's process group %d still has members (kill: %v)", up.cmd.Process.Pid, err)
	}
	if left := processesWith(up.marker); len(left) > 0 {
		t.Errorf("processes started by make up still run: %v", left)
	}
	if binDir == nil {
		t.Error("no PATH export line")
	} else if _, err := os.Stat(binDir[1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the built binaries in %s were not removed (stat: %v)", binDir[1], err)
	}
}

// sh runs commands in a shell that has pasted the export lines, and returns
// their output.
func sh(t *testing.T, exports, commands string) string {
	t.Helper()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", exports+commands)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("second shell: %s: %v\n%s", commands, err, out)
	}
	return string(out)
}

// usedNow is what `usagectl usage` says the user's next AI_TUTOR_ACCESS
// event is checked against.
func usedNow(t *testing.T, exports, user string) string {
	t.Helper()
	var view struct {
		Entitlements []struct {
			UsedNow json.Number `json:"usedNow"`
		} `json:"entitlements"`
	}
	out := sh(t, exports, "usagectl usage --user "+user+" --key AI_TUTOR_ACCESS --json")
	if err := json.Unmarshal([]byte(out), &view); err != nil || len(view.Entitlements) != 1 {
		t.Fatalf("usagectl usage --json: %v\n%s", err, out)
	}
	return view.Entitlements[0].UsedNow.String()
}

// holdState is the state `usagectl holds --all` gives a hold of the
// user's AI_TUTOR_ACCESS ("" when it has no such hold).
func holdState(t *testing.T, exports, user, holdID string) string {
	t.Helper()
	var view struct {
		Holds []struct {
			HoldID string `json:"holdId"`
			State  string `json:"state"`
		} `json:"holds"`
	}
	out := sh(t, exports, "usagectl holds --user "+user+" --key AI_TUTOR_ACCESS --all --json")
	if err := json.Unmarshal([]byte(out), &view); err != nil {
		t.Fatalf("usagectl holds --json: %v\n%s", err, out)
	}
	for _, h := range view.Holds {
		if h.HoldID == holdID {
			return h.State
		}
	}
	return ""
}

// grantsRemaining is what `usagectl grants` says remains of the user's
// AI_TUTOR_ACCESS grants: "id remaining of amount", comma separated.
func grantsRemaining(t *testing.T, exports, user string) string {
	t.Helper()
	var view struct {
		Grants []struct {
			GrantID   string      `json:"grantId"`
			Amount    json.Number `json:"amount"`
			Remaining json.Number `json:"remaining"`
		} `json:"grants"`
	}
	out := sh(t, exports, "usagectl grants --user "+user+" --key AI_TUTOR_ACCESS --json")
	if err := json.Unmarshal([]byte(out), &view); err != nil {
		t.Fatalf("usagectl grants --json: %v\n%s", err, out)
	}
	var parts []string
	for _, g := range view.Grants {
		parts = append(parts, fmt.Sprintf("%s %s of %s", g.GrantID, g.Remaining, g.Amount))
	}
	return strings.Join(parts, ", ")
}

// draws is where `usagectl history` says the user's AI_TUTOR_ACCESS
// entry of key drew from: "bucket [grant] amount", comma separated.
func draws(t *testing.T, exports, user, key string) string {
	t.Helper()
	var view struct {
		Entries []struct {
			Key   string `json:"key"`
			Draws []struct {
				Bucket  string      `json:"bucket"`
				GrantID string      `json:"grantId"`
				Amount  json.Number `json:"amount"`
			} `json:"draws"`
		} `json:"entries"`
	}
	out := sh(t, exports, "usagectl history --user "+user+" --key AI_TUTOR_ACCESS --json")
	if err := json.Unmarshal([]byte(out), &view); err != nil {
		t.Fatalf("usagectl history --json: %v\n%s", err, out)
	}
	for _, e := range view.Entries {
		if e.Key != key {
			continue
		}
		var parts []string
		for _, d := range e.Draws {
			parts = append(parts, strings.Join(strings.Fields(d.Bucket+" "+d.GrantID+" "+d.Amount.String()), " "))
		}
		return strings.Join(parts, ", ")
	}
	return ""
}

// exported is the value an export line of the second shell gives name.
func exported(t *testing.T, exports, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^export ` + name + `=(\S+)$`).FindStringSubmatch(exports)
	if m == nil {
		t.Fatalf("no export line for %s in\n%s", name, exports)
	}
	return strings.Trim(m[1], "'")
}

// expectNotification reads the inbox (NOTIFICATIONS_INBOX_URL) with only
// what the export lines give, until a notification of typ for user arrives
// in SNS's envelope.
func expectNotification(t *testing.T, exports, typ, user string) {
	t.Helper()
	cfg := aws.Config{
		Region:      exported(t, exports, "AWS_REGION"),
		Credentials: credentials.NewStaticCredentialsProvider(exported(t, exports, "AWS_ACCESS_KEY_ID"), exported(t, exports, "AWS_SECRET_ACCESS_KEY"), ""),
	}
	sq := awssqs.NewFromConfig(cfg, func(o *awssqs.Options) { o.BaseEndpoint = aws.String(exported(t, exports, "AWS_ENDPOINT_URL_SQS")) })
	inbox := devstack.Inbox{TopicARN: exported(t, exports, "NOTIFY_TOPIC_ARN"), QueueURL: exported(t, exports, "NOTIFICATIONS_INBOX_URL")}
	match := func(d devstack.Delivery) bool {
		var n struct {
			Type   string `json:"type"`
			UserID string `json:"userId"`
		}
		return json.Unmarshal([]byte(d.Message), &n) == nil && n.Type == typ && n.UserID == user &&
			d.Attributes["type"] == typ && d.Attributes["userId"] == user
	}
	got, err := inbox.Receive(context.Background(), sq, 30*time.Second, func(ds []devstack.Delivery) bool { return slices.ContainsFunc(ds, match) })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(got, match) {
		t.Errorf("no %s notification for %s arrived in %s within 30s; received %+v", typ, user, inbox.QueueURL, got)
	}
}

// publishedNotifications is how many published notifications of typ
// `usagectl notifications` lists for the user.
func publishedNotifications(t *testing.T, exports, user, typ string) int {
	t.Helper()
	type recorded struct {
		Type      string `json:"type"`
		Published bool   `json:"published"`
	}
	var view struct {
		Notifications []recorded `json:"notifications"`
	}
	out := sh(t, exports, "usagectl notifications --user "+user+" --json")
	if err := json.Unmarshal([]byte(out), &view); err != nil {
		t.Fatalf("usagectl notifications --json: %v\n%s", err, out)
	}
	n := 0
	for _, r := range view.Notifications {
		if r.Type == typ && r.Published {
			n++
		}
	}
	return n
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func environWithout(names ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			env = append(env, kv)
		}
	}
	return env
}

// startTime is a live (non-zombie) process's start time, to tell it from a
// later process that reuses its PID.
func startTime(pid int) (string, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return "", false
	}
	return f[19], true
}

// processesWith lists the live processes whose environment holds marker.
func processesWith(marker string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		if _, live := startTime(pid); live && bytes.Contains(append(append([]byte{0}, env...), 0), []byte("\x00"+marker+"\x00")) {
			pids = append(pids, pid)
		}
	}
	return pids
}
