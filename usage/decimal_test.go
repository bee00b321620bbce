package usage

import (
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rat is the oracle: math/big parses decimal text exactly.
func rat(t testing.TB, s string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("big.Rat cannot parse %q", s)
	}
	return r
}

func TestParseDecimalAcceptsJSONAndDynamoDBNumbers(t *testing.T) {
	tests := []struct {
		in, want string
		digits   int
	}{
		{"0", "0", 0},
		{"-0", "0", 0},
		{"+0", "0", 0},
		{"0.000", "0", 0},
		{"-0.0e5", "0", 0},
		{"0e99999999999999999999999", "0", 0}, // zero has no magnitude to be out of range
		{"1", "1", 1},
		{"+1", "1", 1},
		{"-3", "-3", 1},
		{"0.5", "0.5", 1},
		{"1.50", "1.5", 2},
		{"1.0", "1", 1},
		{"100", "100", 1},
		{"1E+2", "100", 1},
		{"1e2", "100", 1},
		{"1E2", "100", 1},
		{"1e-2", "0.01", 1},
		{"1E-0002", "0.01", 1},
		{"12.345e1", "123.45", 5},
		{"-12.345E-1", "-1.2345", 5},
		{"10.00e-1", "1", 1},
		{"0.00012300", "0.000123", 3},
		{"123456789012345678901234567890.12345678", "123456789012345678901234567890.12345678", 38},
		{"99999999999999999999999999999999999999", "99999999999999999999999999999999999999", 38},
		{"100000000000000000000000000000000000000000", "1E+41", 1}, // trailing zeros are not significant
		{"0.0000000000000000000000000000000000000000001", "1E-43", 1},
		{"1.5E+100", "1.5E+100", 2},
		{"1E-130", "1E-130", 1},
		{"-1E-130", "-1E-130", 1},
		{"1.2345678901234567890123456789012345678E-130", "1.2345678901234567890123456789012345678E-130", 38},
		{"9.9999999999999999999999999999999999999E+125", "9.9999999999999999999999999999999999999E+125", 38},
		{"-9.9999999999999999999999999999999999999E+125", "-9.9999999999999999999999999999999999999E+125", 38},
		{"0.1e-129", "1E-130", 1},
		{"99.9e124", "9.99E+125", 3},
	}
	for _, tt := range tests {
		d, err := ParseDecimal(tt.in)
		if err != nil {
			t.Errorf("ParseDecimal(%q): %v", tt.in, err)
			continue
		}
		if got := d.String(); got != tt.want {
			t.Errorf("ParseDecimal(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
		if got := d.SignificantDigits(); got != tt.digits {
			t.Errorf("ParseDecimal(%q).SignificantDigits() = %d, want %d", tt.in, got, tt.digits)
		}
		if !d.FitsDynamoDB() {
			t.Errorf("ParseDecimal(%q).FitsDynamoDB() = false for a parsed value", tt.in)
		}
		if r, ok := new(big.Rat).SetString(tt.in); ok && toRat(d).Cmp(r) != 0 {
			t.Errorf("ParseDecimal(%q) = %s, not the same number", tt.in, d)
		}
	}
}

func TestParseDecimalRejectsWhatIsNotANumberOrDoesNotFit(t *testing.T) {
	tooManyDigits := "more than 38 significant digits"
	outOfRange := "out of DynamoDB's range"
	notANumber := "not a number"
	tests := []struct{ in, want string }{
		{"", notANumber},
		{"-", notANumber},
		{"+", notANumber},
		{"+-1", notANumber},
		{"--1", notANumber},
		{"NaN", notANumber},
		{"nan", notANumber},
		{"Infinity", notANumber},
		{"-Infinity", notANumber},
		{"inf", notANumber},
		{"0x10", notANumber},
		{"0x1p3", notANumber},
		{" 1", notANumber},
		{"1 ", notANumber},
		{"1\n", notANumber},
		{"1_000", notANumber},
		{"1,5", notANumber},
		{"01", notANumber},
		{"-01", notANumber},
		{"00", notANumber},
		{"1.", notANumber},
		{".5", notANumber},
		{"-.5", notANumber},
		{"1e", notANumber},
		{"1e+", notANumber},
		{"1e-", notANumber},
		{"1e1.5", notANumber},
		{"1E+2E+3", notANumber},
		{"e5", notANumber},
		{"1.2.3", notANumber},
		{"١", notANumber}, // Arabic-Indic digit one
		{"1d", notANumber},
		{"\"1\"", notANumber},
		{"123456789012345678901234567890123456789", tooManyDigits},
		{"1.00000000000000000000000000000000000001", tooManyDigits},
		{"-0.000123456789012345678901234567890123456789", tooManyDigits},
		{"1E+126", outOfRange},
		{"10E+125", outOfRange},
		{"-1E+126", outOfRange},
		{"9.99E-131", outOfRange},
		{"0.01E-129", outOfRange},
		{"1e1000000000", outOfRange},
		{"1e-1000000000", outOfRange},
		{"1e99999999999999999999", outOfRange},
		{"1e-99999999999999999999", outOfRange},
		{"-1e+00000000000000000000000000000000000000000000000000000000000999999999999999999999999", outOfRange},
		{"0." + strings.Repeat("0", 200) + "1", outOfRange},
		{"1" + strings.Repeat("0", 200), outOfRange},
	}
	for _, tt := range tests {
		d, err := ParseDecimal(tt.in)
		if err == nil {
			t.Errorf("ParseDecimal(%q) = %s, want error %q", tt.in, d, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseDecimal(%q) error = %q, want it to say %q", tt.in, err, tt.want)
		}
	}
}

// An exponent is a few bytes that could ask for a number with billions of
// digits; rejecting it must cost nothing proportional to its value.
func TestParseDecimalRejectsAbsurdExponentsInstantly(t *testing.T) {
	for _, in := range []string{
		"1e1000000000", "1e-1000000000", "1e-99999999999999999999",
		"9e9223372036854775807", "9e-9223372036854775808", "1e18446744073709551616",
	} {
		start := time.Now()
		allocs := testing.AllocsPerRun(10, func() {
			if _, err := ParseDecimal(in); err == nil {
				t.Fatalf("ParseDecimal(%q) succeeded", in)
			}
		})
		if allocs > 10 {
			t.Errorf("ParseDecimal(%q) made %v allocations per run, want a constant few", in, allocs)
		}
		if elapsed := time.Since(start); elapsed > time.Second {
			t.Errorf("ParseDecimal(%q) took %v", in, elapsed)
		}
	}
}

func TestParseDecimalErrorsQuoteLongInputShortened(t *testing.T) {
	in := strings.Repeat("9", 10000)
	_, err := ParseDecimal(in)
	if err == nil || len(err.Error()) > 200 {
		t.Fatalf("error for a 10000-digit input = %v, want a short message", err)
	}
}

func TestMustDecimalPanicsOnInvalidInput(t *testing.T) {
	if got := MustDecimal("2.50").String(); got != "2.5" {
		t.Errorf("MustDecimal(2.50) = %s", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("MustDecimal(\"x\") did not panic")
		}
	}()
	MustDecimal("x")
}

func TestDecimalFromIntIsExact(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0"},
		{1, "1"},
		{-1, "-1"},
		{100, "100"},
		{1 << 53, "9007199254740992"},
		{1<<53 + 1, "9007199254740993"}, // not representable as float64
		{math.MaxInt64, "9223372036854775807"},
		{math.MinInt64, "-9223372036854775808"},
	}
	for _, tt := range tests {
		d := DecimalFromInt(tt.in)
		if got := d.String(); got != tt.want {
			t.Errorf("DecimalFromInt(%d) = %s, want %s", tt.in, got, tt.want)
		}
		if d != MustDecimal(tt.want) {
			t.Errorf("DecimalFromInt(%d) differs in representation from MustDecimal(%q)", tt.in, tt.want)
		}
	}
}

func TestDecimalZeroValueIsZero(t *testing.T) {
	var z Decimal
	if !z.IsZero() || z.Sign() != 0 || z.String() != "0" || z.SignificantDigits() != 0 || !z.FitsDynamoDB() {
		t.Errorf("zero value: IsZero=%v Sign=%d String=%q digits=%d fits=%v",
			z.IsZero(), z.Sign(), z, z.SignificantDigits(), z.FitsDynamoDB())
	}
	if z != MustDecimal("-0.0E7") || z != DecimalFromInt(0) || z.Cmp(MustDecimal("0")) != 0 {
		t.Error("zero value differs from parsed zeros")
	}
	if got := z.Add(MustDecimal("1.5")).String(); got != "1.5" {
		t.Errorf("0 + 1.5 = %s", got)
	}
	if got := z.Sub(MustDecimal("1.5")).String(); got != "-1.5" {
		t.Errorf("0 - 1.5 = %s", got)
	}
}

func TestDecimalCmpIsNumeric(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1", "1.0", 0},
		{"1", "1E0", 0},
		{"100", "1E+2", 0},
		{"-0", "0", 0},
		{"0.1", "0.10000", 0},
		{"1", "2", -1},
		{"2", "1", 1},
		{"-1", "1", -1},
		{"-2", "-1", -1},
		{"0", "1E-130", -1},
		{"-1E-130", "0", -1},
		{"0.12", "0.123", -1},
		{"0.123", "0.12", 1},
		{"9", "10", -1},
		{"-9", "-10", 1},
		{"99999999999999999999999999999999999999", "1E+38", -1},
		{"1.0000000000000000000000000000000000001", "1", 1},
		{"9.9999999999999999999999999999999999999E+125", "1E-130", 1},
		{"-9.9999999999999999999999999999999999999E+125", "-1E-130", -1},
		{"12.5", "125E-1", 0},
	}
	for _, tt := range tests {
		a, b := MustDecimal(tt.a), MustDecimal(tt.b)
		if got := a.Cmp(b); got != tt.want {
			t.Errorf("%s.Cmp(%s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := b.Cmp(a); got != -tt.want {
			t.Errorf("%s.Cmp(%s) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
		if (a == b) != (tt.want == 0) {
			t.Errorf("%s == %s is %v, want %v (the representation is canonical)", tt.a, tt.b, a == b, tt.want == 0)
		}
	}
}

func TestDecimalSign(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "-0": 0, "1E-130": 1, "-1E-130": -1, "5": 1, "-5.5": -1} {
		if got := MustDecimal(in).Sign(); got != want {
			t.Errorf("%s.Sign() = %d, want %d", in, got, want)
		}
	}
}

func TestDecimalAddAndSubAreExact(t *testing.T) {
	tests := []struct {
		a, b, sum, diff string
		sumFits         bool
	}{
		{"0.1", "0.2", "0.3", "-0.1", true}, // 0.30000000000000004 in float64
		{"1", "1", "2", "0", true},
		{"1.5", "-1.5", "0", "3", true},
		{"9007199254740993", "1", "9007199254740994", "9007199254740992", true},
		{"99999999999999999999999999999999999999", "1", "1E+38", "99999999999999999999999999999999999998", true},
		{"0.5", "0.25", "0.75", "0.25", true},
		{"1E+2", "1E-2", "100.01", "99.99", true},
		{"-3", "5", "2", "-8", true},
		{"1E-130", "1E-130", "2E-130", "0", true},
		// Each fits, the exact sum needs 61 digits.
		{"1E+30", "1E-30", "1000000000000000000000000000000.000000000000000000000000000001",
			"999999999999999999999999999999.999999999999999999999999999999", false},
		{"99999999999999999999999999999999999999", "0.1",
			"99999999999999999999999999999999999999.1", "99999999999999999999999999999999999998.9", false},
		{"9.9999999999999999999999999999999999999E+125", "9.9999999999999999999999999999999999999E+125",
			"1.99999999999999999999999999999999999998E+126", "0", false},
	}
	for _, tt := range tests {
		a, b := MustDecimal(tt.a), MustDecimal(tt.b)
		sum, diff := a.Add(b), a.Sub(b)
		if !sameNumber(sum, tt.sum) {
			t.Errorf("%s + %s = %s, want %s", tt.a, tt.b, sum, tt.sum)
		}
		if !sameNumber(diff, tt.diff) {
			t.Errorf("%s - %s = %s, want %s", tt.a, tt.b, diff, tt.diff)
		}
		if sum.FitsDynamoDB() != tt.sumFits {
			t.Errorf("(%s + %s).FitsDynamoDB() = %v, want %v", tt.a, tt.b, sum.FitsDynamoDB(), tt.sumFits)
		}
		if back := sum.Sub(b); back != a {
			t.Errorf("%s + %s - %s = %s, want %s", tt.a, tt.b, tt.b, back, a)
		}
		// The operands are not modified (value semantics).
		if a.String() != MustDecimal(tt.a).String() || b.String() != MustDecimal(tt.b).String() {
			t.Errorf("operands changed: %s, %s", a, b)
		}
	}
}

// sameNumber compares with the big.Rat oracle, so it also works for
// results with more than 38 digits, which ParseDecimal rightly rejects.
func sameNumber(d Decimal, want string) bool {
	w, ok := new(big.Rat).SetString(want)
	return ok && toRat(d).Cmp(w) == 0
}

func toRat(d Decimal) *big.Rat {
	r, ok := new(big.Rat).SetString(d.String())
	if !ok {
		panic("big.Rat cannot parse " + d.String())
	}
	return r
}

func TestDecimalFitsDynamoDB(t *testing.T) {
	one38 := MustDecimal("1.0000000000000000000000000000000000001") // 38 digits
	tests := []struct {
		name string
		d    Decimal
		want bool
	}{
		{"zero", Decimal{}, true},
		{"38 digits", one38, true},
		{"39 digits", one38.Add(MustDecimal("1E-38")), false},
		{"smallest magnitude", MustDecimal("1E-130"), true},
		{"below smallest magnitude", MustDecimal("2E-130").Sub(MustDecimal("1.5E-130")), false},
		{"largest magnitude", MustDecimal("9.9999999999999999999999999999999999999E+125"), true},
		{"above largest magnitude", MustDecimal("9E+125").Add(MustDecimal("1E+125")), false},
		{"negative above largest magnitude", MustDecimal("-9E+125").Sub(MustDecimal("1E+125")), false},
	}
	for _, tt := range tests {
		if got := tt.d.FitsDynamoDB(); got != tt.want {
			t.Errorf("%s: %s.FitsDynamoDB() = %v, want %v", tt.name, tt.d, got, tt.want)
		}
	}
}

func TestDecimalStringIsCanonicalShortAndExact(t *testing.T) {
	tests := []struct {
		d    Decimal
		want string
	}{
		{MustDecimal("-0"), "0"},
		{MustDecimal("1.10"), "1.1"},
		{MustDecimal("1E+39"), "1000000000000000000000000000000000000000"}, // 40 digits: plain
		{MustDecimal("1E+40"), "1E+40"},                                    // 41 digits: scientific
		{MustDecimal("-1.5E+40"), "-1.5E+40"},
		{MustDecimal("1E-39"), "0.000000000000000000000000000000000000001"}, // 40 digits: plain
		{MustDecimal("1E-40"), "1E-40"},
		{MustDecimal("-2.5E-40"), "-2.5E-40"},
		{MustDecimal("12345678901234567890123456789012345678E-37"), "1.2345678901234567890123456789012345678"},
		{MustDecimal("1.5E+100"), "1.5E+100"},
		{MustDecimal("1E+30").Add(MustDecimal("1E-30")), "1.000000000000000000000000000000000000000000000000000000000001E+30"},
	}
	for _, tt := range tests {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
		if !sameNumber(tt.d, tt.want) {
			t.Errorf("%q is not the value", tt.want)
		}
	}
}

// Random values that fit, checked against math/big: the string round
// trips, and Add, Sub and Cmp agree with exact rational arithmetic.
func TestDecimalAgreesWithBigRat(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func() string {
		var b strings.Builder
		if rng.IntN(2) == 0 {
			b.WriteByte('-')
		}
		n := 1 + rng.IntN(MaxSignificantDigits)
		b.WriteByte(byte('1' + rng.IntN(9)))
		for range n - 1 {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
		// Adjusted exponent in range, biased towards small ones so that
		// sums overlap.
		adj := rng.IntN(20) - 10
		if rng.IntN(4) == 0 {
			adj = minAdjustedExponent + rng.IntN(maxAdjustedExponent-minAdjustedExponent+1)
		}
		exp := adj - (n - 1)
		return b.String() + "E" + strconv.Itoa(exp)
	}
	for range 2000 {
		as, bs := random(), random()
		a, b := MustDecimal(as), MustDecimal(bs)
		ra, rb := rat(t, as), rat(t, bs)
		if toRat(a).Cmp(ra) != 0 {
			t.Fatalf("ParseDecimal(%q) = %s", as, a)
		}
		if got := MustDecimal(a.String()); got != a {
			t.Fatalf("round trip of %q: %s -> %s", as, a, got)
		}
		if got, want := a.Cmp(b), ra.Cmp(rb); got != want {
			t.Fatalf("%s.Cmp(%s) = %d, want %d", as, bs, got, want)
		}
		if got, want := toRat(a.Add(b)), new(big.Rat).Add(ra, rb); got.Cmp(want) != 0 {
			t.Fatalf("%s + %s = %s, want %s", as, bs, a.Add(b), want.FloatString(200))
		}
		if got, want := toRat(a.Sub(b)), new(big.Rat).Sub(ra, rb); got.Cmp(want) != 0 {
			t.Fatalf("%s - %s = %s, want %s", as, bs, a.Sub(b), want.FloatString(200))
		}
	}
}

func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{
		"0", "-0", "1", "+1", "-3", "0.5", "1E+2", "1e-2", "12.345e1", "1.5E+100",
		"99999999999999999999999999999999999999", "123456789012345678901234567890123456789",
		"9.9999999999999999999999999999999999999E+125", "1E+126", "1E-130", "1E-131",
		"1e1000000000", "1e-99999999999999999999", "0e99999999999999999999", "NaN", "0x10", " 1", "01", "1.", ".5",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDecimal(s)
		if err != nil {
			if d != (Decimal{}) {
				t.Fatalf("ParseDecimal(%q) returned %s with error %v", s, d, err)
			}
			return
		}
		if !d.FitsDynamoDB() {
			t.Fatalf("ParseDecimal(%q) = %s, which does not fit", s, d)
		}
		out := d.String()
		back, err := ParseDecimal(out)
		if err != nil {
			t.Fatalf("ParseDecimal(%q) = %s, which does not parse back: %v", s, out, err)
		}
		if back.Cmp(d) != 0 || back != d || back.String() != out {
			t.Fatalf("round trip of %q: %s -> %s", s, out, back)
		}
		if r, ok := new(big.Rat).SetString(s); ok && r.Cmp(toRat(d)) != 0 {
			t.Fatalf("ParseDecimal(%q) = %s, but the value is %s", s, out, r.String())
		}
		if d.Sign() != d.Cmp(Decimal{}) || d.IsZero() != (d.Sign() == 0) {
			t.Fatalf("%s: Sign %d, Cmp(0) %d, IsZero %v", out, d.Sign(), d.Cmp(Decimal{}), d.IsZero())
		}
		if got := d.Add(d).Sub(d); got != d {
			t.Fatalf("%s + %s - %s = %s", out, out, out, got)
		}
		if !d.Sub(d).IsZero() {
			t.Fatalf("%s - %s = %s", out, out, d.Sub(d))
		}
	})
}
