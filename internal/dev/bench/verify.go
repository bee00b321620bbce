package bench

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	ddbstore "github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/usage"
)

// ScopeTotals is what the outcomes of a run say was applied to one scope.
type ScopeTotals struct {
	Applied int
	Sum     usage.Decimal
	Keys    map[string]usage.Decimal // applied dedup key -> amount
}

// Expected is the state a run must have left, computed from the generated
// workload and the run's outcomes alone (no DynamoDB read).
type Expected struct {
	Scopes       map[usage.Scope]*ScopeTotals
	AppliedTotal int
	AppliedSum   usage.Decimal
	// Problems found in the outcomes themselves.
	Problems []string
}

// Expect sums, per scope, the amounts of the deliveries that came back
// APPLIED, and checks the outcomes against what the generator intended: a
// dedup key applied at most once, every DUPLICATE backed by an applied
// delivery of its key, malformed messages rejected for the contract,
// unknown entitlements never applied, and every message done in the end.
func Expect(w *Workload, deliveries []Delivery) *Expected {
	e := &Expected{Scopes: map[usage.Scope]*ScopeTotals{}}
	problems := 0
	problem := func(format string, args ...any) {
		if problems++; problems <= 20 {
			e.Problems = append(e.Problems, fmt.Sprintf(format, args...))
		}
	}
	type dk struct {
		scope usage.Scope
		key   string
	}
	duplicates := map[dk]int{}
	last := make([]Delivery, len(w.Messages))
	delivered := make([]bool, len(w.Messages))
	for _, d := range deliveries {
		m := w.Messages[d.Message]
		if !delivered[d.Message] || d.Receive >= last[d.Message].Receive {
			last[d.Message], delivered[d.Message] = d, true
		}
		switch m.Kind {
		case Malformed:
			if d.Status != usage.Rejected || !contractReason(d.Reason) {
				problem("malformed message %s came back %s", m.ID, outcomeKey(d.Status, d.Reason))
			}
			continue
		case Unknown:
			if d.Status == usage.Applied || d.Status == usage.Duplicate {
				problem("message %s for a missing entitlement came back %s", m.ID, d.Status)
			}
			continue
		}
		switch d.Status {
		case usage.Applied:
			t := e.Scopes[m.Scope]
			if t == nil {
				t = &ScopeTotals{Keys: map[string]usage.Decimal{}}
				e.Scopes[m.Scope] = t
			}
			if _, twice := t.Keys[m.DedupKey]; twice {
				problem("dedup key %s of %v was applied more than once", m.DedupKey, m.Scope)
				continue
			}
			t.Keys[m.DedupKey] = m.Amount
			t.Applied++
			t.Sum = t.Sum.Add(m.Amount)
			e.AppliedTotal++
			e.AppliedSum = e.AppliedSum.Add(m.Amount)
		case usage.Duplicate:
			duplicates[dk{m.Scope, m.DedupKey}]++
		}
	}
	for k, n := range duplicates {
		if t := e.Scopes[k.scope]; t == nil || !hasKey(t.Keys, k.key) {
			problem("%d deliveries of key %s of %v came back DUPLICATE, but none was applied", n, k.key, k.scope)
		}
	}
	for i, d := range last {
		if !delivered[i] {
			problem("message %s was never delivered", w.Messages[i].ID)
		} else if !d.Status.Succeeded() && d.Status != usage.Rejected {
			problem("message %s was not done after %d deliveries (%s)", w.Messages[i].ID, d.Receive, outcomeKey(d.Status, d.Reason))
		}
	}
	if problems > len(e.Problems) {
		e.Problems = append(e.Problems, fmt.Sprintf("... and %d more", problems-len(e.Problems)))
	}
	return e
}

func hasKey(m map[string]usage.Decimal, k string) bool {
	_, ok := m[k]
	return ok
}

func contractReason(r usage.Reason) bool {
	switch r {
	case usage.ReasonInvalidJSON, usage.ReasonMissingField, usage.ReasonInvalidField, usage.ReasonInvalidAmount, usage.ReasonInvalidMetadata:
		return true
	}
	return false
}

