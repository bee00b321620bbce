// The Publisher against a scripted SQS client: batching, retries, keys,
// FIFO IDs, validation before sending.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  MAX_BATCH_BYTES,
  Publisher,
  RejectionError,
  SendError,
  fifoId,
  groupId,
  poolGroupId,
  parseEvent,
  serializeEvent,
  validateEvent,
} from "../dist/index.js";

const QUEUE = "http://127.0.0.1:1/000000000000/usage-event-queue";
const FIFO_QUEUE = "http://127.0.0.1:1/000000000000/usage-event-queue.fifo";
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * fakeSQS records every SendMessageBatch input and answers with
 * decide(entry, callNumber): "ok", or a Failed entry's fields.
 */
function fakeSQS(decide = () => "ok") {
  const calls = [];
  let n = 0;
  return {
    calls,
    async send(command) {
      const input = command.input;
      calls.push(input);
      n++;
      const out = { Successful: [], Failed: [] };
      for (const e of input.Entries) {
        const d = decide(e, n);
        if (d === "ok") {
          out.Successful.push({ Id: e.Id, MessageId: `m-${n}-${e.Id}`, ...(input.QueueUrl.endsWith(".fifo") ? { SequenceNumber: String(n) } : {}) });
        } else if (d !== "missing") {
          out.Failed.push({ Id: e.Id, ...d });
        }
      }
      return out;
    },
  };
}

const ev = (i, extra = {}) => ({ userId: `user-${i}`, entitlementKey: "api-calls", ...extra });
const grant = { userId: "u", entitlementKey: "k", operation: "grant", grantId: "promo-2027-01", amount: 500 };
const voids = { userId: "u", entitlementKey: "k", operation: "void", grantId: "promo-2027-01" };
const fast = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 };

test("events go out in calls of at most ten, in order, one result each", async () => {
  const sqs = fakeSQS();
  const pub = new Publisher({ queueUrl: QUEUE, client: sqs, concurrency: 1 });
  const results = await pub.publishBatch(Array.from({ length: 25 }, (_, i) => ev(i)));
  assert.deepEqual(sqs.calls.map((c) => c.Entries.length), [10, 10, 5]);
  const bodies = sqs.calls.flatMap((c) => c.Entries.map((e) => JSON.parse(e.MessageBody)));
  assert.deepEqual(bodies.map((b) => b.userId), Array.from({ length: 25 }, (_, i) => `user-${i}`));
  assert.equal(results.length, 25);
  for (const r of results) {
    assert.equal(r.error, undefined);
    assert.match(r.messageId, /^m-/);
    assert.equal(r.attempts, 1);
  }
});

test("calls stay within 256 KiB", async () => {
  const sqs = fakeSQS();
  const pub = new Publisher({ queueUrl: QUEUE, client: sqs });
  const big = { note: "x".repeat(30000) };
  const results = await pub.publishBatch(Array.from({ length: 10 }, (_, i) => ev(i, { metadata: big })));
  assert.ok(results.every((r) => r.error === undefined));
  assert.ok(sqs.calls.length >= 2, `${sqs.calls.length} calls`);
  for (const c of sqs.calls) {
    const bytes = c.Entries.reduce((n, e) => n + Buffer.byteLength(e.MessageBody), 0);
    assert.ok(bytes <= MAX_BATCH_BYTES, `${bytes} bytes in one call`);
  }
  assert.equal(sqs.calls.reduce((n, c) => n + c.Entries.length, 0), 10);
});

test("entries SQS fails without sender fault are resent alone, and reported once sent", async () => {
  const sqs = fakeSQS((e, call) =>
    call === 1 && (e.Id === "1" || e.Id === "3") ? { Code: "InternalError", Message: "try again", SenderFault: false } : "ok",
  );
  const pub = new Publisher({ queueUrl: QUEUE, client: sqs, retry: fast });
  const results = await pub.publishBatch([ev(0), ev(1), ev(2), ev(3)]);
  assert.equal(sqs.calls.length, 2);
  assert.deepEqual(sqs.calls[1].Entries.map((e) => JSON.parse(e.MessageBody).userId), ["user-1", "user-3"]);
  // The resend is the same message: same body, same key.
  assert.equal(sqs.calls[1].Entries[0].MessageBody, sqs.calls[0].Entries[1].MessageBody);
  assert.deepEqual(results.map((r) => [r.error, r.attempts]), [[undefined, 1], [undefined, 2], [undefined, 1], [undefined, 2]]);
  assert.match(results[1].messageId, /^m-2-/);
});

