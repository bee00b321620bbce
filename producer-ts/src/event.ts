// The usage event message contract (README, "The message"), validated
// exactly as the service validates it (usage/event.go): the same rules, in
// the same order, with the same reason codes, fields and messages. The
// shared vectors in usage/testdata/vectors.json hold both implementations to
// that.

import { Decimal } from "./decimal.js";
import { type Instant, formatInstant, parseInstant, rfc3339Year } from "./instant.js";
import { JSONSyntaxError, compact, decodeString, kindOf, readObject } from "./json.js";
import { quote, quoteShort } from "./quote.js";

/** userId, entitlementKey, idempotencyKey, refundOf, holdId and grantId: at most this many characters (code points). */
export const MAX_ID_LENGTH = 256;
/** metadata: at most this many bytes of compact JSON. */
export const MAX_METADATA_BYTES = 32 << 10;
/** holdSeconds of a reserve: 1 to this. */
export const MAX_HOLD_SECONDS = 86400;
/** priority of a grant: a whole number from 0 to this; lower is drawn first. */
export const MAX_GRANT_PRIORITY = 1000;
/** The priority of a grant that names none. */
export const DEFAULT_GRANT_PRIORITY = 100;

/**
 * Reason is a stable code saying why an event is rejected. These five are
 * about the message itself, and are decided before sending; the service's
 * other reasons depend on the stored entitlement.
 */
export type Reason =
  | "INVALID_JSON"
  | "MISSING_FIELD"
  | "INVALID_FIELD"
  | "INVALID_AMOUNT"
  | "INVALID_METADATA";

/**
 * RejectionError is an event that breaks the message contract: the service
 * would reject it with the same reason. Retrying cannot help.
 */
export class RejectionError extends Error {
  override readonly name = "RejectionError";
  constructor(
    /** The reason code, as the service gives it. */
    readonly reason: Reason,
    /** The message field at fault, or "" when the body as a whole is. */
    readonly field: string,
    /** What is wrong with it, for people. */
    readonly detail: string,
  ) {
    super(field ? `${reason}: ${field}: ${detail}` : `${reason}: ${detail}`);
  }
}

function reject(reason: Reason, field: string, detail: string): RejectionError {
  return new RejectionError(reason, field, detail);
}

/** Every operation a message may name, in the service's order; balance and reserve are synchronous only. */
export const OPERATIONS = ["consume", "refund", "balance", "reserve", "commit", "release", "grant", "void"] as const;

/**
 * ParsedEvent is a message body as the service reads it: every field, with
 * the defaults applied. amount is the exact decimal's canonical text ("0"
 * when a refund, commit, release or void names none), metadata compact JSON.
 */
export interface ParsedEvent {
  /** "" when the event names a pool (poolId) instead. */
  userId: string;
  /** A team pool's ID, instead of userId: the pool's own entitlement (grant, void, balance); "" when absent. */
  poolId: string;
  entitlementKey: string;
  /** As sent; "" when absent (a consume). */
  operation: string;
  amount: string;
  /** Whether the body named an amount. */
  amountGiven: boolean;
  idempotencyKey: string;
  metadata: string | null;
  refundOf: string;
  holdId: string;
  holdSeconds: number;
  /** The grant a grant creates or a void ends; "" when absent. */
  grantId: string;
  /** When a grant stops counting, in UTC (RFC 3339, to the nanosecond); "" when absent. */
  expiresAt: string;
  /** A grant's priority; null when absent (DEFAULT_GRANT_PRIORITY). */
  priority: number | null;
}

interface Internal extends Omit<ParsedEvent, "amount" | "expiresAt"> {
  amount: Decimal;
  expiresAt: Instant | null;
}

