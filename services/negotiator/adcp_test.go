package negotiator_test

import (
	"strings"
	"testing"

	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/services/negotiator"
)

func adcpPackageFound(t *testing.T, campaign, seller string, p events.Package, strategy string) events.Event {
	t.Helper()
	brief := events.Brief{Name: "n", BudgetMicros: events.MustMicros(10000), StartDate: "2028-06-01", EndDate: "2028-06-30", Channels: []string{"ctv", "video"},
		KPIs: events.KPIs{TargetCPMMicros: events.MustMicros(16), MaxCPMMicros: events.MustMicros(30)}}
	pf := events.PackageFound{CampaignID: campaign, Seller: events.Seller{URL: seller, Trust: identity.TrustVerified, Source: "registry", Protocol: events.ProtocolADCP},
		Disclosure: events.Disclosure{Tier: identity.TierAgency, Recommended: identity.TierAgency, Cap: identity.TierAgency}, Package: p, PackagesTotal: 1,
		Brief: brief.ForShopping(), Negotiation: events.NegotiationPolicy{Strategy: strategy}}
	return must(events.New(events.KindPackageFound, "pf-"+campaign+p.ID+seller, "test", campaign, pf))
}

// TestADCPPricing: an AdCP fixed price is a fixed_price outcome; for an
// auction option each strategy bids between the floor and the buyer's max
// (threshold the target, adaptive p50, competitive p75 capped by the
// campaign's best competing price), with no rounds (AdCP 3.1 has no numeric
// counter-offer); the volume is what the spend buys and the minimum order
// is the minimum spend. No seller is called.
func TestADCPPricing(t *testing.T) {
	env := natstest.Start(t)
	svc := service(t, env, nil, startMarket(t, 0))
	svc.Client = nil // an AdCP package is priced without a seller call
	auction := events.Package{ID: "ctv_ron/ron_auction", ProductID: "ctv_ron", PricingOptionID: "ron_auction", PricingModel: events.PricingAuction,
		AdFormats: []string{"ctv"}, FloorPriceMicros: events.MustMicros(18), MinSpendMicros: events.MustMicros(1000), Negotiable: true,
		PriceGuidanceMicros: &events.PriceGuidance{P25: events.MustMicros(20), P50: events.MustMicros(24), P75: events.MustMicros(28), P90: events.MustMicros(33)}}
	fixed := events.Package{ID: "olv/fixed", ProductID: "olv", PricingOptionID: "fixed", PricingModel: events.PricingFixed, AdFormats: []string{"ctv"},
		ExactPriceMicros: events.MustMicros(22), MinSpendMicros: events.MustMicros(2000)}

	q := quoteReady(t, mustHandle(t, svc, adcpPackageFound(t, "c-fixed", "https://a.example", fixed, "")))
	if q.Outcome != events.OutcomeFixedPrice || q.FinalCPMMicros != events.MustMicros(22) || q.QuoteID == "" || len(q.Rounds) != 0 ||
		q.Impressions != 454545 || q.MinImpressions != 90910 {
		t.Fatalf("fixed: %+v", q)
	}
	for _, tc := range []struct {
		strategy string
		bid      events.Micros
	}{{"threshold", events.MustMicros(18)}, {"adaptive", events.MustMicros(24)}, {"competitive", events.MustMicros(28)}} {
		q := quoteReady(t, mustHandle(t, svc, adcpPackageFound(t, "c-"+tc.strategy, "https://a.example", auction, tc.strategy)))
		if q.Outcome != events.OutcomeAccepted || q.FinalCPMMicros != tc.bid || q.Strategy != tc.strategy || len(q.Rounds) != 0 ||
			!strings.Contains(q.Reason, "no numeric counter-offer") {
			t.Fatalf("%s: %+v", tc.strategy, q)
		}
	}
	// Competitive: another seller of the campaign offers CTV at 22, below p75.
	quoteReady(t, mustHandle(t, svc, adcpPackageFound(t, "c-comp", "https://b.example", fixed, "")))
	q = quoteReady(t, mustHandle(t, svc, adcpPackageFound(t, "c-comp", "https://a.example", auction, "competitive")))
	if q.FinalCPMMicros != events.MustMicros(22) || !strings.Contains(q.Reason, "best competing price") {
		t.Fatalf("competitive against 22: %+v", q)
	}
	// A floor above the buyer's max walks away.
	high := auction
	high.ID, high.FloorPriceMicros = "ctv_ron/high", events.MustMicros(40)
	q = quoteReady(t, mustHandle(t, svc, adcpPackageFound(t, "c-high", "https://a.example", high, "adaptive")))
	if q.Outcome != events.OutcomeWalkedAway || q.FinalCPMMicros != 0 {
		t.Fatalf("floor above max: %+v", q)
	}
	a, b := negotiator.ADCPQuoteID("https://a.example", fixed), negotiator.ADCPQuoteID("https://b.example", fixed)
	if a == b || !strings.HasPrefix(a, "adcp:") || !strings.HasSuffix(a, ":olv/fixed") {
		t.Fatalf("quote ids %q and %q: one product at two sellers must get two ids", a, b)
	}
}
