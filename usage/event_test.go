package usage_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/usage-event-service/usage-event-service/usage"
)

func TestParseEventAcceptsTheContract(t *testing.T) {
	tests := []struct {
		name, body   string
		user, key    string
		amount, idem string
		metadata     string
	}{
		{"full example", `{"userId":"user-123","entitlementKey":"AI_TUTOR_ACCESS","amount":1,"idempotencyKey":"optional-unique-key","metadata":{"resourceId":"session-456"}}`,
			"user-123", "AI_TUTOR_ACCESS", "1", "optional-unique-key", `{"resourceId":"session-456"}`},
		{"amount defaults to 1", `{"userId":"u","entitlementKey":"k"}`, "u", "k", "1", "", ""},
		{"decimal amount is exact", `{"userId":"u","entitlementKey":"k","amount":0.1}`, "u", "k", "0.1", "", ""},
		{"exponent amount", `{"userId":"u","entitlementKey":"k","amount":2.5e3}`, "u", "k", "2500", "", ""},
		{"38 significant digits", `{"userId":"u","entitlementKey":"k","amount":1.2345678901234567890123456789012345678}`, "u", "k", "1.2345678901234567890123456789012345678", "", ""},
		{"unknown fields ignored", `{"userId":"u","entitlementKey":"k","source":"x","extra":{"a":[1,2]}}`, "u", "k", "1", "", ""},
		{"unknown field repeated is ignored", `{"userId":"u","entitlementKey":"k","x":1,"x":2}`, "u", "k", "1", "", ""},
		{"null optional fields", `{"userId":"u","entitlementKey":"k","idempotencyKey":null,"metadata":null}`, "u", "k", "1", "", ""},
		{"metadata compacted", "{\"userId\":\"u\",\"entitlementKey\":\"k\",\"metadata\":{ \"a\" : [ 1 , 2 ] }}", "u", "k", "1", "", `{"a":[1,2]}`},
		{"whitespace around body", " \n{\"userId\":\"u\",\"entitlementKey\":\"k\"}\n ", "u", "k", "1", "", ""},
		{"256-character ids", `{"userId":"` + strings.Repeat("é", 256) + `","entitlementKey":"k"}`, strings.Repeat("é", 256), "k", "1", "", ""},
		{"escaped characters", `{"userId":"a\"b\u00e9#%","entitlementKey":"k"}`, "a\"bé#%", "k", "1", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := usage.ParseEvent([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseEvent: %v", err)
			}
			if ev.UserID != tt.user || ev.EntitlementKey != tt.key || ev.Amount.String() != tt.amount || ev.IdempotencyKey != tt.idem || string(ev.Metadata) != tt.metadata {
				t.Errorf("got %+v (amount %s, metadata %s)", ev, ev.Amount, ev.Metadata)
			}
		})
	}
}

