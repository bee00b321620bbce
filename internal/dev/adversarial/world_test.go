package adversarial

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/pipeline"
	"github.com/usage-event-service/usage-event-service/usage"
)

const entKey = "k" // every scenario's users share one entitlement key

// maxRounds bounds the deliveries of one message: faults stop after the
// second, so a message still RETRY after this many is RETRY forever.
const maxRounds = 8

var notifyConfig = &usage.Notify{Thresholds: []usage.Decimal{usage.MustDecimal("80"), usage.MustDecimal("100")}, LimitRejected: true, OverageStarted: true}

// proc is one process of the service: its own Store (so its own cache),
// a Processor for queued batches and an Engine for synchronous requests.
type proc struct {
	name   string
	client *faultClient
	store  *dynamodb.Store
	queue  *metering.Processor
	engine *metering.Decisions
}

// world is one scenario: two tables of its own in DynamoDB Local, a
// controllable clock, the processes, the faults and the oracle.
type world struct {
	// order is the message IDs of queued records in the order the
	// processor handed them to the writer in this delivery round (a
	// team's in message order): the serial order the oracle follows.
	order []string

	t           testing.TB
	seed        uint64
	ctx         context.Context
	rng         *rand.Rand
	real        *awsdynamodb.Client
	entTable    string
	ledgerTable string
	now         time.Time
	procs       []*proc
	oracle      *oracle
	users       []string
	poolIDs     []string // the pools the scenario checks (oracle_pools_test.go)
	pooled      bool     // a scenario with pools (generator_pools_test.go)

	faults   faultPlan
	faultsOn bool // within a step, while rounds may fault
	inGap    bool
	inUpdate bool // within a Store.Update (or a sweep)
	gapDone  bool
	// gap is the step's gap action, if any: run inside the first call of
	// the step that can make a decision final, so it commits before
	// anything of the step; it tells the oracle at once.
	gap  func(context.Context)
	lost []lostTx

	current          *proc   // the process of the step's call
	stepItems        []*item // the items it delivers
	step             int
	events           int
	kinds            map[string]int
	outcomes         map[string]int
	opOutcomes       map[string]int                               // "grant: APPLIED", "void: REJECTED GRANT_NOT_FOUND", ...
	oddGrants        map[string]types.AttributeValue              // grants as they were before access-service wrote an odd value (nil: absent)
	grantHeavy       bool                                         // the scenario sends grants in bursts
	day              string                                       // the UTC day of the clock at the last clockMoved
	script           []func()                                     // the story being played: one action a step
	granted          bool                                         // a grant was applied in this step
	sent             []*item                                      // queued messages sent, for redeliveries
	deleted          map[string]bool                              // users whose entitlement access-service deleted (never recreated)
	accessEdited     bool                                         // access-service wrote an entitlement in this step
	thresholdsEdited bool                                         // its notifyThresholds
	avoid            map[int]bool                                 // review defects whose triggers the generator leaves out
	oddKeys          map[string]bool                              // ledger keys the suite made unreadable
	history          map[string][]map[string]types.AttributeValue // entitlement items after each step
	recent           map[string]int                               // ledger sort key -> step it appeared
	counts           map[string]int
	log              []string
	failures         []string
	msgSerial        int
}

// newWorld creates the scenario's tables and processes.
func newWorld(t testing.TB, seed uint64, nprocs int) *world {
	t.Helper()
	cfg := emulator.Stack(t)
	w := &world{
		t: t, seed: seed, ctx: context.Background(), rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		// DynamoDB Local omits the CRC32 header on error responses (the
		// expected conditional failures); the check would only log.
		real:     awsdynamodb.NewFromConfig(cfg, func(o *awsdynamodb.Options) { o.DisableValidateResponseChecksum = true }),
		entTable: emulator.UniqueName(t, "ent"), ledgerTable: emulator.UniqueName(t, "ledger"),
		now:    time.Date(2026, 12, 3, 21, 0, 0, 123_000_000, time.UTC),
		oracle: newOracle(), history: map[string][]map[string]types.AttributeValue{},
		recent: map[string]int{}, counts: map[string]int{}, kinds: map[string]int{}, outcomes: map[string]int{}, opOutcomes: map[string]int{},
		deleted: map[string]bool{}, oddKeys: map[string]bool{}, oddGrants: map[string]types.AttributeValue{},
	}
	w.day = periodOf("DAILY", w.now)
	if _, err := dynamodb.CreateEntitlementsTable(w.ctx, w.real, w.entTable, dynamodb.DefaultEntitlementKeys); err != nil {
		t.Fatal(err)
	}
	if _, err := dynamodb.CreateLedgerTable(w.ctx, w.real, w.ledgerTable); err != nil {
		t.Fatal(err)
	}
	for i := range nprocs {
		w.procs = append(w.procs, w.newProc(fmt.Sprintf("P%d", i)))
	}
	return w
}

func (w *world) newProc(name string) *proc {
	c := &faultClient{w: w, real: w.real}
	p := &proc{name: name, client: c}
	w.restart(p)
	return p
}

// restart gives a process a fresh Store: an empty cache, as after a
// restart.
func (w *world) restart(p *proc) {
	clock := func() time.Time { return w.now }
	p.store = dynamodb.NewStore(p.client, dynamodb.Config{EntitlementsTable: w.entTable, LedgerTable: w.ledgerTable, Now: clock})
	hooked := hookedStore{w: w, Writer: metering.Writer{Store: p.store}}
	p.queue = &metering.Processor{Store: hooked, Now: clock, Parallel: 1, Notify: notifyConfig}
	p.engine = &metering.Decisions{Store: hooked, Now: clock, Notify: notifyConfig}
}

// hookedStore tells the fault client when a call is made within
// Writer.Update, where a decision is made final.
type hookedStore struct {
	w *world
	metering.Writer
}

// decides notes the order in which the processor hands records over.
func (h hookedStore) decides(records []usage.Record) {
	for _, r := range records {
		h.w.order = append(h.w.order, r.MessageID)
	}
}

func (h hookedStore) Update(ctx context.Context, scope usage.Scope, records []usage.Record, decide usage.Decide) []usage.Outcome {
	h.decides(records)
	was := h.w.inUpdate
	h.w.inUpdate = true
	defer func() { h.w.inUpdate = was }()
	return h.Writer.Update(ctx, scope, records, decide)
}

