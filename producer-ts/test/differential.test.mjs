// Differential tests against the service's own parser (Go's
// usage.ParseEvent, through internal/dev/contract/cmd/parseevents): bodies made
// by mutating the shared vectors' bodies must get the same answers from
// both, and events the package writes must be written the same way by the
// service's producers. Deterministic: DIFF_SEED and DIFF_N choose the
// inputs (default 1 and 3000).
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import { RejectionError, checkQueued, parseEvent, serializeEvent } from "../dist/index.js";
import { marshal, wireOf } from "../dist/event.js";

const root = new URL("../../", import.meta.url).pathname;
const vectors = JSON.parse(readFileSync(new URL("../../usage/testdata/vectors.json", import.meta.url), "utf8"));

function bodyOf(v) {
  if (v.body !== undefined) return Buffer.from(v.body, "utf8");
  if (v.bodyBase64 !== undefined) return Buffer.from(v.bodyBase64, "base64");
  return Buffer.from(v.bodyParts.map((p) => p.text ?? p.repeat.repeat(p.times)).join(""), "utf8");
}

// mulberry32: a small seeded generator, so that a failure can be replayed.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const tokens = [
  '"', "\\", "\\u", "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\u0000", "\\u0085", "\\t", "{", "}", "[", "]", ",", ":",
  " ", "\t", "\n", "0", "-", ".", "e", "E", "+", "1", "9", "00", "1e131", "1E-131", "null", "true", "false",
  '"userId":"x",', '"entitlementKey":"y",', '"amount":', '"amount":0.5,', '"amount":"1",', '"operation":"refund",',
  '"operation":"commit",', '"operation":"release",', '"operation":"reserve",', '"operation":"balance",',
  '"refundOf":"r",', '"holdId":"h",', '"holdSeconds":5,', '"metadata":{},', '"metadata":[],', '"idempotencyKey":"",',
  '"idempotencyKey":"k",', '"operation":"grant",', '"operation":"void",', '"grantId":"g",', '"grantId":"k",',
  '"expiresAt":"2027-01-31T00:00:00Z",', '"expiresAt":', '"priority":5,', '"priority":', "T", "Z", "+01:00", "-05:30", ":",
  ",5", ".123456789", "24", "60", "0000", "9999", '"x":', "\u0085", "\u00a0", "\u2028", "\ufeff", "\uffff", "\u{1F600}", "\u007f", "\u0001",
  "\u3000", "\u180e",
];
const badBytes = [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80]];

function mutate(body, rand) {
  let b = body;
  const n = 1 + Math.floor(rand() * 3);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(rand() * (b.length + 1));
    const r = rand();
    if (r < 0.3) {
      const len = 1 + Math.floor(rand() * 3);
      b = Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
    } else if (r < 0.8) {
      const t = rand() < 0.9 ? Buffer.from(tokens[Math.floor(rand() * tokens.length)], "utf8") : Buffer.from(badBytes[Math.floor(rand() * badBytes.length)]);
      b = Buffer.concat([b.subarray(0, at), t, b.subarray(at)]);
    } else if (r < 0.9) {
      const end = Math.min(b.length, at + 1 + Math.floor(rand() * 20));
      b = Buffer.concat([b.subarray(0, end), b.subarray(at, end), b.subarray(end)]);
    } else if (at < b.length) {
      b = Buffer.from(b);
      b[at] = 0x20 + Math.floor(rand() * 0x5f);
    }
  }
  return b;
}

function answer(body) {
  const out = (fn) => {
    try {
      return { valid: true, value: fn() };
    } catch (err) {
      if (!(err instanceof RejectionError)) throw err;
      return { valid: false, reason: err.reason, ...(err.field ? { field: err.field } : {}), message: err.detail };
    }
  };
  const parse = out(() => parseEvent(body));
  if (!parse.valid) return { parse, queue: parse };
  const queue = out(() => checkQueued(parse.value));
  return { parse: { valid: true, event: parse.value }, queue: queue.valid ? { valid: true } : queue };
}

// Messages must agree too, except the description of a JSON syntax error.
// Of a read event, the fields parseevents names are compared (it does not
// name grantId, expiresAt and priority); the body the service's producers
// write for it is compared too, and carries every field.
function same(ts, go) {
  const prefix = "body is not valid JSON: ";
  if (!ts.valid && !go.valid && go.message?.startsWith(prefix) && ts.message?.startsWith(prefix)) {
    return { ...ts, message: go.message };
  }
  if (ts.event && go.event) {
    return { ...ts, event: Object.fromEntries(Object.keys(go.event).map((k) => [k, ts.event[k]])) };
  }
  return ts;
}

