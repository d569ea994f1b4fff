package kitfetcher

import (
	"context"
	"fmt"
	"strings"

	"github.com/dealflow/dealflow/internal/adcpauth"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

// fetchADCP is the AdCP path of Fetch: get_products in brief mode with the
// disclosed identity (public: no token, no account, no brand), then one
// package per fitting product and CPM pricing option. A public answer whose
// options carry no price cannot be bought: the seller is skipped with the
// reason.
func (s *Service) fetchADCP(ctx context.Context, sf events.SellerFound) ([]events.Package, error) {
	if s.ADCP == nil {
		return nil, &SkipError{"unsupported_protocol", "this kitfetcher has no AdCP client"}
	}
	seller, err := adcpauth.Seller(s.Credentials, sf.Seller, sf.Disclosure.Tier)
	if err != nil {
		return nil, &SkipError{"credentials", err.Error()}
	}
	res, err := s.ADCP.GetProductsAnyPricing(ctx, seller, adcp.QueryFromShoppingBrief(sf.Brief))
	if err != nil {
		return nil, &SkipError{SkipCode(err), err.Error()}
	}
	var unpricedProposals []string
	if len(res.Proposals) > 0 {
		// A seller that answers a brief with proposals is bought through
		// them (a proposal-mode seller may sell nothing else); products
		// are their components, priced into each proposal. When none of
		// them prices (an auction allocation), the products are shopped.
		props, why := ProposalPackages(res)
		if fit := FitPackages(props, sf.Brief); len(fit) > 0 {
			return fit, nil
		}
		if len(props) > 0 {
			return nil, &SkipError{"no_fitting_packages", fmt.Sprintf("none of the seller's %d proposals fits the brief (formats %v)", len(props), wantedFormats(sf.Brief))}
		}
		unpricedProposals = why
	}
	pkgs, unpriced, other := ADCPPackages(res.Products)
	fit := FitPackages(pkgs, sf.Brief)
	if len(fit) > 0 {
		return fit, nil
	}
	switch {
	case unpriced > 0 && len(pkgs) == 0:
		return nil, &SkipError{"no_prices", fmt.Sprintf("the seller answered %d products whose %d CPM pricing options carry no price (public tier, no account: cache_scope %q); nothing to bid or buy at",
			len(res.Products), unpriced, res.CacheScope)}
	case len(unpricedProposals) > 0:
		return nil, &SkipError{"no_priced_proposals", fmt.Sprintf("the seller answered the brief with %d proposals, none of which can be priced (%s), and none of its %d products fits the brief",
			len(res.Proposals), strings.Join(unpricedProposals, "; "), len(res.Products))}
	default:
		return nil, &SkipError{"no_fitting_packages", fmt.Sprintf("none of the seller's %d products (%d priced CPM options, %d options dealflow does not buy: not CPM, or not in USD) fit the brief (formats %v)",
			len(res.Products), len(pkgs), other, wantedFormats(sf.Brief))}
	}
}

// ADCPPackages turns AdCP products into dealflow packages: one per product
// and priced USD CPM pricing option, with id product_id/pricing_option_id.
// A fixed option's price is exact; an auction option carries its floor and
// price guidance (the buyer bids). min_spend_per_package is the minimum
// order. unpriced counts CPM options without any price (public tier);
// other counts options dealflow does not buy (not CPM, not USD).
func ADCPPackages(products []adcp.Product) (pkgs []events.Package, unpriced, other int) {
	for _, p := range products {
		formats := channelWords(p.Channels)
		for _, o := range p.PricingOptions {
			if !strings.EqualFold(o.PricingModel, "cpm") || (o.Currency != "" && !strings.EqualFold(o.Currency, "USD")) {
				other++
				continue
			}
			if !o.Priced {
				unpriced++
				continue
			}
			e := events.Package{ID: p.ProductID + "/" + o.PricingOptionID, Name: p.Name, ProductID: p.ProductID, AdFormats: formats,
				Currency: "USD", PricingOptionID: o.PricingOptionID, MinSpendMicros: o.MinSpendMicros,
				// The seller's availability forecast; a spend curve says
				// what a budget buys, not what is available.
				AvailableImpressions: p.Forecast.Available()}
			if o.Fixed {
				e.PricingModel = events.PricingFixed
				e.ExactPriceMicros = o.FixedPriceMicros
				e.PriceLowMicros, e.PriceHighMicros = o.FixedPriceMicros, o.FixedPriceMicros
			} else {
				e.PricingModel = events.PricingAuction
				e.Negotiable = true // the buyer chooses its bid
				e.FloorPriceMicros = o.FloorPriceMicros
				e.PriceLowMicros = o.FloorPriceMicros
				if g := o.Guidance; g != nil {
					e.PriceGuidanceMicros = &events.PriceGuidance{P25: g.P25, P50: g.P50, P75: g.P75, P90: g.P90}
					e.PriceHighMicros = max(g.P90, g.P75, g.P50)
					if e.PriceLowMicros == 0 {
						e.PriceLowMicros = g.P25
					}
				}
			}
			if e.PriceLowMicros > 0 && e.PriceHighMicros > 0 {
				e.PriceRange = fmt.Sprintf("%s-%s CPM", e.PriceLowMicros.Cents(), e.PriceHighMicros.Cents())
			}
			pkgs = append(pkgs, e)
		}
	}
	return pkgs, unpriced, other
}

// ProposalIDPrefix starts the package id of a proposal (proposal:<id>).
const ProposalIDPrefix = "proposal:"

// ProposalPackages turns a brief answer's proposals into packages: one per
// proposal that prices (adcp.Proposal.Price: each allocation a fixed CPM of
// the answer's products), id proposal:<proposal_id>, a fixed price at the
// blended CPM, the smallest total budget that meets every allocation's
// minimum spend as the minimum order, the allocated products' formats and
// their forecast availability. The booker buys it with create_media_buy
// {proposal_id, total_budget} once the negotiator has finalized it. why
// lists the proposals that do not price.
func ProposalPackages(res *adcp.Products) (pkgs []events.Package, why []string) {
	for _, pr := range res.Proposals {
		if pr.ProposalID == "" {
			continue
		}
		q, err := pr.Price(res.Products)
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		pkgs = append(pkgs, events.Package{ID: ProposalIDPrefix + pr.ProposalID, Name: q.Explain, AdFormats: channelWords(q.Channels), Currency: "USD",
			PricingModel: events.PricingFixed, ExactPriceMicros: q.CPMMicros, PriceLowMicros: q.CPMMicros, PriceHighMicros: q.CPMMicros,
			PriceRange: q.CPMMicros.Cents() + " CPM blended", MinSpendMicros: q.MinSpendMicros,
			AvailableImpressions: q.Available, ProposalID: pr.ProposalID})
	}
	return pkgs, why
}

// channelWords maps AdCP channels to dealflow's format words (olv is video).
func channelWords(chs []string) []string {
	var out []string
	for _, c := range chs {
		w := strings.ToLower(strings.TrimSpace(c))
		switch w {
		case "olv":
			w = "video"
		case "streaming_audio":
			w = "audio"
		}
		out = append(out, w)
	}
	return out
}

// FitPackages keeps the packages that fit the brief (formats, devices, geo,
// tags, as Fit does), sorted by price (exact, else the low end) then id.
func FitPackages(pkgs []events.Package, b events.ShoppingBrief) []events.Package {
	formats := wantedFormats(b)
	var out []events.Package
	seen := map[string]bool{}
	for _, p := range pkgs {
		if p.ID == "" || seen[p.ID] {
			continue
		}
		seen[p.ID] = true
		if !anyEqualFold(p.AdFormats, formats) || !devicesFit(p.DeviceTypes, b.DeviceTypes) || !geoFits(p.GeoTargets, b.Geo) ||
			(len(b.Tags) > 0 && !anyEqualFold(p.Tags, b.Tags)) {
			continue
		}
		out = append(out, p)
	}
	sortByPrice(out)
	return out
}
