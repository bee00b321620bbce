// FIFO message group and deduplication IDs, derived exactly as the Go
// producer derives them (producer.GroupID, producer.FIFOID), so that
// producers in both languages put an entitlement's events in one group.

import { createHash } from "node:crypto";

/**
 * groupId is the MessageGroupId of an entitlement's events: the userId and
 * the entitlementKey, "%" and "#" in each escaped as "%25" and "%23",
 * joined by "#", made valid by fifoId. For example "user-123#api-calls".
 */
export function groupId(userId: string, entitlementKey: string): string {
  return fifoId(escapeGroup(userId) + "#" + escapeGroup(entitlementKey));
}

/**
 * poolGroupId is the MessageGroupId of a team pool's own events (a grant
 * to the pool): "pool#", then the pool's ID and the entitlementKey escaped
 * and joined as groupId does; its two unescaped "#" keep it apart from
 * every user's group.
 */
export function poolGroupId(poolId: string, entitlementKey: string): string {
  return fifoId("pool#" + escapeGroup(poolId) + "#" + escapeGroup(entitlementKey));
}

function escapeGroup(s: string): string {
  return s.replace(/[%#]/g, (c) => (c === "%" ? "%25" : "%23"));
}

/**
 * fifoId maps s (a group name or an idempotency key) to a valid FIFO
 * MessageGroupId or MessageDeduplicationId: 1 to 128 characters of
 * printable ASCII ("!" to "~") are kept; anything else becomes "sha256:"
 * and the hex SHA-256 of its UTF-8 bytes.
 */
export function fifoId(s: string): string {
  let ok = s.length > 0 && s.length <= 128;
  for (let i = 0; ok && i < s.length; i++) {
    const c = s.charCodeAt(i);
    ok = c >= 0x21 && c <= 0x7e;
  }
  if (ok) return s;
  return "sha256:" + createHash("sha256").update(s, "utf8").digest("hex");
}
