// The publisher: validates events with the service's rules, gives each an
// idempotency key, and sends them with SendMessageBatch, as the Go producer
// (package producer) does.

import {
  SQSClient,
  SendMessageBatchCommand,
  type SQSClientConfig,
  type SendMessageBatchCommandOutput,
  type SendMessageBatchRequestEntry,
} from "@aws-sdk/client-sqs";
import { v7 as uuidv7 } from "uuid";

import { Decimal } from "./decimal.js";
import {
  MAX_GRANT_PRIORITY,
  RejectionError,
  checkQueued,
  isWellFormed,
  marshal,
  parseEvent,
  wireOf,
  type Wire,
} from "./event.js";
import { fifoId, groupId, poolGroupId } from "./fifo.js";
import { formatInstant, instantOfDate } from "./instant.js";
import { quoteShort } from "./quote.js";

/** The most entries one SendMessageBatch call takes. */
export const MAX_BATCH_ENTRIES = 10;
/**
 * The most message bytes one call carries: 256 KiB, the limit every SQS
 * deployment and emulator enforces. A valid event is far smaller.
 */
export const MAX_BATCH_BYTES = 256 << 10;

/**
 * An amount: a number (sent as JavaScript writes it, String(n)), a bigint,
 * a Decimal, or the decimal's text ("2.5", "1E-3"), which is read exactly.
 */
export type Amount = number | bigint | string | Decimal;

interface EventFields {
  entitlementKey: string;
  /** The dedup key; a UUIDv7 is generated when absent (see PublisherOptions.generateKeys). */
  idempotencyKey?: string;
  /** Any JSON object, at most 32 KiB compact; kept in the ledger as the audit record. */
  metadata?: Record<string, unknown>;
}

/** A user's entitlement. */
interface UserOwned {
  userId: string;
  poolId?: never;
}

/**
 * A team pool's own entitlement, instead of a user's: grants to it and
 * voids of them (its members consume through their own entitlements).
 */
interface PoolOwned {
  /** The pool's ID. */
  poolId: string;
  userId?: never;
}

interface EventBase extends EventFields, UserOwned {}

/** ConsumeEvent adds amount (default 1) to the entitlement's usage. */
export interface ConsumeEvent extends EventBase {
  operation?: "consume";
  amount?: Amount;
}

/** RefundEvent gives back (part of) an applied consume; no amount: all that remains. */
export interface RefundEvent extends EventBase {
  operation: "refund";
  /** The dedup key of the consume to give back. */
  refundOf: string;
  amount?: Amount;
}

/** CommitEvent settles a hold with what was really used; no amount: the whole hold. */
export interface CommitEvent extends EventBase {
  operation: "commit";
  /** The hold: its reserve's idempotencyKey. */
  holdId: string;
  amount?: Amount;
}

/** ReleaseEvent settles a hold by giving all of it back. */
export interface ReleaseEvent extends EventBase {
  operation: "release";
  holdId: string;
}

/**
 * GrantEvent adds a top-up to the entitlement, which consumes draw from
 * after the allowance.
 */
export type GrantEvent = GrantFields & (UserOwned | PoolOwned);

interface GrantFields extends EventFields {
  operation: "grant";
  /**
   * The grant's ID, which is also its idempotency key: an idempotencyKey,
   * if given, must equal it, and a grant without one is sent with this one
   * (never a generated key).
   */
  grantId: string;
  /** Required, and greater than 0. */
  amount: Amount;
  /**
   * When the grant stops counting: a Date, or RFC 3339 text with a zone
   * ("2027-01-31T00:00:00Z", "2027-01-31T01:00:00+01:00"), sent in UTC.
   * Absent: never. One already past is not refused here: the service
   * decides when it processes the event.
   */
  expiresAt?: Date | string;
  /** A whole number from 0 to 1000, lower drawn first; absent: 100 (DEFAULT_GRANT_PRIORITY). */
  priority?: number;
}

/** VoidEvent ends a grant: what is left of it stops counting. It takes no amount. */
export type VoidEvent = VoidFields & (UserOwned | PoolOwned);

interface VoidFields extends EventFields {
  operation: "void";
  /** The grant to end. */
  grantId: string;
}

/**
 * UsageEvent is every operation a queue takes. (balance and reserve are
 * answered only synchronously; sent to a queue they are rejected.)
 */
