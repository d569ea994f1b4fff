package market

import (
	"fmt"
	"strings"
)

// Tier is a buyer access tier as the seller-agent understands it.
type Tier string

// The four access tiers, from least to most revealing.
const (
	TierPublic     Tier = "public"
	TierSeat       Tier = "seat"
	TierAgency     Tier = "agency"
	TierAdvertiser Tier = "advertiser"
)

// Rank orders tiers: public 0 < seat 1 < agency 2 < advertiser 3. An unknown
// tier ranks as public, so a typo can never widen disclosure.
func (t Tier) Rank() int {
	switch t {
	case TierSeat:
		return 1
	case TierAgency:
		return 2
	case TierAdvertiser:
		return 3
	default:
		return 0
	}
}

// Valid reports whether t is one of the four tiers.
func (t Tier) Valid() bool {
	switch t {
	case TierPublic, TierSeat, TierAgency, TierAdvertiser:
		return true
	}
	return false
}

// DiscountPct is the seller's default tier discount in percent (0, 5, 10, 15).
func (t Tier) DiscountPct() float64 {
	return []float64{0, 5, 10, 15}[t.Rank()]
}

// CanNegotiate reports whether sellers let this tier negotiate (agency and up).
func (t Tier) CanNegotiate() bool { return t.Rank() >= TierAgency.Rank() }

// MinTier returns the less revealing of a and b.
func MinTier(a, b Tier) Tier {
	if a.Rank() <= b.Rank() {
		return a
	}
	return b
}

// ParseTier parses a tier name case-insensitively.
func ParseTier(s string) (Tier, error) {
	t := Tier(strings.ToLower(strings.TrimSpace(s)))
	if !t.Valid() {
		return TierPublic, fmt.Errorf("market: unknown tier %q", s)
	}
	return t, nil
}

// Trust is a seller's trust level as the buyer sees it, from the registry.
type Trust string

// Trust levels. The seller-side vocabulary's "approved" maps to TrustVerified.
const (
	TrustPreferred  Trust = "preferred"
	TrustVerified   Trust = "verified"
	TrustRegistered Trust = "registered"
	TrustUnknown    Trust = "unknown"
	TrustBlocked    Trust = "blocked"
)

// ParseTrust maps a registry's trust string to a Trust. The seller-agent's
// "approved" is the buyer's "verified"; anything unrecognised is unknown.
func ParseTrust(s string) Trust {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "preferred":
		return TrustPreferred
	case "verified", "approved":
		return TrustVerified
	case "registered":
		return TrustRegistered
	case "blocked":
		return TrustBlocked
	default:
		return TrustUnknown
	}
}

// BuyerIdentity is the buyer's identity, in the seller-agent's wire field names.
// Empty fields are absent.
type BuyerIdentity struct {
	SeatID               string `json:"seat_id,omitempty"`
	SeatName             string `json:"seat_name,omitempty"`
	DSPPlatform          string `json:"dsp_platform,omitempty"`
	AgencyID             string `json:"agency_id,omitempty"`
	AgencyName           string `json:"agency_name,omitempty"`
	AgencyHoldingCompany string `json:"agency_holding_company,omitempty"`
	AdvertiserID         string `json:"advertiser_id,omitempty"`
	AdvertiserName       string `json:"advertiser_name,omitempty"`
	AdvertiserIndustry   string `json:"advertiser_industry,omitempty"`
}

// AccessTier is the tier the reference buyer derives from the identity: the
// highest id present wins (advertiser, then agency, then seat), else public.
func (b BuyerIdentity) AccessTier() Tier {
	switch {
	case b.AdvertiserID != "":
		return TierAdvertiser
	case b.AgencyID != "":
		return TierAgency
	case b.SeatID != "":
		return TierSeat
	default:
		return TierPublic
	}
}

// SellerTier is the tier the seller-agent derives from the same identity: it
// needs agency_id for advertiser (advertiser_id alone is public).
func (b BuyerIdentity) SellerTier() Tier {
	switch {
	case b.AgencyID != "" && b.AdvertiserID != "":
		return TierAdvertiser
	case b.AgencyID != "":
		return TierAgency
	case b.SeatID != "":
		return TierSeat
	default:
		return TierPublic
	}
}

// IsZero reports whether no field is set.
func (b BuyerIdentity) IsZero() bool { return b == BuyerIdentity{} }

// Tiers lists every tier from least to most revealing; the JSON Schemas'
// enums are generated from it.
var Tiers = []Tier{TierPublic, TierSeat, TierAgency, TierAdvertiser}

// Trusts lists every trust level; the JSON Schemas' enums come from it.
var Trusts = []Trust{TrustPreferred, TrustVerified, TrustRegistered, TrustUnknown, TrustBlocked}

// EnumValues lists the values, for the event schemas' enums.
func (Tier) EnumValues() []string { return enumStrings(Tiers) }

// EnumValues lists the values, for the event schemas' enums.
func (Trust) EnumValues() []string { return enumStrings(Trusts) }

func enumStrings[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// Protocol is the API family a seller speaks; it is part of the seller's
// identity and travels with it through every stage.
type Protocol string

// Seller protocol families.
const (
	// ProtocolIAB is the IAB Tech Lab seller-agent API (pkg/sellerclient):
	// media kits, quotes, numeric negotiation, deals with a deal id.
	ProtocolIAB Protocol = "iab-seller-agent"
	// ProtocolADCP is an AdCP 3.1 sales agent over MCP (pkg/sellerclient/adcp):
	// products, pricing options, create_media_buy; no deal id.
	ProtocolADCP Protocol = "adcp"
)

// Protocols lists every protocol; the JSON Schemas' enums come from it.
var Protocols = []Protocol{ProtocolIAB, ProtocolADCP}

// EnumValues lists the values, for the event schemas' enums.
func (Protocol) EnumValues() []string { return enumStrings(Protocols) }

// ParseProtocol maps an input protocol name to a Protocol: empty (and the
// registries' "a2a"/"iab") is the IAB seller-agent API; "adcp" or "mcp" is
// AdCP. ok is false for anything else.
func ParseProtocol(s string) (Protocol, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "iab-seller-agent", "iab", "a2a", "seller-agent":
		return ProtocolIAB, true
	case "adcp", "mcp":
		return ProtocolADCP, true
	}
	return ProtocolIAB, false
}

// Or returns p, or ProtocolIAB when p is empty (events written before the
// field existed are IAB).
func (p Protocol) Or() Protocol {
	if p == "" {
		return ProtocolIAB
	}
	return p
}

// IsADCP reports an AdCP seller.
func (p Protocol) IsADCP() bool { return p == ProtocolADCP }
