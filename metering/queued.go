package metering

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

// Updater decides and writes the records of one scope, in order, and
// returns one outcome per record: Writer.Update, or a wrapper of it (the
// worker's early release of an entitlement, a test's counter). What is
// atomic is one write of at most 50 records; a larger group is several,
// each all or nothing, and one of them may fail (RETRY) after an earlier
// one committed.
type Updater interface {
	Update(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome
}

// ErrDeadline is the cause of RETRY for records not started because the
// invocation was about to time out: SQS redelivers them.
var ErrDeadline = errors.New("not started: too close to the invocation deadline")

// Processor is the queued use case, a pipeline.Handler: parse, group by
// scope, apply each group through the one write path.
type Processor struct {
	Store Updater
	// Now is the processing clock (time.Now when nil).
	Now func() time.Time
	// Parallel bounds the scopes applied at once (default 8). Records of
	// one scope are applied in message order, in one Update call.
	Parallel int
	// DeadlineMargin: a scope is not started when less than this remains
	// before the context's deadline (default DefaultDeadlineMargin).
	DeadlineMargin time.Duration
	// TargetWait is how long, from a message's SentAt, a refund whose
	// consume is not applied yet is RETRY before it is rejected
	// REFUND_TARGET_NOT_FOUND (REFUND_TARGET_WAIT; zero rejects at once).
	TargetWait time.Duration
	// Notify, when set, has the writes that cross a threshold or first
	// hit the limit record a notification (usage.Rules.Notify).
	Notify *usage.Notify
}

// Defaults of a Processor.
const (
	DefaultParallel       = 8
	DefaultDeadlineMargin = 2 * time.Second
	DefaultTargetWait     = 15 * time.Minute
)

// scopeGroup is the records of one scope in a batch, and where their
// messages are; or, for a team (members of one pool decided together),
// the records of all its members in message order. observed is what was
// observed of each scope, when the Processor observed it to form teams.
type scopeGroup struct {
	scope    usage.Scope
	index    []int
	records  []usage.Record
	observed map[usage.Scope]usage.State
}

// Handle is a pipeline.Handler.
func (p *Processor) Handle(ctx context.Context, msgs []pipeline.Message) []pipeline.Result {
	results := make([]pipeline.Result, len(msgs))
	groups := groupByScope(msgs, results)
	if t, ok := p.Store.(Teamer); ok {
		groups = p.teams(ctx, t, groups)
	}
	sem := make(chan struct{}, cmpOr(p.Parallel, DefaultParallel))
	var wg sync.WaitGroup
	for _, g := range groups {
		sem <- struct{}{}
		wg.Add(1)
		// The scope's store calls run in the context of its first event
		// (with tracing on, under that event's decision span).
		ctx := pipeline.EventContext(ctx, g.index[0])
		go func() {
			defer func() { <-sem; wg.Done() }()
			// A panic applying this scope is RETRY for its messages only;
			// it also covers an Updater that returns too few outcomes.
			defer pipeline.RetryOnPanic(results, g.index)
			p.apply(ctx, g, msgs, results)
		}()
	}
	wg.Wait()
	return results
}

// groupByScope parses each message, rejecting what breaks the contract,
// and groups the valid events by scope in message order.
func groupByScope(msgs []pipeline.Message, results []pipeline.Result) []*scopeGroup {
	var groups []*scopeGroup
	byScope := map[usage.Scope]*scopeGroup{}
	for i, m := range msgs {
		results[i].MessageID = m.ID
		ev, err := usage.ParseEvent([]byte(m.Body))
		if err == nil {
			err = ev.CheckQueued()
		}
		if err != nil {
			results[i].Outcome = usage.Outcome{Status: usage.Rejected, Err: err}
			continue
		}
		results[i].Event = ev
		g := byScope[ev.Scope()]
		if g == nil {
			g = &scopeGroup{scope: ev.Scope()}
			byScope[g.scope] = g
			groups = append(groups, g)
		}
		g.index = append(g.index, i)
		g.records = append(g.records, usage.Record{Event: ev, MessageID: m.EventID(), SentAt: m.SentAt,
			Redelivered: m.ReceiveCount > 1 || m.OriginalID != ""})
	}
	return groups
}

// apply decides and writes one scope's records, unless the invocation is
// about to end, and sets their results.
func (p *Processor) apply(ctx context.Context, g *scopeGroup, msgs []pipeline.Message, results []pipeline.Result) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	var outcomes []usage.Outcome
	if d, ok := ctx.Deadline(); ok && time.Until(d) < cmpOr(p.DeadlineMargin, DefaultDeadlineMargin) {
		outcomes = All(g.records, usage.Retry, ErrDeadline)
	} else {
		outcomes = p.update(ctx, g, now)
	}
	for j, i := range g.index {
		results[i].Outcome = outcomes[j]
		if errors.Is(outcomes[j].Err, usage.ErrTargetPending) {
			results[i].RedeliverAfter = pipeline.WaitDelay(msgs[i].SentAt, now(), p.TargetWait)
		}
	}
}

// update decides a group: a team together, a scope the Processor
// observed from that observation, any other as Update does.
func (p *Processor) update(ctx context.Context, g *scopeGroup, now func() time.Time) []usage.Outcome {
	rules := func() usage.Rules { return usage.Rules{Now: now(), TargetWait: p.TargetWait, Notify: p.Notify} }
	decide := func(st usage.State, r []usage.Record) usage.Plan { return rules().Plan(st, r) }
	t, _ := p.Store.(Teamer)
	switch {
	case t != nil && len(g.observed) > 1:
		team := func(m map[usage.Scope]usage.State, pools usage.State, r []usage.Record) usage.TeamPlan {
			return rules().PlanTeam(m, pools, r)
		}
		return t.UpdateTeam(ctx, g.observed, g.records, team, decide)
	case t != nil && len(g.observed) == 1:
		return t.UpdateObserved(ctx, g.scope, g.observed[g.scope], g.records, decide)
	}
	return p.Store.Update(ctx, g.scope, g.records, decide)
}

// cmpOr is v, or def when v is not positive.
func cmpOr[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