const KNOWN = new Set([
  "userId",
  "poolId",
  "entitlementKey",
  "amount",
  "idempotencyKey",
  "metadata",
  "operation",
  "refundOf",
  "holdId",
  "holdSeconds",
  "grantId",
  "expiresAt",
  "priority",
]);

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * parseEvent reads and validates a message body as the service does before
 * anything else (Go's usage.ParseEvent). It throws a RejectionError for a
 * body the service would reject. A string body must be well-formed UTF-16
 * (it is sent as UTF-8). checkQueued adds what a queue does not take.
 */
export function parseEvent(body: string | Uint8Array): ParsedEvent {
  const ev = parse(body);
  return { ...ev, amount: ev.amount.toString(), expiresAt: ev.expiresAt ? formatInstant(ev.expiresAt) : "" };
}

/**
 * checkQueued rejects what only a synchronous caller can ask: a balance or
 * a reserve sent to the queue is rejected (INVALID_FIELD operation).
 */
export function checkQueued(ev: Pick<ParsedEvent, "operation">): void {
  if (ev.operation === "balance" || ev.operation === "reserve") {
    throw reject(
      "INVALID_FIELD",
      "operation",
      `${ev.operation} is answered only synchronously (invoke the decisions function)`,
    );
  }
}

function parse(body: string | Uint8Array): Internal {
  let text: string;
  if (typeof body === "string") {
    if (!isWellFormed(body)) throw reject("INVALID_JSON", "", "body is not valid UTF-8");
    text = body;
  } else {
    try {
      text = utf8.decode(body);
    } catch {
      throw reject("INVALID_JSON", "", "body is not valid UTF-8");
    }
  }
  let obj;
  try {
    obj = readObject(text, (name) => KNOWN.has(name));
  } catch (err) {
    if (err instanceof JSONSyntaxError) throw reject("INVALID_JSON", "", `body is not valid JSON: ${err.message}`);
    throw err;
  }
  switch (obj.kind) {
    case "not an object":
      throw reject("INVALID_JSON", "", `body must be a JSON object, got ${obj.got}`);
    case "duplicate":
      throw reject("INVALID_JSON", obj.field, "appears more than once");
    case "trailing data":
      throw reject("INVALID_JSON", "", "unexpected data after the JSON object");
  }
  const fields = obj.fields;
  const present = (name: string): string | undefined => {
    const raw = fields.get(name);
    return raw === undefined || isNull(raw) ? undefined : raw;
  };

  const owner = readOwner(fields);
  const ev: Internal = {
    userId: owner.userId,
    poolId: owner.poolId,
    entitlementKey: requiredString(fields, "entitlementKey"),
    operation: "",
    amount: Decimal.ONE,
    amountGiven: false,
    idempotencyKey: "",
    metadata: null,
    refundOf: "",
    holdId: "",
    holdSeconds: 0,
    grantId: "",
    expiresAt: null,
    priority: null,
  };
  let raw = present("operation");
  if (raw !== undefined) ev.operation = stringField("operation", raw);
  raw = present("refundOf");
  if (raw !== undefined) {
    ev.refundOf = stringField("refundOf", raw);
    if (ev.refundOf === "") {
      throw reject("INVALID_FIELD", "refundOf", `must be 1 to ${MAX_ID_LENGTH} characters, got an empty string`);
    }
  }
  if (is(ev, "refund") || is(ev, "balance") || settles(ev) || is(ev, "void")) {
    ev.amount = Decimal.ZERO; // defaults: all that remains, the whole hold; none for the others
  }
  raw = fields.get("amount");
  if (raw === undefined && is(ev, "grant")) throw reject("MISSING_FIELD", "amount", "is required for a grant");
  if (raw !== undefined) {
    // A void takes no amount, whatever its value: checkGrantFields refuses it.
    if (!is(ev, "void")) ev.amount = parseAmount(raw, is(ev, "commit"));
    ev.amountGiven = true;
  }
  raw = present("holdId");
  if (raw !== undefined) {
    ev.holdId = stringField("holdId", raw);
    if (ev.holdId === "") {
      throw reject("INVALID_FIELD", "holdId", `must be 1 to ${MAX_ID_LENGTH} characters, got an empty string`);
    }
  }
  raw = present("holdSeconds");
  if (raw !== undefined) {
    const n = /^-?[0-9]+$/.test(raw) ? Number(raw) : NaN;
    if (!(n >= 1 && n <= MAX_HOLD_SECONDS)) {
      throw reject(
        "INVALID_FIELD",
        "holdSeconds",
        `must be a whole number from 1 to ${MAX_HOLD_SECONDS}, got ${quoteShort(raw)}`,
      );
    }
    ev.holdSeconds = n;
  }
  readGrant(ev, present);
  raw = present("idempotencyKey");
  if (raw !== undefined) {
    ev.idempotencyKey = stringField("idempotencyKey", raw);
    if (ev.idempotencyKey === "") throw checkID("idempotencyKey", "", false)!;
  }
  raw = present("metadata");
  if (raw !== undefined) ev.metadata = compact(raw);
  const err = validate(ev);
  if (err) throw err;
  return ev;
}

/**
 * readOwner reads userId, or poolId instead (a pool's own entitlement):
 * with neither, userId is missing; with both, poolId is refused.
 */
function readOwner(fields: Map<string, string>): { userId: string; poolId: string } {
  const raw = fields.get("poolId");
  if (raw === undefined || isNull(raw)) return { userId: requiredString(fields, "userId"), poolId: "" };
  const poolId = stringField("poolId", raw);
  const user = fields.get("userId");
  if (user !== undefined && !isNull(user)) throw reject("INVALID_FIELD", "poolId", BOTH_OWNERS);
  if (poolId === "") throw checkID("poolId", "", false)!;
  return { userId: "", poolId };
}

const BOTH_OWNERS = "names a pool's entitlement instead of a user's: give userId or poolId, not both";

/** What a request may ask of a pool's own entitlement: its members consume through their own. */
const POOL_OPERATIONS = ["grant", "void", "balance"];

function checkOwner(ev: Internal): RejectionError | undefined {
  if (ev.poolId !== "" && ev.userId !== "") return reject("INVALID_FIELD", "poolId", BOTH_OWNERS);
  if (ev.poolId !== "") return checkID("poolId", ev.poolId, true);
  return checkID("userId", ev.userId, true);
}

function checkPoolOperation(ev: Internal): RejectionError | undefined {
  if (ev.poolId === "" || POOL_OPERATIONS.some((op) => is(ev, op))) return undefined;
  return reject(
    "INVALID_FIELD",
    "poolId",
    "is only for operations grant, void and balance: a pool's members consume from it through their own entitlements",
  );
}

/** readGrant reads grantId, expiresAt and priority; checkGrantFields checks where they may appear. */
function readGrant(ev: Internal, present: (name: string) => string | undefined): void {
  let raw = present("grantId");
  if (raw !== undefined) {
    ev.grantId = stringField("grantId", raw);
    if (ev.grantId === "") {
      throw reject("INVALID_FIELD", "grantId", `must be 1 to ${MAX_ID_LENGTH} characters, got an empty string`);
    }
  }
  raw = present("expiresAt");
  if (raw !== undefined) {
    const s = stringField("expiresAt", raw);
    try {
      ev.expiresAt = parseInstant(s);
    } catch (err) {
      throw reject(
        "INVALID_FIELD",
        "expiresAt",
        `must be an RFC 3339 time with a zone, like 2027-01-31T00:00:00Z; ${(err as Error).message}`,
      );
    }
  }
  raw = present("priority");
  if (raw !== undefined) {
    // -0 is read as 0, as Go's strconv.Atoi reads it.
    const n = /^-?[0-9]+$/.test(raw) ? Number(raw) + 0 : NaN;
    if (!(n >= 0 && n <= MAX_GRANT_PRIORITY)) {
      throw reject(
        "INVALID_FIELD",
        "priority",
        `must be a whole number from 0 to ${MAX_GRANT_PRIORITY}, got ${quoteShort(raw)}`,
      );
    }
    ev.priority = n;
  }
}

function is(ev: Pick<Internal, "operation">, op: string): boolean {
  return ev.operation === "" ? op === "consume" : ev.operation === op;
}

function settles(ev: Pick<Internal, "operation">): boolean {
  return is(ev, "commit") || is(ev, "release") || is(ev, "expire");
}

const isNull = (raw: string): boolean => raw[0] === "n";

function requiredString(fields: Map<string, string>, name: string): string {
  const raw = fields.get(name);
  if (raw === undefined || isNull(raw)) throw reject("MISSING_FIELD", name, "is required");
  return stringField(name, raw);
}

function stringField(name: string, raw: string): string {
  if (raw[0] !== '"') throw reject("INVALID_FIELD", name, `must be a string, got ${kindOf(raw)}`);
  return decodeString(raw);
}

function parseAmount(raw: string, zeroAllowed: boolean): Decimal {
  const b = raw[0];
  if (b !== "-" && !(b !== undefined && b >= "0" && b <= "9")) {
    throw reject("INVALID_AMOUNT", "amount", `must be a JSON number, got ${kindOf(raw)}`);
  }
  let d: Decimal;
  try {
    d = Decimal.parse(raw);
  } catch (err) {
    throw reject("INVALID_AMOUNT", "amount", (err as Error).message);
  }
  if (d.sign < 0 || (d.sign === 0 && !zeroAllowed)) {
    throw reject("INVALID_AMOUNT", "amount", `must be greater than 0, got ${d.toString()}`);
  }
  return d;
}

/** validate is the service's Validate: the checks after reading. */
function validate(ev: Internal): RejectionError | undefined {
  const err =
    checkOwner(ev) ?? checkID("entitlementKey", ev.entitlementKey, true) ?? checkOperation(ev) ?? checkPoolOperation(ev);
  if (err) return err;
  const optional = is(ev, "refund") || is(ev, "balance") || settles(ev) || is(ev, "void");
  if (ev.amount.sign < 0 || (ev.amount.sign === 0 && !optional)) {
    return reject("INVALID_AMOUNT", "amount", `must be greater than 0, got ${ev.amount.toString()}`);
  }
  if (!ev.amount.fitsDynamoDB()) {
    return reject(
      "INVALID_AMOUNT",
      "amount",
      "must have at most 38 significant digits and lie within DynamoDB's number range",
    );
  }
  if (ev.idempotencyKey !== "") {
    const e = checkID("idempotencyKey", ev.idempotencyKey, false);
    if (e) return e;
  }
  if (ev.metadata !== null) return checkMetadata(ev.metadata);
  return undefined;
}

function checkOperation(ev: Internal): RejectionError | undefined {
  const known = ev.operation === "" || (OPERATIONS as readonly string[]).includes(ev.operation);
  if (!known) {
    return reject(
      "INVALID_FIELD",
      "operation",
      `must be one of ${OPERATIONS.join(", ")}; got ${quote(ev.operation)}`,
    );
  }
  const err = checkGrantFields(ev);
  if (err) return err;
  if (ev.refundOf !== "" && !is(ev, "refund")) return reject("INVALID_FIELD", "refundOf", "is only for operation refund");
  if (ev.holdId !== "" && !settles(ev)) {
    return reject("INVALID_FIELD", "holdId", "is only for operations commit and release");
  }
  if (ev.holdSeconds !== 0 && !is(ev, "reserve")) {
    return reject("INVALID_FIELD", "holdSeconds", "is only for operation reserve");
  }
  if (is(ev, "refund")) return checkID("refundOf", ev.refundOf, true);
  if (settles(ev)) return checkID("holdId", ev.holdId, true);
  if (is(ev, "reserve") && ev.idempotencyKey === "") {
    return reject("MISSING_FIELD", "idempotencyKey", "is required for a reserve: it is the hold's ID");
  }
  if (ev.holdSeconds < 0 || ev.holdSeconds > MAX_HOLD_SECONDS) {
    return reject(
      "INVALID_FIELD",
      "holdSeconds",
      `must be a whole number from 1 to ${MAX_HOLD_SECONDS}, got ${ev.holdSeconds}`,
    );
  }
  return undefined;
}

/**
 * checkGrantFields: grantId exactly on grants and voids, expiresAt and
 * priority only on grants, and a grant's idempotency key is its ID. (A
 * priority out of range is refused when read: every event here is read
 * from its body.)
 */
function checkGrantFields(ev: Internal): RejectionError | undefined {
  const grant = is(ev, "grant");
  const voids = is(ev, "void");
  if (ev.grantId !== "" && !grant && !voids) {
    return reject("INVALID_FIELD", "grantId", "is only for operations grant and void");
  }
  if (ev.expiresAt !== null && !grant) return reject("INVALID_FIELD", "expiresAt", "is only for operation grant");
  if (ev.priority !== null && !grant) return reject("INVALID_FIELD", "priority", "is only for operation grant");
  if (!grant && !voids) return undefined;
  const err = checkID("grantId", ev.grantId, true);
  if (err) return err;
  if (grant && ev.idempotencyKey !== "" && ev.idempotencyKey !== ev.grantId) {
    return reject(
      "INVALID_FIELD",
      "idempotencyKey",
      "must equal grantId for a grant (the grant's ID is its idempotency key) or be left out",
    );
  }
  if (grant && ev.expiresAt !== null && !rfc3339Year(ev.expiresAt.year)) {
    return reject(
      "INVALID_FIELD",
      "expiresAt",
      `must be within the years 0000 to 9999 in UTC, got ${formatInstant(ev.expiresAt)}`,
    );
  }
  if (voids && (ev.amountGiven || ev.amount.sign !== 0)) {
    return reject("INVALID_FIELD", "amount", "is not for operation void (what is left of the grant is voided)");
  }
  return undefined;
}

// The service's whitespace (Go's unicode.IsSpace): ASCII space, \t \n \v \f
// \r, U+0085, U+00A0 and the Unicode White_Space characters above Latin-1.
// Not U+FEFF, U+180E or U+200B.
const onlySpace = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;
// The C0 controls and DEL.
const control = /[\u0000-\u001f\u007f]/;

function checkID(name: string, value: string, required: boolean): RejectionError | undefined {
  const n = codePoints(value);
  if (n === 0 && required) return reject("MISSING_FIELD", name, "is required");
  if (n === 0) {
    return reject("INVALID_FIELD", name, `must be 1 to ${MAX_ID_LENGTH} characters, got an empty string`);
  }
  if (onlySpace.test(value)) return reject("INVALID_FIELD", name, "must not be only whitespace");
  const m = control.exec(value);
  if (m) {
    const hex = m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0");
    return reject(
      "INVALID_FIELD",
      name,
      `must not contain control characters (U+0000 to U+001F, U+007F), found U+${hex}`,
    );
  }
  if (n > MAX_ID_LENGTH) {
    return reject("INVALID_FIELD", name, `must be at most ${MAX_ID_LENGTH} characters, got ${n}`);
  }
  if (!isWellFormed(value)) return reject("INVALID_FIELD", name, "is not valid UTF-8");
  return undefined;
}

function checkMetadata(raw: string): RejectionError | undefined {
  if (raw[0] !== "{") return reject("INVALID_METADATA", "metadata", `must be a JSON object, got ${kindOf(raw)}`);
  const n = Buffer.byteLength(raw, "utf8");
  if (n > MAX_METADATA_BYTES) {
    return reject("INVALID_METADATA", "metadata", `must be at most ${MAX_METADATA_BYTES} bytes of JSON, got ${n}`);
  }
  return undefined;
}

function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) i++;
    }
    n++;
  }
  return n;
}

