package sandbox

import (
	"encoding/json"

	"github.com/dealflow/dealflow/pkg/identity"
)

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
	for _, s := range m.ADCPSellers {
		creds.SetADCP(s.URL, s.Token, s.AccountID, s.BrandDomain)
	}
	return creds
}

// CredentialsFile is the market's keys in the credentials-file format that
// `dealflow run --credentials` reads:
// {"sellers":{"<url>":{"seat":"..","agency":"..","advertiser":".."}}}.
func (m *Market) CredentialsFile() []byte {
	doc := struct {
		Sellers map[string]map[string]string `json:"sellers"`
	}{Sellers: map[string]map[string]string{}}
	for _, s := range m.Sellers {
		keys := map[string]string{}
		for tier, key := range s.Keys {
			if t, err := identity.ParseTier(tier); err == nil && t != identity.TierPublic {
				keys[tier] = key
			}
		}
		if len(keys) > 0 {
			doc.Sellers[s.URL] = keys
		}
	}
	for _, s := range m.ADCPSellers {
		doc.Sellers[s.URL] = map[string]string{identity.FieldBearerToken: s.Token, identity.FieldAccount: s.AccountID, identity.FieldBrand: s.BrandDomain}
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return append(b, '\n')
}
