// Exact decimals, as the service reads and writes amounts (usage/decimal.go):
// the digits and a power of ten, never a float.

import { quoteShort } from "./quote.js";

/** DynamoDB's precision: what a stored number may have. */
export const MAX_SIGNIFICANT_DIGITS = 38;
const MIN_ADJUSTED_EXPONENT = -130;
const MAX_ADJUSTED_EXPONENT = 125;
const PLAIN_MAX_DIGITS = 40;
const MAX_EXPONENT_DIGITS = 15;

const RANGE =
  "out of DynamoDB's range (magnitude 1E-130 to 9.9999999999999999999999999999999999999E+125)";

/**
 * Decimal is an exact decimal number: ±digits × 10^exp, in a canonical form
 * (no leading or trailing zeros in digits; zero is digits "").
 */
export class Decimal {
  private constructor(
    readonly negative: boolean,
    readonly digits: string,
    readonly exponent: number,
  ) {}

  static readonly ZERO = new Decimal(false, "", 0);
  static readonly ONE = new Decimal(false, "1", 0);

  /**
   * parse reads a number as written in JSON (-?int frac? exp?) or as
   * DynamoDB returns one ("1E+2"); a leading '+' is accepted too. It throws
   * an Error when the text is not such a number, has more than 38
   * significant digits, or is non-zero and outside 1E-130 to 9.99…E+125 in
   * magnitude, with the service's message.
   */
  static parse(s: string): Decimal {
    const fail = (msg: string): never => {
      throw new Error(`${quoteShort(s)}: ${msg}`);
    };
    let i = 0;
    let neg = false;
    if (s[i] === "-" || s[i] === "+") {
      neg = s[i] === "-";
      i++;
    }
    const intStart = i;
    while (i < s.length && isDigit(s.charCodeAt(i))) i++;
    const intPart = s.slice(intStart, i);
    if (intPart === "" || (intPart.length > 1 && intPart[0] === "0")) fail("not a number");
    let fracPart = "";
    if (s[i] === ".") {
      i++;
      const fracStart = i;
      while (i < s.length && isDigit(s.charCodeAt(i))) i++;
      fracPart = s.slice(fracStart, i);
      if (fracPart === "") fail("not a number");
    }
    let exp10 = 0;
    let expTooLarge = false;
    if (s[i] === "e" || s[i] === "E") {
      i++;
      let expNeg = false;
      if (s[i] === "-" || s[i] === "+") {
        expNeg = s[i] === "-";
        i++;
      }
      const expStart = i;
      while (i < s.length && isDigit(s.charCodeAt(i))) i++;
      let lit = s.slice(expStart, i);
      if (lit === "") fail("not a number");
      lit = lit.replace(/^0+/, "");
      if (lit.length > MAX_EXPONENT_DIGITS) {
        expTooLarge = true;
      } else if (lit !== "") {
        exp10 = Number(lit) * (expNeg ? -1 : 1); // at most 15 digits: exact
      }
    }
    if (i !== s.length) fail("not a number");

    const all = intPart + fracPart;
    let lead = 0;
    while (lead < all.length && all[lead] === "0") lead++;
    if (lead === all.length) return Decimal.ZERO;
    let trail = all.length;
    while (all[trail - 1] === "0") trail--;
    const digits = all.slice(lead, trail);
    if (expTooLarge) fail(RANGE);
    if (digits.length > MAX_SIGNIFICANT_DIGITS) fail("more than 38 significant digits");
    const exp = exp10 - fracPart.length + (all.length - trail);
    const adjusted = exp + digits.length - 1;
    if (adjusted < MIN_ADJUSTED_EXPONENT || adjusted > MAX_ADJUSTED_EXPONENT) fail(RANGE);
    return new Decimal(neg, digits, exp);
  }

  /** sign is -1, 0 or +1. */
  get sign(): number {
    if (this.digits === "") return 0;
    return this.negative ? -1 : 1;
  }

  isZero(): boolean {
    return this.digits === "";
  }

  /** fitsDynamoDB: at most 38 significant digits and, unless zero, within DynamoDB's range. */
  fitsDynamoDB(): boolean {
    if (this.digits === "") return true;
    const a = this.exponent + this.digits.length - 1;
    return (
      this.digits.length <= MAX_SIGNIFICANT_DIGITS &&
      a >= MIN_ADJUSTED_EXPONENT &&
      a <= MAX_ADJUSTED_EXPONENT
    );
  }

  /**
   * toString is the canonical, exact text the service writes: "0" for zero,
   * plain notation when it takes at most 40 digits ("1234.5", "0.001"),
   * otherwise scientific ("1.5E+100"). A valid JSON number either way.
   */
  toString(): string {
    const d = this.digits;
    if (d === "") return "0";
    let out = this.negative ? "-" : "";
    const n = d.length;
    const exp = this.exponent;
    const adj = exp + n - 1;
    if (exp >= 0 && n + exp <= PLAIN_MAX_DIGITS) {
      out += d + "0".repeat(exp);
    } else if (exp < 0 && adj >= 0 && n <= PLAIN_MAX_DIGITS) {
      out += d.slice(0, adj + 1) + "." + d.slice(adj + 1);
    } else if (exp < 0 && adj < 0 && n - adj <= PLAIN_MAX_DIGITS) {
      out += "0." + "0".repeat(-adj - 1) + d;
    } else {
      out += d[0];
      if (n > 1) out += "." + d.slice(1);
      out += "E" + (adj >= 0 ? "+" : "") + String(adj);
    }
    return out;
  }

  toJSON(): string {
    return this.toString();
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