test("sender faults are not retried; retries are bounded; both are reported per event", async () => {
  const sqs = fakeSQS((e) =>
    e.MessageBody.includes("user-1")
      ? { Code: "InvalidParameterValue", Message: "bad", SenderFault: true }
      : e.MessageBody.includes("user-2")
        ? { Code: "InternalError", Message: "down", SenderFault: false }
        : "ok",
  );
  const pub = new Publisher({ queueUrl: QUEUE, client: sqs, retry: fast });
  const results = await pub.publishBatch([ev(0), ev(1), ev(2)]);
  assert.equal(results[0].error, undefined);
  assert.ok(results[1].error instanceof SendError);
  assert.equal(results[1].error.code, "InvalidParameterValue");
  assert.equal(results[1].error.senderFault, true);
  assert.equal(results[1].attempts, 1);
  assert.ok(results[2].error instanceof SendError);
  assert.equal(results[2].error.code, "InternalError");
  assert.equal(results[2].attempts, 3);
  assert.equal(results[2].error.attempts, 3);
  assert.match(results[2].error.message, /not sent after 3 attempts: SQS InternalError: down/);
  assert.equal(results[2].messageId, "");
  assert.match(results[2].idempotencyKey, UUID_V7, "the key to resend with");
});

test("an entry SQS does not answer for is reported, not dropped", async () => {
  const pub = new Publisher({ queueUrl: QUEUE, client: fakeSQS(() => "missing") });
  const [r] = await pub.publishBatch([ev(0)]);
  assert.equal(r.error.code, "MissingResult");
});

test("a failed call fails its events with the call's error", async () => {
  const err = Object.assign(new Error("The specified queue does not exist."), {
    name: "QueueDoesNotExist",
    $fault: "client",
  });
  const pub = new Publisher({ queueUrl: QUEUE, client: { send: async () => { throw err; } } });
  const results = await pub.publishBatch([ev(0), ev(1)]);
  for (const r of results) {
    assert.ok(r.error instanceof SendError);
    assert.equal(r.error.code, "QueueDoesNotExist");
    assert.equal(r.error.senderFault, true);
    assert.equal(r.error.cause, err);
  }
  await assert.rejects(pub.publish(ev(0)), (e) => e instanceof SendError && UUID_V7.test(e.receipt.idempotencyKey));
});

