package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dealflow/dealflow/pkg/events"
)

// How full the event stream and the buckets may get. The stream refuses a
// publish that would pass its MaxBytes (DiscardNew: it never deletes an
// event to make room); well before that, RunRetention purges the oldest
// events every durable consumer has processed, and Admit refuses new
// campaigns, so the campaigns under way keep room for the events they
// still have to publish.
const (
	// PurgeAbove is the fill of the event stream above which RunRetention
	// purges processed events, oldest first, down to PurgeTo.
	PurgeAbove = 0.6
	PurgeTo    = 0.5
	// AdmitBelow is the fill of the event stream, and of every bucket,
	// at which Admit refuses new campaigns.
	AdmitBelow = 0.8
	// RetryAfter is what a refused submission is told to wait.
	RetryAfter = 5 * time.Second
	// WaitAbove is the fill of the event stream at which WaitForRoom
	// holds a stage's next event until there is room for its outputs.
	WaitAbove = 0.95
	// coldUnitShare and coldUnitBytes bound the least a unit of work is
	// assumed to publish (Work.reserve).
	coldUnitShare = 0.1
	coldUnitBytes = 1 << 20
)

// ErrFull means the event stream or a bucket has no room for new work:
// retry later (FullError says when). A publish the stream refused for its
// size also matches it.
var ErrFull = errors.New("bus: the event store is full")

// FullError is Admit's refusal: which stream or bucket is how full, and
// when to try again.
type FullError struct {
	Usage      Usage
	RetryAfter time.Duration
}

func (e *FullError) Error() string {
	return fmt.Sprintf("%s %s is %.0f%% full (%d of %d bytes, with room kept for the work in flight): no room for new work; retry in %s",
		e.Usage.Kind, e.Usage.Name, 100*e.Usage.Fill(), e.Usage.Bytes, e.Usage.MaxBytes, e.RetryAfter)
}

// Is matches ErrFull.
func (e *FullError) Is(target error) bool { return target == ErrFull }

// Usage is how full one stream or bucket is.
type Usage struct {
	// Kind is "stream" or "bucket".
	Kind     string
	Name     string
	Bytes    int64
	MaxBytes int64 // 0: unlimited
	Messages uint64
	// LastSeq is the sequence of the last message ever stored.
	LastSeq uint64
}

// Fill is Bytes / MaxBytes (0 when unlimited).
func (u Usage) Fill() float64 {
	if u.MaxBytes <= 0 {
		return 0
	}
	return float64(u.Bytes) / float64(u.MaxBytes)
}

// usageSnapshot is a Usage reading shared by Admit callers.
type usageSnapshot struct {
	at    time.Time
	usage []Usage
	err   error
}

// capacity caches the usage Admit reads: at most one reading per
// usageEvery, one at a time.
type capacity struct {
	refresh sync.Mutex
	last    atomic.Pointer[usageSnapshot]
	good    atomic.Pointer[usageSnapshot] // the last reading that succeeded
}

// admitStale is how old a successful reading Admit falls back on when a
// new one fails (a slow JetStream API under load, a leader election).
const admitStale = 30 * time.Second

// usageEvery is how old a usage reading Admit may act on: a burst of
// submissions within it is admitted on one reading, which the headroom
// above AdmitBelow absorbs.
const usageEvery = 250 * time.Millisecond

// Usage reads how full the streams and the buckets are.
func (b *Bus) Usage(ctx context.Context) ([]Usage, error) {
	names := []string{StreamEvents, StreamDLQ, StreamAdvisories}
	for _, bk := range Buckets {
		names = append(names, "KV_"+bk)
	}
	out := make([]Usage, 0, len(names))
	for i, name := range names {
		st, err := b.JS.Stream(ctx, name)
		if err != nil {
			return out, fmt.Errorf("%w: stream %s: %w", ErrStore, name, err)
		}
		info := st.CachedInfo()
		u := Usage{Kind: "stream", Name: name, Bytes: int64(info.State.Bytes), MaxBytes: info.Config.MaxBytes, Messages: info.State.Msgs,
			LastSeq: info.State.LastSeq}
		if i >= 3 {
			u.Kind, u.Name = "bucket", Buckets[i-3]
		}
		out = append(out, u)
	}
	return out, nil
}

// usageTimeout bounds one reading of the usage (nine stream infos): a
// cluster in failover must not hold a submission, or a stage, for the
// JetStream API's own timeouts.
const usageTimeout = 2 * time.Second

// refreshUsage reads the usage, bounded by usageTimeout, and keeps it.
func (b *Bus) refreshUsage(ctx context.Context) *usageSnapshot {
	rctx, cancel := context.WithTimeout(ctx, usageTimeout)
	defer cancel()
	u, err := b.Usage(rctx)
	snap := &usageSnapshot{at: time.Now(), usage: u, err: err}
	b.capacity.last.Store(snap)
	if err == nil {
		b.capacity.good.Store(snap)
	}
	return snap
}

