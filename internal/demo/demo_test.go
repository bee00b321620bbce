package demo_test

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/demo"
)

// TestDemoShowsEveryKindOfOutcome runs the README's first command as a
// newcomer would see it and checks what it reports.
func TestDemoShowsEveryKindOfOutcome(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own emulators and the worker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := demo.Run(ctx, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`1\s+a normal event\s+APPLIED`,
		`2\s+the same event again \(a producer retry\)\s+DUPLICATE`,
		`3\s+bob is at his limit of 5\s+REJECTED\s+LIMIT_EXCEEDED`,
		`4\s+an invalid event \(amount as a string\)\s+REJECTED\s+INVALID_AMOUNT`,
		`5\s+carol's month has rolled over: reset, then consume\s+APPLIED`,
		`6\s+an entitlement that does not exist\s+REJECTED\s+ENTITLEMENT_NOT_FOUND`,
		`alice\s+AI_TUTOR_ACCESS used=11 limit=100`,
		`bob\s+AI_TUTOR_ACCESS used=5 limit=5`,
		`carol\s+AI_TUTOR_ACCESS used=1 limit=10 periodStart=`,
		`dead-letter queue: 3 message\(s\)`,
		`done; emulators stopped`,
	} {
		if !regexp.MustCompile(want).Match(out.Bytes()) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