test("invalid events are rejected before any request, with the service's reason", async () => {
  const sqs = fakeSQS();
  const pub = new Publisher({ queueUrl: QUEUE, client: sqs });
  const bad = [
    [{ userId: "", entitlementKey: "k" }, "MISSING_FIELD", "userId"],
    [{ userId: "u", entitlementKey: "k", amount: 0 }, "INVALID_AMOUNT", "amount"],
    [{ userId: "u", entitlementKey: "k", amount: -1 }, "INVALID_AMOUNT", "amount"],
    [{ userId: "u", entitlementKey: "k", amount: NaN }, "INVALID_AMOUNT", "amount"],
    [{ userId: "u", entitlementKey: "k", amount: "1.23456789012345678901234567890123456789" }, "INVALID_AMOUNT", "amount"],
    [{ userId: "u", entitlementKey: "k", amount: null }, "INVALID_AMOUNT", "amount"],
    [{ userId: "u", entitlementKey: "k", amount: true }, "INVALID_AMOUNT", "amount"],
    [{ userId: "u", entitlementKey: "k", idempotencyKey: "" }, "INVALID_FIELD", "idempotencyKey"],
    [{ userId: "u".repeat(257), entitlementKey: "k" }, "INVALID_FIELD", "userId"],
    [{ userId: "a\u0000", entitlementKey: "k" }, "INVALID_FIELD", "userId"],
    [{ userId: "\ud800", entitlementKey: "k" }, "INVALID_FIELD", "userId"],
    [{ userId: 7, entitlementKey: "k" }, "INVALID_FIELD", "userId"],
    [{ entitlementKey: "k" }, "MISSING_FIELD", "userId"],
    [{ userId: "u", entitlementKey: "k", metadata: [1] }, "INVALID_METADATA", "metadata"],
    [{ userId: "u", entitlementKey: "k", metadata: { x: "y".repeat(32 << 10) } }, "INVALID_METADATA", "metadata"],
    [{ userId: "u", entitlementKey: "k", metadata: { n: 1n } }, "INVALID_METADATA", "metadata"],
    [{ userId: "u", entitlementKey: "k", metadata: () => {} }, "INVALID_METADATA", "metadata"],
    [{ userId: "u", entitlementKey: "k", operation: "refund" }, "MISSING_FIELD", "refundOf"],
    [{ userId: "u", entitlementKey: "k", operation: "commit" }, "MISSING_FIELD", "holdId"],
    [{ userId: "u", entitlementKey: "k", operation: "refund", refundOf: "r", amount: 0 }, "INVALID_AMOUNT", "amount"],
    [{ userId: "u", entitlementKey: "k", operation: "balance" }, "INVALID_FIELD", "operation"],
    [{ userId: "u", entitlementKey: "k", operation: "reserve", amount: 5, idempotencyKey: "job-1" }, "INVALID_FIELD", "operation"],
    [{ userId: "u", entitlementKey: "k", operation: "expire", holdId: "h" }, "INVALID_FIELD", "operation"],
    [{ userId: "u", entitlementKey: "k", holdId: "h" }, "INVALID_FIELD", "holdId"],
    [{ ...grant, amount: undefined }, "MISSING_FIELD", "amount"],
    [{ ...grant, amount: 0 }, "INVALID_AMOUNT", "amount"],
    [{ ...grant, grantId: undefined }, "MISSING_FIELD", "grantId"],
    [{ ...grant, grantId: " " }, "INVALID_FIELD", "grantId"],
    [{ ...grant, grantId: "\ud800" }, "INVALID_FIELD", "grantId"],
    [{ ...grant, idempotencyKey: "promo-2027-02" }, "INVALID_FIELD", "idempotencyKey"],
    [{ ...grant, priority: 1001 }, "INVALID_FIELD", "priority"],
    [{ ...grant, priority: 2.5 }, "INVALID_FIELD", "priority"],
    [{ ...grant, priority: NaN }, "INVALID_FIELD", "priority"],
    [{ ...grant, priority: "3" }, "INVALID_FIELD", "priority"],
    [{ ...grant, expiresAt: "2027-01-31" }, "INVALID_FIELD", "expiresAt"],
    [{ ...grant, expiresAt: "2027-01-31T00:00:00" }, "INVALID_FIELD", "expiresAt"],
    [{ ...grant, expiresAt: new Date(NaN) }, "INVALID_FIELD", "expiresAt"],
    [{ ...grant, expiresAt: new Date(Date.UTC(10000, 0, 1)) }, "INVALID_FIELD", "expiresAt"],
    [{ ...grant, expiresAt: "0000-01-01T00:30:00+01:00" }, "INVALID_FIELD", "expiresAt"],
    [{ ...grant, expiresAt: 1800000000 }, "INVALID_FIELD", "expiresAt"],
    [{ ...voids, amount: 1 }, "INVALID_FIELD", "amount"],
    [{ ...voids, amount: 0 }, "INVALID_FIELD", "amount"],
    [{ ...voids, priority: 5 }, "INVALID_FIELD", "priority"],
    [{ ...voids, expiresAt: "2027-01-31T00:00:00Z" }, "INVALID_FIELD", "expiresAt"],
    [{ ...voids, grantId: undefined }, "MISSING_FIELD", "grantId"],
    [{ userId: "u", entitlementKey: "k", grantId: "g" }, "INVALID_FIELD", "grantId"],
  ];
  const results = await pub.publishBatch(bad.map(([e]) => e));
  assert.equal(sqs.calls.length, 0);
  results.forEach((r, i) => {
    const [, reason, field] = bad[i];
    assert.ok(r.error instanceof RejectionError, `${i}: ${r.error}`);
    assert.equal(`${r.error.reason} ${r.error.field}`, `${reason} ${field}`, `${i}: ${r.error.message}`);
    assert.equal(r.attempts, 0);
    assert.deepEqual(validateEvent(bad[i][0]), r.error);
  });
  await assert.rejects(pub.publish(bad[0][0]), RejectionError);
});

