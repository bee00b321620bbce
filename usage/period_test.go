package usage

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zone database is embedded, so zone tests never skip
)

// ts parses an RFC 3339 instant for a test table, keeping its offset.
func ts(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("bad test instant %q: %v", s, err)
	}
	return v
}

func ptr(v time.Time) *time.Time { return &v }

func TestParseResetPeriodAcceptsOnlyExactNames(t *testing.T) {
	for _, s := range []string{"NONE", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"} {
		p, err := ParseResetPeriod(s)
		if err != nil || string(p) != s {
			t.Errorf("ParseResetPeriod(%q) = %q, %v", s, p, err)
		}
	}
	for _, s := range []string{"", "daily", "Daily", " DAILY", "DAILY ", "HOURLY", "ANNUALLY", "MONTH"} {
		if p, err := ParseResetPeriod(s); err == nil {
			t.Errorf("ParseResetPeriod(%q) = %q, want an error", s, p)
		} else if !strings.Contains(err.Error(), "unknown reset period") {
			t.Errorf("ParseResetPeriod(%q) error = %q", s, err)
		}
	}
}

type periodCase struct {
	name        string
	p           ResetPeriod
	anchor      string // "" for none
	now         string
	start, next string
}

func checkPeriods(t *testing.T, tests []periodCase) {
	t.Helper()
	for _, tt := range tests {
		var anchor *time.Time
		if tt.anchor != "" {
			anchor = ptr(ts(t, tt.anchor))
		}
		now := ts(t, tt.now)
		start := PeriodStart(tt.p, anchor, now)
		next := NextPeriodStart(tt.p, anchor, now)
		if want := ts(t, tt.start); !start.Equal(want) || start.Location() != time.UTC {
			t.Errorf("%s: PeriodStart(%s, %q, %s) = %s, want %s", tt.name, tt.p, tt.anchor, tt.now,
				FormatInstant(start), tt.start)
		}
		if want := ts(t, tt.next); !next.Equal(want) || next.Location() != time.UTC {
			t.Errorf("%s: NextPeriodStart(%s, %q, %s) = %s, want %s", tt.name, tt.p, tt.anchor, tt.now,
				FormatInstant(next), tt.next)
		}
	}
}

