package adversarial

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/usage"
)

// The generator's grants, voids, overage and rollover: grants with and
// without expiresAt (some expiring while the scenario's clock runs, some
// not in the future at all), with priorities, sent again (the same or
// other terms); voids of grants counting, voided, expired, unknown, or
// of another kind of entry; entitlements with overageLimit and
// rolloverMax, which access-service edits (or writes odd, with grants).

var grantAmounts = []string{"1", "2", "3", "4", "5", "0.5", "10"}

func (w *world) randomOverageLimit() string {
	if w.chance(0.5) {
		return w.pick([]string{"0", "2", "3", "5", "0.5"})
	}
	return ""
}

func (w *world) randomRolloverMax() string {
	if w.chance(0.5) {
		return w.pick([]string{"0", "2", "5", "100"})
	}
	return ""
}

// randomExpiry is a grant's expiresAt: none, soon (it expires as the
// clock advances), later, or (rarely) not in the future.
func (w *world) randomExpiry() *time.Time {
	var d time.Duration
	switch x := w.rng.IntN(100); {
	case x < 40:
		return nil
	case x < 46:
		d = -time.Duration(w.pick2([]int{0, 1, 1000, 3_600_000})) * time.Millisecond // at or before now
	case x < 70:
		d = time.Duration(w.pick2([]int{1, 5, 50, 500, 1500, 30_000})) * time.Millisecond
	case x < 90:
		d = time.Duration(w.pick2([]int{2, 10, 45, 90})) * time.Minute
	default:
		d = time.Duration(w.pick2([]int{20, 30, 72})) * time.Hour
	}
	t := w.now.Add(d)
	return &t
}

func (w *world) randomPriority() *int {
	if w.chance(0.5) {
		return nil
	}
	p := w.pick2([]int{0, 50, 100, 100, 500, 1000})
	return &p
}

// randomGrant is a grant for user: a new one mostly; sometimes one sent
// again (DUPLICATE, or IDEMPOTENCY_CONFLICT with other terms), one
// under a key another operation took, or one named like a rollover.
func (w *world) randomGrant(user string) ev {
	e := ev{op: "grant", grantID: w.freshKey("g"), amount: w.pick(grantAmounts), expiresAt: w.randomExpiry(), priority: w.randomPriority(), withKey: w.chance(0.3)}
	if w.chance(0.15) {
		e.zone = w.pick2([]int{60, -300, 330})
	}
	s := w.oracle.scope(user)
	switch x := w.rng.IntN(100); {
	case x < 10:
		if grants := w.keysOf(user, "grant"); len(grants) > 0 {
			id := w.pick(grants)
			prior := s.ledger[id]
			e.grantID, e.amount, e.expiresAt = id, prior.amount.String(), prior.grantExpiresAt
			e.priority = nil
			if prior.priority != usage.DefaultGrantPriority || w.chance(0.5) {
				p := prior.priority
				e.priority = &p
			}
			switch y := w.rng.IntN(10); {
			case y == 0:
				e.amount = prior.amount.Add(usage.DecimalFromInt(1)).String()
			case y == 1:
				p := (prior.priority + 1) % (usage.MaxGrantPriority + 1)
				e.priority = &p
			case y == 2:
				e.expiresAt = w.randomExpiry()
			}
		}
	case x < 13:
		if consumes := w.keysOf(user, "consume"); len(consumes) > 0 {
			e.grantID = w.pick(consumes)
		}
	case x < 15:
		e.grantID = rolloverPrefix + periodOf("DAILY", w.now)
	}
	return e
}

