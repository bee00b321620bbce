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
		fields := make(map[string]usage.Value, len(v.Value))
		for k, e := range v.Value {
			fields[k] = value(e)
		}
		return usage.Value{Kind: usage.KindMap, Fields: fields, Raw: av}
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

// attributeValue writes a domain value. Numbers, strings, NULL and maps
// of them are written; other kinds are compared with as they were read.
func attributeValue(v usage.Value) types.AttributeValue {
	switch v.Kind {
	case usage.KindNumber:
		return number(v.Num)
	case usage.KindString:
		return &types.AttributeValueMemberS{Value: v.Str}
	case usage.KindOther, usage.KindMap:
		if raw, ok := v.Raw.(types.AttributeValue); ok {
			return raw
		}
		if v.Fields != nil {
			m := make(map[string]types.AttributeValue, len(v.Fields))
			for k, f := range v.Fields {
				m[k] = attributeValue(f)
			}
			return &types.AttributeValueMemberM{Value: m}
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
	ledgerDraws          = "draws"
	ledgerPriority       = "priority"
	ledgerGrantExpiresAt = "grantExpiresAt"
	ledgerPool           = "pool"
	ledgerPoolDraws      = "poolDraws"
	ledgerPoolPeriod     = "poolPeriodStart"
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
	if len(e.Draws) > 0 {
		item[ledgerDraws] = drawsValue(e.Draws)
	}
	if len(e.PoolDraws) > 0 {
		item[ledgerPoolDraws] = drawsValue(e.PoolDraws)
	}
	if e.Is(usage.OperationGrant) {
		grantAttributes(item, e, expires)
	}
	optional := map[string]string{ledgerMessageID: e.MessageID, ledgerPeriodStart: e.PeriodStart, ledgerMetadata: string(e.Metadata),
		ledgerOperation: string(e.Operation), ledgerRefundOf: e.RefundOf, ledgerPool: e.Pool, ledgerPoolPeriod: e.PoolPeriodStart}
	for attr, v := range optional {
		if v != "" {
			item[attr] = &types.AttributeValueMemberS{Value: v}
		}
	}
	return item
}

// grantAttributes lays out a grant's entry: it is kept while the grant
// may count, and a day beyond, so that voids and redeliveries find it.
func grantAttributes(item map[string]types.AttributeValue, e *usage.LedgerEntry, expires time.Time) {
	item[usage.LedgerAttrGrantState] = &types.AttributeValueMemberS{Value: e.GrantState}
	item[ledgerPriority] = &types.AttributeValueMemberN{Value: strconv.Itoa(e.Priority)}
	if e.Voided != nil {
		item[usage.LedgerAttrVoided] = number(*e.Voided)
		item[usage.LedgerAttrVoidedAt] = &types.AttributeValueMemberS{Value: e.VoidedAt.UTC().Format(time.RFC3339Nano)}
	}
	if e.GrantExpiresAt == nil {
		delete(item, ledgerExpiresAt) // a grant that never expires is kept for ever
		return
	}
	item[ledgerGrantExpiresAt] = &types.AttributeValueMemberS{Value: usage.FormatInstant(*e.GrantExpiresAt)}
	if keep := e.GrantExpiresAt.Add(24 * time.Hour); keep.After(expires) {
		item[ledgerExpiresAt] = &types.AttributeValueMemberN{Value: strconv.FormatInt(keep.Unix(), 10)}
	}
}

// drawsValue lays out the buckets of a draw or a give-back, in order.
func drawsValue(draws []usage.Draw) types.AttributeValue {
	l := make([]types.AttributeValue, len(draws))
	for i, d := range draws {
		m := map[string]types.AttributeValue{"bucket": &types.AttributeValueMemberS{Value: string(d.Bucket)}, ledgerAmount: number(d.Amount)}
		if d.GrantID != "" {
			m["grantId"] = &types.AttributeValueMemberS{Value: d.GrantID}
		}
		if d.Lapsed {
			m["lapsed"] = &types.AttributeValueMemberBOOL{Value: true}
		}
		l[i] = &types.AttributeValueMemberM{Value: m}
	}
	return &types.AttributeValueMemberL{Value: l}
}

// draws reads them back (nil when absent or unreadable).
func draws(av types.AttributeValue) ([]usage.Draw, bool) {
	l, ok := av.(*types.AttributeValueMemberL)
	if !ok {
		return nil, av == nil
	}
	out := make([]usage.Draw, 0, len(l.Value))
	for _, e := range l.Value {
		m, ok := e.(*types.AttributeValueMemberM)
		if !ok {
			return nil, false
		}
		d := usage.Draw{Bucket: usage.Bucket(str(m.Value["bucket"])), GrantID: str(m.Value["grantId"])}
		amount := value(m.Value[ledgerAmount])
		lapsed, _ := m.Value["lapsed"].(*types.AttributeValueMemberBOOL)
		d.Lapsed = lapsed != nil && lapsed.Value
		known := d.Bucket == usage.BucketAllowance || d.Bucket == usage.BucketOverage || d.Bucket == usage.BucketGrant && d.GrantID != ""
		if amount.Kind != usage.KindNumber || !known {
			return nil, false
		}
		d.Amount = amount.Num
		out = append(out, d)
	}
	return out, true
}

// ledgerEntry reads a stored ledger item.
func ledgerEntry(item map[string]types.AttributeValue) usage.LedgerEntry {
	e := usage.LedgerEntry{
		DedupKey: str(item[ledgerDedupKey]), KeySource: str(item[ledgerKeySource]),
		MessageID: str(item[ledgerMessageID]), PeriodStart: str(item[ledgerPeriodStart]),
		Operation: usage.Operation(str(item[ledgerOperation])), RefundOf: str(item[ledgerRefundOf]),
		Pool: str(item[ledgerPool]), PoolPeriodStart: str(item[ledgerPoolPeriod]),
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
	e.Draws, _ = draws(item[ledgerDraws])
	e.PoolDraws, _ = draws(item[ledgerPoolDraws])
	readGrant(&e, item)
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
	case op != "" && op != usage.OperationConsume && op != usage.OperationRefund && op != usage.OperationReserve && op != usage.OperationGrant:
		return bad(ledgerOperation, "is not an operation")
	case !number(ledgerAmount, true):
		return bad(ledgerAmount, "must be a number")
	case !number(ledgerRefunded, false):
		return bad(ledgerRefunded, "must be a number")
	case !text(ledgerPeriodStart):
		return bad(ledgerPeriodStart, "must be a string")
	case !text(ledgerPool):
		return bad(ledgerPool, "must be a string")
	case !text(ledgerPoolPeriod):
		return bad(ledgerPoolPeriod, "must be a string")
	}
	for _, attr := range []string{ledgerDraws, ledgerPoolDraws} {
		if _, ok := draws(item[attr]); !ok {
			return bad(attr, "must be a list of buckets and amounts")
		}
	}
	switch op {
	case usage.OperationGrant:
		return unreadableGrant(item, bad)
	case usage.OperationReserve:
	default:
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

// readGrant reads a grant's attributes of an entry.
func readGrant(e *usage.LedgerEntry, item map[string]types.AttributeValue) {
	e.GrantState = str(item[usage.LedgerAttrGrantState])
	if n, ok := item[ledgerPriority].(*types.AttributeValueMemberN); ok {
		e.Priority, _ = strconv.Atoi(n.Value)
	}
	if t, err := usage.ParseInstant(str(item[ledgerGrantExpiresAt])); err == nil {
		e.GrantExpiresAt = &t
	}
	if v := value(item[usage.LedgerAttrVoided]); v.Kind == usage.KindNumber {
		e.Voided = &v.Num
	}
	e.VoidedAt, _ = time.Parse(time.RFC3339Nano, str(item[usage.LedgerAttrVoidedAt]))
}

// unreadableGrant: a grant's entry has a state and, when it expires, an
// expiry a void can compare with.
func unreadableGrant(item map[string]types.AttributeValue, bad func(attr, why string) *usage.Unreadable) *usage.Unreadable {
	if s := str(item[usage.LedgerAttrGrantState]); s != usage.GrantActive && s != usage.GrantVoided {
		return bad(usage.LedgerAttrGrantState, "is not a grant state")
	}
	if v, ok := item[ledgerGrantExpiresAt]; ok {
		if _, err := usage.ParseInstant(str(v)); err != nil {
			return bad(ledgerGrantExpiresAt, "must be an RFC 3339 time")
		}
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
