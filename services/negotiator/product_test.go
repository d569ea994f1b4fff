package negotiator_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/services/negotiator"
)

// sentQuotes are the product and deal type of every quote request the
// seller received.
func sentQuotes(t *testing.T, s *sandbox.Seller) (out []struct{ Product, DealType string }) {
	t.Helper()
	for _, r := range s.Requests() {
		if r.Method != "POST" || !strings.HasSuffix(r.Path, "/api/v1/quotes") {
			continue
		}
		var q struct {
			Product  string `json:"product_id"`
			DealType string `json:"deal_type"`
		}
		if err := json.Unmarshal(r.Body, &q); err != nil {
			t.Fatal(err)
		}
		out = append(out, struct{ Product, DealType string }{q.Product, q.DealType})
	}
	return out
}

func withPackage(t *testing.T, e events.Event, fn func(p *events.PackageFound)) events.Event {
	t.Helper()
	pf := must(events.PayloadOf[events.PackageFound](e, events.KindPackageFound))
	fn(&pf)
	return must(events.New(events.KindPackageFound, e.ID(), "test", pf.CampaignID, pf))
}

// TestQuotesOnlyAllowedDealTypes: a product restricted to PG at the seller
// is quoted PG (the brief's default PD is not allowed); a product allowing
// none of PG/PD/PA is not quoted at all.
func TestQuotesOnlyAllowedDealTypes(t *testing.T) {
	env := natstest.Start(t)
	cfg := sandbox.MarketConfig{Sellers: []sandbox.SellerConfig{sandbox.DefaultMarket().Sellers[0]}}
	cfg.Sellers[0].Products[1].DealTypes = []string{"PG"} // pre-roll video: PG only
	m, err := sandbox.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	svc := service(t, env, nil, m)
	s := m.Sellers[0]

	in := withPackage(t, packageFound("pg-only", s, "pkg-51a00003", sandbox.ProductPreRollVideo, identity.TierSeat, "adaptive", 25.65, 20),
		func(p *events.PackageFound) { p.Package.ProductDealTypes = []string{"PG"} })
	q := quoteReady(t, mustHandle(t, svc, in))
	if q.Outcome != events.OutcomeFixedPrice || q.DealType != "PG" || !strings.Contains(q.Reason, "PG") {
		t.Fatalf("outcome %s deal type %s reason %q: want a PG quote", q.Outcome, q.DealType, q.Reason)
	}
	sent := sentQuotes(t, s)
	if len(sent) != 1 || sent[0].DealType != "PG" || sent[0].Product != sandbox.ProductPreRollVideo {
		t.Fatalf("seller received quotes %+v, want one PG quote for %s", sent, sandbox.ProductPreRollVideo)
	}

	in = withPackage(t, packageFound("none-allowed", s, "pkg-51a00003", sandbox.ProductPreRollVideo, identity.TierSeat, "adaptive", 25.65, 20),
		func(p *events.PackageFound) { p.Package.ProductDealTypes = []string{"XYZ"} })
	q = quoteReady(t, mustHandle(t, svc, in))
	if q.Outcome != events.OutcomeError || !strings.Contains(q.Reason, "deal_type_not_allowed") {
		t.Fatalf("outcome %s reason %q: want an error outcome naming the deal types", q.Outcome, q.Reason)
	}
	if n := len(sentQuotes(t, s)); n != 1 {
		t.Fatalf("%d quote requests: a package with no allowed deal type was quoted", n-1)
	}
}

func TestChooseDealType(t *testing.T) {
	for _, c := range []struct {
		pref    string
		allowed []string
		want    string
		ok      bool
	}{
		{"", nil, "PD", true},
		{"PA", nil, "PA", true},
		{"", []string{"PG"}, "PG", true},
		{"PD", []string{"PG", "PD"}, "PD", true},
		{"PA", []string{"PG", "PD"}, "PD", true},
		{"PG", []string{"PD", "PA"}, "PD", true},
		{"PD", []string{"PA", "PG"}, "PG", true},
		{"pd", []string{"pa"}, "PA", true},
		{"PD", []string{"XYZ"}, "", false},
	} {
		got, ok := negotiator.ChooseDealType(c.pref, c.allowed)
		if got != c.want || ok != c.ok {
			t.Errorf("ChooseDealType(%q, %v) = %q, %v; want %q, %v", c.pref, c.allowed, got, ok, c.want, c.ok)
		}
	}
}

// TestNoProductIsNotGuessed: a package whose product is unknown is not
// quoted for some product of a matching format; it ends with a reason.
func TestNoProductIsNotGuessed(t *testing.T) {
	env := natstest.Start(t)
	m := startMarket(t, 0)
	svc := service(t, env, nil, m)
	s := m.Sellers[0]
	q := quoteReady(t, mustHandle(t, svc, packageFound("no-product", s, "pkg-51a00001", "", identity.TierPublic, "adaptive", 38, 30)))
	if q.Outcome != events.OutcomeError || !strings.Contains(q.Reason, "no_product") || q.FinalCPMMicros != 0 {
		t.Fatalf("outcome %s reason %q final %s", q.Outcome, q.Reason, q.FinalCPMMicros)
	}
	if sent := sentQuotes(t, s); len(sent) != 0 {
		t.Fatalf("seller received quotes %+v for a package of unknown product", sent)
	}
}

// TestNegotiatesAgainstTheProductFloor: the package's floor_price (22) is
// not the seller's negotiation floor; the product's floor_cpm (20) is. No
// message the buyer sends, nor its final reason, may cite 22 as a floor.
func TestNegotiatesAgainstTheProductFloor(t *testing.T) {
	env := natstest.Start(t)
	m := startMarket(t, 0)
	svc := service(t, env, nil, m)
	s := m.Sellers[0]
	in := withPackage(t, packageFound("product-floor", s, "pkg-51a00003", sandbox.ProductPreRollVideo, identity.TierAgency, "adaptive", 24.3, 22),
		func(p *events.PackageFound) { p.Package.ProductFloorCPMMicros = 20_000_000 })
	q := quoteReady(t, mustHandle(t, svc, in))
	if q.Outcome != events.OutcomeAccepted {
		t.Fatalf("outcome %s reason %q", q.Outcome, q.Reason)
	}
	reasons := []string{q.Reason}
	for _, r := range s.Requests() {
		if strings.HasSuffix(r.Path, "/api/v1/negotiations/messages") {
			var msg struct {
				Rationale string `json:"rationale"`
			}
			_ = json.Unmarshal(r.Body, &msg)
			reasons = append(reasons, msg.Rationale)
		}
	}
	sawFloor := false
	for _, r := range reasons {
		if strings.Contains(r, "floor 22.00") {
			t.Errorf("reason %q cites the package floor as the seller's floor", r)
		}
		if strings.Contains(r, "seller floor 20.00 (product "+sandbox.ProductPreRollVideo+" floor_cpm)") {
			sawFloor = true
		}
	}
	if !sawFloor {
		t.Errorf("no reason names the product floor it used: %q", reasons)
	}
}