export type UsageEvent = ConsumeEvent | RefundEvent | CommitEvent | ReleaseEvent | GrantEvent | VoidEvent;

/**
 * Prepared is an event checked and written as it would be sent (without a
 * generated key).
 */
interface Prepared {
  body: string;
  wire: Wire;
  userId: string;
  /** A pool's own event's pool; "" for a user's. */
  poolId: string;
  entitlementKey: string;
  idempotencyKey: string;
  /** A grant's grantId, its key when it has no other; "" for other operations. */
  grantId: string;
}

const STRING_FIELDS = ["userId", "poolId", "entitlementKey", "operation", "refundOf", "holdId", "grantId", "idempotencyKey"] as const;

function prepare(event: UsageEvent): Prepared {
  if (typeof event !== "object" || event === null) {
    throw new RejectionError("INVALID_JSON", "", `body must be a JSON object, got ${event === null ? "null" : typeof event}`);
  }
  const e = event as unknown as Record<string, unknown>;
  const given = (name: string): unknown => (e[name] === null ? undefined : e[name]);
  const wire: Wire = {};
  for (const name of STRING_FIELDS) {
    const v = given(name);
    if (typeof v === "string" && !isWellFormed(v)) {
      throw new RejectionError("INVALID_FIELD", name, "is not valid UTF-8");
    }
    wire[name] = v;
  }
  wire.holdSeconds = given("holdSeconds");
  wire.expiresAt = expiresAtValue(given("expiresAt"));
  wire.priority = priorityValue(given("priority"));
  if (e.amount !== undefined) {
    wire.amount = amountText(e.amount);
  } else if (wire.operation === undefined || wire.operation === "" || wire.operation === "consume") {
    wire.amount = "1"; // the contract's default, written out as the Go producer does
  }
  const metadata = given("metadata");
  if (metadata !== undefined) {
    let text: string | undefined;
    try {
      text = JSON.stringify(metadata);
    } catch (err) {
      throw new RejectionError("INVALID_METADATA", "metadata", `is not valid JSON: ${(err as Error).message}`);
    }
    if (text === undefined) {
      // What JSON cannot write (a function, a symbol) is not metadata either.
      throw new RejectionError("INVALID_METADATA", "metadata", `must be a JSON object, got a ${typeof metadata}`);
    }
    wire.metadata = text;
  }
  const parsed = parseEvent(marshal(wire)); // the service's own reading of what would be sent
  checkQueued(parsed);
  // What is sent is that reading, written as the Go producer writes it: an
  // expiresAt in UTC, whatever its offset was.
  const read = wireOf(parsed);
  return {
    body: marshal(read),
    wire: read,
    userId: parsed.userId,
    poolId: parsed.poolId,
    entitlementKey: parsed.entitlementKey,
    idempotencyKey: parsed.idempotencyKey,
    grantId: parsed.operation === "grant" ? parsed.grantId : "",
  };
}

/**
 * expiresAtValue writes a Date as the service's text of its instant, in
 * UTC; any other value goes as given, for the service's reading to judge.
 */
function expiresAtValue(v: unknown): unknown {
  if (!(v instanceof Date)) return v;
  const at = instantOfDate(v);
  if (at === undefined) throw new RejectionError("INVALID_FIELD", "expiresAt", "must be a valid Date, got an invalid Date");
  return formatInstant(at);
}

/** priorityValue refuses what JSON cannot write (NaN, Infinity), which would otherwise be sent as null: no priority. */
function priorityValue(v: unknown): unknown {
  if (typeof v === "number" && !Number.isFinite(v)) {
    throw new RejectionError(
      "INVALID_FIELD",
      "priority",
      `must be a whole number from 0 to ${MAX_GRANT_PRIORITY}, got ${quoteShort(String(v))}`,
    );
  }
  return v;
}

function amountText(a: unknown): string {
  let text: string;
  if (a instanceof Decimal) return a.toString();
  if (typeof a === "string") text = a;
  else if (typeof a === "number" || typeof a === "bigint") text = String(a);
  else return JSON.stringify(a) ?? "null"; // not a number: the service's answer follows
  try {
    return Decimal.parse(text).toString();
  } catch (err) {
    throw new RejectionError("INVALID_AMOUNT", "amount", (err as Error).message);
  }
}

