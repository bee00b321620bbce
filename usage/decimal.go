package usage

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// DynamoDB's number limits. Amounts, limits and usage are stored as
// DynamoDB numbers, so a value we accept must be one DynamoDB accepts:
// otherwise the write fails after the decision was made.
const (
	// MaxSignificantDigits is DynamoDB's precision.
	MaxSignificantDigits = 38
	// Adjusted exponents (the power of ten of the most significant digit)
	// DynamoDB can hold: 1E-130 up to 9.99...9E+125 in magnitude.
	minAdjustedExponent = -130
	maxAdjustedExponent = 125
	// plainMaxDigits bounds the digits String writes without an exponent.
	plainMaxDigits = 40
	// maxExponentDigits bounds the exponent literal ParseDecimal reads.
	// Anything longer is far outside DynamoDB's range whatever the
	// mantissa, so it is rejected before any arithmetic (or allocation)
	// that would scale with it. 15 digits also keeps every exponent sum
	// well inside int64.
	maxExponentDigits = 15
)

// Decimal is an exact decimal number: amounts, limits and usage.
//
// Money-like counters must never round through float64 (0.1+0.2 != 0.3,
// and integers above 2^53 lose units), and DynamoDB numbers are exact
// decimals of up to 38 significant digits, so this type keeps the exact
// digits and a base-10 exponent.
//
// The zero value is 0. A Decimal is immutable and safe to copy. Its
// representation is canonical (no leading or trailing zeros in the
// digits, zero has one form), so == on two Decimals is numeric equality
// (1 == 1.0 == 1E0), though Cmp says so more clearly.
//
// Arithmetic is exact and unbounded: a sum of values that each fit
// DynamoDB may not (1E+30 + 1E-30 has 61 digits). Callers that store a
// result check FitsDynamoDB first.
type Decimal struct {
	neg    bool
	digits string // decimal digits, no leading or trailing zeros; "" for zero
	exp    int    // value = ±digits × 10^exp; 0 for zero
}

// ParseDecimal parses a number as written in JSON (-?int frac? exp?) or as
// DynamoDB returns an N value ("1E+2", "0.5", "-3"); a leading '+' is also
// accepted. Leading zeros ("01"), a bare point ("1.", ".5"), spaces, hex,
// NaN and Infinity are not numbers here.
//
// The result must be storable as is, so it is rejected when it has more
// than 38 significant digits (leading and trailing zeros do not count:
// "100000000000000000000000000000000000000000" is 1E+41, one digit) or
// when it is non-zero and outside 1E-130 .. 9.99...9E+125 in magnitude.
// Exponents are checked before any work proportional to them, so inputs
// such as "1e1000000000" fail at once.
func ParseDecimal(s string) (Decimal, error) {
	n, ok := scanNumber(s)
	if !ok {
		return Decimal{}, parseError(s, "not a number")
	}
	return n.decimal(s)
}

const outOfRange = "out of DynamoDB's range (magnitude 1E-130 to 9.9999999999999999999999999999999999999E+125)"

// numberLiteral is a number's text split into its parts.
type numberLiteral struct {
	neg               bool
	intPart, fracPart string
	exp10             int64
	expTooLarge       bool // more exponent digits than any storable number has
}

// scanNumber splits s: an optional sign, "0" or a non-zero digit
// followed by digits, an optional fraction and an optional exponent, and
// nothing after them.
func scanNumber(s string) (numberLiteral, bool) {
	var n numberLiteral
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		n.neg = s[i] == '-'
		i++
	}
	n.intPart, i = digitsAt(s, i)
	if n.intPart == "" || (len(n.intPart) > 1 && n.intPart[0] == '0') {
		return n, false
	}
	if i < len(s) && s[i] == '.' {
		if n.fracPart, i = digitsAt(s, i+1); n.fracPart == "" {
			return n, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		var ok bool
		if i, ok = n.scanExponent(s, i+1); !ok {
			return n, false
		}
	}
	return n, i == len(s)
}

// digitsAt returns the run of digits of s from i, and the index after it.
func digitsAt(s string, i int) (string, int) {
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[start:i], i
}

// scanExponent reads an exponent's sign and digits from i; one with more
// digits than maxExponentDigits is only marked too large, never converted.
func (n *numberLiteral) scanExponent(s string, i int) (int, bool) {
	neg := false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	lit, i := digitsAt(s, i)
	if lit == "" {
		return i, false
	}
	lit = strings.TrimLeft(lit, "0")
	switch {
	case len(lit) > maxExponentDigits:
		n.expTooLarge = true
	case lit != "":
		v, err := strconv.ParseInt(lit, 10, 64)
		if err != nil { // cannot happen for <= 15 digits
			return i, false
		}
		n.exp10 = v
		if neg {
			n.exp10 = -v
		}
	}
	return i, true
}

