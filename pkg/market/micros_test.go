package market

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
)

func TestMicrosFromDollars(t *testing.T) {
	cases := []struct {
		in      float64
		want    Micros
		wantErr bool
	}{
		{0, 0, false},
		{1, 1_000_000, false},
		{16666.66, 16_666_660_000, false},
		{16666.665, 16_666_665_000, false},
		{0.0000005, 0, false},   // tie to even (0)
		{0.0000015, 2, false},   // tie to even (2)
		{0.0000025, 2, false},   // tie to even (2)
		{0.0000035, 4, false},   // tie to even (4)
		{-0.0000015, -2, false}, // negative tie
		{-0.0000025, -2, false}, // negative tie
		{0.29, 290_000, false},  // 0.29*1e6 = 289999.99999999994 in float
		{92.39999999999999, 92_400_000, false},
		{2.5185185185185186, 2_518_519, false},
		{0.1234564, 123_456, false},
		{0.1234566, 123_457, false},
		{-12.5, -12_500_000, false},
		{9_223_372_036_854.775, 9_223_372_036_854_775_000, false}, // shortest repr is in range
		{9.3e12, 0, true},
		{-9.3e12, 0, true},
		{math.NaN(), 0, true},
		{math.Inf(1), 0, true},
		{math.Inf(-1), 0, true},
		{1e300, 0, true},
		{5e-324, 0, false},
	}
	for _, c := range cases {
		got, err := MicrosFromDollars(c.in)
		if (err != nil) != c.wantErr || (err != nil && !errors.Is(err, ErrMoney)) {
			t.Errorf("MicrosFromDollars(%v) err = %v, want error %v", c.in, err, c.wantErr)
			continue
		}
		if err == nil && got != c.want {
			t.Errorf("MicrosFromDollars(%v) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestMicrosRoundTrip(t *testing.T) {
	for _, m := range []Micros{0, 1, 5, 999_999, 1_000_001, 16_666_665_000, 123_456_789_012_345, -42, 1 << 52} {
		got, err := MicrosFromDollars(m.Dollars())
		if err != nil || got != m {
			t.Errorf("round trip %d -> %v -> %d (%v)", m, m.Dollars(), got, err)
		}
	}
}

func TestMicrosDollars(t *testing.T) {
	cases := []struct {
		in   Micros
		want float64
	}{{0, 0}, {1, 0.000001}, {16_666_660_000, 16666.66}, {-2_500_000, -2.5}}
	for _, c := range cases {
		if got := c.in.Dollars(); got != c.want {
			t.Errorf("%d.Dollars() = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestMicrosCentsAndString(t *testing.T) {
	cases := []struct {
		in    Micros
		cents string
		str   string
	}{
		{0, "0.00", "$0.00"},
		{1, "0.00", "$0.00"},
		{4_999, "0.00", "$0.00"},
		{5_000, "0.00", "$0.00"},  // tie: 0 is even
		{15_000, "0.02", "$0.02"}, // tie: 1 is odd -> 2
		{25_000, "0.02", "$0.02"}, // tie: 2 is even
		{5_001, "0.01", "$0.01"},
		{16_666_660_000, "16666.66", "$16,666.66"},
		{16_666_665_000, "16666.66", "$16,666.66"}, // tie to even
		{16_666_675_000, "16666.68", "$16,666.68"}, // tie to even
		{16_666_665_001, "16666.67", "$16,666.67"},
		{49_999_988_710, "49999.99", "$49,999.99"},
		{1_234_567_890_000_000, "1234567890.00", "$1,234,567,890.00"},
		{-1, "0.00", "$0.00"},
		{-15_000, "-0.02", "-$0.02"},
		{-1_000_000, "-1.00", "-$1.00"},
		{math.MaxInt64, "9223372036854.78", "$9,223,372,036,854.78"},
		{math.MinInt64, "-9223372036854.78", "-$9,223,372,036,854.78"},
	}
	for _, c := range cases {
		if got := c.in.Cents(); got != c.cents {
			t.Errorf("%d.Cents() = %q, want %q", int64(c.in), got, c.cents)
		}
		if got := c.in.String(); got != c.str {
			t.Errorf("%d.String() = %q, want %q", int64(c.in), got, c.str)
		}
	}
}

func TestCostMicros(t *testing.T) {
	cases := []struct {
		imps int64
		cpm  Micros
		want Micros
	}{
		{0, 20_000_000, 0},
		{1000, 20_000_000, 20_000_000},
		{1, 20_000_000, 20_000},
		{1, 1, 1},    // 0.001 micro rounds up
		{1, 999, 1},  // 0.999 micro rounds up
		{1, 1000, 1}, // exact
		{1, 1001, 2}, // 1.001 rounds up
		{3, 333, 1},  // 0.999
		{793_650, 21_000_000, 16_666_650_000},
		{793_651, 21_000_000, 16_666_671_000},
		{2_016_129, 24_800_000, 49_999_999_200},
		{-1, 1001, -1}, // ceil of -1.001
		{1, -1001, -1}, // ceil of -1.001
		{-1, -1001, 2}, // ceil of +1.001
		{math.MaxInt64, math.MaxInt64, math.MaxInt64},  // saturates
		{math.MaxInt64, -math.MaxInt64, math.MinInt64}, // saturates
		{math.MaxInt64, 1000, math.MaxInt64},           // exact, fits
		{math.MaxInt64, 1001, math.MaxInt64},           // saturates
		{1 << 40, 1 << 30, 1_180_591_620_717_411_304},
	}
	for _, c := range cases {
		if got := CostMicros(c.imps, c.cpm); got != c.want {
			t.Errorf("CostMicros(%d, %d) = %d, want %d", c.imps, c.cpm, got, c.want)
		}
	}
}

func TestMicrosJSON(t *testing.T) {
	var v struct {
		M Micros `json:"m"`
	}
	b, err := json.Marshal(struct {
		M Micros `json:"m"`
	}{16_666_660_000})
	if err != nil || string(b) != `{"m":16666660000}` {
		t.Fatalf("marshal = %s, %v", b, err)
	}
	if err := json.Unmarshal([]byte(`{"m":-42}`), &v); err != nil || v.M != -42 {
		t.Fatalf("unmarshal int = %d, %v", v.M, err)
	}
	for _, bad := range []string{`{"m":20000000.0}`, `{"m":1.5}`, `{"m":1e6}`, `{"m":"5"}`, `{"m":99999999999999999999}`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("unmarshal %s: no error", bad)
		}
	}
}