/**
 * validateEvent returns the RejectionError the service would give the
 * event sent to its queue, or undefined when the service would take it.
 */
export function validateEvent(event: UsageEvent): RejectionError | undefined {
  try {
    prepare(event);
    return undefined;
  } catch (err) {
    if (err instanceof RejectionError) return err;
    throw err;
  }
}

/**
 * serializeEvent returns the message body the Publisher sends for event
 * (without generating a key), or throws its RejectionError.
 */
export function serializeEvent(event: UsageEvent): string {
  return prepare(event).body;
}

/** The one SQS call a Publisher makes; an SQSClient, or a wrapper of one. */
export interface BatchSender {
  send(command: SendMessageBatchCommand, options?: { abortSignal?: AbortSignal }): Promise<SendMessageBatchCommandOutput>;
}

export interface PublisherOptions {
  /** The queue's URL. One ending in ".fifo" selects FIFO behaviour. */
  queueUrl: string;
  /**
   * The SQS client (or a wrapper of one). By default a new SQSClient(clientConfig):
   * region, credentials, endpoint (AWS_ENDPOINT_URL_SQS) and retries come from
   * the SDK's standard configuration.
   */
  client?: BatchSender;
  /** Configuration of the default client. */
  clientConfig?: SQSClientConfig;
  /**
   * Give every event without an idempotencyKey a new UUIDv7 (default true).
   * false sends such events without a key: the service then deduplicates
   * by SQS message ID, which is new on every send, so a resend is counted
   * twice. FIFO queues always get a key.
   */
  generateKeys?: boolean;
  /** SendMessageBatch calls at a time (default 4); FIFO queues use 1. */
  concurrency?: number;
  /**
   * How entries SQS fails without sender fault are resent: maxAttempts
   * sends in all (default 5), waiting an exponential delay from baseDelayMs
   * (100) up to maxDelayMs (5000) with equal jitter.
   */
  retry?: { maxAttempts?: number; baseDelayMs?: number; maxDelayMs?: number };
}

/** Receipt says how an event was sent. */
export interface Receipt {
  /** The SQS message ID; "" when the event was not sent. */
  messageId: string;
  /**
   * The key the event was sent (or would have been sent) with: the
   * caller's, a grant's grantId, a generated UUIDv7, or "" with
   * generateKeys false. Resend with it after a failure.
   */
  idempotencyKey: string;
  /** Set by FIFO queues. */
  sequenceNumber: string;
  /** SendMessageBatch calls that carried the event (0: not sent). */
  attempts: number;
}

/** Result is what happened to one event of a batch. */
export interface Result extends Receipt {
  /**
   * undefined when SQS accepted the event; otherwise a RejectionError (not
   * sent: the service would reject it), a SendError (SQS did not accept
   * it), or the abort reason.
   */
  error?: Error;
}

/** SendError is an event SQS did not accept. */
export class SendError extends Error {
  override readonly name = "SendError";
  /** From publish: how the event was (not) sent, with the key to resend it with. */
  receipt?: Receipt;
  constructor(
    /** SQS's error code for the entry, or the call's error name. */
    readonly code: string,
    readonly detail: string,
    /** SQS blamed the request: resending it unchanged fails the same way. */
    readonly senderFault: boolean,
    readonly attempts: number,
    /** The call's error, when the whole SendMessageBatch call failed. */
    override readonly cause?: unknown,
  ) {
    const tries = attempts === 1 ? "1 attempt" : `${attempts} attempts`;
    super(
      cause !== undefined
        ? `not sent after ${tries}: ${cause instanceof Error ? cause.message : String(cause)}`
        : `not sent after ${tries}: SQS ${code}${senderFault ? ", sender fault" : ""}: ${detail}`,
    );
  }
}

interface Entry {
  index: number;
  body: string;
  bytes: number;
  group?: string;
  dedup?: string;
}

/**
 * Publisher sends usage events to one queue. Create one per process and
 * share it.
 */
