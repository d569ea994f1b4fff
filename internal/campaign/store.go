package campaign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/pkg/events"
)

// Store keeps campaign records (one KV value per campaign) and their quotes
// (one KV value per package, so a campaign of thousands of packages stays
// far below the payload limit). It is the only writer of both buckets.
type Store struct {
	records *bus.Store[Campaign]
	quotes  *bus.Store[events.QuoteReady]

	mu      sync.Mutex
	pending map[string][]*transition // Transitions waiting for a campaign's running batch

	admitting sync.Mutex // guards admitted
	admitted  int        // campaigns Submit admitted and has not recorded yet

	// idx answers List and Counts; it starts with the first of them (a
	// process that never lists, a booker, does not keep one).
	idx      *index
	indexing atomic.Bool
	ctx      context.Context // the index's lifetime: until Close
	close    context.CancelFunc
	// Log reports a watch of the index that failed (it restarts).
	Log func(error)
	// ready reports whether the store can be reached (the bus's
	// connection): the index answers only while it can follow the bucket.
	ready func() error
}

// NewStore returns a Store over the two buckets.
func NewStore(records *bus.Store[Campaign], quotes *bus.Store[events.QuoteReady]) *Store {
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{records: records, quotes: quotes, pending: map[string][]*transition{}, idx: newIndex(), ctx: ctx, close: cancel}
}

// Close stops the store's index. Reads and writes of records still work;
// List and Counts answer an error.
func (s *Store) Close() { s.close() }

// RecordsStream is the JetStream stream that holds the campaign records
// (the bucket's), for operations and tests that look at its placement:
// its leader answers the store's reads.
const RecordsStream = "KV_" + bus.BucketCampaigns

