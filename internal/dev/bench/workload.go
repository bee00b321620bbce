// Package bench measures the service against a naive baseline on DynamoDB
// Local: the same generated workload, cut into Lambda-sized batches, is run
// through the real metering.Processor and dynamodb.Store, and through a
// Powertools-style per-event implementation (naive.go), each on its own
// tables. It counts every DynamoDB request and the capacity each consumed,
// times every batch, and checks both runs for correctness at the end.
package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

// WorkloadConfig shapes the generated events. Shares are fractions of all
// messages (0..1).
type WorkloadConfig struct {
	Events              int     `json:"events"`
	Users               int     `json:"users"`
	EntitlementsPerUser int     `json:"entitlementsPerUser"`
	HotUsers            int     `json:"hotUsers"`
	HotShare            float64 `json:"hotShare"`
	DuplicateShare      float64 `json:"duplicateShare"`
	InvalidShare        float64 `json:"invalidShare"`
	LimitPressure       float64 `json:"limitPressure"`
	Seed                uint64  `json:"seed"`
}

// Validate reports a configuration that cannot be generated.
func (c WorkloadConfig) Validate() error {
	switch {
	case c.Events < 1:
		return fmt.Errorf("events must be at least 1")
	case c.Users < 1:
		return fmt.Errorf("users must be at least 1")
	case c.EntitlementsPerUser < 1:
		return fmt.Errorf("entitlements per user must be at least 1")
	case c.HotUsers < 0 || c.HotUsers > c.Users:
		return fmt.Errorf("hot users must be between 0 and users (%d)", c.Users)
	case c.HotShare > 0 && c.HotUsers == 0:
		return fmt.Errorf("a hot share needs at least one hot user")
	case c.HotShare < 1 && c.HotUsers == c.Users && c.HotShare > 0:
		return fmt.Errorf("every user is hot: lower --hot-users or set --hot-share 1")
	}
	for _, s := range []struct {
		name string
		v    float64
	}{{"hot share", c.HotShare}, {"duplicate share", c.DuplicateShare}, {"invalid share", c.InvalidShare}, {"limit pressure", c.LimitPressure}} {
		if s.v < 0 || s.v > 1 || math.IsNaN(s.v) {
			return fmt.Errorf("%s must be between 0 and 1, got %v", s.name, s.v)
		}
	}
	if c.DuplicateShare+c.InvalidShare > 0.9 {
		return fmt.Errorf("duplicate share + invalid share must be at most 0.9")
	}
	return nil
}

// Kind is what the generator meant a message to be.
type Kind uint8

const (
	// Fresh is a valid event seen for the first time.
	Fresh Kind = iota
	// Redelivery repeats an earlier message: the same message ID (an SQS
	// redelivery) when the event has no idempotency key, else a new
	// message ID with the same idempotency key (a producer retry).
	Redelivery
	// Malformed violates the message contract; it is rejected before any
	// DynamoDB request.
	Malformed
	// Unknown is a valid event for an entitlement that does not exist.
	Unknown
)

func (k Kind) String() string {
	return [...]string{"fresh", "redelivery", "malformed", "unknown"}[k]
}

// Message is one generated queue message and what the generator knows
// about it: the ground truth the checks compare outcomes with.
type Message struct {
	ID   string
	Body string
	Kind Kind
	// For Fresh, Redelivery and Unknown:
	Scope    usage.Scope
	Amount   usage.Decimal
	DedupKey string
	// Original is the index of the repeated message (Redelivery), else -1.
	Original int
}

// Entitlement is one seeded entitlement item.
type Entitlement struct {
	Scope       usage.Scope
	Limit       *usage.Decimal // nil: unlimited
	Used        usage.Decimal  // as seeded
	ResetPeriod usage.ResetPeriod
	PeriodStart *time.Time
	// Stale is set when PeriodStart lies in an earlier period than the
	// run's: the first applied event resets used to 0.
	Stale bool
	// Pressured entitlements get a limit below the usage sent to them.
	Pressured bool
	Hot       bool
	// Offered is the sum of the distinct valid amounts the workload sends.
	Offered usage.Decimal
	// Grants are made on the entitlement before the run, through the
	// service (grant events), and not measured (only ours has grants).
	Grants []GrantSpec
	// Pool names the pool the entitlement draws from too (the item's
	// pool attribute; "" for none); the pool is one of Workload.Pools.
	Pool string
}

// Pool is a team pool's entitlement item, seeded before the run
// (dynamodb.PutPool); its members are the workload's entitlements of its
// key that name it. Seeded in the run's current period (or NONE): the
// check expects its used to be the seeded value plus what its members
// applied.
type Pool struct {
	ID             string
	EntitlementKey string
	Limit          *usage.Decimal // nil: unlimited
	Used           usage.Decimal
	ResetPeriod    usage.ResetPeriod
	PeriodStart    *time.Time
}

