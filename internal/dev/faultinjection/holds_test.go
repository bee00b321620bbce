package faultinjection_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/decision"
	"github.com/usage-event-service/usage-event-service/dynamodb"
	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
	"github.com/usage-event-service/usage-event-service/metering"
	"github.com/usage-event-service/usage-event-service/usage"
)

// holdWorld is a world with one entitlement and a decisions engine in
// the test process, for reserving holds as a synchronous caller would.
func holdWorld(t *testing.T, limit string) (*world, *metering.Decisions, usage.Scope) {
	t.Helper()
	w := newWorld(t)
	scope := usage.Scope{UserID: "holder", EntitlementKey: "EXPORTS"}
	l := usage.MustDecimal(limit)
	if err := dynamodb.PutEntitlement(context.Background(), w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys,
		dynamodb.EntitlementItem{UserID: scope.UserID, EntitlementKey: scope.EntitlementKey, Limit: &l}); err != nil {
		t.Fatal(err)
	}
	engine := &metering.Decisions{Store: metering.Writer{Store: dynamodb.NewStore(w.ddb, dynamodb.Config{EntitlementsTable: w.entitlements, LedgerTable: w.ledger})}}
	return w, engine, scope
}

func (w *world) used(t *testing.T, scope usage.Scope) usage.Decimal {
	t.Helper()
	ents, err := dynamodb.ListEntitlements(context.Background(), w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys, scope.UserID, scope.EntitlementKey)
	if err != nil || len(ents) != 1 {
		t.Fatal(ents, err)
	}
	return ents[0].Used
}

func (w *world) holdStates(t *testing.T, scope usage.Scope) map[string]int {
	t.Helper()
	holds, err := dynamodb.ListHolds(context.Background(), w.ddb, w.ledger, scope, false)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, h := range holds {
		n[h.HoldState]++
	}
	return n
}

func reserve(t *testing.T, e *metering.Decisions, scope usage.Scope, id string, amount, seconds int) {
	t.Helper()
	a := e.Handle(context.Background(), fmt.Appendf(nil, `{"operation":"reserve","userId":%q,"entitlementKey":%q,"amount":%d,"idempotencyKey":%q,"holdSeconds":%d}`,
		scope.UserID, scope.EntitlementKey, amount, id, seconds))
	if a.Status != decision.Applied {
		t.Fatalf("reserve %s: %+v", id, a)
	}
}

// TestTheWorkerReleasesAnExpiredHoldWithinSeconds: a hold of 2 seconds
// and a worker sweeping every second: released within a few seconds.
func TestTheWorkerReleasesAnExpiredHoldWithinSeconds(t *testing.T) {
	w, engine, scope := holdWorld(t, "10")
	reserve(t, engine, scope, "job-1", 4, 2)
	start := time.Now()
	p := startWorker(t, buildWorker(t), append(w.workerEnv(emulator.DynamoDB(t)), "HOLD_SWEEP_INTERVAL=1s"))
	deadline := time.Now().Add(30 * time.Second)
	for w.holdStates(t, scope)[usage.HoldExpired] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the hold was not released within 30 s: %v", w.holdStates(t, scope))
		}
		if err := p.alive(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("released %v after the reserve (hold of 2 s, sweep every 1 s)", time.Since(start).Round(100*time.Millisecond))
	if used := w.used(t, scope); !used.IsZero() {
		t.Errorf("used %s after the release, want 0", used)
	}
	p.stop(t)
	checkNoRaces(t, p)
}

// TestASweeperKilledMidRunReleasesNothingTwice: 100 users each with 2
// of consumed usage and 3 expired holds of 1; a worker sweeping them is
// SIGKILLed mid-run and restarted. Every hold ends released once: each
// user's used is exactly the 2 consumed, never less.
func TestASweeperKilledMidRunReleasesNothingTwice(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	engine := &metering.Decisions{Store: metering.Writer{Store: dynamodb.NewStore(w.ddb, dynamodb.Config{EntitlementsTable: w.entitlements, LedgerTable: w.ledger})}}
	const users, perUser = 100, 3
	limit := usage.MustDecimal("10")
	var scopes []usage.Scope
	for u := range users {
		scope := usage.Scope{UserID: fmt.Sprint("holder-", u), EntitlementKey: "EXPORTS"}
		scopes = append(scopes, scope)
		if err := dynamodb.PutEntitlement(ctx, w.ddb, w.entitlements, dynamodb.DefaultEntitlementKeys,
			dynamodb.EntitlementItem{UserID: scope.UserID, EntitlementKey: scope.EntitlementKey, Limit: &limit}); err != nil {
			t.Fatal(err)
		}
		if a := engine.Handle(ctx, fmt.Appendf(nil, `{"userId":%q,"entitlementKey":"EXPORTS","amount":2,"idempotencyKey":"work"}`, scope.UserID)); a.Status != decision.Applied {
			t.Fatal(a)
		}
		for i := range perUser {
			reserve(t, engine, scope, fmt.Sprint("h-", i), 1, 1)
		}
	}
	time.Sleep(1100 * time.Millisecond) // all expired
	expired := func() (n int) {
		for _, s := range scopes {
			n += w.holdStates(t, s)[usage.HoldExpired]
		}
		return n
	}
	bin := buildWorker(t)
	env := append(w.workerEnv(emulator.DynamoDB(t)), "HOLD_SWEEP_INTERVAL=1s")
	first := startWorker(t, bin, env)
	// Kill it once the first user's holds are released.
	for w.holdStates(t, scopes[0])[usage.HoldExpired] == 0 && w.holdStates(t, scopes[len(scopes)-1])[usage.HoldExpired] == 0 {
		if err := first.alive(); err != nil {
			t.Fatal(err)
		}
	}
	first.cmd.Process.Signal(syscall.SIGKILL)
	<-first.exited
	before := expired()
	if before == users*perUser {
		t.Fatal("the first sweeper released every hold before it was killed: the test exercised no mid-run kill")
	}
	second := startWorker(t, bin, env)
	deadline := time.Now().Add(2 * time.Minute)
	for expired() != users*perUser {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d holds released after two minutes", expired(), users*perUser)
		}
		if err := second.alive(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, s := range scopes {
		if used := w.used(t, s); used.Cmp(usage.MustDecimal("2")) != 0 {
			t.Errorf("%s: used %s after its holds were released, want exactly the 2 consumed", s.UserID, used)
		}
	}
	t.Logf("killed after releasing %d of %d holds; the restarted sweeper released the rest", before, users*perUser)
	second.stop(t)
	checkNoRaces(t, second)
}
