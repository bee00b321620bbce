// A JSON reader that answers exactly as the service's (Go's encoding/json
// Decoder, as usage.ParseEvent drives it): the same grammar, the same
// nesting limit, strings decoded the same way (an unpaired surrogate escape
// becomes U+FFFD), and the object's fields read one after the other, so that
// a repeated field is found where the service finds it.

/** JSONSyntaxError is a body that is not JSON; its message says where. */
export class JSONSyntaxError extends Error {}

/** Go's maximum nesting depth of a value. */
const MAX_DEPTH = 10000;

const isSpace = (c: string | undefined): boolean =>
  c === " " || c === "\t" || c === "\n" || c === "\r";

function skipSpace(s: string, i: number): number {
  while (i < s.length && isSpace(s[i])) i++;
  return i;
}

function describe(c: string | undefined): string {
  if (c === undefined) return "end of input";
  if (c === "'") return "character '\\''";
  const cp = c.codePointAt(0)!;
  if (cp < 0x20) return `character '\\x${cp.toString(16).padStart(2, "0")}'`;
  return `character '${String.fromCodePoint(cp)}'`;
}

function syntax(s: string, i: number, context: string): never {
  if (i >= s.length) throw new JSONSyntaxError("unexpected end of input");
  throw new JSONSyntaxError(`invalid ${describe(String.fromCodePoint(s.codePointAt(i)!))} ${context}`);
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= "0" && c <= "9";
const isHex = (c: string | undefined): boolean => c !== undefined && /^[0-9a-fA-F]$/.test(c);

/** scanString returns the index after the string starting at s[i] === '"'. */
function scanString(s: string, i: number): number {
  i++;
  for (;;) {
    if (i >= s.length) throw new JSONSyntaxError("unexpected end of input");
    const c = s.charCodeAt(i);
    if (c === 0x22) return i + 1;
    if (c < 0x20) syntax(s, i, "in string literal");
    if (c === 0x5c) {
      const e = s[i + 1];
      if (e === undefined) throw new JSONSyntaxError("unexpected end of input");
      if ('"\\/bfnrt'.includes(e)) {
        i += 2;
        continue;
      }
      if (e !== "u") syntax(s, i + 1, "in string escape code");
      for (let k = 2; k < 6; k++) {
        if (i + k >= s.length) throw new JSONSyntaxError("unexpected end of input");
        if (!isHex(s[i + k])) syntax(s, i + k, "in \\u hexadecimal character escape");
      }
      i += 6;
      continue;
    }
    i++;
  }
}

/** scanNumber returns the index after the number starting at s[i]. */
function scanNumber(s: string, i: number): number {
  if (s[i] === "-") i++;
  if (s[i] === "0") {
    i++;
  } else if (isDigit(s[i])) {
    while (isDigit(s[i])) i++;
  } else {
    syntax(s, i, "in numeric literal");
  }
  if (s[i] === ".") {
    i++;
    if (!isDigit(s[i])) syntax(s, i, "after decimal point in numeric literal");
    while (isDigit(s[i])) i++;
  }
  if (s[i] === "e" || s[i] === "E") {
    i++;
    if (s[i] === "+" || s[i] === "-") i++;
    if (!isDigit(s[i])) syntax(s, i, "in exponent of numeric literal");
    while (isDigit(s[i])) i++;
  }
  return i;
}

function scanLiteral(s: string, i: number): number {
  for (const lit of ["true", "false", "null"]) {
    if (s[i] !== lit[0]) continue;
    for (let k = 1; k < lit.length; k++) {
      if (s[i + k] !== lit[k]) syntax(s, i + k, `in literal ${lit} (expecting '${lit[k]}')`);
    }
    return i + lit.length;
  }
  return syntax(s, i, "looking for beginning of value");
}

/**
 * scanValue returns the index after the JSON value that starts at s[i] (no
 * space before it), checking it completely.
 */
export function scanValue(s: string, i: number): number {
  const stack: ("{" | "[")[] = [];
  for (;;) {
    // A value starts at i.
    const c = s[i];
    if (c === "{" || c === "[") {
      stack.push(c);
      if (stack.length > MAX_DEPTH) syntax(s, i, "exceeded max depth");
      i = skipSpace(s, i + 1);
      const close = c === "{" ? "}" : "]";
      if (s[i] === close) {
        stack.pop();
        i++;
      } else if (c === "{") {
        if (s[i] !== '"') syntax(s, i, "looking for beginning of object key string");
        i = afterKey(s, scanString(s, i));
        continue;
      } else {
        continue;
      }
    } else if (c === '"') {
      i = scanString(s, i);
    } else if (c === "-" || isDigit(c)) {
      i = scanNumber(s, i);
    } else {
      i = scanLiteral(s, i);
    }
    // After a value: close the containers it ends, or go on to the next.
    for (;;) {
      if (stack.length === 0) return i;
      i = skipSpace(s, i);
      const top = stack[stack.length - 1];
      if (s[i] === ",") {
        i = skipSpace(s, i + 1);
        if (top === "{") {
          if (s[i] !== '"') syntax(s, i, "looking for beginning of object key string");
          i = afterKey(s, scanString(s, i));
        }
        break;
      }
      if ((top === "{" && s[i] === "}") || (top === "[" && s[i] === "]")) {
        stack.pop();
        i++;
        continue;
      }
      syntax(s, i, top === "{" ? "after object key:value pair" : "after array element");
    }
  }
}

/** afterKey reads the colon after an object key; returns where the value starts. */
function afterKey(s: string, i: number): number {
  i = skipSpace(s, i);
  if (s[i] !== ":") syntax(s, i, "after object key");
  return skipSpace(s, i + 1);
}

/** decodeString returns the value of a JSON string literal that scanString accepted. */
export function decodeString(lit: string): string {
  if (!lit.includes("\\")) return lit.slice(1, -1);
  let out = "";
  const end = lit.length - 1;
  let i = 1;
  while (i < end) {
    const c = lit[i]!;
    if (c !== "\\") {
      out += c;
      i++;
      continue;
    }
    const e = lit[i + 1]!;
    i += 2;
    switch (e) {
      case "b":
        out += "\b";
        continue;
      case "f":
        out += "\f";
        continue;
      case "n":
        out += "\n";
        continue;
      case "r":
        out += "\r";
        continue;
      case "t":
        out += "\t";
        continue;
      case "u":
        break;
      default:
        out += e; // " \ /
        continue;
    }
    const r = parseInt(lit.slice(i, i + 4), 16);
    i += 4;
    if (r >= 0xd800 && r < 0xe000) {
      // A pair only as a high surrogate escape followed by a low one;
      // anything else is U+FFFD, and the next escape is read on its own.
      if (r < 0xdc00 && lit[i] === "\\" && lit[i + 1] === "u" && /^[0-9a-fA-F]{4}$/.test(lit.slice(i + 2, i + 6))) {
        const r2 = parseInt(lit.slice(i + 2, i + 6), 16);
        if (r2 >= 0xdc00 && r2 < 0xe000) {
          out += String.fromCharCode(r, r2);
          i += 6;
          continue;
        }
      }
      out += "\ufffd";
      continue;
    }
    out += String.fromCharCode(r);
  }
  return out;
}

/** compact removes the space outside strings from a valid JSON text. */
export function compact(raw: string): string {
  let out = "";
  let start = 0;
  let i = 0;
  while (i < raw.length) {
    const c = raw[i];
    if (c === '"') {
      i = scanString(raw, i);
      continue;
    }
    if (isSpace(c)) {
      out += raw.slice(start, i);
      while (i < raw.length && isSpace(raw[i])) i++;
      start = i;
      continue;
    }
    i++;
  }
  return out + raw.slice(start);
}

/** The kinds of a top-level value that is not an object. */
export type Kind = "an array" | "a string" | "a number" | "a boolean" | "null" | "an object";

/** kindOf names the kind of a JSON value by its first character. */
export function kindOf(raw: string): Kind {
  switch (raw.trimStart()[0]) {
    case '"':
      return "a string";
    case "{":
      return "an object";
    case "[":
      return "an array";
    case "t":
    case "f":
      return "a boolean";
    case "n":
      return "null";
  }
  return "a number";
}

export type ObjectResult =
  | { kind: "object"; fields: Map<string, string> }
  | { kind: "not an object"; got: Kind }
  | { kind: "duplicate"; field: string }
  | { kind: "trailing data" };

/**
 * readObject reads a body that must be one JSON object, keeping the raw
 * text of each field named by known (a field given twice is a duplicate;
 * others are checked and skipped). It throws JSONSyntaxError for what is
 * not JSON, in the order the service's reader meets it.
 */
export function readObject(s: string, known: (name: string) => boolean): ObjectResult {
  let i = skipSpace(s, 0);
  const c = s[i];
  if (c === undefined) throw new JSONSyntaxError("unexpected end of input");
  if (c !== "{") {
    // The first token decides: a complete scalar, or the start of an array.
    if (c === "[") return { kind: "not an object", got: "an array" };
    let end: number;
    if (c === '"') end = scanString(s, i);
    else if (c === "-" || isDigit(c)) end = scanNumber(s, i);
    else end = scanLiteral(s, i);
    return { kind: "not an object", got: kindOf(s.slice(i, end)) };
  }
  const fields = new Map<string, string>();
  i = skipSpace(s, i + 1);
  if (s[i] !== "}") {
    for (;;) {
      if (s[i] !== '"') syntax(s, i, "looking for beginning of object key string");
      const keyEnd = scanString(s, i);
      const name = decodeString(s.slice(i, keyEnd));
      i = afterKey(s, keyEnd);
      if (i >= s.length) throw new JSONSyntaxError("unexpected end of input");
      const valueEnd = scanValue(s, i);
      if (known(name)) {
        if (fields.has(name)) return { kind: "duplicate", field: name };
        fields.set(name, s.slice(i, valueEnd));
      }
      i = skipSpace(s, valueEnd);
      if (s[i] === ",") {
        i = skipSpace(s, i + 1);
        continue;
      }
      if (s[i] === "}") break;
      syntax(s, i, "after object key:value pair");
    }
  }
  i = skipSpace(s, i + 1);
  if (i < s.length) return { kind: "trailing data" };
  return { kind: "object", fields };
}
