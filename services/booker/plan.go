package booker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strings"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/portfolio"
	"github.com/dealflow/dealflow/pkg/events"
)

// HandlePlan is the plan consumer: it folds discovery and negotiation
// events (and the shopping deadline) into the campaign record and, once the
// campaign is ready, plans its portfolio exactly once.
func (s *Service) HandlePlan(ctx context.Context, in events.Event) ([]events.Event, error) {
	if err := events.ValidateCampaignID(in.Subject()); err != nil {
		return nil, bus.Permanent(err)
	}
	if in.Type() == events.KindQuoteReady.Type {
		q, err := events.PayloadOf[events.QuoteReady](in, events.KindQuoteReady)
		if err != nil {
			return nil, bus.Permanent(err)
		}
		if err := s.Campaigns.SaveQuote(ctx, q); err != nil {
			return nil, err
		}
	}
	now := s.now()
	var started bool
	c, out, err := s.Campaigns.Transition(ctx, in.Subject(), func(c *campaign.Campaign, exists bool) ([]events.Event, error) {
		// A campaign published directly as an event has no record yet:
		// its "campaign accepted" line is this consumer's (the API logs
		// its own).
		started = !exists && in.Type() == events.KindCampaignRequested.Type
		return campaign.Apply(c, in, now, s.window())
	})
	if err != nil {
		return nil, classify(err)
	}
	if started && c.Status == events.StatusShopping && c.Request != nil {
		bus.Logger(ctx, s.Log).Info().Str("campaign_id", c.ID).Str("name", c.Request.Brief.Name).
			Str("budget", c.Request.Brief.BudgetMicros.String()).Bool("auto_approve", c.Request.AutoApprove).
			Str("via", "event").Msg("campaign accepted")
	}
	if c.Settled() {
		// Every approved line has its outcome: finish, or re-plan what
		// failed. Checked even when the outcome was applied before, like
		// planning below.
		return s.finishBooking(ctx, in, c, out)
	}
	if !c.ReadyToPlan() {
		return out, nil
	}
	// Checked even when the event was applied before: a replica may have
	// died between applying it and planning.
	if err := s.Campaigns.LoadQuotes(ctx, c); err != nil {
		return nil, err
	}
	quotes := c.Quotes
	c, planned, err := s.Campaigns.Transition(ctx, in.Subject(), func(cc *campaign.Campaign, _ bool) ([]events.Event, error) {
		cc.Quotes = quotes
		return cc.Propose(in.ID(), s.planner(), now)
	})
	if err != nil {
		return nil, classify(err)
	}
	s.logPlan(*bus.Logger(ctx, s.Log), c, planned)
	return append(out, planned...), nil
}

// finishBooking ends the booking of the current approval once every line
// has its outcome: the campaign completes (CampaignCompleted), or an
// auto-approved one re-plans the budget definite failures freed.
func (s *Service) finishBooking(ctx context.Context, in events.Event, c *campaign.Campaign, out []events.Event) ([]events.Event, error) {
	if err := s.Campaigns.LoadQuotes(ctx, c); err != nil {
		return nil, err
	}
	quotes, rev := c.Quotes, c.Approved.Revision
	rp := campaign.Replan{Plan: s.planner(), MaxRevisions: s.maxRevisions()}
	c, more, err := s.Campaigns.Transition(ctx, c.ID, func(cc *campaign.Campaign, _ bool) ([]events.Event, error) {
		cc.Quotes = quotes // the re-plan needs them
		return cc.FinishBooking(in.ID(), rp, s.now())
	})
	if err != nil {
		return nil, classify(err)
	}
	log := *bus.Logger(ctx, s.Log)
	switch {
	case c.Terminal():
		log.Info().Str("status", string(c.Status)).Str("spend", c.TotalSpend().String()).Str("budget", c.Budget().String()).
			Int("deals", len(c.Deals)).Int("failed", len(c.Failures)).Int("unresolved", len(c.Unresolved)).
			Float64("duration_seconds", c.UpdatedAt.Sub(c.CreatedAt).Seconds()).Msg("campaign finished")
	case c.Plan != nil && c.Plan.Revision > rev:
		s.logPlan(log, c, more)
	}
	return append(out, more...), nil
}

// planner is the optimiser as the state machine calls it.
func (s *Service) planner() campaign.Planner {
	return func(c *campaign.Campaign, budget events.Micros, revision int, exclude map[string]string) (*events.PortfolioProposed, error) {
		p, err := BuildPlan(c, s.Weights, budget, revision, exclude)
		if err != nil {
			return nil, err
		}
		FitBudget(p, budget)
		if err := FitEventSize(p, planDataLimit); err != nil {
			return nil, err
		}
		return p, nil
	}
}

