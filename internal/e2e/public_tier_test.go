package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/services/discoverer"
)

// TestPublicTierBooksThePackagesOwnProduct: known sellers with verified trust
// but no credentials are all shopped at public tier, where packages show no
// placements. Every quote and every booking must be for the package's own
// product (StreamMax's CTV packages are CTV Premium, not its cheaper
// pre-roll product), and no booking may fail (the re-quote once sent an
// empty product_id and the seller refused it).
func TestPublicTierBooksThePackagesOwnProduct(t *testing.T) {
	ctx := context.Background()
	def := sandbox.DefaultMarket()
	mc := sandbox.MarketConfig{Sellers: []sandbox.SellerConfig{def.Sellers[0], def.Sellers[1]}} // StreamMax CTV, Northwind Video
	for i := range mc.Sellers {
		mc.Sellers[i].InRegistry = false // known sellers only
	}
	m, err := sandbox.Start(ctx, mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	productOf := map[string]string{} // package -> its product
	sellerProducts := map[string]map[string]bool{}
	var known []discoverer.KnownSeller
	for i, s := range m.Sellers {
		sellerProducts[s.Name] = map[string]bool{}
		for _, p := range mc.Sellers[i].Packages {
			productOf[p.ID] = p.ProductIDs[0]
			sellerProducts[s.Name][p.ProductIDs[0]] = true
		}
		known = append(known, discoverer.KnownSeller{URL: s.URL, Name: s.Name, Trust: identity.TrustVerified, Capabilities: mc.Sellers[i].Capabilities})
	}
	cfg := config.Defaults()
	cfg.DataDir, cfg.NATSPort, cfg.RegistryURL, cfg.AllowPrivate, cfg.Window = t.TempDir(), 0, m.RegistryURL, true, 45*time.Second
	noKeys, err := identity.ParseCredentials([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Start(ctx, cfg, natstest.Logger(), app.Options{Credentials: noKeys, Known: known, SweepEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	st := &stack{market: m, app: a}
	req := demo.SampleCampaign("e2e-public-tier", "adaptive")
	st.submit(t, req)
	res := st.follow(t, req.CampaignID)

	if len(res.Failed) != 0 {
		t.Fatalf("bookings failed: %+v", res.Failed)
	}
	if res.Status != "completed" || len(res.Deals) == 0 {
		t.Fatalf("status %q with %d deals", res.Status, len(res.Deals))
	}
	booked := map[string]sandbox.Deal{}
	for _, s := range m.Sellers {
		for _, d := range s.Deals() {
			booked[d.DealID] = d
			if d.BuyerTier != "public" {
				t.Errorf("deal %s priced at tier %s, want public", d.DealID, d.BuyerTier)
			}
		}
	}
	for _, d := range res.Deals {
		sd, ok := booked[d.DealID]
		if !ok {
			t.Fatalf("deal %s unknown to the seller", d.DealID)
		}
		if sd.ProductID != productOf[d.PackageID] {
			t.Errorf("package %s booked as product %s, its product is %s", d.PackageID, sd.ProductID, productOf[d.PackageID])
		}
	}
	ctvQuotes := 0
	for _, s := range m.Sellers {
		for _, r := range s.Requests() {
			if r.Method != "POST" || !strings.HasSuffix(r.Path, "/api/v1/quotes") {
				continue
			}
			var q struct {
				Product string `json:"product_id"`
			}
			_ = json.Unmarshal(r.Body, &q)
			if !sellerProducts[s.Name][q.Product] {
				t.Errorf("%s was asked to quote product %q, which none of its packages holds", s.Name, q.Product)
			}
			if q.Product == sandbox.ProductCTVPremium {
				ctvQuotes++
			}
		}
	}
	if ctvQuotes < 2 {
		t.Errorf("%d quotes for CTV Premium: both StreamMax CTV packages must be quoted as CTV", ctvQuotes)
	}
}