// cachedUsage is Usage read at most once per usageEvery across callers;
// while one reads, the others use the reading before.
func (b *Bus) cachedUsage(ctx context.Context) ([]Usage, error) {
	last := b.capacity.last.Load()
	if last != nil && time.Since(last.at) < usageEvery {
		return last.usage, last.err
	}
	if !b.capacity.refresh.TryLock() {
		if last != nil {
			return last.usage, last.err
		}
		b.capacity.refresh.Lock()
	}
	defer b.capacity.refresh.Unlock()
	if l := b.capacity.last.Load(); l != nil && time.Since(l.at) < usageEvery {
		return l.usage, l.err // read meanwhile
	}
	snap := b.refreshUsage(ctx)
	return snap.usage, snap.err
}

// lastUsage is the last usage reading, never waiting for one: when it is
// stale a new one is read in the background (nil before the first).
func (b *Bus) lastUsage() *usageSnapshot {
	last := b.capacity.last.Load()
	if (last == nil || time.Since(last.at) >= usageEvery) && b.capacity.refresh.TryLock() {
		go func() {
			defer b.capacity.refresh.Unlock()
			b.refreshUsage(context.Background())
		}()
	}
	return last
}

// Work is what a caller of Admit knows of the work that will still
// publish events: units (campaigns) in flight, and units done (ended, or
// waiting with little more to publish). Zero values: unknown.
type Work struct {
	InFlight, Done int
}

// reserve estimates the bytes the work in flight will still publish: per
// unit, what an average unit published so far (every event the stream
// ever stored, at its average event size, over every unit started), and
// at least minUnitBytes. Counting a unit's events already stored again is
// a margin on the safe side; the floor covers a fresh deployment, whose
// first units have not published most of their events yet.
func (w Work) reserve(u Usage) int64 {
	if w.InFlight <= 0 {
		return 0
	}
	perUnit := minUnitBytes(u.MaxBytes)
	if started := w.InFlight + w.Done; u.Messages > 0 {
		perEvent := float64(u.Bytes) / float64(u.Messages)
		perUnit = max(perUnit, float64(u.LastSeq)/float64(started)*perEvent)
	}
	return int64(float64(w.InFlight) * perUnit)
}

// minUnitBytes is the least a unit of work is assumed to publish: 1 MiB,
// or a tenth of a smaller stream.
func minUnitBytes(maxBytes int64) float64 {
	return min(coldUnitShare*float64(maxBytes), coldUnitBytes)
}

// Admit reports whether there is room for one more unit of work (a
// campaign): a *FullError (matching ErrFull) when the event stream, with
// room kept for the events the work in flight will still publish, or any
// bucket is AdmitBelow full. The bookings API asks it before recording a
// campaign, so that the campaigns it accepts can publish every event they
// will produce: a stream with no room for them would refuse their stages'
// publishes.
//
// When the stores' state cannot be read in time, Admit decides on the last
// reading that succeeded, up to admitStale old, and without one admits:
// admission is the soft limit, and a slow reading is not a full store. The
// hard limits still hold (a full stream refuses the publish, and a store
// that cannot be reached fails the write that follows); a submission is
// never refused only because the machine was busy.
func (b *Bus) Admit(ctx context.Context, w Work) error {
	usage, err := b.cachedUsage(ctx)
	if err != nil {
		good := b.capacity.good.Load()
		if good == nil || time.Since(good.at) > admitStale {
			b.Log.Warn().Err(err).Msg("stores' usage unreadable: admitting on the hard limits alone")
			return nil
		}
		usage = good.usage
	}
	for _, u := range usage {
		if u.MaxBytes <= 0 || (u.Name != StreamEvents && u.Kind != "bucket") {
			continue
		}
		used := u
		if u.Name == StreamEvents {
			used.Bytes += w.reserve(u)
		}
		if used.Fill() >= AdmitBelow {
			return &FullError{Usage: used, RetryAfter: RetryAfter}
		}
	}
	return nil
}

// WaitForRoom wraps a stage's handler: while the event stream is
// WaitAbove full, an event is held (its delivery kept alive by the
// runner) until there is room for its outputs, instead of being handled
// and its outputs refused: a refused publish is retried like any
// failure, and with few deliveries left it would be dead-lettered. The
// wait ends with the handler's deadline; the event is then retried.
// Admit keeps the stream from filling; this covers the moments it does.
func (b *Bus) WaitForRoom(h Handler) Handler {
	return func(ctx context.Context, in events.Event, payload any) ([]events.Event, error) {
		for waited := false; ; waited = true {
			// The last reading, never a wait for one: a handler must not
			// stall on the stream's state while the cluster fails over.
			last := b.lastUsage()
			if last == nil || last.err != nil || len(last.usage) == 0 || last.usage[0].Fill() < WaitAbove {
				break // unknown: let the publish tell
			}
			if !waited {
				Logger(ctx, b.Log).Warn().Float64("fill", last.usage[0].Fill()).Msg("event stream full: holding the event until there is room for its outputs")
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: waited for room in the event stream: %w", ErrFull, ctx.Err())
			case <-time.After(usageEvery):
			}
		}
		return h(ctx, in, payload)
	}
}