func TestCalendarPeriodsFollowUTCBoundaries(t *testing.T) {
	checkPeriods(t, []periodCase{
		{"daily mid-day", ResetDaily, "", "2026-03-15T13:45:00Z", "2026-03-15T00:00:00Z", "2026-03-16T00:00:00Z"},
		{"daily at midnight a new day has begun", ResetDaily, "", "2026-03-15T00:00:00Z", "2026-03-15T00:00:00Z", "2026-03-16T00:00:00Z"},
		{"daily 1ns before midnight", ResetDaily, "", "2026-03-14T23:59:59.999999999Z", "2026-03-14T00:00:00Z", "2026-03-15T00:00:00Z"},
		{"daily last instant of the year", ResetDaily, "", "2026-12-31T23:59:59.999999999Z", "2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"daily uses UTC, not now's offset", ResetDaily, "", "2026-03-15T01:00:00+09:00", "2026-03-14T00:00:00Z", "2026-03-15T00:00:00Z"},
		{"daily on a leap day", ResetDaily, "", "2028-02-29T12:00:00Z", "2028-02-29T00:00:00Z", "2028-03-01T00:00:00Z"},
		{"daily 2100 is not leap", ResetDaily, "", "2100-02-28T12:00:00Z", "2100-02-28T00:00:00Z", "2100-03-01T00:00:00Z"},

		{"weekly on Sunday", ResetWeekly, "", "2026-03-15T12:00:00Z", "2026-03-09T00:00:00Z", "2026-03-16T00:00:00Z"},
		{"weekly at Monday midnight", ResetWeekly, "", "2026-03-02T00:00:00Z", "2026-03-02T00:00:00Z", "2026-03-09T00:00:00Z"},
		{"weekly 1ns before Monday", ResetWeekly, "", "2026-03-01T23:59:59.999999999Z", "2026-02-23T00:00:00Z", "2026-03-02T00:00:00Z"},
		{"weekly crossing a month", ResetWeekly, "", "2026-03-01T08:00:00Z", "2026-02-23T00:00:00Z", "2026-03-02T00:00:00Z"},
		{"weekly crossing a year", ResetWeekly, "", "2026-01-01T12:00:00Z", "2025-12-29T00:00:00Z", "2026-01-05T00:00:00Z"},
		{"weekly crossing a year, next side", ResetWeekly, "", "2026-12-31T12:00:00Z", "2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z"},
		{"weekly over a leap day", ResetWeekly, "", "2028-02-29T12:00:00Z", "2028-02-28T00:00:00Z", "2028-03-06T00:00:00Z"},

		{"monthly mid-month", ResetMonthly, "", "2026-03-15T13:45:00Z", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"},
		{"monthly at the 1st", ResetMonthly, "", "2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"},
		{"monthly 1ns before the 1st", ResetMonthly, "", "2026-02-28T23:59:59.999999999Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"},
		{"monthly December", ResetMonthly, "", "2026-12-31T23:00:00Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"monthly leap February", ResetMonthly, "", "2028-02-29T23:59:59Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"},
		{"monthly uses UTC, not now's offset", ResetMonthly, "", "2026-04-01T05:00:00+09:00", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"},

		{"yearly mid-year", ResetYearly, "", "2026-07-04T00:00:00Z", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"yearly at January 1", ResetYearly, "", "2027-01-01T00:00:00Z", "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"},
		{"yearly 1ns before January 1", ResetYearly, "", "2026-12-31T23:59:59.999999999Z", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"yearly leap year", ResetYearly, "", "2028-02-29T00:00:00Z", "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z"},
	})
}

func TestAnchoredPeriodsFollowTheAnchorsWallClock(t *testing.T) {
	checkPeriods(t, []periodCase{
		{"daily at the anchor's time of day", ResetDaily, "2026-01-10T09:30:00Z", "2026-03-15T09:29:59.999999999Z",
			"2026-03-14T09:30:00Z", "2026-03-15T09:30:00Z"},
		{"daily exactly at the boundary", ResetDaily, "2026-01-10T09:30:00Z", "2026-03-15T09:30:00Z",
			"2026-03-15T09:30:00Z", "2026-03-16T09:30:00Z"},
		{"daily keeps the anchor's nanoseconds", ResetDaily, "2026-01-10T09:30:00.25Z", "2026-03-15T09:30:00.2Z",
			"2026-03-14T09:30:00.25Z", "2026-03-15T09:30:00.25Z"},
		{"daily +09:00 anchor", ResetDaily, "2026-05-10T08:30:00+09:00", "2026-06-01T23:29:59Z",
			"2026-05-31T23:30:00Z", "2026-06-01T23:30:00Z"},

		{"weekly on the anchor's weekday (Thursday)", ResetWeekly, "2026-03-05T15:30:00Z", "2026-03-12T15:29:59.999999999Z",
			"2026-03-05T15:30:00Z", "2026-03-12T15:30:00Z"},
		{"weekly exactly at the boundary", ResetWeekly, "2026-03-05T15:30:00Z", "2026-03-12T15:30:00Z",
			"2026-03-12T15:30:00Z", "2026-03-19T15:30:00Z"},
		// Local Sunday 22:00 is Monday 03:00 UTC.
		{"weekly -05:00 anchor", ResetWeekly, "2026-03-01T22:00:00-05:00", "2026-03-16T02:59:59Z",
			"2026-03-09T03:00:00Z", "2026-03-16T03:00:00Z"},
		// Local Monday 07:00 is Sunday 22:00 UTC; the week crosses the year.
		{"weekly +09:00 anchor across a year", ResetWeekly, "2026-03-02T07:00:00+09:00", "2027-01-03T21:59:59Z",
			"2026-12-27T22:00:00Z", "2027-01-03T22:00:00Z"},

		{"monthly on the anchor's day", ResetMonthly, "2026-01-15T10:00:00Z", "2026-06-15T09:59:59Z",
			"2026-05-15T10:00:00Z", "2026-06-15T10:00:00Z"},
		{"monthly exactly at the boundary", ResetMonthly, "2026-01-15T10:00:00Z", "2026-06-15T10:00:00Z",
			"2026-06-15T10:00:00Z", "2026-07-15T10:00:00Z"},
		{"monthly across a year", ResetMonthly, "2026-01-15T10:00:00Z", "2027-01-02T00:00:00Z",
			"2026-12-15T10:00:00Z", "2027-01-15T10:00:00Z"},
		// The anchor is Jan 31 in Tokyo but Jan 30 in UTC: its day is 31,
		// so February's boundary is Feb 28 08:00 Tokyo (Feb 27 UTC), and
		// April's is Apr 30 08:00 Tokyo (Apr 29 UTC).
		{"monthly +09:00 anchor, before Feb boundary", ResetMonthly, "2026-01-31T08:00:00+09:00", "2026-02-27T22:59:59Z",
			"2026-01-30T23:00:00Z", "2026-02-27T23:00:00Z"},
		{"monthly +09:00 anchor, at Feb boundary", ResetMonthly, "2026-01-31T08:00:00+09:00", "2026-02-27T23:00:00Z",
			"2026-02-27T23:00:00Z", "2026-03-30T23:00:00Z"},
		{"monthly +09:00 anchor, April", ResetMonthly, "2026-01-31T08:00:00+09:00", "2026-04-29T23:00:00Z",
			"2026-04-29T23:00:00Z", "2026-05-30T23:00:00Z"},
		// The anchor is Jan 30 in New York but Jan 31 in UTC: its day is 30,
		// so April's boundary is Apr 30 21:00 New York, May 1 UTC.
		{"monthly -05:00 anchor, February clamp", ResetMonthly, "2026-01-30T21:00:00-05:00", "2026-03-01T02:00:00Z",
			"2026-03-01T02:00:00Z", "2026-03-31T02:00:00Z"},
		{"monthly -05:00 anchor, April", ResetMonthly, "2026-01-30T21:00:00-05:00", "2026-04-30T12:00:00Z",
			"2026-03-31T02:00:00Z", "2026-05-01T02:00:00Z"},

		{"yearly on the anchor's date", ResetYearly, "2025-07-04T12:00:00Z", "2026-07-04T11:59:59.999999999Z",
			"2025-07-04T12:00:00Z", "2026-07-04T12:00:00Z"},
		{"yearly exactly at the boundary", ResetYearly, "2025-07-04T12:00:00Z", "2026-07-04T12:00:00Z",
			"2026-07-04T12:00:00Z", "2027-07-04T12:00:00Z"},
		{"yearly Feb 29 anchor in a non-leap year", ResetYearly, "2024-02-29T00:00:00Z", "2026-03-01T00:00:00Z",
			"2026-02-28T00:00:00Z", "2027-02-28T00:00:00Z"},
		{"yearly Feb 29 anchor before a leap day", ResetYearly, "2024-02-29T00:00:00Z", "2028-02-28T23:59:59Z",
			"2027-02-28T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"yearly Feb 29 anchor on a leap day", ResetYearly, "2024-02-29T00:00:00Z", "2028-02-29T00:00:00Z",
			"2028-02-29T00:00:00Z", "2029-02-28T00:00:00Z"},
		{"yearly Feb 29 anchor, 2100 is not leap", ResetYearly, "2024-02-29T00:00:00Z", "2100-06-01T00:00:00Z",
			"2100-02-28T00:00:00Z", "2101-02-28T00:00:00Z"},
		// Feb 29 07:00 in Tokyo is Feb 28 22:00 UTC.
		{"yearly Feb 29 +09:00 anchor", ResetYearly, "2028-02-29T07:00:00+09:00", "2029-03-01T00:00:00Z",
			"2029-02-27T22:00:00Z", "2030-02-27T22:00:00Z"},
	})
}

func TestAnchorsInTheFutureExtendPeriodsBackwards(t *testing.T) {
	checkPeriods(t, []periodCase{
		{"daily", ResetDaily, "2030-01-01T18:00:00Z", "2026-03-20T10:00:00Z", "2026-03-19T18:00:00Z", "2026-03-20T18:00:00Z"},
		{"weekly (Saturday)", ResetWeekly, "2030-06-15T12:00:00Z", "2026-03-20T10:00:00Z", "2026-03-14T12:00:00Z", "2026-03-21T12:00:00Z"},
		{"monthly", ResetMonthly, "2030-06-15T12:00:00Z", "2026-03-20T00:00:00Z", "2026-03-15T12:00:00Z", "2026-04-15T12:00:00Z"},
		{"monthly day 31 clamped", ResetMonthly, "2030-01-31T00:00:00Z", "2026-03-01T00:00:00Z", "2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z"},
		{"yearly", ResetYearly, "2030-06-15T12:00:00Z", "2026-03-20T00:00:00Z", "2025-06-15T12:00:00Z", "2026-06-15T12:00:00Z"},
		{"anchor itself is a boundary", ResetMonthly, "2030-06-15T12:00:00Z", "2030-06-15T12:00:00Z", "2030-06-15T12:00:00Z", "2030-07-15T12:00:00Z"},
	})
}

// Walks a whole year boundary by boundary: days 29-31 fall on the last
// day of shorter months and come back in longer ones (the clamp never
// carries over).
func TestMonthlyAnchorsOnLateDaysClampToTheLastDayOfTheMonth(t *testing.T) {
	tests := []struct {
		anchor string
		year   int
		days   [12]int // boundary day of each month of year
	}{
		{"2026-01-29T10:00:00Z", 2027, [12]int{29, 28, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29}},
		{"2026-01-29T10:00:00Z", 2028, [12]int{29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29}},
		{"2026-01-30T10:00:00Z", 2027, [12]int{30, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30}},
		{"2026-01-30T10:00:00Z", 2028, [12]int{30, 29, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30}},
		{"2026-01-31T10:00:00Z", 2027, [12]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}},
		{"2026-01-31T10:00:00Z", 2028, [12]int{31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}},
		{"2026-01-31T10:00:00Z", 2100, [12]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}},
		{"2026-03-31T10:00:00Z", 2028, [12]int{31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}},
	}
	for _, tt := range tests {
		anchor := ptr(ts(t, tt.anchor))
		var boundaries []time.Time
		for m := range 12 {
			boundaries = append(boundaries, time.Date(tt.year, time.Month(m+1), tt.days[m], 10, 0, 0, 0, time.UTC))
		}
		boundaries = append(boundaries, time.Date(tt.year+1, time.January, tt.days[0], 10, 0, 0, 0, time.UTC))
		for i, b := range boundaries[:12] {
			if got := PeriodStart(ResetMonthly, anchor, b); !got.Equal(b) {
				t.Errorf("anchor %s: PeriodStart at %s = %s, want the boundary itself", tt.anchor, FormatInstant(b), FormatInstant(got))
			}
			if got := PeriodStart(ResetMonthly, anchor, boundaries[i+1].Add(-time.Nanosecond)); !got.Equal(b) {
				t.Errorf("anchor %s: PeriodStart 1ns before %s = %s, want %s", tt.anchor,
					FormatInstant(boundaries[i+1]), FormatInstant(got), FormatInstant(b))
			}
			if got := NextPeriodStart(ResetMonthly, anchor, b); !got.Equal(boundaries[i+1]) {
				t.Errorf("anchor %s: NextPeriodStart at %s = %s, want %s", tt.anchor,
					FormatInstant(b), FormatInstant(got), FormatInstant(boundaries[i+1]))
			}
		}
	}
}

// A zone with daylight saving is read at the anchor's own offset, so
// boundaries stay a whole number of days apart all year round.
func TestAnchorInADaylightSavingZoneUsesItsFixedOffset(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	anchor := time.Date(2026, time.January, 15, 9, 0, 0, 0, ny) // EST, 14:00 UTC
	now := ts(t, "2026-07-01T13:59:00Z")                        // EDT in New York
	if got, want := PeriodStart(ResetDaily, &anchor, now), ts(t, "2026-06-30T14:00:00Z"); !got.Equal(want) {
		t.Errorf("PeriodStart = %s, want %s", FormatInstant(got), FormatInstant(want))
	}
	if got, want := PeriodStart(ResetMonthly, &anchor, now), ts(t, "2026-06-15T14:00:00Z"); !got.Equal(want) {
		t.Errorf("PeriodStart = %s, want %s", FormatInstant(got), FormatInstant(want))
	}
}

// Invariants over many instants: now lies in [start, next), the start of
// a period is in that period, and the instant before next is too.
func TestPeriodsTileTheTimeline(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	base := ts(t, "2000-01-01T00:00:00Z")
	span := int64(150 * 365 * 24 * time.Hour)
	randomInstant := func() time.Time {
		return base.Add(time.Duration(rng.Int64N(span))).Truncate(time.Duration(1 + rng.Int64N(int64(time.Hour))))
	}
	offsets := []int{0, 9 * 3600, -5 * 3600, 5*3600 + 1800, -12 * 3600, 14 * 3600}
	for range 3000 {
		var anchor *time.Time
		if rng.IntN(4) != 0 {
			off := offsets[rng.IntN(len(offsets))]
			anchor = ptr(randomInstant().In(time.FixedZone("", off)))
		}
		now := randomInstant()
		for _, p := range []ResetPeriod{ResetDaily, ResetWeekly, ResetMonthly, ResetYearly} {
			start, next := PeriodStart(p, anchor, now), NextPeriodStart(p, anchor, now)
			if start.After(now) || !next.After(now) {
				t.Fatalf("%s anchor %v now %s: [%s, %s) does not contain now", p, anchor, FormatInstant(now),
					FormatInstant(start), FormatInstant(next))
			}
			if got := PeriodStart(p, anchor, start); !got.Equal(start) {
				t.Fatalf("%s anchor %v: PeriodStart(%s) = %s", p, anchor, FormatInstant(start), FormatInstant(got))
			}
			if got := PeriodStart(p, anchor, next.Add(-time.Nanosecond)); !got.Equal(start) {
				t.Fatalf("%s anchor %v: PeriodStart(next-1ns) = %s, want %s", p, anchor, FormatInstant(got), FormatInstant(start))
			}
			if got := PeriodStart(p, anchor, next); !got.Equal(next) {
				t.Fatalf("%s anchor %v: PeriodStart(next %s) = %s", p, anchor, FormatInstant(next), FormatInstant(got))
			}
			if anchor != nil && p != ResetMonthly && p != ResetYearly {
				if d := next.Sub(start); d != 24*time.Hour && d != 7*24*time.Hour {
					t.Fatalf("%s: period length %v", p, d)
				}
			}
		}
	}
}

func TestResetNoneHasNoPeriods(t *testing.T) {
	now := ts(t, "2026-03-15T13:45:00Z")
	for _, anchor := range []*time.Time{nil, ptr(ts(t, "2026-01-31T08:00:00+09:00"))} {
		if got := PeriodStart(ResetNone, anchor, now); !got.IsZero() {
			t.Errorf("PeriodStart(NONE) = %s, want the zero time", got)
		}
		if got := NextPeriodStart(ResetNone, anchor, now); !got.IsZero() {
			t.Errorf("NextPeriodStart(NONE) = %s, want the zero time", got)
		}
	}
}

func TestUnknownResetPeriodPanics(t *testing.T) {
	for _, p := range []ResetPeriod{"", "daily", "HOURLY"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("PeriodStart(%q) did not panic", p)
				}
			}()
			NeedsReset(p, nil, nil, time.Now())
		}()
	}
}

