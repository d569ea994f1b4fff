package adcp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/dealflow/dealflow/pkg/events"
)

// ErrNoProposal means the seller answered a refine without a usable
// proposal for the product (none, several products, another pricing
// option, or a finalize without a future expires_at): the buyer keeps to
// buying the product as a package.
var ErrNoProposal = errors.New("adcp: the seller offered no proposal for the product")

// SupportsProposals reports a seller that offers proposals: the
// media_buy.supports_proposals capability, or the refine buying mode.
func (c *Capabilities) SupportsProposals() bool {
	if c == nil || c.MediaBuy == nil {
		return false
	}
	return c.MediaBuy.SupportsProposals || c.SupportsBuyingMode("refine")
}

// CommitProduct refines one product and pricing option into a proposal and
// finalizes it: get_products refine with a product include entry whose
// ask (free text: AdCP 3.1 has no numeric counter-offer) states the
// pricing option, the CPM and the budget, then a separate finalize call
// (finalize entries may not be mixed with others). It returns the
// committed proposal, held until its ExpiresAt, which must be after now,
// and the product as the refine answered it (nil when it was not among
// the products), for the buyer to check the price it committed to.
// A refine whose answer carries no proposal allocating 100% to the
// product at that option is ErrNoProposal.
func (c *Client) CommitProduct(ctx context.Context, s Seller, productID, pricingOptionID, ask string, now time.Time) (*Proposal, *Product, error) {
	res, err := c.Refine(ctx, s, []Refinement{{Scope: "product", ProductID: productID, Action: "include", Ask: ask}})
	if err != nil {
		return nil, nil, err
	}
	id := ""
	for _, p := range res.Proposals {
		if len(p.Allocations) != 1 {
			continue
		}
		a := p.Allocations[0]
		if a.ProductID == productID && a.Percentage == 100 && (a.PricingOptionID == "" || a.PricingOptionID == pricingOptionID) {
			id = p.ProposalID
			break
		}
	}
	if id == "" {
		return nil, nil, fmt.Errorf("%w (%s/%s: %d proposals in the refine answer)", ErrNoProposal, productID, pricingOptionID, len(res.Proposals))
	}
	pr, err := c.FinalizeProposal(ctx, s, id)
	if err != nil {
		return nil, nil, err
	}
	if pr.Status != "" && pr.Status != "committed" {
		return nil, nil, fmt.Errorf("%w: proposal %s is %s after finalize", ErrNoProposal, id, pr.Status)
	}
	if pr.ExpiresAt.IsZero() || !pr.ExpiresAt.After(now) {
		return nil, nil, fmt.Errorf("%w: finalized proposal %s has no future expires_at", ErrNoProposal, id)
	}
	var prod *Product
	for i := range res.Products {
		if res.Products[i].ProductID == productID {
			prod = &res.Products[i]
		}
	}
	return pr, prod, nil
}

// Option is the product's pricing option with that id, or nil.
func (p *Product) Option(id string) *PricingOption {
	if p == nil {
		return nil
	}
	for i := range p.PricingOptions {
		if p.PricingOptions[i].PricingOptionID == id {
			return &p.PricingOptions[i]
		}
	}
	return nil
}

// PriceHolds reports whether a CPM still stands for the option: a fixed
// price equal to it, or an auction whose floor is not above it. An option
// the answer did not carry (nil) holds.
func (o *PricingOption) PriceHolds(cpm events.Micros) bool {
	switch {
	case o == nil || !o.Priced:
		return true
	case o.Fixed:
		return o.FixedPriceMicros == cpm
	default:
		return o.FloorPriceMicros <= cpm
	}
}

// ProposalAsk is the free-text ask of a proposal refine (AdCP 3.1 has no
// numeric counter-offer): the product, the pricing option, the CPM and the
// budget.
func ProposalAsk(productID, pricingOptionID string, cpm, budget events.Micros, imps int64) string {
	return fmt.Sprintf("one proposal allocating 100%% to product %s at pricing option %s, CPM %s USD, total budget %s USD (%d impressions)",
		productID, pricingOptionID, cpm.Cents(), budget.Cents(), imps)
}

