package usage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// Parsing a message body: the first half of the message contract (the
// other is Event.Validate, which the producer library runs too).

// ParseEvent decodes and validates a message body. Every failure is a
// *RejectionError naming the field. Unknown fields are ignored for forward
// compatibility; a known field given twice is rejected, because two JSON
// parsers could disagree about which value counts.
func ParseEvent(body []byte) (Event, error) {
	if !utf8.Valid(body) {
		return Event{}, reject(ReasonInvalidJSON, "", "body is not valid UTF-8")
	}
	fields, err := splitObject(body)
	if err != nil {
		return Event{}, err
	}
	ev := Event{Amount: DecimalFromInt(1)}
	if ev.UserID, ev.PoolID, err = parseOwner(fields); err != nil {
		return Event{}, err
	}
	if ev.EntitlementKey, err = requiredString(fields, "entitlementKey"); err != nil {
		return Event{}, err
	}
	if ev.Operation, ev.RefundOf, err = parseOperation(fields); err != nil {
		return Event{}, err
	}
	if ev.Is(OperationRefund) || ev.Is(OperationBalance) || ev.settles() || ev.Is(OperationVoid) {
		ev.Amount = Decimal{} // defaults: all that remains, the whole hold; none for the others
	}
	if _, ok := fields["amount"]; !ok && ev.Is(OperationGrant) {
		return Event{}, reject(ReasonMissingField, "amount", "is required for a grant")
	}
	if raw, ok := fields["amount"]; ok {
		// A void takes no amount, whatever its value: checkGrantFields
		// refuses it as a field, instead of asking for one above 0.
		if !ev.Is(OperationVoid) {
			if ev.Amount, err = parseAmount(raw, ev.Is(OperationCommit)); err != nil {
				return Event{}, err
			}
		}
		ev.AmountGiven = true
	}
	if ev.HoldID, ev.HoldSeconds, err = parseHold(fields); err != nil {
		return Event{}, err
	}
	if ev.GrantID, ev.ExpiresAt, ev.Priority, err = parseGrant(fields); err != nil {
		return Event{}, err
	}
	if raw, ok := fields["idempotencyKey"]; ok && !isNull(raw) {
		if ev.IdempotencyKey, err = stringField("idempotencyKey", raw); err != nil {
			return Event{}, err
		}
		if ev.IdempotencyKey == "" {
			return Event{}, checkID("idempotencyKey", "", false)
		}
	}
	if raw, ok := fields["metadata"]; ok && !isNull(raw) {
		ev.Metadata = raw
		var compact bytes.Buffer
		if json.Compact(&compact, raw) == nil {
			ev.Metadata = compact.Bytes()
		}
	}
	if err := ev.Validate(); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// parseOwner reads userId, or poolId instead (a pool's own entitlement):
// with neither, userId is missing; with both, poolId is refused.
func parseOwner(fields map[string]json.RawMessage) (userID, poolID string, err error) {
	raw, ok := fields["poolId"]
	if !ok || isNull(raw) {
		userID, err = requiredString(fields, "userId")
		return userID, "", err
	}
	if poolID, err = stringField("poolId", raw); err != nil {
		return "", "", err
	}
	if u, ok := fields["userId"]; ok && !isNull(u) {
		return "", "", errBothOwners()
	}
	if poolID == "" {
		return "", "", checkID("poolId", "", false)
	}
	return "", poolID, nil
}

// splitObject returns the raw value of each top-level field. It rejects
// anything but a single JSON object and repeated known fields.
func splitObject(body []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, reject(ReasonInvalidJSON, "", "body is not valid JSON: %v", jsonError(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, reject(ReasonInvalidJSON, "", "body must be a JSON object, got %s", jsonKind(tok))
	}
	fields := make(map[string]json.RawMessage, 5)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, reject(ReasonInvalidJSON, "", "body is not valid JSON: %v", jsonError(err))
		}
		name, _ := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, reject(ReasonInvalidJSON, "", "body is not valid JSON: %v", jsonError(err))
		}
		if !knownField(name) {
			continue
		}
		if _, dup := fields[name]; dup {
			return nil, reject(ReasonInvalidJSON, name, "appears more than once")
		}
		fields[name] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, reject(ReasonInvalidJSON, "", "body is not valid JSON: %v", jsonError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, reject(ReasonInvalidJSON, "", "unexpected data after the JSON object")
	}
	return fields, nil
}

func knownField(name string) bool {
	switch name {
	case "userId", "poolId", "entitlementKey", "amount", "idempotencyKey", "metadata", "operation", "refundOf", "holdId", "holdSeconds",
		"grantId", "expiresAt", "priority":
		return true
	}
	return false
}

func jsonError(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("unexpected end of input")
	}
	return err
}

func jsonKind(tok any) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return "an array"
		}
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

