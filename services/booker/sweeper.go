package booker

import (
	"context"
	"sync"
	"time"

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
// (campaign.Campaign.Due): the shopping deadline, and a request or approval
// whose publication failed. Planning itself stays with the plan consumer,
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
		var due []events.Event
		for _, c := range open {
			evs, err := c.Due(now, PublishGrace)
			if err != nil {
				s.Log.Error().Err(err).Str("campaign_id", c.ID).Msg("sweeper: cannot build a due event")
				continue
			}
			due = append(due, evs...)
		}
		mu.Unlock()
		for _, e := range due {
			if last, ok := sent[e.ID()]; ok && now.Sub(last) < republishEvery {
				continue
			}
			if err := publish(ctx, e); err != nil {
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
