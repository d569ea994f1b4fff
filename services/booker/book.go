package booker

import (
	"context"
	"fmt"
	"sync"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/pkg/events"
)

// HandleBook is the book consumer: it takes up an approved portfolio, books
// every line exactly once (in parallel across sellers) through the ledger,
// emits DealBooked and BookingFailed, and lets the state machine finish the
// campaign or re-plan the budget freed by failures.
func (s *Service) HandleBook(ctx context.Context, in events.Event) ([]events.Event, error) {
	appr, err := events.PayloadOf[events.PortfolioApproved](in, events.KindPortfolioApproved)
	if err != nil {
		return nil, bus.Permanent(err)
	}
	if appr.CampaignID != in.Subject() {
		return nil, bus.Permanent(fmt.Errorf("%w: approval names campaign %q on subject %q", events.ErrInvalid, appr.CampaignID, in.Subject()))
	}
	now := s.now()
	c, _, err := s.Campaigns.Transition(ctx, in.Subject(), func(c *campaign.Campaign, exists bool) ([]events.Event, error) {
		if !exists {
			return nil, fmt.Errorf("%w: approval for unknown campaign %s", campaign.ErrNotFound, in.Subject())
		}
		return nil, c.BeginBooking(appr, now)
	})
	if err != nil {
		return nil, classify(err)
	}
	if err := s.Campaigns.LoadQuotes(ctx, c); err != nil {
		return nil, err
	}
	if appr.ApprovedBy == "auto" {
		// The API logs its own approvals; an automatic one is logged as
		// its booking begins.
		bus.Logger(ctx, s.Log).Info().Str("campaign_id", c.ID).Str("by", "auto").Int("revision", appr.Revision).
			Int("lines", len(appr.Lines)).Msg("portfolio approved")
	}

	type result struct {
		deal *events.DealBooked
		fail *events.BookingFailed
		err  error
	}
	lines := c.LinesToBook(appr)
	results := make([]result, len(lines))
	conc := s.BookConcurrency
	if conc <= 0 {
		conc = 8
	}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i, l := range lines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			d, f, err := s.Booker.BookLine(ctx, s.Ledger, c, l)
			results[i] = result{d, f, err}
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.err != nil {
			return nil, fmt.Errorf("booker: outcome unknown, retrying with the same idempotency keys: %w", r.err)
		}
	}

	var out []events.Event
	var deals []events.DealBooked
	var fails []events.BookingFailed
	log := bus.Logger(ctx, s.Log).With().Str("campaign_id", c.ID).Logger()
	for i, r := range results {
		key := "line:" + campaign.LineKey(lines[i])
		if r.deal != nil {
			d := *r.deal
			deals = append(deals, d)
			e, err := events.Derive(in, events.KindDealBooked, events.StageBooker, key, d)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
			if d.CPMMismatch {
				log.Error().Str("seller", d.SellerURL).Str("deal_id", d.DealID).Str("booked_cpm", d.CPMMicros.String()).
					Str("agreed_cpm", d.AgreedCPMMicros.String()).Msg("ALARM: booked CPM differs from agreed CPM")
			}
			log.Info().Str("seller", d.SellerURL).Str("protocol", string(d.Protocol)).Str("package_id", d.PackageID).Str("deal_id", d.DealID).Str("media_buy_id", d.MediaBuyID).
				Str("cpm", d.CPMMicros.String()).Str("spend", d.SpendMicros.String()).Msg("deal booked")
			continue
		}
		f := *r.fail
		fails = append(fails, f)
		e, err := events.Derive(in, events.KindBookingFailed, events.StageBooker, key, f)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		log.Warn().Str("seller", f.SellerURL).Str("package_id", f.PackageID).Str("code", f.Code).Str("reason", f.Reason).Msg("booking failed")
	}

	rp := campaign.Replan{Plan: s.planner(), MaxRevisions: s.maxRevisions()}
	quotes := c.Quotes
	counted := map[string]bool{}
	for _, d := range c.Deals {
		counted[d.SellerURL+"|"+d.PackageID+"|"+d.QuoteID] = true
	}
	c, more, err := s.Campaigns.Transition(ctx, c.ID, func(cc *campaign.Campaign, _ bool) ([]events.Event, error) {
		cc.Quotes = quotes // the re-plan needs them
		return cc.FinishBooking(in.ID(), appr, deals, fails, rp, now)
	})
	if err != nil {
		return nil, classify(err)
	}
	if s.Metrics != nil {
		// Counted once: deals this delivery added to the record.
		for _, d := range c.Deals {
			if !counted[d.SellerURL+"|"+d.PackageID+"|"+d.QuoteID] {
				s.Metrics.ObserveDealBooked(d.DealType, d.SpendMicros)
			}
		}
	}
	if c.Terminal() {
		log.Info().Str("status", string(c.Status)).Str("spend", c.TotalSpend().String()).Str("budget", c.Budget().String()).
			Int("deals", len(c.Deals)).Int("failed", len(c.Failures)).Dur("duration", c.UpdatedAt.Sub(c.CreatedAt)).Msg("campaign finished")
	} else if c.Plan != nil && c.Plan.Revision > appr.Revision {
		s.logPlan(log, c, more)
	}
	return append(out, more...), nil
}
