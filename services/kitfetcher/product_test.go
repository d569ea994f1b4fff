package kitfetcher

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// TestPublicTierPackagesCarryTheirOwnProduct: a seller shopped at public tier
// (trusted, but no credential) shows packages without placements. Each
// PackageFound must still name the package's own product (the CTV packages
// are CTV Premium, not the cheaper pre-roll product of a shared "video"
// format), with that product's floor and deal types.
func TestPublicTierPackagesCarryTheirOwnProduct(t *testing.T) {
	streamMax := sandbox.DefaultMarket().Sellers[0]
	streamMax.Products[0].DealTypes = []string{"PG"}
	unknown := streamMax
	unknown.Name = "Unknown Copy"
	m, err := sandbox.Start(context.Background(), sandbox.MarketConfig{Sellers: []sandbox.SellerConfig{streamMax, unknown}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	svc := &Service{Client: sellerclient.New(sellerclient.Config{AllowPrivate: true, RetryBase: time.Millisecond}),
		Credentials: must(identity.ParseCredentials([]byte(`{}`))), SellerTimeout: 5 * time.Second}
	brief := events.Brief{Name: "ctv", BudgetMicros: events.MustMicros(10000), StartDate: "2028-06-01", EndDate: "2028-06-30", Channels: []string{"ctv", "video"}}

	want := map[string]string{}
	for _, p := range streamMax.Packages {
		want[p.ID] = p.ProductIDs[0]
	}
	floors := map[string]events.Micros{sandbox.ProductCTVPremium: 30_000_000, sandbox.ProductPreRollVideo: 20_000_000}

	// Trusted (cap agency), shopped at public for lack of a key.
	s := m.Sellers[0]
	sf := events.SellerFound{CampaignID: "c1", Seller: events.Seller{URL: s.URL, Trust: identity.TrustVerified, Source: "known"},
		Disclosure: events.Disclosure{Tier: identity.TierPublic, Recommended: identity.TierAgency, Cap: identity.TierAgency}, Brief: brief.ForShopping()}
	out, err := handle(svc, must(events.New(events.KindSellerFound, "sf-trusted", "test", "c1", sf)))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(want) {
		t.Fatalf("%d events, want %d PackageFound", len(out), len(want))
	}
	for _, e := range out {
		pf := must(events.PayloadOf[events.PackageFound](e, events.KindPackageFound))
		p := pf.Package
		if p.ProductID != want[p.ID] {
			t.Errorf("package %s: product %q, want %q", p.ID, p.ProductID, want[p.ID])
		}
		if p.ProductFloorCPMMicros != floors[p.ProductID] {
			t.Errorf("package %s: product floor %s, want %s", p.ID, p.ProductFloorCPMMicros, floors[p.ProductID])
		}
		if p.ProductID == sandbox.ProductCTVPremium && !slices.Equal(p.ProductDealTypes, []string{"PG"}) {
			t.Errorf("package %s: product deal types %v, want [PG]", p.ID, p.ProductDealTypes)
		}
		if p.ExactPriceMicros != 0 {
			t.Errorf("package %s: exact price %s leaked into a public-tier package", p.ID, p.ExactPriceMicros)
		}
	}

	// An unknown seller (cap public) never sees a tier claim above public,
	// so nothing names its packages' products: the seller is skipped with
	// product_unknown, and no package is quoted on a guessed product.
	u := m.Sellers[1]
	sf.Seller = events.Seller{URL: u.URL, Trust: identity.TrustUnknown, Source: "campaign"}
	sf.Disclosure = events.Disclosure{Tier: identity.TierPublic, Recommended: identity.TierPublic, Cap: identity.TierPublic}
	out, err = handle(svc, must(events.New(events.KindSellerFound, "sf-unknown", "test", "c1", sf)))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Type() != events.KindSellerSkipped.Type {
		t.Fatalf("unknown seller: %d events, want one SellerSkipped", len(out))
	}
	if sk := must(events.PayloadOf[events.SellerSkipped](out[0], events.KindSellerSkipped)); sk.Code != "product_unknown" || sk.PackageID != "" {
		t.Fatalf("unknown seller skipped %+v", sk)
	}
	for _, r := range u.Requests() {
		if c := r.Query.Get("buyer_tier"); c != "" && c != "public" {
			t.Errorf("unknown seller saw a tier claim %q on %s", c, r.Path)
		}
	}
}

// TestPackageWithoutProductIsSkipped: a seller names the product of one
// fitting package and not of the other; the first is shopped, the second
// skipped on its own (product_unknown, counting toward packages_total) and
// never quoted.
func TestPackageWithoutProductIsSkipped(t *testing.T) {
	seller := sandbox.DefaultMarket().Sellers[0]
	seller.Packages = seller.Packages[:2]
	seller.Packages[1].ProductIDs = nil
	m, err := sandbox.Start(context.Background(), sandbox.MarketConfig{Sellers: []sandbox.SellerConfig{seller}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	s := m.Sellers[0]
	creds := must(identity.ParseCredentials([]byte(`{}`)))
	creds.Set(s.URL, identity.TierAgency, s.Keys["agency"])
	svc := &Service{Client: sellerclient.New(sellerclient.Config{AllowPrivate: true, RetryBase: time.Millisecond}), Credentials: creds, SellerTimeout: 5 * time.Second}
	brief := events.Brief{Name: "v", BudgetMicros: events.MustMicros(10000), StartDate: "2028-06-01", EndDate: "2028-06-30", Channels: []string{"ctv", "video"}}
	sf := events.SellerFound{CampaignID: "c1", Seller: events.Seller{URL: s.URL, Trust: identity.TrustVerified, Source: "known"},
		Disclosure: events.Disclosure{Tier: identity.TierAgency, Recommended: identity.TierAgency, Cap: identity.TierAgency}, Brief: brief.ForShopping()}
	out, err := handle(svc, must(events.New(events.KindSellerFound, "sf-1", "test", "c1", sf)))
	if err != nil {
		t.Fatal(err)
	}
	var found, skipped []string
	for _, e := range out {
		switch e.Type() {
		case events.KindPackageFound.Type:
			pf := must(events.PayloadOf[events.PackageFound](e, events.KindPackageFound))
			if pf.Package.ProductID == "" || pf.PackagesTotal != 2 {
				t.Fatalf("package found %+v", pf.Package)
			}
			found = append(found, pf.Package.ID)
		case events.KindSellerSkipped.Type:
			sk := must(events.PayloadOf[events.SellerSkipped](e, events.KindSellerSkipped))
			if sk.Code != "product_unknown" || sk.PackagesTotal != 2 {
				t.Fatalf("skip %+v", sk)
			}
			skipped = append(skipped, sk.PackageID)
		}
	}
	if !slices.Equal(found, []string{seller.Packages[0].ID}) || !slices.Equal(skipped, []string{seller.Packages[1].ID}) {
		t.Fatalf("found %v, skipped %v", found, skipped)
	}
}
