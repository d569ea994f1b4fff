package bus

import (
	"context"
	"errors"
	"fmt"

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
	return b.FollowFrom(ctx, campaignID, 0, func(_ uint64, e events.Event) bool { return fn(e) })
}

// FollowFrom is Follow resumed after a stream sequence: it replays the
// campaign's events whose stream sequence is above afterSeq (all of them for
// 0), then tails, calling fn with each event's stream sequence (a resumable
// position: pass the last one seen to continue where a reader stopped).
func (b *Bus) FollowFrom(ctx context.Context, campaignID string, afterSeq uint64, fn func(seq uint64, e events.Event) bool) error {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{CampaignFilter(campaignID)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if afterSeq > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, afterSeq+1
	}
	cons, err := b.JS.OrderedConsumer(ctx, StreamEvents, cfg)
	if err != nil {
		return fmt.Errorf("bus: follow %s: %w", campaignID, err)
	}
	// One long-lived pull subscription: calling Next on the ordered
	// consumer itself would create a server-side consumer per call.
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("bus: follow %s: %w", campaignID, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return err
			}
			continue
		}
		var seq uint64
		if md, err := m.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		e, err := events.Decode(events.Header(m.Headers()), m.Data())
		if err != nil {
			continue // malformed events are the dead-letter path's business
		}
		if !fn(seq, e) {
			return nil
		}
	}
}