// decimal is the literal's value, if DynamoDB can store it. The
// significant digits and the exponent of the last of them: leading zeros
// can only come from "0" or "0.000ddd", trailing zeros from either part;
// neither counts towards the 38 digits.
func (n numberLiteral) decimal(s string) (Decimal, error) {
	all := n.intPart + n.fracPart
	lead := 0
	for lead < len(all) && all[lead] == '0' {
		lead++
	}
	if lead == len(all) {
		return Decimal{}, nil // any zero, "-0.000e99999999999999999" included
	}
	trail := len(all)
	for all[trail-1] == '0' {
		trail--
	}
	digits := all[lead:trail]
	if n.expTooLarge {
		return Decimal{}, parseError(s, outOfRange)
	}
	if len(digits) > MaxSignificantDigits {
		return Decimal{}, parseError(s, "more than 38 significant digits")
	}
	// |exp10| < 1e15 and the string lengths are far below 2^62, so this
	// cannot overflow.
	exp := n.exp10 - int64(len(n.fracPart)) + int64(len(all)-trail)
	adjusted := exp + int64(len(digits)) - 1
	if adjusted < minAdjustedExponent || adjusted > maxAdjustedExponent {
		return Decimal{}, parseError(s, outOfRange)
	}
	return Decimal{neg: n.neg, digits: digits, exp: int(exp)}, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func parseError(s, msg string) error {
	return fmt.Errorf("%s: %s", quoteShort(s), msg)
}

// quoteShort quotes an input for an error message, shortened: a value in
// a message can be megabytes long and errors end up in logs and
// rejection messages.
func quoteShort(s string) string {
	const maxQuoted = 48
	if len(s) > maxQuoted {
		return strconv.Quote(s[:maxQuoted]) + "..."
	}
	return strconv.Quote(s)
}

// MustDecimal is ParseDecimal for constants and tests: it panics when s is
// not a valid number.
func MustDecimal(s string) Decimal {
	d, err := ParseDecimal(s)
	if err != nil {
		panic("usage.MustDecimal: " + err.Error())
	}
	return d
}

// DecimalFromInt returns i exactly.
func DecimalFromInt(i int64) Decimal {
	if i == 0 {
		return Decimal{}
	}
	s := strconv.FormatInt(i, 10)
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	return newDecimal(neg, s, 0)
}

// newDecimal normalises ±digits × 10^exp (digits without a sign, possibly
// with leading or trailing zeros) to the canonical form.
func newDecimal(neg bool, digits string, exp int) Decimal {
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return Decimal{}
	}
	trail := len(digits)
	for digits[trail-1] == '0' {
		trail--
	}
	return Decimal{neg: neg, digits: digits[:trail], exp: exp + len(digits) - trail}
}

// bigInt returns the signed coefficient.
func (d Decimal) bigInt() *big.Int {
	b := new(big.Int)
	if d.digits == "" {
		return b
	}
	b.SetString(d.digits, 10) // always valid: digits only
	if d.neg {
		b.Neg(b)
	}
	return b
}