// RunRetention purges, every interval, the events of the event stream
// that every durable consumer has processed (acknowledged, or never to
// be delivered to it) and that are older than Config.MaxAge, or, when
// the stream is more than PurgeAbove full, the oldest of them down to
// PurgeTo. An event some consumer has not processed is never purged,
// whatever its age or the stream's fill: the stream then refuses new
// publishes instead (DiscardNew), and Admit new campaigns. Every process
// may run it: purging what is purged already changes nothing.
func (b *Bus) RunRetention(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		// Also the reading WaitForRoom and Admit go by, kept fresh here
		// so that neither has to wait for one.
		if b.capacity.refresh.TryLock() {
			b.refreshUsage(ctx)
			b.capacity.refresh.Unlock()
		}
		if n, err := b.PurgeProcessed(ctx, b.cfg.MaxAge); err != nil && ctx.Err() == nil {
			b.Log.Warn().Err(err).Msg("retention: could not purge processed events")
		} else if n > 0 {
			b.Log.Debug().Uint64("purged", n).Msg("retention: purged processed events")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// PurgeProcessed purges what RunRetention purges, once, and returns how
// many events it removed.
func (b *Bus) PurgeProcessed(ctx context.Context, maxAge time.Duration) (uint64, error) {
	st, err := b.JS.Stream(ctx, StreamEvents)
	if err != nil {
		return 0, fmt.Errorf("%w: stream %s: %w", ErrStore, StreamEvents, err)
	}
	state, cfg := st.CachedInfo().State, st.CachedInfo().Config
	if state.Msgs == 0 {
		return 0, nil
	}
	floor, err := processedFloor(ctx, st, state.LastSeq)
	if err != nil || floor < state.FirstSeq {
		return 0, err
	}
	// upTo: purge every event with a lower sequence.
	var upTo uint64
	if cfg.MaxBytes > 0 && float64(state.Bytes) > PurgeAbove*float64(cfg.MaxBytes) {
		free := float64(state.Bytes) - PurgeTo*float64(cfg.MaxBytes)
		avg := float64(state.Bytes) / float64(state.Msgs)
		upTo = state.FirstSeq + uint64(free/avg) + 1
	}
	if maxAge > 0 && time.Since(state.FirstTime) > maxAge {
		seq, err := firstSince(ctx, st, state.FirstSeq, state.LastSeq, time.Now().Add(-maxAge))
		if err != nil {
			return 0, err
		}
		upTo = max(upTo, seq)
	}
	upTo = min(upTo, floor+1)
	if upTo <= state.FirstSeq {
		return 0, nil
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSequence(upTo)); err != nil {
		return 0, fmt.Errorf("%w: purge %s below %d: %w", ErrStore, StreamEvents, upTo, err)
	}
	return upTo - state.FirstSeq, nil
}

// processedFloor is the highest sequence up to which every durable
// consumer of the stream has processed every event meant for it: its ack
// floor, or, for one with nothing delivered unacknowledged and nothing
// left to deliver, lastSeq (read before the consumers). Ephemeral
// consumers (follow, SSE) do not hold events back: they read history.
func processedFloor(ctx context.Context, st jetstream.Stream, lastSeq uint64) (uint64, error) {
	floor, any := lastSeq, false
	l := st.ListConsumers(ctx)
	for info := range l.Info() {
		if info == nil || info.Config.Durable == "" {
			continue
		}
		any = true
		f := info.AckFloor.Stream
		if info.NumAckPending == 0 && info.NumPending == 0 {
			f = max(f, lastSeq)
		}
		floor = min(floor, f)
	}
	if err := l.Err(); err != nil {
		return 0, fmt.Errorf("%w: consumers of %s: %w", ErrStore, StreamEvents, err)
	}
	if !any {
		// No stage has ever consumed: nothing is known to be processed.
		return 0, nil
	}
	return floor, nil
}

// firstSince is the sequence of the first event stored at or after t
// (lastSeq+1 when none): a binary search over the stream.
func firstSince(ctx context.Context, st jetstream.Stream, lo, hi uint64, t time.Time) (uint64, error) {
	all := events.SubjectRoot + ".>"
	for lo <= hi {
		mid := lo + (hi-lo)/2
		m, err := st.GetMsg(ctx, mid, jetstream.WithGetMsgSubject(all)) // the first at or after mid
		switch {
		case IsNotFound(err):
			hi = mid - 1
			continue
		case err != nil:
			return 0, fmt.Errorf("%w: %s message %d: %w", ErrStore, StreamEvents, mid, err)
		}
		if m.Time.Before(t) {
			lo = m.Sequence + 1
		} else {
			hi = mid - 1
		}
	}
	return lo, nil
}

// isStreamFull reports a publish the stream refused for its limits
// (DiscardNew): JetStream error 10077 "maximum bytes exceeded" (or
// messages).
func isStreamFull(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == 10077 {
		return true
	}
	return false
}
