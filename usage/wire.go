package usage

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// MarshalJSON writes the wire form: the message contract's JSON. The
// amount is written as its exact decimal text, never through float64.
// What a transport cannot carry raw is the transport's to escape (the
// producer escapes what SQS refuses).
func (e Event) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if e.PoolID != "" {
		b.WriteString(`{"poolId":`)
		writeJSONString(&b, e.PoolID)
	} else {
		b.WriteString(`{"userId":`)
		writeJSONString(&b, e.UserID)
	}
	b.WriteString(`,"entitlementKey":`)
	writeJSONString(&b, e.EntitlementKey)
	if e.Operation != "" {
		b.WriteString(`,"operation":`)
		writeJSONString(&b, string(e.Operation))
	}
	if e.RefundOf != "" {
		b.WriteString(`,"refundOf":`)
		writeJSONString(&b, e.RefundOf)
	}
	if !e.Amount.IsZero() || e.AmountGiven {
		b.WriteString(`,"amount":`)
		b.WriteString(e.Amount.String())
	}
	if e.HoldID != "" {
		b.WriteString(`,"holdId":`)
		writeJSONString(&b, e.HoldID)
	}
	if e.HoldSeconds != 0 {
		b.WriteString(`,"holdSeconds":`)
		b.WriteString(strconv.Itoa(e.HoldSeconds))
	}
	if e.GrantID != "" {
		b.WriteString(`,"grantId":`)
		writeJSONString(&b, e.GrantID)
	}
	if e.ExpiresAt != nil {
		b.WriteString(`,"expiresAt":`)
		writeJSONString(&b, FormatInstant(*e.ExpiresAt))
	}
	if e.Priority != nil {
		b.WriteString(`,"priority":`)
		b.WriteString(strconv.Itoa(*e.Priority))
	}
	if e.IdempotencyKey != "" {
		b.WriteString(`,"idempotencyKey":`)
		writeJSONString(&b, e.IdempotencyKey)
	}
	if len(e.Metadata) > 0 {
		b.WriteString(`,"metadata":`)
		if err := json.Compact(&b, e.Metadata); err != nil {
			return nil, reject(ReasonInvalidMetadata, "metadata", "is not valid JSON: %v", err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // a Go string always encodes
	b.Write(enc)
}