// Scope is the pool's entitlement scope (usage.PoolScope).
func (p Pool) Scope() usage.Scope { return usage.PoolScope(p.ID, p.EntitlementKey) }

// GrantSpec is a grant made before a run: a grant event's grantId,
// amount and expiresAt (nil: never), at the default priority.
type GrantSpec struct {
	ID        string
	Amount    usage.Decimal
	ExpiresAt *time.Time
}

// Workload is a generated run: the entitlements to seed and the messages
// in queue order.
type Workload struct {
	Config       WorkloadConfig
	Now          time.Time
	Entitlements []Entitlement
	// Pools are seeded too (only ours has pools).
	Pools    []Pool
	Messages []Message
	index    map[usage.Scope]int
}

// Entitlement returns the seeded entitlement of a scope.
func (w *Workload) Entitlement(s usage.Scope) (*Entitlement, bool) {
	i, ok := w.index[s]
	if !ok {
		return nil, false
	}
	return &w.Entitlements[i], true
}

var entitlementNames = []string{"AI_TUTOR_ACCESS", "API_CALLS", "EXPORTS", "SEATS", "STORAGE_GB", "REPORTS"}

func entitlementName(i int) string {
	if i < len(entitlementNames) {
		return entitlementNames[i]
	}
	return fmt.Sprintf("FEATURE_%02d", i)
}

// UserID names user i. Hot users come first.
func UserID(i int) string { return fmt.Sprintf("user-%05d", i) }

// amounts are drawn from this list: mostly 1, some larger, some fractional
// so that exact decimal sums are exercised.
var amounts = []string{"1", "1", "1", "1", "2", "3", "5", "0.5", "0.25", "10"}

// malformedBodies violate the contract in the ways producers do.
var malformedBodies = []string{
	`not json`,
	`{"userId":"%s"}`,
	`{"userId":"%s","entitlementKey":"API_CALLS","amount":-1}`,
	`{"userId":"%s","entitlementKey":"API_CALLS","amount":"5"}`,
	`{"userId":"%s","entitlementKey":"","amount":1}`,
	`[{"userId":"%s"}]`,
	`{"userId":"%s","entitlementKey":"API_CALLS","amount":1,"metadata":"x"}`,
}

// redeliveryWindow is how far back a redelivered message may come from:
// close enough that the original may still be in flight in another
// invocation, as with a real at-least-once queue.
const redeliveryWindow = 400

