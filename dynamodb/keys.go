package dynamodb

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

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
}

// DefaultEntitlementKeys is the documented entitlements table layout.
var DefaultEntitlementKeys = EntitlementKeys{PartitionAttr: "pk", SortAttr: "sk", UserPrefix: "USER#", KeyPrefix: "ENTITLEMENT#"}

// DynamoDB's key size limits, in bytes.
const (
	maxPartitionKeyBytes = 2048
	maxSortKeyBytes      = 1024
)

func (k EntitlementKeys) values(s usage.Scope) (pk, sk string, ok bool) {
	pk, sk = k.UserPrefix+s.UserID, k.KeyPrefix+s.EntitlementKey
	// A key longer than DynamoDB allows cannot name an existing item.
	return pk, sk, len(pk) <= maxPartitionKeyBytes && len(sk) <= maxSortKeyBytes
}

// Ledger layout: one item per applied event.
//
//	pk = USER#<userId>#ENTITLEMENT#<entitlementKey>   (the dedup scope; '#' and '%' escaped)
//	sk = KEY#<dedup key>
//
// Keys that would exceed DynamoDB's limits are replaced by a SHA-256 of
// their content (prefixes SCOPEHASH# / KEYHASH#), which keeps them unique.
const (
	ledgerPK        = "pk"
	ledgerSK        = "sk"
	ledgerExpiresAt = "expiresAt"
)

var ledgerEscaper = strings.NewReplacer("%", "%25", "#", "%23")

// LedgerKey returns the ledger item key of a dedup key in a scope.
func LedgerKey(s usage.Scope, dedupKey string) (pk, sk string) {
	pk = "USER#" + ledgerEscaper.Replace(s.UserID) + "#ENTITLEMENT#" + ledgerEscaper.Replace(s.EntitlementKey)
	if len(pk) > maxPartitionKeyBytes {
		pk = "SCOPEHASH#" + digest(s.UserID+"\x00"+s.EntitlementKey)
	}
	sk = "KEY#" + dedupKey
	if len(sk) > maxSortKeyBytes {
		sk = "KEYHASH#" + digest(dedupKey)
	}
	return pk, sk
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