// UpdateObserved and UpdateTeam are the Processor's other ways into the
// writer (a batch's scopes of one key observed first; a pool's members
// decided as a team): hooked alike, so the other writer acts there too.
func (h hookedStore) UpdateObserved(ctx context.Context, scope usage.Scope, st usage.State, records []usage.Record, decide usage.Decide) []usage.Outcome {
	h.decides(records)
	was := h.w.inUpdate
	h.w.inUpdate = true
	defer func() { h.w.inUpdate = was }()
	return h.Writer.UpdateObserved(ctx, scope, st, records, decide)
}

func (h hookedStore) UpdateTeam(ctx context.Context, members map[usage.Scope]usage.State, records []usage.Record, team usage.DecideTeam, decide usage.Decide) []usage.Outcome {
	h.w.oracle.cover["pool: members of one pool decided as a team"]++
	h.decides(records)
	was := h.w.inUpdate
	h.w.inUpdate = true
	defer func() { h.w.inUpdate = was }()
	return h.Writer.UpdateTeam(ctx, members, records, team, decide)
}

func (w *world) count(k faultKind) { w.counts[string(k)]++ }

func (w *world) logf(format string, args ...any) {
	w.log = append(w.log, fmt.Sprintf("#%d %s ", w.step, w.now.Format("15:04:05.000000"))+fmt.Sprintf(format, args...))
}

// fail records an invariant broken at this step; the scenario stops at
// the end of the step.
func (w *world) fail(format string, args ...any) {
	msg := fmt.Sprintf("step %d: ", w.step) + fmt.Sprintf(format, args...)
	w.failures = append(w.failures, msg)
	w.log = append(w.log, "   !! "+msg)
}

// ---- Keys and raw access (access-service, and the suite's own reads) ----

func entItemKey(user string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "USER#" + user}, "sk": &types.AttributeValueMemberS{Value: "ENTITLEMENT#" + entKey},
	}
}

func scopeOf(user string) usage.Scope { return usage.Scope{UserID: user, EntitlementKey: entKey} }

func ledgerSK(user, key string) string {
	_, sk := dynamodb.LedgerKey(scopeOf(user), key)
	return sk
}

// staleEntitlement is an older snapshot of an entitlement item (1 to 3
// steps back), for an eventually consistent read.
func (w *world) staleEntitlement(key map[string]types.AttributeValue) (map[string]types.AttributeValue, bool) {
	pk, _ := key["pk"].(*types.AttributeValueMemberS)
	if pk == nil {
		return nil, false
	}
	name := strings.TrimPrefix(pk.Value, "USER#") // a pool's is its oracle scope's name, POOL#<id>
	h := w.history[name]
	if len(h) < 2 {
		return nil, false
	}
	back := 1 + w.rng.IntN(min(3, len(h)-1))
	old := h[len(h)-1-back]
	if w.avoid[1] && !sameSettings(old, h[len(h)-1]) || w.avoid[2] && !reflect.DeepEqual(old[usage.AttrNotifyThresholds], h[len(h)-1][usage.AttrNotifyThresholds]) {
		return nil, false // an old item a process could take as final (defects 1, 2)
	}
	if w.avoid[18] && !reflect.DeepEqual(old[usage.AttrGrantsVersion], h[len(h)-1][usage.AttrGrantsVersion]) {
		return nil, false // grants a process has not seen (defect 18)
	}
	if w.avoid[11] && !reflect.DeepEqual(old["used"], h[len(h)-1]["used"]) {
		return nil, false // an older used a reset's rollover could rest on (defect 11)
	}
	if w.avoid[22] && !reflect.DeepEqual(old[usage.AttrOverageUsed], h[len(h)-1][usage.AttrOverageUsed]) {
		return nil, false // an older overageUsed a reset could leave standing (defect 22)
	}
	if w.avoid[15] && w.oracle.scope(name).ent.malformed() && !reflect.DeepEqual(old, h[len(h)-1]) {
		return nil, false // readable attributes since written odd (defect 15)
	}
	return old, true
}

func (w *world) recentLedgerKey(item map[string]types.AttributeValue) bool {
	sk, _ := item["sk"].(*types.AttributeValueMemberS)
	if sk == nil {
		return false
	}
	at, ok := w.recent[sk.Value]
	return ok && at >= w.step-2
}

// ---- Events ----

// item is one event on its way: queued (a message, redelivered while
// RETRY) or synchronous (a request, repeated while RETRY).
type item struct {
	user string
	e    ev
	sync bool
	id   string // message ID
	recv int
}

func (w *world) newItem(user string, e ev, sync bool) *item {
	w.msgSerial++
	it := &item{user: user, e: e, sync: sync, id: fmt.Sprintf("m%d", w.msgSerial)}
	switch {
	case e.op == "grant":
		it.e.key = e.grantID // the grant's ID is its dedup key
	case it.e.key == "" && (e.op == "consume" || e.op == "refund") && !sync:
		it.e.key = it.id // no idempotencyKey: the message ID is the dedup key
	case e.op == "commit" || e.op == "release" || e.op == "void":
		it.e.key = ""
	}
	return it
}