// Generate builds the workload deterministically from cfg (cfg.Seed) and
// now, the instant the periods of the seeded entitlements refer to.
func Generate(cfg WorkloadConfig, now time.Time) (*Workload, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	now = now.UTC()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x75736167652d6576)) // "usage-ev"
	w := &Workload{Config: cfg, Now: now, index: map[usage.Scope]int{}}
	for u := 0; u < cfg.Users; u++ {
		for e := 0; e < cfg.EntitlementsPerUser; e++ {
			s := usage.Scope{UserID: UserID(u), EntitlementKey: entitlementName(e)}
			w.index[s] = len(w.Entitlements)
			w.Entitlements = append(w.Entitlements, Entitlement{Scope: s, Hot: u < cfg.HotUsers})
		}
	}

	uuid := func() string { return uuidFrom(rng) }
	pickUser := func() int {
		if cfg.HotUsers > 0 && (cfg.HotUsers == cfg.Users || rng.Float64() < cfg.HotShare) {
			return rng.IntN(cfg.HotUsers)
		}
		return cfg.HotUsers + rng.IntN(cfg.Users-cfg.HotUsers)
	}

	w.Messages = make([]Message, 0, cfg.Events)
	var valid []int // indexes of earlier Fresh messages, for redeliveries
	for i := 0; i < cfg.Events; i++ {
		r := rng.Float64()
		user := pickUser()
		switch {
		case r < cfg.InvalidShare:
			if rng.IntN(4) == 0 {
				ev := usage.NewEvent(UserID(user), "NO_SUCH_ENTITLEMENT")
				body, _ := ev.MarshalJSON()
				id := uuid()
				w.Messages = append(w.Messages, Message{ID: id, Body: string(body), Kind: Unknown,
					Scope: ev.Scope(), Amount: ev.Amount, DedupKey: id, Original: -1})
				continue
			}
			body := malformedBodies[rng.IntN(len(malformedBodies))]
			if body != `not json` {
				body = fmt.Sprintf(body, UserID(user))
			}
			w.Messages = append(w.Messages, Message{ID: uuid(), Body: body, Kind: Malformed, Original: -1})
			continue
		case r < cfg.InvalidShare+cfg.DuplicateShare && len(valid) > 0:
			lo := max(0, len(valid)-redeliveryWindow)
			orig := valid[lo+rng.IntN(len(valid)-lo)]
			m := w.Messages[orig]
			m.Kind, m.Original = Redelivery, orig
			if m.DedupKey != m.ID { // it has an idempotency key: a producer retry, new message
				m.ID = uuid()
			}
			w.Messages = append(w.Messages, m)
			continue
		}
		ent := rng.IntN(cfg.EntitlementsPerUser)
		ev := usage.NewEvent(UserID(user), entitlementName(ent))
		ev.Amount = usage.MustDecimal(amounts[rng.IntN(len(amounts))])
		m, err := freshMessage(rng, ev)
		if err != nil {
			return nil, err
		}
		valid = append(valid, len(w.Messages))
		w.Messages = append(w.Messages, m)
		e := &w.Entitlements[w.index[ev.Scope()]]
		e.Offered = e.Offered.Add(ev.Amount)
	}

	// Entitlement items: a mix of reset periods (a quarter of them in a
	// stale period, so the first event resets them lazily), seeded usage,
	// unlimited ones, generous limits, and pressured limits that the
	// workload will exceed.
	monthStart := usage.PeriodStart(usage.ResetMonthly, nil, now)
	lastMonth := monthStart.AddDate(0, -1, 0)
	yearStart := usage.PeriodStart(usage.ResetYearly, nil, now)
	pressured := map[int]bool{}
	nPressured := int(math.Round(cfg.LimitPressure * float64(len(w.Entitlements))))
	for _, i := range rng.Perm(len(w.Entitlements))[:nPressured] {
		pressured[i] = true
	}
	for i := range w.Entitlements {
		e := &w.Entitlements[i]
		e.Used = usage.DecimalFromInt(int64(rng.IntN(50)))
		switch i % 4 {
		case 0:
			e.ResetPeriod = usage.ResetNone
		case 1:
			e.ResetPeriod, e.PeriodStart, e.Stale = usage.ResetMonthly, &lastMonth, true
		case 2:
			e.ResetPeriod, e.PeriodStart = usage.ResetMonthly, &monthStart
		case 3:
			e.ResetPeriod, e.PeriodStart = usage.ResetYearly, &yearStart
		}
		base := e.Used
		if e.Stale {
			base = usage.Decimal{}
		}
		switch {
		case pressured[i]:
			// About 80% of what is offered fits: the limit is hit late in
			// the run, and later events are rejected LIMIT_EXCEEDED.
			e.Pressured = true
			offered, _ := decimalFloat(e.Offered)
			l := base.Add(usage.DecimalFromInt(int64(math.Floor(0.8 * offered))))
			e.Limit = &l
		case rng.IntN(5) == 0:
			// unlimited: usage is still counted
		default:
			l := usage.DecimalFromInt(1_000_000_000)
			e.Limit = &l
		}
	}
	return w, nil
}

func decimalFloat(d usage.Decimal) (float64, error) {
	var f float64
	_, err := fmt.Sscan(d.String(), &f)
	return f, err
}

// Batches cuts messages into consecutive batches of at most size.
func Batches(n, size int) [][2]int {
	var out [][2]int
	for lo := 0; lo < n; lo += size {
		out = append(out, [2]int{lo, min(lo+size, n)})
	}
	return out
}

// freshMessage is ev sent once: under a new message ID, half the time
// with an idempotencyKey of its own, with metadata like a product's.
func freshMessage(rng *rand.Rand, ev usage.Event) (Message, error) {
	id := uuidFrom(rng)
	key := id
	if rng.IntN(2) == 0 {
		ev.IdempotencyKey = "evt-" + uuidFrom(rng)
		key = ev.IdempotencyKey
	}
	meta, _ := json.Marshal(map[string]string{"feature": "chat", "requestId": uuidFrom(rng)})
	ev.Metadata = meta
	body, err := ev.MarshalJSON()
	if err != nil {
		return Message{}, err
	}
	return Message{ID: id, Body: string(body), Kind: Fresh, Scope: ev.Scope(), Amount: ev.Amount, DedupKey: key, Original: -1}, nil
}

// uuidFrom is a version 4 UUID drawn from rng, so a seed repeats a run.
func uuidFrom(rng *rand.Rand) string {
	a, b := rng.Uint64(), rng.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xfff, 0x8000|(b>>48)&0x3fff, b&0xffffffffffff)
}
