package usage

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Balances beyond the period's allowance live on the entitlement item
// itself, so that one conditional write decides a draw from all of them
// and one GetItem shows what is available:
//
//	grants:       a map, grantId -> {amount, remaining, priority, grantedAt, expiresAt?}
//	overageLimit: how far consumes may go beyond the allowance and the grants
//	overageUsed:  how far they went this period (reset with the period)
//	rolloverMax:  the most unused allowance a reset carries into the new period
//
// A consume draws from the allowance (limit - used) first, then from the
// grants active at its processing time in draw order, then from the
// overage. Its ledger entry records the buckets it drew from, so that a
// refund gives back to exactly those.

// The fields of one grant in the grants map.
const (
	GrantFieldAmount    = "amount"
	GrantFieldRemaining = "remaining"
	GrantFieldPriority  = "priority"
	GrantFieldGrantedAt = "grantedAt"
	GrantFieldExpiresAt = "expiresAt"
)

// MaxActiveGrants bounds the grants on one entitlement item (the rollover
// included), so that the item, which every write to the entitlement
// rewrites and pays for by the kilobyte, stays small.
const MaxActiveGrants = 20

// RolloverGrantPrefix starts the key of the grant a reset carries unused
// allowance into, followed by the new period's start; requests cannot
// name a grant with it.
const RolloverGrantPrefix = "rollover:"

// Grant is a top-up as stored on the entitlement item.
type Grant struct {
	ID        string
	Amount    Decimal // as granted
	Remaining Decimal
	Priority  int
	GrantedAt time.Time
	// ExpiresAt is nil for a grant that never expires.
	ExpiresAt *time.Time
}

// ActiveAt reports whether the grant counts at now: until its expiresAt,
// exactly.
func (g Grant) ActiveAt(now time.Time) bool { return g.ExpiresAt == nil || now.Before(*g.ExpiresAt) }

// Rollover reports whether the grant is the unused allowance a reset carried over.
func (g Grant) Rollover() bool { return strings.HasPrefix(g.ID, RolloverGrantPrefix) }

