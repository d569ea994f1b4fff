package market

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
)

// Micros is an exact amount of money in millionths of a US dollar
// (1 USD = 1,000,000 micros), the unit of every amount in the public
// contract and of the seller's wire format (Money.amount_micros). In JSON it
// is a plain integer; decoding a float (even 20000000.0) fails.
type Micros int64

// MicrosPerDollar is the number of micros in one dollar.
const MicrosPerDollar = 1_000_000

// ErrMoney reports a dollar amount that has no micros value (NaN, infinite
// or out of the int64 range).
var ErrMoney = errors.New("money: not a finite amount within range")

var (
	bigMicrosPerDollar = big.NewRat(MicrosPerDollar, 1)
	bigMaxInt64        = big.NewInt(math.MaxInt64)
	bigMinInt64        = big.NewInt(math.MinInt64)
)

// MicrosFromDollars converts float dollars to micros, rounding half to even
// to the micro. The float is read as its shortest decimal representation
// (the number a person typed, e.g. 0.0000015 and not the binary value just
// below it), so 0.0000005 -> 0, 0.0000015 -> 2 and 16666.665 -> 16666665000
// exactly. It fails on NaN, infinities and amounts outside the int64 range.
// This is the only conversion from dollars in the module; it agrees with the
// seller's round(dollars * 1_000_000) whenever that product is exact.
func MicrosFromDollars(d float64) (Micros, error) {
	if math.IsNaN(d) || math.IsInf(d, 0) {
		return 0, fmt.Errorf("%w: %v", ErrMoney, d)
	}
	if d == 0 {
		return 0, nil
	}
	// Fast path: in range and the shortest decimal has at most 6 fraction
	// digits, so the scaled value is an integer RoundToEven recovers exactly.
	if math.Abs(d) < 1e9 {
		s := strconv.FormatFloat(d, 'f', -1, 64)
		if i := strings.IndexByte(s, '.'); i < 0 || len(s)-i-1 <= 6 {
			return Micros(math.RoundToEven(d * MicrosPerDollar)), nil
		}
	}
	r, ok := new(big.Rat).SetString(strconv.FormatFloat(d, 'g', -1, 64))
	if !ok {
		return 0, fmt.Errorf("%w: %v", ErrMoney, d)
	}
	r.Mul(r, bigMicrosPerDollar)
	n := roundHalfEven(r)
	if n.Cmp(bigMaxInt64) > 0 || n.Cmp(bigMinInt64) < 0 {
		return 0, fmt.Errorf("%w: %v dollars overflow int64 micros", ErrMoney, d)
	}
	return Micros(n.Int64()), nil
}

// roundHalfEven rounds a rational to the nearest integer, ties to even.
func roundHalfEven(r *big.Rat) *big.Int {
	num, den := r.Num(), r.Denom() // den > 0
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	if m.Sign() == 0 {
		return q
	}
	// |2m| vs den decides; QuoRem truncates toward zero.
	twice := new(big.Int).Abs(m)
	twice.Lsh(twice, 1)
	c := twice.Cmp(den)
	if c > 0 || (c == 0 && q.Bit(0) == 1) {
		if num.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q
}

// MustMicros is MicrosFromDollars for constants known to be valid; it
// panics on an invalid amount.
func MustMicros(d float64) Micros {
	m, err := MicrosFromDollars(d)
	if err != nil {
		panic(err)
	}
	return m
}

// Dollars returns the amount in float dollars (micros / 1e6), for display,
// scoring and the reference-shaped dollar fields; never for arithmetic on
// amounts that must stay exact.
func (m Micros) Dollars() float64 { return float64(m) / MicrosPerDollar }

// centsOf returns the absolute amount in whole cents, rounded half to even
// from micros, and whether the amount is negative.
func (m Micros) centsOf() (uint64, bool) {
	neg := m < 0
	a := uint64(m)
	if neg {
		a = -a // two's complement: correct for MinInt64 too
	}
	q, r := a/10_000, a%10_000
	if r > 5_000 || (r == 5_000 && q%2 == 1) {
		q++
	}
	return q, neg && q != 0
}

// Cents formats the amount in dollars with exactly two decimals, rounded
// half to even from the micros: 16666665000 -> "16666.66", -1 -> "0.00",
// -15000 -> "-0.02".
func (m Micros) Cents() string {
	c, neg := m.centsOf()
	s := fmt.Sprintf("%d.%02d", c/100, c%100)
	if neg {
		return "-" + s
	}
	return s
}

// String formats the amount as "$16,666.66" (cents as in Cents, thousands
// separated); negative amounts read "-$1.00".
func (m Micros) String() string {
	c, neg := m.centsOf()
	s := "$" + groupDigits(strconv.FormatUint(c/100, 10)) + fmt.Sprintf(".%02d", c%100)
	if neg {
		return "-" + s
	}
	return s
}

func groupDigits(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// CostMicros is the cost of impressions at a CPM: impressions x cpm / 1000,
// computed exactly in 128-bit integers and rounded up (toward +inf) to the
// micro. This is the booked amount of a deal: the seller books a deal at its
// final_cpm in micros and impressions and never states a cost of its own (the
// reference buyer computes cost = impressions*final_cpm/1000 in floats), so
// the buyer's ledger, plans, events and reports all use this one rule, and
// rounding up means the ledger never under-counts what the seller is owed (the
// excess is below one micro per deal). Results beyond the int64 range
// saturate to math.MaxInt64 / math.MinInt64.
func CostMicros(impressions int64, cpm Micros) Micros {
	neg := (impressions < 0) != (cpm < 0)
	ai, ac := uint64(impressions), uint64(cpm)
	if impressions < 0 {
		ai = -ai
	}
	if cpm < 0 {
		ac = -ac
	}
	hi, lo := bits.Mul64(ai, ac)
	if hi >= 1000 {
		return saturate(neg)
	}
	q, r := bits.Div64(hi, lo, 1000)
	if r != 0 && !neg {
		q++ // ceil of a positive amount
	}
	// a negative amount's ceiling is -floor(|x|): q as is.
	if neg {
		if q > 1<<63 {
			return saturate(true)
		}
		return Micros(-int64(q)) //nolint:gosec // q <= 2^63 checked above
	}
	if q > math.MaxInt64 {
		return saturate(false)
	}
	return Micros(q)
}

func saturate(neg bool) Micros {
	if neg {
		return math.MinInt64
	}
	return math.MaxInt64
}

// UnmarshalJSON accepts only a JSON integer: a float, a string or an
// exponent is an error, so no amount passes through float64.
func (m *Micros) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("money: micros must be a JSON integer, got %.40q", s)
	}
	*m = Micros(n)
	return nil
}