// aligned returns both coefficients scaled to the smaller exponent. The
// exponents come from ParseDecimal (bounded to a few hundred) or from
// sums of such values, so the scaling is cheap.
func aligned(d, e Decimal) (x, y *big.Int, exp int) {
	x, y = d.bigInt(), e.bigInt()
	switch {
	case d.digits == "":
		return x, y, e.exp
	case e.digits == "":
		return x, y, d.exp
	case d.exp > e.exp:
		x.Mul(x, pow10(d.exp-e.exp))
		return x, y, e.exp
	case e.exp > d.exp:
		y.Mul(y, pow10(e.exp-d.exp))
		return x, y, d.exp
	}
	return x, y, d.exp
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

func fromBig(b *big.Int, exp int) Decimal {
	if b.Sign() == 0 {
		return Decimal{}
	}
	s := b.Text(10)
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	return newDecimal(neg, s, exp)
}

// Add returns d + e, exactly.
func (d Decimal) Add(e Decimal) Decimal {
	if e.digits == "" {
		return d
	}
	if d.digits == "" {
		return e
	}
	x, y, exp := aligned(d, e)
	return fromBig(x.Add(x, y), exp)
}

// Sub returns d - e, exactly.
func (d Decimal) Sub(e Decimal) Decimal {
	return d.Add(e.neg1())
}

// neg1 returns -d.
func (d Decimal) neg1() Decimal {
	if d.digits == "" {
		return d
	}
	d.neg = !d.neg
	return d
}

// Cmp compares numerically: -1 if d < e, 0 if d == e, +1 if d > e.
func (d Decimal) Cmp(e Decimal) int {
	ds, es := d.Sign(), e.Sign()
	if ds != es {
		if ds < es {
			return -1
		}
		return 1
	}
	if ds == 0 {
		return 0
	}
	// Same sign: compare magnitudes by the position of the leading digit
	// first, which settles most cases without big arithmetic.
	var c int
	da, ea := d.adjusted(), e.adjusted()
	switch {
	case da < ea:
		c = -1
	case da > ea:
		c = 1
	default:
		// Same leading position: the digit strings compare like
		// fractions 0.ddd, i.e. lexicographically.
		c = strings.Compare(d.digits, e.digits)
	}
	if ds < 0 {
		return -c
	}
	return c
}

// adjusted is the exponent of the most significant digit (d != 0).
func (d Decimal) adjusted() int { return d.exp + len(d.digits) - 1 }

// Sign returns -1, 0 or +1.
func (d Decimal) Sign() int {
	switch {
	case d.digits == "":
		return 0
	case d.neg:
		return -1
	}
	return 1
}

// IsZero reports whether d == 0.
func (d Decimal) IsZero() bool { return d.digits == "" }

// SignificantDigits returns the number of digits from the first to the
// last non-zero one (0 for zero): what DynamoDB's 38-digit limit counts.
func (d Decimal) SignificantDigits() int { return len(d.digits) }

// FitsDynamoDB reports whether d can be stored as a DynamoDB number: at
// most 38 significant digits and, unless zero, a magnitude from 1E-130 to
// 9.99...9E+125. Results of Add and Sub must be checked before writing.
func (d Decimal) FitsDynamoDB() bool {
	if d.digits == "" {
		return true
	}
	a := d.adjusted()
	return len(d.digits) <= MaxSignificantDigits && a >= minAdjustedExponent && a <= maxAdjustedExponent
}

// String returns the canonical, exact text of d: no trailing zeros, "0"
// for zero (never "-0"), plain notation ("1234.5", "0.001", "1000") when
// that takes at most 40 digits, otherwise scientific notation with one
// digit before the point ("1.5E+100", "-2E-50"). Both forms are valid
// JSON numbers and DynamoDB N values, and ParseDecimal reads them back to
// an equal value when FitsDynamoDB holds. Equal values have equal strings.
func (d Decimal) String() string {
	if d.digits == "" {
		return "0"
	}
	var b strings.Builder
	if d.neg {
		b.WriteByte('-')
	}
	n := len(d.digits)
	adj := d.adjusted()
	switch {
	case d.exp >= 0 && n+d.exp <= plainMaxDigits: // integer: digits then zeros
		b.WriteString(d.digits)
		for range d.exp {
			b.WriteByte('0')
		}
	case d.exp < 0 && adj >= 0 && n <= plainMaxDigits: // point inside the digits
		b.WriteString(d.digits[:adj+1])
		b.WriteByte('.')
		b.WriteString(d.digits[adj+1:])
	case d.exp < 0 && adj < 0 && n-adj <= plainMaxDigits: // 0.000ddd
		b.WriteString("0.")
		for range -adj - 1 {
			b.WriteByte('0')
		}
		b.WriteString(d.digits)
	default:
		b.WriteString(d.digits[:1])
		if n > 1 {
			b.WriteByte('.')
			b.WriteString(d.digits[1:])
		}
		b.WriteByte('E')
		if adj >= 0 {
			b.WriteByte('+')
		}
		b.WriteString(strconv.Itoa(adj))
	}
	return b.String()
}

// Mul returns d × e, exactly.
func (d Decimal) Mul(e Decimal) Decimal {
	if d.digits == "" || e.digits == "" {
		return Decimal{}
	}
	x, y := d.bigInt(), e.bigInt()
	return fromBig(x.Mul(x, y), d.exp+e.exp)
}

// Shift returns d × 10^n, exactly.
func (d Decimal) Shift(n int) Decimal {
	if d.digits == "" {
		return d
	}
	d.exp += n
	return d
}
