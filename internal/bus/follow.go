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

// FollowFrom is Follow starting after stream sequence afterSeq (0: from the
// start), passing each event's stream sequence in DEALFLOW to fn. The
// sequence is the resume point: FollowFrom(ctx, id, seq, fn) delivers
// exactly the campaign's events stored after seq, none twice, none missed
// (the bookings API's SSE id and Last-Event-ID).
func (b *Bus) FollowFrom(ctx context.Context, campaignID string, afterSeq uint64, fn func(seq uint64, e events.Event) bool) error {
	return b.FollowFromPending(ctx, campaignID, afterSeq, func(seq, _ uint64, e events.Event) bool { return fn(seq, e) })
}

// FollowFromPending is FollowFrom also passing how many of the campaign's
// events the stream held after this one when it was delivered: 0 means
// the reader has caught up with what is stored, so a decision that needs
// the whole history so far (the bookings API's follow=flight end) is
// taken only then.
func (b *Bus) FollowFromPending(ctx context.Context, campaignID string, afterSeq uint64, fn func(seq, pending uint64, e events.Event) bool) error {
	occ := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{CampaignFilter(campaignID)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if afterSeq > 0 {
		occ.DeliverPolicy, occ.OptStartSeq = jetstream.DeliverByStartSequencePolicy, afterSeq+1
	}
	err := b.readOrdered(ctx, occ, func(seq, pending uint64, e events.Event, ok bool) bool {
		return !ok || fn(seq, pending, e)
	})
	if err != nil && err != ctx.Err() {
		return fmt.Errorf("bus: follow %s: %w", campaignID, err)
	}
	return err
}

// readOrdered reads the stream through an ephemeral ordered consumer,
// calling fn with each message's stream sequence, how many matching ones
// the stream held after it, and its event (ok false when it does not
// decode: malformed events are the dead-letter path's business) until fn
// returns false or ctx ends.
func (b *Bus) readOrdered(ctx context.Context, occ jetstream.OrderedConsumerConfig, fn func(seq, pending uint64, e events.Event, ok bool) bool) error {
	cons, err := b.JS.OrderedConsumer(ctx, StreamEvents, occ)
	if err != nil {
		return err
	}
	// One long-lived pull subscription: calling Next on the ordered
	// consumer itself would create a server-side consumer per call.
	it, err := cons.Messages()
	if err != nil {
		return err
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
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		e, err := events.Decode(events.Header(m.Headers()), m.Data())
		if !fn(md.Sequence.Stream, md.NumPending, e, err == nil) {
			return nil
		}
	}
}

// CampaignEvents counts the events the stream holds for one campaign: a
// reader can tell an unknown campaign from one that is under way.
func (b *Bus) CampaignEvents(ctx context.Context, campaignID string) (uint64, error) {
	s, err := b.JS.Stream(ctx, StreamEvents)
	if err != nil {
		return 0, fmt.Errorf("bus: stream %s: %w", StreamEvents, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(CampaignFilter(campaignID)))
	if err != nil {
		return 0, fmt.Errorf("bus: stream %s: %w", StreamEvents, err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, nil
}

// ReadCampaign calls fn with the campaign's events of the given kinds that
// the stream holds when it is called, in stream order, and returns once it
// reached the last of them (or fn returned false): a snapshot, for a reader
// that assembles a view (the bookings API's delivery) rather than follows.
// No kinds reads every event of the campaign.
func (b *Bus) ReadCampaign(ctx context.Context, campaignID string, kinds []events.Kind, fn func(seq uint64, e events.Event) bool) error {
	filters := []string{CampaignFilter(campaignID)}
	if len(kinds) > 0 {
		filters = filters[:0]
		for _, k := range kinds {
			filters = append(filters, k.SubjectFor(campaignID))
		}
	}
	s, err := b.JS.Stream(ctx, StreamEvents)
	if err != nil {
		return fmt.Errorf("bus: stream %s: %w", StreamEvents, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(CampaignFilter(campaignID)))
	if err != nil {
		return fmt.Errorf("bus: stream %s: %w", StreamEvents, err)
	}
	var n uint64
	for subj, c := range info.State.Subjects {
		for _, f := range filters {
			if f == subj || f == CampaignFilter(campaignID) {
				n += c
				break
			}
		}
	}
	if n == 0 {
		// An ordered consumer with nothing to deliver would wait for the
		// next event; there is nothing to read.
		return nil
	}
	err = b.readOrdered(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: filters, DeliverPolicy: jetstream.DeliverAllPolicy},
		func(seq, pending uint64, e events.Event, ok bool) bool {
			return (!ok || fn(seq, e)) && pending > 0
		})
	if err != nil {
		return fmt.Errorf("bus: read %s: %w", campaignID, err)
	}
	return nil
}
