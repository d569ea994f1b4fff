package identity

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrInvalidContext reports a DealContext or Strategy the rules cannot use
// (negative deal value, unknown deal type, relationship or goal).
var ErrInvalidContext = errors.New("identity: invalid deal context")

// Deal types the strategy understands. Only PG changes the recommendation.
const (
	DealTypePG = "PG" // programmatic guaranteed
	DealTypePD = "PD" // preferred deal (the reference default)
	DealTypePA = "PA" // private auction
)

// Relationship is how well the buyer knows a seller. It feeds the reference
// rules (trusted and established sellers earn one more tier); RelationshipFor
// derives it from registry trust so the two cannot disagree.
type Relationship string

// The four relationships of the reference, from least to most familiar.
const (
	RelationshipUnknown     Relationship = "unknown"
	RelationshipNew         Relationship = "new"
	RelationshipEstablished Relationship = "established"
	RelationshipTrusted     Relationship = "trusted"
)

// Goal is the campaign goal. Performance campaigns reveal one more tier,
// because targeting needs the advertiser's identity to pay off.
type Goal string

// Campaign goals of the reference.
const (
	GoalAwareness   Goal = "awareness"
	GoalPerformance Goal = "performance"
)

// DealContext is what the identity strategy looks at for one deal. Empty
// DealType, Relationship and Goal mean the reference defaults (PD, unknown,
// awareness), so a zero DealContext is a valid small PD deal.
type DealContext struct {
	DealValueUSD float64
	DealType     string // "PG", "PD" or "PA" (case-insensitive)
	Relationship Relationship
	Goal         Goal
}

// Validate rejects what the reference's pydantic model rejects: a negative
// (or non-finite) deal value and values outside the enums.
func (c DealContext) Validate() error {
	if math.IsNaN(c.DealValueUSD) || math.IsInf(c.DealValueUSD, 0) || c.DealValueUSD < 0 {
		return fmt.Errorf("%w: deal value %v must be a finite number >= 0", ErrInvalidContext, c.DealValueUSD)
	}
	switch strings.ToUpper(strings.TrimSpace(c.DealType)) {
	case "", DealTypePG, DealTypePD, DealTypePA:
	default:
		return fmt.Errorf("%w: deal type %q (want PG, PD or PA)", ErrInvalidContext, c.DealType)
	}
	switch c.Relationship {
	case "", RelationshipUnknown, RelationshipNew, RelationshipEstablished, RelationshipTrusted:
	default:
		return fmt.Errorf("%w: relationship %q", ErrInvalidContext, c.Relationship)
	}
	switch c.Goal {
	case "", GoalAwareness, GoalPerformance:
	default:
		return fmt.Errorf("%w: goal %q", ErrInvalidContext, c.Goal)
	}
	return nil
}

func (c DealContext) isPG() bool {
	return strings.EqualFold(strings.TrimSpace(c.DealType), DealTypePG)
}

// Default thresholds of the reference IdentityStrategy, in USD.
const (
	DefaultHighValueUSD = 100_000
	DefaultMidValueUSD  = 25_000
)

// Strategy recommends a tier per deal with the reference's rules. A zero
// threshold means its default, so Strategy{HighValueUSD: 1e6} keeps the mid
// threshold at 25,000 as the reference's keyword arguments would.
type Strategy struct {
	HighValueUSD float64 // at or above: advertiser base tier
	MidValueUSD  float64 // at or above: agency base tier
}

// DefaultStrategy is the reference's IdentityStrategy() (100,000 / 25,000).
func DefaultStrategy() Strategy {
	return Strategy{HighValueUSD: DefaultHighValueUSD, MidValueUSD: DefaultMidValueUSD}
}

func (s Strategy) thresholds() (high, mid float64) {
	high, mid = s.HighValueUSD, s.MidValueUSD
	if high == 0 {
		high = DefaultHighValueUSD
	}
	if mid == 0 {
		mid = DefaultMidValueUSD
	}
	return high, mid
}

// Validate rejects negative or non-finite thresholds, which would make every
// deal look high-value.
func (s Strategy) Validate() error {
	for _, v := range []float64{s.HighValueUSD, s.MidValueUSD} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf("%w: threshold %v must be a finite number >= 0", ErrInvalidContext, v)
		}
	}
	return nil
}

// RecommendTier applies the reference rules exactly: PG → advertiser; else a
// base tier by value (inclusive thresholds; never public), one tier up for a
// trusted or established relationship and one more for a performance goal.
// It never lowers a tier: capping by trust is Decide's job.
func (s Strategy) RecommendTier(c DealContext) Tier {
	t, _ := s.recommend(c)
	return t
}