/** isWellFormed: no unpaired surrogate, so the string has a UTF-8 form. */
export function isWellFormed(s: string): boolean {
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

// ---- Serialisation -------------------------------------------------------

/**
 * Wire is a body's fields before they are written: strings and other JSON
 * values as given, amount and metadata as JSON text. Absent fields are
 * undefined.
 */
export interface Wire {
  userId?: unknown;
  poolId?: unknown;
  entitlementKey?: unknown;
  operation?: unknown;
  refundOf?: unknown;
  amount?: string;
  holdId?: unknown;
  holdSeconds?: unknown;
  grantId?: unknown;
  expiresAt?: unknown;
  priority?: unknown;
  idempotencyKey?: unknown;
  metadata?: string;
}

/**
 * wireOf is a read event's fields as the service's producers write them
 * (Go's Event.MarshalJSON): an amount when non-zero or given, holdSeconds
 * when non-zero, a priority when given, the other fields when not empty.
 */
export function wireOf(ev: ParsedEvent): Wire {
  const w: Wire = ev.poolId !== "" ? { poolId: ev.poolId } : { userId: ev.userId };
  w.entitlementKey = ev.entitlementKey;
  if (ev.amount !== "0" || ev.amountGiven) w.amount = ev.amount;
  if (ev.holdSeconds !== 0) w.holdSeconds = ev.holdSeconds;
  if (ev.priority !== null) w.priority = ev.priority;
  if (ev.metadata !== null) w.metadata = ev.metadata;
  for (const name of ["operation", "refundOf", "holdId", "grantId", "expiresAt", "idempotencyKey"] as const) {
    if (ev[name] !== "") w[name] = ev[name];
  }
  return w;
}

/**
 * marshal writes the body as the Go producer does (producer.Body: usage.Event's
 * MarshalJSON): the fields in one order, strings escaped as the service
 * escapes them, and the characters an SQS body cannot carry as \u escapes.
 */
export function marshal(w: Wire): string {
  let b = "{";
  const field = (name: string, text: string) => {
    b += (b === "{" ? "" : ",") + JSON.stringify(name) + ":" + text;
  };
  for (const name of ["userId", "poolId", "entitlementKey", "operation", "refundOf"] as const) {
    if (w[name] !== undefined) field(name, jsonValue(w[name]));
  }
  if (w.amount !== undefined) field("amount", w.amount);
  for (const name of ["holdId", "holdSeconds", "grantId", "expiresAt", "priority", "idempotencyKey"] as const) {
    if (w[name] !== undefined) field(name, jsonValue(w[name]));
  }
  if (w.metadata !== undefined) field("metadata", w.metadata);
  return escapeForSQS(b + "}");
}

function jsonValue(v: unknown): string {
  if (typeof v === "string") return jsonString(v);
  if (typeof v === "bigint") return v.toString();
  return JSON.stringify(v) ?? "null";
}

const escapes: Record<string, string> = { '"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * jsonString writes s as the service does: control characters, <, >, &,
 * U+2028 and U+2029 as escapes; an unpaired surrogate as U+FFFD.
 */
export function jsonString(s: string): string {
  return (
    '"' +
    s.replace(
      /["\\\u0000-\u001f<>&\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
      (c) => {
        const e = escapes[c];
        if (e !== undefined) return e;
        const code = c.charCodeAt(0);
        if (code >= 0xd800 && code < 0xe000) return "\\ufffd";
        return "\\u" + code.toString(16).padStart(4, "0");
      },
    ) +
    '"'
  );
}

/**
 * escapeForSQS escapes what SQS does not take in a body: U+FFFE and U+FFFF
 * (which SQS refuses) and the characters above U+FFFF (which some SQS
 * implementations refuse), as \u escapes, a surrogate pair for the latter.
 * They occur only inside JSON strings, where the escape denotes the same
 * character, so the body reads as the same event.
 */
export function escapeForSQS(body: string): string {
  return body.replace(/[\ufffe\uffff]|[\ud800-\udbff][\udc00-\udfff]/g, (m) => {
    let out = "";
    for (let i = 0; i < m.length; i++) out += "\\u" + m.charCodeAt(i).toString(16).padStart(4, "0");
    return out;
  });
}