export class Publisher {
  readonly queueUrl: string;
  readonly fifo: boolean;
  private readonly client: BatchSender;
  private readonly generateKeys: boolean;
  private readonly concurrency: number;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(options: PublisherOptions) {
    const { queueUrl } = options;
    if (typeof queueUrl !== "string" || !/^https?:\/\/[^/]+\/.+/.test(queueUrl)) {
      throw new Error(`producer: the queue URL must be an http(s) SQS queue URL, got ${JSON.stringify(queueUrl)}`);
    }
    this.queueUrl = queueUrl;
    this.fifo = queueUrl.endsWith(".fifo");
    this.client = options.client ?? new SQSClient({ ...endpointConfig(), ...options.clientConfig });
    this.generateKeys = options.generateKeys ?? true;
    const concurrency = options.concurrency ?? 4;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new Error(`producer: concurrency must be at least 1, got ${concurrency}`);
    }
    this.concurrency = this.fifo ? 1 : concurrency;
    const { maxAttempts = 5, baseDelayMs = 100, maxDelayMs = 5000 } = options.retry ?? {};
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || !(baseDelayMs > 0) || !(maxDelayMs >= baseDelayMs)) {
      throw new Error(
        `producer: retry ${JSON.stringify(options.retry)}: want maxAttempts >= 1 and 0 < baseDelayMs <= maxDelayMs`,
      );
    }
    this.maxAttempts = maxAttempts;
    this.baseDelayMs = baseDelayMs;
    this.maxDelayMs = maxDelayMs;
  }

  /**
   * publish validates and sends one event. It resolves with the receipt, or
   * rejects with a RejectionError (the event breaks the contract; not sent),
   * a SendError (SQS did not accept it; resend with the same key, which
   * the error's receipt holds), or the abort reason.
   */
  async publish(event: UsageEvent, options?: { signal?: AbortSignal }): Promise<Receipt> {
    const [result] = await this.publishBatch([event], options);
    const { error, ...receipt } = result!;
    if (error !== undefined) {
      if (error instanceof SendError) error.receipt = receipt;
      throw error;
    }
    return receipt;
  }

  /**
   * publishBatch validates and sends events, and resolves with one Result
   * per event, in order; it does not reject.
   *
   * Invalid events are not sent. The others go out in SendMessageBatch
   * calls of at most 10 entries and 256 KiB, up to `concurrency` calls at a
   * time. Entries SQS fails without sender fault are resent, with backoff.
   * On a FIFO queue, an event's MessageGroupId is its entitlement
   * (groupId(userId, entitlementKey)) and its MessageDeduplicationId its
   * idempotency key (fifoId), and calls are made one at a time, so one
   * entitlement's events are enqueued in the order given.
   */
  async publishBatch(events: readonly UsageEvent[], options?: { signal?: AbortSignal }): Promise<Result[]> {
    const signal = options?.signal;
    const results: Result[] = events.map(() => ({ messageId: "", idempotencyKey: "", sequenceNumber: "", attempts: 0 }));
    const pending: Entry[] = [];
    events.forEach((event, index) => {
      const r = results[index]!;
      let p: Prepared;
      try {
        p = prepare(event);
      } catch (err) {
        r.error = err instanceof Error ? err : new Error(String(err));
        return;
      }
      let body = p.body;
      let key = p.idempotencyKey;
      if (key === "") {
        // A grant's key is its grantId: a generated one would differ from
        // it, which the service refuses.
        key = p.grantId || (this.generateKeys || this.fifo ? uuidv7() : "");
        if (key !== "") body = marshal({ ...p.wire, idempotencyKey: key });
      }
      r.idempotencyKey = key;
      const bytes = Buffer.byteLength(body, "utf8");
      if (bytes > MAX_BATCH_BYTES) {
        r.error = new SendError("MessageTooLong", `message is ${bytes} bytes, more than ${MAX_BATCH_BYTES}`, true, 0);
        return;
      }
      const e: Entry = { index, body, bytes };
      if (this.fifo) {
        e.group = p.poolId !== "" ? poolGroupId(p.poolId, p.entitlementKey) : groupId(p.userId, p.entitlementKey);
        e.dedup = fifoId(key);
      }
      pending.push(e);
    });

    const chunks = calls(pending);
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        await this.send(chunks[next++]!, results, signal);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, chunks.length) }, worker));
    return results;
  }

  private async send(chunk: Entry[], results: Result[], signal: AbortSignal | undefined): Promise<void> {
    let pending = chunk;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) {
        for (const e of pending) results[e.index]!.error = abortError(signal, "not sent");
        return;
      }
      const byId = new Map<string, Entry>();
      const entries: SendMessageBatchRequestEntry[] = pending.map((e, i) => {
        const id = String(i);
        byId.set(id, e);
        results[e.index]!.attempts = attempt;
        const entry: SendMessageBatchRequestEntry = { Id: id, MessageBody: e.body };
        if (this.fifo) {
          entry.MessageGroupId = e.group;
          entry.MessageDeduplicationId = e.dedup;
        }
        return entry;
      });
      let out: SendMessageBatchCommandOutput;
      try {
        out = await this.client.send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }), {
          abortSignal: signal,
        });
      } catch (err) {
        for (const e of pending) results[e.index]!.error = callError(err, attempt, signal);
        return;
      }
      const retry: Entry[] = [];
      for (const s of out.Successful ?? []) {
        const e = byId.get(s.Id ?? "");
        if (!e) continue;
        byId.delete(s.Id!);
        const r = results[e.index]!;
        r.messageId = s.MessageId ?? "";
        r.sequenceNumber = s.SequenceNumber ?? "";
        delete r.error;
      }
      for (const f of out.Failed ?? []) {
        const e = byId.get(f.Id ?? "");
        if (!e) continue;
        byId.delete(f.Id!);
        if (!f.SenderFault && attempt < this.maxAttempts) {
          retry.push(e);
          continue;
        }
        results[e.index]!.error = new SendError(f.Code ?? "", f.Message ?? "", f.SenderFault ?? false, attempt);
      }
      for (const e of byId.values()) {
        results[e.index]!.error = new SendError(
          "MissingResult",
          "SQS reported neither success nor failure for this entry; it may have been enqueued",
          false,
          attempt,
        );
      }
      if (retry.length === 0) return;
      try {
        await sleep(this.delay(attempt - 1), signal);
      } catch {
        for (const e of retry) {
          results[e.index]!.error = abortError(
            signal!,
            `not sent (SQS failed it on attempt ${attempt}, and the retry was cancelled)`,
          );
        }
        return;
      }
      pending = retry;
    }
  }

  /** delay is an equal-jitter exponential backoff: in [ceiling/2, ceiling]. */
  private delay(attempt: number): number {
    const ceiling = Math.min(this.baseDelayMs * 2 ** Math.min(attempt, 30), this.maxDelayMs);
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }
}