// randomVoid is a void for user: mostly of one of its grants (counting
// ones more often), sometimes of an unknown grant, a rollover or a
// consume.
func (w *world) randomVoid(user string) ev {
	e := ev{op: "void", grantID: w.freshKey("nogrant")}
	s := w.oracle.scope(user)
	grants := w.keysOf(user, "grant")
	var active []string
	for _, id := range grants {
		if g := s.ent.grants[id]; g != nil && g.activeAt(w.now) {
			active = append(active, id)
		}
	}
	var expired []string
	for _, id := range grants {
		if g := s.ledger[id]; g.grantState == "active" && g.grantExpiresAt != nil && !w.now.Before(*g.grantExpiresAt) {
			expired = append(expired, id)
		}
	}
	var drawn []string // counting grants a consume or a hold drew from: a give-back to them will lapse
	for _, k := range append(w.spilledKeys(user, "consume"), w.spilledKeys(user, "reserve")...) {
		for _, d := range s.ledger[k].draws {
			if slices.Contains(active, d.grantID) && !slices.Contains(drawn, d.grantID) {
				drawn = append(drawn, d.grantID)
			}
		}
	}
	slices.Sort(drawn)
	switch x := w.rng.IntN(100); {
	case x < 20 && len(expired) > 0:
		e.grantID = w.pick(expired) // GRANT_NOT_ACTIVE
	case x < 40 && len(drawn) > 0:
		e.grantID = w.pick(drawn)
	case x < 45 && len(active) > 0:
		e.grantID = w.pick(active)
	case x < 85 && len(grants) > 0:
		e.grantID = w.pick(grants)
	case x < 92:
		for _, id := range slices.Sorted(maps.Keys(s.ent.grants)) {
			if strings.HasPrefix(id, rolloverPrefix) {
				e.grantID = id // a rollover has no ledger entry: GRANT_NOT_FOUND
			}
		}
	case x < 96:
		if consumes := w.keysOf(user, "consume"); len(consumes) > 0 {
			e.grantID = w.pick(consumes)
		}
	}
	return e
}

// grantExpiries are the expiries of the grants still counting.
func (w *world) grantExpiries() []time.Time {
	var out []time.Time
	for _, u := range w.users {
		for _, g := range w.oracle.scope(u).ent.grants {
			if g.expiresAt != nil && g.activeAt(w.now) {
				out = append(out, *g.expiresAt)
			}
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// randomBalanceEdit is access-service changing overageLimit or
// rolloverMax, or writing one of them or the grants odd.
func (w *world) randomBalanceEdit(user string) {
	s := w.oracle.scope(user)
	switch x := w.rng.IntN(100); {
	case x < 35:
		w.setBalanceAttr(user, usage.AttrOverageLimit, w.pick([]string{"", "0", "1", "3", "10"}))
	case x < 65:
		w.setBalanceAttr(user, usage.AttrRolloverMax, w.pick([]string{"", "0", "2", "10"}))
	case s.ent.malformed():
		w.repair(user)
	case x < 75:
		w.setBalanceAttr(user, usage.AttrOverageLimit, w.pick([]string{"2", "5"}))
	case x < 92:
		if w.avoid[15] && w.inGap {
			return // grants written odd between a read and a write (defect 15)
		}
		w.setOddGrants(user)
		w.restartFor15()
	default:
		w.setBalanceAttr(user, w.pick([]string{usage.AttrOverageLimit, usage.AttrRolloverMax}), w.pick([]string{"S", "-1"}))
	}
}

// oddGrantState writes a grant's ledger entry with a grantState the
// service does not know: a void naming it is INVALID_LEDGER_ENTRY.
func (w *world) oddGrantState(user, key string) {
	pk, sk := dynamodb.LedgerKey(scopeOf(user), key)
	_, err := w.real.UpdateItem(w.ctx, &awsdynamodb.UpdateItemInput{
		TableName:                 aws.String(w.ledgerTable),
		Key:                       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}},
		UpdateExpression:          aws.String("SET #s = :s"),
		ExpressionAttributeNames:  map[string]string{"#s": usage.LedgerAttrGrantState},
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: "paused"}},
	})
	if err != nil {
		w.t.Fatal(err)
	}
	w.oracle.scope(user).ledger[key].unreadable = true
	w.oddKeys[key] = true
	w.logf("ledger: %s grant %s grantState written as \"paused\"", user, key)
}

// spilling is an amount a little beyond what the allowance has left
// (the limit's when unlimited, or when the entitlement cannot be read):
// it draws the rest, then from grants and the overage.
func (w *world) spilling(user string) string {
	s := w.oracle.scope(user)
	room := usage.DecimalFromInt(3)
	if l := s.ent.limitNum(); l != nil && !s.ent.malformed() {
		room = nonNegative(l.Sub(s.ent.usedNum()))
		if w.chance(0.4) {
			for _, g := range s.live(w.now) {
				room = room.Add(g.remaining) // and past the grants: into the overage
			}
		}
	}
	amount := room.Add(usage.MustDecimal(w.pick([]string{"0.5", "1", "2", "3", "6"})))
	return w.validAmount(amount).String()
}