// drawOrder orders grants as consumes draw from them: lower priority
// first, then the earliest expiry (never expiring last), then the oldest,
// then by ID so that the order is total.
func drawOrder(a, b Grant) int {
	if c := cmp.Compare(a.Priority, b.Priority); c != 0 {
		return c
	}
	switch {
	case a.ExpiresAt != nil && b.ExpiresAt == nil:
		return -1
	case a.ExpiresAt == nil && b.ExpiresAt != nil:
		return 1
	case a.ExpiresAt != nil && !a.ExpiresAt.Equal(*b.ExpiresAt):
		return a.ExpiresAt.Compare(*b.ExpiresAt)
	}
	if c := a.GrantedAt.Compare(b.GrantedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// GrantsValue is the grants map as written.
func GrantsValue(gs []Grant) Value {
	fields := make(map[string]Value, len(gs))
	for _, g := range gs {
		f := map[string]Value{
			GrantFieldAmount:    NumberValue(g.Amount),
			GrantFieldRemaining: NumberValue(g.Remaining),
			GrantFieldPriority:  NumberValue(DecimalFromInt(int64(g.Priority))),
			GrantFieldGrantedAt: StringValue(FormatInstant(g.GrantedAt)),
		}
		if g.ExpiresAt != nil {
			f[GrantFieldExpiresAt] = StringValue(FormatInstant(*g.ExpiresAt))
		}
		fields[g.ID] = MapValue(f)
	}
	return MapValue(fields)
}

// parseBalances reads grants, overageLimit, overageUsed and rolloverMax.
func (e *Entitlement) parseBalances(it Item) error {
	var err error
	if e.OverageLimit, err = optionalAmount(it, AttrOverageLimit); err != nil {
		return err
	}
	if e.RolloverMax, err = optionalAmount(it, AttrRolloverMax); err != nil {
		return err
	}
	switch v := it.Get(AttrOverageUsed); v.Kind {
	case KindAbsent:
	case KindNumber:
		e.OverageUsed = v.Num
	default:
		return fmt.Errorf("%s must be a number", AttrOverageUsed)
	}
	e.Grants, err = parseGrants(it.Get(AttrGrants))
	return err
}

// optionalAmount reads a number that may not be negative (absent or NULL: nil).
func optionalAmount(it Item, attr string) (*Decimal, error) {
	switch v := it.Get(attr); v.Kind {
	case KindAbsent, KindNull:
		return nil, nil
	case KindNumber:
		if v.Num.Sign() < 0 {
			return nil, fmt.Errorf("%s must not be negative", attr)
		}
		d := v.Num
		return &d, nil
	}
	return nil, fmt.Errorf("%s must be a number", attr)
}

// parseGrants reads the grants map, in draw order.
func parseGrants(v Value) ([]Grant, error) {
	switch {
	case v.Kind == KindAbsent || v.Kind == KindNull:
		return nil, nil
	case v.Fields == nil:
		return nil, fmt.Errorf("%s must be a map", AttrGrants)
	}
	gs := make([]Grant, 0, len(v.Fields))
	for id, f := range v.Fields {
		g, err := parseStoredGrant(id, f)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %v", AttrGrants, id, err)
		}
		gs = append(gs, g)
	}
	slices.SortFunc(gs, drawOrder)
	return gs, nil
}

func parseStoredGrant(id string, v Value) (Grant, error) {
	g := Grant{ID: id}
	if v.Fields == nil {
		return g, fmt.Errorf("must be a map")
	}
	num := func(name string) (Decimal, error) {
		f := v.Fields[name]
		if f.Kind != KindNumber || f.Num.Sign() < 0 {
			return Decimal{}, fmt.Errorf("%s must be a number, not negative", name)
		}
		return f.Num, nil
	}
	var err error
	if g.Amount, err = num(GrantFieldAmount); err != nil {
		return g, err
	}
	if g.Remaining, err = num(GrantFieldRemaining); err != nil {
		return g, err
	}
	p, err := num(GrantFieldPriority)
	if err == nil {
		g.Priority, err = strconv.Atoi(p.String())
	}
	if err != nil || g.Priority > MaxGrantPriority {
		return g, fmt.Errorf("%s must be a whole number from 0 to %d", GrantFieldPriority, MaxGrantPriority)
	}
	item := Item{Exists: true, Attrs: v.Fields}
	granted, err := instantAttr(item, GrantFieldGrantedAt)
	if err != nil || granted == nil {
		return g, fmt.Errorf("%s must be an RFC 3339 string", GrantFieldGrantedAt)
	}
	g.GrantedAt = *granted
	g.ExpiresAt, err = instantAttr(item, GrantFieldExpiresAt)
	return g, err
}

// Bucket is what a draw drew from, or a give-back gave back to.
type Bucket string

const (
	BucketAllowance Bucket = "allowance"
	BucketGrant     Bucket = "grant"
	BucketOverage   Bucket = "overage"
)

// Draw is one bucket's part of a consume (or a reserve), or of what a
// refund or a settlement gave back.
type Draw struct {
	Bucket  Bucket
	GrantID string // BucketGrant
	Amount  Decimal
	// Lapsed is set on a give-back to a grant that expired or was voided
	// meanwhile, or to the allowance or overage of an ended period:
	// nothing was given back.
	Lapsed bool
}

// String is the draw as "allowance:2", "topup-1:3" or "topup-1(lapsed):3".
func (d Draw) String() string {
	name := string(d.Bucket)
	if d.GrantID != "" {
		name = d.GrantID
	}
	if d.Lapsed {
		name += "(lapsed)"
	}
	return name + ":" + d.Amount.String()
}

// DrawsOf are the buckets an applied consume (or reserve) drew from; an
// entry written without draws drew from the allowance alone.
func DrawsOf(e LedgerEntry) []Draw {
	if len(e.Draws) > 0 {
		return e.Draws
	}
	return []Draw{{Bucket: BucketAllowance, Amount: e.Amount}}
}

// returnsOf is which buckets giving back amount of a draw returns to,
// when already has been given back before: the last drawn first, so that
// what remains drawn is always the first part of the draw.
func returnsOf(draws []Draw, already, amount Decimal) []Draw {
	var out []Draw
	for i := len(draws) - 1; i >= 0 && amount.Sign() > 0; i-- {
		part := draws[i].Amount
		skip := minDecimal(part, already)
		already, part = already.Sub(skip), part.Sub(skip)
		take := minDecimal(part, amount)
		if take.Sign() > 0 {
			out = append(out, Draw{Bucket: draws[i].Bucket, GrantID: draws[i].GrantID, Amount: take})
			amount = amount.Sub(take)
		}
	}
	return out
}

func minDecimal(a, b Decimal) Decimal {
	if a.Cmp(b) <= 0 {
		return a
	}
	return b
}

// spill decides the draws of a consume that the allowance's room does
// not cover: the room, then the active grants in order, then the
// overage. It fails when all of them together do not cover it, or a
// bucket would not stay a DynamoDB number; nothing changes either way.
func (d *decider) spill(amount Decimal) ([]Draw, error) {
	draws, ok := d.spillDraws(amount)
	if !ok {
		return nil, d.limitExceeded(amount)
	}
	if err := d.fits(draws); err != nil {
		return nil, err
	}
	return draws, nil
}

// fits: every bucket a draw changes stays a DynamoDB number.
func (d *decider) fits(draws []Draw) error {
	for _, dr := range draws {
		var next Decimal
		switch dr.Bucket {
		case BucketGrant:
			next = d.grants[d.grantIndex(dr.GrantID)].Remaining.Sub(dr.Amount)
		case BucketOverage:
			next = d.overageUsed.Add(dr.Amount)
		default:
			continue // at most the limit
		}
		if !next.FitsDynamoDB() {
			return reject(ReasonInvalidAmount, "amount", "drawing %s from the %s would leave it at %s, beyond DynamoDB's 38-digit precision", dr.Amount, dr.Bucket, next)
		}
	}
	return nil
}

// spillDraws are the draws of spill; ok is false when they do not cover amount.
func (d *decider) spillDraws(amount Decimal) (draws []Draw, ok bool) {
	need := amount
	take := func(b Bucket, id string, room Decimal) {
		x := minDecimal(room, need)
		if x.Sign() > 0 {
			draws = append(draws, Draw{Bucket: b, GrantID: id, Amount: x})
			need = need.Sub(x)
		}
	}
	d.dependsOnGrants = true // which grants exist decides what comes after the allowance
	room := d.allowanceRoom()
	if room.IsZero() {
		d.passedAllowance = true
	}
	take(BucketAllowance, "", room)
	for _, g := range d.grants {
		take(BucketGrant, g.ID, g.Remaining)
		if need.Sign() > 0 {
			d.use(g.ID).exact = true // passed over empty: a refund to it must be seen
		}
	}
	take(BucketOverage, "", d.overageRoom())
	return draws, need.Sign() <= 0
}

// grantUse is what a group does to, and rests on, of one grant it
// neither adds nor removes: such draws compose with other consumers'
// ("remaining is at least what we take"), unless a decision rested on
// its exact remaining.
type grantUse struct {
	observed    Decimal
	drawn, back Decimal
	exact       bool
}

// use is the group's record of the grant id, from its first touch.
func (d *decider) use(id string) *grantUse {
	u := d.uses[id]
	if u == nil {
		u = &grantUse{}
		if i := d.grantIndex(id); i >= 0 {
			u.observed = d.grants[i].Remaining
		}
		d.uses[id] = u
	}
	return u
}

func (d *decider) grantIndex(id string) int {
	return slices.IndexFunc(d.grants, func(g Grant) bool { return g.ID == id })
}

// allowanceRoom is what the period's allowance has left (never negative).
func (d *decider) allowanceRoom() Decimal {
	r := d.ent.Limit.Sub(d.used)
	if r.Sign() < 0 {
		return Decimal{}
	}
	return r
}

// overageRoom is what the overage has left this period.
func (d *decider) overageRoom() Decimal {
	if d.ent.OverageLimit == nil {
		return Decimal{}
	}
	r := d.ent.OverageLimit.Sub(d.overageUsed)
	if r.Sign() < 0 {
		return Decimal{}
	}
	return r
}

// beyondAllowance is everything a consume could draw now beyond the allowance.
func (d *decider) beyondAllowance() Decimal {
	sum := d.overageRoom()
	for _, g := range d.grants {
		sum = sum.Add(g.Remaining)
	}
	return sum
}

// apply moves one draw into (back false) or out of (back true) its
// bucket. A give-back to a grant that no longer counts lapses; the
// result says what happened.
func (d *decider) apply(dr Draw, back bool) Draw {
	switch dr.Bucket {
	case BucketAllowance:
		if back {
			d.giveBack(dr.Amount)
		} else {
			d.used = d.used.Add(dr.Amount)
			d.spilled = true
		}
	case BucketOverage:
		if back {
			d.overageExact = true // never below 0
			d.overageUsed = d.overageUsed.Sub(dr.Amount)
			if d.overageUsed.Sign() < 0 {
				d.overageUsed = Decimal{}
			}
		} else {
			d.overageDrawn = d.overageDrawn.Add(dr.Amount)
			d.overageUsed = d.overageUsed.Add(dr.Amount)
		}
	case BucketGrant:
		i := d.grantIndex(dr.GrantID)
		if i < 0 {
			if slices.ContainsFunc(d.ent.Grants, func(g Grant) bool { return g.ID == dr.GrantID }) {
				d.dependsOnGrants = true // expired, still on the item: it stays expired
			} else {
				d.gone[dr.GrantID] = true
			}
			dr.Lapsed = true
			return dr
		}
		u := d.use(dr.GrantID)
		if back {
			u.back, u.exact = u.back.Add(dr.Amount), true
			d.grants[i].Remaining = minDecimal(d.grants[i].Remaining.Add(dr.Amount), d.grants[i].Amount)
		} else {
			u.drawn = u.drawn.Add(dr.Amount)
			d.grants[i].Remaining = d.grants[i].Remaining.Sub(dr.Amount)
		}
	}
	return dr
}

// backs decides which buckets giving back amount of draws returns to,
// changing no balance: it fails when a bucket would not stay a DynamoDB
// number (noting what that rests on).
func (d *decider) backs(draws []Draw, already, amount Decimal, inPeriod bool) ([]Draw, error) {
	returns := returnsOf(draws, already, amount)
	if err := partsFit(returns); err != nil {
		return nil, err
	}
	toAllowance := Decimal{}
	for _, r := range returns {
		if r.Bucket == BucketAllowance && inPeriod {
			toAllowance = toAllowance.Add(r.Amount)
		}
	}
	if toAllowance.Sign() > 0 {
		if err := d.checkGiveBack(toAllowance); err != nil {
			return nil, err
		}
	}
	if err := d.fitsBack(returns, inPeriod); err != nil {
		return nil, err
	}
	return returns, nil
}

// partsFit: each part of a give-back is recorded on the ledger entry, so
// each must be a DynamoDB number. What is left of a draw after a tiny
// earlier give-back (107.5 less 1E-36) may need more than 38 digits.
func partsFit(returns []Draw) error {
	for _, r := range returns {
		if !r.Amount.FitsDynamoDB() {
			return reject(ReasonInvalidAmount, "amount",
				"giving back %s to the %s would record more than DynamoDB's 38-digit precision", r.Amount, r.Bucket)
		}
	}
	return nil
}

// applyBacks gives back what backs decided; the result says where each
// part went (lapsed: nowhere).
func (d *decider) applyBacks(returns []Draw, inPeriod bool) []Draw {
	for i, r := range returns {
		if r.Bucket != BucketGrant && !inPeriod {
			returns[i].Lapsed = true
			continue
		}
		returns[i] = d.apply(r, true)
	}
	return returns
}

// fitsBack: every grant and overage a give-back changes stays a DynamoDB
// number (the allowance's part is checkGiveBack's).
func (d *decider) fitsBack(returns []Draw, inPeriod bool) error {
	for _, r := range returns {
		var next Decimal
		switch {
		case r.Bucket == BucketGrant && d.grantIndex(r.GrantID) >= 0:
			g := d.grants[d.grantIndex(r.GrantID)]
			next = minDecimal(g.Remaining.Add(r.Amount), g.Amount)
			d.use(r.GrantID).exact = true // should it not fit, that rests on it
		case r.Bucket == BucketOverage && inPeriod:
			next = d.overageUsed.Sub(r.Amount)
		default:
			continue
		}
		if next.Sign() >= 0 && !next.FitsDynamoDB() {
			d.dependsOnUsed = true
			return reject(ReasonInvalidAmount, "amount", "giving %s back to the %s would leave it at %s, beyond DynamoDB's 38-digit precision", r.Amount, r.Bucket, next)
		}
	}
	return nil
}

// liveGrants are the grants that count at now, in draw order.
func liveGrants(gs []Grant, now time.Time) []Grant {
	var live []Grant
	for _, g := range gs {
		if g.ActiveAt(now) {
			live = append(live, g)
		}
	}
	return live
}

// rollover is the grant a reset to the period starting at start carries
// the unused allowance into: min(unused, rolloverMax) of the period just
// ended (the whole limit when no event counted in it), expiring when the
// new period ends. ok is false when nothing carries over.
func (d *decider) rollover(start time.Time) (Grant, bool) {
	e := d.ent
	if e.RolloverMax == nil || e.Limit == nil || e.PeriodStart == nil || e.ResetPeriod == ResetNone {
		return Grant{}, false
	}
	unused := *e.Limit
	ended := PeriodStart(e.ResetPeriod, e.ResetAnchor, start.Add(-time.Nanosecond))
	if ended.Equal(*e.PeriodStart) {
		unused = e.Limit.Sub(e.Used)
	}
	amount := minDecimal(unused, *e.RolloverMax)
	if amount.Sign() <= 0 {
		return Grant{}, false
	}
	end := NextPeriodStart(e.ResetPeriod, e.ResetAnchor, start)
	return Grant{ID: RolloverGrantPrefix + FormatInstant(start), Amount: amount, Remaining: amount,
		Priority: DefaultGrantPriority, GrantedAt: start, ExpiresAt: &end}, true
}

// grant decides a top-up: it counts from now until its expiresAt.
func (d *decider) grant(r Record) Outcome {
	ev := r.Event
	switch {
	case ev.ExpiresAt != nil && !d.rules.Now.Before(*ev.ExpiresAt):
		return Outcome{Status: Rejected, Err: reject(ReasonInvalidField, "expiresAt",
			"%s is not in the future (processed at %s): the grant would never count", FormatInstant(*ev.ExpiresAt), FormatInstant(d.rules.Now))}
	case strings.HasPrefix(ev.GrantID, RolloverGrantPrefix):
		return Outcome{Status: Rejected, Err: reject(ReasonInvalidField, "grantId", "must not begin with %q: the rollover's grants are named so", RolloverGrantPrefix)}
	}
	d.dependsOnGrants = true // how many there are, and which IDs are taken
	if slices.ContainsFunc(d.grants, func(g Grant) bool { return g.ID == ev.GrantID }) {
		return Outcome{Status: Rejected, Err: reject(ReasonInvalidField, "grantId", "%q is already a grant on this entitlement", ev.GrantID)}
	}
	if len(d.grants) >= MaxActiveGrants {
		return Outcome{Status: Rejected, Err: reject(ReasonTooManyGrants, "",
			"the entitlement has %d active grants, the most it may have; void one or let one expire first", len(d.grants))}
	}
	g := Grant{ID: ev.GrantID, Amount: ev.Amount, Remaining: ev.Amount, Priority: DefaultGrantPriority,
		GrantedAt: d.rules.Now.UTC(), ExpiresAt: ev.ExpiresAt}
	if ev.Priority != nil {
		g.Priority = *ev.Priority
	}
	d.grants = append(d.grants, g)
	slices.SortFunc(d.grants, drawOrder)
	d.structural++
	e := &LedgerEntry{Operation: OperationGrant, Amount: ev.Amount, GrantState: GrantActive, Priority: g.Priority, GrantExpiresAt: ev.ExpiresAt}
	return d.record(r, e)
}

// Grant states on a grant's ledger entry.
const (
	GrantActive = "active"
	GrantVoided = "voided"
)

// The ledger attributes a void sets on the grant's entry.
const (
	LedgerAttrGrantState = "grantState"
	LedgerAttrVoided     = "voided"
	LedgerAttrVoidedAt   = "voidedAt"
)

// void decides ending a grant: what is left of it stops counting, what
// was drawn stays drawn. Like a settlement it has no entry of its own:
// the grant's state is its idempotency.
func (d *decider) void(r Record) Outcome {
	key := r.Event.GrantID
	entry, t, o := d.targetFor(r, key, OperationGrant, ReasonGrantNotFound, "grantId", "grant")
	if o != nil {
		return *o
	}
	current := *entry
	if t != nil && t.voided != nil {
		current = *t.voided
	}
	if t != nil {
		t.pinnedSet = true // it rests on the grant's state
	}
	switch {
	case current.GrantState == GrantVoided:
		return Outcome{Status: Duplicate, Original: &current}
	case current.GrantExpiresAt != nil && !d.rules.Now.Before(*current.GrantExpiresAt):
		return Outcome{Status: Rejected, Err: reject(ReasonGrantNotActive, "grantId",
			"the grant %q expired at %s", key, FormatInstant(*current.GrantExpiresAt))}
	}
	left := Decimal{}
	if i := d.grantIndex(key); i >= 0 {
		left = d.grants[i].Remaining
		d.grants = slices.Delete(d.grants, i, i+1)
		d.structural++
	} else {
		d.gone[key] = true // an entitlement edited by hand: nothing left to void
	}
	voided := current
	voided.GrantState, voided.Voided, voided.VoidedAt = GrantVoided, &left, d.rules.Now.UTC()
	if t == nil {
		*entry = voided // granted by this group: its Put carries the void
	} else {
		t.voided = &voided
	}
	return Outcome{Status: Applied, Entry: &voided}
}

// grantWrite is the write of a grant's entry a decision voided, or whose
// state a decision rested on.
func (t *target) grantWrite(w Write) Write {
	w.Conds = []Cond{{Op: OpExists}, Pin(LedgerAttrGrantState, StringValue(t.entry.GrantState))}
	if t.voided == nil {
		w.Action = Check
		return w
	}
	v := t.voided
	w.Action = Update
	w.Set = []Assign{
		{Attr: LedgerAttrGrantState, Value: StringValue(GrantVoided)},
		{Attr: LedgerAttrVoided, Value: NumberValue(*v.Voided)},
		{Attr: LedgerAttrVoidedAt, Value: StringValue(v.VoidedAt.Format(time.RFC3339Nano))},
	}
	return w
}

// AttrGrantsVersion is metering's own counter on the entitlement item:
// it counts the grants added and removed (a group moves it on by as many
// as one at a time would), so that a draw that
// rests on which grants exist (and so on their order) need not rest on
// every grant's remaining.
const AttrGrantsVersion = "grantsVersion"

// grantWrites adds what the group writes to, or rests on, of the grants.
// A group that adds or removes grants (or a reset that rolls over) writes
// the whole map, pruned of expired grants, resting on it exactly; other
// groups write each grant they draw from or give back to, resting on the
// grants that exist (the version) and on each one's remaining: at least
// what they take, or exactly as observed where a decision needed that.
func (d *decider) grantWrites(conds []Cond, set []Assign) ([]Cond, []Assign) {
	obs := d.ent.Observed
	version := obs.Get(AttrGrantsVersion)
	changes := d.structural
	if d.reset && d.rolledOver {
		changes++
	}
	if changes > 0 {
		next := Decimal{}
		if version.Kind == KindNumber {
			next = version.Num
		}
		conds = append(conds, Pin(AttrGrants, obs.Get(AttrGrants)), Pin(AttrGrantsVersion, version))
		set = append(set, Assign{Attr: AttrGrantsVersion, Value: NumberValue(next.Add(DecimalFromInt(int64(changes))))})
		if len(d.grants) == 0 {
			return conds, append(set, Assign{Attr: AttrGrants, Remove: true})
		}
		return conds, append(set, Assign{Attr: AttrGrants, Value: GrantsValue(d.grants)})
	}
	if len(d.uses) == 0 && len(d.gone) == 0 && !d.dependsOnGrants && !d.passedAllowance {
		return conds, set
	}
	conds = append(conds, Pin(AttrGrantsVersion, version))
	for _, id := range slices.Sorted(maps.Keys(d.gone)) {
		conds = append(conds, Cond{Op: OpAbsent, Attr: AttrGrants, Field: []string{id}})
	}
	for _, id := range slices.Sorted(maps.Keys(d.uses)) {
		u, field := d.uses[id], []string{id, GrantFieldRemaining}
		switch {
		case u.exact || !u.drawn.FitsDynamoDB(): // a bound DynamoDB cannot hold: the exact value always can
			conds = append(conds, Cond{Op: OpEquals, Attr: AttrGrants, Field: field, Value: NumberValue(u.observed)})
			if i := d.grantIndex(id); i >= 0 && d.grants[i].Remaining.Cmp(u.observed) != 0 {
				set = append(set, Assign{Attr: AttrGrants, Field: field, Value: NumberValue(d.grants[i].Remaining)})
			}
		case u.drawn.Sign() > 0:
			conds = append(conds, Cond{Op: OpGE, Attr: AttrGrants, Field: field, Value: NumberValue(u.drawn)})
			set = append(set, Assign{Attr: AttrGrants, Field: field, Value: NumberValue(Decimal{}.Sub(u.drawn)), Add: true})
		}
	}
	return conds, set
}

// grantsDrawn: the group draws from, or gives back to, a grant it does
// not add or remove.
func (d *decider) grantsDrawn() bool {
	for _, u := range d.uses {
		if u.drawn.Sign() > 0 || u.back.Sign() > 0 {
			return true
		}
	}
	return false
}

// sameGrantTerms: a grant sent again asks for what was granted.
func sameGrantTerms(e LedgerEntry, ev Event) bool {
	priority := DefaultGrantPriority
	if ev.Priority != nil {
		priority = *ev.Priority
	}
	sameExpiry := e.GrantExpiresAt == nil && ev.ExpiresAt == nil ||
		e.GrantExpiresAt != nil && ev.ExpiresAt != nil && e.GrantExpiresAt.Equal(*ev.ExpiresAt)
	return sameExpiry && priority == e.Priority
}

func expiryText(t *time.Time) string {
	if t == nil {
		return "none"
	}
	return FormatInstant(*t)
}