// ExpectedUsed is what an entitlement's used must be after the run: the
// seeded value plus the applied amounts, or only the applied amounts when
// the seeded period was stale (the first applied event resets it).
func ExpectedUsed(e *Entitlement, t *ScopeTotals) usage.Decimal {
	if t == nil || t.Applied == 0 {
		return e.Used
	}
	if e.Stale {
		return t.Sum
	}
	return e.Used.Add(t.Sum)
}

// Check is the verdict of a run's correctness check.
type Check struct {
	OK                  bool `json:"ok"`
	EntitlementsChecked int  `json:"entitlementsChecked"`
	AppliedEvents       int  `json:"appliedEvents"`
	LedgerEntries       int  `json:"ledgerEntries,omitempty"`
	IdempotencyRecords  int  `json:"idempotencyRecords,omitempty"`
	// GrantEntries are the ledger entries of the grants made before the
	// run (Entitlement.Grants), not counted as applied events.
	GrantEntries int `json:"grantEntries,omitempty"`
	// DrawShapes counts ours' ledger entries of applied events by the
	// buckets they drew from ("allowance", "grant", "allowance+3 grants",
	// ...; see drawShape).
	DrawShapes map[string]int `json:"drawShapes,omitempty"`
	// PoolsChecked: the workload's pools whose used was checked against
	// their members' applied outcomes; PoolEntries: ours' ledger entries
	// of applied events that recorded a pool (each the member's).
	PoolsChecked int      `json:"poolsChecked,omitempty"`
	PoolEntries  int      `json:"poolEntries,omitempty"`
	Errors       []string `json:"errors,omitempty"`
}

