// Command parseevents answers, for each message body it reads, what the
// service makes of it: usage.ParseEvent, then Event.CheckQueued for a
// queue. The TypeScript producer's differential test (producer-ts/test)
// sends it many generated bodies and compares its own answers, beyond the
// shared vectors of usage/testdata/vectors.json.
//
// Input: one JSON object a line, {"body":"<base64>"}. Output: one line each,
// in order, {"parse":{…},"queue":{…},"marshal":"…"} in the vectors' outcome
// format; marshal, for a valid body, is the body the service's producers
// write for the event read (producer.Body: usage.Event.MarshalJSON with what SQS refuses escaped).
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/usage-event-service/usage-event-service/producer"
	"github.com/usage-event-service/usage-event-service/usage"
)

type outcome struct {
	Valid   bool         `json:"valid"`
	Reason  usage.Reason `json:"reason,omitempty"`
	Field   string       `json:"field,omitempty"`
	Message string       `json:"message,omitempty"`
	Event   *event       `json:"event,omitempty"`
}

type event struct {
	UserID         string  `json:"userId"`
	PoolID         string  `json:"poolId"`
	EntitlementKey string  `json:"entitlementKey"`
	Operation      string  `json:"operation"`
	Amount         string  `json:"amount"`
	AmountGiven    bool    `json:"amountGiven"`
	IdempotencyKey string  `json:"idempotencyKey"`
	Metadata       *string `json:"metadata"`
	RefundOf       string  `json:"refundOf"`
	HoldID         string  `json:"holdId"`
	HoldSeconds    int     `json:"holdSeconds"`
	GrantID        string  `json:"grantId"`
	ExpiresAt      string  `json:"expiresAt"` // in UTC, as usage.FormatInstant writes it; "" when absent
	Priority       *int    `json:"priority"`  // null when absent
}

func outcomeOf(err error) outcome {
	if err == nil {
		return outcome{Valid: true}
	}
	var r *usage.RejectionError
	if !errors.As(err, &r) {
		return outcome{Reason: "NOT_A_REJECTION", Message: err.Error()}
	}
	return outcome{Reason: r.Reason, Field: r.Field, Message: r.Message}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for in.Scan() {
		var req struct{ Body string }
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			fail(err)
		}
		body, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			fail(err)
		}
		ev, err := usage.ParseEvent(body)
		parse := outcomeOf(err)
		queue := parse
		if err == nil {
			parse.Event = &event{UserID: ev.UserID, PoolID: ev.PoolID, EntitlementKey: ev.EntitlementKey, Operation: string(ev.Operation),
				Amount: ev.Amount.String(), AmountGiven: ev.AmountGiven, IdempotencyKey: ev.IdempotencyKey,
				RefundOf: ev.RefundOf, HoldID: ev.HoldID, HoldSeconds: ev.HoldSeconds, GrantID: ev.GrantID, Priority: ev.Priority}
			if ev.ExpiresAt != nil {
				parse.Event.ExpiresAt = usage.FormatInstant(*ev.ExpiresAt)
			}
			if ev.Metadata != nil {
				m := string(ev.Metadata)
				parse.Event.Metadata = &m
			}
			queue = outcomeOf(ev.CheckQueued())
		}
		var marshal string
		if parse.Valid {
			b, err := producer.Body(ev)
			if err != nil {
				fail(err)
			}
			marshal = string(b)
		}
		if err := enc.Encode(struct {
			Parse   outcome `json:"parse"`
			Queue   outcome `json:"queue"`
			Marshal string  `json:"marshal,omitempty"`
		}{parse, queue, marshal}); err != nil {
			fail(err)
		}
	}
	if err := in.Err(); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "parseevents:", err)
	os.Exit(1)
}
