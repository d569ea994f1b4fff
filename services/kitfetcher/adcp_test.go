package kitfetcher

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/adcpschema"
	sandboxadcp "github.com/dealflow/dealflow/internal/sandbox/adcp"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

// TestADCPProducts: with a token (agency tier) the seller's CTV and video
// products come back as one package per CPM pricing option, fixed with an
// exact price, auction with floor and guidance, each with its minimum
// spend; the request carries the account and brand. The public tier gets
// unpriced products and the seller is skipped as no_prices. Every call is
// schema-valid.
func TestADCPProducts(t *testing.T) {
	v, err := adcpschema.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	a := sandboxadcp.New(sandboxadcp.Config{Tokens: map[string]sandboxadcp.Principal{"tok-0123456789abcdef": {AccountID: "acct-1", BrandDomain: "acme.example"}}})
	srv := httptest.NewServer(a.Handler())
	defer func() {
		srv.Close()
		a.Close()
		for i, c := range a.Calls() {
			if err := v.CheckCall(c.Tool, c.Arguments, c.Result, c.IsError); err != nil {
				t.Errorf("call %d %s: %v", i, c.Tool, err)
			}
		}
	}()
	url, _ := sellerclient.CanonicalURL(srv.URL)
	creds := must(identity.ParseCredentials([]byte(`{"sellers":{"` + url + `":{"bearer_token":"tok-0123456789abcdef","account":"acct-1","brand":"acme.example"}}}`)))
	svc := &Service{ADCP: adcp.New(adcp.Config{AllowPrivate: true}), Credentials: creds, SellerTimeout: 5 * time.Second}
	brief := events.Brief{Name: "v", BudgetMicros: events.MustMicros(10000), StartDate: "2028-06-01", EndDate: "2028-06-30", Channels: []string{"ctv", "video"}}
	sf := func(tier identity.Tier) events.SellerFound {
		return events.SellerFound{CampaignID: "c1", Seller: events.Seller{URL: url, Trust: identity.TrustVerified, Source: "registry", Protocol: events.ProtocolADCP},
			Disclosure: events.Disclosure{Tier: tier, Recommended: tier, Cap: tier}, Brief: brief.ForShopping()}
	}
	pkgs, err := svc.Fetch(t.Context(), sf(identity.TierAgency))
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]events.Package{}
	for _, p := range pkgs {
		byID[p.ID] = p
		if strings.Contains(p.ID, "display") {
			t.Errorf("display product %s fits a CTV/video brief", p.ID)
		}
	}
	fixed, ok := byID["olv_sports_preroll/olv_sports_fixed_usd"]
	if !ok || fixed.PricingModel != events.PricingFixed || fixed.ExactPriceMicros != events.MustMicros(22) || fixed.MinSpendMicros != events.MustMicros(2000) ||
		fixed.ProductID != "olv_sports_preroll" || fixed.PricingOptionID != "olv_sports_fixed_usd" || !anyEqualFold(fixed.AdFormats, []string{"video"}) {
		t.Fatalf("fixed option %+v", fixed)
	}
	auction, ok := byID["ctv_run_of_network/ctv_ron_auction_usd"]
	if !ok || auction.PricingModel != events.PricingAuction || auction.FloorPriceMicros != events.MustMicros(18) || auction.ExactPriceMicros != 0 ||
		auction.PriceGuidanceMicros == nil || auction.PriceGuidanceMicros.P50 != events.MustMicros(24) || auction.MinSpendMicros != events.MustMicros(1000) {
		t.Fatalf("auction option %+v", auction)
	}
	if len(pkgs) != 4 {
		t.Fatalf("%d packages: %v", len(pkgs), byID)
	}
	_, err = svc.Fetch(t.Context(), sf(identity.TierPublic))
	se, ok := err.(*SkipError)
	if !ok || se.Code != "no_prices" {
		t.Fatalf("public tier: %v", err)
	}
	var sawAccount, sawPublic bool
	for _, c := range a.Calls() {
		if c.Tool != "get_products" {
			continue
		}
		s := string(c.Arguments)
		if c.Token && strings.Contains(s, `"account_id":"acct-1"`) && strings.Contains(s, `"domain":"acme.example"`) {
			sawAccount = true
		}
		if !c.Token && !strings.Contains(s, "account") && !strings.Contains(s, "brand") {
			sawPublic = true
		}
	}
	if !sawAccount || !sawPublic {
		t.Fatalf("get_products identity: account %v, public %v", sawAccount, sawPublic)
	}
}