func rawKind(raw json.RawMessage) string {
	switch b := firstByte(raw); {
	case b == '"':
		return "a string"
	case b == '{':
		return "an object"
	case b == '[':
		return "an array"
	case b == 't' || b == 'f':
		return "a boolean"
	case b == 'n':
		return "null"
	default:
		return "a number"
	}
}

func firstByte(raw json.RawMessage) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

func isNull(raw json.RawMessage) bool { return firstByte(raw) == 'n' }

func requiredString(fields map[string]json.RawMessage, name string) (string, error) {
	raw, ok := fields[name]
	if !ok || isNull(raw) {
		return "", reject(ReasonMissingField, name, "is required")
	}
	return stringField(name, raw)
}

func stringField(name string, raw json.RawMessage) (string, error) {
	if firstByte(raw) != '"' {
		return "", reject(ReasonInvalidField, name, "must be a string, got %s", rawKind(raw))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", reject(ReasonInvalidField, name, "is not a valid JSON string: %v", err)
	}
	return s, nil
}

// parseOperation reads operation and refundOf; Validate checks them.
func parseOperation(fields map[string]json.RawMessage) (op Operation, refundOf string, err error) {
	if raw, ok := fields["operation"]; ok && !isNull(raw) {
		s, err := stringField("operation", raw)
		if err != nil {
			return "", "", err
		}
		op = Operation(s)
	}
	if raw, ok := fields["refundOf"]; ok && !isNull(raw) {
		if refundOf, err = stringField("refundOf", raw); err != nil {
			return "", "", err
		}
		if refundOf == "" {
			return "", "", reject(ReasonInvalidField, "refundOf", "must be 1 to %d characters, got an empty string", MaxIDLength)
		}
	}
	return op, refundOf, nil
}

// checkOperation: a known operation, and refundOf exactly on refunds.
// parseHold reads holdId and holdSeconds; checkOperation checks where
// they may appear.
func parseHold(fields map[string]json.RawMessage) (holdID string, seconds int, err error) {
	if raw, ok := fields["holdId"]; ok && !isNull(raw) {
		if holdID, err = stringField("holdId", raw); err != nil {
			return "", 0, err
		}
		if holdID == "" {
			return "", 0, reject(ReasonInvalidField, "holdId", "must be 1 to %d characters, got an empty string", MaxIDLength)
		}
	}
	if raw, ok := fields["holdSeconds"]; ok && !isNull(raw) {
		n, err := strconv.Atoi(string(bytes.TrimSpace(raw)))
		if err != nil || n < 1 || n > MaxHoldSeconds {
			return "", 0, reject(ReasonInvalidField, "holdSeconds", "must be a whole number from 1 to %d, got %s", MaxHoldSeconds, quoteShort(string(raw)))
		}
		seconds = n
	}
	return holdID, seconds, nil
}

// parseGrant reads grantId, expiresAt and priority; checkGrantFields
// checks where they may appear.
func parseGrant(fields map[string]json.RawMessage) (grantID string, expiresAt *time.Time, priority *int, err error) {
	if raw, ok := fields["grantId"]; ok && !isNull(raw) {
		if grantID, err = stringField("grantId", raw); err != nil {
			return "", nil, nil, err
		}
		if grantID == "" {
			return "", nil, nil, reject(ReasonInvalidField, "grantId", "must be 1 to %d characters, got an empty string", MaxIDLength)
		}
	}
	if raw, ok := fields["expiresAt"]; ok && !isNull(raw) {
		s, err := stringField("expiresAt", raw)
		if err != nil {
			return "", nil, nil, err
		}
		t, err := ParseInstant(s)
		if err != nil {
			return "", nil, nil, reject(ReasonInvalidField, "expiresAt", "must be an RFC 3339 time with a zone, like 2027-01-31T00:00:00Z; %v", err)
		}
		expiresAt = &t
	}
	if raw, ok := fields["priority"]; ok && !isNull(raw) {
		n, err := strconv.Atoi(string(bytes.TrimSpace(raw)))
		if err != nil || n < 0 || n > MaxGrantPriority {
			return "", nil, nil, reject(ReasonInvalidField, "priority", "must be a whole number from 0 to %d, got %s", MaxGrantPriority, quoteShort(string(raw)))
		}
		priority = &n
	}
	return grantID, expiresAt, priority, nil
}

func parseAmount(raw json.RawMessage, zeroAllowed bool) (Decimal, error) {
	if b := firstByte(raw); b != '-' && (b < '0' || b > '9') {
		return Decimal{}, reject(ReasonInvalidAmount, "amount", "must be a JSON number, got %s", rawKind(raw))
	}
	d, err := ParseDecimal(string(bytes.TrimSpace(raw)))
	if err != nil {
		return Decimal{}, reject(ReasonInvalidAmount, "amount", "%v", err)
	}
	if d.Sign() < 0 || d.Sign() == 0 && !zeroAllowed { // a refund's zero Amount means "absent: all"
		return Decimal{}, reject(ReasonInvalidAmount, "amount", "must be greater than 0, got %s", d)
	}
	return d, nil
}
