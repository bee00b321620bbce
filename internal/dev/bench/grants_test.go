package bench

import (
	"context"
	"strings"
	"testing"

	"github.com/usage-event-service/usage-event-service/internal/dev/emulator"
)

// The grants scenario, tiny, end to end on DynamoDB Local: every arm ran,
// every consume drew where its arm says (RunGrants refuses a run whose
// draws did not, so an arm cannot pass measuring the allowance alone;
// the contended grant arm's consumes all drew from its grant), and the
// units follow the item's size: the same as today's while the item stays
// under 1 KB, 2 WRU more per KB once grants make it bigger.
func TestGrantsScenario(t *testing.T) {
	emulator.Env(t)
	var progress strings.Builder
	rep, err := RunGrants(context.Background(), GrantsConfig{Events: 4, ContendedEvents: 6, Rounds: 1, Consumers: 3,
		GrantCounts: []int{0, 20}, TablePrefix: emulator.UniqueName(t, "grants"), Progress: &progress})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	arms := map[string]*GrantArm{}
	for _, a := range rep.Arms {
		arms[a.Name] = a
		// A reference runs before the first arm it is the reference of,
		// and after each.
		runs := 1
		switch a.Name {
		case "allowance, no grants (today)":
			runs = 4
		case "contended: allowance, no grants (today)":
			runs = 2
		}
		if len(a.Rounds) != runs || a.Rounds[0].Applied != a.Events || a.Median.WRUPerEvent <= 0 {
			t.Errorf("%s: %d runs, want %d: %+v", a.Name, len(a.Rounds), runs, a.Rounds)
		}
	}
	// The reference, 3 arms with 20 grants, 2 contended.
	if len(rep.Arms) != 1+3+2 {
		t.Fatalf("%d arms: %v", len(rep.Arms), arms)
	}
	ref := arms["allowance, no grants (today)"]
	many := arms["allowance, 20 grants on the item"]
	race := arms["contended: one grant, 1 grant on the item"]
	if ref == nil || many == nil || race == nil {
		t.Fatalf("arms missing: %v", arms)
	}
	// The allowance consume on an item with grants is today's write: the
	// same update and condition expressions (the grants pinned as read:
	// the map, where today's finds none); a draw from a grant is not.
	if !many.SameWriteAsReference || len(ref.EntitlementWrites) != 1 || arms["one grant, 20 grants on the item"].SameWriteAsReference {
		t.Errorf("entitlement writes: today's %v, with 20 grants %v, one grant's %v", ref.EntitlementWrites, many.EntitlementWrites, arms["one grant, 20 grants on the item"].EntitlementWrites)
	}
	// One cold read and one transaction per event: an entitlement Update
	// and a ledger Put, 2 WRU per KB each.
	if ref.EntitlementKB != 1 || ref.Median.WRUPerEvent != 4 || ref.Median.RequestsPerEvent != 2 {
		t.Errorf("reference: %d KB, %v WRU, %v requests per event; want 1, 4, 2", ref.EntitlementKB, ref.Median.WRUPerEvent, ref.Median.RequestsPerEvent)
	}
	// The contended grant arm's item holds one grant: under 1 KB, so its
	// draws cost what the contended allowance consumes do.
	if race.EntitlementKB != 1 || race.WRURatio != 1 || race.Median.WritesPerEvent < 1 {
		t.Errorf("contended grant arm: %d KB, WRU ratio %v, %v writes per event", race.EntitlementKB, race.WRURatio, race.Median.WritesPerEvent)
	}
	if want := 4 + 2*float64(many.EntitlementKB-1); many.EntitlementKB < 2 || many.Median.WRUPerEvent != want {
		t.Errorf("allowance, 20 grants: %d KB (%d bytes), %v WRU per event; want at least 2 KB and %v", many.EntitlementKB, many.EntitlementBytes, many.Median.WRUPerEvent, want)
	}
}

// The arms, without DynamoDB: each draw at each count, the reference
// once, the contended pair; amounts that draw as the shapes say.
func TestGrantArms(t *testing.T) {
	arms := grantArms(GrantsConfig{GrantCounts: []int{5, 0, 1, 5}, Events: 10, ContendedEvents: 20})
	var names []string
	for _, a := range arms {
		names = append(names, a.Name+" | "+a.Shape+" | "+a.Amount+" | "+a.Reference)
	}
	want := []string{
		"allowance, no grants (today) | allowance | 5 | ",
		"allowance, 1 grant on the item | allowance | 5 | allowance, no grants (today)",
		"one grant, 1 grant on the item | grant | 5 | allowance, no grants (today)",
		"several grants, 1 grant on the item | allowance+grant | 5 | allowance, no grants (today)",
		"allowance, 5 grants on the item | allowance | 5 | allowance, no grants (today)",
		"one grant, 5 grants on the item | grant | 5 | allowance, no grants (today)",
		"several grants, 5 grants on the item | allowance+3 grants | 205 | allowance, no grants (today)",
		"contended: allowance, no grants (today) | allowance | 1 | ",
		"contended: one grant, 1 grant on the item | grant | 1 | contended: allowance, no grants (today)",
	}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Errorf("arms:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	w := armWorkload(arms[6], 10, testNow)
	e := w.Entitlements[0]
	if len(w.Entitlements) != 10 || len(w.Messages) != 10 || len(e.Grants) != 5 || e.Used.String() != "999998" {
		t.Errorf("several grants, 5: %d entitlements, %d messages, %d grants, used %s", len(w.Entitlements), len(w.Messages), len(e.Grants), e.Used)
	}
	if c := armWorkload(arms[8], 20, testNow); len(c.Entitlements) != 1 || len(c.Messages) != 20 || c.Entitlements[0].Grants[0].Amount.String() != "1000000" {
		t.Errorf("contended: %d entitlements, %d messages", len(c.Entitlements), len(c.Messages))
	}
	// The messages have the same shapes in every arm: only amounts differ.
	a, b := armWorkload(arms[0], 10, testNow), armWorkload(arms[6], 10, testNow)
	for i := range a.Messages {
		if a.Messages[i].ID != b.Messages[i].ID || a.Messages[i].DedupKey != b.Messages[i].DedupKey {
			t.Fatalf("message %d differs between arms", i)
		}
	}
}