test("every queue operation is sent, with exact amounts", async () => {
  const sqs = fakeSQS();
  const pub = new Publisher({ queueUrl: QUEUE, client: sqs });
  const events = [
    { userId: "u", entitlementKey: "k" },
    { userId: "u", entitlementKey: "k", operation: "consume", amount: 0.1 },
    { userId: "u", entitlementKey: "k", amount: "12345678901234567890.123456789012345678" },
    { userId: "u", entitlementKey: "k", amount: 12345678901234567890123n },
    { userId: "u", entitlementKey: "k", amount: "2.5e3" },
    { userId: "u", entitlementKey: "k", operation: "refund", refundOf: "key-1" },
    { userId: "u", entitlementKey: "k", operation: "refund", refundOf: "key-1", amount: "0.5" },
    { userId: "u", entitlementKey: "k", operation: "commit", holdId: "job-77", amount: 0 },
    { userId: "u", entitlementKey: "k", operation: "commit", holdId: "job-77" },
    { userId: "u", entitlementKey: "k", operation: "release", holdId: "job-77" },
    { ...grant, amount: "0.25" },
    voids,
  ];
  const results = await pub.publishBatch(events);
  assert.ok(results.every((r) => r.error === undefined));
  const parsed = sqs.calls.flatMap((c) => c.Entries.map((e) => parseEvent(e.MessageBody)));
  assert.deepEqual(
    parsed.map((p) => [p.operation, p.amount, p.amountGiven]),
    [
      ["", "1", true],
      ["consume", "0.1", true],
      ["", "12345678901234567890.123456789012345678", true],
      ["", "12345678901234567890123", true],
      ["", "2500", true],
      ["refund", "0", false],
      ["refund", "0.5", true],
      ["commit", "0", true],
      ["commit", "0", false],
      ["release", "0", false],
      ["grant", "0.25", true],
      ["void", "0", false],
    ],
  );
  assert.match(sqs.calls[0].Entries[1].MessageBody, /"amount":0\.1,/);
});

test("keys: a UUIDv7 for every event without one, returned; the caller's kept; none when turned off", async () => {
  const sqs = fakeSQS();
  const pub = new Publisher({ queueUrl: QUEUE, client: sqs });
  const results = await pub.publishBatch([ev(0), ev(1, { idempotencyKey: "invoice-7781:line-3" }), ev(2)]);
  const sent = sqs.calls[0].Entries.map((e) => JSON.parse(e.MessageBody).idempotencyKey);
  assert.match(results[0].idempotencyKey, UUID_V7);
  assert.equal(results[1].idempotencyKey, "invoice-7781:line-3");
  assert.deepEqual(sent, results.map((r) => r.idempotencyKey));
  assert.ok(results[0].idempotencyKey < results[2].idempotencyKey, "time-ordered");

  const off = fakeSQS();
  const receipt = await new Publisher({ queueUrl: QUEUE, client: off, generateKeys: false }).publish(ev(0));
  assert.equal(receipt.idempotencyKey, "");
  assert.equal(JSON.parse(off.calls[0].Entries[0].MessageBody).idempotencyKey, undefined);
});

test("keys: a grant is sent with its grantId, never a generated key, on every queue; a void gets one", async () => {
  const configs = [
    { queueUrl: QUEUE },
    { queueUrl: QUEUE, generateKeys: false },
    { queueUrl: FIFO_QUEUE },
  ];
  for (const config of configs) {
    const sqs = fakeSQS();
    const pub = new Publisher({ ...config, client: sqs });
    const results = await pub.publishBatch([grant, { ...grant, idempotencyKey: grant.grantId }, voids]);
    const what = JSON.stringify(config);
    assert.ok(results.every((r) => r.error === undefined), what);
    const entries = sqs.calls[0].Entries;
    const sent = entries.map((e) => parseEvent(e.MessageBody));
    assert.deepEqual(results.slice(0, 2).map((r) => r.idempotencyKey), [grant.grantId, grant.grantId], what);
    assert.deepEqual(sent.slice(0, 2).map((p) => p.idempotencyKey), [grant.grantId, grant.grantId], what);
    if (config.generateKeys === false) assert.equal(results[2].idempotencyKey, "", what);
    else assert.match(results[2].idempotencyKey, UUID_V7, what);
    assert.equal(sent[2].idempotencyKey, results[2].idempotencyKey, what);
    if (pub.fifo) assert.equal(entries[0].MessageDeduplicationId, fifoId(grant.grantId));
  }
});

