// The shared validation vectors (usage/testdata/vectors.json), which the
// Go tests run too: every body must get the service's answer.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { Decimal, RejectionError, checkQueued, parseEvent, serializeEvent } from "../dist/index.js";
import { marshal } from "../dist/event.js";
import { formatInstant, parseInstant } from "../dist/instant.js";

const vectors = JSON.parse(readFileSync(new URL("../../usage/testdata/vectors.json", import.meta.url), "utf8"));

function bodyOf(v) {
  if (v.body !== undefined) return v.body;
  if (v.bodyBase64 !== undefined) return Buffer.from(v.bodyBase64, "base64");
  return v.bodyParts.map((p) => p.text ?? p.repeat.repeat(p.times)).join("");
}

function outcome(fn) {
  try {
    return { valid: true, value: fn() };
  } catch (err) {
    if (!(err instanceof RejectionError)) throw err;
    return { valid: false, reason: err.reason, field: err.field || undefined, message: err.detail };
  }
}

// Messages are compared exactly, except the description of a JSON syntax
// error (where in the text the reader stopped), which only has to be one.
function assertRejection(got, want, what) {
  assert.equal(got.valid, false, `${what}: accepted, want ${want.reason} ${want.field ?? ""}`);
  assert.equal(got.reason, want.reason, `${what}: reason`);
  assert.equal(got.field, want.field, `${what}: field`);
  const prefix = "body is not valid JSON: ";
  if (want.message.startsWith(prefix)) {
    assert.ok(got.message.startsWith(prefix), `${what}: message ${JSON.stringify(got.message)}`);
  } else {
    assert.equal(got.message, want.message, `${what}: message`);
  }
}

test("the vector file holds enough cases", () => {
  assert.ok(vectors.validation.length >= 60, `${vectors.validation.length} validation vectors`);
  assert.ok(vectors.serialization.length > 0);
});

for (const v of vectors.validation) {
  test(`validation: ${v.name}`, () => {
    const body = bodyOf(v);
    const parse = outcome(() => parseEvent(body));
    if (v.parse.valid) {
      assert.equal(parse.valid, true, `parse: rejected ${parse.reason} ${parse.field}: ${parse.message}`);
      assert.deepEqual(parse.value, v.parse.event);
      // The same body as a JavaScript string reads the same.
      if (typeof body !== "string") assert.deepEqual(parseEvent(body.toString("utf8")), v.parse.event);
      const queue = outcome(() => checkQueued(parse.value));
      if (v.queue.valid) assert.equal(queue.valid, true, `queue: rejected ${queue.reason}: ${queue.message}`);
      else assertRejection(queue, v.queue, "queue");
    } else {
      assertRejection(parse, v.parse, "parse");
      assert.deepEqual(v.queue, v.parse);
    }
    // Bytes and text are the same body.
    if (typeof body === "string") {
      const fromBytes = outcome(() => parseEvent(Buffer.from(body, "utf8")));
      assert.deepEqual(fromBytes, parse);
    }
  });
}

for (const v of vectors.serialization) {
  test(`serialization: ${v.name}`, () => {
    const ev = v.event;
    const isConsume = ev.operation === undefined || ev.operation === "consume";
    // The body as the service's producers write it: the canonical amount,
    // expiresAt in UTC.
    const amount = ev.amount ?? (isConsume ? "1" : undefined);
    const wire = {
      ...ev,
      amount: amount === undefined ? undefined : Decimal.parse(amount).toString(),
      expiresAt: ev.expiresAt === undefined ? undefined : formatInstant(parseInstant(ev.expiresAt)),
    };
    assert.equal(marshal(wire), v.body);
    // The public API, where the metadata object writes back to the same text.
    const typed = { ...ev };
    if (ev.metadata !== undefined) {
      typed.metadata = JSON.parse(ev.metadata);
      if (JSON.stringify(typed.metadata) !== ev.metadata) return;
    }
    assert.equal(serializeEvent(typed), v.body);
  });
}
