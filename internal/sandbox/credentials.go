package sandbox

import "github.com/dealflow/dealflow/pkg/identity"

// Credentials returns the buyer's credentials store for this market: every
// seller's API key per tier, as an operator's credentials file would hold
// them.
func (m *Market) Credentials() *identity.Credentials {
	creds, _ := identity.ParseCredentials([]byte(`{}`))
	for _, s := range m.Sellers {
		for tier, key := range s.Keys {
			if t, err := identity.ParseTier(tier); err == nil && t != identity.TierPublic {
				creds.Set(s.URL, t, key)
			}
		}
	}
	return creds
}
