package adversarial

import (
	"flag"
	"strings"
	"testing"

	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
)

func TestMain(m *testing.M) { emulator.Main(m) }

// stepLogFlag logs the step log of scenarios that pass too (a failing
// one always prints its own).
var stepLogFlag = flag.Bool("steplog", false, "log every scenario's steps, not only failing ones'")

// finish reports the scenario's broken invariants with its step log.
func (w *world) finish(t testing.TB, what string) {
	t.Helper()
	if len(w.failures) == 0 {
		if *stepLogFlag {
			t.Logf("%s: step log:\n  %s", what, strings.Join(w.log, "\n  "))
		}
		return
	}
	t.Errorf("%s: %d invariant(s) broken:\n  %s\nstep log:\n  %s", what, len(w.failures),
		strings.Join(w.failures, "\n  "), strings.Join(w.log, "\n  "))
}
