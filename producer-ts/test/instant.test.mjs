// expiresAt's reading and writing (src/instant.ts) at the limits of Go's
// time.Parse, which the shared vectors and the differential test compare
// with the service; here, what the module itself promises.
import assert from "node:assert/strict";
import { test } from "node:test";

import { formatInstant, instantOfDate, parseInstant, rfc3339Year } from "../dist/instant.js";
import { quoteShort } from "../dist/quote.js";

test("parseInstant reads any offset and fraction as the instant in UTC", () => {
  const cases = [
    ["2027-01-31T00:00:00Z", "2027-01-31T00:00:00Z"],
    ["2027-01-31T00:00:00+00:00", "2027-01-31T00:00:00Z"],
    ["2027-01-31T00:00:00-00:00", "2027-01-31T00:00:00Z"],
    ["2027-03-01T00:30:00+01:00", "2027-02-28T23:30:00Z"],
    ["2028-03-01T00:30:00+01:00", "2028-02-29T23:30:00Z"],
    ["2027-12-31T23:00:00-01:00", "2028-01-01T00:00:00Z"],
    ["2027-01-31T00:00:00.100Z", "2027-01-31T00:00:00.1Z"],
    ["2027-01-31T00:00:00.000000001Z", "2027-01-31T00:00:00.000000001Z"],
    ["2027-01-31T00:00:00.0000000019Z", "2027-01-31T00:00:00.000000001Z"], // beyond nanoseconds: cut
    ["2027-01-31T00:00:00.000Z", "2027-01-31T00:00:00Z"],
    ["2027-01-31T7:00:00,5Z", "2027-01-31T07:00:00.5Z"], // Go's layout reader: a one-digit hour, a comma
    ["2027-01-31T00:00:00+24:00", "2027-01-30T00:00:00Z"],
    ["2027-01-31T00:00:00+00:60", "2027-01-30T23:00:00Z"],
    ["0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"],
    ["0000-01-01T00:00:00+00:01", "-0001-12-31T23:59:00Z"], // read, then refused by the event's validation
    ["9999-12-31T23:59:59-01:00", "10000-01-01T00:59:59Z"],
    ["1900-02-28T12:00:00Z", "1900-02-28T12:00:00Z"],
    ["2000-02-29T12:00:00Z", "2000-02-29T12:00:00Z"],
  ];
  for (const [text, want] of cases) assert.equal(formatInstant(parseInstant(text)), want, text);
});

test("parseInstant refuses with Go's reason, when it gives one", () => {
  const cases = [
    ["", ""],
    ["2027-01-31", ""],
    ["2027-01-31T00:00:00", ""],
    ["2027-01-31T00:00Z", ""],
    ["27-01-31T00:00:00Z", ""],
    ["2027-1-31T00:00:00Z", ""],
    ["2027-01-31T00:00:00.Z", ""],
    ["2027-01-31T00:00:00+1:00", ""],
    ["2027-01-31T00:00:00~01:00", ""],
    ["2027-00-31T00:00:00Z", " (month out of range)"],
    ["1900-02-29T00:00:00Z", " (day out of range)"],
    ["2027-04-31T00:00:00Z", " (day out of range)"],
    ["2027-01-00T00:00:00Z", " (day out of range)"],
    ["2027-01-31T24:00:00Z", " (hour out of range)"],
    ["2027-01-31T00:60:00Z", " (minute out of range)"],
    ["2027-01-31T00:00:60Z", " (second out of range)"],
    ["2027-01-31T00:00:00+25:00", " (time zone offset hour out of range)"],
    ["2027-01-31T00:00:00+25:61", " (time zone offset minute out of range)"],
    ["2027-01-31T00:00:00~25:00", " (time zone offset hour out of range)"], // the range before the sign
    ["2027-02-30T00:00:00Zx", ' (extra text: "x")'], // extra text before the day
    ['2027-01-31T00:00:00Z"\\\u0001\u00e9', ' (extra text: "\\"\\\\\\x01\\xc3\\xa9")'],
  ];
  for (const [text, detail] of cases) {
    assert.throws(
      () => parseInstant(text),
      { message: `invalid instant ${quoteShort(text)}${detail}: want RFC 3339, e.g. 2026-11-01T00:00:00Z` },
      text,
    );
  }
});

test("formatInstant writes years outside 0000 to 9999 as Go does; rfc3339Year names them", () => {
  const at = { month: 1, day: 2, hour: 3, minute: 4, second: 5, nanosecond: 600 };
  assert.equal(formatInstant({ ...at, year: -1 }), "-0001-01-02T03:04:05.0000006Z");
  assert.equal(formatInstant({ ...at, year: 10000 }), "10000-01-02T03:04:05.0000006Z");
  assert.equal(formatInstant({ ...at, year: 7 }), "0007-01-02T03:04:05.0000006Z");
  assert.deepEqual([-1, 0, 9999, 10000].map(rfc3339Year), [false, true, true, false]);
});

test("instantOfDate keeps a Date's milliseconds, before 1970 too", () => {
  const cases = [
    [0, "1970-01-01T00:00:00Z"],
    [-1, "1969-12-31T23:59:59.999Z"],
    [Date.UTC(2027, 0, 31, 23, 59, 59, 1), "2027-01-31T23:59:59.001Z"],
    [-62135596800000, "0001-01-01T00:00:00Z"],
  ];
  for (const [ms, want] of cases) assert.equal(formatInstant(instantOfDate(new Date(ms))), want, String(ms));
  assert.equal(instantOfDate(new Date(NaN)), undefined);
});
