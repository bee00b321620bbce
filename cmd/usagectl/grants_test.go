package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/usage"
)

// grantsOf writes grants as "id remaining/amount", in order ("-" for an
// unknown remaining).
func grantsOf(gs []grantView) string {
	var parts []string
	for _, g := range gs {
		remaining := "-"
		if g.Remaining != nil {
			remaining = g.Remaining.String()
		}
		parts = append(parts, fmt.Sprintf("%s %s/%s", g.GrantID, remaining, g.Amount))
	}
	return strings.Join(parts, ", ")
}

// drawsOf writes an answer's or an entry's draws as "bucket[:grant] amount[ lapsed]".
func drawsOf(ds []decision.Draw) string {
	var parts []string
	for _, d := range ds {
		s := string(d.Bucket)
		if d.GrantID != "" {
			s += ":" + d.GrantID
		}
		s += " " + d.Amount.String()
		if d.Lapsed {
			s += " lapsed"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// The grant commands against the emulators: grant and void in process,
// through the decisions function and through the queue; grants, balance,
// usage and history showing the grants, draws and give-backs; entitlement
// put writing the overage and the rollover.
func TestUsagectlGrants(t *testing.T) {
	c := build(t)
	s := newStack(t, c)
	current := monthStart(0)
	put := decodeJSON[map[string]any](t, s.must(t, "entitlement", "put", "--user", "u-g", "--key", "tutor", "--limit", "10", "--used", "8",
		"--reset-period", "MONTHLY", "--period-start", current, "--overage-limit", "3", "--rollover-max", "4", "--json").stdout)
	if fmt.Sprint(put["overageLimit"], " ", put["rolloverMax"]) != "3 4" {
		t.Errorf("entitlement put --json: %v, want overageLimit 3 and rolloverMax 4", put)
	}
	on := func(args ...string) []string {
		return append([]string{"--user", "u-g", "--key", "tutor"}, args...)
	}
	inAYear := usage.FormatInstant(time.Now().AddDate(1, 0, 0).Truncate(time.Second))

	t.Run("grant in process", func(t *testing.T) {
		a := decodeJSON[answerJSON](t, s.must(t, append([]string{"grant", "--json"}, on("--grant", "year", "--amount", "50", "--expires-at", inAYear)...)...).stdout)
		g := a.Grant
		if a.Status != "APPLIED" || g == nil || g.GrantID != "year" || g.Amount != "50" || g.Priority != usage.DefaultGrantPriority ||
			g.ExpiresAt != inAYear || g.State != usage.GrantActive || a.Available == nil || a.Available.String() != "55" {
			t.Fatalf("grant: %+v (grant %+v), want APPLIED, year: 50 until %s, 2 + 50 + 3 available", a, g, inAYear)
		}
		r := s.must(t, append([]string{"grant"}, on("--grant", "first", "--amount", "5", "--priority", "10")...)...)
		if want := "applied: grant first of 5, priority 10, never expires: active\nused now 8, remaining 2 of 10, grants 55 left, available 60\n"; r.stdout != want {
			t.Errorf("grant: stdout %q, want %q", r.stdout, want)
		}
		r = s.must(t, append([]string{"grant"}, on("--grant", "first", "--amount", "5", "--priority", "10")...)...)
		if !strings.HasPrefix(r.stdout, "duplicate (decided before): grant first of 5, priority 10, never expires: active\n") {
			t.Errorf("the same grant again: %q, want the duplicate with the original grant", r.stdout)
		}
		r = s.run(t, "", append([]string{"grant"}, on("--grant", "late", "--amount", "1", "--expires-at", "2020-01-01T00:00:00Z")...)...)
		if r.code != 1 || !strings.Contains(r.stderr, "INVALID_FIELD") || !strings.Contains(r.stderr, "expiresAt") || !strings.Contains(r.stderr, "(grant late)") {
			t.Errorf("a grant expiring in the past: exit %d, stderr %q; want 1 and INVALID_FIELD expiresAt", r.code, r.stderr)
		}
		r = s.run(t, "", append([]string{"grant"}, on("--grant", "rollover:x", "--amount", "1")...)...)
		if r.code != 1 || !strings.Contains(r.stderr, "INVALID_FIELD") {
			t.Errorf("a grant named as a rollover's: exit %d, stderr %q; want 1 and INVALID_FIELD", r.code, r.stderr)
		}
	})

	t.Run("grants lists the ones counting, in draw order", func(t *testing.T) {
		v := decodeJSON[grantsView](t, s.must(t, append([]string{"grants", "--json"}, on()...)...).stdout)
		if v.Counting != 2 || v.Remaining != "55" || grantsOf(v.Grants) != "first 5/5, year 50/50" || v.LedgerTable != "" {
			t.Fatalf("grants %+v, want first then year, 55 remaining", v)
		}
		first, year := v.Grants[0], v.Grants[1]
		if first.Priority != 10 || first.ExpiresAt != nil || first.GrantedAt == "" || first.State != "" || first.Rollover ||
			year.ExpiresAt == nil || *year.ExpiresAt != inAYear {
			t.Errorf("grants %+v", v.Grants)
		}
		human := s.must(t, append([]string{"grants"}, on()...)...).stdout
		for _, want := range []string{"tutor of user u-g: 2 grants counting, 55 remaining, in the order consumes draw from them", "GRANT", "PRIORITY",
			"never", "in 36", "GRANTED AT"} {
			if !strings.Contains(human, want) {
				t.Errorf("human grants lacks %q:\n%s", want, human)
			}
		}
		if r := s.run(t, "", "grants", "--user", "nobody", "--key", "tutor"); r.code != 1 || !strings.Contains(r.stderr, "no entitlement") {
			t.Errorf("grants of a missing entitlement: exit %d, stderr %q", r.code, r.stderr)
		}
	})

	s.consume(t, "u-g", "tutor", map[string]string{"c-1": "4"}) // the allowance's 2, then first's 2

	t.Run("balance and usage show the breakdown", func(t *testing.T) {
		v := decodeJSON[balanceView](t, s.must(t, append([]string{"balance", "--json"}, on()...)...).stdout)
		if v.Used != "10" || v.Remaining == nil || v.Remaining.String() != "0" || grantsOf(v.Grants) != "first 3/5, year 50/50" ||
			v.Overage == nil || v.Overage.Limit != "3" || v.Overage.Used != "0" || v.Overage.Remaining != "3" || v.Available == nil || v.Available.String() != "56" {
			t.Errorf("balance %+v, want used 10, remaining 0, first 3/5, year 50/50, overage 0 of 3, available 56", v)
		}
		human := s.must(t, append([]string{"balance"}, on()...)...).stdout
		for _, want := range []string{"used          10\n", "remaining     0\n",
			"grants        53 left of 2 grants, drawn in this order once the allowance is used up:\n",
			"\n                  first  3 of 5 left, priority 10, never expires\n",
			"\n                  year  50 of 50 left, priority 100, until " + inAYear + "\n",
			"overage       0 of 3 used, 3 remaining\n", "available     56 (remaining 0 + grants 53 + overage 3)\n"} {
			if !strings.Contains(human, want) {
				t.Errorf("human balance lacks %q:\n%s", want, human)
			}
		}
		u := decodeJSON[usageView](t, s.must(t, "usage", "--user", "u-g", "--key", "tutor", "--json").stdout)
		if len(u.Entitlements) != 1 {
			t.Fatalf("usage %+v", u)
		}
		e := u.Entitlements[0]
		if grantsOf(e.Grants) != "first 3/5, year 50/50" || e.Overage == nil || e.Overage.Remaining != "3" || e.RolloverMax == nil || e.RolloverMax.String() != "4" ||
			e.Available == nil || e.Available.String() != "56" {
			t.Errorf("usage %+v, want the grants, the overage, rollover max 4 and 56 available", e)
		}
		human = s.must(t, "usage", "--user", "u-g").stdout
		for _, want := range []string{"  grants           53 left of 2 grants", "first  3 of 5 left", "  overage          0 of 3 used, 3 remaining\n",
			"  available        56 (remaining 0 + grants 53 + overage 3)\n", "  rollover max     4 "} {
			if !strings.Contains(human, want) {
				t.Errorf("human usage lacks %q:\n%s", want, human)
			}
		}
		// An entitlement without grants or overage: available is remaining.
		s.must(t, "entitlement", "put", "--user", "u-g", "--key", "plain", "--limit", "5", "--used", "1")
		human = s.must(t, "balance", "--user", "u-g", "--key", "plain").stdout
		if !strings.Contains(human, "available     4\n") || strings.Contains(human, "grants") || strings.Contains(human, "overage") {
			t.Errorf("a plain balance:\n%s", human)
		}
	})

	t.Run("grant and void through the queue", func(t *testing.T) {
		rec := decodeJSON[receiptJSON](t, s.must(t, append([]string{"grant", "--queue", "--json"}, on("--grant", "queued", "--amount", "2", "--priority", "0", "--expires-at", inAYear)...)...).stdout)
		if rec.MessageID == "" || rec.IdempotencyKey != "queued" {
			t.Errorf("receipt %+v, want the grant ID as its key", rec)
		}
		if r := s.must(t, append([]string{"void", "--queue"}, on("--grant", "queued")...)...); !strings.HasPrefix(r.stdout, "sent void of grant queued: message ") {
			t.Errorf("human receipt %q", r.stdout)
		}
		bodies := s.receiveBodies(t, s.queues.Queue.URL)
		if len(bodies) != 2 {
			t.Fatalf("received %d messages, want 2", len(bodies))
		}
		for _, b := range bodies {
			ev, err := usage.ParseEvent([]byte(b))
			if err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			switch {
			case ev.Is(usage.OperationGrant) && ev.GrantID == "queued" && ev.Amount.String() == "2" && ev.Priority != nil && *ev.Priority == 0 &&
				ev.ExpiresAt != nil && usage.FormatInstant(*ev.ExpiresAt) == inAYear:
			case ev.Is(usage.OperationVoid) && ev.GrantID == "queued" && !strings.Contains(b, `"amount"`):
			default:
				t.Errorf("sent %s", b)
			}
		}
		if v := decodeJSON[grantsView](t, s.must(t, append([]string{"grants", "--json"}, on()...)...).stdout); v.Counting != 2 {
			t.Errorf("grants %+v: nothing consumes the queue here, the queued grant does not count", v)
		}
	})

	fn := s.startDecisionsFunction(t)

	t.Run("void and refund decided by the decisions function", func(t *testing.T) {
		r := fn.must(t, append([]string{"void", "--function", "function"}, on("--grant", "first")...)...)
		if want := "applied: grant first of 5, priority 10, never expires: voided (3 of it was left)\nused now 10, remaining 0 of 10, grants 50 left, available 53\n"; r.stdout != want {
			t.Errorf("void: stdout %q, want %q", r.stdout, want)
		}
		if r := fn.must(t, append([]string{"void", "--function", "function"}, on("--grant", "first")...)...); !strings.HasPrefix(r.stdout, "duplicate (decided before): grant first of 5, priority 10, never expires: voided (3 of it was left)\n") {
			t.Errorf("the same void again: %q", r.stdout)
		}
		r = fn.run(t, "", append([]string{"void", "--function", "function", "--json"}, on("--grant", "never")...)...)
		if a := decodeJSON[answerJSON](t, r.stdout); r.code != 1 || a.Reason != usage.ReasonGrantNotFound || !strings.Contains(r.stderr, "GRANT_NOT_FOUND") {
			t.Errorf("a void of an unknown grant: exit %d, answer %+v, stderr %q", r.code, a, r.stderr)
		}
		// c-1's 2 from first lapse (voided); the allowance's 2 come back.
		a := decodeJSON[answerJSON](t, fn.must(t, append([]string{"refund", "--sync", "--json"}, on("--refund-of", "c-1", "--idempotency-key", "r-1")...)...).stdout)
		if a.Status != "APPLIED" || drawsOf(a.Returned) != "grant:first 2 lapsed, allowance 2" || a.Used.String() != "8" {
			t.Errorf("refund: %+v, want first's 2 lapsed and 2 back to the allowance, used 8", a)
		}
	})

	t.Run("history shows the buckets and the grants", func(t *testing.T) {
		v := decodeJSON[historyView](t, s.must(t, append([]string{"history", "--json"}, on()...)...).stdout)
		byKey := map[string]historyEntry{}
		for _, e := range v.Entries {
			byKey[e.Key] = e
		}
		if v.Total != 4 || len(byKey) != 4 {
			t.Fatalf("history %+v, want the grants year and first, the consume and the refund", v)
		}
		if e := byKey["c-1"]; e.Operation != usage.OperationConsume || drawsOf(e.Draws) != "allowance 2, grant:first 2" || e.Refunded.String() != "4" {
			t.Errorf("c-1: %+v", e)
		}
		if e := byKey["r-1"]; e.Operation != usage.OperationRefund || drawsOf(e.Draws) != "grant:first 2 lapsed, allowance 2" {
			t.Errorf("r-1: %+v", e)
		}
		if e := byKey["first"]; e.Operation != usage.OperationGrant || e.GrantState != usage.GrantVoided || e.Priority == nil || *e.Priority != 10 ||
			e.GrantExpiresAt != "" || e.Voided == nil || e.Voided.String() != "3" || e.VoidedAt == "" || e.Draws != nil {
			t.Errorf("first: %+v, want voided with 3 left", e)
		}
		if e := byKey["year"]; e.GrantState != usage.GrantActive || e.GrantExpiresAt != inAYear || e.Voided != nil {
			t.Errorf("year: %+v", e)
		}
		human := s.must(t, append([]string{"history"}, on()...)...).stdout
		for _, want := range []string{"BUCKETS", "HOLD OR GRANT", "allowance 2, grant first 2", "grant first 2 (lapsed), allowance 2",
			"voided at 20", ", 3 left", "active until " + inAYear} {
			if !strings.Contains(human, want) {
				t.Errorf("human history lacks %q:\n%s", want, human)
			}
		}
	})

	t.Run("grants --all adds the voided and expired ones", func(t *testing.T) {
		soon := usage.FormatInstant(time.Now().Add(2 * time.Second))
		s.must(t, append([]string{"grant"}, on("--grant", "soon", "--amount", "1", "--expires-at", soon)...)...)
		time.Sleep(time.Until(mustInstant(t, soon)) + 200*time.Millisecond)
		if r := s.run(t, "", append([]string{"void"}, on("--grant", "soon")...)...); r.code != 1 || !strings.Contains(r.stderr, "GRANT_NOT_ACTIVE") {
			t.Errorf("a void of an expired grant: exit %d, stderr %q", r.code, r.stderr)
		}
		if v := decodeJSON[grantsView](t, s.must(t, append([]string{"grants", "--json"}, on()...)...).stdout); grantsOf(v.Grants) != "year 50/50" {
			t.Errorf("grants %s, want year alone", grantsOf(v.Grants))
		}
		v := decodeJSON[grantsView](t, s.must(t, append([]string{"grants", "--all", "--json"}, on()...)...).stdout)
		if v.Counting != 1 || grantsOf(v.Grants) != "year 50/50, first -/5, soon -/1" || v.LedgerTable == "" {
			t.Fatalf("grants --all: %s (%+v), want year counting, then first and soon", grantsOf(v.Grants), v)
		}
		year, first, expired := v.Grants[0], v.Grants[1], v.Grants[2]
		if year.State != usage.GrantActive || first.State != usage.GrantVoided || first.Voided == nil || first.Voided.String() != "3" || first.VoidedAt == "" ||
			expired.State != "expired" || expired.Voided != nil || expired.ExpiresAt == nil || *expired.ExpiresAt != soon {
			t.Errorf("grants --all: %+v", v.Grants)
		}
		human := s.must(t, append([]string{"grants", "--all"}, on()...)...).stdout
		for _, want := range []string{"1 grant counting, 50 remaining, in the order consumes draw from them; then 2 more from the ledger, oldest first", "STATE", "VOIDED AT",
			"voided", "expired", " ago "} {
			if !strings.Contains(human, want) {
				t.Errorf("human grants --all lacks %q:\n%s", want, human)
			}
		}
	})
}

func mustInstant(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := usage.ParseInstant(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
