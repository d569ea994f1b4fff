package campaign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/pkg/events"
)

// Store keeps campaign records (one KV value per campaign) and their quotes
// (one KV value per package, so a campaign of thousands of packages stays
// far below the payload limit). It is the only writer of both buckets.
type Store struct {
	records *bus.Store[Campaign]
	quotes  *bus.Store[events.QuoteReady]
}

// NewStore returns a Store over the two buckets.
func NewStore(records *bus.Store[Campaign], quotes *bus.Store[events.QuoteReady]) *Store {
	return &Store{records: records, quotes: quotes}
}

// Open opens the campaign buckets of a provisioned bus.
func Open(ctx context.Context, b *bus.Bus) (*Store, error) {
	records, err := bus.OpenStore[Campaign](ctx, b, bus.BucketCampaigns)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	quotes, err := bus.OpenStore[events.QuoteReady](ctx, b, bus.BucketCampaignQuotes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return NewStore(records, quotes), nil
}

func unavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || !bus.IsTransient(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// Get reads a campaign; ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, id string) (*Campaign, error) {
	c, found, err := s.records.Get(ctx, id)
	if err != nil {
		return nil, unavailable(err)
	}
	if !found {
		return nil, ErrNotFound
	}
	return &c, nil
}

// List reads every campaign, newest first.
func (s *Store) List(ctx context.Context) ([]Campaign, error) {
	all, err := s.records.Values(ctx, "")
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]Campaign, 0, len(all))
	for _, c := range all {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Transition applies fn to the campaign's record with a revision-checked
// write and returns the record as written and the events fn returned. fn
// runs on a fresh copy for every attempt (a concurrent writer makes it run
// again), so what it returns always belongs to the write that won. A
// record fn leaves unchanged is not written. exists is false for a campaign
// not yet recorded (fn then sees a zero Campaign).
func (s *Store) Transition(ctx context.Context, id string, fn func(c *Campaign, exists bool) ([]events.Event, error)) (*Campaign, []events.Event, error) {
	var out []events.Event
	// The record grows with the campaign (seen events, skips, quote keys),
	// so it is encoded once per event: the encoding written is the one
	// compared with the stored bytes to tell whether anything changed.
	c, err := s.records.UpdateEncoded(ctx, id, func(c *Campaign, exists bool, stored []byte) ([]byte, error) {
		out = nil
		evs, err := fn(c, exists)
		if err != nil {
			return nil, err
		}
		out = evs
		after, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		if exists && bytes.Equal(stored, after) {
			return nil, nil
		}
		return after, nil
	})
	if err != nil {
		return nil, nil, unavailable(err)
	}
	return &c, out, nil
}

// Apply folds a pipeline event into the campaign (the booker's plan
// consumer): CampaignRequested, CampaignRejected, DiscoveryCompleted,
// SellerSkipped, QuoteReady and ShoppingDeadlinePassed. An event applied
// before changes nothing and re-emits what it emitted the first time. When
// the campaign becomes ReadyToPlan the returned record says so; the caller
// then loads the quotes and calls Propose.
func Apply(c *Campaign, in events.Event, now time.Time, window time.Duration) ([]events.Event, error) {
	if !c.markSeen(in.ID()) {
		return c.Replay(in.ID())
	}
	if c.ID == "" {
		c.ID = in.Subject()
	}
	if c.Status == "" && in.Type() != events.KindCampaignRejected.Type {
		// Heard of first through a pipeline event (published straight to
		// the stream, or the booker's inputs arriving out of order).
		c.Status = events.StatusRequested
		c.touch(now)
	}
	switch in.Type() {
	case events.KindCampaignRequested.Type:
		req, err := events.PayloadOf[events.CampaignRequested](in, events.KindCampaignRequested)
		if err != nil {
			return nil, err
		}
		return nil, c.Start(in.ID(), req, now, window)
	case events.KindCampaignRejected.Type:
		rej, err := events.PayloadOf[events.CampaignRejected](in, events.KindCampaignRejected)
		if err != nil {
			return nil, err
		}
		return c.Reject(in.ID(), rej, now)
	case events.KindDiscoveryCompleted.Type:
		d, err := events.PayloadOf[events.DiscoveryCompleted](in, events.KindDiscoveryCompleted)
		if err != nil {
			return nil, err
		}
		c.RecordDiscovery(d, now)
	case events.KindSellerSkipped.Type:
		sk, err := events.PayloadOf[events.SellerSkipped](in, events.KindSellerSkipped)
		if err != nil {
			return nil, err
		}
		c.RecordSkip(sk, now)
	case events.KindQuoteReady.Type:
		q, err := events.PayloadOf[events.QuoteReady](in, events.KindQuoteReady)
		if err != nil {
			return nil, err
		}
		c.RecordQuote(q, now)
	case events.KindShoppingDeadlinePassed.Type:
		c.PassDeadline(now)
	default:
		return nil, fmt.Errorf("campaign: %w: %s is not a campaign input", events.ErrInvalid, in.Type())
	}
	return nil, nil
}

// Publisher publishes events (the bus).
type Publisher interface {
	Publish(ctx context.Context, e events.Event) error
}

// ErrNotPublished means the campaign is recorded but its CampaignRequested
// could not be published yet; the booker's sweeper re-publishes it.
var ErrNotPublished = errors.New("campaign: recorded, not yet published")

// Submit is the one way a campaign enters the pipeline (bookings API and
// `dealflow campaign submit`): it mints an id when none is given, validates
// the request, records the campaign as requested (ErrExists for a used id),
// and publishes CampaignRequested. When that publication fails the record
// stays requested and the booker's sweeper publishes it (ErrNotPublished):
// the caller must not submit again.
func (s *Store) Submit(ctx context.Context, pub Publisher, req events.CampaignRequested, now time.Time) (*Campaign, error) {
	if req.CampaignID == "" {
		req.CampaignID = NewID()
	}
	if req.RequestedAt.IsZero() {
		req.RequestedAt = now
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	c, _, err := s.Transition(ctx, req.CampaignID, func(c *Campaign, exists bool) ([]events.Event, error) {
		if exists {
			return nil, ErrExists
		}
		*c = *New(req, now)
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	e, err := c.RequestedEvent()
	if err != nil {
		return nil, err
	}
	if err := pub.Publish(ctx, e); err != nil {
		return c, fmt.Errorf("%w: %w", ErrNotPublished, err)
	}
	return c, nil
}

// quoteKey is a quote's key in the campaign-quotes bucket.
func quoteKey(campaignID, sellerURL, packageID string) string {
	h := sha256.Sum256([]byte(QuoteKey(sellerURL, packageID)))
	return campaignID + "." + hex.EncodeToString(h[:12])
}

// SaveQuote stores one QuoteReady. It is a plain put: the same package's
// quote always lands on the same key. Stored before the record counts it,
// so a counted quote is always loadable.
func (s *Store) SaveQuote(ctx context.Context, q events.QuoteReady) error {
	return unavailable(s.quotes.Put(ctx, quoteKey(q.CampaignID, q.Seller.URL, q.Package.ID), q))
}

// LoadQuotes fills c.Quotes with the stored quotes of the packages the
// record counts (a quote stored after the plan is not loaded into it).
func (s *Store) LoadQuotes(ctx context.Context, c *Campaign) error {
	c.Quotes = make(map[string]events.QuoteReady, len(c.QuoteKeys))
	if len(c.QuoteKeys) == 0 {
		return nil
	}
	all, err := s.quotes.Values(ctx, c.ID+".*")
	if err != nil {
		return unavailable(err)
	}
	for _, q := range all {
		if k := QuoteKey(q.Seller.URL, q.Package.ID); c.QuoteKeys[k] {
			c.Quotes[k] = q
		}
	}
	return nil
}

// Watch reports every campaign record as it is now and as it changes, until
// ctx ends; the booker's sweeper follows the open campaigns with it.
func (s *Store) Watch(ctx context.Context, fn func(id string, c *Campaign), initialDone func()) error {
	return s.records.Watch(ctx, func(ch bus.Change[Campaign]) {
		if ch.Deleted || ch.Bad {
			fn(ch.Key, nil)
			return
		}
		c := ch.Value
		fn(ch.Key, &c)
	}, initialDone)
}
