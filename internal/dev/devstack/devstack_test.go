package devstack_test

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/usage-event-service/usage-event-service/internal/dev/devstack"
)

// fakeWorker writes a script that behaves like `usage-event-service worker`
// towards its owner: it logs to stdout, and on SIGTERM logs once more and
// exits with the given status.
func fakeWorker(t *testing.T, exitOnTerm int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "usage-event-service")
	script := "#!/bin/sh\n" +
		"[ \"$1\" = worker ] || exit 2\n" +
		"trap 'echo \"{\\\"msg\\\":\\\"worker stopped\\\"}\"; exit " + strconv.Itoa(exitOnTerm) + "' TERM\n" +
		"echo \"{\\\"msg\\\":\\\"worker started\\\",\\\"table\\\":\\\"$ENTITLEMENTS_TABLE\\\"}\"\n" +
		"while :; do sleep 0.05; done\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestWorkerStopsOnSIGTERMAndItsLogsEnd(t *testing.T) {
	w, err := devstack.StartWorker(fakeWorker(t, 0), devstack.Environ(map[string]string{"ENTITLEMENTS_TABLE": "ents"}), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Logs.Close()
	logs := bufio.NewReader(w.Logs)
	first, err := logs.ReadString('\n') // started: its SIGTERM trap is set
	if err != nil {
		t.Fatal(err)
	}
	if pgid, err := syscall.Getpgid(w.PID); err != nil || pgid != w.PID {
		t.Errorf("worker process group %d (%v), want its own (%d)", pgid, err, w.PID)
	}
	if err := w.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := w.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	rest, err := io.ReadAll(logs) // EOF: the worker has exited
	if err != nil {
		t.Fatal(err)
	}
	got := first + string(rest)
	for _, want := range []string{`"worker started","table":"ents"`, `"worker stopped"`} {
		if !strings.Contains(got, want) {
			t.Errorf("logs %q lack %s", got, want)
		}
	}
	if err := syscall.Kill(w.PID, 0); err != syscall.ESRCH {
		t.Errorf("worker %d still exists after Stop (kill: %v)", w.PID, err)
	}
}

func TestWorkerStopReportsAnUncleanExit(t *testing.T) {
	w, err := devstack.StartWorker(fakeWorker(t, 3), os.Environ(), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Logs.Close()
	logs := bufio.NewReader(w.Logs)
	if _, err := logs.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, logs)
	if err := w.Stop(); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Stop = %v, want the exit status 3", err)
	}
}

func TestEnvironSetsOverTheProcessEnvironment(t *testing.T) {
	t.Setenv("DEVSTACK_TEST_VAR", "from the shell")
	env := devstack.Environ(map[string]string{"DEVSTACK_TEST_VAR": "ours", "DEVSTACK_OTHER": "x"})
	last := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		last[k] = v // exec.Cmd uses the last value of a duplicate
	}
	if last["DEVSTACK_TEST_VAR"] != "ours" || last["DEVSTACK_OTHER"] != "x" || last["PATH"] != os.Getenv("PATH") {
		t.Errorf("Environ: DEVSTACK_TEST_VAR=%q DEVSTACK_OTHER=%q PATH kept=%v", last["DEVSTACK_TEST_VAR"], last["DEVSTACK_OTHER"], last["PATH"] == os.Getenv("PATH"))
	}
}
