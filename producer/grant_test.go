package producer_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/usage-event-service/usage-event-service/producer"
	"github.com/usage-event-service/usage-event-service/usage"
)

// grantEvent is a grant of 500 with an expiry given in an offset of
// +01:30 and a priority; voidEvent ends it.
func grantEvent() usage.Event {
	at := time.Date(2027, 1, 31, 1, 30, 0, 0, time.FixedZone("", 90*60))
	priority := 10
	ev := usage.NewEvent("u", "k")
	ev.Operation, ev.GrantID, ev.Amount, ev.ExpiresAt, ev.Priority = usage.OperationGrant, "promo-2027-01", usage.MustDecimal("500"), &at, &priority
	return ev
}

func voidEvent() usage.Event {
	return usage.Event{UserID: "u", EntitlementKey: "k", Operation: usage.OperationVoid, GrantID: "promo-2027-01"}
}

// A grant and a void pass the checks the Publisher makes (Validate and
// CheckQueued: the queue takes both), and their body, expiresAt in UTC,
// reads back as the same event.
func TestGrantAndVoidSerializeAndValidate(t *testing.T) {
	tests := []struct {
		name string
		ev   usage.Event
		body string
	}{
		{"grant", grantEvent(), `{"userId":"u","entitlementKey":"k","operation":"grant","amount":500,"grantId":"promo-2027-01","expiresAt":"2027-01-31T00:00:00Z","priority":10}`},
		{"void", voidEvent(), `{"userId":"u","entitlementKey":"k","operation":"void","grantId":"promo-2027-01"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.ev.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if err := tt.ev.CheckQueued(); err != nil {
				t.Fatalf("CheckQueued: %v", err)
			}
			body, err := producer.Body(tt.ev)
			if err != nil || string(body) != tt.body {
				t.Fatalf("Body = %s, %v\nwant %s", body, err, tt.body)
			}
			back, err := usage.ParseEvent(body)
			if err != nil {
				t.Fatal(err)
			}
			if back.GrantID != tt.ev.GrantID || back.Amount.Cmp(tt.ev.Amount) != 0 || (back.ExpiresAt == nil) != (tt.ev.ExpiresAt == nil) ||
				back.ExpiresAt != nil && !back.ExpiresAt.Equal(*tt.ev.ExpiresAt) || (back.Priority == nil) != (tt.ev.Priority == nil) {
				t.Errorf("read back as %+v", back)
			}
		})
	}
}

// A grant is sent with its GrantID as its key, never a generated one
// (which the service would refuse: a grant's key must equal its ID), on
// every queue and whatever the options; a void gets a key as any event.
func TestGrantsAreSentWithTheirIDAsKey(t *testing.T) {
	const std, fifo = "https://sqs.us-east-1.amazonaws.com/000000000000/q", "https://sqs.us-east-1.amazonaws.com/000000000000/q.fifo"
	tests := []struct {
		name    string
		url     string
		opts    []producer.Option
		voidKey func(string) bool
	}{
		{"default", std, nil, isUUIDv7},
		{"WithoutGeneratedKeys", std, []producer.Option{producer.WithoutGeneratedKeys()}, func(k string) bool { return k == "" }},
		{"FIFO", fifo, []producer.Option{producer.WithoutGeneratedKeys()}, isUUIDv7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sent fakeSQS
			p, err := producer.New(aws.Config{}, tt.url, append(tt.opts, producer.WithClient(&sent))...)
			if err != nil {
				t.Fatal(err)
			}
			keyed := grantEvent()
			keyed.IdempotencyKey = keyed.GrantID
			results, err := p.PublishBatch(context.Background(), []usage.Event{grantEvent(), keyed, voidEvent()})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range results {
				if r.Err != nil {
					t.Fatalf("event %d: %v", i, r.Err)
				}
				ev, err := usage.ParseEvent([]byte(aws.ToString(sent.entries[i].MessageBody)))
				if err != nil {
					t.Fatal(err)
				}
				if ev.IdempotencyKey != r.IdempotencyKey {
					t.Errorf("event %d: body key %q, receipt key %q", i, ev.IdempotencyKey, r.IdempotencyKey)
				}
				if d := aws.ToString(sent.entries[i].MessageDeduplicationId); tt.url == fifo && d != producer.FIFOID(r.IdempotencyKey) {
					t.Errorf("event %d: MessageDeduplicationId %q, want the key's", i, d)
				}
			}
			if results[0].IdempotencyKey != "promo-2027-01" || results[1].IdempotencyKey != "promo-2027-01" {
				t.Errorf("grant keys %q, %q: want the grantId", results[0].IdempotencyKey, results[1].IdempotencyKey)
			}
			if !tt.voidKey(results[2].IdempotencyKey) {
				t.Errorf("void key %q", results[2].IdempotencyKey)
			}
		})
	}
}

// What the service would refuse of a grant or a void is refused before
// sending, with its reason and field.
func TestInvalidGrantsAndVoidsAreNotSent(t *testing.T) {
	p, err := producer.New(aws.Config{}, "https://sqs.us-east-1.amazonaws.com/000000000000/q", producer.WithClient(nobody{t}))
	if err != nil {
		t.Fatal(err)
	}
	with := func(ev usage.Event, change func(*usage.Event)) usage.Event { change(&ev); return ev }
	tooLate := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	high := usage.MaxGrantPriority + 1
	tests := []struct {
		name  string
		ev    usage.Event
		want  *usage.RejectionError
		field string
	}{
		{"grant without grantId", with(grantEvent(), func(e *usage.Event) { e.GrantID = "" }), usage.ErrMissingField, "grantId"},
		{"grant of 0", with(grantEvent(), func(e *usage.Event) { e.Amount = usage.Decimal{} }), usage.ErrInvalidAmount, "amount"},
		{"grant key not its grantId", with(grantEvent(), func(e *usage.Event) { e.IdempotencyKey = "other" }), usage.ErrInvalidField, "idempotencyKey"},
		{"grant priority 1001", with(grantEvent(), func(e *usage.Event) { e.Priority = &high }), usage.ErrInvalidField, "priority"},
		{"grant expiring after year 9999", with(grantEvent(), func(e *usage.Event) { e.ExpiresAt = &tooLate }), usage.ErrInvalidField, "expiresAt"},
		{"void with an amount", with(voidEvent(), func(e *usage.Event) { e.Amount = usage.DecimalFromInt(1) }), usage.ErrInvalidField, "amount"},
		{"void with a priority", with(voidEvent(), func(e *usage.Event) { e.Priority = grantEvent().Priority }), usage.ErrInvalidField, "priority"},
		{"grantId on a consume", with(usage.NewEvent("u", "k"), func(e *usage.Event) { e.GrantID = "g" }), usage.ErrInvalidField, "grantId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := p.Publish(context.Background(), tt.ev)
			var rej *usage.RejectionError
			if !errors.Is(err, tt.want) || !errors.As(err, &rej) || rej.Field != tt.field {
				t.Fatalf("err = %v, want %s on %s", err, tt.want.Reason, tt.field)
			}
			if r.Attempts != 0 || r.IdempotencyKey != "" {
				t.Errorf("receipt %+v: a rejected event is neither sent nor given a key", r)
			}
		})
	}
}

// fakeSQS accepts every entry and keeps them, in order.
type fakeSQS struct {
	mu      sync.Mutex
	entries []sqstypes.SendMessageBatchRequestEntry
}

func (f *fakeSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		f.entries = append(f.entries, e)
		out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m-" + aws.ToString(e.Id))})
	}
	return out, nil
}