func (it *item) body() string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"userId":%q,"entitlementKey":%q`, it.user, entKey)
	if it.e.op != "consume" {
		fmt.Fprintf(&b, `,"operation":%q`, it.e.op)
	}
	if it.e.amount != "" {
		fmt.Fprintf(&b, `,"amount":%s`, it.e.amount)
	}
	if it.e.grantID != "" {
		fmt.Fprintf(&b, `,"grantId":%q`, it.e.grantID)
	}
	if it.e.expiresAt != nil {
		fmt.Fprintf(&b, `,"expiresAt":%q`, it.e.expiresAt.In(time.FixedZone("", it.e.zone*60)).Format(time.RFC3339Nano))
	}
	if it.e.priority != nil {
		fmt.Fprintf(&b, `,"priority":%d`, *it.e.priority)
	}
	if it.e.key != "" && it.e.key != it.id && (it.e.op != "grant" || it.e.withKey) {
		fmt.Fprintf(&b, `,"idempotencyKey":%q`, it.e.key)
	}
	if it.e.refundOf != "" {
		fmt.Fprintf(&b, `,"refundOf":%q`, it.e.refundOf)
	}
	if it.e.holdID != "" {
		fmt.Fprintf(&b, `,"holdId":%q`, it.e.holdID)
	}
	if it.e.seconds != 0 {
		fmt.Fprintf(&b, `,"holdSeconds":%d`, it.e.seconds)
	}
	return b.String() + "}"
}

func (it *item) String() string {
	return fmt.Sprintf("%s%s(%s)", map[bool]string{true: "sync:", false: ""}[it.sync], it.e.op, it.body())
}

// inLost: the item's own ledger key (or its hold's) was in a transaction
// that committed while its answer was lost.
func (w *world) inLost(it *item) bool {
	key := it.e.key
	switch it.e.op {
	case "commit", "release":
		key = it.e.holdID
	case "void":
		key = it.e.grantID
	}
	if key == "" {
		return false
	}
	sk := ledgerSK(it.user, key)
	for _, tx := range w.lost {
		if tx.keys[sk] {
			return true
		}
	}
	return false
}

// run delivers items once through p and returns what the service said
// of each.
func (w *world) run(p *proc, items []*item) []outcome {
	out := make([]outcome, len(items))
	ctx, cancel := context.WithTimeout(w.ctx, 60*time.Second)
	defer cancel()
	var queued []int
	var msgs []pipeline.Message
	for i, it := range items {
		it.recv++
		if it.sync {
			a := p.engine.Handle(ctx, []byte(it.body()))
			out[i] = outcome{Status: string(a.Status), Reason: string(a.Reason), shown: shownOf(a)}
			if a.Status == decision.Retry {
				out[i].why = a.Message
			}
			continue
		}
		queued = append(queued, i)
		msgs = append(msgs, pipeline.Message{ID: it.id, Body: it.body(), ReceiveCount: it.recv, SentAt: w.now.Add(-time.Second)})
	}
	if len(msgs) > 0 {
		for j, r := range p.queue.Handle(ctx, msgs) {
			out[queued[j]] = outcome{Status: string(r.Status), Reason: string(r.Reason())}
			if r.Status == usage.Retry && r.Err != nil {
				out[queued[j]].why = r.Err.Error()
			}
		}
	}
	return out
}

// match compares the service's answer with the oracle's.
func match(want, got outcome) bool {
	if want.Reason == reasonUnreadableEntry {
		return acceptUnreadable(got)
	}
	return want.Status == got.Status && want.Reason == got.Reason
}

// deliver runs one step's items through p until none is RETRY, with
// faults in the first two rounds and the step's gap action before its
// first final call; the oracle follows in commit order.
func (w *world) deliver(p *proc, items []*item, faults bool) {
	w.current = p
	pending := w.unstuck(items)
	for round := 1; len(pending) > 0; round++ {
		if round > maxRounds {
			for _, it := range pending {
				w.fail("RETRY forever: %s still RETRY after %d deliveries (no faults after the 2nd)", it, maxRounds)
			}
			return
		}
		w.faultsOn = faults && round <= 2
		w.gapDone = round > 1
		w.lost, w.stepItems, w.order = nil, pending, nil
		got := w.run(p, pending)
		w.faultsOn = false
		var next []*item
		for _, i := range serialOrder(pending, w.order) {
			it := pending[i]
			if got[i].Status == "RETRY" {
				if w.inLost(it) {
					o := w.oracle.apply(it.user, it.e, w.now)
					w.logf("%s %s: RETRY (answer lost; committed as %s)", p.name, it, o)
				} else {
					w.logf("%s %s: %s", p.name, it, got[i])
				}
				next = append(next, it)
				continue
			}
			want := w.oracle.apply(it.user, it.e, w.now)
			w.granted = w.granted || it.e.op == "grant" && want == applied
			w.events++
			w.countOutcome(it, got[i])
			w.logf("%s %s: %s (oracle %s)", p.name, it, got[i], want)
			if !match(want, got[i]) {
				w.fail("%s %s (delivery %d): service %s, oracle %s", p.name, it, it.recv, got[i], want)
			} else if it.sync && want.shown != w.shownFor(it, got[i].shown) {
				w.fail("%s %s (delivery %d): the answer shows %q, oracle %q", p.name, it, it.recv, got[i].shown, want.shown)
			}
		}
		w.oracle.closeRound()
		pending = next
	}
}

// serialOrder is the order in which one run of items is decided and
// written (the oracle must apply them so, now that members of a pool
// share it): the synchronous requests one by one, then the queued
// records in the order the processor handed them to the writer (handed:
// their message IDs; metering.Processor with Parallel 1 hands a team of
// a pool's members over in message order, each other user's group in
// message order), then any it never handed over (rejected as it read
// them), one user's group after another in the order of its first
// message.
func serialOrder(items []*item, handed []string) []int {
	var order []int
	for i, it := range items {
		if it.sync {
			order = append(order, i)
		}
	}
	seen := map[int]bool{}
	for _, id := range handed {
		for i, it := range items {
			if !it.sync && !seen[i] && it.id == id {
				seen[i] = true
				order = append(order, i)
				break
			}
		}
	}
	var users []string
	for _, it := range items {
		if !it.sync && !slices.Contains(users, it.user) {
			users = append(users, it.user)
		}
	}
	for _, u := range users {
		for i, it := range items {
			if !it.sync && it.user == u && !seen[i] {
				order = append(order, i)
			}
		}
	}
	return order
}

// shownOf is what an answer shows of the buckets (see outcome.shown).
func shownOf(a decision.Answer) string {
	conv := func(ds []decision.Draw) []oDraw {
		var out []oDraw
		for _, d := range ds {
			out = append(out, oDraw{bucket: string(d.Bucket), grantID: d.GrantID, amount: usage.MustDecimal(string(d.Amount)), lapsed: d.Lapsed})
		}
		return out
	}
	var parts []string
	if len(a.Draws) > 0 {
		parts = append(parts, "draws "+drawsString(conv(a.Draws)))
	}
	if len(a.Returned) > 0 {
		parts = append(parts, "returned "+drawsString(conv(a.Returned)))
	}
	if a.Pool != nil && len(a.Pool.Draws) > 0 {
		parts = append(parts, "pool draws "+drawsString(conv(a.Pool.Draws)))
	}
	if a.Pool != nil && len(a.Pool.Returned) > 0 {
		parts = append(parts, "pool returned "+drawsString(conv(a.Pool.Returned)))
	}
	return strings.Join(parts, " ")
}

// shownFor is shown, less with -avoid=20 the draws a commit's answer
// shows (defect 20).
func (w *world) shownFor(it *item, shown string) string {
	if w.avoid[20] && it.e.op == "commit" && strings.HasPrefix(shown, "draws ") {
		return ""
	}
	return shown
}

// countOutcome counts a decided event's outcome, overall and by
// operation.
func (w *world) countOutcome(it *item, got outcome) {
	o := strings.TrimSpace(got.Status + " " + got.Reason)
	w.outcomes[o]++
	op := it.e.op
	if it.sync {
		op = "sync " + op
	}
	w.opOutcomes[op+": "+o]++
}

// ---- Access-service ----

func (w *world) access(user string, update string, names map[string]string, values map[string]types.AttributeValue) {
	w.accessItem(entItemKey(user), update, names, values)
}

// accessItem is access-service's update of an entitlement item (a
// user's or a pool's).
func (w *world) accessItem(key map[string]types.AttributeValue, update string, names map[string]string, values map[string]types.AttributeValue) {
	w.accessEdited = true
	_, err := w.real.UpdateItem(w.ctx, &awsdynamodb.UpdateItemInput{
		TableName: aws.String(w.entTable), Key: key, UpdateExpression: aws.String(update),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	})
	if err != nil {
		w.t.Fatalf("access-service update %s: %v", update, err)
	}
}

func n(s string) *types.AttributeValueMemberN { return &types.AttributeValueMemberN{Value: s} }

// create writes a new entitlement as access-service does.
func (w *world) create(user, limit, resetPeriod string) {
	w.createWith(user, limit, resetPeriod, "", "")
}

// createWith also sets overageLimit and rolloverMax ("": absent).
func (w *world) createWith(user, limit, resetPeriod, overageLimit, rolloverMax string) {
	w.createMember(user, limit, resetPeriod, overageLimit, rolloverMax, "")
}

// createMember also names a pool ("": none); limit is then the member's
// cap.
func (w *world) createMember(user, limit, resetPeriod, overageLimit, rolloverMax, pool string) {
	item := entItemKey(user)
	if pool != "" {
		item[usage.AttrPool] = &types.AttributeValueMemberS{Value: pool}
	}
	s := w.putFresh(item, user, limit, resetPeriod, overageLimit, rolloverMax)
	if pool != "" {
		s.ent.pool = attr{kind: "S", str: pool}
	}
	w.logf("access: create %s limit=%s %s overageLimit=%s rolloverMax=%s pool=%s", user, limit, resetPeriod, overageLimit, rolloverMax, pool)
}

// putFresh writes item (its key, and what the caller put on it) as a
// fresh entitlement, used 0 in the current period, as access-service
// would, and makes it the oracle's scope name's ("" arguments: absent).
func (w *world) putFresh(item map[string]types.AttributeValue, name, limit, resetPeriod, overageLimit, rolloverMax string) *oScope {
	if limit != "" {
		item["limit"] = n(limit)
	}
	if overageLimit != "" {
		item[usage.AttrOverageLimit] = n(overageLimit)
	}
	if rolloverMax != "" {
		item[usage.AttrRolloverMax] = n(rolloverMax)
	}
	item["used"] = n("0")
	item["resetPeriod"] = &types.AttributeValueMemberS{Value: resetPeriod}
	period := periodOf(resetPeriod, w.now)
	if period != "" {
		item["periodStart"] = &types.AttributeValueMemberS{Value: period}
	}
	if _, err := w.real.PutItem(w.ctx, &awsdynamodb.PutItemInput{TableName: aws.String(w.entTable), Item: item}); err != nil {
		w.t.Fatal(err)
	}
	w.accessEdited = true
	s := w.oracle.scope(name)
	s.ent = oEnt{exists: true, used: num(usage.Decimal{}), resetPeriod: resetPeriod, periodStart: period, stored: period}
	if limit != "" {
		s.ent.limit = num(usage.MustDecimal(limit))
	}
	if overageLimit != "" {
		s.ent.overageLimit = num(usage.MustDecimal(overageLimit))
	}
	if rolloverMax != "" {
		s.ent.rolloverMax = num(usage.MustDecimal(rolloverMax))
	}
	return s
}

// setBalanceAttr sets overageLimit or rolloverMax ("": removes it; "S":
// a string, which makes the entitlement unusable).
func (w *world) setBalanceAttr(user, name, value string) {
	s := w.oracle.scope(user)
	s.lazyReset(w.now)
	a := &s.ent.overageLimit
	if name == usage.AttrRolloverMax {
		a = &s.ent.rolloverMax
	}
	switch value {
	case "":
		w.access(user, "REMOVE #a", map[string]string{"#a": name}, nil)
		*a = attr{}
	case "S":
		w.access(user, "SET #a = :a", map[string]string{"#a": name}, map[string]types.AttributeValue{":a": &types.AttributeValueMemberS{Value: "5"}})
		*a = attr{kind: "S", str: "5"}
	default:
		w.access(user, "SET #a = :a", map[string]string{"#a": name}, map[string]types.AttributeValue{":a": n(value)})
		*a = num(usage.MustDecimal(value))
	}
	if name == usage.AttrOverageLimit {
		s.overageEdited, s.overageEditedPeriod = true, periodOf(s.ent.resetPeriod, w.now)
	}
	w.logf("access: %s %s=%q", user, name, value)
}

// setOddGrants writes grants as a value metering cannot read (a string,
// or a grant without remaining): the entitlement is INVALID_ENTITLEMENT
// until repairGrants writes back what was there.
func (w *world) setOddGrants(user string) {
	odd := oddGrantsString
	if w.chance(0.5) {
		odd = oddGrantsMap
	}
	w.setGrantsTo(user, odd)
}

// Odd grants values: not a map, or a grant without remaining.
var (
	oddGrantsString types.AttributeValue = &types.AttributeValueMemberS{Value: "50 tutor sessions"}
	oddGrantsMap    types.AttributeValue = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"topup": &types.AttributeValueMemberM{
		Value: map[string]types.AttributeValue{"amount": n("5"), "priority": n("100"), "grantedAt": &types.AttributeValueMemberS{Value: "2026-12-01T00:00:00Z"}}}}}
)

func (w *world) setGrantsTo(user string, odd types.AttributeValue) {
	res, err := w.real.GetItem(w.ctx, &awsdynamodb.GetItemInput{TableName: aws.String(w.entTable), Key: entItemKey(user), ConsistentRead: aws.Bool(true)})
	if err != nil {
		w.t.Fatal(err)
	}
	w.oddGrants[user] = res.Item[usage.AttrGrants]
	w.access(user, "SET #g = :g", map[string]string{"#g": usage.AttrGrants}, map[string]types.AttributeValue{":g": odd})
	s := w.oracle.scope(user)
	s.lazyReset(w.now)
	s.ent.grantsOdd = true
	w.logf("access: %s grants made unreadable", user)
}

// restartFor15: with -avoid=15, no process keeps an item from before an
// attribute was written odd (defect 15).
func (w *world) restartFor15() {
	if !w.avoid[15] || w.inGap {
		return
	}
	for _, p := range w.procs {
		w.restart(p)
	}
	w.logf("all processes restarted (-avoid 15)")
}

// repairGrants writes back the grants an odd value replaced.
func (w *world) repairGrants(user string) {
	if old := w.oddGrants[user]; old != nil {
		w.access(user, "SET #g = :g", map[string]string{"#g": usage.AttrGrants}, map[string]types.AttributeValue{":g": old})
	} else {
		w.access(user, "REMOVE #g", map[string]string{"#g": usage.AttrGrants}, nil)
	}
	delete(w.oddGrants, user)
	s := w.oracle.scope(user)
	s.ent.grantsOdd = false
	s.lazyReset(w.now)
	w.logf("access: %s grants written back", user)
}

func (w *world) setLimit(user, limit string) {
	w.access(user, "SET #l = :l", map[string]string{"#l": "limit"}, map[string]types.AttributeValue{":l": n(limit)})
	s := w.oracle.scope(user)
	s.ent.limit = num(usage.MustDecimal(limit))
	w.markEdited(s)
	w.logf("access: %s limit=%s", user, limit)
}

func (w *world) setUsed(user, used string) {
	w.access(user, "SET #u = :u", map[string]string{"#u": "used"}, map[string]types.AttributeValue{":u": n(used)})
	s := w.oracle.scope(user)
	s.lazyReset(w.now)
	s.ent.used = num(usage.MustDecimal(used))
	s.lazyReset(w.now) // an unusable item (used a string) may only now start its period
	if s.resetPending(w.now) {
		s.ent.used = num(usage.Decimal{}) // written into an ended period: the next write resets it
		s.ent.rollUsed = num(usage.MustDecimal(used))
		if w.avoid[11] && !w.inGap {
			for _, p := range w.procs {
				w.restart(p)
			}
			w.logf("all processes restarted (-avoid 11: used of the ended period changed)")
		}
	}
	w.markEdited(s)
	w.logf("access: %s used=%s", user, used)
}

func (w *world) markEdited(s *oScope) {
	s.lazyReset(w.now)
	s.edited, s.editedPeriod = true, periodOf(s.ent.resetPeriod, w.now)
}

// setThresholds writes notifyThresholds (nil list: remove it).
func (w *world) setThresholds(user string, ps []string) {
	s := w.oracle.scope(user)
	if ps == nil {
		w.thresholdsEdited = true
		w.access(user, "REMOVE #t", map[string]string{"#t": usage.AttrNotifyThresholds}, nil)
		s.ent.thresholds = attr{}
		w.logf("access: %s notifyThresholds removed", user)
		return
	}
	list := []types.AttributeValue{}
	a := attr{kind: "L"}
	for _, p := range ps {
		list = append(list, n(p))
		a.list = append(a.list, num(usage.MustDecimal(p)))
	}
	w.thresholdsEdited = true
	w.access(user, "SET #t = :t", map[string]string{"#t": usage.AttrNotifyThresholds}, map[string]types.AttributeValue{":t": &types.AttributeValueMemberL{Value: list}})
	s.ent.thresholds = a
	w.logf("access: %s notifyThresholds=%v", user, ps)
}

// setOdd writes a value the service cannot use: used as a string, or
// limit as a map.
func (w *world) setOdd(user, which string) {
	if which == "used" && w.avoid[15] && w.inGap {
		return // used written odd between a read and a write (defect 15)
	}
	defer w.restartFor15()
	s := w.oracle.scope(user)
	s.lazyReset(w.now)
	switch which {
	case "used":
		w.access(user, "SET #u = :u", map[string]string{"#u": "used"}, map[string]types.AttributeValue{":u": &types.AttributeValueMemberS{Value: "12"}})
		s.ent.used = attr{kind: "S", str: "12"}
	default:
		w.access(user, "SET #l = :l", map[string]string{"#l": "limit"}, map[string]types.AttributeValue{":l": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"v": n("10")}}})
		s.ent.limit = attr{kind: "M"}
	}
	w.markEdited(s)
	w.logf("access: %s %s made unreadable", user, which)
}

func (w *world) deleteEntitlement(user string) {
	if _, err := w.real.DeleteItem(w.ctx, &awsdynamodb.DeleteItemInput{TableName: aws.String(w.entTable), Key: entItemKey(user)}); err != nil {
		w.t.Fatal(err)
	}
	w.accessEdited = true
	w.oracle.scope(user).ent = oEnt{}
	w.logf("access: %s deleted", user)
}

// oddLedger writes a ledger entry the service cannot read (defect 7):
// a reserve without holdState, or a consume whose refunded is a string.
func (w *world) oddReserve(user, key, amount string) {
	pk, sk := dynamodb.LedgerKey(scopeOf(user), key)
	s := w.oracle.scope(user)
	s.lazyReset(w.now)
	item := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk},
		"userId": &types.AttributeValueMemberS{Value: user}, "entitlementKey": &types.AttributeValueMemberS{Value: entKey},
		"dedupKey": &types.AttributeValueMemberS{Value: key}, "keySource": &types.AttributeValueMemberS{Value: "idempotencyKey"},
		"operation": &types.AttributeValueMemberS{Value: "reserve"}, "amount": n(amount),
		"appliedAt": &types.AttributeValueMemberS{Value: w.now.Format(time.RFC3339Nano)},
	}
	if p := s.period(); p != "" {
		item["periodStart"] = &types.AttributeValueMemberS{Value: p}
	}
	if _, err := w.real.PutItem(w.ctx, &awsdynamodb.PutItemInput{TableName: aws.String(w.ledgerTable), Item: item}); err != nil {
		w.t.Fatal(err)
	}
	s.ledger[key] = &oEntry{op: "reserve", amount: usage.MustDecimal(amount), periodStart: s.period(), unreadable: true}
	w.oddKeys[key] = true
	w.logf("ledger: %s reserve %s written without holdState", user, key)
}

func (w *world) oddRefunded(user, key string) {
	pk, sk := dynamodb.LedgerKey(scopeOf(user), key)
	_, err := w.real.UpdateItem(w.ctx, &awsdynamodb.UpdateItemInput{
		TableName: aws.String(w.ledgerTable),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk},
		},
		UpdateExpression:          aws.String("SET #r = :r"),
		ExpressionAttributeNames:  map[string]string{"#r": "refunded"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":r": &types.AttributeValueMemberS{Value: "0"}},
	})
	if err != nil {
		w.t.Fatal(err)
	}
	w.oracle.scope(user).ledger[key].unreadable = true
	w.oddKeys[key] = true
	w.logf("ledger: %s consume %s refunded written as a string", user, key)
}

// ---- Sweeps ----

// sweep runs the hold sweep of p as the worker does (page after page
// until a page releases nothing), repeating while a page failed, with
// faults in its first two runs.
func (w *world) sweep(p *proc, limit int, faults bool) {
	w.current = p
	if w.sweepStuck() {
		w.logf("%s sweep skipped (-avoid 14: a due hold gives back to an expired grant still on the item)", p.name)
		return
	}
	for run := 1; ; run++ {
		w.faultsOn = faults && run <= 2
		w.gapDone = run > 1
		w.inUpdate = true
		sw, err := metering.SweepExpiredHolds(w.ctx, metering.Writer{Store: p.store}, p.store, w.now, limit, usage.Rules{Now: w.now, Notify: notifyConfig}.Plan)
		w.faultsOn, w.inUpdate = false, false
		w.logf("%s sweep(limit %d): found %d expired %d set aside %d failed %d err %v", p.name, limit, sw.Found, sw.Expired, sw.Deferred, sw.Failed, err)
		// As the worker does: a page at a time until a page settles
		// nothing (holds set aside leave the index for an hour). The
		// worker's pages are 100 holds; ours are as small as 1, which one
		// hold settled by someone else meanwhile fills: a full page that
		// settled nothing does not end the sweep here (seed 1545 of a run
		// from 301 left a due hold for the next sweep).
		if err == nil && sw.Failed == 0 && sw.Expired == 0 && sw.Deferred == 0 && sw.Found < limit {
			break
		}
		if run >= maxRounds {
			w.fail("sweep still failing after %d runs (no faults after the 2nd): %+v %v", run, sw, err)
			break
		}
	}
	w.oracle.sweep(w.now)
	w.oracle.closeRound()
}

// ---- Invariants ----

// check compares DynamoDB with the oracle for every user: the item, the
// ledger, the notifications; and the oracle with itself (used is the
// ledger's sum, under the limit) where access-service has not edited.
func (w *world) check() {
	for _, user := range w.users {
		w.checkUser(user)
	}
	for _, id := range w.poolIDs {
		w.checkPool(id)
	}
}

func (w *world) checkUser(user string) {
	s := w.oracle.scope(user)
	s.lazyReset(w.now)
	res, err := w.real.GetItem(w.ctx, &awsdynamodb.GetItemInput{TableName: aws.String(w.entTable), Key: entItemKey(user), ConsistentRead: aws.Bool(true)})
	if err != nil {
		w.t.Fatal(err)
	}
	w.history[user] = append(w.history[user], res.Item)
	if (res.Item != nil) != s.ent.exists {
		w.fail("%s: item exists %v, oracle %v", user, res.Item != nil, s.ent.exists)
		return
	}
	if s.ent.exists && !s.ent.malformed() {
		real := usage.Decimal{}
		if u, ok := res.Item["used"].(*types.AttributeValueMemberN); ok {
			real = usage.MustDecimal(u.Value)
		}
		if s.ent.resetPeriod == "DAILY" {
			ps, _ := res.Item["periodStart"].(*types.AttributeValueMemberS)
			if ps == nil || ps.Value < periodOf("DAILY", w.now) {
				real = usage.Decimal{}
			}
		}
		if real.Cmp(s.ent.usedNum()) != 0 {
			w.fail("%s: used %s in DynamoDB, oracle %s", user, real, s.ent.usedNum())
		}
		if !s.edited {
			if sum := s.ledgerSum(); sum.Cmp(s.ent.usedNum()) != 0 {
				w.fail("%s: oracle used %s is not its ledger's sum %s (suite bug)", user, s.ent.usedNum(), sum)
			}
			if l := s.ent.limitNum(); l != nil && real.Cmp(*l) > 0 {
				w.fail("%s: used %s above the limit %s", user, real, *l)
			}
		}
		w.checkBalances(user, s, res.Item)
	}
	w.checkLedger(user, s)
	w.checkNotes(user, scopeOf(user), s)
}

func (w *world) checkLedger(user string, s *oScope) {
	entries, err := dynamodb.ListLedger(w.ctx, w.real, w.ledgerTable, scopeOf(user))
	if err != nil {
		w.t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		seen[e.DedupKey] = true
		sk := ledgerSK(user, e.DedupKey)
		if _, ok := w.recent[sk]; !ok {
			w.recent[sk] = w.step
		}
		o := s.ledger[e.DedupKey]
		if o == nil {
			w.fail("%s: ledger entry %s (%s %s) the oracle never applied", user, e.DedupKey, e.Operation, e.Amount)
			continue
		}
		if o.unreadable {
			continue
		}
		op := string(e.Operation)
		if op == "" {
			op = "consume"
		}
		var diffs []string
		if op != o.op {
			diffs = append(diffs, fmt.Sprintf("operation %s/%s", op, o.op))
		}
		if e.Amount.Cmp(o.amount) != 0 {
			diffs = append(diffs, fmt.Sprintf("amount %s/%s", e.Amount, o.amount))
		}
		if o.op == "consume" && e.Refunded.Cmp(o.refunded) != 0 {
			diffs = append(diffs, fmt.Sprintf("refunded %s/%s", e.Refunded, o.refunded))
		}
		if o.op == "reserve" {
			if e.HoldState != o.holdState {
				diffs = append(diffs, fmt.Sprintf("holdState %s/%s", e.HoldState, o.holdState))
			} else if o.holdState == "committed" && (e.Actual == nil || e.Actual.Cmp(o.actual) != 0) {
				diffs = append(diffs, fmt.Sprintf("actual %v/%s", e.Actual, o.actual))
			}
		}
		if e.PeriodStart != o.periodStart {
			diffs = append(diffs, fmt.Sprintf("periodStart %s/%s", e.PeriodStart, o.periodStart))
		}
		if got, want := drawsString(fromDraws(e.Draws)), drawsString(o.draws); got != want && o.op != "grant" {
			diffs = append(diffs, fmt.Sprintf("draws %s/%s", got, want))
		}
		if e.Pool != o.pool || e.PoolPeriodStart != o.poolPeriodStart {
			diffs = append(diffs, fmt.Sprintf("pool %q period %q / %q %q", e.Pool, e.PoolPeriodStart, o.pool, o.poolPeriodStart))
		}
		if got, want := drawsString(fromDraws(e.PoolDraws)), drawsString(o.poolDraws); got != want {
			diffs = append(diffs, fmt.Sprintf("poolDraws %s/%s", got, want))
		}
		if o.op == "grant" {
			if e.GrantState != o.grantState {
				diffs = append(diffs, fmt.Sprintf("grantState %s/%s", e.GrantState, o.grantState))
			}
			if e.Priority != o.priority {
				diffs = append(diffs, fmt.Sprintf("priority %d/%d", e.Priority, o.priority))
			}
			if !sameInstant(e.GrantExpiresAt, o.grantExpiresAt) {
				diffs = append(diffs, fmt.Sprintf("grantExpiresAt %v/%v", e.GrantExpiresAt, o.grantExpiresAt))
			}
			if (e.Voided == nil) != (o.voided == nil) || e.Voided != nil && e.Voided.Cmp(*o.voided) != 0 {
				diffs = append(diffs, fmt.Sprintf("voided %v/%v", e.Voided, o.voided))
			}
			// kept while it may count and a day beyond; for ever if it never expires
			switch x := o.grantExpiresAt; {
			case x == nil && !e.ExpiresAt.IsZero():
				diffs = append(diffs, fmt.Sprintf("expiresAt (TTL) %s for a grant that never expires", e.ExpiresAt))
			case x != nil && e.ExpiresAt.Before(x.Add(24*time.Hour).Truncate(time.Second)):
				diffs = append(diffs, fmt.Sprintf("expiresAt (TTL) %s before a day past the grant's expiry %s", e.ExpiresAt, x))
			}
		}
		if len(diffs) > 0 {
			w.fail("%s: ledger entry %s differs (service/oracle): %s", user, e.DedupKey, strings.Join(diffs, ", "))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.ledger)) {
		if !seen[k] {
			w.fail("%s: ledger entry %s (%s) missing from DynamoDB", user, k, s.ledger[k].op)
		}
	}
}

// checkNotes compares the notifications recorded under scope (a user's,
// or a pool's: those name the member and the pool) with the oracle's.
func (w *world) checkNotes(user string, scope usage.Scope, s *oScope) {
	notes, err := dynamodb.ListNotifications(w.ctx, w.real, w.ledgerTable, scope)
	if err != nil {
		w.t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, nt := range notes {
		key := nt.PeriodStart + "#" + nt.Type + "#-"
		if nt.ThresholdPercent != nil {
			key = nt.PeriodStart + "#" + nt.Type + "#" + nt.ThresholdPercent.String()
		}
		seen[key] = true
		o := s.notes[key]
		if o == nil {
			w.fail("%s: notification %s (used %s, event %s) the oracle does not expect", user, key, nt.Used, nt.EventID)
			continue
		}
		if nt.EventID != o.eventID || nt.Limit.Cmp(o.limit) != 0 {
			w.fail("%s: notification %s: event %s limit %s, oracle event %s limit %s", user, key, nt.EventID, nt.Limit, o.eventID, o.limit)
		}
		if scope.Pool && (nt.PoolID != scope.UserID || nt.UserID != o.member) {
			w.fail("%s: notification %s: poolId %q userId %q, oracle %q %q", user, key, nt.PoolID, nt.UserID, scope.UserID, o.member)
		}
		if !o.usedOK(nt.Used) && !(w.avoid[16] && o.typ == usage.NotifyOverageStarted) {
			w.fail("%s: notification %s: used %s, oracle %s (or, coalesced, a later value of the same write at or above %s: %v)", user, key, nt.Used, o.used, o.level, o.usedAlso)
		}
		if o.typ == usage.NotifyLimitRejected && (nt.Amount == nil || nt.Amount.Cmp(o.amount) != 0) {
			w.fail("%s: notification %s: amount %v, oracle %s", user, key, nt.Amount, o.amount)
		}
		if o.typ == usage.NotifyOverageStarted && !w.avoid[12] && (nt.OverageUsed == nil || nt.OverageUsed.Cmp(o.overage) != 0) {
			w.fail("%s: notification %s: overageUsed %v, oracle %s", user, key, nt.OverageUsed, o.overage)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.notes)) {
		if !seen[k] {
			w.fail("%s: notification %s (event %s, used %s) not recorded", user, k, s.notes[k].eventID, s.notes[k].used)
		}
	}
}

// usedOK: the used a notification carries. One at a time it is the
// usage right after the crossing event (or at the rejection); when the
// crossing event was coalesced with later ones, docs/notifications.md
// allows the value after them, which still is at or above the level.
func (n *oNote) usedOK(got usage.Decimal) bool {
	if got.Cmp(n.used) == 0 {
		return true
	}
	if n.typ != usage.NotifyThresholdReached || got.Cmp(n.level) < 0 {
		return false
	}
	return slices.ContainsFunc(n.usedAlso, func(d usage.Decimal) bool { return d.Cmp(got) == 0 })
}

// gapItem is a gap action: another process's operation, run with faults
// off while the step's call waits.
func (w *world) gapItem(p *proc, it *item) func(context.Context) {
	return func(context.Context) {
		w.logf("  gap: %s by %s", it, p.name)
		w.deliverQuiet(p, it)
	}
}

// deliverQuiet delivers one item without faults until it resolves, and
// compares it with the oracle.
func (w *world) deliverQuiet(p *proc, it *item) {
	if len(w.unstuck([]*item{it})) == 0 {
		return
	}
	for round := 1; round <= maxRounds; round++ {
		got := w.run(p, []*item{it})[0]
		if got.Status == "RETRY" {
			continue
		}
		want := w.oracle.apply(it.user, it.e, w.now)
		w.oracle.closeRound()
		w.granted = w.granted || it.e.op == "grant" && want == applied
		w.countOutcome(it, got)
		w.logf("  %s %s: %s (oracle %s)", p.name, it, got, want)
		if !match(want, got) {
			w.fail("%s %s (delivery %d): service %s, oracle %s", p.name, it, it.recv, got, want)
		} else if it.sync && want.shown != w.shownFor(it, got.shown) {
			w.fail("%s %s (delivery %d): the answer shows %q, oracle %q", p.name, it, it.recv, got.shown, want.shown)
		}
		return
	}
	w.fail("RETRY forever: %s still RETRY after %d deliveries without faults", it, maxRounds)
}

// sameSettings: two snapshots of an entitlement item agree on all but
// its usage (existence, limit, period settings, thresholds), and used is
// a number in both.
func sameSettings(a, b map[string]types.AttributeValue) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	for _, k := range []string{"limit", "resetPeriod", "resetAnchor", usage.AttrNotifyThresholds, usage.AttrOverageLimit, usage.AttrRolloverMax, usage.AttrGrants, usage.AttrPool} {
		if !reflect.DeepEqual(a[k], b[k]) {
			return false
		}
	}
	for _, it := range []map[string]types.AttributeValue{a, b} {
		if _, ok := it["used"].(*types.AttributeValueMemberS); ok {
			return false
		}
	}
	return true
}

// checkBalances compares the item's overageUsed and grants with the
// oracle's, and checks what the oracle says of them against its own
// ledger: the overage used is the current period's overage draws that
// stay drawn, each grant's remaining its amount less the draws from it
// that stay drawn.
func (w *world) checkBalances(user string, s *oScope, item map[string]types.AttributeValue) {
	current := true
	if s.ent.resetPeriod == "DAILY" {
		ps, _ := item["periodStart"].(*types.AttributeValueMemberS)
		current = ps != nil && ps.Value >= periodOf("DAILY", w.now)
	}
	overage := usage.Decimal{}
	if v, ok := item[usage.AttrOverageUsed].(*types.AttributeValueMemberN); ok && current {
		overage = usage.MustDecimal(v.Value)
	}
	if overage.Cmp(s.ent.overageUsed) != 0 {
		w.fail("%s: overageUsed %s in DynamoDB, oracle %s", user, overage, s.ent.overageUsed)
	}
	if sum := s.keptIn(bucketOverage, ""); sum.Cmp(s.ent.overageUsed) != 0 {
		w.fail("%s: oracle overageUsed %s is not its ledger's overage draws %s (suite bug)", user, s.ent.overageUsed, sum)
	}
	if l := s.ent.overageLimit; !s.overageEdited && (l.kind == "N" && overage.Cmp(l.num) > 0 || l.kind == "" && overage.Sign() > 0) {
		w.fail("%s: overageUsed %s beyond overageLimit %v", user, overage, l.num)
	}
	if s.ent.grantsOdd {
		return
	}
	stored, err := readGrants(item[usage.AttrGrants])
	if err != nil {
		w.fail("%s: grants on the item: %v", user, err)
		return
	}
	for _, id := range slices.Sorted(maps.Keys(stored)) {
		g, o := stored[id], s.ent.grants[id]
		state := "counting"
		if !g.activeAt(w.now) {
			state = "expired"
		}
		if o == nil {
			w.fail("%s: grant %s (%s, remaining %s) on the item, not in the oracle", user, id, state, g.remaining)
			continue
		}
		var diffs []string
		if g.amount.Cmp(o.amount) != 0 || g.remaining.Cmp(o.remaining) != 0 {
			diffs = append(diffs, fmt.Sprintf("amount/remaining %s/%s, oracle %s/%s", g.amount, g.remaining, o.amount, o.remaining))
		}
		if g.priority != o.priority || !g.grantedAt.Equal(o.grantedAt) || !sameInstant(g.expiresAt, o.expiresAt) {
			diffs = append(diffs, fmt.Sprintf("priority %d grantedAt %s expiresAt %v, oracle %d %s %v",
				g.priority, g.grantedAt.Format(time.RFC3339Nano), g.expiresAt, o.priority, o.grantedAt.Format(time.RFC3339Nano), o.expiresAt))
		}
		if len(diffs) > 0 {
			w.fail("%s: grant %s (%s) differs: %s", user, id, state, strings.Join(diffs, "; "))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.ent.grants)) {
		o := s.ent.grants[id]
		if _, ok := stored[id]; !ok {
			w.fail("%s: grant %s (remaining %s, counting %v) missing from the item", user, id, o.remaining, o.activeAt(w.now))
		}
		if !o.activeAt(w.now) {
			continue
		}
		if o.remaining.Sign() < 0 || o.remaining.Cmp(o.amount) > 0 {
			w.fail("%s: grant %s remaining %s outside 0..%s", user, id, o.remaining, o.amount)
		}
		if drawn := s.keptIn(bucketGrant, id); o.amount.Sub(o.remaining).Cmp(drawn) != 0 {
			w.fail("%s: oracle grant %s: amount %s - remaining %s is not its ledger's draws %s (suite bug)", user, id, o.amount, o.remaining, drawn)
		}
	}
}

// readGrants reads the grants map as stored (absent: none).
func readGrants(av types.AttributeValue) (map[string]*oGrant, error) {
	out := map[string]*oGrant{}
	if av == nil {
		return out, nil
	}
	m, ok := av.(*types.AttributeValueMemberM)
	if !ok {
		return nil, fmt.Errorf("not a map: %T", av)
	}
	for id, v := range m.Value {
		f, ok := v.(*types.AttributeValueMemberM)
		if !ok {
			return nil, fmt.Errorf("grant %s is not a map", id)
		}
		g := &oGrant{id: id}
		numOf := func(name string) (usage.Decimal, error) {
			n, ok := f.Value[name].(*types.AttributeValueMemberN)
			if !ok {
				return usage.Decimal{}, fmt.Errorf("grant %s: %s is not a number", id, name)
			}
			return usage.ParseDecimal(n.Value)
		}
		var err error
		if g.amount, err = numOf("amount"); err != nil {
			return nil, err
		}
		if g.remaining, err = numOf("remaining"); err != nil {
			return nil, err
		}
		p, err := numOf("priority")
		if err != nil {
			return nil, err
		}
		fmt.Sscan(p.String(), &g.priority)
		at, _ := f.Value["grantedAt"].(*types.AttributeValueMemberS)
		if at == nil {
			return nil, fmt.Errorf("grant %s: no grantedAt", id)
		}
		if g.grantedAt, err = time.Parse(time.RFC3339Nano, at.Value); err != nil {
			return nil, fmt.Errorf("grant %s: grantedAt: %v", id, err)
		}
		if ex, ok := f.Value["expiresAt"].(*types.AttributeValueMemberS); ok {
			t, err := time.Parse(time.RFC3339Nano, ex.Value)
			if err != nil {
				return nil, fmt.Errorf("grant %s: expiresAt: %v", id, err)
			}
			g.expiresAt = &t
		}
		out[id] = g
	}
	return out, nil
}

func sameInstant(a, b *time.Time) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Equal(*b)
}

// fromDraws is a ledger entry's draws in the oracle's terms.
func fromDraws(ds []usage.Draw) []oDraw {
	var out []oDraw
	for _, d := range ds {
		out = append(out, oDraw{bucket: string(d.Bucket), grantID: d.GrantID, amount: d.Amount, lapsed: d.Lapsed})
	}
	return out
}
