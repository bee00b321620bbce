package usage_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/usage-event-service/usage-event-service/producer"
	"github.com/usage-event-service/usage-event-service/usage"
)

// The shared validation vectors: message bodies and what the service makes
// of them, run by this test and by the TypeScript producer's tests
// (producer-ts/test), so that the two validations cannot drift apart. The
// expectations are this implementation's answers, frozen: after a
// deliberate change of the contract, regenerate them with
//
//	go test ./usage -run Vectors -update-vectors
//
// and review the diff (the TypeScript package must then follow).
const vectorsFile = "testdata/vectors.json"

var updateVectors = flag.Bool("update-vectors", false, "rewrite the expectations in "+vectorsFile+" from this implementation")

type vectorFile struct {
	Comment       []string              `json:"comment"`
	Validation    []validationVector    `json:"validation"`
	Serialization []serializationVector `json:"serialization"`
}

// validationVector is one body. Exactly one of Body (text), BodyBase64 (any
// bytes, for invalid UTF-8) and BodyParts (concatenated, for long bodies)
// gives it.
type validationVector struct {
	Name       string     `json:"name"`
	Body       *string    `json:"body,omitempty"`
	BodyBase64 *string    `json:"bodyBase64,omitempty"`
	BodyParts  []bodyPart `json:"bodyParts,omitempty"`
	// Parse is what ParseEvent says (the synchronous door); Queue what a
	// message on the queue gets (ParseEvent, then CheckQueued).
	Parse vectorOutcome `json:"parse"`
	Queue vectorOutcome `json:"queue"`
}

// bodyPart is Text, or Repeat written Times times.
type bodyPart struct {
	Text   string `json:"text,omitempty"`
	Repeat string `json:"repeat,omitempty"`
	Times  int    `json:"times,omitempty"`
}

type vectorOutcome struct {
	Valid   bool         `json:"valid"`
	Reason  usage.Reason `json:"reason,omitempty"`
	Field   string       `json:"field,omitempty"`
	Message string       `json:"message,omitempty"`
	Event   *vectorEvent `json:"event,omitempty"` // Parse only
}

// vectorEvent is a parsed event, every field written out.
type vectorEvent struct {
	UserID         string  `json:"userId"`
	PoolID         string  `json:"poolId"`
	EntitlementKey string  `json:"entitlementKey"`
	Operation      string  `json:"operation"`
	Amount         string  `json:"amount"` // usage.Decimal.String
	AmountGiven    bool    `json:"amountGiven"`
	IdempotencyKey string  `json:"idempotencyKey"`
	Metadata       *string `json:"metadata"` // compact JSON, or null
	RefundOf       string  `json:"refundOf"`
	HoldID         string  `json:"holdId"`
	HoldSeconds    int     `json:"holdSeconds"`
	GrantID        string  `json:"grantId"`
	ExpiresAt      string  `json:"expiresAt"` // usage.FormatInstant (UTC), or "" when absent
	Priority       *int    `json:"priority"`  // null when absent
}

// serializationVector is an event as a producer builds it and the exact
// body a producer sends for it. An absent amount is the default: 1 for a
// consume (usage.NewEvent), none for the other operations.
type serializationVector struct {
	Name  string      `json:"name"`
	Event serialEvent `json:"event"`
	Body  string      `json:"body"`
}

type serialEvent struct {
	UserID         string  `json:"userId,omitempty"`
	PoolID         string  `json:"poolId,omitempty"`
	EntitlementKey string  `json:"entitlementKey"`
	Operation      string  `json:"operation,omitempty"`
	Amount         *string `json:"amount,omitempty"`
	IdempotencyKey string  `json:"idempotencyKey,omitempty"`
	Metadata       *string `json:"metadata,omitempty"` // JSON text
	RefundOf       string  `json:"refundOf,omitempty"`
	HoldID         string  `json:"holdId,omitempty"`
	GrantID        string  `json:"grantId,omitempty"`
	// ExpiresAt is RFC 3339 text in any offset (the body carries it in UTC).
	ExpiresAt string `json:"expiresAt,omitempty"`
	Priority  *int   `json:"priority,omitempty"`
}

