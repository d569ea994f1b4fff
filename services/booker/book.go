package booker

import (
	"context"
	"fmt"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/pkg/events"
)

// HandleBook is the book consumer: it takes up an approved portfolio and
// fans it out into one LineApproved per line. It never calls a seller, so
// an approval is never held back by one: each line then books, retries and
// reports on its own (HandleLine), and the plan consumer folds the
// outcomes as they come. The line events' ids derive from the approval's,
// so a redelivered approval (or the sweeper's copy) hands out the same
// lines, which JetStream and the ledger de-duplicate.
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
	log := bus.Logger(ctx, s.Log)
	if appr.ApprovedBy == "auto" {
		// The API logs its own approvals; an automatic one is logged as
		// its booking begins.
		log.Info().Str("by", "auto").Int("revision", appr.Revision).Int("lines", len(appr.Lines)).Msg("portfolio approved")
	}
	lines := c.LinesToBook(appr)
	out := make([]events.Event, 0, len(lines))
	for _, l := range lines {
		key := campaign.LineKey(l)
		e, err := events.Derive(in, events.KindLineApproved, events.StageBooker, "line:"+key, events.LineApproved{
			CampaignID: c.ID, PlanRevision: appr.Revision, ApprovedBy: appr.ApprovedBy, LineKey: key, Lines: len(appr.Lines), Line: l})
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
