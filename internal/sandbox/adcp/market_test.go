package adcp

import (
	"testing"

	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// TestDefaultMarketADCPSellers: the default market runs its two AdCP sales
// agents; the simple registry lists them with protocol adcp and their MCP
// endpoint beside the IAB sellers, the AAO listing lists only them (with
// compliance), the market's credentials hold their token, account and
// brand, and the summary names every seller's protocol.
func TestDefaultMarketADCPSellers(t *testing.T) {
	m, err := sandbox.Start(t.Context(), sandbox.DefaultMarket())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if len(m.ADCPSellers) != 2 {
		t.Fatalf("%d AdCP sellers", len(m.ADCPSellers))
	}
	c := sellerclient.New(sellerclient.Config{AllowPrivate: true})
	for _, kind := range []sellerclient.RegistryKind{sellerclient.RegistrySimple, sellerclient.RegistryAAO} {
		d, err := c.DiscoverSellers(t.Context(), sellerclient.Registry{URL: m.RegistryURL, Kind: kind}, nil)
		if err != nil {
			t.Fatal(err)
		}
		adcps := map[string]sellerclient.SellerRecord{}
		for _, s := range d.Sellers {
			if s.Protocol == events.ProtocolADCP {
				adcps[s.Name] = s
			}
		}
		if len(adcps) != 2 || (kind == sellerclient.RegistryAAO && len(d.Sellers) != 2) || (kind == sellerclient.RegistrySimple && len(d.Sellers) < 8) {
			t.Fatalf("%s: %+v", kind, d.Sellers)
		}
		for _, s := range m.ADCPSellers {
			r := adcps[s.Name]
			if r.URL != s.URL || r.MCPEndpoint != s.MCPEndpoint || r.Trust != events.TrustVerified {
				t.Fatalf("%s record of %s: %+v", kind, s.Name, r)
			}
			if kind == sellerclient.RegistryAAO && r.Compliance != "passing" {
				t.Fatalf("compliance %+v", r)
			}
		}
	}
	creds := m.Credentials()
	for _, s := range m.ADCPSellers {
		id, ok := creds.ADCP(s.URL, identity.TierAgency)
		if !ok || id.Token != s.Token || id.Account != s.AccountID || id.Brand != s.BrandDomain {
			t.Fatalf("credentials of %s: %v %v", s.Name, id, ok)
		}
	}
	protocols := map[string]int{}
	for _, s := range m.Summary().Sellers {
		protocols[s.Protocol]++
		if s.Protocol == "adcp" && s.MCPEndpoint == "" {
			t.Fatalf("summary %+v", s)
		}
	}
	if protocols["adcp"] != 2 || protocols["iab-seller-agent"] != len(m.Sellers) {
		t.Fatalf("summary protocols %v", protocols)
	}
}