test("expiresAt is sent in UTC: a Date to the millisecond, text to the nanosecond", () => {
  const cases = [
    [new Date(Date.UTC(2027, 0, 31, 1, 2, 3, 40)), "2027-01-31T01:02:03.04Z"],
    [new Date(Date.UTC(2027, 0, 31)), "2027-01-31T00:00:00Z"],
    [new Date(-62167219200000), "0000-01-01T00:00:00Z"],
    ["2027-01-31T01:30:00+01:30", "2027-01-31T00:00:00Z"],
    ["2027-01-30T19:00:00.123456789-05:00", "2027-01-31T00:00:00.123456789Z"],
    ["2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z"], // past: the service decides when it processes the event
  ];
  for (const [expiresAt, want] of cases) {
    const body = serializeEvent({ ...grant, expiresAt, priority: 0 });
    assert.equal(
      body,
      `{"userId":"u","entitlementKey":"k","operation":"grant","amount":500,"grantId":"promo-2027-01","expiresAt":"${want}","priority":0}`,
    );
  }
});

test("FIFO: the entitlement is the group, the key the deduplication ID, one call at a time", async () => {
  const sqs = fakeSQS();
  let inFlight = 0;
  let most = 0;
  const client = {
    async send(cmd) {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, 2));
      inFlight--;
      return sqs.send(cmd);
    },
  };
  const pub = new Publisher({ queueUrl: FIFO_QUEUE, client, concurrency: 8, generateKeys: false });
  assert.equal(pub.fifo, true);
  const events = Array.from({ length: 30 }, (_, i) =>
    ev(i % 3, { entitlementKey: "a#b%", ...(i === 0 ? { idempotencyKey: "k".repeat(129) } : {}) }),
  );
  const results = await pub.publishBatch(events);
  assert.equal(most, 1);
  const entries = sqs.calls.flatMap((c) => c.Entries);
  entries.forEach((e, i) => {
    assert.equal(e.MessageGroupId, `user-${i % 3}#a%23b%25`);
    assert.equal(e.MessageDeduplicationId, fifoId(results[i].idempotencyKey));
    assert.equal(results[i].sequenceNumber !== "", true);
  });
  assert.match(entries[0].MessageDeduplicationId, /^sha256:[0-9a-f]{64}$/);
  assert.match(results[1].idempotencyKey, UUID_V7, "FIFO queues always get a key");
});

test("FIFO IDs are derived as the Go producer derives them", () => {
  const f = JSON.parse(readFileSync(new URL("../../producer/testdata/fifo-ids.json", import.meta.url), "utf8"));
  for (const g of f.groups) {
    const got = g.poolId ? poolGroupId(g.poolId, g.entitlementKey) : groupId(g.userId, g.entitlementKey);
    assert.equal(got, g.groupId, JSON.stringify(g));
  }
  for (const v of f.ids) assert.equal(fifoId(v.in), v.out, JSON.stringify(v));
});

test("an aborted publish reports every event not sent", async () => {
  const ac = new AbortController();
  ac.abort(new Error("shutting down"));
  const sqs = fakeSQS();
  const results = await new Publisher({ queueUrl: QUEUE, client: sqs }).publishBatch([ev(0)], { signal: ac.signal });
  assert.equal(sqs.calls.length, 0);
  assert.match(results[0].error.message, /not sent: shutting down/);
});

test("serializeEvent writes what the Publisher sends", () => {
  assert.equal(
    serializeEvent({ userId: "user-123", entitlementKey: "api-calls", amount: "2.50", idempotencyKey: "k-1", metadata: { requestId: "req-42" } }),
    '{"userId":"user-123","entitlementKey":"api-calls","amount":2.5,"idempotencyKey":"k-1","metadata":{"requestId":"req-42"}}',
  );
  assert.throws(() => serializeEvent({ userId: "u", entitlementKey: "k", amount: "1e999" }), RejectionError);
});

test("bad settings are refused", () => {
  assert.throws(() => new Publisher({ queueUrl: "usage-event-queue" }), /queue URL/);
  assert.throws(() => new Publisher({ queueUrl: QUEUE, concurrency: 0 }), /concurrency/);
  assert.throws(() => new Publisher({ queueUrl: QUEUE, retry: { maxAttempts: 0 } }), /retry/);
});
