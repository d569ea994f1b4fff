package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dealflow/dealflow/pkg/events"
)

// CampaignFilter matches every event of one campaign.
func CampaignFilter(campaignID string) string { return events.SubjectRoot + ".*.*." + campaignID }

// Follow replays and then tails every event of one campaign in stream order,
// calling fn until it returns false or ctx ends. It uses an ephemeral ordered
// consumer, so it sees events published before it started: no race with the
// pipeline.
func (b *Bus) Follow(ctx context.Context, campaignID string, fn func(events.Event) bool) error {
	cons, err := b.JS.OrderedConsumer(ctx, StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{CampaignFilter(campaignID)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("bus: follow %s: %w", campaignID, err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := cons.Next(jetstream.FetchMaxWait(500 * time.Millisecond))
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrNoMessages) {
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		e, err := events.Decode(m.Headers(), m.Data())
		if err != nil {
			continue // malformed events are the dead-letter path's business
		}
		if !fn(e) {
			return nil
		}
	}
}