// badInputs is the specification of rejections: every malformed body and
// the reason code it must get. Nothing else about the message matters.
var badInputs = []struct {
	name   string
	body   string
	reason usage.Reason
	field  string
}{
	{"empty body", ``, usage.ReasonInvalidJSON, ""},
	{"only whitespace", "  \n", usage.ReasonInvalidJSON, ""},
	{"truncated object", `{"userId":"u","entitlementKey":"k"`, usage.ReasonInvalidJSON, ""},
	{"truncated string", `{"userId":"u`, usage.ReasonInvalidJSON, ""},
	{"trailing comma", `{"userId":"u","entitlementKey":"k",}`, usage.ReasonInvalidJSON, ""},
	{"single quotes", `{'userId':'u'}`, usage.ReasonInvalidJSON, ""},
	{"array body", `[{"userId":"u","entitlementKey":"k"}]`, usage.ReasonInvalidJSON, ""},
	{"string body", `"hello"`, usage.ReasonInvalidJSON, ""},
	{"number body", `42`, usage.ReasonInvalidJSON, ""},
	{"null body", `null`, usage.ReasonInvalidJSON, ""},
	{"boolean body", `true`, usage.ReasonInvalidJSON, ""},
	{"two objects", `{"userId":"u","entitlementKey":"k"}{"userId":"v","entitlementKey":"k"}`, usage.ReasonInvalidJSON, ""},
	{"trailing garbage", `{"userId":"u","entitlementKey":"k"} x`, usage.ReasonInvalidJSON, ""},
	{"invalid UTF-8", "{\"userId\":\"\xff\xfe\",\"entitlementKey\":\"k\"}", usage.ReasonInvalidJSON, ""},
	{"NaN literal", `{"userId":"u","entitlementKey":"k","amount":NaN}`, usage.ReasonInvalidJSON, ""},
	{"Infinity literal", `{"userId":"u","entitlementKey":"k","amount":Infinity}`, usage.ReasonInvalidJSON, ""},
	{"leading zero number", `{"userId":"u","entitlementKey":"k","amount":01}`, usage.ReasonInvalidJSON, ""},
	{"plus sign number", `{"userId":"u","entitlementKey":"k","amount":+1}`, usage.ReasonInvalidJSON, ""},
	{"duplicate userId", `{"userId":"u","userId":"v","entitlementKey":"k"}`, usage.ReasonInvalidJSON, "userId"},
	{"duplicate amount", `{"userId":"u","entitlementKey":"k","amount":1,"amount":100}`, usage.ReasonInvalidJSON, "amount"},
	{"deep nesting beyond the decoder", `{"userId":"u","entitlementKey":"k","x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, usage.ReasonInvalidJSON, ""},
	{"missing userId", `{"entitlementKey":"k"}`, usage.ReasonMissingField, "userId"},
	{"null userId", `{"userId":null,"entitlementKey":"k"}`, usage.ReasonMissingField, "userId"},
	{"empty userId", `{"userId":"","entitlementKey":"k"}`, usage.ReasonMissingField, "userId"},
	{"missing entitlementKey", `{"userId":"u"}`, usage.ReasonMissingField, "entitlementKey"},
	{"empty entitlementKey", `{"userId":"u","entitlementKey":""}`, usage.ReasonMissingField, "entitlementKey"},
	{"empty object", `{}`, usage.ReasonMissingField, "userId"},
	{"field names are case-sensitive", `{"UserId":"u","entitlementKey":"k"}`, usage.ReasonMissingField, "userId"},
	{"numeric userId", `{"userId":123,"entitlementKey":"k"}`, usage.ReasonInvalidField, "userId"},
	{"object userId", `{"userId":{"id":"u"},"entitlementKey":"k"}`, usage.ReasonInvalidField, "userId"},
	{"whitespace-only userId", `{"userId":"  \t","entitlementKey":"k"}`, usage.ReasonInvalidField, "userId"},
	{"unknown operation", `{"userId":"u","entitlementKey":"k","operation":"transfer"}`, usage.ReasonInvalidField, "operation"},
	{"operation in capitals", `{"userId":"u","entitlementKey":"k","operation":"REFUND","refundOf":"c"}`, usage.ReasonInvalidField, "operation"},
	{"numeric operation", `{"userId":"u","entitlementKey":"k","operation":1}`, usage.ReasonInvalidField, "operation"},
	{"refund without refundOf", `{"userId":"u","entitlementKey":"k","operation":"refund"}`, usage.ReasonMissingField, "refundOf"},
	{"refund with an empty refundOf", `{"userId":"u","entitlementKey":"k","operation":"refund","refundOf":""}`, usage.ReasonInvalidField, "refundOf"},
	{"refundOf too long", `{"userId":"u","entitlementKey":"k","operation":"refund","refundOf":"` + strings.Repeat("r", 257) + `"}`, usage.ReasonInvalidField, "refundOf"},
	{"NUL in refundOf", `{"userId":"u","entitlementKey":"k","operation":"refund","refundOf":"a\u0000"}`, usage.ReasonInvalidField, "refundOf"},
	{"refundOf on a consume", `{"userId":"u","entitlementKey":"k","refundOf":"c"}`, usage.ReasonInvalidField, "refundOf"},
	{"refund of amount 0", `{"userId":"u","entitlementKey":"k","operation":"refund","refundOf":"c","amount":0}`, usage.ReasonInvalidAmount, "amount"},
	{"reserve without a hold ID", `{"userId":"u","entitlementKey":"k","operation":"reserve","amount":5}`, usage.ReasonMissingField, "idempotencyKey"},
	{"holdSeconds 0", `{"userId":"u","entitlementKey":"k","operation":"reserve","idempotencyKey":"h","holdSeconds":0}`, usage.ReasonInvalidField, "holdSeconds"},
	{"holdSeconds over a day", `{"userId":"u","entitlementKey":"k","operation":"reserve","idempotencyKey":"h","holdSeconds":86401}`, usage.ReasonInvalidField, "holdSeconds"},
	{"holdSeconds as a string", `{"userId":"u","entitlementKey":"k","operation":"reserve","idempotencyKey":"h","holdSeconds":"900"}`, usage.ReasonInvalidField, "holdSeconds"},
	{"fractional holdSeconds", `{"userId":"u","entitlementKey":"k","operation":"reserve","idempotencyKey":"h","holdSeconds":1.5}`, usage.ReasonInvalidField, "holdSeconds"},
	{"holdSeconds on a consume", `{"userId":"u","entitlementKey":"k","holdSeconds":60}`, usage.ReasonInvalidField, "holdSeconds"},
	{"commit without holdId", `{"userId":"u","entitlementKey":"k","operation":"commit"}`, usage.ReasonMissingField, "holdId"},
	{"release with an empty holdId", `{"userId":"u","entitlementKey":"k","operation":"release","holdId":""}`, usage.ReasonInvalidField, "holdId"},
	{"holdId on a consume", `{"userId":"u","entitlementKey":"k","holdId":"h"}`, usage.ReasonInvalidField, "holdId"},
	{"a negative commit", `{"userId":"u","entitlementKey":"k","operation":"commit","holdId":"h","amount":-1}`, usage.ReasonInvalidAmount, "amount"},
	{"NUL in userId", `{"userId":"a\u0000b","entitlementKey":"k"}`, usage.ReasonInvalidField, "userId"},
	{"tab inside userId", `{"userId":"a\tb","entitlementKey":"k"}`, usage.ReasonInvalidField, "userId"},
	{"DEL in entitlementKey", `{"userId":"u","entitlementKey":"k\u007f"}`, usage.ReasonInvalidField, "entitlementKey"},
	{"newline in idempotencyKey", `{"userId":"u","entitlementKey":"k","idempotencyKey":"a\nb"}`, usage.ReasonInvalidField, "idempotencyKey"},
	{"unit separator in idempotencyKey", `{"userId":"u","entitlementKey":"k","idempotencyKey":"\u001f"}`, usage.ReasonInvalidField, "idempotencyKey"},
	{"userId too long", `{"userId":"` + strings.Repeat("u", 257) + `","entitlementKey":"k"}`, usage.ReasonInvalidField, "userId"},
	{"boolean entitlementKey", `{"userId":"u","entitlementKey":true}`, usage.ReasonInvalidField, "entitlementKey"},
	{"whitespace-only entitlementKey", `{"userId":"u","entitlementKey":" "}`, usage.ReasonInvalidField, "entitlementKey"},
	{"entitlementKey too long", `{"userId":"u","entitlementKey":"` + strings.Repeat("k", 257) + `"}`, usage.ReasonInvalidField, "entitlementKey"},
	{"empty idempotencyKey", `{"userId":"u","entitlementKey":"k","idempotencyKey":""}`, usage.ReasonInvalidField, "idempotencyKey"},
	{"numeric idempotencyKey", `{"userId":"u","entitlementKey":"k","idempotencyKey":7}`, usage.ReasonInvalidField, "idempotencyKey"},
	{"idempotencyKey too long", `{"userId":"u","entitlementKey":"k","idempotencyKey":"` + strings.Repeat("i", 257) + `"}`, usage.ReasonInvalidField, "idempotencyKey"},
	{"string amount", `{"userId":"u","entitlementKey":"k","amount":"1"}`, usage.ReasonInvalidAmount, "amount"},
	{"null amount", `{"userId":"u","entitlementKey":"k","amount":null}`, usage.ReasonInvalidAmount, "amount"},
	{"boolean amount", `{"userId":"u","entitlementKey":"k","amount":true}`, usage.ReasonInvalidAmount, "amount"},
	{"array amount", `{"userId":"u","entitlementKey":"k","amount":[1]}`, usage.ReasonInvalidAmount, "amount"},
	{"zero amount", `{"userId":"u","entitlementKey":"k","amount":0}`, usage.ReasonInvalidAmount, "amount"},
	{"negative zero amount", `{"userId":"u","entitlementKey":"k","amount":-0}`, usage.ReasonInvalidAmount, "amount"},
	{"negative zero float amount", `{"userId":"u","entitlementKey":"k","amount":-0.0e5}`, usage.ReasonInvalidAmount, "amount"},
	{"negative amount", `{"userId":"u","entitlementKey":"k","amount":-5}`, usage.ReasonInvalidAmount, "amount"},
	{"huge exponent", `{"userId":"u","entitlementKey":"k","amount":1e400}`, usage.ReasonInvalidAmount, "amount"},
	{"absurd exponent", `{"userId":"u","entitlementKey":"k","amount":1e999999999999}`, usage.ReasonInvalidAmount, "amount"},
	{"tiny amount", `{"userId":"u","entitlementKey":"k","amount":1e-200}`, usage.ReasonInvalidAmount, "amount"},
	{"39 significant digits", `{"userId":"u","entitlementKey":"k","amount":123456789012345678901234567890123456789}`, usage.ReasonInvalidAmount, "amount"},
	{"array metadata", `{"userId":"u","entitlementKey":"k","metadata":[1,2]}`, usage.ReasonInvalidMetadata, "metadata"},
	{"string metadata", `{"userId":"u","entitlementKey":"k","metadata":"x"}`, usage.ReasonInvalidMetadata, "metadata"},
	{"number metadata", `{"userId":"u","entitlementKey":"k","metadata":3}`, usage.ReasonInvalidMetadata, "metadata"},
	{"metadata over 32 KiB", `{"userId":"u","entitlementKey":"k","metadata":{"x":"` + strings.Repeat("m", 40<<10) + `"}}`, usage.ReasonInvalidMetadata, "metadata"},
	{"1 MiB body of metadata", `{"userId":"u","entitlementKey":"k","metadata":{"x":"` + strings.Repeat("m", 1<<20) + `"}}`, usage.ReasonInvalidMetadata, "metadata"},
}

func TestParseEventRejectsMalformedMessagesWithAReason(t *testing.T) {
	if len(badInputs) < 40 {
		t.Fatalf("the bad-input table has %d cases; the contract promises at least 40", len(badInputs))
	}
	for _, tt := range badInputs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := usage.ParseEvent([]byte(tt.body))
			var rej *usage.RejectionError
			if !errors.As(err, &rej) {
				t.Fatalf("got %v, want a *RejectionError", err)
			}
			if rej.Reason != tt.reason {
				t.Errorf("reason %s, want %s (%v)", rej.Reason, tt.reason, err)
			}
			if rej.Field != tt.field {
				t.Errorf("field %q, want %q (%v)", rej.Field, tt.field, err)
			}
			if rej.Message == "" {
				t.Error("no human message")
			}
			if !errors.Is(err, &usage.RejectionError{Reason: tt.reason}) {
				t.Errorf("errors.Is does not match the reason sentinel")
			}
		})
	}
}

func TestEventMarshalRoundTrips(t *testing.T) {
	ev := usage.NewEvent("user-1", "KEY")
	ev.Amount = usage.MustDecimal("12.50")
	ev.IdempotencyKey = "k-1"
	ev.Metadata = []byte(`{ "a": 1 }`)
	body, err := ev.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"userId":"user-1","entitlementKey":"KEY","amount":12.5,"idempotencyKey":"k-1","metadata":{"a":1}}`; string(body) != want {
		t.Fatalf("got %s, want %s", body, want)
	}
	back, err := usage.ParseEvent(body)
	if err != nil {
		t.Fatal(err)
	}
	if back.Amount.Cmp(ev.Amount) != 0 || back.UserID != ev.UserID || back.IdempotencyKey != ev.IdempotencyKey {
		t.Errorf("round trip changed the event: %+v", back)
	}
}

func TestValidateRejectsAZeroAmountFromGoProducers(t *testing.T) {
	ev := usage.Event{UserID: "u", EntitlementKey: "k"}
	if err := ev.Validate(); !errors.Is(err, usage.ErrInvalidAmount) {
		t.Fatalf("got %v, want INVALID_AMOUNT", err)
	}
}

// FuzzParseEvent: no input may panic, and every failure is a rejection
// with a reason; every accepted event validates and survives a round trip.
func FuzzParseEvent(f *testing.F) {
	for _, tt := range badInputs {
		if len(tt.body) < 4096 {
			f.Add([]byte(tt.body))
		}
	}
	f.Add([]byte(`{"userId":"user-123","entitlementKey":"AI_TUTOR_ACCESS","amount":1,"idempotencyKey":"optional-unique-key","metadata":{"resourceId":"session-456"}}`))
	f.Add([]byte(`{"operation":"refund","userId":"u1","entitlementKey":"AI_TUTOR_ACCESS","refundOf":"c-1","amount":1,"idempotencyKey":"r-1"}`))
	f.Add([]byte(`{"operation":"balance","userId":"u1","entitlementKey":"AI_TUTOR_ACCESS"}`))
	f.Add([]byte(`{"operation":"reserve","userId":"u1","entitlementKey":"AI_TUTOR_ACCESS","amount":5,"idempotencyKey":"job-77","holdSeconds":900}`))
	f.Add([]byte(`{"operation":"commit","userId":"u1","entitlementKey":"AI_TUTOR_ACCESS","holdId":"job-77","amount":0}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := usage.ParseEvent(body)
		if err != nil {
			var rej *usage.RejectionError
			if !errors.As(err, &rej) || rej.Reason == "" || rej.Message == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("accepted event does not validate: %v", err)
		}
		out, err := ev.MarshalJSON()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, err := usage.ParseEvent(out)
		if err != nil {
			t.Fatalf("round trip of %s failed: %v", out, err)
		}
		if back.UserID != ev.UserID || back.EntitlementKey != ev.EntitlementKey || back.Amount.Cmp(ev.Amount) != 0 || back.IdempotencyKey != ev.IdempotencyKey || string(back.Metadata) != string(ev.Metadata) ||
			back.Operation != ev.Operation || back.RefundOf != ev.RefundOf || back.HoldID != ev.HoldID || back.HoldSeconds != ev.HoldSeconds {
			t.Fatalf("round trip changed %+v into %+v", ev, back)
		}
	})
}

func TestParseOperations(t *testing.T) {
	tests := []struct {
		body     string
		op       usage.Operation
		refundOf string
		amount   string
	}{
		{`{"userId":"u","entitlementKey":"k"}`, usage.OperationConsume, "", "1"},
		{`{"userId":"u","entitlementKey":"k","operation":"consume","amount":2}`, usage.OperationConsume, "", "2"},
		{`{"userId":"u","entitlementKey":"k","operation":null}`, usage.OperationConsume, "", "1"},
		{`{"userId":"u","entitlementKey":"k","operation":"refund","refundOf":"c-1"}`, usage.OperationRefund, "c-1", "0"},
		{`{"userId":"u","entitlementKey":"k","operation":"refund","refundOf":"c-1","amount":0.5}`, usage.OperationRefund, "c-1", "0.5"},
		{`{"userId":"u","entitlementKey":"k","operation":"balance"}`, usage.OperationBalance, "", "0"},
		{`{"userId":"u","entitlementKey":"k","operation":"reserve","idempotencyKey":"h","holdSeconds":60}`, usage.OperationReserve, "", "1"},
		{`{"userId":"u","entitlementKey":"k","operation":"commit","holdId":"h","amount":0}`, usage.OperationCommit, "", "0"},
		{`{"userId":"u","entitlementKey":"k","operation":"release","holdId":"h"}`, usage.OperationRelease, "", "0"},
	}
	for _, tt := range tests {
		ev, err := usage.ParseEvent([]byte(tt.body))
		if err != nil {
			t.Errorf("%s: %v", tt.body, err)
			continue
		}
		if !ev.Is(tt.op) || ev.RefundOf != tt.refundOf || ev.Amount.Cmp(usage.MustDecimal(tt.amount)) != 0 {
			t.Errorf("%s: operation %q refundOf %q amount %s", tt.body, ev.Operation, ev.RefundOf, ev.Amount)
		}
		// The wire form parses back to the same request.
		b, err := ev.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := usage.ParseEvent(b)
		if err != nil || back.Operation != ev.Operation || back.RefundOf != ev.RefundOf || back.Amount.Cmp(ev.Amount) != 0 {
			t.Errorf("%s: round trip %s gives %+v, %v", tt.body, b, back, err)
		}
	}
	if err := (usage.Event{UserID: "u", EntitlementKey: "k", Operation: usage.OperationBalance}).CheckQueued(); !errors.Is(err, usage.ErrInvalidField) {
		t.Errorf("a queued balance: %v, want INVALID_FIELD", err)
	}
	if err := (usage.Event{UserID: "u", EntitlementKey: "k", Operation: usage.OperationReserve}).CheckQueued(); !errors.Is(err, usage.ErrInvalidField) {
		t.Errorf("a queued reserve: %v, want INVALID_FIELD", err)
	}
	if _, err := usage.ParseEvent([]byte(`{"userId":"u","entitlementKey":"k","operation":"expire","holdId":"h"}`)); !errors.Is(err, usage.ErrInvalidField) {
		t.Errorf("a request naming the sweeper's expire: %v, want INVALID_FIELD", err)
	}
}