// ProposalQuote is a proposal priced as one line: what a budget buys across
// its allocations at the allocated products' fixed prices.
type ProposalQuote struct {
	// CPMMicros is the blended CPM: 100 / sum(pct_i / cpm_i), the price of
	// an impression when the budget is split as allocated, rounded up to the
	// micro so the impressions it implies are never overstated.
	CPMMicros events.Micros
	// MinSpendMicros is the smallest total_budget that gives every
	// allocation its product's min_spend_per_package (and the proposal's
	// total_budget_guidance.min): max(min_spend_i * 100 / pct_i).
	MinSpendMicros events.Micros
	// Channels are the allocated products' channels, without repeats.
	Channels []string
	// Available is the forecast inventory of the allocated products scaled
	// to the split (0 when a product has no availability forecast).
	Available int64
	// Explain says how the price was derived, for the plan.
	Explain string
}

// Price prices the proposal from the products of the same answer: each
// allocation must name a product of the answer with a priced fixed CPM
// option (the allocation's pricing_option_id, or the product's only fixed
// CPM option), and the percentages must add up to 100. A proposal that
// cannot be priced so is an error saying why (auction allocations are
// priced by the buyer's bid, which a proposal cannot carry in 3.1).
func (pr Proposal) Price(products []Product) (ProposalQuote, error) {
	var q ProposalQuote
	if len(pr.Allocations) == 0 {
		return q, fmt.Errorf("proposal %s has no allocations", pr.ProposalID)
	}
	byID := map[string]*Product{}
	for i := range products {
		byID[products[i].ProductID] = &products[i]
	}
	var total, inv float64 // inv = sum(pct / cpm)
	seen := map[string]bool{}
	var parts []string
	type share struct{ avail, cpm, pct float64 }
	var shares []share
	for _, a := range pr.Allocations {
		p := byID[a.ProductID]
		if p == nil {
			return q, fmt.Errorf("proposal %s allocates %v%% to product %s, which the answer does not carry", pr.ProposalID, a.Percentage, a.ProductID)
		}
		if a.Percentage <= 0 || a.Percentage > 100 {
			return q, fmt.Errorf("proposal %s allocates %v%% to %s", pr.ProposalID, a.Percentage, a.ProductID)
		}
		var opt *PricingOption
		for i := range p.PricingOptions {
			o := &p.PricingOptions[i]
			if !strings.EqualFold(o.PricingModel, "cpm") || !o.Fixed || o.FixedPriceMicros <= 0 {
				continue
			}
			if a.PricingOptionID == o.PricingOptionID || (a.PricingOptionID == "" && opt == nil) {
				opt = o
			}
		}
		if opt == nil {
			return q, fmt.Errorf("proposal %s: product %s has no fixed CPM price at pricing option %q (auction allocations are not bought through proposals)", pr.ProposalID, a.ProductID, a.PricingOptionID)
		}
		if opt.Currency != "" && !strings.EqualFold(opt.Currency, "USD") {
			return q, fmt.Errorf("proposal %s: product %s is priced in %s (dealflow buys USD)", pr.ProposalID, a.ProductID, opt.Currency)
		}
		total += a.Percentage
		inv += a.Percentage / float64(opt.FixedPriceMicros)
		if opt.MinSpendMicros > 0 {
			q.MinSpendMicros = max(q.MinSpendMicros, events.Micros(math.Ceil(float64(opt.MinSpendMicros)*100/a.Percentage)))
		}
		for _, ch := range p.Channels {
			if !seen[ch] {
				seen[ch] = true
				q.Channels = append(q.Channels, ch)
			}
		}
		shares = append(shares, share{float64(p.Forecast.Available()), float64(opt.FixedPriceMicros), a.Percentage})
		parts = append(parts, fmt.Sprintf("%v%% %s at %s", a.Percentage, a.ProductID, opt.FixedPriceMicros.Cents()))
	}
	if math.Abs(total-100) > 0.01 {
		return q, fmt.Errorf("proposal %s allocates %v%%, not 100%%", pr.ProposalID, total)
	}
	q.CPMMicros = events.Micros(math.Ceil(100 / inv))
	q.MinSpendMicros = max(q.MinSpendMicros, pr.MinBudgetMicros)
	// A budget B buys pct_i*B/cpm_i impressions of product i, B*inv in
	// all: product i's inventory caps the total at avail_i*cpm_i*inv/pct_i.
	avail := math.Inf(1)
	for _, sh := range shares {
		avail = math.Min(avail, sh.avail*sh.cpm*inv/sh.pct)
	}
	q.Available = int64(avail)
	q.Explain = truncate(fmt.Sprintf("proposal %s (%s): %s, blended CPM %s", pr.ProposalID, pr.Name, strings.Join(parts, ", "), q.CPMMicros.Cents()), 300)
	return q, nil
}
