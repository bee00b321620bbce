package producer_test

import (
	"strings"
	"testing"

	"github.com/usage-event-service/usage-event-service/producer"
	"github.com/usage-event-service/usage-event-service/usage"
)

// The body carries every character of the contract, escaped where SQS
// refuses it raw, and parses to the same event.
func TestBodyEscapesCharactersSQSRefuses(t *testing.T) {
	ev := usage.NewEvent("a\uFFFEb😀", "k\uFFFF")
	ev.Metadata = []byte("{\"x\":\"\uFFFE\"}")
	body, err := producer.Body(ev)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(string(body), "\uFFFE\uFFFF😀") {
		t.Fatalf("raw U+FFFE/U+FFFF or a character above U+FFFF in %q", body)
	}
	back, err := usage.ParseEvent(body)
	if err != nil || back.UserID != ev.UserID || back.EntitlementKey != ev.EntitlementKey {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}
