package booker

import (
	"context"
	"sync"
	"time"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/pkg/events"
)

// PublishGrace is how long a just-written campaign may wait for its own
// publisher (the API or the plan consumer) before the sweeper publishes
// what it is due.
const PublishGrace = 10 * time.Second

// republishEvery throttles how often the sweeper re-publishes one event.
const republishEvery = 5 * time.Second

// RunSweeper follows the open campaigns through a watch of the campaign
// store and, every interval, publishes the events they are due
// (campaign.Campaign.Due): the shopping deadline, a request whose
// publication failed, and an approval the book consumer has not taken up
// (lost, or dead-lettered: a campaign is never left proposed or booking
// with its approval unbooked). Planning itself stays with the plan consumer,
// which receives the deadline like any other input, so every booker replica
// may sweep: the events have deterministic ids and JetStream drops copies.
func (s *Service) RunSweeper(ctx context.Context, every time.Duration, publish func(context.Context, events.Event) error) {
	var (
		mu   sync.Mutex
		open = map[string]*campaign.Campaign{}
	)
	go func() {
		for ctx.Err() == nil {
			err := s.Campaigns.Watch(ctx, func(id string, c *campaign.Campaign) {
				mu.Lock()
				defer mu.Unlock()
				if c == nil || !c.Open() {
					delete(open, id)
					return
				}
				open[id] = c
			}, nil)
			if ctx.Err() == nil {
				s.Log.Warn().Err(err).Msg("campaign watch ended; restarting")
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
	}()
	sent := map[string]time.Time{}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.now()
		mu.Lock()
		type dueEvent struct {
			c *campaign.Campaign
			e events.Event
		}
		var due []dueEvent
		for _, c := range open {
			evs, err := c.Due(now, PublishGrace, s.ApprovalRetry)
			if err != nil {
				s.Log.Error().Err(err).Str("campaign_id", c.ID).Msg("sweeper: cannot build a due event")
				continue
			}
			for _, e := range evs {
				due = append(due, dueEvent{c, e})
			}
		}
		mu.Unlock()
		for _, d := range due {
			e := d.e
			if last, ok := sent[e.ID()]; ok && now.Sub(last) < republishEvery {
				continue
			}
			err := bus.CheckEvent(e)
			if err != nil && e.Type() == events.KindCampaignRequested.Type {
				// A request that can never be published (too large): the
				// campaign is rejected with the reason, not retried for ever.
				rej, rerr := d.c.UnpublishableEvent(err)
				if rerr != nil {
					s.Log.Error().Err(rerr).Str("campaign_id", e.Subject()).Msg("sweeper: cannot build the rejection of an unpublishable request")
					continue
				}
				s.Log.Error().Err(err).Str("campaign_id", e.Subject()).Msg("sweeper: the campaign's request can never be published; rejecting it")
				e = rej
				err = nil
			}
			if err == nil {
				err = publish(ctx, e)
			}
			if err != nil {
				if ctx.Err() == nil {
					s.Log.Warn().Err(err).Str("campaign_id", e.Subject()).Str("type", e.Type()).Msg("sweeper: publish failed; will retry")
				}
				continue
			}
			sent[e.ID()] = now
			s.Log.Debug().Str("campaign_id", e.Subject()).Str("type", e.Type()).Msg("sweeper published a due event")
		}
		for id, at := range sent {
			if now.Sub(at) > time.Hour {
				delete(sent, id)
			}
		}
	}
}