func (v validationVector) body(t *testing.T) []byte {
	t.Helper()
	switch {
	case v.Body != nil && v.BodyBase64 == nil && v.BodyParts == nil:
		return []byte(*v.Body)
	case v.BodyBase64 != nil && v.Body == nil && v.BodyParts == nil:
		b, err := base64.StdEncoding.DecodeString(*v.BodyBase64)
		if err != nil {
			t.Fatalf("bodyBase64: %v", err)
		}
		return b
	case v.BodyParts != nil && v.Body == nil && v.BodyBase64 == nil:
		var b bytes.Buffer
		for _, p := range v.BodyParts {
			if (p.Text != "") == (p.Repeat != "") || (p.Repeat != "") != (p.Times > 0) {
				t.Fatalf("a body part is either text or a repeat with times, got %+v", p)
			}
			b.WriteString(p.Text)
			b.WriteString(strings.Repeat(p.Repeat, p.Times))
		}
		return b.Bytes()
	}
	t.Fatal("exactly one of body, bodyBase64 and bodyParts must be given")
	return nil
}

func outcomeOf(err error) vectorOutcome {
	if err == nil {
		return vectorOutcome{Valid: true}
	}
	var r *usage.RejectionError
	if !errors.As(err, &r) {
		return vectorOutcome{Reason: "NOT_A_REJECTION", Message: err.Error()}
	}
	return vectorOutcome{Reason: r.Reason, Field: r.Field, Message: r.Message}
}

func eventOf(ev usage.Event) *vectorEvent {
	out := &vectorEvent{
		UserID: ev.UserID, PoolID: ev.PoolID, EntitlementKey: ev.EntitlementKey, Operation: string(ev.Operation),
		Amount: ev.Amount.String(), AmountGiven: ev.AmountGiven, IdempotencyKey: ev.IdempotencyKey,
		RefundOf: ev.RefundOf, HoldID: ev.HoldID, HoldSeconds: ev.HoldSeconds,
		GrantID: ev.GrantID, Priority: ev.Priority,
	}
	if ev.ExpiresAt != nil {
		out.ExpiresAt = usage.FormatInstant(*ev.ExpiresAt)
	}
	if ev.Metadata != nil {
		m := string(ev.Metadata)
		out.Metadata = &m
	}
	return out
}

func (s serialEvent) event(t *testing.T) usage.Event {
	t.Helper()
	ev := usage.Event{UserID: s.UserID, PoolID: s.PoolID, EntitlementKey: s.EntitlementKey, Operation: usage.Operation(s.Operation),
		IdempotencyKey: s.IdempotencyKey, RefundOf: s.RefundOf, HoldID: s.HoldID, GrantID: s.GrantID, Priority: s.Priority}
	if ev.Is(usage.OperationConsume) {
		ev.Amount = usage.DecimalFromInt(1)
	}
	if s.Amount != nil {
		d, err := usage.ParseDecimal(*s.Amount)
		if err != nil {
			t.Fatalf("amount: %v", err)
		}
		ev.Amount, ev.AmountGiven = d, true
	}
	if s.ExpiresAt != "" {
		at, err := usage.ParseInstant(s.ExpiresAt)
		if err != nil {
			t.Fatalf("expiresAt: %v", err)
		}
		ev.ExpiresAt = &at
	}
	if s.Metadata != nil {
		ev.Metadata = json.RawMessage(*s.Metadata)
	}
	return ev
}

func readVectors(t *testing.T) vectorFile {
	t.Helper()
	data, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", vectorsFile, err)
	}
	return f
}

