package dynamodb

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/usage"
)

// value reads one attribute value into the domain's terms (nil: absent).
func value(av types.AttributeValue) usage.Value {
	switch v := av.(type) {
	case nil:
		return usage.Value{}
	case *types.AttributeValueMemberNULL:
		return usage.Value{Kind: usage.KindNull}
	case *types.AttributeValueMemberN:
		if d, err := usage.ParseDecimal(v.Value); err == nil {
			return usage.NumberValue(d)
		}
		return usage.Value{Kind: usage.KindOther, Raw: av} // DynamoDB never stores such a number
	case *types.AttributeValueMemberS:
		return usage.StringValue(v.Value)
	case *types.AttributeValueMemberM:
		return usage.Value{Kind: usage.KindOther, Raw: av}
	case *types.AttributeValueMemberL:
		nums := make([]usage.Decimal, 0, len(v.Value))
		for _, e := range v.Value {
			if n := value(e); n.Kind == usage.KindNumber {
				nums = append(nums, n.Num)
			} else {
				return usage.Value{Kind: usage.KindOther, Raw: av}
			}
		}
		return usage.Value{Kind: usage.KindOther, Nums: nums, Raw: av}
	case *types.AttributeValueMemberBOOL:
		return usage.Value{Kind: usage.KindOther, Raw: av}
	case *types.AttributeValueMemberB:
		return usage.Value{Kind: usage.KindOther, Raw: av}
	case *types.AttributeValueMemberSS:
		return usage.Value{Kind: usage.KindOther, Raw: av}
	case *types.AttributeValueMemberNS:
		return usage.Value{Kind: usage.KindOther, Raw: av}
	case *types.AttributeValueMemberBS:
		return usage.Value{Kind: usage.KindOther, Raw: av}
	default:
		return usage.Value{Kind: usage.KindOther, Raw: av}
	}
}

// attributeValue writes a domain value. Only numbers, strings and NULL
// are ever written; other kinds are compared with as they were read.
func attributeValue(v usage.Value) types.AttributeValue {
	switch v.Kind {
	case usage.KindNumber:
		return number(v.Num)
	case usage.KindString:
		return &types.AttributeValueMemberS{Value: v.Str}
	case usage.KindOther:
		if raw, ok := v.Raw.(types.AttributeValue); ok {
			return raw
		}
		return &types.AttributeValueMemberNULL{Value: true}
	default:
		return &types.AttributeValueMemberNULL{Value: true}
	}
}

func number(d usage.Decimal) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: d.String()}
}

// observe turns a read item (nil: none) into what the domain decides on:
// the entitlement attributes only.
func observe(item map[string]types.AttributeValue) usage.Item {
	if item == nil {
		return usage.Item{}
	}
	it := usage.Item{Exists: true, Attrs: make(map[string]usage.Value, len(usage.EntitlementAttrs))}
	for _, a := range usage.EntitlementAttrs {
		if av, ok := item[a]; ok {
			it.Attrs[a] = value(av)
		}
	}
	return it
}

// ParseEntitlement interprets an entitlement item as read (nil: none),
// by the domain's one rule for it (usage.ParseEntitlement).
func ParseEntitlement(item map[string]types.AttributeValue) usage.Entitlement {
	return usage.ParseEntitlement(observe(item))
}

// Ledger item attributes besides the key.
const (
	ledgerUserID         = "userId"
	ledgerEntitlementKey = "entitlementKey"
	ledgerDedupKey       = "dedupKey"
	ledgerAmount         = "amount"
	ledgerAppliedAt      = "appliedAt"
	ledgerMessageID      = "messageId"
	ledgerKeySource      = "keySource"
	ledgerPeriodStart    = "periodStart"
	ledgerMetadata       = "metadata"
	ledgerOperation      = "operation"
	ledgerRefundOf       = "refundOf"
	ledgerRefunded       = usage.LedgerAttrRefunded
	ledgerHoldExpiresAt  = "holdExpiresAt"
)

// ledgerItem lays out a ledger entry for a Put.
func ledgerItem(scope usage.Scope, e *usage.LedgerEntry, now, expires time.Time) map[string]types.AttributeValue {
	pk, sk := LedgerKey(scope, e.DedupKey)
	item := map[string]types.AttributeValue{
		ledgerPK:             &types.AttributeValueMemberS{Value: pk},
		ledgerSK:             &types.AttributeValueMemberS{Value: sk},
		ledgerUserID:         &types.AttributeValueMemberS{Value: scope.UserID},
		ledgerEntitlementKey: &types.AttributeValueMemberS{Value: scope.EntitlementKey},
		ledgerDedupKey:       &types.AttributeValueMemberS{Value: e.DedupKey},
		ledgerAmount:         number(e.Amount),
		ledgerAppliedAt:      &types.AttributeValueMemberS{Value: now.Format(time.RFC3339Nano)},
		ledgerKeySource:      &types.AttributeValueMemberS{Value: e.KeySource},
		ledgerExpiresAt:      &types.AttributeValueMemberN{Value: strconv.FormatInt(expires.Unix(), 10)},
	}
	if !e.Refunded.IsZero() {
		item[ledgerRefunded] = number(e.Refunded)
	}
	if e.HoldState != "" {
		item[usage.LedgerAttrHoldState] = &types.AttributeValueMemberS{Value: e.HoldState}
		holdExpires := e.HoldExpiresAt.UTC().Format(time.RFC3339Nano)
		item[ledgerHoldExpiresAt] = &types.AttributeValueMemberS{Value: holdExpires}
		if e.HoldState == usage.HoldActive {
			// In the sparse index of work left to do until it settles.
			item[usage.LedgerAttrPendingPK] = &types.AttributeValueMemberS{Value: holdShard(e.DedupKey)}
			item[usage.LedgerAttrPendingAt] = &types.AttributeValueMemberS{Value: usage.FormatIndexTime(e.HoldExpiresAt)}
		}
		if e.Actual != nil {
			item[usage.LedgerAttrActual] = number(*e.Actual)
			item[usage.LedgerAttrSettledAt] = &types.AttributeValueMemberS{Value: e.SettledAt.UTC().Format(time.RFC3339Nano)}
		}
		if keep := e.HoldExpiresAt.Add(24 * time.Hour); keep.After(expires) {
			// A hold's record outlives its expiry by a day at least, so
			// that the sweeper and late settlements find it.
			item[ledgerExpiresAt] = &types.AttributeValueMemberN{Value: strconv.FormatInt(keep.Unix(), 10)}
		}
	}
	optional := map[string]string{ledgerMessageID: e.MessageID, ledgerPeriodStart: e.PeriodStart, ledgerMetadata: string(e.Metadata),
		ledgerOperation: string(e.Operation), ledgerRefundOf: e.RefundOf}
	for attr, v := range optional {
		if v != "" {
			item[attr] = &types.AttributeValueMemberS{Value: v}
		}
	}
	return item
}

