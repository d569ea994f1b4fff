package sellerclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/dealflow/dealflow/pkg/market"
)

// Money is the v1 contract's exact amount: integer micros (1,000,000 = one
// currency unit) and an ISO 4217 code. The seller rejects a JSON float in
// amount_micros, even 20000000.0, so amounts never pass through float64 on
// the wire.
type Money struct {
	AmountMicros int64  `json:"amount_micros"`
	Currency     string `json:"currency"`
}

// USD builds a USD Money from float dollars with the contract's conversion,
// market.MicrosFromDollars (half to even to the micro, like the seller's
// round(x * 1_000_000) on every price the buyer sends); amounts it refuses
// (NaN, infinite, out of range) fall back to DollarsToMicros' 0/saturation.
func USD(dollars float64) Money {
	m, err := market.MicrosFromDollars(dollars)
	if err != nil {
		return Money{AmountMicros: DollarsToMicros(dollars), Currency: "USD"}
	}
	return Money{AmountMicros: int64(m), Currency: "USD"}
}

// DollarsToMicros converts float dollars to micros exactly as the seller does,
// Python's round(x * 1_000_000): the product is computed in float64, then
// rounded half to even. NaN maps to 0 and out-of-range values saturate, because
// the function has no error result; callers validate prices before converting.
func DollarsToMicros(dollars float64) int64 {
	if math.IsNaN(dollars) {
		return 0
	}
	v := math.RoundToEven(dollars * 1_000_000)
	if v >= math.MaxInt64 {
		return math.MaxInt64
	}
	if v <= math.MinInt64 {
		return math.MinInt64
	}
	return int64(v)
}

// FromMicros builds a USD Money from the contract's exact amount.
func FromMicros(m market.Micros) Money { return Money{AmountMicros: int64(m), Currency: "USD"} }

// Micros returns the amount as the contract's exact type.
func (m Money) Micros() market.Micros { return market.Micros(m.AmountMicros) }

// MicrosOf is the amount of an optional Money, 0 when absent.
func MicrosOf(m *Money) market.Micros {
	if m == nil {
		return 0
	}
	return m.Micros()
}

// PriceMicros converts a float dollar price from the legacy media-kit
// surfaces (exact_price, floor_price, price range) to micros at the edge,
// with market.MicrosFromDollars (round half to even to the micro). A price
// that is not a finite, non-negative amount reads as 0 (unknown).
func PriceMicros(dollars float64) market.Micros {
	m, err := market.MicrosFromDollars(dollars)
	if err != nil || m < 0 {
		return 0
	}
	return m
}

// Dollars returns the amount in currency units (micros / 1e6), for display and
// comparison with the legacy float surfaces (media kit, /pricing).
func (m Money) Dollars() float64 { return float64(m.AmountMicros) / 1_000_000 }

// String renders "USD 23.000000" style for logs without float rounding.
func (m Money) String() string {
	cur := m.Currency
	if cur == "" {
		cur = "USD"
	}
	sign := ""
	a := m.AmountMicros
	if a < 0 {
		sign = "-"
		if a == math.MinInt64 {
			return fmt.Sprintf("%s -9223372036854.775808", cur)
		}
		a = -a
	}
	return fmt.Sprintf("%s %s%d.%06d", cur, sign, a/1_000_000, a%1_000_000)
}

// MarshalJSON emits the currency as "USD" when unset, because the seller's
// pattern ^[A-Z]{3}$ rejects an empty string while its default is USD.
func (m Money) MarshalJSON() ([]byte, error) {
	type wire Money
	w := wire(m)
	if w.Currency == "" {
		w.Currency = "USD"
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes strictly: amount_micros must be a JSON integer (a
// float, even an integral one, is an error as on the seller); a missing
// currency defaults to USD. It is UnmarshalJSONFrom for encoding/json
// callers.
func (m *Money) UnmarshalJSON(b []byte) error { return jsonv2.Unmarshal(b, m) }

// UnmarshalJSONFrom decodes one Money from dec (null leaves m as it is).
func (m *Money) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() == 'n' {
		_, err := dec.ReadToken()
		return err
	}
	var w struct {
		AmountMicros *int64 `json:"amount_micros"`
		Currency     string `json:"currency"`
	}
	if err := jsonv2.UnmarshalDecode(dec, &w); err != nil {
		return fmt.Errorf("money: %w", err)
	}
	if w.AmountMicros == nil {
		return errors.New("money: amount_micros missing")
	}
	m.AmountMicros = *w.AmountMicros
	m.Currency = "USD"
	if w.Currency != "" {
		m.Currency = w.Currency
	}
	return nil
}

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// validate checks a Money the buyer is about to send.
func (m Money) validate(field string) error {
	if m.Currency != "" && !currencyRE.MatchString(m.Currency) {
		return fmt.Errorf("%s.currency %q must be three upper-case letters", field, m.Currency)
	}
	if m.AmountMicros < 0 {
		return fmt.Errorf("%s.amount_micros must not be negative", field)
	}
	return nil
}
