package usage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Limits of the message contract. They are documented in the README and
// enforced before anything is read from DynamoDB.
const (
	MaxIDLength = 256 // userId, entitlementKey and idempotencyKey, in characters (Unicode code points)
	// MaxMetadataBytes bounds the compacted metadata JSON. The ledger keeps
	// it as the audit record: a group of 50 events, the most one DynamoDB
	// transaction carries here, stays well inside its 4 MB, and each ledger
	// item far below DynamoDB's 400 KB.
	MaxMetadataBytes = 32 << 10
)

// Event is one usage event: "user consumed Amount of entitlement".
// The same type is validated by the service and by the producer library,
// so a producer learns about a bad event before sending it.
type Event struct {
	UserID         string
	EntitlementKey string
	// Amount is always positive once validated; NewEvent and ParseEvent
	// default it to 1.
	Amount Decimal
	// IdempotencyKey, when set, is the dedup key; otherwise the SQS
	// message ID is.
	IdempotencyKey string
	// Metadata is a compact JSON object, or nil. It is stored verbatim in
	// the ledger and never interpreted.
	Metadata json.RawMessage
	// Operation is "" or OperationConsume for a consume.
	Operation Operation
	// RefundOf is, for a refund, the dedup key of the consume it gives
	// back. A refund's Amount may be zero: all that remains refundable.
	RefundOf string
	// HoldID names the hold a commit or release settles (the reserve's
	// idempotencyKey).
	HoldID string
	// HoldSeconds is how long a reserve's hold lasts (0: the default).
	HoldSeconds int
	// AmountGiven is set when the request named an amount; a commit
	// without one commits the whole hold, and one of 0 commits nothing.
	AmountGiven bool
}

// Operation is what a request asks of an entitlement. The zero value is
// a consume: every event written before operations existed is one.
type Operation string

const (
	OperationConsume Operation = "consume" // add amount to used, within the limit
	OperationRefund  Operation = "refund"  // give back (part of) an applied consume
	OperationBalance Operation = "balance" // read used, limit, remaining: synchronous only
	OperationReserve Operation = "reserve" // hold an amount before long work: synchronous only
	OperationCommit  Operation = "commit"  // settle a hold with what was really used
	OperationRelease Operation = "release" // settle a hold by giving all of it back
	// OperationExpire is the sweeper's release of an expired hold; no
	// request can ask for it.
	OperationExpire Operation = "expire"
)

// Operations lists every operation a request may name, in documentation order.
var Operations = []Operation{OperationConsume, OperationRefund, OperationBalance, OperationReserve, OperationCommit, OperationRelease}

// Hold limits: a hold lasts holdSeconds, 900 by default.
const (
	DefaultHoldSeconds = 900
	MaxHoldSeconds     = 86400
)

// settles reports whether the operation settles a hold.
func (e Event) settles() bool {
	return e.Is(OperationCommit) || e.Is(OperationRelease) || e.Is(OperationExpire)
}

// Is reports whether the event's operation is op (an empty one is a consume).
func (e Event) Is(op Operation) bool {
	if e.Operation == "" {
		return op == OperationConsume
	}
	return e.Operation == op
}

// NewEvent returns an event of amount 1, the contract's default.
func NewEvent(userID, entitlementKey string) Event {
	return Event{UserID: userID, EntitlementKey: entitlementKey, Amount: DecimalFromInt(1)}
}

// Scope is the unit of dedup and of atomicity: one user's entitlement.
type Scope struct {
	UserID         string
	EntitlementKey string
}

