package usage

import (
	"fmt"
	"strings"
	"time"
)

// ResetPeriod says how often an entitlement's usage starts again from 0.
//
// Nothing runs at the boundary: usage is reset lazily, by the first event
// of a new period (see NeedsReset). That keeps the service free of
// schedulers and makes the rule a pure function of the stored item and
// the clock.
type ResetPeriod string

const (
	ResetNone    ResetPeriod = "NONE" // usage accumulates forever
	ResetDaily   ResetPeriod = "DAILY"
	ResetWeekly  ResetPeriod = "WEEKLY"
	ResetMonthly ResetPeriod = "MONTHLY"
	ResetYearly  ResetPeriod = "YEARLY"
)

// ParseResetPeriod accepts the exact upper-case names stored by
// access-service. Anything else, including "" and other spellings, is an
// error: a period we do not understand must not be guessed at, because
// guessing wrong either gives usage away or blocks it. Callers map an
// absent attribute to ResetNone themselves.
func ParseResetPeriod(s string) (ResetPeriod, error) {
	switch p := ResetPeriod(s); p {
	case ResetNone, ResetDaily, ResetWeekly, ResetMonthly, ResetYearly:
		return p, nil
	}
	return "", fmt.Errorf("unknown reset period %q: want NONE, DAILY, WEEKLY, MONTHLY or YEARLY", s)
}

// calendarAnchor stands in for a missing anchor: a Monday, January 1,
// midnight UTC. Anchored at it, every period falls on the UTC calendar
// boundary (midnight, Monday, the 1st, January 1), so the calendar rule
// and the anchored rule are one algorithm.
var calendarAnchor = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

// PeriodStart returns the start, in UTC, of the period of kind p that
// contains now; the zero time for ResetNone.
//
// Without an anchor, periods follow the UTC calendar: DAILY from midnight,
// WEEKLY from Monday 00:00, MONTHLY from the 1st 00:00, YEARLY from
// January 1 00:00.
//
// With an anchor, periods are aligned to the anchor instant as read on its
// own wall clock, in its own UTC offset, because that is what a customer
// who signed up "on the 31st at 09:00 Tokyo time" expects: DAILY at the
// anchor's time of day; WEEKLY on its weekday at that time; MONTHLY on its
// day of month at that time; YEARLY on its month and day at that time.
// Days that a month lacks (29-31, or Feb 29 in a non-leap year) fall on
// the month's last day, and the clamp never carries over: an anchor on
// Jan 31 gives Feb 28 (Feb 29 in leap years), then Mar 31 again. An
// anchor's zone with daylight saving is reduced to the anchor's fixed
// offset, so periods never shift by an hour. Anchors later than now work
// the same way: the periods extend backwards from them.
//
// A period includes its start instant: at exactly a boundary, the new
// period has begun.
//
// PeriodStart panics on a ResetPeriod that ParseResetPeriod would reject:
// that is a programming error, not a data error.
func PeriodStart(p ResetPeriod, anchor *time.Time, now time.Time) time.Time {
	start, _ := period(p, anchor, now)
	return start
}

// NextPeriodStart returns the start, in UTC, of the period after the one
// containing now (the zero time for ResetNone): the instant from which
// the next lazy reset is due.
func NextPeriodStart(p ResetPeriod, anchor *time.Time, now time.Time) time.Time {
	_, next := period(p, anchor, now)
	return next
}

// NeedsReset is the lazy reset rule: whether the next write must restart
// usage from 0 because the stored period is over.
//
// It is false for ResetNone. Otherwise it is true when no period has
// started yet (periodStart is nil) or when *periodStart is before the
// start of the period containing now. A stored periodStart later than the
// current period's start does not reset: another consumer whose clock
// runs ahead already started the next period, and resetting back and
// forth between their views would lose usage.
func NeedsReset(p ResetPeriod, anchor *time.Time, periodStart *time.Time, now time.Time) bool {
	if p == ResetNone {
		return false
	}
	start := PeriodStart(p, anchor, now) // panics on an unknown p, even with a nil periodStart
	return periodStart == nil || periodStart.Before(start)
}

// period returns the start of the period containing now and of the next
// one, both in UTC.
func period(p ResetPeriod, anchor *time.Time, now time.Time) (start, next time.Time) {
	c := newPeriodClock(anchor, now)
	switch p {
	case ResetNone:
		return time.Time{}, time.Time{}
	case ResetDaily:
		start, next = c.daily()
	case ResetWeekly:
		start, next = c.weekly()
	case ResetMonthly:
		start, next = c.monthly()
	case ResetYearly:
		start, next = c.yearly()
	default:
		panic(fmt.Sprintf("usage: unknown ResetPeriod %q (validate with ParseResetPeriod)", string(p)))
	}
	return start.UTC(), next.UTC()
}

