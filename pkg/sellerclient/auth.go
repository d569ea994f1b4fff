package sellerclient

import (
	"fmt"

	"github.com/dealflow/dealflow/pkg/identity"
)

// AuthFor returns the credential that reveals exactly tier to a seller: no
// key for public, else the key held for that seller and tier. A missing key
// is an error, never a silent upgrade or downgrade (the discoverer only
// decides tiers it holds keys for).
func AuthFor(c *identity.Credentials, sellerURL string, tier identity.Tier) (Auth, error) {
	if tier == identity.TierPublic || tier == "" {
		return Auth{}, nil
	}
	key, ok := c.Key(sellerURL, tier)
	if !ok {
		return Auth{}, fmt.Errorf("no %s credential for %s", tier, sellerURL)
	}
	return Auth{APIKey: key}, nil
}