func verify(ctx context.Context, c *dynamodb.Client, sys System, tb tables, w *Workload, deliveries []Delivery) Check {
	exp := Expect(w, deliveries)
	ch := Check{AppliedEvents: exp.AppliedTotal}
	var errs, summary []string
	failures := 0
	// Totals that disagree go first, uncapped: there are few of them.
	total := func(format string, args ...any) { summary = append(summary, fmt.Sprintf(format, args...)) }
	fail := func(format string, args ...any) {
		if failures++; failures <= 20 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	// A period boundary crossed during the run would reset entitlements
	// that the expectation assumes were not.
	for _, p := range []usage.ResetPeriod{usage.ResetMonthly, usage.ResetYearly} {
		if !usage.PeriodStart(p, nil, w.Now).Equal(usage.PeriodStart(p, nil, nowUTC())) {
			total("the run crossed a %s period boundary; run it again", p)
		}
	}

	items, err := scanAll(ctx, c, tb.entitlements)
	if err != nil {
		ch.Errors = append(exp.Problems, fmt.Sprintf("scan %s: %v", tb.entitlements, err))
		return ch
	}
	keys := ddbstore.DefaultEntitlementKeys
	stored := map[usage.Scope]map[string]types.AttributeValue{}
	pools := map[usage.Scope]map[string]types.AttributeValue{}
	for _, it := range items {
		pk, sk := str(it[keys.PartitionAttr]), str(it[keys.SortAttr])
		key := strings.TrimPrefix(sk, keys.KeyPrefix)
		if id, ok := strings.CutPrefix(pk, keys.PoolPrefix); ok {
			pools[usage.PoolScope(id, key)] = it
			continue
		}
		stored[usage.Scope{UserID: strings.TrimPrefix(pk, keys.UserPrefix), EntitlementKey: key}] = it
	}
	if len(stored) != len(w.Entitlements) {
		total("%d entitlement items, want %d", len(stored), len(w.Entitlements))
	}
	if len(pools) != len(w.Pools) {
		total("%d pool items, want %d", len(pools), len(w.Pools))
	}
	for i := range w.Entitlements {
		e := &w.Entitlements[i]
		ch.EntitlementsChecked++
		ent := ddbstore.ParseEntitlement(stored[e.Scope])
		if !ent.Exists {
			fail("entitlement %v is missing", e.Scope)
			continue
		}
		if ent.Malformed != nil {
			fail("%v: the stored entitlement cannot be interpreted: %v", e.Scope, ent.Malformed)
			continue
		}
		t := exp.Scopes[e.Scope]
		// What was drawn beyond the allowance (from grants made before the
		// run, and from the overage) counts with used.
		beyond := ent.OverageUsed
		for _, g := range ent.Grants {
			beyond = beyond.Add(g.Amount.Sub(g.Remaining))
		}
		if want := ExpectedUsed(e, t); ent.Used.Add(beyond).Cmp(want) != 0 {
			if beyond.IsZero() {
				fail("%v: used is %s, the applied outcomes say %s", e.Scope, ent.Used, want)
			} else {
				fail("%v: used is %s and %s was drawn beyond the allowance, the applied outcomes say %s in all", e.Scope, ent.Used, beyond, want)
			}
		}
		if len(ent.Grants) != len(e.Grants) {
			fail("%v: %d grants on the item, %d were made before the run", e.Scope, len(ent.Grants), len(e.Grants))
		}
		if t != nil && t.Applied > 0 && ent.Limit != nil && ent.Used.Cmp(*ent.Limit) > 0 {
			fail("%v: used %s exceeds the limit %s", e.Scope, ent.Used, *ent.Limit)
		}
		if ent.Pool != e.Pool {
			fail("%v: the item names pool %q, it was seeded with %q", e.Scope, ent.Pool, e.Pool)
		}
	}
	// A pool's used is what was seeded plus what its members applied.
	for _, p := range w.Pools {
		ch.PoolsChecked++
		ent := ddbstore.ParseEntitlement(pools[p.Scope()])
		if !ent.Exists || ent.Malformed != nil {
			fail("pool %s of %s is missing or cannot be interpreted (%v)", p.ID, p.EntitlementKey, ent.Malformed)
			continue
		}
		want := p.Used
		for i := range w.Entitlements {
			if e := &w.Entitlements[i]; e.Pool == p.ID && e.Scope.EntitlementKey == p.EntitlementKey && exp.Scopes[e.Scope] != nil {
				want = want.Add(exp.Scopes[e.Scope].Sum)
			}
		}
		beyond := ent.OverageUsed
		for _, g := range ent.Grants {
			beyond = beyond.Add(g.Amount.Sub(g.Remaining))
		}
		if ent.Used.Add(beyond).Cmp(want) != 0 {
			fail("pool %s of %s: used is %s (%s beyond its allowance), its members' applied outcomes say %s", p.ID, p.EntitlementKey, ent.Used, beyond, want)
		}
		if ent.Limit != nil && ent.Used.Cmp(*ent.Limit) > 0 {
			fail("pool %s of %s: used %s exceeds the limit %s", p.ID, p.EntitlementKey, ent.Used, *ent.Limit)
		}
	}

	switch sys {
	case Ours:
		ledger, err := scanAll(ctx, c, tb.ledger)
		if err != nil {
			fail("scan %s: %v", tb.ledger, err)
			break
		}
		// Recorded notifications (--notify) share the ledger table; they
		// are not applied events.
		ledger = slices.DeleteFunc(ledger, func(it map[string]types.AttributeValue) bool { return strings.HasPrefix(str(it["sk"]), "NOTIFY#") })
		// So do the entries of the grants made before the run.
		granted := 0
		for i := range w.Entitlements {
			granted += len(w.Entitlements[i].Grants)
		}
		n := len(ledger)
		ledger = slices.DeleteFunc(ledger, func(it map[string]types.AttributeValue) bool {
			return str(it["operation"]) == string(usage.OperationGrant)
		})
		if ch.GrantEntries = n - len(ledger); ch.GrantEntries != granted {
			total("%d grant entries in the ledger, %d grants were made before the run", ch.GrantEntries, granted)
		}
		ch.DrawShapes = map[string]int{}
		for _, it := range ledger {
			ch.DrawShapes[drawShape(it["draws"])]++
		}
		ch.LedgerEntries = len(ledger)
		byPK := map[string]usage.Scope{}
		for s := range exp.Scopes {
			pk, _ := ddbstore.LedgerKey(s, "")
			byPK[pk] = s
		}
		got := map[usage.Scope]map[string]usage.Decimal{}
		for _, it := range ledger {
			s, ok := byPK[str(it["pk"])]
			if !ok {
				fail("ledger entry %s/%s belongs to no scope with applied events", str(it["pk"]), str(it["sk"]))
				continue
			}
			if got[s] == nil {
				got[s] = map[string]usage.Decimal{}
			}
			amount := usage.Decimal{}
			if n, ok := it["amount"].(*types.AttributeValueMemberN); ok {
				amount, _ = usage.ParseDecimal(n.Value)
			}
			got[s][str(it["dedupKey"])] = amount
			if pool := str(it["pool"]); pool != "" {
				ch.PoolEntries++
			}
			if e, ok := w.Entitlement(s); ok && str(it["pool"]) != e.Pool {
				fail("ledger entry %s/%s recorded pool %q; its entitlement is in pool %q", str(it["pk"]), str(it["sk"]), str(it["pool"]), e.Pool)
			}
		}
		if len(ledger) != exp.AppliedTotal {
			total("%d ledger entries, but %d events were applied", len(ledger), exp.AppliedTotal)
		}
		for s, t := range exp.Scopes {
			for k, amount := range t.Keys {
				if a, ok := got[s][k]; !ok || a.Cmp(amount) != 0 {
					fail("%v: applied key %s (amount %s) has ledger entry %v amount %s", s, k, amount, ok, a)
				}
			}
		}
	case Baseline:
		recs, err := scanAll(ctx, c, tb.idempotency)
		if err != nil {
			fail("scan %s: %v", tb.idempotency, err)
			break
		}
		ch.IdempotencyRecords = len(recs)
		applied, sum := 0, usage.Decimal{}
		for _, it := range recs {
			switch status := str(it["status"]); {
			case status != statusCompleted:
				fail("idempotency record %s left %s", str(it["id"]), status)
			case strings.HasPrefix(str(it["data"]), string(usage.Applied)):
				applied++
				if n, ok := it["amount"].(*types.AttributeValueMemberN); ok {
					a, _ := usage.ParseDecimal(n.Value)
					sum = sum.Add(a)
				}
			}
		}
		if applied != exp.AppliedTotal || sum.Cmp(exp.AppliedSum) != 0 {
			total("idempotency records say %d applied (sum %s); the outcomes say %d (sum %s)", applied, sum, exp.AppliedTotal, exp.AppliedSum)
		}
	}
	sort.Strings(errs)
	if failures > len(errs) {
		errs = append(errs, fmt.Sprintf("... and %d more", failures-len(errs)))
	}
	ch.Errors = append(append(summary, exp.Problems...), errs...)
	ch.OK = len(ch.Errors) == 0
	return ch
}

// drawShape names the buckets a ledger entry's draws (its "draws"
// attribute) drew from, in their order: "allowance" for an entry without
// draws (it drew from the allowance alone), else e.g. "grant",
// "allowance+grant", "allowance+3 grants", "grant+overage".
func drawShape(draws types.AttributeValue) string {
	l, ok := draws.(*types.AttributeValueMemberL)
	if !ok || len(l.Value) == 0 {
		return string(usage.BucketAllowance)
	}
	var parts []string
	grants := 0
	flush := func() {
		switch {
		case grants == 1:
			parts = append(parts, string(usage.BucketGrant))
		case grants > 1:
			parts = append(parts, fmt.Sprintf("%d grants", grants))
		}
		grants = 0
	}
	for _, d := range l.Value {
		m, _ := d.(*types.AttributeValueMemberM)
		if m == nil {
			flush()
			parts = append(parts, "?")
			continue
		}
		b := str(m.Value["bucket"])
		if b == string(usage.BucketGrant) {
			grants++
			continue
		}
		flush()
		parts = append(parts, b)
	}
	flush()
	return strings.Join(parts, "+")
}

func scanAll(ctx context.Context, c *dynamodb.Client, table string) ([]map[string]types.AttributeValue, error) {
	var out []map[string]types.AttributeValue
	p := dynamodb.NewScanPaginator(c, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
	}
	return out, nil
}

func nowUTC() time.Time { return time.Now().UTC() }
