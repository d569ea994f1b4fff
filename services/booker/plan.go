package booker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"net/url"
	"sort"
	"strings"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/portfolio"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// HandlePlan is the plan consumer: it folds discovery and negotiation
// events (and the shopping deadline) into the campaign record and, once the
// campaign is ready, plans its portfolio exactly once. payload is the
// event's, as the runner decoded it (campaign.Apply).
func (s *Service) HandlePlan(ctx context.Context, in events.Event, payload any) ([]events.Event, error) {
	if err := events.ValidateCampaignID(in.Subject()); err != nil {
		return nil, bus.Permanent(err)
	}
	if q, ok := payload.(*events.QuoteReady); ok {
		if err := s.Campaigns.SaveQuote(ctx, *q); err != nil {
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
		return campaign.Apply(c, in, payload, now, s.window())
	})
	if err != nil {
		return nil, classify(err)
	}
	if started && c.Status == events.StatusShopping && c.Request != nil {
		log := bus.CampaignLogger(ctx, s.Log, c.ID)
		log.Info().Str("name", c.Request.Brief.Name).
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
	s.logPlan(bus.CampaignLogger(ctx, s.Log, c.ID), c, planned)
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
	log := bus.CampaignLogger(ctx, s.Log, c.ID)
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
			log.Error().Strs("errors", c.Errors).Msg("campaign failed: it cannot be planned")
		}
		return
	}
	log.Info().Int("revision", c.Plan.Revision).Int("lines", len(c.Plan.Lines)).
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
	allowance := productAllowances(c.SortedQuotes())
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
		if why := outsideStatedRange(q); why != "" {
			ex.Reason = why
			notPlanned = append(notPlanned, ex)
			continue
		}
		if first, ok := allowance[campaign.QuoteKey(SellerIdentity(q.Seller), q.Package.ProductID)]; ok && first != q.Package.ID {
			ex.Reason = fmt.Sprintf("same product %s as package %s: the product's stated availability (%d impressions) is one allowance, planned once",
				q.Package.ProductID, first, q.AvailableImpressions)
			notPlanned = append(notPlanned, ex)
			continue
		}
		byKey[key] = q
		// Availability is only what the seller stated: the quote's volume
		// was sized by the buyer before negotiating, so a line may take
		// more (or less) at the agreed CPM, and the booker re-quotes the
		// planned volume. Without a stated availability the line is bounded
		// by the budget and the seller cap alone.
		// The per-seller cap and min_sellers count sellers, not spellings of
		// their URLs (SellerIdentity).
		quotes = append(quotes, portfolio.Quote{ID: key, Seller: SellerIdentity(q.Seller), PackageID: q.Package.ID, CPM: q.FinalCPMMicros.Dollars(),
			AvailableImpressions: q.AvailableImpressions, MinImpressions: q.MinImpressions, Formats: q.Package.AdFormats,
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
	plan.Notes = append(plan.Notes, channelNotes(req.Brief.Channels, c.SortedQuotes(), plan)...)
	return plan, nil
}

// channelNotes says, per channel the brief asked for, what the plan got
// and, when nothing, why: a campaign for "CTV and video" that books only
// video says what became of CTV.
func channelNotes(channels []string, quotes []events.QuoteReady, plan *events.PortfolioProposed) []string {
	var notes []string
	for _, ch := range channels {
		ch = strings.ToLower(strings.TrimSpace(ch))
		if ch == "" {
			continue
		}
		var lines int
		var spend events.Micros
		for _, l := range plan.Lines {
			if hasFormat(l.Formats, ch) {
				lines++
				spend += l.SpendMicros
			}
		}
		if lines > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d lines, $%s planned", ch, lines, spend.Cents()))
			continue
		}
		quoted, bookableN := 0, 0
		outcomes := map[string]int{}
		for _, q := range quotes {
			if !hasFormat(q.Package.AdFormats, ch) {
				continue
			}
			quoted++
			if bookable(q) {
				bookableN++
			} else {
				outcomes[q.Outcome]++
			}
		}
		switch {
		case quoted == 0:
			notes = append(notes, ch+": nothing planned: no seller's package for it was quoted (none fit, or the sellers were skipped)")
		case bookableN == 0:
			notes = append(notes, fmt.Sprintf("%s: nothing planned: %d packages quoted, none at a bookable price (%s)", ch, quoted, countsText(outcomes)))
		default:
			notes = append(notes, fmt.Sprintf("%s: nothing planned: %d bookable quotes, none chosen (%s)", ch, bookableN, exclusionFor(ch, quotes, plan)))
		}
	}
	return notes
}

