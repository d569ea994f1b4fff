package events

import "github.com/dealflow/dealflow/pkg/market"

// The contract's vocabulary lives in pkg/market, which imports only the
// standard library, so that the seller client can use it without the
// contract's dependencies; these aliases keep it part of the contract.

// Micros is an exact amount of money in millionths of a US dollar; see
// market.Micros.
type Micros = market.Micros

// MicrosPerDollar is the number of micros in one dollar.
const MicrosPerDollar = market.MicrosPerDollar

// ErrMoney reports a dollar amount that has no micros value (NaN, infinite
// or out of the int64 range).
var ErrMoney = market.ErrMoney

// MicrosFromDollars converts float dollars to micros, rounding half to even
// to the micro; see market.MicrosFromDollars.
func MicrosFromDollars(d float64) (Micros, error) { return market.MicrosFromDollars(d) }

// MustMicros is MicrosFromDollars for constants known to be valid; it
// panics on an invalid amount.
func MustMicros(d float64) Micros { return market.MustMicros(d) }

// CostMicros is the cost of impressions at a CPM, rounded up to the micro;
// see market.CostMicros.
func CostMicros(impressions int64, cpm Micros) Micros { return market.CostMicros(impressions, cpm) }

// Tier is a buyer access tier as the seller-agent understands it.
type Tier = market.Tier

// The four access tiers, from least to most revealing.
const (
	TierPublic     = market.TierPublic
	TierSeat       = market.TierSeat
	TierAgency     = market.TierAgency
	TierAdvertiser = market.TierAdvertiser
)

// Tiers lists every tier from least to most revealing; the JSON Schemas'
// enums are generated from it.
var Tiers = market.Tiers

// MinTier returns the less revealing of a and b.
func MinTier(a, b Tier) Tier { return market.MinTier(a, b) }

// ParseTier parses a tier name case-insensitively.
func ParseTier(s string) (Tier, error) { return market.ParseTier(s) }

// Trust is a seller's trust level as the buyer sees it, from the registry.
type Trust = market.Trust

// Trust levels. The seller-side vocabulary's "approved" maps to TrustVerified.
const (
	TrustPreferred  = market.TrustPreferred
	TrustVerified   = market.TrustVerified
	TrustRegistered = market.TrustRegistered
	TrustUnknown    = market.TrustUnknown
	TrustBlocked    = market.TrustBlocked
)

// Trusts lists every trust level; the JSON Schemas' enums come from it.
var Trusts = market.Trusts

// ParseTrust maps a registry's trust string to a Trust; see
// market.ParseTrust.
func ParseTrust(s string) Trust { return market.ParseTrust(s) }

// BuyerIdentity is the buyer's identity, in the seller-agent's wire field
// names.
type BuyerIdentity = market.BuyerIdentity

// Protocol is the API family a seller speaks; it is part of the seller's
// identity and travels with it through every stage.
type Protocol = market.Protocol

// Seller protocol families.
const (
	ProtocolIAB  = market.ProtocolIAB
	ProtocolADCP = market.ProtocolADCP
)

// Protocols lists every protocol; the JSON Schemas' enums come from it.
var Protocols = market.Protocols

// ParseProtocol maps an input protocol name to a Protocol; see
// market.ParseProtocol.
func ParseProtocol(s string) (Protocol, bool) { return market.ParseProtocol(s) }