// periodClock is the anchor (or the calendar's) and now, on the anchor's
// own wall clock.
type periodClock struct {
	a, n           time.Time
	loc            *time.Location
	hh, mm, ss, ns int
}

func newPeriodClock(anchor *time.Time, now time.Time) periodClock {
	a := calendarAnchor
	if anchor != nil {
		// Fix the offset the anchor had at its own instant: wall clock
		// arithmetic in a zone with daylight saving would move the
		// boundaries by an hour twice a year.
		name, offset := anchor.Zone()
		a = anchor.In(time.FixedZone(name, offset))
	}
	c := periodClock{a: a, loc: a.Location(), n: now.In(a.Location()), ns: a.Nanosecond()}
	c.hh, c.mm, c.ss = a.Clock()
	return c
}

// at builds the boundary on a given local date at the anchor's time of
// day; time.Date normalises day overflow (e.g. day 0 or 32).
func (c periodClock) at(y int, m time.Month, d int) time.Time {
	return time.Date(y, m, d, c.hh, c.mm, c.ss, c.ns, c.loc)
}

func (c periodClock) daily() (start, next time.Time) {
	y, m, d := c.n.Date()
	start = c.at(y, m, d)
	if start.After(c.n) {
		start = c.at(y, m, d-1)
	}
	sy, sm, sd := start.Date()
	return start, c.at(sy, sm, sd+1)
}

func (c periodClock) weekly() (start, next time.Time) {
	y, m, d := c.n.Date()
	back := (int(c.n.Weekday()) - int(c.a.Weekday()) + 7) % 7
	start = c.at(y, m, d-back)
	if start.After(c.n) {
		start = c.at(y, m, d-back-7)
	}
	sy, sm, sd := start.Date()
	return start, c.at(sy, sm, sd+7)
}

func (c periodClock) monthly() (start, next time.Time) {
	day := c.a.Day()
	boundary := func(y int, m time.Month) time.Time {
		// Normalise first (month 0 or 13), then clamp the day.
		first := time.Date(y, m, 1, 0, 0, 0, 0, c.loc)
		y, m = first.Year(), first.Month()
		return c.at(y, m, min(day, daysIn(y, m)))
	}
	start = boundary(c.n.Year(), c.n.Month())
	if start.After(c.n) {
		start = boundary(c.n.Year(), c.n.Month()-1)
	}
	return start, boundary(start.Year(), start.Month()+1)
}

func (c periodClock) yearly() (start, next time.Time) {
	am, ad := c.a.Month(), c.a.Day()
	boundary := func(y int) time.Time { return c.at(y, am, min(ad, daysIn(y, am))) }
	start = boundary(c.n.Year())
	if start.After(c.n) {
		start = boundary(c.n.Year() - 1)
	}
	return start, boundary(start.Year() + 1)
}

// daysIn returns the number of days of month m in year y (proleptic
// Gregorian, so 2100 has no Feb 29).
func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// FormatInstant formats an instant as the table stores periodStart and
// resetAnchor: UTC RFC 3339, with a fractional part only when there is
// one ("2026-11-01T00:00:00Z"). UTC makes the stored strings compare in
// the same order as the instants.
func FormatInstant(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// FormatIndexTime formats an instant for a key of the ledger's pending
// index: UTC with exactly nine fractional digits, so that the keys'
// string order is their time order ("…00.120000000Z" < "…00.123000000Z";
// with RFC 3339's trimmed fractions "…00.12Z" sorts after "…00.123Z").
func FormatIndexTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000000Z")
}

// ParseInstant parses an RFC 3339 instant with any offset, as found in
// periodStart and resetAnchor. The result keeps the written offset as a
// fixed zone (UTC for "Z" and "+00:00"), never the machine's local zone
// even when the offsets agree, so that an anchor's wall clock, which
// PeriodStart follows, does not depend on where the code runs.
func ParseInstant(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		detail := ""
		if pe, ok := err.(*time.ParseError); ok && pe.Message != "" {
			detail = " (" + strings.TrimPrefix(pe.Message, ": ") + ")"
		}
		return time.Time{}, fmt.Errorf("invalid instant %s%s: want RFC 3339, e.g. 2026-11-01T00:00:00Z", quoteShort(s), detail)
	}
	_, offset := t.Zone()
	if offset == 0 {
		return t.UTC(), nil
	}
	return t.In(time.FixedZone("", offset)), nil
}