// exclusionFor is the plan's reason for leaving out the first bookable
// quote of the channel.
func exclusionFor(ch string, quotes []events.QuoteReady, plan *events.PortfolioProposed) string {
	of := map[string]bool{}
	for _, q := range quotes {
		if hasFormat(q.Package.AdFormats, ch) && bookable(q) {
			of[campaign.QuoteKey(q.Seller.URL, q.Package.ID)] = true
		}
	}
	for _, x := range plan.Excluded {
		if of[campaign.QuoteKey(x.SellerURL, x.PackageID)] {
			return x.Reason
		}
	}
	return "left out by the optimiser"
}

func hasFormat(formats []string, ch string) bool {
	for _, f := range formats {
		if strings.EqualFold(strings.TrimSpace(f), ch) {
			return true
		}
	}
	return false
}

// countsText renders counts as "walked_away 2, error 1", most first.
func countsText(counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, counts[k])
	}
	return strings.Join(parts, ", ")
}

// SellerIdentity is the seller a quote's per-seller cap counts against: its
// registry agent id when it has one, else its canonical URL with every
// loopback and unspecified address spelled 127.0.0.1. The discoverer already
// shops a seller under one name only (services/discoverer: same URL, agent
// id, origin or resolved address); this keeps the cap on the seller should
// two spellings still reach planning.
func SellerIdentity(s events.Seller) string {
	if s.AgentID != "" {
		return "agent:" + s.AgentID
	}
	u, err := sellerclient.CanonicalURL(s.URL)
	if err != nil {
		return "url:" + s.URL
	}
	if p, err := url.Parse(u); err == nil {
		if a, err := netip.ParseAddr(p.Hostname()); err == nil && (a.IsLoopback() || a.IsUnspecified()) {
			p.Host = "127.0.0.1"
			if port := p.Port(); port != "" {
				p.Host += ":" + port
			}
			u = p.String()
		}
	}
	return "url:" + u
}

// outsideStatedRange is why a public-tier quote is not booked: its CPM
// is outside the package's stated public price range, so it cannot be a
// price for that package (a public quote is the public price). "" when it
// is inside, or the seller stated no range. Authenticated tiers get tier
// discounts below the public range and are not held to it.
func outsideStatedRange(q events.QuoteReady) string {
	lo, hi, cpm := q.Package.PriceLowMicros, q.Package.PriceHighMicros, q.FinalCPMMicros
	if q.Tier != events.TierPublic || lo <= 0 || hi < lo || (cpm >= lo && cpm <= hi) {
		return ""
	}
	return fmt.Sprintf("quoted CPM $%s is outside the package's stated public range $%s–$%s: not booked", cpm.Cents(), lo.Cents(), hi.Cents())
}

// productAllowances maps seller|product to the one package planned on a
// product with a stated availability: several packages on one product
// share that availability, so booking each up to it would book the
// product more than once. The cheapest bookable quote wins (ties: the
// package id).
func productAllowances(quotes []events.QuoteReady) map[string]string {
	best := map[string]events.QuoteReady{}
	for _, q := range quotes {
		if q.Package.ProductID == "" || q.AvailableImpressions <= 0 || !bookable(q) || outsideStatedRange(q) != "" {
			continue
		}
		k := campaign.QuoteKey(SellerIdentity(q.Seller), q.Package.ProductID)
		if b, ok := best[k]; !ok || q.FinalCPMMicros < b.FinalCPMMicros || (q.FinalCPMMicros == b.FinalCPMMicros && q.Package.ID < b.Package.ID) {
			best[k] = q
		}
	}
	out := make(map[string]string, len(best))
	for k, q := range best {
		out[k] = q.Package.ID
	}
	return out
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
