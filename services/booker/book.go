package booker

import (
	"context"
	"fmt"
	"strconv"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/pkg/events"
)

// HandleBook is the book consumer: it takes up an approved portfolio and
// fans it out into one LineApproved per line. It never calls a seller, so
// an approval is never held back by one: each line then books, retries and
// reports on its own (HandleLine), and the plan consumer folds the
// outcomes as they come. The line events' ids derive from the approval's
// campaign, source and revision, not from its event id, so a redelivered
// approval and every copy the sweeper publishes (approvalParent) hand out
// the same lines, which JetStream and the ledger de-duplicate.
//
// An approval of a plan revision the record does not show yet
// (campaign.ErrNotVisible) is retried, never dead-lettered: the record
// is read through the bucket's leader, so this does not happen on a
// healthy store, and if the retries run out the sweeper publishes the
// approval again.
func (s *Service) HandleBook(ctx context.Context, in events.Event, p *events.PortfolioApproved) ([]events.Event, error) {
	appr := *p
	if appr.CampaignID != in.Subject() {
		return nil, bus.Permanent(fmt.Errorf("%w: approval names campaign %q on subject %q", events.ErrInvalid, appr.CampaignID, in.Subject()))
	}
	now := s.now()
	c, _, err := s.Campaigns.Transition(ctx, in.Subject(), func(c *campaign.Campaign, exists bool) ([]events.Event, error) {
		if !exists {
			// Approvals follow the plan's write: a campaign without a
			// record is one not visible yet.
			return nil, fmt.Errorf("%w: approval for campaign %s, which has no record", campaign.ErrNotVisible, in.Subject())
		}
		return nil, c.BeginBooking(appr, now)
	})
	if err != nil {
		return nil, classify(err)
	}
	log := bus.CampaignLogger(ctx, s.Log, c.ID)
	if appr.ApprovedBy == "auto" {
		// The API logs its own approvals; an automatic one is logged as
		// its booking begins.
		log.Info().Str("by", "auto").Int("revision", appr.Revision).Int("lines", len(appr.Lines)).Msg("portfolio approved")
	}
	lines := c.LinesToBook(appr)
	parent := approvalParent(in, appr)
	out := make([]events.Event, 0, len(lines))
	for _, l := range lines {
		key := campaign.LineKey(l)
		e, err := events.Derive(parent, events.KindLineApproved, events.StageBooker, "line:"+key, events.LineApproved{
			CampaignID: c.ID, PlanRevision: appr.Revision, ApprovedBy: appr.ApprovedBy, LineKey: key, Lines: len(appr.Lines), Line: l})
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// approvalParent is the approval as the parent of its lines: the event,
// under an id that every copy of it shares (its campaign, source and
// revision), with its trace.
func approvalParent(in events.Event, appr events.PortfolioApproved) events.Event {
	p := in.Clone()
	p.SetID(events.ChildID(in.Subject(), in.Source(), "approval-"+strconv.Itoa(appr.Revision)))
	return p
}
