package portfolio

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// Money is exact: an impression's cost is CPM micros / 1000, so the cost of a
// line in nano-dollars is impressions × CPM micros, an integer. Sums of those
// need up to ~10^32, hence 128 bits.

type u128 struct{ hi, lo uint64 }

func mul64(a, b uint64) u128 {
	hi, lo := bits.Mul64(a, b)
	return u128{hi, lo}
}

func (a u128) add(b u128) u128 {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	hi, _ := bits.Add64(a.hi, b.hi, c)
	return u128{hi, lo}
}

// sub returns a-b, or zero when b > a.
func (a u128) sub(b u128) u128 {
	if a.cmp(b) <= 0 {
		return u128{}
	}
	lo, br := bits.Sub64(a.lo, b.lo, 0)
	hi, _ := bits.Sub64(a.hi, b.hi, br)
	return u128{hi, lo}
}

func (a u128) cmp(b u128) int {
	switch {
	case a.hi < b.hi:
		return -1
	case a.hi > b.hi:
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

func (a u128) isZero() bool { return a.hi == 0 && a.lo == 0 }

func (a u128) float() float64 { return float64(a.hi)*0x1p64 + float64(a.lo) }

// fromFloat converts a non-negative float, rounding up to stay on the safe
// side of a limit.
func fromFloat(f float64) u128 {
	if f <= 0 {
		return u128{}
	}
	hi := math.Floor(f / 0x1p64)
	lo := math.Ceil(f - hi*0x1p64)
	if lo >= 0x1p64 {
		return u128{uint64(hi) + 1, 0}
	}
	return u128{uint64(hi), uint64(lo)}
}

// ceilDiv returns ceil(a/d) saturated to MaxInt64.
func (a u128) ceilDiv(d uint64) int64 {
	if a.hi >= d {
		return math.MaxInt64
	}
	q, r := bits.Div64(a.hi, a.lo, d)
	if r > 0 {
		q++
	}
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

// floorDiv returns floor(a/d) saturated to MaxInt64.
func (a u128) floorDiv(d uint64) int64 {
	if a.hi >= d {
		return math.MaxInt64
	}
	q, _ := bits.Div64(a.hi, a.lo, d)
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

func lineNano(imps, cpmMicros int64) u128 { return mul64(uint64(imps), uint64(cpmMicros)) }

// microsNano converts a micro-dollar amount to nano-dollars.
func microsNano(m int64) u128 { return mul64(uint64(m), 1000) }

// money formats dollars as "$15,000.00".
func money(d float64) string {
	neg := d < 0
	c := int64(math.Round(math.Abs(d) * 100))
	s := groupInt(c/100) + "." + fmt.Sprintf("%02d", c%100)
	if neg {
		return "-$" + s
	}
	return "$" + s
}

// moneyFloor formats a limit rounded down to the cent, so a cap never reads
// higher than it is.
func moneyFloor(d float64) string { return money(math.Floor(d*100+1e-7) / 100) }

// groupInt formats 1234567 as "1,234,567".
func groupInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func pct(share float64) string {
	return strconv.FormatFloat(math.Round(share*10000)/100, 'f', -1, 64) + "%"
}