/**
 * endpointConfig keeps requests on a configured SQS endpoint. The SDK reads
 * AWS_ENDPOINT_URL_SQS (or AWS_ENDPOINT_URL), but by default sends each
 * request to its QueueUrl's host instead when the two differ; a producer
 * that configured an endpoint (a VPC endpoint, a proxy, a local emulator)
 * means it. AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true turns both off, as in
 * the SDK.
 */
function endpointConfig(): Partial<SQSClientConfig> {
  const env = process.env;
  if ((env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ?? "").toLowerCase() === "true") return {};
  return env.AWS_ENDPOINT_URL_SQS || env.AWS_ENDPOINT_URL ? { useQueueUrlAsEndpoint: false } : {};
}

/** calls cuts entries, in order, into runs of at most MAX_BATCH_BYTES, each cut into chunks of MAX_BATCH_ENTRIES. */
function calls(entries: Entry[]): Entry[][] {
  const out: Entry[][] = [];
  let start = 0;
  let size = 0;
  const flush = (end: number) => {
    for (let i = start; i < end; i += MAX_BATCH_ENTRIES) out.push(entries.slice(i, Math.min(i + MAX_BATCH_ENTRIES, end)));
  };
  entries.forEach((e, i) => {
    if (i > start && size + e.bytes > MAX_BATCH_BYTES) {
      flush(i);
      start = i;
      size = 0;
    }
    size += e.bytes;
  });
  if (start < entries.length) flush(entries.length);
  return out;
}

function abortError(signal: AbortSignal, what: string): Error {
  const reason: unknown = signal.reason;
  return new Error(`${what}: ${reason instanceof Error ? reason.message : String(reason)}`, { cause: reason });
}

function callError(err: unknown, attempt: number, signal: AbortSignal | undefined): Error {
  if (signal?.aborted) {
    return abortError(
      signal,
      "outcome unknown, the request was in flight when it was aborted (SQS may have enqueued the message)",
    );
  }
  const e = err as { name?: string; message?: string; $fault?: string };
  return new SendError(e?.name ?? "", e?.message ?? String(err), e?.$fault === "client", attempt, err);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
