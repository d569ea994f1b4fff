package booker

import (
	"fmt"

	"github.com/dealflow/dealflow/internal/portfolio"
	"github.com/dealflow/dealflow/pkg/events"
)

// bookable reports whether a quote ended with a price the buyer may book.
func bookable(q events.QuoteReady) bool {
	return (q.Outcome == events.OutcomeAccepted || q.Outcome == events.OutcomeFixedPrice) && q.FinalCPMMicros > 0 && q.QuoteID != ""
}

// BuildPlan optimises the campaign's quotes within what is left of the budget
// and explains every decision. exclude lists quote keys that must not be
// planned again (booked or failed in an earlier revision).
func BuildPlan(c *Campaign, weights portfolio.Weights, budget events.Micros, revision int, exclude map[string]string) (*events.PortfolioProposed, error) {
	req := c.Request
	if w := req.Brief.Weights; w != nil {
		weights = portfolio.Weights{Price: w.Price, Video: w.Video, Display: w.Display, Negotiable: w.Negotiable, Volume: w.Volume,
			PriceCeiling: w.PriceCeilingMicros.Dollars()}
	}
	// The optimiser reads these dollars back to exactly these micros (amounts
	// from micros convert back exactly, and it never reads a limit or a CPM
	// above the value given).
	pb := portfolio.Brief{
		Budget:       budget.Dollars(),
		PerSellerCap: req.Brief.PerSellerCapMicros.Dollars(),
		FormatMix:    req.Brief.FormatMix,
		MinSellers:   req.Brief.MinSellers,
		MaxCPM:       req.Brief.KPIs.MaxCPMMicros.Dollars(),
		Weights:      weights,
	}
	plan := &events.PortfolioProposed{CampaignID: c.ID, BudgetMicros: budget, AutoApprove: req.AutoApprove, Revision: revision, Lines: []events.PlanLine{}}
	byKey := map[string]events.QuoteReady{}
	var quotes []portfolio.Quote
	for _, q := range c.SortedQuotes() {
		key := QuoteKey(q.Seller.URL, q.Package.ID)
		ex := events.PlanExclusion{QuoteID: q.QuoteID, SellerURL: q.Seller.URL, PackageID: q.Package.ID}
		if why, ok := exclude[key]; ok {
			ex.Reason = why
			plan.Excluded = append(plan.Excluded, ex)
			continue
		}
		if !bookable(q) {
			ex.Reason = fmt.Sprintf("no bookable price: negotiation %s", q.Outcome)
			if q.Reason != "" {
				ex.Reason += " (" + q.Reason + ")"
			}
			plan.Excluded = append(plan.Excluded, ex)
			continue
		}
		byKey[key] = q
		avail := q.AvailableImpressions
		if avail == 0 || (q.Impressions > 0 && q.Impressions < avail) {
			avail = q.Impressions
		}
		quotes = append(quotes, portfolio.Quote{ID: key, Seller: q.Seller.URL, PackageID: q.Package.ID, CPM: q.FinalCPMMicros.Dollars(),
			AvailableImpressions: avail, MinImpressions: q.MinImpressions, Formats: q.Package.AdFormats,
			Negotiable: q.Package.Negotiable, VolumeDiscounts: q.Package.VolumeDiscounts})
	}
	for _, s := range c.Skipped {
		plan.Excluded = append(plan.Excluded, events.PlanExclusion{SellerURL: s.SellerURL, Reason: "seller skipped (" + s.Code + "): " + s.Reason})
	}
	res, err := portfolio.Optimise(quotes, pb)
	if err != nil {
		return nil, fmt.Errorf("booker: optimise: %w", err)
	}
	for _, l := range res.Lines {
		q := byKey[l.QuoteID]
		plan.Lines = append(plan.Lines, events.PlanLine{QuoteID: q.QuoteID, SellerURL: q.Seller.URL, SellerName: q.Seller.Name, PackageID: q.Package.ID,
			ProductID: q.Package.ProductID, DealType: q.DealType, Formats: q.Package.AdFormats, Tier: q.Tier,
			// The quote's exact price (the optimiser read the same micros; the
			// seller books at the quote's price in any case).
			CPMMicros: q.FinalCPMMicros, Impressions: l.Impressions, SpendMicros: events.CostMicros(l.Impressions, q.FinalCPMMicros),
			Score: l.Score, Reason: l.Reason})
	}
	for _, e := range res.Excluded {
		q := byKey[e.QuoteID]
		plan.Excluded = append(plan.Excluded, events.PlanExclusion{QuoteID: q.QuoteID, SellerURL: q.Seller.URL, PackageID: q.Package.ID, Reason: e.Reason})
	}
	for _, l := range plan.Lines {
		plan.TotalSpendMicros += l.SpendMicros
	}
	plan.TotalValue, plan.Notes = res.TotalValue, res.Notes
	if len(plan.Lines) == 0 {
		plan.Notes = append(plan.Notes, "no quote could be booked within the brief")
	}
	return plan, nil
}
