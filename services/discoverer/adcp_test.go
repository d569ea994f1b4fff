package discoverer

import (
	"net/http/httptest"
	"strings"
	"testing"

	sandboxadcp "github.com/dealflow/dealflow/internal/sandbox/adcp"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

// TestADCPSellers: AdCP sellers get the same trust caps and identity
// decision as IAB ones and keep their protocol and MCP endpoint; one that
// requires request signing for create_media_buy is skipped as
// signing_required, one the registry reports non-compliant as
// non_compliant, one whose credentials name no account as account (naming
// the fields to set), and IAB sellers are untouched.
func TestADCPSellers(t *testing.T) {
	const tok = "tok-discoverer-0123456789"
	serve := func(cfg sandboxadcp.Config) string {
		a := sandboxadcp.New(cfg)
		srv := httptest.NewServer(a.Handler())
		t.Cleanup(func() { srv.Close(); a.Close() })
		u, _ := sellerclient.CanonicalURL(srv.URL)
		return u
	}
	principal := map[string]sandboxadcp.Principal{tok: {AccountID: "acc_1", BrandDomain: "acme.example"}}
	ok := serve(sandboxadcp.Config{Tokens: principal})
	signs := serve(sandboxadcp.Config{Tokens: principal, RequireSigningFor: []string{adcp.OpCreateMediaBuy}})
	failing := serve(sandboxadcp.Config{Tokens: principal})
	noAccount := serve(sandboxadcp.Config{Tokens: principal})
	dir := &fakeDir{sellers: []events.Seller{
		{URL: ok, Name: "ok", Trust: identity.TrustVerified, Capabilities: []string{"ctv"}, Protocol: events.ProtocolADCP, MCPEndpoint: ok},
		{URL: signs, Name: "signs", Trust: identity.TrustVerified, Capabilities: []string{"ctv"}, Protocol: events.ProtocolADCP},
		{URL: failing, Name: "failing", Trust: identity.TrustRegistered, Capabilities: []string{"ctv"}, Protocol: events.ProtocolADCP, Compliance: "failing"},
		{URL: noAccount, Name: "no account", Trust: identity.TrustVerified, Capabilities: []string{"ctv"}, Protocol: events.ProtocolADCP},
		{URL: "https://iab.example", Name: "iab", Trust: identity.TrustVerified, Capabilities: []string{"ctv"}},
	}}
	creds := must(identity.ParseCredentials([]byte(`{"default":{"seat":"k1","agency":"k2","advertiser":"k3"}}`)))
	for _, u := range []string{ok, signs, failing} {
		creds.SetADCP(u, tok, "acc_1", "acme.example")
	}
	creds.SetADCP(noAccount, tok, "", "")
	s := service(dir, nil, creds)
	s.ADCP = adcp.New(adcp.Config{AllowPrivate: true})
	sum := run(t, s, campaign("adcp-1"))
	f, found := sum.found[ok]
	if !found || f.Seller.Protocol != events.ProtocolADCP || f.Seller.MCPEndpoint != ok || f.Disclosure.Tier != identity.TierAgency {
		t.Fatalf("AdCP seller: %+v (found %v, skipped %+v)", f, found, sum.skipped[ok])
	}
	if iab := sum.found["https://iab.example"]; iab.Seller.Protocol != events.ProtocolIAB || iab.Disclosure.Tier != identity.TierAgency {
		t.Fatalf("IAB seller: %+v", iab)
	}
	if sk := sum.skipped[signs]; sk.Code != "signing_required" || !strings.Contains(sk.Reason, "create_media_buy") || sk.Protocol != events.ProtocolADCP {
		t.Fatalf("signing seller: %+v", sk)
	}
	if sk := sum.skipped[failing]; sk.Code != "non_compliant" {
		t.Fatalf("failing seller: %+v", sk)
	}
	if sk := sum.skipped[noAccount]; sk.Code != "account" || !strings.Contains(sk.Reason, noAccount) || !strings.Contains(sk.Reason, `"operator"`) {
		t.Fatalf("seller without an account: %+v", sk)
	}
	if len(sum.done.Sellers) != 2 || sum.done.Skipped != 3 {
		t.Fatalf("done %+v", sum.done)
	}
}