// Open opens the campaign buckets of a provisioned bus. The records are
// read through the bucket's leader (bus.WithLeaderReads): the booker
// decides on what it reads (is this approval the current plan's?), and
// on a cluster a replica's direct read may not show the write that
// published the event being handled.
func Open(ctx context.Context, b *bus.Bus) (*Store, error) {
	records, err := bus.OpenStore[Campaign](ctx, b, bus.BucketCampaigns, bus.WithLeaderReads())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	quotes, err := bus.OpenStore[events.QuoteReady](ctx, b, bus.BucketCampaignQuotes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s := NewStore(records, quotes)
	s.ready = b.Ready
	return s, nil
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

// List answers a page of campaign summaries, newest first, from the
// store's index: a projection of every record, fed by a watch of the
// bucket, so a list costs the same whatever the number of campaigns, and
// single-campaign reads (Get) never wait behind it. The first call
// starts the index and waits (within ctx) until it holds every record;
// this process's own writes are in it as soon as they are made, other
// processes' as soon as the watch delivers them.
func (s *Store) List(ctx context.Context, q ListQuery) (ListPage, error) {
	if err := s.index(ctx); err != nil {
		return ListPage{}, err
	}
	return s.idx.page(q), nil
}

// Counts counts the campaigns by status and their unresolved booking
// lines, from the index (see List).
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	if err := s.index(ctx); err != nil {
		return Counts{}, err
	}
	return s.idx.counts(), nil
}

// index starts the index on first use and waits until it is loaded. It
// refuses (ErrUnavailable) while the store cannot be reached: the index
// would answer what it last saw, not what the store holds.
func (s *Store) index(ctx context.Context) error {
	if s.ctx.Err() != nil {
		return errIndexStopped
	}
	if s.ready != nil {
		if err := s.ready(); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	s.idx.start.Do(func() {
		s.indexing.Store(true)
		log := s.Log
		if log == nil {
			log = func(error) {}
		}
		go s.idx.run(s.ctx, bus.StoreAs[summaryRecord](s.records), log)
	})
	return s.idx.wait(ctx)
}

// indexed notes a record this store wrote (or read, writing nothing) at
// revision rev in its index, if it keeps one.
func (s *Store) indexed(c *Campaign, rev uint64) {
	if s.indexing.Load() && rev > 0 && c.ID != "" {
		s.idx.put(SummaryOf(c), rev)
	}
}

// Transition applies fn to the campaign's record with a revision-checked
// write and returns the record as written and the events fn returned. fn
// runs on a fresh copy for every attempt (a concurrent writer makes it run
// again), so what it returns always belongs to the write that won. A
// record fn leaves unchanged is not written. exists is false for a campaign
// not yet recorded (fn then sees a zero Campaign).
//
// Transitions of one campaign that arrive while another of its Transitions
// is running in this process are applied together, in arrival order, with
// one read and one write of the record (it grows with the campaign, so
// decoding it per event was the booker's main cost); each caller gets its
// own events and the record as written. If any of them fails, each is
// applied alone instead, so a failure never leaves another's change
// half-applied.
func (s *Store) Transition(ctx context.Context, id string, fn func(c *Campaign, exists bool) ([]events.Event, error)) (*Campaign, []events.Event, error) {
	t := &transition{fn: fn, done: make(chan struct{})}
	s.mu.Lock()
	queue, running := s.pending[id]
	s.pending[id] = append(queue, t)
	s.mu.Unlock()
	if running { // the running caller applies it
		select {
		case <-t.done:
		case <-ctx.Done():
			if s.withdraw(id, t) {
				return nil, nil, unavailable(fmt.Errorf("%w: campaign %s: %w", bus.ErrStore, id, ctx.Err()))
			}
			<-t.done // already being applied: its outcome stands
		}
		return t.c, t.out, t.err
	}
	for {
		s.mu.Lock()
		batch := s.pending[id]
		if len(batch) == 0 {
			delete(s.pending, id)
			s.mu.Unlock()
			return t.c, t.out, t.err
		}
		s.pending[id] = batch[:0:0]
		s.mu.Unlock()
		s.applyBatch(ctx, id, batch)
	}
}

// withdraw removes t from the campaign's queue if no batch has taken it yet.
func (s *Store) withdraw(id string, t *transition) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.pending[id]
	for i, p := range q {
		if p == t {
			s.pending[id] = append(q[:i:i], q[i+1:]...)
			return true
		}
	}
	return false
}

// transition is one caller's pending Transition.
type transition struct {
	fn   func(c *Campaign, exists bool) ([]events.Event, error)
	c    *Campaign
	out  []events.Event
	err  error
	done chan struct{}
}

var errSplit = errors.New("campaign: apply the batch one by one")

// applyBatch applies the batch's functions to one read of the record and
// writes it once; on any function's error (or for a record not yet
// created, whose first function decides whether it exists) it applies
// them one by one. It completes every transition of the batch.
func (s *Store) applyBatch(ctx context.Context, id string, batch []*transition) {
	defer func() {
		// A function that panics must not leave the others waiting, nor
		// the campaign's queue stuck: every transition of the batch still
		// unanswered gets the panic as a permanent error.
		if r := recover(); r != nil {
			for _, t := range batch {
				if t.c == nil && t.err == nil {
					t.err = bus.Permanent(fmt.Errorf("campaign %s: transition panic: %v", id, r))
				}
			}
		}
		for _, t := range batch {
			close(t.done)
		}
	}()
	if len(batch) > 1 {
		outs := make([][]events.Event, len(batch))
		c, rev, err := s.records.UpdateEncodedRev(ctx, id, func(c *Campaign, exists bool, stored []byte) ([]byte, error) {
			if !exists {
				return nil, errSplit
			}
			for i, t := range batch {
				evs, err := t.fn(c, true)
				if err != nil {
					return nil, errSplit
				}
				outs[i] = evs
			}
			return encodeChanged(c, exists, stored)
		})
		if !errors.Is(err, errSplit) {
			if err == nil {
				s.indexed(&c, rev)
			}
			for i, t := range batch {
				if err != nil {
					t.err = unavailable(err)
					continue
				}
				cc := c
				t.c, t.out = &cc, outs[i]
			}
			return
		}
	}
	for _, t := range batch {
		t.c, t.out, t.err = s.transitionOne(ctx, id, t.fn)
	}
}

// transitionOne is Transition for one function.
func (s *Store) transitionOne(ctx context.Context, id string, fn func(c *Campaign, exists bool) ([]events.Event, error)) (*Campaign, []events.Event, error) {
	var out []events.Event
	c, rev, err := s.records.UpdateEncodedRev(ctx, id, func(c *Campaign, exists bool, stored []byte) ([]byte, error) {
		out = nil
		evs, err := fn(c, exists)
		if err != nil {
			return nil, err
		}
		out = evs
		return encodeChanged(c, exists, stored)
	})
	if err != nil {
		return nil, nil, unavailable(err)
	}
	s.indexed(&c, rev)
	return &c, out, nil
}

// encodeChanged encodes the record once per write: that encoding is
// compared with the stored bytes to tell whether anything changed (nil:
// leave the record unwritten) and is what is written.
func encodeChanged(c *Campaign, exists bool, stored []byte) ([]byte, error) {
	after, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	if exists && bytes.Equal(stored, after) {
		return nil, nil
	}
	return after, nil
}

// Apply folds a pipeline event into the campaign (the booker's plan
// consumer): CampaignRequested, CampaignRejected, DiscoveryCompleted,
// SellerSkipped, QuoteReady, ShoppingDeadlinePassed, and each line's
// DealBooked or BookingFailed, with payload its decoded payload (the
// runner's, or events.Payload's). An event applied before changes nothing
// and re-emits what it emitted the first time. When the campaign becomes
// ReadyToPlan (or Settled) the returned record says so; the caller then
// loads the quotes and calls Propose (or FinishBooking).
func Apply(c *Campaign, in events.Event, payload any, now time.Time, window time.Duration) ([]events.Event, error) {
	switch payload.(type) {
	case *events.DealBooked, *events.BookingFailed:
		if c.Status == "" {
			// A booking outcome never starts a campaign.
			return nil, fmt.Errorf("%w: booking outcome for campaign %s, which has no record", ErrNotFound, in.Subject())
		}
	}
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
	switch p := payload.(type) {
	case *events.CampaignRequested:
		if c.Traceparent == "" {
			c.Traceparent = events.TraceparentOf(in)
		}
		return nil, c.Start(in.ID(), *p, now, window)
	case *events.CampaignRejected:
		return c.Reject(in.ID(), *p, now)
	case *events.DiscoveryCompleted:
		c.RecordDiscovery(*p, now)
	case *events.SellerSkipped:
		c.RecordSkip(*p, now)
	case *events.QuoteReady:
		c.RecordQuote(*p, now)
	case *events.ShoppingDeadlinePassed:
		c.PassDeadline(now)
	case *events.DealBooked:
		c.RecordDeal(*p, now)
	case *events.BookingFailed:
		c.RecordFailure(*p, now)
	default:
		return nil, fmt.Errorf("campaign: %w: %s (%T) is not a campaign input", events.ErrInvalid, in.Type(), payload)
	}
	return nil, nil
}

// Publisher publishes events (the bus).
type Publisher interface {
	Publish(ctx context.Context, e events.Event) error
}

// Admitter is a Publisher that can tell whether there is room for a new
// campaign's events (the bus: bus.Bus.Admit, an error matching
// bus.ErrFull when the event stream, with room kept for the campaigns
// under way, or a bucket is nearly full).
type Admitter interface {
	Admit(ctx context.Context, w bus.Work) error
}

// work is what the store's index knows of the campaigns: under way (they
// will still publish most of their events: requested, shopping, proposed,
// booking) and done (ended, or awaiting approval, which publishes little
// more). Unknown (zero) without an index.
func (s *Store) work() bus.Work {
	if !s.indexing.Load() {
		return bus.Work{}
	}
	w := bus.Work{}
	for st, n := range s.idx.counts().ByStatus {
		switch st {
		case events.StatusRequested, events.StatusShopping, events.StatusProposed, events.StatusBooking:
			w.InFlight += n
		default:
			w.Done += n
		}
	}
	return w
}

// ErrNotPublished means the campaign is recorded but its CampaignRequested
// could not be published yet; the booker's sweeper re-publishes it.
var ErrNotPublished = errors.New("campaign: recorded, not yet published")

// ErrTooLarge means the request's CampaignRequested cannot be published
// (above events.MaxEventBytes): nothing is recorded, and submitting it
// again cannot help. CampaignRequested.ValidateAt (events.MaxRequestBytes)
// refuses such a request first, naming its field; this is the backstop.
var ErrTooLarge = errors.New("campaign: request too large to publish")

// Submit is the one way a campaign enters the pipeline (bookings API and
// `dealflow campaign submit`): it mints an id when none is given, validates
// the request, records the campaign as requested (ErrExists for a used id),
// and publishes CampaignRequested. When that publication fails the record
// stays requested and the booker's sweeper publishes it (ErrNotPublished):
// the caller must not submit again. A publisher that is an Admitter is
// asked first: when it has no room, nothing is recorded and its error
// (bus.ErrFull: submit again later) is returned.
func (s *Store) Submit(ctx context.Context, pub Publisher, req events.CampaignRequested, now time.Time) (*Campaign, error) {
	if req.CampaignID == "" {
		req.CampaignID = NewID()
	}
	if req.RequestedAt.IsZero() {
		req.RequestedAt = now
	}
	if err := req.ValidateAt(time.Now()); err != nil {
		return nil, err
	}
	c, err := s.admitAndRecord(ctx, pub, req, now)
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

// admitAndRecord records a new campaign as requested, once an Admitter
// publisher has room for it. Each admission counts, besides the
// campaigns the index holds, those admitted here and not recorded yet:
// concurrent requests would otherwise all be admitted on the same count.
func (s *Store) admitAndRecord(ctx context.Context, pub Publisher, req events.CampaignRequested, now time.Time) (*Campaign, error) {
	if a, ok := pub.(Admitter); ok {
		s.admitting.Lock()
		w := s.work()
		w.InFlight += s.admitted
		err := a.Admit(ctx, w)
		if err == nil {
			s.admitted++
		}
		s.admitting.Unlock()
		if err != nil {
			return nil, unavailable(err)
		}
		defer func() {
			s.admitting.Lock()
			s.admitted-- // recorded (and in the index), or not at all
			s.admitting.Unlock()
		}()
	}
	tp := bus.TraceparentFrom(ctx) // the caller's span: the campaign's trace
	// An event that can never be published is refused before the record
	// is written: recorded, it was answered "published automatically" and
	// the sweeper retried it for ever.
	pre := New(req, now)
	pre.Traceparent = tp
	if e, err := pre.RequestedEvent(); err != nil {
		return nil, err
	} else if err := bus.CheckEvent(e); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	c, _, err := s.Transition(ctx, req.CampaignID, func(c *Campaign, exists bool) ([]events.Event, error) {
		if exists {
			return nil, ErrExists
		}
		*c = *New(req, now)
		c.Traceparent = tp
		return nil, nil
	})
	return c, err
}

// quoteKey is a quote's key in the campaign-quotes bucket.
func quoteKey(campaignID, sellerURL, packageID string) string {
	return storedQuoteKey(campaignID, QuoteKey(sellerURL, packageID))
}

// storedQuoteKey is the bucket key of the quote a record counts under k
// (a QuoteKey).
func storedQuoteKey(campaignID, k string) string {
	h := sha256.Sum256([]byte(k))
	return campaignID + "." + hex.EncodeToString(h[:12])
}

// SaveQuote stores one QuoteReady. It is a plain put: the same package's
// quote always lands on the same key. Stored before the record counts it,
// so a counted quote is always loadable.
func (s *Store) SaveQuote(ctx context.Context, q events.QuoteReady) error {
	return unavailable(s.quotes.Put(ctx, quoteKey(q.CampaignID, q.Seller.URL, q.Package.ID), q))
}

// LoadQuote loads one package's stored quote into c.Quotes (a line being
// booked needs only its own; LoadQuotes reads them all). A missing quote
// leaves c.Quotes without it.
func (s *Store) LoadQuote(ctx context.Context, c *Campaign, sellerURL, packageID string) error {
	q, found, err := s.quotes.Get(ctx, quoteKey(c.ID, sellerURL, packageID))
	if err != nil {
		return unavailable(err)
	}
	if c.Quotes == nil {
		c.Quotes = map[string]events.QuoteReady{}
	}
	if found {
		c.Quotes[QuoteKey(sellerURL, packageID)] = q
	}
	return nil
}

// LoadQuotes fills c.Quotes with the stored quotes of the packages the
// record counts (a quote stored after the plan is not loaded into it).
func (s *Store) LoadQuotes(ctx context.Context, c *Campaign) error {
	c.Quotes = make(map[string]events.QuoteReady, len(c.QuoteKeys))
	if len(c.QuoteKeys) == 0 {
		return nil
	}
	// One get per counted quote, by its key: listing the campaign's keys
	// first would create a consumer on the bucket for every read of a
	// campaign (GET /bookings/{id}), which under a burst of reads took
	// longer than a request may. The gets run a few at a time: one after
	// the other, a campaign with 20 quotes waited 20 round trips, each
	// behind every other request's, and under a burst on a loaded machine
	// that passed the API's 5 s store timeout.
	keys := make([]string, 0, len(c.QuoteKeys))
	for k := range c.QuoteKeys {
		keys = append(keys, k)
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(loadQuotesAtOnce)
	for _, k := range keys {
		g.Go(func() error {
			q, found, err := s.quotes.Get(gctx, storedQuoteKey(c.ID, k))
			if err != nil || !found {
				return err
			}
			mu.Lock()
			c.Quotes[k] = q
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return unavailable(err)
	}
	return nil
}

// loadQuotesAtOnce bounds LoadQuotes' gets in flight for one campaign.
const loadQuotesAtOnce = 8

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
