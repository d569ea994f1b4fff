package adcp

import (
	"context"
	"errors"
	"fmt"
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
