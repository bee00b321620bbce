package adversarial

import (
	"context"
	"flag"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

// The generator's team pools. Half the scenarios (the odd seeds; see
// -pools) are a team: one or two pools (limits of their own, reset daily
// or never, some with an overage) and the three users as members, with
// and without caps. On top of everything the other scenarios do, their
// events go past what the pool has left; access-service moves members
// between pools, out of a pool and into one that does not exist, writes
// a member's pool attribute odd, changes a pool's limit, used, overage
// or thresholds, writes a pool odd, deletes it and writes it again; and
// the gap between a process's read and its write can hold any of those
// or another member's consume on the same pool. Short stories line up
// the rules random steps rarely do: a give-back to a pool the member
// left, to a pool deleted, unreadable or whose period ended, a hold of
// an unreadable pool due for the sweep, a hold outliving its member's
// entitlement, both limits refusing, the pool filled by its members, a
// pool's used too wide for 1E-36 more.
//
// The even seeds are the scenarios as they were before pools: the random
// source draws nothing for pools there, so those seeds replay as before.

var poolsFlag = flag.String("pools", "mixed", "which adversarial scenarios are teams with pools: mixed (the odd seeds), only, none")

// mustCoverPools are the pool rules a run must have seen once it has
// that many scenarios with pools (an outcome, or what the oracle
// counted): the common ones in any run of 12 scenarios (6 teams), the
// rarer ones, which the gaps and the stories make, once a run holds some
// 7 of them on average (from the rates of 400 team scenarios: the
// threshold is about 7 over the rate per scenario). POOL_NOT_FOUND, on
// average 2.8 a team scenario, comes in clumps (a pool deleted, a member
// moved into a pool that does not exist): the default 12 seeds may miss
// it, so a run needs 40 team scenarios to be held to it.
var mustCoverPools = []struct {
	key       string
	scenarios int
}{
	{"REJECTED POOL_LIMIT_EXCEEDED", 6}, {"REJECTED POOL_NOT_FOUND", 40}, {"REJECTED INVALID_POOL", 6},
	{"pool: LIMIT_EXCEEDED when both refuse", 6}, {"pool: POOL_LIMIT_EXCEEDED of a member without a cap", 6},
	{"pool: draw by a member without a cap", 6}, {"pool: give-back", 6},
	{"pool notification: usage.threshold.reached", 6}, {"pool notification: usage.limit.rejected", 6},
	{"pool gap: another member of the pool", 6}, {"pool: members of one pool decided as a team", 12},
	{"pool: give-back to a pool the member left", 40}, {"pool: give-back lapsed (pool gone)", 40},
	{"pool: give-back lapsed (pool period ended)", 40}, {"pool: INVALID_POOL on a give-back", 40},
	{"pool: INVALID_ENTITLEMENT (pool attribute)", 40}, {"pool: draw beyond the pool's allowance: overage", 40},
	{"pool gap: member moved", 40}, {"pool gap: pool limit changed", 40}, {"pool gap: pool deleted", 40},
	{"pool: hold set aside (INVALID_POOL)", 60}, {"pool notification: usage.overage.started", 60},
	{"pool: give-back of a hold whose member is gone", 60}, {"pool gap: member removed", 60},
	{"pool gap: pool made unreadable", 60},
	{"pool: give-back to the pool's overage", 100}, {"pool: INVALID_AMOUNT (the pool's 38 digits)", 100},
}

// poolScenario: whether the scenario of this seed is a team.
func poolScenario(seed uint64) bool {
	switch *poolsFlag {
	case "only":
		return true
	case "none":
		return false
	}
	return seed%2 == 1
}

// setupPools creates the pools and the members.
func (w *world) setupPools() {
	w.poolIDs = []string{"p1"}
	if w.chance(0.5) {
		w.poolIDs = append(w.poolIDs, "p2")
	}
	for _, id := range w.poolIDs {
		w.createPool(id, w.pick([]string{"8", "10", "10", "12", "15", ""}), w.pick([]string{"DAILY", "DAILY", "NONE"}), w.randomPoolOverage())
	}
	caps := []string{
		w.pick([]string{"4", "6", "10", "20"}), // u0 has a cap
		"",                                     // u1 mostly none: the pool alone limits it
		w.pick([]string{"", "5", "10"}),
	}
	if w.chance(0.3) {
		caps[1] = w.pick([]string{"5", "10"})
	}
	for i, u := range w.users {
		pool := "p1"
		if i == 2 && len(w.poolIDs) > 1 {
			pool = "p2"
		} else if i == 2 && w.chance(0.2) {
			pool = "" // not a member
		}
		w.createMember(u, caps[i], w.pick([]string{"DAILY", "DAILY", "NONE"}), w.randomOverageLimit(), w.randomRolloverMax(), pool)
	}
}

func (w *world) randomPoolOverage() string {
	if w.chance(0.3) {
		return w.pick([]string{"2", "3"})
	}
	return ""
}

// poolOf is the pool user is a member of now ("" for none), or with
// anyPool, a pool of the scenario when it is none.
func (w *world) poolOf(user string, anyPool bool) string {
	if id := w.oracle.scope(user).ent.poolID(); id != "" || !anyPool {
		return id
	}
	return w.pick(w.poolIDs)
}

// poolRoom is what pool id has left now: its allowance and overage (3
// when the pool cannot tell: unlimited, gone or unreadable).
func (w *world) poolRoom(id string) usage.Decimal {
	p := w.oracle.pool(id, w.now)
	room := usage.DecimalFromInt(3)
	if l := p.ent.limitNum(); l != nil && p.ent.exists && !p.ent.malformed() {
		room = nonNegative(l.Sub(p.ent.usedNum()))
		if p.ent.overageLimit.kind == "N" {
			room = room.Add(nonNegative(p.ent.overageLimit.num.Sub(p.ent.overageUsed)))
		}
	}
	return room
}

// poolSpilling is an amount a little beyond what user's pool has left:
// POOL_LIMIT_EXCEEDED when the member's cap has room, LIMIT_EXCEEDED
// when it has not either.
func (w *world) poolSpilling(user string) string {
	id := w.poolOf(user, true)
	amount := w.poolRoom(id).Add(usage.MustDecimal(w.pick([]string{"0.5", "1", "2"})))
	if w.chance(0.3) {
		amount = w.poolRoom(id) // exactly what is left: it fits
	}
	if amount.Sign() <= 0 {
		amount = usage.DecimalFromInt(1)
	}
	return w.validAmount(amount).String()
}

// otherPool is a pool user could be moved to: another pool of the
// scenario, or one that does not exist.
func (w *world) otherPool(user string) string {
	cur := w.oracle.scope(user).ent.poolID()
	var others []string
	for _, id := range w.poolIDs {
		if id != cur {
			others = append(others, id)
		}
	}
	if len(others) == 0 || w.chance(0.2) {
		return "p9" // no such pool: POOL_NOT_FOUND
	}
	return w.pick(others)
}

// randomPoolAccess is access-service editing a membership or a pool.
func (w *world) randomPoolAccess(user string) {
	s := w.oracle.scope(user)
	id := w.poolOf(user, true)
	p := w.oracle.pool(id, w.now)
	switch r := w.rng.IntN(100); {
	case !s.ent.exists:
		return
	case r < 18:
		w.setMemberPool(user, w.otherPool(user))
	case r < 25:
		if s.ent.poolID() == "" {
			w.setMemberPool(user, id)
		} else {
			w.setMemberPool(user, "")
		}
	case r < 29:
		if !poolAttrOK(s.ent.pool) {
			w.setMemberPool(user, id)
		} else {
			w.setMemberPool(user, w.pick([]string{"N", "empty"}))
		}
	case r < 45 && p.ent.exists && !p.ent.malformed():
		w.setPoolLimit(id, w.pick([]string{"3", "6", "10", "12", "15", "30", ""}))
	case r < 51 && p.ent.exists && !p.ent.malformed():
		w.setPoolUsed(id, w.pick([]string{"0", "2", "5", "9", "100", "250"})) // from 100 up, 1E-36 more or less needs 39 digits
	case r < 70 && p.ent.exists:
		if p.ent.malformed() {
			w.repairPool(id)
		} else {
			w.setPoolOdd(id, w.pick([]string{"limit", "used"}))
		}
	case r < 79 && p.ent.exists:
		w.deletePool(id)
	case !p.ent.exists:
		w.createPool(id, w.pick([]string{"8", "10", "15"}), w.pick([]string{"DAILY", "NONE"}), w.randomPoolOverage())
	case p.ent.malformed():
		w.repairPool(id)
	case r < 90:
		w.setPoolOverageLimit(id, w.pick([]string{"", "1", "3"}))
	default:
		if w.avoid[2] && w.inGap {
			return // thresholds changed between a read and a write (defect 2)
		}
		w.setPoolThresholds(id, [][]string{nil, {}, {"50"}, {"25", "50", "75", "100"}}[w.rng.IntN(4)])
	}
}

// poolGap is a gap action of a team: at the time it runs, about the
// user of the step's first item and its pool.
func (w *world) poolGap() func(context.Context) {
	choice := w.rng.IntN(100)
	sync := w.chance(0.5)
	return func(ctx context.Context) {
		user := w.randomUser()
		if len(w.stepItems) > 0 {
			user = w.stepItems[0].user
		}
		id := w.poolOf(user, true)
		p := w.oracle.pool(id, w.now)
		usable := p.ent.exists && !p.ent.malformed()
		switch {
		case choice < 14 && w.oracle.scope(user).ent.exists:
			w.logf("  gap: access-service moves %s", user)
			w.oracle.cover["pool gap: member moved"]++
			w.setMemberPool(user, w.otherPool(user))
		case choice < 20 && w.oracle.scope(user).ent.poolID() != "":
			w.logf("  gap: access-service takes %s out of its pool", user)
			w.oracle.cover["pool gap: member removed"]++
			w.setMemberPool(user, "")
		case choice < 33 && usable:
			w.logf("  gap: access-service changes pool %s's limit", id)
			w.oracle.cover["pool gap: pool limit changed"]++
			w.setPoolLimit(id, w.pick([]string{"3", "6", "10", "12", "20"}))
		case choice < 43 && usable:
			w.logf("  gap: access-service writes pool %s odd", id)
			w.oracle.cover["pool gap: pool made unreadable"]++
			w.setPoolOdd(id, w.pick([]string{"limit", "used"}))
		case choice < 51 && p.ent.exists:
			w.logf("  gap: access-service deletes pool %s", id)
			w.oracle.cover["pool gap: pool deleted"]++
			w.deletePool(id)
		case choice < 56:
			w.logf("  gap: access-service")
			w.randomPoolAccess(user)
		default:
			// another member of the same pool consumes (or gives back)
			var mates []string
			for _, u := range w.users {
				if u != user && w.oracle.scope(u).ent.poolID() == id {
					mates = append(mates, u)
				}
			}
			mate := w.pick(w.users)
			if len(mates) > 0 {
				mate = w.pick(mates)
				w.oracle.cover["pool gap: another member of the pool"]++
			}
			e := ev{op: "consume", key: w.freshKey("c"), amount: w.pick(amounts)}
			switch x := w.rng.IntN(10); {
			case x < 4:
				e.amount = w.poolSpilling(mate)
			case x < 6:
				e = w.randomEventFor(mate, sync)
				if w.avoid[5] && (e.op == "commit" || e.op == "release") || w.avoid[18] && e.op == "grant" || w.avoid[19] && e.op == "refund" {
					e = ev{op: "consume", key: w.freshKey("c"), amount: "1"}
				}
			}
			w.gapItem(w.otherProc(w.current), w.newItem(mate, e, sync))(ctx)
		}
	}
}

// ---- Stories of a team ----

// startPoolStory plays one of the pool stories for a member.
func (w *world) startPoolStory() {
	var members []string
	for _, u := range w.users {
		if e := w.oracle.scope(u).ent; e.exists && !e.malformed() && e.poolID() != "" {
			members = append(members, u)
		}
	}
	if len(members) == 0 {
		return
	}
	user := w.pick(members)
	id := w.oracle.scope(user).ent.poolID()
	c := w.freshKey("c")
	send := func(e ev) func() {
		return func() {
			sync := e.op == "reserve" || w.chance(0.4)
			if sync && (e.op == "consume" || e.op == "refund") && e.key == "" {
				e.key = w.freshKey("s")
			}
			w.deliver(w.randomProc(), []*item{w.newItem(user, e, sync)}, true)
		}
	}
	small := func(op string) func() {
		return func() {
			amount := minDec(usage.MustDecimal(w.pick([]string{"1", "2", "0.5"})), w.poolRoom(id))
			if amount.Sign() <= 0 {
				amount = usage.DecimalFromInt(1)
			}
			e := ev{op: op, key: c, amount: amount.String()}
			if op == "reserve" {
				e.seconds = w.pick2([]int{2, 60, 900})
			}
			send(e)()
		}
	}
	op := w.pick([]string{"consume", "consume", "reserve"})
	backOf := send(ev{op: "refund", refundOf: c, amount: w.pick([]string{"", "0.5"})})
	if op == "reserve" {
		backOf = send(w.settlement(c))
	}
	switch w.rng.IntN(9) {
	case 8: // the pool's used from 100 up: 1E-36 more needs 39 digits there, not in the member
		w.script = []func(){
			func() { w.setPoolUsed(id, w.pick([]string{"100", "250"})) },
			send(w.tame(ev{op: "consume", amount: "1E-36"})),
			func() { w.setPoolUsed(id, "2") },
		}
	case 7: // the member's entitlement deleted under its hold: the sweep gives the pool its part back
		w.script = []func(){
			func() { send(ev{op: "reserve", key: c, amount: "1", seconds: w.pick2([]int{1, 2})})() },
			func() { w.deleteEntitlement(user); w.deleted[user] = true },
			func() {
				w.now = w.now.Add(3 * time.Second)
				w.clockMoved()
				w.sweep(w.randomProc(), 100, true)
			},
		}
	case 0: // moved (or taken out) after drawing: the give-back goes to the pool it drew from
		w.script = []func(){small(op), func() {
			if w.chance(0.3) {
				w.setMemberPool(user, "")
			} else {
				w.setMemberPool(user, w.otherPool(user))
			}
		}, backOf, send(ev{op: "consume", amount: w.pick(amounts)})}
	case 1: // the pool deleted: the give-back lapses, consumes are POOL_NOT_FOUND, then it is back
		w.script = []func(){small(op), func() { w.deletePool(id) }, backOf, send(ev{op: "consume", amount: "1"}),
			func() { w.createPool(id, w.pick([]string{"8", "10"}), w.pick([]string{"DAILY", "NONE"}), "") }}
	case 2: // the pool unreadable: give-backs and consumes are INVALID_POOL until it is repaired
		w.script = []func(){small(op), func() { w.setPoolOdd(id, w.pick([]string{"limit", "used"})) }, backOf,
			send(ev{op: "consume", amount: "1"}), func() { w.repairPool(id) }, backOf}
	case 3: // the pool's period ends under a hold (or the member moves away from a daily pool)
		w.script = []func(){
			func() {
				if p := w.oracle.pool(id, w.now); p.ent.exists && !p.ent.malformed() && p.ent.resetPeriod != "DAILY" {
					// a daily pool of its own for the story
					w.createPool("p3", "10", "DAILY", "")
					w.setMemberPool(user, "p3")
					id = "p3"
				}
			},
			small("reserve"),
			func() {
				w.now = w.now.Truncate(24 * time.Hour).Add(24*time.Hour + time.Duration(w.rng.IntN(3000))*time.Millisecond)
				w.clockMoved()
				w.logf("clock: past midnight with a pool's hold active")
			},
			func() {
				if w.chance(0.3) {
					w.sweep(w.randomProc(), 100, true)
					return
				}
				send(w.settlement(c))()
			},
		}
	case 4: // a hold of an unreadable pool comes due: the sweep sets it aside
		w.script = []func(){
			func() {
				e := ev{op: "reserve", key: c, amount: "1", seconds: 1}
				send(e)()
			},
			func() { w.setPoolOdd(id, w.pick([]string{"limit", "used"})) },
			func() {
				w.now = w.now.Add(2 * time.Second)
				w.clockMoved()
				w.sweep(w.randomProc(), 100, true)
			},
			func() { w.repairPool(id) },
		}
	case 5: // both limits refuse: the cap is asked first
		w.script = []func(){func() {
			s := w.oracle.scope(user)
			if s.ent.exists && !s.ent.malformed() && s.ent.limitNum() == nil {
				w.setLimit(user, w.pick([]string{"2", "4"}))
			}
		}, func() {
			s := w.oracle.scope(user)
			room := w.poolRoom(id)
			if l := s.ent.limitNum(); l != nil {
				if r := nonNegative(l.Sub(s.ent.usedNum())); r.Cmp(room) > 0 {
					room = r
				}
				for _, g := range s.live(w.now) {
					room = room.Add(g.remaining)
				}
				if s.ent.overageLimit.kind == "N" {
					room = room.Add(nonNegative(s.ent.overageLimit.num.Sub(s.ent.overageUsed)))
				}
			}
			send(ev{op: "consume", amount: w.validAmount(room.Add(usage.DecimalFromInt(1))).String()})()
		}}
	default: // the pool filled by its members, then the member without a cap goes past it
		var mates []string
		for _, u := range w.users {
			if w.oracle.scope(u).ent.poolID() == id {
				mates = append(mates, u)
			}
		}
		fill := func() {
			u := w.pick(mates)
			w.deliver(w.randomProc(), []*item{w.newItem(u, ev{op: "consume", key: w.freshKey("c"), amount: w.poolSpilling(u)}, false)}, true)
		}
		w.script = []func(){fill, fill, send(ev{op: "consume", amount: w.poolSpilling(user)})}
	}
	w.logf("pool story %d begins for %s (pool %s)", len(w.script), user, id)
}
