package sellerclient

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/dealflow/dealflow/pkg/market"
)

func TestDollarsToMicrosMatchesPythonRound(t *testing.T) {
	t.Parallel()
	// Expected values computed with Python: round(x * 1_000_000).
	// Inputs are variables so Go does not constant-fold them exactly.
	cases := []struct {
		dollars float64
		micros  int64
	}{
		{20.0, 20000000},
		{29.625, 29625000},
		{26.775, 26775000},
		{23.0, 23000000},
		{24.25, 24250000},
		{31.92, 31920000},
		{22.5, 22500000},
		{19.999999, 19999999},
		{1234567.8912345, 1234567891234},
		{0.0, 0},
		{1e-7, 0},
		{5e-7, 0},   // 0.5 → ties to even → 0
		{1.5e-6, 2}, // 1.5 → 2
		{2.5e-6, 2}, // 2.5 → 2
		{-2.5e-6, -2},
		{29.924999999999997, 29925000},
	}
	for _, c := range cases {
		x := c.dollars
		if got := DollarsToMicros(x); got != c.micros {
			t.Errorf("DollarsToMicros(%v) = %d, want %d", x, got, c.micros)
		}
	}
	a, b := 0.1, 0.2
	if got := DollarsToMicros(a + b); got != 300000 {
		t.Errorf("DollarsToMicros(0.1+0.2) = %d", got)
	}
	// Python's runtime order of operations: 31.5*0.95 = 29.924999999999997.
	base, f := 31.5, 0.95
	if got := DollarsToMicros(base * f); got != 29925000 {
		t.Errorf("DollarsToMicros(31.5*0.95) = %d", got)
	}
	if DollarsToMicros(math.NaN()) != 0 || DollarsToMicros(math.Inf(1)) != math.MaxInt64 || DollarsToMicros(math.Inf(-1)) != math.MinInt64 {
		t.Error("NaN/Inf not saturated")
	}
}

func TestMoneyDollarsAndString(t *testing.T) {
	t.Parallel()
	cases := []struct {
		m       Money
		dollars float64
		str     string
	}{
		{Money{AmountMicros: 23000000, Currency: "USD"}, 23, "USD 23.000000"},
		{Money{AmountMicros: 21380000}, 21.38, "USD 21.380000"},
		{Money{AmountMicros: 1, Currency: "EUR"}, 0.000001, "EUR 0.000001"},
		{Money{AmountMicros: -1500000, Currency: "USD"}, -1.5, "USD -1.500000"},
	}
	for _, c := range cases {
		if got := c.m.Dollars(); got != c.dollars {
			t.Errorf("%+v.Dollars() = %v, want %v", c.m, got, c.dollars)
		}
		if got := c.m.String(); got != c.str {
			t.Errorf("%+v.String() = %q, want %q", c.m, got, c.str)
		}
	}
	if u := USD(29.625); u != (Money{AmountMicros: 29625000, Currency: "USD"}) {
		t.Errorf("USD(29.625) = %+v", u)
	}
}

func TestMoneyJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(Money{AmountMicros: 20000000})
	if err != nil || string(b) != `{"amount_micros":20000000,"currency":"USD"}` {
		t.Fatalf("marshal default currency: %s %v", b, err)
	}
	b, _ = json.Marshal(USD(20.0))
	if string(b) != `{"amount_micros":20000000,"currency":"USD"}` {
		t.Fatalf("marshal USD(20.0) = %s (must be an integer, not 20000000.0)", b)
	}
	cases := []struct {
		in   string
		want Money
		ok   bool
	}{
		{`{"amount_micros":25000000,"currency":"USD"}`, Money{25000000, "USD"}, true},
		{`{"amount_micros":9007199254740991,"currency":"USD"}`, Money{9007199254740991, "USD"}, true},
		{`{"amount_micros":1}`, Money{1, "USD"}, true},
		{`{"amount_micros":-5,"currency":"EUR"}`, Money{-5, "EUR"}, true},
		{`{"amount_micros":20000000.0,"currency":"USD"}`, Money{}, false},
		{`{"amount_micros":22500000.5,"currency":"USD"}`, Money{}, false},
		{`{"amount_micros":2e7,"currency":"USD"}`, Money{}, false},
		{`{"amount_micros":"20000000","currency":"USD"}`, Money{}, false},
		{`{"amount_micros":99999999999999999999}`, Money{}, false},
		{`{"currency":"USD"}`, Money{}, false},
		{`[1]`, Money{}, false},
	}
	for _, c := range cases {
		var m Money
		err := json.Unmarshal([]byte(c.in), &m)
		if c.ok != (err == nil) || (c.ok && m != c.want) {
			t.Errorf("Unmarshal(%s) = %+v, %v; want %+v ok=%v", c.in, m, err, c.want, c.ok)
		}
	}
	var p *Money
	if err := json.Unmarshal([]byte(`null`), &p); err != nil || p != nil {
		t.Fatalf("null *Money: %v %v", p, err)
	}
}

func TestMoneyValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		m  Money
		ok bool
	}{
		{Money{1, "USD"}, true}, {Money{1, ""}, true}, {Money{0, "EUR"}, true},
		{Money{1, "usd"}, false}, {Money{1, "US"}, false}, {Money{-1, "USD"}, false},
	} {
		if err := c.m.validate("x"); (err == nil) != c.ok {
			t.Errorf("validate(%+v) = %v, want ok=%v", c.m, err, c.ok)
		}
	}
}

func TestMoneyAndContractMicros(t *testing.T) {
	cases := []struct {
		dollars float64
		want    market.Micros
	}{
		{19.8, 19_800_000}, {28, 28_000_000}, {0.0000015, 2}, {0, 0}, {-1, 0}, {math.NaN(), 0}, {math.Inf(1), 0}, {1e300, 0},
	}
	for _, c := range cases {
		if got := PriceMicros(c.dollars); got != c.want {
			t.Errorf("PriceMicros(%v) = %d, want %d", c.dollars, got, c.want)
		}
	}
	m := FromMicros(23_000_000)
	if m.AmountMicros != 23_000_000 || m.Currency != "USD" || m.Micros() != 23_000_000 || MicrosOf(&m) != 23_000_000 || MicrosOf(nil) != 0 {
		t.Fatalf("FromMicros/Micros/MicrosOf: %+v", m)
	}
	// USD agrees with the seller's round(x * 1_000_000) on the prices the
	// buyer sends (whole cents), and with the contract's conversion.
	for _, d := range []float64{20, 29.62, 92.39, 0.01, 123456.78} {
		want, _ := market.MicrosFromDollars(d)
		if got := USD(d); got.AmountMicros != DollarsToMicros(d) || got.AmountMicros != int64(want) {
			t.Errorf("USD(%v) = %d, seller %d, contract %d", d, got.AmountMicros, DollarsToMicros(d), want)
		}
	}
}
