package sandbox

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/dealflow/dealflow/pkg/identity"
)

// apiKey is a minted key as the seller stores it.
type apiKey struct {
	id       string // key-<8hex>
	role     string // buyer | operator
	identity identity.BuyerIdentity
	revoked  bool
}

// fixtureIdentities are the §8 fixture identities used when a seller config
// names none.
func fixtureIdentities() map[string]identity.BuyerIdentity {
	return map[string]identity.BuyerIdentity{
		"seat":       {SeatID: "seat-1", SeatName: "Sandbox DSP Seat", DSPPlatform: "ttd"},
		"agency":     {SeatID: "seat-1", SeatName: "Sandbox DSP Seat", DSPPlatform: "ttd", AgencyID: "agency-1", AgencyName: "Sandbox Agency"},
		"advertiser": {SeatID: "seat-1", SeatName: "Sandbox DSP Seat", DSPPlatform: "ttd", AgencyID: "agency-1", AgencyName: "Sandbox Agency", AdvertiserID: "adv-1", AdvertiserName: "Sandbox Advertiser"},
	}
}

// mintKey derives a stable ask_live_ key (43 url-safe chars) for a seller and
// role, so a demo can be restarted without re-configuring the buyer.
func mintKey(seller, role string) string {
	sum := sha256.Sum256([]byte("dealflow-sandbox/" + seller + "/" + role))
	return "ask_live_" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// keyID is the key's public id ("key-<8hex>"), as in revocation messages.
func keyID(key string) string { return "key-" + shortHash(key, 8) }

// extractKey reads the API key: X-Api-Key first, else Authorization: Bearer
// (scheme case-insensitive; other schemes are anonymous).
func extractKey(r *http.Request) string {
	if k := strings.TrimSpace(r.Header.Get("X-Api-Key")); k != "" {
		return k
	}
	auth := strings.TrimSpace(r.Header.Get("Authorization"))
	scheme, rest, ok := strings.Cut(auth, " ")
	if ok && strings.EqualFold(scheme, "bearer") {
		return strings.TrimSpace(rest)
	}
	return ""
}

// authOptional is the seller's optional-key dependency: no key → anonymous
// (nil, true); unknown/revoked key → 401 written, ok false.
func (s *Seller) authOptional(w http.ResponseWriter, r *http.Request) (*apiKey, bool) {
	k := extractKey(r)
	if k == "" {
		return nil, true
	}
	rec, found := s.keys[k]
	if !found {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeDetail(w, http.StatusUnauthorized, "Invalid API key")
		return nil, false
	}
	if rec.revoked {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeDetail(w, http.StatusUnauthorized, "API key "+rec.id+" has been revoked")
		return nil, false
	}
	return rec, true
}

// authOperator is the operator-required dependency: none → 401, buyer key → 403.
func (s *Seller) authOperator(w http.ResponseWriter, r *http.Request) bool {
	if extractKey(r) == "" {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeDetail(w, http.StatusUnauthorized, "Authentication required")
		return false
	}
	rec, ok := s.authOptional(w, r)
	if !ok {
		return false
	}
	if rec.role != "operator" {
		writeDetail(w, http.StatusForbidden, "Operator credential required")
		return false
	}
	return true
}

// buyerCtx is the seller's BuyerContext.
type buyerCtx struct {
	identity      identity.BuyerIdentity
	authenticated bool
	ceiling       *identity.Tier
}

// tier is effective_tier: public unless authenticated, else the identity's
// tier capped by the ceiling.
func (c buyerCtx) tier() identity.Tier {
	if !c.authenticated {
		return identity.TierPublic
	}
	t := c.identity.SellerTier()
	if c.ceiling != nil {
		t = identity.MinTier(t, *c.ceiling)
	}
	return t
}

// pricingKey scopes idempotency keys per buyer.
func (c buyerCtx) pricingKey() string { return scopeOf(c.identity) }

func scopeOf(id identity.BuyerIdentity) string {
	switch {
	case id.AdvertiserID != "":
		return "advertiser:" + id.AdvertiserID
	case id.AgencyID != "":
		return "agency:" + id.AgencyID
	case id.SeatID != "":
		return "seat:" + id.SeatID
	}
	return "public"
}

// unverifiedCtx is _build_buyer_context (media-kit reads): the key identity
// when a key is present, else the claimed ids plus the claimed tier string.
func unverifiedCtx(key *apiKey, claimedTier string, body identity.BuyerIdentity) buyerCtx {
	if key != nil {
		return buyerCtx{identity: key.identity, authenticated: true}
	}
	t, err := identity.ParseTier(claimedTier)
	if err != nil {
		t = identity.TierPublic
	}
	return buyerCtx{identity: body, authenticated: t != identity.TierPublic}
}

// claimedTier is the tier string the seller derives from body identity before
// verification (advertiser_id → advertiser, agency_id → agency, seat_id → seat).
func claimedTier(id identity.BuyerIdentity) string {
	switch {
	case id.AdvertiserID != "":
		return "advertiser"
	case id.AgencyID != "":
		return "agency"
	case id.SeatID != "":
		return "seat"
	}
	return "public"
}

// verifiedCtx is _verified_buyer_context. ok is false when a blocked agent
// was rejected (403 written).
func (s *Seller) verifiedCtx(w http.ResponseWriter, key *apiKey, body identity.BuyerIdentity, agentURL string) (buyerCtx, bool) {
	ctx := unverifiedCtx(key, claimedTier(body), body)
	public := identity.TierPublic
	switch {
	case agentURL != "":
		trust := s.cfg.AgentTrust[agentURL]
		if trust == "" {
			trust = s.cfg.AgentTrust[strings.TrimRight(agentURL, "/")]
		}
		var ceil identity.Tier
		switch strings.ToLower(trust) {
		case "blocked":
			writeDetail(w, http.StatusForbidden, "Agent is blocked. Contact the seller operator for access.")
			return buyerCtx{}, false
		case "approved", "verified", "preferred":
			ceil = identity.TierAdvertiser
		case "registered":
			ceil = identity.TierSeat
		default:
			ceil = identity.TierPublic
		}
		ctx.ceiling = &ceil
	case key == nil:
		ctx.ceiling = &public
	}
	return ctx, true
}