func (e Event) Scope() Scope { return Scope{UserID: e.UserID, EntitlementKey: e.EntitlementKey} }

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
	if ev.UserID, err = requiredString(fields, "userId"); err != nil {
		return Event{}, err
	}
	if ev.EntitlementKey, err = requiredString(fields, "entitlementKey"); err != nil {
		return Event{}, err
	}
	if ev.Operation, ev.RefundOf, err = parseOperation(fields); err != nil {
		return Event{}, err
	}
	if ev.Is(OperationRefund) || ev.Is(OperationBalance) || ev.settles() {
		ev.Amount = Decimal{} // defaults: all that remains, the whole hold; none for the others
	}
	if raw, ok := fields["amount"]; ok {
		if ev.Amount, err = parseAmount(raw, ev.Is(OperationCommit)); err != nil {
			return Event{}, err
		}
		ev.AmountGiven = true
	}
	if ev.HoldID, ev.HoldSeconds, err = parseHold(fields); err != nil {
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

// Validate checks an event against the contract. ParseEvent calls it; the
// producer library calls it before sending.
func (e Event) Validate() error {
	if err := checkID("userId", e.UserID, true); err != nil {
		return err
	}
	if err := checkID("entitlementKey", e.EntitlementKey, true); err != nil {
		return err
	}
	if err := e.checkOperation(); err != nil {
		return err
	}
	optional := e.Is(OperationRefund) || e.Is(OperationBalance) || e.settles()
	if e.Amount.Sign() < 0 || e.Amount.Sign() == 0 && !optional {
		return reject(ReasonInvalidAmount, "amount", "must be greater than 0, got %s", e.Amount)
	}
	if !e.Amount.FitsDynamoDB() {
		return reject(ReasonInvalidAmount, "amount", "must have at most 38 significant digits and lie within DynamoDB's number range")
	}
	if e.IdempotencyKey != "" {
		if err := checkID("idempotencyKey", e.IdempotencyKey, false); err != nil {
			return err
		}
	}
	if e.Metadata != nil {
		if err := checkMetadata(e.Metadata); err != nil {
			return err
		}
	}
	return nil
}

// MarshalJSON writes the wire form. The amount is written as its exact
// decimal text, never through float64, and characters an SQS body cannot
// carry raw are escaped (see escapeForSQS).
func (e Event) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"userId":`)
	writeJSONString(&b, e.UserID)
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
	return escapeForSQS(b.Bytes()), nil
}

// escapeForSQS escapes the characters of a JSON body that SQS does not
// take as they are. SQS rejects a body containing U+FFFE or U+FFFF
// (InvalidMessageContents), although they are valid UTF-8 that the
// contract accepts; and some SQS implementations, fauxqs among them,
// reject every character above U+FFFF (emoji), which AWS accepts. Such
// characters occur only inside JSON strings, where a \u escape (a
// surrogate pair above U+FFFF) denotes the same character, so the body
// parses to exactly the same event.
func escapeForSQS(body []byte) []byte {
	var out []byte
	last := 0
	for i := 0; i < len(body); {
		if body[i] < 0xEF { // ASCII, a continuation byte, or a lead byte below U+F000
			i++
			continue
		}
		r, size := utf8.DecodeRune(body[i:])
		if r != 0xFFFE && r != 0xFFFF && r < 0x10000 {
			i += size
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(body)+64)
		}
		out = append(out, body[last:i]...)
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		} else {
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		i += size
		last = i
	}
	if out == nil {
		return body
	}
	return append(out, body[last:]...)
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // a Go string always encodes
	b.Write(enc)
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
	case "userId", "entitlementKey", "amount", "idempotencyKey", "metadata", "operation", "refundOf", "holdId", "holdSeconds":
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

func checkID(name, value string, required bool) error {
	n := utf8.RuneCountInString(value)
	switch {
	case n == 0 && required:
		return reject(ReasonMissingField, name, "is required")
	case n == 0:
		return reject(ReasonInvalidField, name, "must be 1 to %d characters, got an empty string", MaxIDLength)
	case strings.TrimSpace(value) == "":
		return reject(ReasonInvalidField, name, "must not be only whitespace")
	case strings.IndexFunc(value, isControl) >= 0:
		r, _ := utf8.DecodeRuneInString(value[strings.IndexFunc(value, isControl):])
		return reject(ReasonInvalidField, name, "must not contain control characters (U+0000 to U+001F, U+007F), found U+%04X", r)
	case n > MaxIDLength:
		return reject(ReasonInvalidField, name, "must be at most %d characters, got %d", MaxIDLength, n)
	case !utf8.ValidString(value):
		return reject(ReasonInvalidField, name, "is not valid UTF-8")
	}
	return nil
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
func (e Event) checkOperation() error {
	known := e.Operation == ""
	for _, op := range Operations {
		known = known || e.Operation == op
	}
	switch {
	case !known: // OperationExpire too: only the sweeper, never a request, expires a hold
		return reject(ReasonInvalidField, "operation", "must be one of consume, refund, balance, reserve, commit, release; got %q", e.Operation)
	case e.RefundOf != "" && !e.Is(OperationRefund):
		return reject(ReasonInvalidField, "refundOf", "is only for operation refund")
	case e.HoldID != "" && !e.settles():
		return reject(ReasonInvalidField, "holdId", "is only for operations commit and release")
	case e.HoldSeconds != 0 && !e.Is(OperationReserve):
		return reject(ReasonInvalidField, "holdSeconds", "is only for operation reserve")
	case e.Is(OperationRefund):
		return checkID("refundOf", e.RefundOf, true)
	case e.settles():
		return checkID("holdId", e.HoldID, true)
	case e.Is(OperationReserve) && e.IdempotencyKey == "":
		return reject(ReasonMissingField, "idempotencyKey", "is required for a reserve: it is the hold's ID")
	case e.HoldSeconds < 0 || e.HoldSeconds > MaxHoldSeconds:
		return reject(ReasonInvalidField, "holdSeconds", "must be a whole number from 1 to %d, got %d", MaxHoldSeconds, e.HoldSeconds)
	}
	return nil
}

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

// CheckQueued rejects what only a synchronous caller can ask: from a
// queue, nobody would receive a balance, or learn whether a hold was
// granted.
func (e Event) CheckQueued() error {
	if e.Is(OperationBalance) || e.Is(OperationReserve) {
		return reject(ReasonInvalidField, "operation", "%s is answered only synchronously (invoke the decisions function)", e.Operation)
	}
	return nil
}

// isControl: the C0 controls and DEL. They are invisible in logs and
// consoles, and NUL in particular has meant "end of string" to too many
// tools to be allowed in an ID.
func isControl(r rune) bool { return r <= 0x1F || r == 0x7F }

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

func checkMetadata(raw json.RawMessage) error {
	if firstByte(raw) != '{' {
		return reject(ReasonInvalidMetadata, "metadata", "must be a JSON object, got %s", rawKind(raw))
	}
	if len(raw) <= MaxMetadataBytes {
		// Compacting can only shrink it: checking it is JSON is enough,
		// and cheaper on the hot path (ParseEvent has compacted it already).
		if !json.Valid(raw) {
			return reject(ReasonInvalidMetadata, "metadata", "is not valid JSON")
		}
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return reject(ReasonInvalidMetadata, "metadata", "is not valid JSON: %v", err)
	}
	if b.Len() > MaxMetadataBytes {
		return reject(ReasonInvalidMetadata, "metadata", "must be at most %d bytes of JSON, got %d", MaxMetadataBytes, b.Len())
	}
	return nil
}