// planDataLimit is the most a PortfolioProposed's data may take: the event
// size limit less room for the CloudEvent headers.
const planDataLimit = events.MaxEventBytes - 16<<10

// FitEventSize keeps the proposal's JSON within limit bytes by listing only
// the first exclusions (the most relevant: see BuildPlan) when all of them
// do not fit, setting ExcludedTotal and a note that counts the others by
// kind. A campaign shopping a thousand sellers has thousands of
// exclusions; listed in full they made the event too large to publish, and
// the campaign never got its plan. A plan whose lines alone do not fit is
// an error: it cannot be proposed as one event.
func FitEventSize(p *events.PortfolioProposed, limit int) error {
	full, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("booker: encode plan: %w", err)
	}
	if len(full) <= limit {
		return nil
	}
	all := p.Excluded
	p.Excluded = nil
	base, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("booker: encode plan: %w", err)
	}
	const noteRoom = 2 << 10 // the note added below, and "excluded":[] and excluded_total
	if len(base)+noteRoom > limit {
		p.Excluded = all
		return fmt.Errorf("booker: the plan's %d lines take %d bytes, more than one event may carry (%d)", len(p.Lines), len(base), limit)
	}
	size, kept := len(base)+noteRoom, 0
	for _, x := range all {
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Errorf("booker: encode exclusion: %w", err)
		}
		if size+len(b)+1 > limit {
			break
		}
		size += len(b) + 1
		kept++
	}
	p.Excluded, p.ExcludedTotal = all[:kept], len(all)
	p.Notes = append(p.Notes, fmt.Sprintf("%d of %d exclusions listed (event size limit); the other %d by kind: %s",
		kept, len(all), len(all)-kept, exclusionKinds(all[kept:], 12)))
	return nil
}

// exclusionKinds counts exclusions by the kind their reason starts with
// (the text before the first ':' or '('), most frequent first, naming at
// most `most` kinds.
func exclusionKinds(xs []events.PlanExclusion, most int) string {
	counts := map[string]int{}
	for _, x := range xs {
		k := x.Reason
		if i := strings.IndexAny(k, ":("); i >= 0 {
			k = k[:i]
		}
		k = strings.TrimSpace(k)
		if len(k) > 60 {
			k = k[:60]
		}
		if k == "" {
			k = "other"
		}
		counts[k]++
	}
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if counts[kinds[i]] != counts[kinds[j]] {
			return counts[kinds[i]] > counts[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	var b strings.Builder
	for i, k := range kinds {
		if i == most {
			fmt.Fprintf(&b, ", %d more kinds", len(kinds)-most)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, counts[k])
	}
	return b.String()
}

func (s *Service) logPlan(log zerolog.Logger, c *campaign.Campaign, evs []events.Event) {
	if len(evs) == 0 || c.Plan == nil {
		if c.Status == events.StatusFailed {
			log.Error().Str("campaign_id", c.ID).Strs("errors", c.Errors).Msg("campaign failed: it cannot be planned")
		}
		return
	}
	log.Info().Str("campaign_id", c.ID).Int("revision", c.Plan.Revision).Int("lines", len(c.Plan.Lines)).
		Str("spend", c.Plan.TotalSpendMicros.String()).Str("budget", c.Plan.BudgetMicros.String()).Float64("value", c.Plan.TotalValue).
		Str("status", string(c.Status)).Msg("portfolio proposed")
}

// classify makes the state machine's refusals permanent (dead-lettered with
// the reason) and leaves store failures transient (retried).
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, campaign.ErrUnavailable), bus.IsTransient(err):
		return err
	case errors.Is(err, events.ErrInvalid), errors.Is(err, campaign.ErrInvalidState), errors.Is(err, campaign.ErrStale),
		errors.Is(err, campaign.ErrSelection), errors.Is(err, campaign.ErrNotFound):
		return bus.Permanent(err)
	}
	return err
}

// bookable reports whether a quote ended with a price the buyer may book.
func bookable(q events.QuoteReady) bool {
	return (q.Outcome == events.OutcomeAccepted || q.Outcome == events.OutcomeFixedPrice) && q.FinalCPMMicros > 0 && q.QuoteID != ""
}

