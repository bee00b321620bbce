// Instants as the service reads and writes a grant's expiresAt
// (usage.ParseInstant, usage.FormatInstant): Go's time.Parse with the
// RFC 3339 layout, followed byte for byte, so that the same texts are
// accepted, read as the same instant, and refused with the same message;
// and Go's RFC 3339 text of the instant in UTC, to the nanosecond, which a
// JavaScript Date cannot hold.

import { quoteShort } from "./quote.js";

/** Instant is a moment in UTC, to the nanosecond. */
export interface Instant {
  year: number;
  month: number; // 1 to 12
  day: number;
  hour: number;
  minute: number;
  second: number;
  nanosecond: number;
}

/**
 * parseInstant reads RFC 3339 text with any offset, as the service does,
 * and returns the instant in UTC. It throws an Error with the service's
 * message for text it refuses.
 *
 * Go's time.Parse tries a strict reader first and falls back to its
 * general layout reader, which accepts everything the strict one does (and
 * reads it as the same instant) and a little more: a one-digit hour, a
 * comma before the fraction, an offset of +24:00 or of 60 minutes. Only the
 * general reader is followed here, since the union is what it accepts.
 */
export function parseInstant(s: string): Instant {
  const result = readLayout(Buffer.from(s, "utf8"));
  if (typeof result === "string") {
    const detail = result === "" ? "" : ` (${result})`;
    throw new Error(`invalid instant ${quoteShort(s)}${detail}: want RFC 3339, e.g. 2026-11-01T00:00:00Z`);
  }
  return result;
}

/**
 * formatInstant is the service's text of an instant (Go's RFC 3339 with
 * nanoseconds, in UTC): the fraction without trailing zeros, none when
 * zero; years outside 0000 to 9999 as Go writes them ("-0001", "10000").
 */
export function formatInstant(t: Instant): string {
  const year = t.year < 0 ? "-" + pad(-t.year, 4) : pad(t.year, 4);
  let out = `${year}-${pad(t.month, 2)}-${pad(t.day, 2)}T${pad(t.hour, 2)}:${pad(t.minute, 2)}:${pad(t.second, 2)}`;
  if (t.nanosecond !== 0) out += "." + pad(t.nanosecond, 9).replace(/0+$/, "");
  return out + "Z";
}

/** instantOfDate is a Date's moment (to the millisecond); undefined for an invalid Date. */
export function instantOfDate(d: Date): Instant | undefined {
  const ms = d.getTime();
  if (Number.isNaN(ms)) return undefined;
  const milli = ((ms % 1000) + 1000) % 1000;
  return fromUnixSeconds((ms - milli) / 1000, milli * 1e6);
}