func TestNeedsResetWhenTheStoredPeriodIsOver(t *testing.T) {
	now := ts(t, "2026-03-15T13:45:00Z") // daily period began 2026-03-15T00:00Z
	tokyo := ptr(ts(t, "2026-01-31T08:00:00+09:00"))
	tests := []struct {
		name        string
		p           ResetPeriod
		anchor      *time.Time
		periodStart string // "" for nil
		want        bool
	}{
		{"NONE never resets", ResetNone, nil, "", false},
		{"NONE never resets, even with an old period", ResetNone, nil, "2000-01-01T00:00:00Z", false},
		{"no period started yet", ResetDaily, nil, "", true},
		{"stored period is earlier", ResetDaily, nil, "2026-03-14T00:00:00Z", true},
		{"stored period is 1ns earlier", ResetDaily, nil, "2026-03-14T23:59:59.999999999Z", true},
		{"stored period is the current one", ResetDaily, nil, "2026-03-15T00:00:00Z", false},
		{"same instant written with an offset", ResetDaily, nil, "2026-03-15T09:00:00+09:00", false},
		{"stored period is later (a faster clock)", ResetDaily, nil, "2026-03-16T00:00:00Z", false},
		{"monthly, earlier", ResetMonthly, nil, "2026-02-01T00:00:00Z", true},
		{"monthly, current", ResetMonthly, nil, "2026-03-01T00:00:00Z", false},
		{"anchored monthly, current (Feb 28 Tokyo)", ResetMonthly, tokyo, "2026-02-27T23:00:00Z", false},
		{"anchored monthly, previous", ResetMonthly, tokyo, "2026-01-30T23:00:00Z", true},
		{"anchored monthly, no period yet", ResetMonthly, tokyo, "", true},
		{"yearly, current", ResetYearly, nil, "2026-01-01T00:00:00Z", false},
		{"yearly, last year", ResetYearly, nil, "2025-01-01T00:00:00Z", true},
	}
	for _, tt := range tests {
		var periodStart *time.Time
		if tt.periodStart != "" {
			periodStart = ptr(ts(t, tt.periodStart))
		}
		if got := NeedsReset(tt.p, tt.anchor, periodStart, now); got != tt.want {
			t.Errorf("%s: NeedsReset = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// The boundary belongs to the new period: an event at exactly midnight
// resets, one a nanosecond earlier does not.
func TestNeedsResetAtTheBoundary(t *testing.T) {
	stored := ptr(ts(t, "2026-03-14T00:00:00Z"))
	midnight := ts(t, "2026-03-15T00:00:00Z")
	if NeedsReset(ResetDaily, nil, stored, midnight.Add(-time.Nanosecond)) {
		t.Error("reset 1ns before the boundary")
	}
	if !NeedsReset(ResetDaily, nil, stored, midnight) {
		t.Error("no reset at the boundary")
	}
}

func TestFormatInstantWritesUTC(t *testing.T) {
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC), "2026-11-01T00:00:00Z"},
		{time.Date(2026, time.November, 1, 9, 0, 0, 0, time.FixedZone("JST", 9*3600)), "2026-11-01T00:00:00Z"},
		{time.Date(2026, time.October, 31, 19, 0, 0, 0, time.FixedZone("", -5*3600)), "2026-11-01T00:00:00Z"},
		{time.Date(2026, time.November, 1, 0, 0, 0, 500_000_000, time.UTC), "2026-11-01T00:00:00.5Z"},
		{time.Date(2026, time.November, 1, 0, 0, 0, 1, time.UTC), "2026-11-01T00:00:00.000000001Z"},
	}
	for _, tt := range tests {
		if got := FormatInstant(tt.in); got != tt.want {
			t.Errorf("FormatInstant(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseInstantKeepsTheWrittenOffset(t *testing.T) {
	tests := []struct {
		in     string
		utc    string
		offset int
	}{
		{"2026-11-01T00:00:00Z", "2026-11-01T00:00:00Z", 0},
		{"2026-11-01T00:00:00+00:00", "2026-11-01T00:00:00Z", 0},
		{"2026-11-01T00:00:00.5Z", "2026-11-01T00:00:00.5Z", 0},
		{"2026-01-31T08:00:00+09:00", "2026-01-30T23:00:00Z", 9 * 3600},
		{"2026-01-30T21:00:00-05:00", "2026-01-31T02:00:00Z", -5 * 3600},
		{"2026-01-30T21:00:00.123-05:30", "2026-01-31T02:30:00.123Z", -(5*3600 + 1800)},
	}
	for _, tt := range tests {
		got, err := ParseInstant(tt.in)
		if err != nil {
			t.Errorf("ParseInstant(%q): %v", tt.in, err)
			continue
		}
		if s := FormatInstant(got); s != tt.utc {
			t.Errorf("ParseInstant(%q) = %s, want %s", tt.in, s, tt.utc)
		}
		if _, off := got.Zone(); off != tt.offset {
			t.Errorf("ParseInstant(%q) offset = %d, want %d", tt.in, off, tt.offset)
		}
		if tt.offset == 0 && got.Location() != time.UTC {
			t.Errorf("ParseInstant(%q) location = %v, want UTC", tt.in, got.Location())
		}
	}
}

func TestParseInstantRejectsWhatIsNotRFC3339(t *testing.T) {
	for _, in := range []string{
		"", "2026-11-01", "2026-11-01T00:00:00", "2026-11-01 00:00:00Z", "2026-13-01T00:00:00Z",
		"2026-02-30T00:00:00Z", "1793836800", "next tuesday", "2026-11-01T00:00:00Z ",
	} {
		got, err := ParseInstant(in)
		if err == nil {
			t.Errorf("ParseInstant(%q) = %s, want an error", in, got)
			continue
		}
		if !strings.Contains(err.Error(), "RFC 3339") {
			t.Errorf("ParseInstant(%q) error = %q, want it to name RFC 3339", in, err)
		}
	}
}