// validAmount keeps an amount the generator computed a valid one: at most
// 38 digits (a room left by 1E-36 refunds can have 37), and with
// -avoid=17 at most 99 (a refund of 1E-36 of more needs a ceiling beyond
// 38 digits, defect 17).
func (w *world) validAmount(amount usage.Decimal) usage.Decimal {
	if w.avoid[17] && amount.Cmp(usage.DecimalFromInt(99)) > 0 {
		return usage.DecimalFromInt(99)
	}
	if !fits(amount) {
		return usage.MustDecimal(w.pick(amounts))
	}
	return amount
}

// spilledKeys are user's entries of op that drew beyond the allowance.
func (w *world) spilledKeys(user, op string) []string {
	var out []string
	for _, k := range w.keysOf(user, op) {
		if len(w.oracle.scope(user).ledger[k].draws) > 0 {
			out = append(out, k)
		}
	}
	return out
}

// stuck: with -avoid=14, what an entry gives back could be due to a
// grant that expired while still on the item (defect 14: RETRY forever).
func (w *world) stuck(user string, e *oEntry) bool {
	if !w.avoid[14] || e == nil {
		return false
	}
	s := w.oracle.scope(user)
	for _, d := range e.draws {
		if g := s.ent.grants[d.grantID]; d.bucket == bucketGrant && g != nil && !g.activeAt(w.now) {
			return true
		}
	}
	return false
}

// unstuck leaves out, with -avoid=14, the refunds and settlements that
// could give back to a grant expired on the item.
func (w *world) unstuck(items []*item) []*item {
	if !w.avoid[14] {
		return items
	}
	var out []*item
	for _, it := range items {
		l := w.oracle.scope(it.user).ledger
		if it.e.op == "refund" && w.stuck(it.user, l[it.e.refundOf]) || (it.e.op == "commit" || it.e.op == "release") && w.stuck(it.user, l[it.e.holdID]) {
			w.logf("left out (-avoid 14): %s", it)
			continue
		}
		out = append(out, it)
	}
	return out
}

// sweepStuck: with -avoid=14, a hold the sweep would expire gives back
// to a grant expired on the item.
func (w *world) sweepStuck() bool {
	for _, u := range w.users {
		for _, h := range w.oracle.scope(u).ledger {
			if h.op == "reserve" && h.holdState == "active" && h.expiresAt.Before(w.now) && w.stuck(u, h) {
				return true
			}
		}
	}
	return false
}

// rollsOver: an entitlement would roll over at the next midnight.
func (w *world) rollsOver() bool {
	for _, u := range w.users {
		e := w.oracle.scope(u).ent
		if e.exists && e.resetPeriod == "DAILY" && e.rolloverMax.kind == "N" && e.rolloverMax.num.Sign() > 0 && e.limit.kind == "N" {
			return true
		}
	}
	return false
}

// ---- Stories ----
//
// A few rules need several events in a row: a draw from a grant, the
// grant voided or expired, then the give-back that lapses; a hold that
// drew beyond the allowance settled after its period ended; a draw into
// the overage refunded. Random events rarely line these up in a short
// run, so now and then the scenario plays a story: one action a step,
// each through a random process (queued or synchronous, with the step's
// gap and faults) and checked like any other step. Amounts are decided
// when the action runs, on the state as it then is.

