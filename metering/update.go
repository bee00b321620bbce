// Package metering is the home of the use cases: applying queued events,
// answering synchronous requests and releasing expired holds all decide
// with the domain's rule (package usage) and write through one port,
// Store, with one protocol (Update): observe, decide, carry the decision
// out, and decide again on what a refusal taught, a bounded number of
// times. Adapters (package dynamodb, internal/dev/memstore) translate,
// commit, read and cache; they hold no rule and no retry loop of their
// own, so both behave alike by construction.
package metering

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/backoff"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Store is the one port the use cases write through: the primitives of
// the decide-and-write protocol, and the reads the use cases answer with.
type Store interface {
	// Observe returns what is known of a scope before deciding: a cached
	// state, or a read; with consistent, a strongly consistent read that
	// bypasses any cache.
	Observe(ctx context.Context, scope usage.Scope, consistent bool) (usage.State, error)
	// ReadLedger reads ledger keys consistently: each is learned applied
	// or absent.
	ReadLedger(ctx context.Context, scope usage.Scope, keys []string) (usage.Learned, error)
	// Verify confirms a plan that writes nothing (only checks) by
	// consistent reads, the entitlement first: held reports whether every
	// check held; learned is what the reads found.
	Verify(ctx context.Context, scope usage.Scope, plan usage.Plan) (learned usage.Learned, held bool, err error)
	// Commit writes a plan atomically, all or nothing. A refusal is a
	// *usage.Refusal; any other error leaves the outcome unknown.
	Commit(ctx context.Context, scope usage.Scope, plan usage.Plan) error
	// Remember keeps the state a final decision rested on (its item
	// after the decision's writes), to save the next read; Forget drops it.
	Remember(scope usage.Scope, st usage.State)
	Forget(scope usage.Scope)

	// ReadEntitlement reads an entitlement consistently, for answers.
	ReadEntitlement(ctx context.Context, scope usage.Scope) (usage.Entitlement, error)
	// ActiveHolds lists a scope's holds not settled yet, consistently.
	ActiveHolds(ctx context.Context, scope usage.Scope) ([]usage.LedgerEntry, error)
}

// ReadFirster is an optional part of a Store: a store for which a failed
// write is dear (DynamoDB bills a canceled transaction in full) may read
// the new keys of a group's first write when it predicts that is cheaper,
// and learn from each group's first write how often that would have paid.
type ReadFirster interface {
	// ReadFirst returns ledger entries of the plan's new keys found
	// already applied; ok is false when it did not read.
	ReadFirst(ctx context.Context, scope usage.Scope, plan usage.Plan) (applied map[string]usage.LedgerEntry, ok bool)
	// Estimate tells the store what a group's first write found.
	Estimate(plan usage.Plan, applied map[string]usage.LedgerEntry)
}

// DefaultMaxAttempts bounds the decisions of one group before its events
// are handed back as RETRY.
const DefaultMaxAttempts = 12

// maxGroup bounds the records of one atomic write: one entitlement item
// plus one ledger item each, well inside DynamoDB's 100 items and 4 MB
// (metadata is at most 32 KiB an event).
const maxGroup = 50

// ErrContention is the cause of a RETRY outcome when the write kept
// finding the state changed, or kept conflicting with other writers.
var ErrContention = errors.New("entitlement kept changing under concurrent writers; retries exhausted")

// ErrInvalidWrite is the cause of RETRY when the store kept refusing a
// single event's write as invalid although a fresh consistent read
// explained nothing: a bug, never guessed around.
var ErrInvalidWrite = errors.New("the store rejected the write as invalid even after a consistent re-read")

// conflictBackoff spreads racing writers out instead of letting them
// collide again in lockstep.
var conflictBackoff = backoff.Exponential{Base: 10 * time.Millisecond, Max: time.Second}

// Writer applies decisions through a Store with the protocol. It is the
// Store with Update added, so a use case needs one value.
type Writer struct {
	Store
	// MaxAttempts bounds the decisions per group (DefaultMaxAttempts when
	// zero).
	MaxAttempts int
}