const seed = Number(process.env.DIFF_SEED ?? 1);
const n = Number(process.env.DIFF_N ?? 3000);
const dir = mkdtempSync(join(tmpdir(), "producer-ts-diff-"));
const bin = join(dir, "parseevents");

before(async () => {
  await promisify(execFile)("go", ["build", "-o", bin, "./internal/dev/contract/cmd/parseevents"], { cwd: root });
}, { timeout: 120_000 });

after(() => rmSync(dir, { recursive: true, force: true }));

/** goAnswers is the service's answer for each body, in order. */
async function goAnswers(bodies) {
  const go = spawn(bin, [], { stdio: ["pipe", "pipe", "inherit"] });
  const answers = [];
  const done = new Promise((resolve, reject) => {
    createInterface({ input: go.stdout }).on("line", (l) => answers.push(JSON.parse(l)));
    go.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`parseevents exited ${code}`))));
  });
  for (const b of bodies) go.stdin.write(JSON.stringify({ body: b.toString("base64") }) + "\n");
  go.stdin.end();
  await done;
  assert.equal(answers.length, bodies.length);
  return answers;
}

/**
 * assertSameAnswers checks the package's answer for each body against the
 * service's, and the body the service's producers write for a valid one;
 * it returns how many were valid.
 */
async function assertSameAnswers(bodies, what) {
  const answers = await goAnswers(bodies);
  let valid = 0;
  bodies.forEach((b, i) => {
    const ts = answer(b);
    const want = answers[i];
    const body = `${what} ${i} (seed ${seed}): ${JSON.stringify(b.toString("latin1")).slice(0, 300)}`;
    assert.deepEqual(same(ts.parse, want.parse), want.parse, `${body}: parse`);
    assert.deepEqual(same(ts.queue, want.queue), want.queue, `${body}: queue`);
    if (want.parse.valid) {
      assert.equal(marshal(wireOf(ts.parse.event)), want.marshal, `${body}: written back`);
      valid++;
    }
  });
  return valid;
}

test("the package reads generated bodies exactly as the service does", { timeout: 180_000 }, async () => {
  const rand = rng(seed);
  const seeds = vectors.validation.map(bodyOf).filter((b) => b.length < 4096);
  const bodies = Array.from({ length: n }, () => mutate(seeds[Math.floor(rand() * seeds.length)], rand));
  const valid = await assertSameAnswers(bodies, "body");
  // The mutations keep a share of the bodies valid, so both paths are compared.
  assert.ok(valid > n / 50, `${valid} of ${n} generated bodies are valid`);
});

// A grant's expiresAt is read by Go's time.Parse, which the package follows
// byte for byte: generated times near and across each of its limits, with
// the characters it treats specially, must be read (or refused, with the
// same message) alike, and written back as the same instant in UTC.
test("the package reads expiresAt exactly as the service does", { timeout: 180_000 }, async () => {
  const rand = rng(seed + 2);
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const pad = (v, width) => String(v).padStart(width, "0");
  // A field: mostly in range, sometimes just outside it.
  const field = (lo, hi, width) => pad(rand() < 0.9 ? lo + Math.floor(rand() * (hi - lo + 1)) : pick([lo - 1, hi + 1]), width);
  const zone = () => {
    const r = rand();
    if (r < 0.45) return "Z";
    if (r < 0.9) return `${pick(["+", "-"])}${rand() < 0.9 ? field(0, 23, 2) : pick(["24", "25"])}:${pick([field(0, 59, 2), "60", "61"])}`;
    return pick(["z", "", "~01:00", "+0100", "+01:0", "+1:00"]);
  };
  const fraction = () => (rand() < 0.6 ? "" : pick([".", ".", ","]) + pad(Math.floor(rand() * 1e6), 1 + Math.floor(rand() * 12)));
  // Inserted now and then: the characters of the layout, and JSON escapes.
  const noise = ["0", "9", "-", "+", ":", "T", "t", "Z", ".", ",", " ", "é", "\\u0000", '\\"', "\\\\"];
  const instant = () => {
    const year = rand() < 0.8 ? pad(Math.floor(rand() * 10000), 4) : pick(["0000", "9999", "2028", "2100", "2000", "999", "10000"]);
    const hour = rand() < 0.1 ? String(Math.floor(rand() * 10)) : field(0, 23, 2);
    let s = `${year}-${field(1, 12, 2)}-${field(1, 31, 2)}${rand() < 0.95 ? "T" : pick(["t", " "])}${hour}:${field(0, 59, 2)}:${field(0, 59, 2)}${fraction()}${zone()}`;
    if (rand() < 0.15) {
      const at = Math.floor(rand() * (s.length + 1));
      s = s.slice(0, at) + pick(noise) + s.slice(at + (rand() < 0.5 ? 1 : 0));
    }
    return s;
  };
  const bodies = Array.from({ length: n }, () =>
    Buffer.from(`{"userId":"u","entitlementKey":"k","operation":"grant","grantId":"g","amount":1,"expiresAt":"${instant()}"}`),
  );
  const valid = await assertSameAnswers(bodies, "expiresAt body");
  assert.ok(valid > n / 20 && valid < n - n / 20, `${valid} of ${n} generated times are valid`);
});

