// Package identity decides how much of the buyer's identity each seller may see.
//
// The seller prices by access tier (public, seat, agency, advertiser); revealing
// more identity buys a bigger discount but leaks more. The buyer decides a tier
// per seller from the deal context (the reference strategy's rules) and then caps
// it by the seller's trust level, so an untrusted seller never learns more than
// the cap allows.
//
// It is public because pkg/sellerclient's callers need it: a program that
// calls sellers directly with the seller client chooses each seller's tier and
// API key with Decide and Credentials, exactly as the pipeline does. The tier,
// trust and identity types themselves are the shared vocabulary of
// pkg/market (which pkg/events re-exports too) and are aliased here.
package identity

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dealflow/dealflow/pkg/market"
)

// Tier is a buyer access tier as the seller-agent understands it.
type Tier = market.Tier

// The four access tiers, from least to most revealing.
const (
	TierPublic     = market.TierPublic
	TierSeat       = market.TierSeat
	TierAgency     = market.TierAgency
	TierAdvertiser = market.TierAdvertiser
)

// Trust is a seller's trust level as the buyer sees it.
type Trust = market.Trust

// Trust levels. The seller-side vocabulary's "approved" maps to TrustVerified.
const (
	TrustPreferred  = market.TrustPreferred
	TrustVerified   = market.TrustVerified
	TrustRegistered = market.TrustRegistered
	TrustUnknown    = market.TrustUnknown
	TrustBlocked    = market.TrustBlocked
)

// BuyerIdentity is the buyer's identity in the seller-agent's wire field names.
type BuyerIdentity = market.BuyerIdentity

// MinTier returns the less revealing of a and b.
func MinTier(a, b Tier) Tier { return market.MinTier(a, b) }

// ParseTier parses a tier name case-insensitively.
func ParseTier(s string) (Tier, error) { return market.ParseTier(s) }

// ParseTrust maps a registry's trust string to a Trust; see market.ParseTrust.
func ParseTrust(s string) Trust { return market.ParseTrust(s) }

// ErrTrustWord reports a trust word ParseTrustWord does not know.
var ErrTrustWord = errors.New("identity: unknown trust word")

// ParseTrustWord is the strict trust parser for operator input (known-sellers
// files): the same vocabulary as the registry clients (ParseTrust), case-
// insensitive with surrounding space ignored, the seller-side "approved"
// meaning verified, but a word outside preferred, verified, approved,
// registered, unknown and blocked is an error wrapping ErrTrustWord instead
// of silently becoming unknown.
func ParseTrustWord(s string) (Trust, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "preferred", "verified", "approved", "registered", "unknown", "blocked":
		return ParseTrust(s), nil
	}
	return TrustUnknown, fmt.Errorf("%w %q (want preferred, verified, approved, registered, unknown or blocked)", ErrTrustWord, s)
}
