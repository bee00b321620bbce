// Compiled (not run) by `npm test` against the built declarations, as a
// consumer sees them: what the event types admit and refuse.
import {
  Publisher,
  RejectionError,
  SendError,
  type Receipt,
  type Result,
  type UsageEvent,
} from "../dist/index.js";

export const valid: UsageEvent[] = [
  { userId: "u", entitlementKey: "k" },
  { userId: "u", entitlementKey: "k", operation: "consume", amount: 1 },
  { userId: "u", entitlementKey: "k", amount: "2.5", idempotencyKey: "i", metadata: { requestId: "r" } },
  { userId: "u", entitlementKey: "k", amount: 10n },
  { userId: "u", entitlementKey: "k", operation: "refund", refundOf: "i" },
  { userId: "u", entitlementKey: "k", operation: "refund", refundOf: "i", amount: "0.5" },
  { userId: "u", entitlementKey: "k", operation: "commit", holdId: "h", amount: 0 },
  { userId: "u", entitlementKey: "k", operation: "commit", holdId: "h" },
  { userId: "u", entitlementKey: "k", operation: "release", holdId: "h" },
  { userId: "u", entitlementKey: "k", operation: "grant", grantId: "g", amount: "500" },
  { userId: "u", entitlementKey: "k", operation: "grant", grantId: "g", amount: 5, expiresAt: new Date(), priority: 10 },
  { userId: "u", entitlementKey: "k", operation: "grant", grantId: "g", amount: 5, expiresAt: "2027-01-31T00:00:00Z", idempotencyKey: "g" },
  { userId: "u", entitlementKey: "k", operation: "void", grantId: "g" },
  { poolId: "p", entitlementKey: "k", operation: "grant", grantId: "g", amount: 1000 },
  { poolId: "p", entitlementKey: "k", operation: "void", grantId: "g" },
];

export const invalid: UsageEvent[] = [
  // @ts-expect-error reserve is answered only synchronously
  { userId: "u", entitlementKey: "k", operation: "reserve", amount: 1, idempotencyKey: "j" },
  // @ts-expect-error balance is answered only synchronously
  { userId: "u", entitlementKey: "k", operation: "balance" },
  // @ts-expect-error a refund names the consume it gives back
  { userId: "u", entitlementKey: "k", operation: "refund" },
  // @ts-expect-error a commit names its hold
  { userId: "u", entitlementKey: "k", operation: "commit", amount: 1 },
  // @ts-expect-error a release gives back the whole hold: no amount
  { userId: "u", entitlementKey: "k", operation: "release", holdId: "h", amount: 1 },
  // @ts-expect-error a grant names its amount
  { userId: "u", entitlementKey: "k", operation: "grant", grantId: "g" },
  // @ts-expect-error a grant names its ID
  { userId: "u", entitlementKey: "k", operation: "grant", amount: 5 },
  // @ts-expect-error a void takes no amount
  { userId: "u", entitlementKey: "k", operation: "void", grantId: "g", amount: 1 },
  // @ts-expect-error expiresAt and priority are only for a grant
  { userId: "u", entitlementKey: "k", operation: "void", grantId: "g", priority: 1 },
  // @ts-expect-error expiresAt is a Date or RFC 3339 text
  { userId: "u", entitlementKey: "k", operation: "grant", grantId: "g", amount: 5, expiresAt: 1800000000 },
  // @ts-expect-error userId is required
  { entitlementKey: "k" },
  // @ts-expect-error a pool's members consume, not the pool
  { poolId: "p", entitlementKey: "k", amount: 1 },
  // @ts-expect-error a grant is a user's or a pool's, not both
  { userId: "u", poolId: "p", entitlementKey: "k", operation: "grant", grantId: "g", amount: 1 },
  // @ts-expect-error metadata is an object
  { userId: "u", entitlementKey: "k", metadata: [1] },
];

export async function use(pub: Publisher): Promise<void> {
  const receipt: Receipt = await pub.publish(valid[0]!);
  const results: Result[] = await pub.publishBatch(valid);
  for (const r of results) {
    if (r.error instanceof RejectionError) console.log(r.error.reason, r.error.field);
    if (r.error instanceof SendError) console.log(r.error.code, r.error.senderFault, r.error.receipt?.idempotencyKey);
  }
  console.log(receipt.idempotencyKey, receipt.messageId);
}