// Characters the writers treat specially: quotes, escapes, HTML, line
// separators, noncharacters, astral ones, whitespace and controls.
const alphabet = [
  "a", "Z", "0", "-", "_", ":", "#", "%", "/", " ", '"', "\\", "<", ">", "&", "\u0080", "\u00e9", "\u2028", "\u2029",
  "\ufffd", "\ufeff", "\ufffe", "\uffff", "\u{1F600}", "\u{10FFFF}", "\u0085", "\u00a0", "\u3000",
];
const controls = ["\u007f", "\u0001", "\n", "\t"]; // rare: an ID with one is rejected

test("events the package writes are written the same way by the service's producers", { timeout: 180_000 }, async () => {
  const rand = rng(seed + 1);
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const char = () => (rand() < 0.01 ? pick(controls) : pick(alphabet));
  const str = (max) => Array.from({ length: 1 + Math.floor(rand() * max) }, char).join("");
  const amounts = [undefined, "1", "0.1", "2.5e3", "1E-130", "9.9999999999999999999999999999999999999E+125", "0", 7, 0.25, 10n, "12345678901234567890.123"];
  const instants = [
    "2027-01-31T00:00:00Z", "2027-01-31T01:30:00+01:30", "2027-01-30T19:00:00.12345-05:00", "2027-01-31T1:00:00,5Z",
    "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2028-02-29T23:59:59-24:00", "2027-02-29T00:00:00Z",
    new Date(Date.UTC(2027, 0, 31, 12, 0, 0, 250)), new Date(-62135596800000), new Date(253402300799999),
  ];
  const events = Array.from({ length: n }, () => {
    const e = { userId: str(8), entitlementKey: str(8) };
    const op = pick([undefined, "consume", "refund", "commit", "release", "grant", "void"]);
    if (op) e.operation = op;
    if (op === "refund") e.refundOf = str(6);
    if (op === "commit" || op === "release") e.holdId = str(6);
    if (op === "grant" || op === "void") e.grantId = str(6);
    if (op === "grant" && rand() < 0.5) e.expiresAt = pick(instants);
    if (op === "grant" && rand() < 0.5) e.priority = Math.floor(rand() * 1001);
    const amount = pick(amounts);
    if (amount !== undefined && op !== "release" && op !== "void") e.amount = amount;
    if (rand() < 0.5) e.idempotencyKey = op === "grant" ? e.grantId : str(10);
    if (rand() < 0.3) e.metadata = { [str(4)]: str(8), n: [1, 2.5, null, true], o: { k: str(3) } };
    return e;
  });
  const bodies = [];
  const written = [];
  for (const e of events) {
    try {
      const body = serializeEvent(e);
      bodies.push(Buffer.from(body, "utf8"));
      written.push(body);
    } catch (err) {
      if (!(err instanceof RejectionError)) throw err;
    }
  }
  const answers = await goAnswers(bodies);
  answers.forEach((want, i) => {
    const what = `event body ${JSON.stringify(written[i])}`;
    assert.equal(want.parse.valid, true, `${what}: the service rejects what the package sends: ${want.parse.message}`);
    assert.equal(want.queue.valid, true, `${what}: queue`);
    assert.equal(want.marshal, written[i], `${what}: the service's producers write it otherwise`);
  });
  assert.ok(bodies.length > n / 4, `${bodies.length} of ${n} generated events are valid`);
});