func (w *world) startStory() {
	if w.pooled && w.chance(0.6) {
		w.startPoolStory() // generator_pools_test.go
		return
	}
	var users []string
	for _, u := range w.users[:2] {
		if e := w.oracle.scope(u).ent; e.exists && !e.malformed() && e.limit.kind == "N" {
			users = append(users, u)
		}
	}
	if len(users) == 0 {
		return
	}
	user := w.pick(users)
	g := w.freshKey("g")
	c := w.freshKey("c")
	send := func(e ev) func() {
		return func() {
			sync := e.op != "reserve" && w.chance(0.4) || e.op == "reserve"
			if sync && e.op == "consume" || sync && e.op == "refund" {
				if e.key == "" {
					e.key = w.freshKey("s")
				}
			}
			w.deliver(w.randomProc(), []*item{w.newItem(user, e, sync)}, true)
		}
	}
	spill := func(op string) func() {
		return func() {
			e := ev{op: op, key: c, amount: w.spilling(user)}
			if op == "reserve" {
				e.seconds = w.pick2([]int{60, 900})
			}
			send(e)()
		}
	}
	expiry := w.now.Add(time.Duration(w.pick2([]int{2, 30, 600})) * time.Second)
	top := ev{op: "grant", grantID: g, amount: w.pick([]string{"2", "3", "5"}), priority: w.randomPriority()}
	if w.chance(0.5) {
		top.expiresAt = &expiry
	}
	switch w.rng.IntN(6) {
	case 5: // access-service writes grants odd: INVALID_ENTITLEMENT until repaired
		w.script = []func(){
			func() { w.setOddGrants(user); w.restartFor15() },
			func() { send(w.randomEventFor(user, false))() },
			func() {
				if w.oracle.scope(user).ent.grantsOdd { // not repaired meanwhile (a gap)
					w.repairGrants(user)
				}
			},
		}
	case 3: // up to the bound on grants counting, and one more
		w.script = []func(){func() {
			var items []*item
			for range maxGrants + 1 - len(w.oracle.scope(user).live(w.now)) {
				e := ev{op: "grant", grantID: w.freshKey("g"), amount: w.pick(grantAmounts), priority: w.randomPriority()}
				if w.chance(0.3) {
					later := w.now.Add(time.Duration(w.pick2([]int{1, 5, 60})) * time.Minute)
					e.expiresAt = &later
				}
				items = append(items, w.newItem(user, e, false))
			}
			w.deliver(w.randomProc(), items, true)
		}}
	case 4: // the unused allowance rolls over at midnight and is drawn from
		w.script = []func(){
			func() {
				s := w.oracle.scope(user)
				if s.ent.resetPeriod == "DAILY" && (s.ent.rolloverMax.kind != "N" || s.ent.rolloverMax.num.Sign() == 0) {
					w.setBalanceAttr(user, usage.AttrRolloverMax, w.pick([]string{"2", "5", "100"}))
				}
			},
			func() {
				w.now = w.now.Truncate(24 * time.Hour).Add(24*time.Hour + time.Duration(w.rng.IntN(3000))*time.Millisecond)
				w.logf("clock: past midnight")
				w.clockMoved()
			},
			spill(w.pick([]string{"consume", "reserve"})),
		}
	case 0: // a grant drawn from, ended, then the give-back lapses
		end := send(ev{op: "void", grantID: g})
		if top.expiresAt != nil && w.chance(0.5) {
			end = func() {
				if t := expiry.Add(time.Millisecond); t.After(w.now) {
					w.now = t
				}
				w.logf("clock: past %s's expiry", g)
				w.clockMoved()
			}
		}
		op := w.pick([]string{"consume", "consume", "reserve"})
		back := send(ev{op: "refund", refundOf: c})
		if op == "reserve" {
			back = send(w.settlement(c))
		}
		w.script = []func(){send(top), spill(op), end, back, send(ev{op: "void", grantID: g})}
	case 1: // into the overage, and back
		w.script = []func(){
			func() {
				if l := w.oracle.scope(user).ent.overageLimit; l.kind != "N" || l.num.Sign() == 0 {
					w.setBalanceAttr(user, usage.AttrOverageLimit, "5")
				}
			},
			func() {
				s := w.oracle.scope(user)
				room := nonNegative(s.ent.limitNum().Sub(s.ent.usedNum()))
				for _, g := range s.live(w.now) {
					room = room.Add(g.remaining)
				}
				amount := w.validAmount(room.Add(usage.MustDecimal(w.pick([]string{"0.5", "1", "2"}))))
				send(ev{op: "consume", key: c, amount: amount.String()})()
			},
			send(ev{op: "refund", refundOf: c, amount: w.pick([]string{"", "1", "0.5"})}),
		}
	default: // a hold beyond the allowance settled after its period ended
		w.script = []func(){send(top), spill("reserve"),
			func() {
				w.now = w.now.Truncate(24 * time.Hour).Add(24*time.Hour + time.Duration(w.rng.IntN(3000))*time.Millisecond)
				w.clockMoved()
				w.logf("clock: past midnight with the hold active")
			},
			func() {
				if w.chance(0.3) {
					w.sweep(w.randomProc(), 100, true)
					return
				}
				send(w.settlement(c))()
			},
		}
	}
	w.logf("story %d begins for %s", len(w.script), user)
}

// settlement is a release, or a commit of all, nothing or 1 of hold.
func (w *world) settlement(hold string) ev {
	if w.chance(0.5) {
		return ev{op: "release", holdID: hold}
	}
	return ev{op: "commit", holdID: hold, amount: w.pick([]string{"", "0", "1"})}
}
