package adversarial

import (
	"strings"
	"testing"

	"github.com/usage-event-service/usage-event-service/internal/emulator"
)

func TestMain(m *testing.M) { emulator.Main(m) }

// finish reports the scenario's broken invariants with its step log.
func (w *world) finish(t testing.TB, what string) {
	t.Helper()
	if len(w.failures) == 0 {
		if testing.Verbose() {
			t.Logf("%s: step log:\n  %s", what, strings.Join(w.log, "\n  "))
		}
		return
	}
	t.Errorf("%s: %d invariant(s) broken:\n  %s\nstep log:\n  %s", what, len(w.failures),
		strings.Join(w.failures, "\n  "), strings.Join(w.log, "\n  "))
}
