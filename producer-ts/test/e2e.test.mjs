// End to end: events sent with the package through the SQS emulator are
// applied by the real worker to DynamoDB Local. The stack (emulators,
// tables, queue, worker) is internal/dev/devstack/cmd/teststack, built from this
// checkout; the package reaches it through the SDK's standard variables
// only (AWS_ENDPOINT_URL_SQS, AWS_REGION, credentials).
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import {
  CreateQueueCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  ReceiveMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";

import { Publisher, groupId, parseEvent } from "../dist/index.js";

const run = promisify(execFile);
const root = new URL("../../", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "producer-ts-e2e-"));
let stack; // the teststack process
let env; // its variables: endpoints, region, credentials, table and queue names

before(async () => {
  const bin = join(dir, "teststack");
  await run("go", ["build", "-o", bin, "./internal/dev/devstack/cmd/teststack"], { cwd: root });
  // Its progress and the worker's logs go to a file, shown if it fails.
  const log = join(dir, "teststack.log");
  stack = spawn(bin, [], { cwd: root, stdio: ["pipe", "pipe", openSync(log, "w")] });
  const exited = new Promise((_, reject) =>
    stack.once("exit", (code) =>
      reject(new Error(`teststack exited (${code}) before it was ready:\n${readFileSync(log, "utf8").slice(-4000)}`)),
    ),
  );
  const line = await Promise.race([
    new Promise((resolve) => createInterface({ input: stack.stdout }).once("line", resolve)),
    exited,
  ]);
  const ready = JSON.parse(line);
  env = { ...ready.env, USAGECTL: ready.usagectl };
  // The package is configured as any producer is: by the environment.
  for (const name of ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_SQS"]) {
    process.env[name] = env[name];
  }
  delete process.env.AWS_PROFILE;
}, { timeout: 180_000 });

after(async () => {
  if (stack && stack.exitCode === null) {
    const done = new Promise((resolve) => stack.once("exit", resolve));
    stack.stdin.end(); // the stack stops the worker and the emulators
    const timer = setTimeout(() => stack.kill("SIGKILL"), 60_000);
    await done;
    clearTimeout(timer);
  }
  rmSync(dir, { recursive: true, force: true });
});

async function usagectl(...args) {
  const { stdout } = await run(env.USAGECTL, args, { env: { ...process.env, ...env } });
  return stdout;
}

/** used is the entitlement's used as usagectl prints it: the exact decimal's text. */
async function used(user, key) {
  const out = await usagectl("usage", "--user", user, "--json");
  const view = JSON.parse(out);
  const i = view.entitlements.findIndex((e) => e.entitlementKey === key);
  if (i < 0) return undefined;
  // JSON.parse would round it through a double: read the number's text.
  return [...out.matchAll(/"used":\s*(-?[0-9][0-9.eE+-]*)/g)][i]?.[1];
}

