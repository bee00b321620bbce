package sqs

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/usage-event-service/usage-event-service/producer"
)

// message is a received dead letter: sent at sentAt (zero: no
// SentTimestamp) with string attributes.
func message(id string, sentAt time.Time, attrs map[string]string) types.Message {
	m := types.Message{MessageId: aws.String(id), Body: aws.String(`{"userId":"u-1"}`), Attributes: map[string]string{}, MessageAttributes: map[string]types.MessageAttributeValue{}}
	if !sentAt.IsZero() {
		m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)] = strconv.FormatInt(sentAt.UnixMilli(), 10)
	}
	for k, v := range attrs {
		m.MessageAttributes[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	return m
}

func TestRedriveAgesAMessageFromItsEarliestKnownSend(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name        string
		m           types.Message
		force       bool
		wantRefused bool
		wantFirst   string
		wantWhy     string
	}{
		{"sent a day ago", message("a", now.Add(-day), nil), false, false, "2026-11-29T12:00:00Z", ""},
		{"exactly the retention old", message("b", now.Add(-14*day), nil), false, false, "2026-11-16T12:00:00Z", ""},
		{"older than the retention", message("c", now.Add(-15*day), nil), false, true, "2026-11-15T12:00:00Z", "360h0m0s ago: older than the dedup retention (336h0m0s)"},
		{"older, with force", message("d", now.Add(-15*day), nil), true, false, "2026-11-15T12:00:00Z", ""},
		{"a replay: its carried first send counts", message("e", now.Add(-day), map[string]string{AttrOriginalSentAt: "2026-11-01T00:00:00Z"}), false, true, "2026-11-01T00:00:00Z", "older than the dedup retention"},
		{"a carried send later than SentTimestamp is ignored", message("f", now.Add(-20*day), map[string]string{AttrOriginalSentAt: "2026-11-29T00:00:00Z"}), false, true, "2026-11-10T12:00:00Z", ""},
		{"an unparseable carried send is ignored", message("g", now.Add(-day), map[string]string{AttrOriginalSentAt: "yesterday"}), false, false, "2026-11-29T12:00:00Z", ""},
		{"no send time at all", message("h", time.Time{}, nil), false, true, "", "no send time"},
		{"no send time, with force", message("i", time.Time{}, nil), true, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDeadLetterMessage(tt.m)
			if d.FirstSentAt != tt.wantFirst {
				t.Errorf("FirstSentAt %q, want %q", d.FirstSentAt, tt.wantFirst)
			}
			r := Redrive{Force: tt.force}
			r.defaults()
			ref, refused := r.refusal(d, now)
			if refused != tt.wantRefused || !strings.Contains(ref.Error, tt.wantWhy) {
				t.Errorf("refused %v (%q), want %v (%q)", refused, ref.Error, tt.wantRefused, tt.wantWhy)
			}
			if refused && ref.MessageID != aws.ToString(tt.m.MessageId) {
				t.Errorf("refusal names %q", ref.MessageID)
			}
		})
	}
}

func TestRedriveSelects(t *testing.T) {
	rejected := newDeadLetterMessage(message("r-1", time.Now(), map[string]string{AttrReason: "LIMIT_EXCEEDED", AttrOriginalMessageID: "orig-1"}))
	moved := newDeadLetterMessage(message("p-1", time.Now(), nil))
	tests := []struct {
		ids           []string
		reason        string
		rejected, mvd bool
	}{
		{nil, "", true, true},
		{nil, ReasonNone, false, true},
		{nil, "LIMIT_EXCEEDED", true, false},
		{nil, "INVALID_AMOUNT", false, false},
		{[]string{"r-1"}, "", true, false},
		{[]string{"p-1", "r-1"}, ReasonNone, false, true},
	}
	for _, tt := range tests {
		r := Redrive{IDs: tt.ids, Reason: tt.reason}
		wanted := map[string]bool{}
		for _, id := range tt.ids {
			wanted[id] = true
		}
		if got := r.selects(rejected, wanted); got != tt.rejected {
			t.Errorf("ids %v reason %q: selects the rejected message %v, want %v", tt.ids, tt.reason, got, tt.rejected)
		}
		if got := r.selects(moved, wanted); got != tt.mvd {
			t.Errorf("ids %v reason %q: selects the moved message %v, want %v", tt.ids, tt.reason, got, tt.mvd)
		}
	}
}

func TestReplayAttributesCarryTheEventsIdentityOnly(t *testing.T) {
	sent := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		m        types.Message
		wantID   string
		wantSent string
	}{
		{"dead-lettered by the service", message("dlq-1", sent, map[string]string{AttrReason: "ENTITLEMENT_NOT_FOUND", AttrOriginalMessageID: "orig-1"}), "orig-1", "2026-11-01T00:00:00Z"},
		{"moved by the redrive policy: its own ID", message("orig-2", sent, nil), "orig-2", "2026-11-01T00:00:00Z"},
		{"the sender's placeholder for no ID", message("dlq-3", sent, map[string]string{AttrOriginalMessageID: "-"}), "dlq-3", "2026-11-01T00:00:00Z"},
		{"no send time", message("dlq-4", time.Time{}, nil), "dlq-4", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attrs := replayAttributes(newDeadLetterMessage(tt.m))
			if got := aws.ToString(attrs[AttrOriginalMessageID].StringValue); got != tt.wantID {
				t.Errorf("original ID %q, want %q", got, tt.wantID)
			}
			if got := aws.ToString(attrs[AttrOriginalSentAt].StringValue); got != tt.wantSent {
				t.Errorf("original send %q, want %q", got, tt.wantSent)
			}
			if _, ok := attrs[AttrReason]; ok || len(attrs) > 2 {
				t.Errorf("attributes %v: want only the event's identity", attrs)
			}
		})
	}
}

func TestChunkBySizeKeepsBatchesWithinSQSLimits(t *testing.T) {
	msgs := func(sizes ...int) []DeadLetterMessage {
		out := make([]DeadLetterMessage, len(sizes))
		for i, n := range sizes {
			out[i] = DeadLetterMessage{Body: strings.Repeat("x", n)}
		}
		return out
	}
	big := producer.MaxBatchBytes / 2
	tests := []struct {
		name string
		in   []DeadLetterMessage
		want []int // chunk lengths
	}{
		{"none", nil, nil},
		{"ten small", msgs(1, 1, 1, 1, 1, 1, 1, 1, 1, 1), []int{10}},
		{"eleven small", msgs(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), []int{10, 1}},
		{"two halves fit", msgs(big, big), []int{2}},
		{"three halves do not", msgs(big, big, 1), []int{2, 1}},
		{"one over the limit alone", msgs(producer.MaxBatchBytes+1, 1), []int{1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks := chunkBySize(tt.in)
			var got []int
			for _, c := range chunks {
				got = append(got, len(c))
			}
			if len(got) != len(tt.want) {
				t.Fatalf("chunks %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("chunks %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestFIFOGroupOfARedrivenMessage(t *testing.T) {
	grouped := message("m-1", time.Now(), nil)
	grouped.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)] = "g-7"
	noUser := message("m-2", time.Now(), nil)
	noUser.Body = aws.String(`not json`)
	for _, tt := range []struct {
		m    types.Message
		want string
	}{
		{grouped, "g-7"},
		{message("m-3", time.Now(), nil), producer.FIFOID("u-1")},
		{noUser, "redrive"},
	} {
		if got := newDeadLetterMessage(tt.m).fifoGroup(); got != tt.want {
			t.Errorf("%s: group %q, want %q", aws.ToString(tt.m.MessageId), got, tt.want)
		}
	}
}
