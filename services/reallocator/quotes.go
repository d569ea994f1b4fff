package reallocator

import (
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/portfolio"
	"github.com/dealflow/dealflow/pkg/events"
)

// quoteViews are the campaign's bookable quotes (a negotiated or fixed
// price, as the booker's plan takes them), valued as the booker's
// optimiser values them: portfolio.Score with the brief's weights, else
// the default ones the booker runs with.
func quoteViews(c *campaign.Campaign) []QuoteView {
	w := portfolio.DefaultWeights()
	if bw := c.Request.Brief.Weights; bw != nil {
		w = portfolio.Weights{Price: bw.Price, Video: bw.Video, Display: bw.Display, Negotiable: bw.Negotiable, Volume: bw.Volume,
			PriceCeiling: bw.PriceCeilingMicros.Dollars()}
	}
	var out []QuoteView
	for _, q := range c.SortedQuotes() {
		if (q.Outcome != events.OutcomeAccepted && q.Outcome != events.OutcomeFixedPrice) || q.FinalCPMMicros <= 0 || q.QuoteID == "" {
			continue
		}
		score := portfolio.Score(portfolio.Quote{CPM: q.FinalCPMMicros.Dollars(), Formats: q.Package.AdFormats, Negotiable: q.Package.Negotiable,
			VolumeDiscounts: q.Package.VolumeDiscounts}, w)
		out = append(out, QuoteView{QuoteRef: events.QuoteRef{SellerURL: q.Seller.URL, SellerName: q.Seller.Name, PackageID: q.Package.ID,
			QuoteID: q.QuoteID, CPMMicros: q.FinalCPMMicros}, Protocol: q.Seller.Protocol.Or(), Score: score, MinImpressions: q.MinImpressions,
			MinSpend: q.Package.MinSpendMicros})
	}
	return out
}

// remaining are the quotes no line of the record was booked from and no
// earlier revision proposed to book (an add that failed is not tried
// again).
func remaining(r *Record, quotes []QuoteView) []QuoteView {
	taken := map[string]bool{}
	for _, l := range r.Lines {
		taken[l.SellerURL+"|"+l.PackageID] = true
	}
	for _, v := range r.Revisions {
		for _, m := range v.Proposal.Moves {
			if m.ToQuote != nil {
				taken[m.ToQuote.SellerURL+"|"+m.ToQuote.PackageID] = true
			}
		}
	}
	var out []QuoteView
	for _, q := range quotes {
		if !taken[q.key()] {
			out = append(out, q)
		}
	}
	return out
}
