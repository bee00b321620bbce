package adversarial

import (
	"testing"
	"time"
)

// Focused, deterministic scenarios for the disagreements the random
// scenarios with team pools found between the service and the oracle
// (see defects_test.go for the pattern). Each fails while the service is
// wrong, and is skipped, naming its defect, until it is fixed.

// Defect 22: a lazy reset decided on an item observed without
// overageUsed (a process's cache, or an eventually consistent read, from
// before another process's consume drew from the overage) writes the new
// period's used and periodStart but leaves overageUsed alone: the ended
// period's overage stays on the item as the new period's. The write
// rests on periodStart exactly and on overageUsed only being a number
// (or absent), which the other process's draw does not disturb. Found by
// the random scenarios with pools (seed 1206 of `-pools=only -first=1001`:
// u1's release of a hold on a new day left the 0.5 another process's
// consume had drawn the day before); no pool takes part.
//
// One at a time: limit 5, overageLimit 1, daily. A reserves 2 (A caches
// the item: no overageUsed), B consumes 3.5 (3 from the allowance, 0.5
// from the overage), the day ends; A's consume of 1 writes the reset:
// the new period's overageUsed is 0, not 0.5. (In the seed the write
// was a release of the hold with grants in the same batch; a release
// alone changes nothing on the item, so it writes no reset.)
func TestDefect22_ResetLeavesTheEndedPeriodsOverage(t *testing.T) {
	t.Skip("defect 22: a reset decided on an item observed without overageUsed leaves the ended period's overageUsed on the item")
	w, a, b := defectWorld(t, "u")
	w.createWith("u", "5", "DAILY", "1", "")
	w.sync(a, "u", reserve("h1", "2", 900)) // A caches the item, without overageUsed
	w.queued(b, "u", consume("c1", "3.5"))  // overageUsed 0.5
	w.now = w.now.Truncate(24 * time.Hour).Add(24*time.Hour + time.Second)
	w.queued(a, "u", consume("c2", "1")) // the reset: overageUsed 0, not 0.5
	w.finish(t, "reset on an item cached without overageUsed")
}