func writeVectors(t *testing.T, f vectorFile) {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vectorsFile, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVectors(t *testing.T) {
	f := readVectors(t)
	names := map[string]bool{}
	for i := range f.Validation {
		v := &f.Validation[i]
		if names[v.Name] {
			t.Errorf("vector name %q is used twice", v.Name)
		}
		names[v.Name] = true
		t.Run("validation/"+v.Name, func(t *testing.T) {
			ev, err := usage.ParseEvent(v.body(t))
			parse := outcomeOf(err)
			queue := parse
			if err == nil {
				parse.Event = eventOf(ev)
				queue = outcomeOf(ev.CheckQueued())
			}
			if *updateVectors {
				v.Parse, v.Queue = parse, queue
				return
			}
			if !reflect.DeepEqual(parse, v.Parse) {
				t.Errorf("parse: got %s\nwant %s", mustJSON(parse), mustJSON(v.Parse))
			}
			if !reflect.DeepEqual(queue, v.Queue) {
				t.Errorf("queue: got %s\nwant %s", mustJSON(queue), mustJSON(v.Queue))
			}
		})
	}
	for i := range f.Serialization {
		v := &f.Serialization[i]
		if names[v.Name] {
			t.Errorf("vector name %q is used twice", v.Name)
		}
		names[v.Name] = true
		t.Run("serialization/"+v.Name, func(t *testing.T) {
			ev := v.Event.event(t)
			if err := ev.Validate(); err != nil {
				t.Fatalf("serialization vectors are valid events: %v", err)
			}
			body, err := producer.Body(ev)
			if err != nil {
				t.Fatal(err)
			}
			if *updateVectors {
				v.Body = string(body)
			} else if string(body) != v.Body {
				t.Errorf("body:\n got %s\nwant %s", body, v.Body)
			}
			// What is sent is read back as the same event, and a queue takes it.
			back, err := usage.ParseEvent(body)
			if err != nil {
				t.Fatalf("ParseEvent(%s): %v", body, err)
			}
			if err := back.CheckQueued(); err != nil {
				t.Errorf("CheckQueued: %v", err)
			}
			want, got := eventOf(ev), eventOf(back)
			want.AmountGiven = !ev.Amount.IsZero() || ev.AmountGiven // written, so read as given
			// The metadata may come back with characters escaped for SQS:
			// the same JSON value, not the same text.
			var wantMeta, gotMeta any
			if ev.Metadata != nil {
				if err := json.Unmarshal(ev.Metadata, &wantMeta); err != nil {
					t.Fatal(err)
				}
			}
			if back.Metadata != nil {
				if err := json.Unmarshal(back.Metadata, &gotMeta); err != nil {
					t.Fatal(err)
				}
			}
			if !reflect.DeepEqual(gotMeta, wantMeta) {
				t.Errorf("metadata read back as %s, want %s", back.Metadata, ev.Metadata)
			}
			want.Metadata, got.Metadata = nil, nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("read back as %s\nwant %s", mustJSON(got), mustJSON(want))
			}
		})
	}
	if *updateVectors {
		writeVectors(t, f)
		return
	}
	checkVectorCoverage(t, f)
}

// checkVectorCoverage: the vectors exercise every reason a message can get
// before anything is read, every field of every one, and every operation.
func checkVectorCoverage(t *testing.T, f vectorFile) {
	reasons := map[usage.Reason]bool{}
	fields := map[string]bool{}
	ops := map[string]bool{}
	for _, v := range f.Validation {
		reasons[v.Parse.Reason] = true
		reasons[v.Queue.Reason] = true
		fields[string(v.Parse.Reason)+"/"+v.Parse.Field] = true
		if v.Parse.Event != nil {
			ops[v.Parse.Event.Operation] = true
		}
	}
	for _, r := range []usage.Reason{usage.ReasonInvalidJSON, usage.ReasonMissingField, usage.ReasonInvalidField, usage.ReasonInvalidAmount, usage.ReasonInvalidMetadata} {
		if !reasons[r] {
			t.Errorf("no vector is rejected with %s", r)
		}
	}
	for _, field := range []string{"userId", "poolId", "entitlementKey", "idempotencyKey", "operation", "refundOf", "holdId", "holdSeconds", "grantId", "expiresAt", "priority", "amount"} {
		if !fields["INVALID_FIELD/"+field] {
			t.Errorf("no vector has an INVALID_FIELD %s", field)
		}
	}
	for _, op := range append([]usage.Operation{""}, usage.Operations...) {
		if !ops[string(op)] {
			t.Errorf("no valid vector has operation %q", op)
		}
	}
	if n := len(f.Validation); n < 60 {
		t.Errorf("%d validation vectors; the contract needs at least 60", n)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
