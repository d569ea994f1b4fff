package identity

import (
	"errors"
	"fmt"
)

// ErrBlocked is returned for a blocked seller: it is never contacted, so no
// tier (not even public) is decided for it.
var ErrBlocked = errors.New("identity: seller is blocked")

// CapTable is the most revealing tier each trust level may see (decision 2).
// It is configuration; a trust level missing from the table gets the unknown
// level's cap, or public if that is missing too. Blocked is never looked up.
type CapTable map[Trust]Tier

// DefaultCaps is the guide's table: preferred → advertiser, verified → agency,
// registered → seat, unknown → public (blocked: never contacted).
func DefaultCaps() CapTable {
	return CapTable{
		TrustPreferred:  TierAdvertiser,
		TrustVerified:   TierAgency,
		TrustRegistered: TierSeat,
		TrustUnknown:    TierPublic,
	}
}

// Cap returns the cap for trust, or ErrBlocked. Invalid tiers in the table
// count as public, so a configuration typo narrows disclosure, never widens it.
func (c CapTable) Cap(trust Trust) (Tier, error) {
	if trust == TrustBlocked {
		return TierPublic, ErrBlocked
	}
	t, ok := c[trust]
	if !ok {
		t = c[TrustUnknown]
	}
	if !t.Valid() {
		t = TierPublic
	}
	return t, nil
}

// RelationshipFor maps registry trust to the reference's seller relationship
// (preferred → trusted, verified → established, registered → new, anything
// else → unknown), which the reference never connected.
func RelationshipFor(t Trust) Relationship {
	switch t {
	case TrustPreferred:
		return RelationshipTrusted
	case TrustVerified:
		return RelationshipEstablished
	case TrustRegistered:
		return RelationshipNew
	default:
		return RelationshipUnknown
	}
}

// Decision is the disclosure decided for one seller and deal.
type Decision struct {
	Tier        Tier          // the tier to reveal: key choice and body identity
	Recommended Tier          // what the deal context alone recommends
	Cap         Tier          // the trust cap for the seller
	Identity    BuyerIdentity // the full identity masked to Tier
	Reason      string        // a human sentence explaining Tier
}

// Decide picks the tier to reveal to one seller: the strategy's recommendation
// capped by trust, then lowered while no credential exists for the tier
// (available(t) false; public needs none) or while the masked identity would
// not be seen by the seller as that tier. It returns ErrBlocked for a blocked
// seller and wraps ErrInvalidContext for a bad context.
//
// An empty ctx.Relationship is derived from trust with RelationshipFor. A nil
// available means every tier has a credential (e.g. a seller that prices by
// body identity).
func Decide(s Strategy, caps CapTable, full BuyerIdentity, trust Trust, ctx DealContext, available func(Tier) bool) (Decision, error) {
	capTier, err := caps.Cap(trust)
	if err != nil {
		return Decision{}, err
	}
	if err := s.Validate(); err != nil {
		return Decision{}, err
	}
	if err := ctx.Validate(); err != nil {
		return Decision{}, err
	}
	if ctx.Relationship == "" {
		ctx.Relationship = RelationshipFor(trust)
	}
	rec, why := s.recommend(ctx)
	d := Decision{Recommended: rec, Cap: capTier}
	t := MinTier(rec, capTier)
	how, tier, by := "; within the ", capTier, " cap for " // one string, not one per part
	if t != rec {
		how, tier, by = "; capped to ", t, " by "
	}
	reason := "recommended " + string(rec) + " (" + why + ")" + how + string(tier) + by + trustName(trust) + " trust"
	for t != TierPublic {
		if available != nil && !available(t) {
			lower := downgrade(t)
			reason += fmt.Sprintf("; lowered to %s: no %s credential for this seller", lower, t)
			t = lower
			continue
		}
		if got := BuildIdentity(full, t).SellerTier(); got != t {
			lower := downgrade(t)
			reason += fmt.Sprintf("; lowered to %s: the buyer identity does not support %s (seller would see %s)", lower, t, got)
			t = lower
			continue
		}
		break
	}
	d.Tier = t
	d.Identity = BuildIdentity(full, t)
	d.Reason = reason
	return d, nil
}

func trustName(t Trust) string {
	if t == "" {
		return string(TrustUnknown)
	}
	return string(t)
}