// Update decides and applies records of one scope, in order, and returns
// one outcome per record. Each group of up to 50 records is one atomic
// write. It never returns an error: transient failures are RETRY
// outcomes.
func (w Writer) Update(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome {
	out := make([]usage.Outcome, 0, len(records))
	for len(records) > 0 {
		n := min(len(records), maxGroup)
		out = append(out, w.updateGroup(ctx, scope, records[:n], decide, true)...)
		records = records[n:]
	}
	return out
}

// updateGroup: observe, then decide and carry out the decision, until one
// is carried out or the attempts run out.
func (w Writer) updateGroup(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide, mayFallBack bool) []usage.Outcome {
	g := &group{w: w, scope: scope, records: records, decide: decide, mayFallBack: mayFallBack}
	if err := g.observe(ctx, false); err != nil {
		return All(records, usage.Retry, err)
	}
	return w.decideGroup(ctx, g)
}

// decideGroup decides and carries out the decision, until one is carried
// out or the attempts run out.
func (w Writer) decideGroup(ctx context.Context, g *group) []usage.Outcome {
	for range w.attempts() {
		if err := ctx.Err(); err != nil {
			return All(g.records, usage.Retry, err)
		}
		if out, done := g.step(ctx, g.decide(g.state, g.records)); done {
			return out
		}
	}
	return All(g.records, usage.Retry, ErrContention)
}

// attempts bounds the decisions of one group (or team).
func (w Writer) attempts() int {
	if w.MaxAttempts <= 0 {
		return DefaultMaxAttempts
	}
	return w.MaxAttempts
}

// group is one updateGroup call: what it knows so far.
type group struct {
	w           Writer
	scope       usage.Scope
	records     []usage.Record
	decide      usage.Decide
	mayFallBack bool

	state     usage.State
	reread    bool // a consistent re-read after an invalid write was made
	conflicts int
	refusals  int  // commits refused on a precondition
	keysRead  bool // ReadFirst was considered
	estimated bool // the store was told what this group's first write found
}

// observe replaces what the group knows of the entitlement and the
// recorded notifications, keeping what it learned of the ledger.
func (g *group) observe(ctx context.Context, consistent bool) error {
	st, err := g.w.Observe(ctx, g.scope, consistent)
	if err == nil {
		g.state.Entitlement, g.state.Notified = st.Entitlement, st.Notified
	}
	return err
}

// step carries a plan out; done is false when the group must decide
// again on what it learned.
func (g *group) step(ctx context.Context, plan usage.Plan) (out []usage.Outcome, done bool) {
	switch {
	case len(plan.Reads) > 0 || len(plan.ReadScopes) > 0:
		learned, err := g.read(ctx, plan)
		if err != nil {
			return All(g.records, usage.Retry, err), true
		}
		g.state = learned.Apply(g.state)
		return nil, false
	case len(plan.Writes) == 0:
		// Only duplicates known from the ledger, or records that wait:
		// nothing a stale entitlement could have decided.
		g.w.Remember(g.scope, g.state)
		return plan.Outcomes, true
	case onlyChecks(plan):
		return g.confirm(ctx, plan)
	case g.readFirst(ctx, plan):
		return nil, false
	}
	return g.commit(ctx, plan)
}

// read learns what a plan asked for: ledger keys (consistently) and other
// scopes' entitlements (as observed: the write's preconditions pin what
// the decision takes from them).
func (g *group) read(ctx context.Context, plan usage.Plan) (usage.Learned, error) {
	var learned usage.Learned
	if len(plan.Reads) > 0 {
		var err error
		if learned, err = g.w.ReadLedger(ctx, g.scope, plan.Reads); err != nil {
			return learned, err
		}
	}
	others, err := g.w.others(ctx, plan.ReadScopes)
	learned.Others = others
	return learned, err
}

// others observes other scopes' entitlements a decision asked for (as
// observed: the write's preconditions pin what the decision takes from
// them).
func (w Writer) others(ctx context.Context, scopes []usage.Scope) (map[usage.Scope]usage.Item, error) {
	var others map[usage.Scope]usage.Item
	for _, s := range scopes {
		st, err := w.Observe(ctx, s, false)
		if err != nil {
			return others, err
		}
		if others == nil {
			others = map[usage.Scope]usage.Item{}
		}
		others[s] = st.Entitlement.Observed
	}
	return others, nil
}

// readFirst asks the store, once, whether to read the first write's new
// keys; it reports whether any were found applied (then the group
// decides again, knowing them).
func (g *group) readFirst(ctx context.Context, plan usage.Plan) bool {
	rf, ok := g.w.Store.(ReadFirster)
	if !ok || g.keysRead {
		return false
	}
	g.keysRead = true
	found, read := rf.ReadFirst(ctx, g.scope, plan)
	if !read {
		return false
	}
	g.estimated = true
	if len(found) == 0 {
		return false
	}
	g.state = usage.Learned{Applied: found}.Apply(g.state)
	return true
}

// estimate tells the store, once per group, what its first write found.
func (g *group) estimate(plan usage.Plan, applied map[string]usage.LedgerEntry) {
	rf, ok := g.w.Store.(ReadFirster)
	if !ok || g.estimated {
		return
	}
	g.estimated = true
	rf.Estimate(plan, applied)
}

// confirm verifies a plan that writes nothing by consistent reads: a
// rejection is final only on state proved current.
func (g *group) confirm(ctx context.Context, plan usage.Plan) ([]usage.Outcome, bool) {
	learned, held, err := g.w.Verify(ctx, g.scope, plan)
	switch {
	case err != nil:
		return All(g.records, usage.Retry, err), true
	case held:
		g.w.Remember(g.scope, learned.Apply(g.state))
		return plan.Outcomes, true
	}
	g.state = learned.Apply(g.state)
	if !learned.Snapshot {
		return nil, false
	}
	// A decision taken on a snapshot that only checks what the snapshot
	// read holds at that instant: under a hot pool, verifying it again
	// would find the pool moved on again.
	next := g.decide(g.state, g.records)
	if !finalOnSnapshot(plan, next) {
		return nil, false
	}
	g.w.Remember(g.scope, g.state)
	return next.Outcomes, true
}

// finalOnSnapshot: next, decided again on the snapshot of every item
// verified named, reads nothing more and only checks items the snapshot
// read, so it holds at the snapshot's instant.
func finalOnSnapshot(verified, next usage.Plan) bool {
	return len(next.Reads) == 0 && len(next.ReadScopes) == 0 && len(next.Writes) > 0 && onlyChecks(next) && readAll(verified, next)
}

// readAll: every item next names, verified names too.
func readAll(verified, next usage.Plan) bool {
	read := map[usage.Target]bool{}
	for _, w := range verified.Writes {
		read[w.Target] = true
	}
	for _, w := range next.Writes {
		if !read[w.Target] {
			return false
		}
	}
	return true
}

// commit writes the plan; the store remembers the item as the plan left
// it.
func (g *group) commit(ctx context.Context, plan usage.Plan) ([]usage.Outcome, bool) {
	if err := g.w.Commit(ctx, g.scope, plan); err != nil {
		return g.refused(ctx, plan, err)
	}
	g.estimate(plan, nil)
	after := g.state
	after.Entitlement = usage.ParseEntitlement(plan.After(g.state.Entitlement.Observed))
	after.Notified = withNotified(g.state.Notified, plan.Writes)
	g.w.Remember(g.scope, after)
	return plan.Outcomes, true
}

// refused reads why the store refused a plan: a failed precondition
// teaches the current state; an invalid write is re-read consistently
// once, then decided event by event; contention backs off; anything else
// goes back to the queue (the SDK already retried throttling, 5xx and
// network errors).
func (g *group) refused(ctx context.Context, plan usage.Plan, err error) ([]usage.Outcome, bool) {
	var r *usage.Refusal
	switch {
	case !errors.As(err, &r):
		g.w.Forget(g.scope)
		return All(g.records, usage.Retry, err), true
	case r.Invalid && g.reread:
		g.w.Forget(g.scope)
		if g.mayFallBack && len(g.records) > 1 {
			return g.w.oneByOne(ctx, g.scope, g.records, g.decide), true
		}
		return All(g.records, usage.Retry, ErrInvalidWrite), true
	case r.Invalid:
		g.w.Forget(g.scope)
		g.reread = true
		if err := g.observe(ctx, true); err != nil {
			return All(g.records, usage.Retry, err), true
		}
	case r.Learned.Any() && g.split():
		g.w.Forget(g.scope)
		return g.w.oneByOne(ctx, g.scope, g.records, g.decide), true
	case r.Learned.Any():
		g.estimate(plan, r.Learned.Applied)
		g.state = r.Learned.Apply(g.state)
	default: // contention: a transaction conflict, one item throttled, ...
		g.conflicts++
		if err := backoff.Sleep(ctx, conflictBackoff.Full(g.conflicts)); err != nil {
			return All(g.records, usage.Retry, err), true
		}
	}
	return nil, false
}

// splitAfter is how many refused commits a group of several records
// tries before it is decided record by record instead.
const splitAfter = 3

// split counts a refused commit and reports whether the group should
// now be decided record by record: a group that writes an item exactly
// (a consume and a refund together, say) loses every race against
// writers that only add to it (the other members of a hot pool), while
// each of its records alone composes with them. One at a time is the
// rule the group's decision stands for, so the outcomes are the same.
func (g *group) split() bool {
	g.refusals++
	return g.mayFallBack && len(g.records) > 1 && g.refusals >= splitAfter
}

// oneByOne decides and writes each record alone, so that a write the
// store refuses for one of them does not hold back the others: each gets
// its own honest outcome.
func (w Writer) oneByOne(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome {
	out := make([]usage.Outcome, 0, len(records))
	for i := range records {
		out = append(out, w.updateGroup(ctx, scope, records[i:i+1], decide, false)...)
	}
	return out
}

// All is one outcome of status and cause per record.
func All(records []usage.Record, status usage.Status, err error) []usage.Outcome {
	out := make([]usage.Outcome, len(records))
	for i := range out {
		out[i] = usage.Outcome{Status: status, Err: err}
	}
	return out
}

// onlyChecks: a plan that writes nothing (rejections and duplicates only).
func onlyChecks(plan usage.Plan) bool {
	for _, w := range plan.Writes {
		if w.Action != usage.Check {
			return false
		}
	}
	return true
}

// withNotified adds the notifications committed writes recorded to the
// keys known to be recorded (known itself is not modified).
func withNotified(known map[string]bool, writes []usage.Write) map[string]bool {
	var out map[string]bool
	for _, w := range writes {
		if w.Notice == nil {
			continue
		}
		if out == nil {
			out = maps.Clone(known)
			if out == nil {
				out = map[string]bool{}
			}
		}
		out[w.Notice.Key] = true
	}
	if out == nil {
		return known
	}
	return out
}
