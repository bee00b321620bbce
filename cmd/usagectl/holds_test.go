package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/usage"
)

// The hold commands against the emulators: reserve in process and
// through the decisions function, commit and release through the queue
// and decided now, holds and history showing what became of each.
func TestUsagectlHolds(t *testing.T) {
	c := build(t)
	s := newStack(t, c)
	current := monthStart(0)
	s.must(t, "entitlement", "put", "--user", "u-h", "--key", "tutor", "--limit", "10", "--used", "2",
		"--reset-period", "MONTHLY", "--period-start", current)
	hold := func(args ...string) []string {
		return append([]string{"--user", "u-h", "--key", "tutor"}, args...)
	}
	holdsOf := func(t *testing.T, args ...string) holdsView {
		t.Helper()
		return decodeJSON[holdsView](t, s.must(t, append([]string{"holds", "--json"}, hold(args...)...)...).stdout)
	}

	t.Run("reserve in process", func(t *testing.T) {
		before := time.Now()
		a := decodeJSON[answerJSON](t, s.must(t, append([]string{"reserve", "--json"}, hold("--amount", "5", "--hold", "job-1")...)...).stdout)
		h := a.Hold
		if a.Status != "APPLIED" || h == nil || h.HoldID != "job-1" || h.Amount != "5" || h.State != usage.HoldActive ||
			a.Used.String() != "7" || a.Held == nil || a.Held.String() != "5" || a.Remaining.String() != "3" {
			t.Fatalf("reserve: %+v (hold %+v), want APPLIED, an active hold of 5, used 7 of which 5 held, remaining 3", a, h)
		}
		if exp, err := usage.ParseInstant(h.ExpiresAt); err != nil || exp.Before(before.Add(899*time.Second)) || exp.After(time.Now().Add(900*time.Second)) {
			t.Errorf("expiresAt %s (%v), want 900 s from now, the default", h.ExpiresAt, err)
		}
		r := s.must(t, append([]string{"reserve"}, hold("--amount", "5", "--hold", "job-1")...)...)
		if !strings.HasPrefix(r.stdout, "duplicate (decided before): hold job-1 of 5: active until ") || !regexp.MustCompile(`\(in 1[45]m\d+s\)`).MatchString(r.stdout) ||
			!strings.Contains(r.stdout, "used now 7 (5 of it held), remaining 3 of 10\n") {
			t.Errorf("the same reserve again: %q, want the duplicate with the original hold and the balance unchanged", r.stdout)
		}
		if r := s.run(t, "", append([]string{"reserve"}, hold("--amount", "4", "--hold", "job-1")...)...); r.code != 1 || !strings.Contains(r.stderr, "IDEMPOTENCY_CONFLICT") {
			t.Errorf("the same hold ID for another amount: exit %d, stderr %q; want 1 and IDEMPOTENCY_CONFLICT", r.code, r.stderr)
		}
		r = s.run(t, "", append([]string{"reserve", "--json"}, hold("--amount", "4", "--hold", "job-2")...)...)
		a = decodeJSON[answerJSON](t, r.stdout)
		if r.code != 1 || a.Reason != usage.ReasonLimitExceeded || a.Used.String() != "7" || !strings.Contains(r.stderr, "LIMIT_EXCEEDED") || !strings.Contains(r.stderr, "(hold job-2)") {
			t.Errorf("a reserve over the limit: exit %d, answer %+v, stderr %q; want 1 and LIMIT_EXCEEDED, nothing held", r.code, a, r.stderr)
		}
		r = s.must(t, append([]string{"reserve"}, hold("--amount", "1", "--hold", "job-3", "--seconds", "1", "--metadata", `{"job":"export"}`)...)...)
		if !strings.HasPrefix(r.stdout, "applied: hold job-3 of 1: active until ") || !strings.HasSuffix(r.stdout, "used now 8 (6 of it held), remaining 2 of 10\n") {
			t.Errorf("a one-second hold: %q", r.stdout)
		}
	})

	t.Run("holds lists the active ones, the next to expire first", func(t *testing.T) {
		time.Sleep(1200 * time.Millisecond) // job-3 expires; no sweeper runs here
		v := holdsOf(t)
		if v.Active != 2 || len(v.Holds) != 2 || v.Holds[0].HoldID != "job-3" || v.Holds[1].HoldID != "job-1" {
			t.Fatalf("holds %+v, want job-3 then job-1", v)
		}
		overdue, later := v.Holds[0], v.Holds[1]
		if overdue.ExpiresInSeconds == nil || *overdue.ExpiresInSeconds > 0 || overdue.State != usage.HoldActive || compact(t, overdue.Metadata) != `{"job":"export"}` {
			t.Errorf("the expired, unswept hold: %+v, want active with expiresInSeconds <= 0 and its metadata", overdue)
		}
		if later.ExpiresInSeconds == nil || *later.ExpiresInSeconds < 880 || *later.ExpiresInSeconds > 900 || later.Amount != "5" ||
			later.PeriodStart != current || later.ReservedAt == "" || later.SettledAt != "" || later.Committed != nil {
			t.Errorf("job-1: %+v, want 5 held in the current period, expiring in about 900 s", later)
		}
		human := s.must(t, append([]string{"holds"}, hold()...)...).stdout
		for _, want := range []string{"tutor of user u-h: 2 active holds, the next to expire first", "HOLD", "EXPIRES AT", "overdue ", "in 1"} {
			if !strings.Contains(human, want) {
				t.Errorf("human holds lacks %q:\n%s", want, human)
			}
		}
		if r := s.must(t, "holds", "--user", "nobody", "--key", "tutor"); !strings.Contains(r.stdout, "no active holds for tutor of user nobody") {
			t.Errorf("holds of nobody: %q", r.stdout)
		}
	})

	t.Run("commit and release through the queue", func(t *testing.T) {
		r := s.must(t, append([]string{"release"}, hold("--hold", "job-1")...)...)
		if !strings.HasPrefix(r.stdout, "sent release of hold job-1: message ") {
			t.Errorf("human receipt %q", r.stdout)
		}
		if rec := decodeJSON[receiptJSON](t, s.must(t, append([]string{"commit", "--json"}, hold("--hold", "job-1", "--amount", "0")...)...).stdout); rec.MessageID == "" {
			t.Errorf("receipt %+v", rec)
		}
		s.must(t, append([]string{"commit"}, hold("--hold", "job-3")...)...)
		bodies := s.receiveBodies(t, s.queues.Queue.URL)
		if len(bodies) != 3 {
			t.Fatalf("received %d messages, want 3", len(bodies))
		}
		seen := map[string]bool{}
		for _, b := range bodies {
			ev, err := usage.ParseEvent([]byte(b))
			if err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			switch {
			case ev.Is(usage.OperationRelease) && ev.HoldID == "job-1" && !strings.Contains(b, `"amount"`):
			case ev.Is(usage.OperationCommit) && ev.HoldID == "job-1" && ev.AmountGiven && ev.Amount.IsZero():
			case ev.Is(usage.OperationCommit) && ev.HoldID == "job-3" && !ev.AmountGiven:
			default:
				t.Errorf("sent %s", b)
			}
			seen[string(ev.Operation)+" "+ev.HoldID] = true
		}
		if len(seen) != 3 {
			t.Errorf("sent %q", bodies)
		}
		if v := holdsOf(t); v.Active != 2 {
			t.Errorf("holds %+v: nothing consumes the queue here, both stay active", v)
		}
	})

	fn := s.startDecisionsFunction(t)

	t.Run("commit and release decided now", func(t *testing.T) {
		r := fn.must(t, append([]string{"commit", "--sync"}, hold("--hold", "job-1", "--amount", "3")...)...)
		if want := "applied: hold job-1 of 5: committed 3 (2 given back)\nused now 6 (1 of it held), remaining 4 of 10\n"; r.stdout != want {
			t.Errorf("commit: stdout %q, want %q", r.stdout, want)
		}
		if r := fn.must(t, append([]string{"commit", "--sync"}, hold("--hold", "job-1", "--amount", "3")...)...); !strings.HasPrefix(r.stdout, "duplicate (decided before): hold job-1 of 5: committed 3") {
			t.Errorf("the same commit again: %q", r.stdout)
		}
		r = fn.run(t, "", append([]string{"commit", "--sync", "--json"}, hold("--hold", "job-1", "--amount", "2")...)...)
		a := decodeJSON[answerJSON](t, r.stdout)
		if r.code != 1 || a.Reason != usage.ReasonHoldNotActive || a.Hold == nil || a.Hold.State != usage.HoldCommitted || !strings.Contains(r.stderr, "HOLD_NOT_ACTIVE") {
			t.Errorf("another commit of a committed hold: exit %d, answer %+v, stderr %q; want 1 and HOLD_NOT_ACTIVE with the hold", r.code, a, r.stderr)
		}
		if r := fn.run(t, "", append([]string{"release", "--sync"}, hold("--hold", "job-1")...)...); r.code != 1 || !strings.Contains(r.stderr, "HOLD_NOT_ACTIVE") || !strings.Contains(r.stderr, "committed") {
			t.Errorf("a release of a committed hold: exit %d, stderr %q", r.code, r.stderr)
		}
		// Expired but not swept: a release still gives it back, once.
		r = fn.must(t, append([]string{"release", "--sync"}, hold("--hold", "job-3")...)...)
		if want := "applied: hold job-3 of 1: released (1 given back)\nused now 5, remaining 5 of 10\n"; r.stdout != want {
			t.Errorf("release: stdout %q, want %q", r.stdout, want)
		}
		if r := fn.must(t, append([]string{"release", "--sync"}, hold("--hold", "job-3")...)...); !strings.HasPrefix(r.stdout, "duplicate (decided before): hold job-3 of 1: released") {
			t.Errorf("the same release again: %q", r.stdout)
		}
		if r := fn.run(t, "", append([]string{"release", "--sync"}, hold("--hold", "never")...)...); r.code != 1 || !strings.Contains(r.stderr, "HOLD_NOT_FOUND") {
			t.Errorf("a release of an unknown hold: exit %d, stderr %q", r.code, r.stderr)
		}
	})

	t.Run("reserve --function", func(t *testing.T) {
		a := decodeJSON[answerJSON](t, fn.must(t, append([]string{"reserve", "--function", "function", "--json"}, hold("--amount", "2", "--hold", "job-4", "--seconds", "60")...)...).stdout)
		if a.Status != "APPLIED" || a.Hold == nil || a.Hold.State != usage.HoldActive || a.Used.String() != "7" || a.Held == nil || a.Held.String() != "2" {
			t.Errorf("reserve through the function: %+v, want APPLIED, used 7 of which 2 held", a)
		}
		if r := fn.run(t, "", append([]string{"commit", "--sync"}, hold("--hold", "job-4", "--amount", "2.5")...)...); r.code != 1 || !strings.Contains(r.stderr, "COMMIT_EXCEEDS_HOLD") {
			t.Errorf("a commit over the hold: exit %d, stderr %q", r.code, r.stderr)
		}
	})

	t.Run("holds --all and history show the settlements", func(t *testing.T) {
		if v := holdsOf(t); v.Active != 1 || len(v.Holds) != 1 || v.Holds[0].HoldID != "job-4" {
			t.Errorf("active holds %+v, want job-4 alone", v)
		}
		v := holdsOf(t, "--all")
		if v.Active != 1 || len(v.Holds) != 3 {
			t.Fatalf("all holds %+v, want 3, 1 active", v)
		}
		byID := map[string]holdView{}
		for _, h := range v.Holds {
			byID[h.HoldID] = h
		}
		if h := byID["job-1"]; h.State != usage.HoldCommitted || h.Committed == nil || h.Committed.String() != "3" || h.SettledAt == "" || h.ExpiresInSeconds != nil {
			t.Errorf("job-1: %+v, want committed 3 with its settledAt", h)
		}
		if h := byID["job-3"]; h.State != usage.HoldReleased || h.Committed != nil || h.SettledAt == "" {
			t.Errorf("job-3: %+v, want released", h)
		}
		if ids := []string{v.Holds[0].HoldID, v.Holds[1].HoldID, v.Holds[2].HoldID}; strings.Join(ids, ",") != "job-3,job-4,job-1" {
			t.Errorf("order %v, want by expiry", ids)
		}
		human := s.must(t, append([]string{"holds", "--all"}, hold()...)...).stdout
		for _, want := range []string{"3 holds, 1 active", "STATE", "SETTLED AT", "committed", "released"} {
			if !strings.Contains(human, want) {
				t.Errorf("human holds --all lacks %q:\n%s", want, human)
			}
		}

		hv := decodeJSON[historyView](t, s.must(t, append([]string{"history", "--json"}, hold()...)...).stdout)
		if hv.Total != 3 || len(hv.Entries) != 3 {
			t.Fatalf("history %+v, want the 3 reserves (a rejected one leaves nothing, a settlement settles its reserve's entry)", hv)
		}
		want := []struct{ key, state, committed string }{{"job-1", "committed", "3"}, {"job-3", "released", ""}, {"job-4", "active", ""}}
		for i, w := range want {
			e := hv.Entries[i]
			committed := ""
			if e.Committed != nil {
				committed = e.Committed.String()
			}
			if e.Key != w.key || e.Operation != usage.OperationReserve || e.HoldState != w.state || committed != w.committed ||
				e.HoldExpiresAt == "" || (e.SettledAt == "") != (w.state == "active") || e.PeriodStart != current {
				t.Errorf("entry %d: %+v, want %+v", i, e, w)
			}
		}
		human = s.must(t, append([]string{"history"}, hold()...)...).stdout
		for _, want := range []string{"HOLD", "reserve", "committed 3 at 20", "released at 20", "active until 20"} {
			if !strings.Contains(human, want) {
				t.Errorf("human history lacks %q:\n%s", want, human)
			}
		}
	})
}

func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return b.String()
}
