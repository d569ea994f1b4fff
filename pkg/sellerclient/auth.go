package sellerclient

import (
	"fmt"

	"github.com/dealflow/dealflow/pkg/market"
)

// KeySource holds seller API keys per seller URL and tier;
// *identity.Credentials implements it. Key must never return a key of
// another tier than t.
type KeySource interface {
	Key(sellerURL string, t market.Tier) (string, bool)
}

// AuthFor returns the credential that reveals exactly tier to a seller: no
// key for public, else the key held for that seller and tier. A missing key
// is an error, never a silent upgrade or downgrade (the discoverer only
// decides tiers it holds keys for). A nil c holds no keys.
func AuthFor(c KeySource, sellerURL string, tier market.Tier) (Auth, error) {
	if tier == market.TierPublic || tier == "" {
		return Auth{}, nil
	}
	var key string
	ok := false
	if c != nil {
		key, ok = c.Key(sellerURL, tier)
	}
	if !ok {
		return Auth{}, fmt.Errorf("no %s credential for %s", tier, sellerURL)
	}
	return Auth{APIKey: key}, nil
}
