package dynamodb

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/usage-event-service/usage-event-service/usage"
)

// EntitlementKeys describes access-service's key layout. The table is not
// ours, so every part of it is configurable; the defaults are the
// documented schema.
type EntitlementKeys struct {
	PartitionAttr string // default "pk"
	SortAttr      string // default "sk"
	UserPrefix    string // default "USER#"
	KeyPrefix     string // default "ENTITLEMENT#"
	PoolPrefix    string // default "POOL#", before a pool's ID (usage.PoolScope)
}

// DefaultEntitlementKeys is the documented entitlements table layout.
var DefaultEntitlementKeys = EntitlementKeys{PartitionAttr: "pk", SortAttr: "sk", UserPrefix: "USER#", KeyPrefix: "ENTITLEMENT#", PoolPrefix: "POOL#"}

// DynamoDB's key size limits, in bytes.
const (
	maxPartitionKeyBytes = 2048
	maxSortKeyBytes      = 1024
)

// entitlementKey is the key of a scope's entitlement item.
type entitlementKey struct{ pk, sk string }

// key returns the scope's entitlement item key; ok is false when it would
// be longer than DynamoDB allows, so no such item can exist.
func (k EntitlementKeys) key(s usage.Scope) (key entitlementKey, ok bool) {
	key = entitlementKey{pk: k.PartitionValue(s), sk: k.KeyPrefix + s.EntitlementKey}
	return key, len(key.pk) <= maxPartitionKeyBytes && len(key.sk) <= maxSortKeyBytes
}

// PartitionValue is the partition key value of a scope's entitlement
// item: the user's, or with s.Pool the pool's (PoolPrefix, "POOL#" when
// unset).
func (k EntitlementKeys) PartitionValue(s usage.Scope) string {
	switch {
	case !s.Pool:
		return k.UserPrefix + s.UserID
	case k.PoolPrefix == "":
		return DefaultEntitlementKeys.PoolPrefix + s.UserID
	}
	return k.PoolPrefix + s.UserID
}

func (e entitlementKey) attributes(k EntitlementKeys) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		k.PartitionAttr: &types.AttributeValueMemberS{Value: e.pk},
		k.SortAttr:      &types.AttributeValueMemberS{Value: e.sk},
	}
}

// Ledger layout: one item per applied event.
//
//	pk = USER#<userId>#ENTITLEMENT#<entitlementKey>   (the dedup scope; '#' and '%' escaped)
//	sk = KEY#<dedup key>
//
// Keys that would exceed DynamoDB's limits are replaced by a SHA-256 of
// their content (prefixes SCOPEHASH# / KEYHASH#), which keeps them unique.
// The hashed scope length-prefixes userId and entitlementKey, so no two
// scopes share a content, whatever characters the IDs hold.
const (
	ledgerPK        = "pk"
	ledgerSK        = "sk"
	ledgerExpiresAt = "expiresAt"
)

var ledgerEscaper = strings.NewReplacer("%", "%25", "#", "%23")

// LedgerKey returns the ledger item key of a dedup key in a scope.
func LedgerKey(s usage.Scope, dedupKey string) (pk, sk string) {
	owner, content := "USER#", lengthPrefixed(s.UserID)+lengthPrefixed(s.EntitlementKey)
	if s.Pool {
		// A pool's own items (its notifications) live apart from any user's.
		owner, content = "POOL#", "pool:"+content
	}
	pk = owner + ledgerEscaper.Replace(s.UserID) + "#ENTITLEMENT#" + ledgerEscaper.Replace(s.EntitlementKey)
	if len(pk) > maxPartitionKeyBytes {
		pk = "SCOPEHASH#" + digest(content)
	}
	sk = "KEY#" + dedupKey
	if len(sk) > maxSortKeyBytes {
		sk = "KEYHASH#" + digest(dedupKey)
	}
	return pk, sk
}

func ledgerKeyAttributes(s usage.Scope, dedupKey string) map[string]types.AttributeValue {
	pk, sk := LedgerKey(s, dedupKey)
	return map[string]types.AttributeValue{
		ledgerPK: &types.AttributeValueMemberS{Value: pk},
		ledgerSK: &types.AttributeValueMemberS{Value: sk},
	}
}

// lengthPrefixed encodes s as "<byte length>:<s>": a concatenation of
// such parts splits back in exactly one way.
func lengthPrefixed(s string) string { return strconv.Itoa(len(s)) + ":" + s }

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
