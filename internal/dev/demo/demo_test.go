package demo_test

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/usage-event-service/usage-event-service/internal/dev/demo"
)

// TestDemoShowsEveryKindOfOutcome runs the README's first command as a
// newcomer would see it and checks what it reports: every kind of outcome,
// and the notifications the events caused, as a subscriber receives them.
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
		`7\s+alice uses 70 more: 81 of 100 crosses 80 %\s+APPLIED`,
		`8\s+alice uses 19 more: 100 of 100 reaches 100 %\s+APPLIED`,
		`9\s+alice asks for 1 more, over her limit\s+REJECTED\s+LIMIT_EXCEEDED`,
		`10\s+and once more \(no second notification\)\s+REJECTED\s+LIMIT_EXCEEDED`,
		`alice\s+AI_TUTOR_ACCESS used=100 limit=100`,
		`bob\s+AI_TUTOR_ACCESS used=5 limit=5`,
		`carol\s+AI_TUTOR_ACCESS used=1 limit=10 periodStart=`,
		`dead-letter queue: 5 message\(s\)`,
		// The notifications those events caused, from the subscribed
		// queue, oldest first: one per threshold, one for the first
		// rejection of each entitlement, none for the second.
		`(?s)usage\.limit\.rejected\s+bob\s+AI_TUTOR_ACCESS\s+-\s+5 of 5, asked 1\s+[0-9a-f]{32}\n` +
			`\s+usage\.threshold\.reached\s+alice\s+AI_TUTOR_ACCESS\s+80 %\s+81 of 100\s+[0-9a-f]{32}\n` +
			`\s+usage\.threshold\.reached\s+alice\s+AI_TUTOR_ACCESS\s+100 %\s+100 of 100\s+[0-9a-f]{32}\n` +
			`\s+usage\.limit\.rejected\s+alice\s+AI_TUTOR_ACCESS\s+-\s+100 of 100, asked 1\s+[0-9a-f]{32}\n` +
			`\s+4 notification\(s\)`,
		// One as delivered: the attributes subscribers filter on, and the body.
		`entitlementKey = AI_TUTOR_ACCESS\n\s+type = usage\.threshold\.reached\n\s+userId = alice\n`,
		`\{"notificationId":"[0-9a-f]{32}","type":"usage\.threshold\.reached","userId":"alice","entitlementKey":"AI_TUTOR_ACCESS",.*"thresholdPercent":100,.*"limit":100,"used":100,`,
		`done; emulators stopped`,
	} {
		if !regexp.MustCompile(want).Match(out.Bytes()) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
