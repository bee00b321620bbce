// Quoting for rejection messages, as the service writes them (Go's
// strconv.Quote), so that a message names a value the same way on both
// sides.

const printable = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, "0");
}

/** quoteBytes quotes UTF-8 bytes: invalid bytes as \xNN. */
function quoteBytes(b: Uint8Array): string {
  let out = '"';
  let i = 0;
  while (i < b.length) {
    const [cp, size] = decodeRune(b, i);
    if (cp < 0) {
      out += "\\x" + hex(b[i]!, 2);
      i++;
      continue;
    }
    i += size;
    out += quoteRune(cp);
  }
  return out + '"';
}

function quoteRune(cp: number): string {
  switch (cp) {
    case 0x22:
      return '\\"';
    case 0x5c:
      return "\\\\";
    case 0x07:
      return "\\a";
    case 0x08:
      return "\\b";
    case 0x0c:
      return "\\f";
    case 0x0a:
      return "\\n";
    case 0x0d:
      return "\\r";
    case 0x09:
      return "\\t";
    case 0x0b:
      return "\\v";
  }
  if (cp < 0x80) {
    return cp < 0x20 || cp === 0x7f ? "\\x" + hex(cp, 2) : String.fromCharCode(cp);
  }
  const ch = String.fromCodePoint(cp);
  if (printable.test(ch)) {
    return ch;
  }
  return cp < 0x10000 ? "\\u" + hex(cp, 4) : "\\U" + hex(cp, 8);
}

/** decodeRune returns the code point at b[i] and its size, or [-1, 1] for an invalid sequence. */
function decodeRune(b: Uint8Array, i: number): [number, number] {
  const c = b[i]!;
  if (c < 0x80) return [c, 1];
  let n: number, cp: number, min: number;
  if (c >= 0xc2 && c <= 0xdf) [n, cp, min] = [2, c & 0x1f, 0x80];
  else if (c >= 0xe0 && c <= 0xef) [n, cp, min] = [3, c & 0x0f, 0x800];
  else if (c >= 0xf0 && c <= 0xf4) [n, cp, min] = [4, c & 0x07, 0x10000];
  else return [-1, 1];
  if (i + n > b.length) return [-1, 1];
  for (let k = 1; k < n; k++) {
    const cc = b[i + k]!;
    if ((cc & 0xc0) !== 0x80) return [-1, 1];
    cp = (cp << 6) | (cc & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return [-1, 1];
  return [cp, n];
}

/** quote is Go's strconv.Quote of s. */
export function quote(s: string): string {
  return quoteBytes(Buffer.from(s, "utf8"));
}

/**
 * quoteShort quotes a value for a message, cut to its first 48 bytes: a
 * value in a message can be megabytes long.
 */
export function quoteShort(s: string): string {
  const maxQuoted = 48;
  const b = Buffer.from(s, "utf8");
  if (b.length > maxQuoted) {
    return quoteBytes(b.subarray(0, maxQuoted)) + "...";
  }
  return quoteBytes(b);
}
