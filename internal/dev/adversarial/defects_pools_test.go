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
// consume had drawn the day before), where no pool takes part. The
// smallest seed of the default run that shows it is 880, a scenario
// without pools, on a member's item (the suite before pools fails it
// too; its hint said defect 18). On a pool's item it showed at seed 357
// of the generator as of cb6cfd0 (later changes to the team stories
// moved that seed's stream): pools are never cached, but an eventually
// consistent read of the pool from before a member's draw into the
// pool's overage decided the pool's reset and left that overage. Fixed:
// a reset of an entitlement with an overage limit always writes the new
// period's overageUsed.
//
// One at a time: limit 5, overageLimit 1, daily. A reserves 2 (A caches
// the item: no overageUsed), B consumes 3.5 (3 from the allowance, 0.5
// from the overage), the day ends; A's consume of 1 writes the reset:
// the new period's overageUsed is 0, not 0.5. (In the seed the write
// was a release of the hold with grants in the same batch; a release
// alone changes nothing on the item, so it writes no reset.) The same of
// a pool (limit 10, overageLimit 2, daily): a member without a cap
// consumes 1, then 11 (2 into the pool's overage); the next day a
// consume decided on the pool's item as it was after the first (a stale
// read) resets the pool and leaves its overageUsed 2.
func TestDefect22_ResetLeavesTheEndedPeriodsOverage(t *testing.T) {
	t.Run("a member's item cached", func(t *testing.T) {
		w, a, b := defectWorld(t, "u")
		w.createWith("u", "5", "DAILY", "1", "")
		w.sync(a, "u", reserve("h1", "2", 900)) // A caches the item, without overageUsed
		w.queued(b, "u", consume("c1", "3.5"))  // overageUsed 0.5
		w.now = w.now.Truncate(24 * time.Hour).Add(24*time.Hour + time.Second)
		w.queued(a, "u", consume("c2", "1")) // the reset: overageUsed 0, not 0.5
		w.finish(t, "reset on an item cached without overageUsed")
	})
	t.Run("a pool's item read stale", func(t *testing.T) {
		w, a, _ := defectWorld(t, "u")
		w.createPool("p1", "10", "DAILY", "2")
		w.createMember("u", "", "NONE", "", "", "p1") // no cap: the pool alone limits it
		w.queued(a, "u", consume("c1", "1"))
		w.queued(a, "u", consume("c2", "11")) // the pool's allowance's 9 and 2 of its overage
		w.now = w.now.Truncate(24 * time.Hour).Add(24*time.Hour + time.Second)
		w.faults = faultPlan{stale: 1}       // the pool's item as after c1: no overageUsed
		w.queued(a, "u", consume("c3", "1")) // the pool's reset: its overageUsed 0, not 2
		w.finish(t, "a pool's reset on a stale read")
	})
}