// BuildPlan optimises the campaign's quotes within what is left of the budget
// and explains every decision. exclude lists quote keys that must not be
// planned again (booked or failed in an earlier revision).
func BuildPlan(c *campaign.Campaign, weights portfolio.Weights, budget events.Micros, revision int, exclude map[string]string) (*events.PortfolioProposed, error) {
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
	// Exclusions are listed most relevant first: bookable quotes the
	// optimiser left out, then quotes and sellers that could not be planned
	// (FitEventSize keeps the head of the list when it must cut it).
	var notPlanned []events.PlanExclusion
	byKey := map[string]events.QuoteReady{}
	var quotes []portfolio.Quote
	for _, q := range c.SortedQuotes() {
		key := campaign.QuoteKey(q.Seller.URL, q.Package.ID)
		ex := events.PlanExclusion{QuoteID: q.QuoteID, SellerURL: q.Seller.URL, PackageID: q.Package.ID}
		if why, ok := exclude[key]; ok {
			ex.Reason = why
			notPlanned = append(notPlanned, ex)
			continue
		}
		if !bookable(q) {
			ex.Reason = fmt.Sprintf("no bookable price: negotiation %s", q.Outcome)
			if q.Reason != "" {
				ex.Reason += " (" + q.Reason + ")"
			}
			notPlanned = append(notPlanned, ex)
			continue
		}
		byKey[key] = q
		// The line is bounded by the quote's volume (a re-quote books a
		// smaller one); the plan calls that "all available" only when the
		// seller stated its availability and that is the bound.
		avail, quotedVolume := q.AvailableImpressions, false
		if avail == 0 || (q.Impressions > 0 && q.Impressions < avail) {
			avail, quotedVolume = q.Impressions, true
		}
		quotes = append(quotes, portfolio.Quote{ID: key, Seller: q.Seller.URL, PackageID: q.Package.ID, CPM: q.FinalCPMMicros.Dollars(),
			AvailableImpressions: avail, QuotedVolume: quotedVolume, MinImpressions: q.MinImpressions, Formats: q.Package.AdFormats,
			Negotiable: q.Package.Negotiable, VolumeDiscounts: q.Package.VolumeDiscounts})
	}
	for _, s := range c.Skipped {
		what := "seller"
		if s.PackageID != "" {
			what = "package"
		}
		notPlanned = append(notPlanned, events.PlanExclusion{SellerURL: s.SellerURL, PackageID: s.PackageID,
			Reason: what + " skipped (" + s.Code + "): " + s.Reason})
	}
	res, err := portfolio.Optimise(quotes, pb)
	if err != nil {
		return nil, fmt.Errorf("booker: optimise: %w", err)
	}
	for _, l := range res.Lines {
		q := byKey[l.QuoteID]
		plan.Lines = append(plan.Lines, events.PlanLine{QuoteID: q.QuoteID, SellerURL: q.Seller.URL, SellerName: q.Seller.Name, Protocol: q.Seller.Protocol.Or(), PackageID: q.Package.ID,
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
	plan.Excluded = append(plan.Excluded, notPlanned...)
	for _, l := range plan.Lines {
		plan.TotalSpendMicros += l.SpendMicros
	}
	plan.TotalValue, plan.Notes = res.TotalValue, res.Notes
	if len(plan.Lines) == 0 {
		plan.Notes = append(plan.Notes, "no quote could be booked within the brief")
	}
	return plan, nil
}

// FitBudget makes the plan's booked amount (events.CostMicros per line:
// impressions x CPM micros / 1000, rounded up) fit the budget, trimming the
// lowest-scored lines should it be over (a safety net: the optimiser already
// fits in micros), and sets every line's spend and the total from micros.
func FitBudget(p *events.PortfolioProposed, budget events.Micros) {
	var total events.Micros
	for i := range p.Lines {
		l := &p.Lines[i]
		l.SpendMicros = events.CostMicros(l.Impressions, l.CPMMicros)
		total += l.SpendMicros
	}
	for i := len(p.Lines) - 1; i >= 0 && total > budget; i-- {
		l := &p.Lines[i]
		if l.CPMMicros <= 0 {
			continue
		}
		excess := total - budget
		// ceil(excess x 1000 / cpm) impressions cost at least the excess.
		cut := impressionsCosting(excess, l.CPMMicros)
		before := l.SpendMicros
		l.Impressions = max(0, l.Impressions-cut)
		l.SpendMicros = events.CostMicros(l.Impressions, l.CPMMicros)
		total += l.SpendMicros - before
	}
	kept := p.Lines[:0]
	p.TotalSpendMicros = 0
	for _, l := range p.Lines {
		if l.Impressions > 0 {
			kept = append(kept, l)
			p.TotalSpendMicros += l.SpendMicros
		}
	}
	p.Lines = kept
}

// impressionsCosting is the fewest impressions at cpm that cost at least
// amount: ceil(amount x 1000 / cpm), exact, saturated to MaxInt64.
func impressionsCosting(amount, cpm events.Micros) int64 {
	n := new(big.Int).Mul(big.NewInt(int64(amount)), big.NewInt(1000))
	n.Add(n, big.NewInt(int64(cpm)-1))
	n.Quo(n, big.NewInt(int64(cpm)))
	if !n.IsInt64() {
		return math.MaxInt64
	}
	return n.Int64()
}
