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
  '"idempotencyKey":"k",', '"x":', "\u0085", "\u00a0", "\u2028", "\ufeff", "\uffff", "\u{1F600}", "\u007f", "\u0001",
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
function same(ts, go) {
  const prefix = "body is not valid JSON: ";
  if (!ts.valid && !go.valid && go.message?.startsWith(prefix) && ts.message?.startsWith(prefix)) {
    return { ...ts, message: go.message };
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

test("the package reads generated bodies exactly as the service does", { timeout: 180_000 }, async () => {
  const rand = rng(seed);
  const seeds = vectors.validation.map(bodyOf).filter((b) => b.length < 4096);
  const bodies = Array.from({ length: n }, () => mutate(seeds[Math.floor(rand() * seeds.length)], rand));
  const answers = await goAnswers(bodies);
  let valid = 0;
  bodies.forEach((b, i) => {
    const ts = answer(b);
    const want = answers[i];
    const what = `body ${i} (seed ${seed}): ${JSON.stringify(b.toString("latin1")).slice(0, 300)}`;
    assert.deepEqual(same(ts.parse, want.parse), want.parse, `${what}: parse`);
    assert.deepEqual(same(ts.queue, want.queue), want.queue, `${what}: queue`);
    if (want.parse.valid) valid++;
  });
  // The mutations keep a share of the bodies valid, so both paths are compared.
  assert.ok(valid > n / 50, `${valid} of ${n} generated bodies are valid`);
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
  const events = Array.from({ length: n }, () => {
    const e = { userId: str(8), entitlementKey: str(8) };
    const op = pick([undefined, "consume", "refund", "commit", "release"]);
    if (op) e.operation = op;
    if (op === "refund") e.refundOf = str(6);
    if (op === "commit" || op === "release") e.holdId = str(6);
    const amount = pick(amounts);
    if (amount !== undefined && op !== "release") e.amount = amount;
    if (rand() < 0.5) e.idempotencyKey = str(10);
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
