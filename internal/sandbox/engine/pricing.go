package engine

import (
	"strings"

	"github.com/dealflow/dealflow/pkg/identity"
)

// GlobalFloorCPM is the seller's default global floor (no price goes below it).
const GlobalFloorCPM = 1.0

// defaultMaxNegotiationDiscount is is_price_acceptable's default tolerance
// below the product floor for negotiating tiers (no rules configured).
const defaultMaxNegotiationDiscount = 0.10

// TierConfig is one row of the seller's default tier table (§1.4).
type TierConfig struct {
	ShowExactPrice         bool
	TierDiscount           float64 // fraction, e.g. 0.10
	NegotiationEnabled     bool
	VolumeDiscountsEnabled bool
	RangeVariance          float64 // ±fraction used for the public range
}

// TierConfigFor returns the seller's default configuration for a tier. An
// unknown tier gets the public row, as the seller does.
func TierConfigFor(t identity.Tier) TierConfig {
	switch t {
	case identity.TierSeat:
		return TierConfig{ShowExactPrice: true, TierDiscount: 0.05, RangeVariance: 0.20}
	case identity.TierAgency:
		return TierConfig{ShowExactPrice: true, TierDiscount: 0.10, NegotiationEnabled: true, VolumeDiscountsEnabled: true, RangeVariance: 0.20}
	case identity.TierAdvertiser:
		return TierConfig{ShowExactPrice: true, TierDiscount: 0.15, NegotiationEnabled: true, VolumeDiscountsEnabled: true, RangeVariance: 0.20}
	default:
		return TierConfig{RangeVariance: 0.20}
	}
}

// VolumeDiscount is the seller's default volume ladder (no rules configured):
// 5% from 5M, 10% from 10M, 15% from 20M, 20% from 50M impressions.
func VolumeDiscount(volume int64) float64 {
	switch {
	case volume >= 50_000_000:
		return 0.20
	case volume >= 20_000_000:
		return 0.15
	case volume >= 10_000_000:
		return 0.10
	case volume >= 5_000_000:
		return 0.05
	default:
		return 0
	}
}

// PriceResult is the seller's PricingDecision for one calculation.
type PriceResult struct {
	Tier           identity.Tier
	BasePrice      float64 // the base the calculation started from
	TierDiscount   float64 // fraction
	VolumeDiscount float64 // fraction
	RawPrice       float64 // unrounded price after discounts and global floor
	FinalPrice     float64 // round(RawPrice, 2)
	Rationale      string
}

// TierDiscountPct is the quote's tier_discount_pct: round(td*100, 1).
func (p PriceResult) TierDiscountPct() float64 { return PyRound(float64(p.TierDiscount*100), 1) }

// VolumeDiscountPct is the quote's volume_discount_pct: round(vd*100, 1).
func (p PriceResult) VolumeDiscountPct() float64 { return PyRound(float64(p.VolumeDiscount*100), 1) }

// Price runs PricingRulesEngine.calculate_price with the default config
// (no rules): tier discount, then the volume ladder for tiers that have volume
// discounts, then the global floor, then Python rounding. The product floor is
// deliberately NOT applied, as in the seller.
func Price(base float64, tier identity.Tier, volume int64) PriceResult {
	if !tier.Valid() {
		tier = identity.TierPublic
	}
	tc := TierConfigFor(tier)
	price := base
	td := tc.TierDiscount
	if td > 0 {
		price = float64(price * float64(1-td))
	}
	vd := 0.0
	if tc.VolumeDiscountsEnabled && volume > 0 {
		vd = VolumeDiscount(volume)
		if vd > 0 {
			price = float64(price * float64(1-vd))
		}
	}
	if price < GlobalFloorCPM {
		price = GlobalFloorCPM
	}
	return PriceResult{
		Tier:           tier,
		BasePrice:      base,
		TierDiscount:   td,
		VolumeDiscount: vd,
		RawPrice:       price,
		FinalPrice:     Round2(price),
		Rationale:      rationale(base, price, tier, td, vd),
	}
}

// rationale mirrors _build_rationale: it formats the UNROUNDED final price.
func rationale(base, final float64, tier identity.Tier, td, vd float64) string {
	parts := []string{"Base price: $" + Fmt2(base) + " CPM"}
	if td > 0 {
		parts = append(parts, titleCase(string(tier))+" tier: -"+Fmt0(float64(td*100))+"%")
	}
	if vd > 0 {
		parts = append(parts, "Volume discount: -"+Fmt1(float64(vd*100))+"%")
	}
	total := 0.0
	if base > 0 {
		total = 1 - float64(final/base)
	}
	parts = append(parts, "Final price: $"+Fmt2(final)+" CPM")
	if total > 0 {
		parts = append(parts, "(Total savings: "+Fmt1(float64(total*100))+"%)")
	}
	return strings.Join(parts, " | ")
}

// titleCase is Python's str.title() for the single-word tier names.
func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + strings.ToLower(s[1:])
}

// PriceRange is the public range string "$%.0f-$%.0f CPM" % (base*0.8, base*1.2).
func PriceRange(base float64) string {
	v := TierConfigFor(identity.TierPublic).RangeVariance
	low := float64(base * float64(1-v))
	high := float64(base * float64(1+v))
	return "$" + Fmt0(low) + "-$" + Fmt0(high) + " CPM"
}

// ExactPrice is get_price_display's exact price: round(base*(1-td), 2).
func ExactPrice(base float64, tier identity.Tier) float64 {
	td := TierConfigFor(tier).TierDiscount
	return Round2(float64(base * float64(1-td)))
}

// PriceDisplay is get_price_display's result: an exact price for tiers that
// see exact prices, else the public range.
type PriceDisplay struct {
	Exact   bool
	Price   float64 // exact tiers only
	Display string  // "$33 CPM" for exact tiers, "$28-$42 CPM" for the range
}

// DisplayFor returns the tier-appropriate price display for a base price.
func DisplayFor(base float64, tier identity.Tier) PriceDisplay {
	tc := TierConfigFor(tier)
	if tc.ShowExactPrice {
		p := ExactPrice(base, tier)
		return PriceDisplay{Exact: true, Price: p, Display: "$" + Fmt0(p) + " CPM"}
	}
	return PriceDisplay{Display: PriceRange(base)}
}

// IsPriceAcceptable is is_price_acceptable with the default config: below the
// global floor or the product floor is unacceptable; negotiating tiers may
// also not go below floor*(1-0.10), which is always lower than the floor.
func IsPriceAcceptable(offer, productFloor float64, tier identity.Tier) bool {
	if offer < GlobalFloorCPM {
		return false
	}
	if offer < productFloor {
		return false
	}
	if TierConfigFor(tier).NegotiationEnabled {
		minAcceptable := float64(productFloor * float64(1-defaultMaxNegotiationDiscount))
		if offer < minAcceptable {
			return false
		}
	}
	return true
}