// ledgerEntry reads a stored ledger item.
func ledgerEntry(item map[string]types.AttributeValue) usage.LedgerEntry {
	e := usage.LedgerEntry{
		DedupKey: str(item[ledgerDedupKey]), KeySource: str(item[ledgerKeySource]),
		MessageID: str(item[ledgerMessageID]), PeriodStart: str(item[ledgerPeriodStart]),
		Operation: usage.Operation(str(item[ledgerOperation])), RefundOf: str(item[ledgerRefundOf]),
	}
	if v := value(item[ledgerAmount]); v.Kind == usage.KindNumber {
		e.Amount = v.Num
	}
	if v := value(item[ledgerRefunded]); v.Kind == usage.KindNumber {
		e.Refunded = v.Num
	}
	e.HoldState = str(item[usage.LedgerAttrHoldState])
	e.HoldExpiresAt, _ = time.Parse(time.RFC3339Nano, str(item[ledgerHoldExpiresAt]))
	if v := value(item[usage.LedgerAttrActual]); v.Kind == usage.KindNumber {
		e.Actual = &v.Num
	}
	e.SettledAt, _ = time.Parse(time.RFC3339Nano, str(item[usage.LedgerAttrSettledAt]))
	if m := str(item[ledgerMetadata]); m != "" {
		e.Metadata = []byte(m)
	}
	if t, err := time.Parse(time.RFC3339Nano, str(item[ledgerAppliedAt])); err == nil {
		e.AppliedAt = t
	}
	if n, ok := item[ledgerExpiresAt].(*types.AttributeValueMemberN); ok {
		if secs, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
			e.ExpiresAt = time.Unix(secs, 0).UTC()
		}
	}
	e.Unreadable = unreadable(item, e.Operation)
	return e
}

// unreadable finds the first attribute of a stored ledger entry that a
// decision needs and cannot read (nil: none). Entries are only written by
// this service, so this is damage or a hand edit, never guessed around.
func unreadable(item map[string]types.AttributeValue, op usage.Operation) *usage.Unreadable {
	bad := func(attr, why string) *usage.Unreadable {
		return &usage.Unreadable{Attr: attr, Value: value(item[attr]), Why: why}
	}
	number := func(attr string, required bool) bool {
		v := value(item[attr])
		return v.Kind == usage.KindNumber || !required && !v.Present()
	}
	text := func(attr string) bool { v := value(item[attr]); return v.Kind == usage.KindString || !v.Present() }
	switch {
	case !text(ledgerOperation):
		return bad(ledgerOperation, "must be a string")
	case op != "" && op != usage.OperationConsume && op != usage.OperationRefund && op != usage.OperationReserve:
		return bad(ledgerOperation, "is not an operation")
	case !number(ledgerAmount, true):
		return bad(ledgerAmount, "must be a number")
	case !number(ledgerRefunded, false):
		return bad(ledgerRefunded, "must be a number")
	case !text(ledgerPeriodStart):
		return bad(ledgerPeriodStart, "must be a string")
	case op != usage.OperationReserve:
		return nil
	}
	switch state := str(item[usage.LedgerAttrHoldState]); {
	case state != usage.HoldActive && state != usage.HoldCommitted && state != usage.HoldReleased && state != usage.HoldExpired:
		return bad(usage.LedgerAttrHoldState, "is not a hold state")
	case !number(usage.LedgerAttrActual, false):
		return bad(usage.LedgerAttrActual, "must be a number")
	}
	if _, err := time.Parse(time.RFC3339Nano, str(item[ledgerHoldExpiresAt])); err != nil {
		return bad(ledgerHoldExpiresAt, "must be an RFC 3339 time")
	}
	return nil
}

func str(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// Active holds are in the sparse index PendingIndex under HOLD#<shard>,
// by expiry, until they settle.
const (
	holdShards    = 4
	holdPendingPK = "HOLD#"
)

func holdShard(holdID string) string {
	sum := sha256.Sum256([]byte(holdID))
	return holdPendingPK + strconv.Itoa(int(binary.BigEndian.Uint32(sum[:4])%holdShards))
}