/** rfc3339Year: RFC 3339 writes four-digit years (the service refuses an expiresAt outside them in UTC). */
export function rfc3339Year(year: number): boolean {
  return year >= 0 && year <= 9999;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

// ---- Go's time.parse with the layout "2006-01-02T15:04:05Z07:00" ---------

const isDigitAt = (b: Uint8Array, i: number): boolean => i < b.length && b[i]! >= 0x30 && b[i]! <= 0x39;
const digit = (b: Uint8Array, i: number): number => b[i]! - 0x30;

/**
 * getnum reads one or two digits at b[i] (fixed: exactly two), as Go's
 * getnum; undefined when there are none (or one, when fixed).
 */
function getnum(b: Uint8Array, i: number, fixed: boolean): [value: number, next: number] | undefined {
  if (!isDigitAt(b, i)) return undefined;
  if (!isDigitAt(b, i + 1)) return fixed ? undefined : [digit(b, i), i + 1];
  return [digit(b, i) * 10 + digit(b, i + 1), i + 2];
}

/**
 * readLayout returns the instant, or the reason Go gives in its
 * ParseError's Message ("" when it has none; without the leading ": ").
 * The layout's chunks are taken in order: each literal must match exactly,
 * and a range error is reported before a syntax error of the same chunk.
 */
function readLayout(b: Uint8Array): Instant | string {
  let i = 0;
  const literal = (c: string): boolean => {
    if (b[i] !== c.charCodeAt(0)) return false;
    i++;
    return true;
  };
  // 2006: four digits.
  if (b.length < 4 || !isDigitAt(b, 0) || !isDigitAt(b, 1) || !isDigitAt(b, 2) || !isDigitAt(b, 3)) return "";
  const year = digit(b, 0) * 1000 + digit(b, 1) * 100 + digit(b, 2) * 10 + digit(b, 3);
  i = 4;
  // -01: two digits, 1 to 12.
  if (!literal("-")) return "";
  const month = getnum(b, i, true);
  if (!month) return "";
  if (month[0] < 1 || month[0] > 12) return "month out of range";
  i = month[1];
  // -02: two digits, checked against the month at the end.
  if (!literal("-")) return "";
  const day = getnum(b, i, true);
  if (!day) return "";
  i = day[1];
  // T15: one or two digits.
  if (!literal("T")) return "";
  const hour = getnum(b, i, false);
  if (!hour) return "";
  if (hour[0] >= 24) return "hour out of range";
  i = hour[1];
  // :04
  if (!literal(":")) return "";
  const minute = getnum(b, i, true);
  if (!minute) return "";
  if (minute[0] >= 60) return "minute out of range";
  i = minute[1];
  // :05, and a fraction after '.' or ',' (digits beyond the ninth are dropped).
  if (!literal(":")) return "";
  const second = getnum(b, i, true);
  if (!second) return "";
  if (second[0] >= 60) return "second out of range";
  i = second[1];
  let nanosecond = 0;
  if ((b[i] === 0x2e || b[i] === 0x2c) && isDigitAt(b, i + 1)) {
    let n = i + 1;
    while (isDigitAt(b, n)) n++;
    const frac = Buffer.from(b.subarray(i + 1, Math.min(n, i + 10))).toString("latin1");
    nanosecond = Number(frac.padEnd(9, "0"));
    i = n;
  }
  // Z07:00: "Z", or a sign, two digits, ':' and two digits (up to 24 and 60).
  let offset = 0;
  if (b[i] === 0x5a) {
    i++;
  } else {
    if (b.length - i < 6 || b[i + 3] !== 0x3a) return "";
    const hh = getnum(b, i + 1, true);
    const mm = hh && getnum(b, i + 4, true);
    const hr = hh ? hh[0] : 0;
    const mi = mm ? mm[0] : 0;
    // Go checks the minutes after the hours, so theirs is the error named.
    if (mi > 60) return "time zone offset minute out of range";
    if (hr > 24) return "time zone offset hour out of range";
    if (!hh || !mm) return "";
    const sign = b[i];
    if (sign !== 0x2b && sign !== 0x2d) return "";
    offset = (sign === 0x2d ? -1 : 1) * (hr * 60 + mi) * 60;
    i += 6;
  }
  if (i < b.length) return `extra text: ${quoteTime(b.subarray(i))}`;
  if (day[0] < 1 || day[0] > daysIn(month[0], year)) return "day out of range";
  const local = daysFromCivil(year, month[0], day[0]) * 86400 + hour[0] * 3600 + minute[0] * 60 + second[0];
  return fromUnixSeconds(local - offset, nanosecond);
}

/**
 * quoteTime is Go's time-package quoting (not strconv.Quote): bytes of
 * non-ASCII characters and controls as \xNN, '"' and '\' escaped.
 */
function quoteTime(b: Uint8Array): string {
  let out = '"';
  for (const c of b) {
    if (c >= 0x80 || c < 0x20) out += "\\x" + c.toString(16).padStart(2, "0");
    else out += (c === 0x22 || c === 0x5c ? "\\" : "") + String.fromCharCode(c);
  }
  return out + '"';
}

function isLeap(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

function daysIn(month: number, year: number): number {
  if (month === 2) return isLeap(year) ? 29 : 28;
  return [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
}

// Days since 1970-01-01 of a proleptic Gregorian date and back, exact for
// any year (Howard Hinnant's algorithms), where Date.UTC is not: it reads
// the years 0 to 99 as 1900 to 1999.
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function fromUnixSeconds(seconds: number, nanosecond: number): Instant {
  const days = Math.floor(seconds / 86400);
  let rest = seconds - days * 86400;
  const hour = Math.floor(rest / 3600);
  rest -= hour * 3600;
  const minute = Math.floor(rest / 60);
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return { year, month, day, hour, minute, second: rest - minute * 60, nanosecond };
}