/** waitForUsed polls until the entitlement's used is want (the worker applies asynchronously). */
async function waitForUsed(user, key, want, ms = 30_000) {
  const deadline = Date.now() + ms;
  let got;
  while (Date.now() < deadline) {
    got = await used(user, key);
    if (got === want) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(got, want, `used of ${user}/${key}`);
}

test("events sent from TypeScript are applied by the worker, exactly", { timeout: 180_000 }, async () => {
  const user = "ts-user-\u{1F600}\uffff"; // characters the emulator takes only escaped
  await usagectl("entitlement", "put", "--user", user, "--key", "api-calls"); // no limit
  const pub = new Publisher({ queueUrl: env.USAGE_EVENT_QUEUE_URL });

  const results = await pub.publishBatch([
    ...Array.from({ length: 12 }, () => ({ userId: user, entitlementKey: "api-calls", amount: 0.1 })),
    { userId: user, entitlementKey: "api-calls", amount: "2.5", idempotencyKey: "invoice-7781:line-3", metadata: { note: "\u{1F600}" } },
    { userId: user, entitlementKey: "api-calls", amount: "12345678901234567890.12345678901234567" },
  ]);
  for (const r of results) {
    assert.equal(r.error, undefined);
    assert.notEqual(r.messageId, "");
  }
  // 12 × 0.1 + 2.5 + the long one: exact decimals all the way.
  await waitForUsed(user, "api-calls", "12345678901234567893.82345678901234567");

  // The same key again is a duplicate; a refund of it gives its amount back.
  await pub.publish({ userId: user, entitlementKey: "api-calls", amount: "2.5", idempotencyKey: "invoice-7781:line-3" });
  await pub.publish({ userId: user, entitlementKey: "api-calls", operation: "refund", refundOf: "invoice-7781:line-3" });
  await waitForUsed(user, "api-calls", "12345678901234567891.32345678901234567");
});

test("entries SQS fails are resent and applied once", { timeout: 120_000 }, async () => {
  const user = "ts-retry";
  await usagectl("entitlement", "put", "--user", user, "--key", "exports", "--limit", "1000");
  const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
  let calls = 0;
  // A client that fails every other entry of the first call as SQS does
  // under internal errors (without sending them).
  const flaky = {
    async send(command, options) {
      calls++;
      if (calls > 1) return sqs.send(command, options);
      const entries = command.input.Entries;
      const keep = entries.filter((_, i) => i % 2 === 0);
      command.input.Entries = keep;
      const out = await sqs.send(command, options);
      command.input.Entries = entries;
      const failed = entries
        .filter((_, i) => i % 2 === 1)
        .map((e) => ({ Id: e.Id, Code: "InternalError", Message: "injected", SenderFault: false }));
      return { ...out, Failed: [...(out.Failed ?? []), ...failed] };
    },
  };
  const pub = new Publisher({ queueUrl: env.USAGE_EVENT_QUEUE_URL, client: flaky, retry: { baseDelayMs: 10, maxDelayMs: 20 } });
  const results = await pub.publishBatch(Array.from({ length: 10 }, (_, i) => ({ userId: user, entitlementKey: "exports", amount: i + 1 })));
  assert.deepEqual(results.map((r) => [r.error, r.attempts]), Array.from({ length: 10 }, (_, i) => [undefined, i % 2 === 0 ? 1 : 2]));
  assert.equal(calls, 2);
  await waitForUsed(user, "exports", "55");
});

test("on a FIFO queue, an entitlement's events share its group and carry their key", { timeout: 60_000 }, async () => {
  const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
  const { QueueUrl } = await sqs.send(
    new CreateQueueCommand({ QueueName: "producer-ts-e2e.fifo", Attributes: { FifoQueue: "true" } }),
  );
  try {
    const pub = new Publisher({ queueUrl: QueueUrl });
    assert.equal(pub.fifo, true);
    const events = [
      { userId: "u#1", entitlementKey: "api-calls" },
      { userId: "u#1", entitlementKey: "api-calls", amount: 2 },
      { userId: "user-2", entitlementKey: "api-calls", idempotencyKey: "invoice-1" },
    ];
    const results = await pub.publishBatch(events);
    assert.ok(results.every((r) => r.error === undefined && r.sequenceNumber !== ""));
    const got = [];
    for (let i = 0; i < 10 && got.length < 3; i++) {
      const out = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          MessageSystemAttributeNames: ["MessageGroupId", "MessageDeduplicationId"],
        }),
      );
      for (const m of out.Messages ?? []) {
        got.push(m);
        // A FIFO group's next message comes only once this one is done.
        await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: m.ReceiptHandle }));
      }
    }
    assert.equal(got.length, 3);
    for (const m of got) {
      const ev = parseEvent(m.Body);
      assert.equal(m.Attributes.MessageGroupId, groupId(ev.userId, ev.entitlementKey));
      assert.equal(m.Attributes.MessageDeduplicationId, ev.idempotencyKey);
    }
    assert.deepEqual(
      got.map((m) => m.Attributes.MessageGroupId).sort(),
      ["u%231#api-calls", "u%231#api-calls", "user-2#api-calls"],
    );
    // A group's events arrive in the order sent.
    const group1 = got.filter((m) => m.Attributes.MessageGroupId === "u%231#api-calls").map((m) => parseEvent(m.Body).amount);
    assert.deepEqual(group1, ["1", "2"]);
  } finally {
    await sqs.send(new DeleteQueueCommand({ QueueUrl }));
  }
});

test("the Node.js example of docs/usage-events-sqs.md runs as written", { timeout: 60_000 }, async () => {
  const doc = readFileSync(new URL("../../docs/usage-events-sqs.md", import.meta.url), "utf8");
  const section = doc.slice(doc.indexOf("## Sending from Node.js"));
  const example = section.match(/```js\n([\s\S]*?)```/)[1];
  assert.match(example, /from "@usage-event-service\/producer"/);
  for (const [user, key] of [["user-123", "api-calls"], ["user-123", "exports"], ["user-456", "exports"]]) {
    await usagectl("entitlement", "put", "--user", user, "--key", key);
  }
  // Inside the package, so that its name resolves to it as it would once installed.
  const file = new URL("../dist/doc-example.mjs", import.meta.url).pathname;
  writeFileSync(file, example);
  const { stdout, stderr } = await run(process.execPath, [file], { env: { ...process.env, ...env } });
  assert.equal(stdout, "sent with key invoice-7781:line-3\n2 results\n");
  assert.doesNotMatch(stderr, /rejected|not sent/);
  await waitForUsed("user-123", "api-calls", "2.5");
  await waitForUsed("user-123", "exports", "1");
  await waitForUsed("user-456", "exports", "1");
});