// recommend returns the tier and the human reason for it.
func (s Strategy) recommend(c DealContext) (Tier, string) {
	if c.isPG() {
		return TierAdvertiser, "PG deal"
	}
	high, mid := s.thresholds()
	// The reason is written into one buffer: one string per seller
	// decided, rather than one per part.
	var t Tier
	var buf [160]byte
	why := append(buf[:0], "deal value "...)
	why = appendMoney(why, c.DealValueUSD)
	switch {
	case c.DealValueUSD >= high:
		t, why = TierAdvertiser, appendMoney(append(why, " >= high threshold "...), high)
	case c.DealValueUSD >= mid:
		t, why = TierAgency, appendMoney(append(why, " >= mid threshold "...), mid)
	default:
		t, why = TierSeat, appendMoney(append(why, " below mid threshold "...), mid)
	}
	if c.Relationship == RelationshipTrusted || c.Relationship == RelationshipEstablished {
		t = upgrade(t)
		why = append(append(append(why, ", +1 for "...), c.Relationship...), " relationship"...)
	}
	if c.Goal == GoalPerformance {
		t = upgrade(t)
		why = append(why, ", +1 for performance goal"...)
	}
	return t, string(why)
}

// appendMoney appends v in dollars ("$12500", "$0.5").
func appendMoney(b []byte, v float64) []byte {
	return strconv.AppendFloat(append(b, '$'), v, 'f', -1, 64)
}

var tiersByRank = [...]Tier{TierPublic, TierSeat, TierAgency, TierAdvertiser}

// upgrade returns the next more revealing tier, capped at advertiser.
func upgrade(t Tier) Tier {
	r := t.Rank() + 1
	if r >= len(tiersByRank) {
		r = len(tiersByRank) - 1
	}
	return tiersByRank[r]
}

// downgrade returns the next less revealing tier, floored at public.
func downgrade(t Tier) Tier {
	r := t.Rank() - 1
	if r < 0 {
		r = 0
	}
	return tiersByRank[r]
}

// BuildIdentity masks full to tier t and returns a new value (full is passed
// by value and never changed). Seat keeps seat_id, seat_name and dsp_platform;
// agency adds the agency fields; advertiser keeps everything. Fields are copied
// as they are, so the result's tier can be lower than t when full lacks them.
// An invalid tier masks to public, so a typo never widens disclosure.
func BuildIdentity(full BuyerIdentity, t Tier) BuyerIdentity {
	var out BuyerIdentity
	r := t.Rank()
	if r >= TierSeat.Rank() {
		out.SeatID, out.SeatName, out.DSPPlatform = full.SeatID, full.SeatName, full.DSPPlatform
	}
	if r >= TierAgency.Rank() {
		out.AgencyID, out.AgencyName, out.AgencyHoldingCompany = full.AgencyID, full.AgencyName, full.AgencyHoldingCompany
	}
	if r >= TierAdvertiser.Rank() {
		out.AdvertiserID, out.AdvertiserName, out.AdvertiserIndustry = full.AdvertiserID, full.AdvertiserName, full.AdvertiserIndustry
	}
	return out
}

// EstimateSavings is what moving from tier cur to tier target saves on base
// CPM: base × (discount(target) − discount(cur)) / 100, or 0 when that is not
// positive (a downgrade never "saves").
func EstimateSavings(base float64, cur, target Tier) float64 {
	s := base * (target.DiscountPct() - cur.DiscountPct()) / 100
	if s > 0 {
		return s
	}
	return 0
}

// HeaderMap is the reference's to_header_dict: one X- header per non-empty
// field. dsp_platform, which the reference lacks, travels as X-DSP-Platform.
// Callers send the masked identity, never the full one.
func HeaderMap(b BuyerIdentity) map[string]string {
	h := map[string]string{}
	for _, f := range []struct{ name, value string }{
		{"X-DSP-Seat-ID", b.SeatID},
		{"X-DSP-Seat-Name", b.SeatName},
		{"X-DSP-Platform", b.DSPPlatform},
		{"X-Agency-ID", b.AgencyID},
		{"X-Agency-Name", b.AgencyName},
		{"X-Agency-Holding-Company", b.AgencyHoldingCompany},
		{"X-Advertiser-ID", b.AdvertiserID},
		{"X-Advertiser-Name", b.AdvertiserName},
		{"X-Advertiser-Industry", b.AdvertiserIndustry},
	} {
		if f.value != "" {
			h[f.name] = f.value
		}
	}
	return h
}
