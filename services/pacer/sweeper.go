package pacer

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/pkg/events"
)

// The schedule lives in JetStream: each followed line's record in the
// pacing bucket says which reading is next and when it falls due. No timer
// of a process holds it. RunSweeper, which every pacer replica runs, keeps
// a view of the bucket from a KV watch and, when a line's reading falls
// due, publishes its DeliveryDue (an id derived from the line, the seq and
// the round, so replicas sweeping together publish one) and then claims it
// in the line's record with a revision-checked write, so it is not
// published again; the pacer's consumer takes the reading. A DeliveryDue
// published and not taken up within ResendAfter (lost, or its pacer gone)
// is published again as the next round; the snapshot it makes has the same
// id whichever round made it. A sweeper that dies loses nothing: the next
// one (or the same, restarted) reads the bucket and publishes what is due.
//
// The watch is how the view stays current, not what it relies on: a KV
// watch can fall silent for a while after its server restarts. So the
// pacer's own writes go into its view at once, a line whose published
// reading has not been taken within staleCheck is read back from the bucket,
// and the whole bucket is read every resyncEvery.

// maxSweepWait bounds how long the sweeper sleeps between looks at the
// schedule.
const maxSweepWait = time.Second

// publishRetry is how long the sweeper waits before publishing a line's
// DeliveryDue again after the publication failed.
const publishRetry = time.Second

// staleCheck is how long a published reading may stay untaken in the
// sweeper's view before the line is read back from the bucket (its view
// may have missed the reading); resyncEvery how often the sweeper reads
// the whole bucket.
const (
	staleCheck  = 2 * time.Second
	resyncEvery = 30 * time.Second
)

// index is the sweeper's view of the pacing bucket.
type index struct {
	mu sync.Mutex
	// open are the lines whose schedule runs; status is every line's
	// Line.Status, for the gauge.
	open   map[string]Line
	status map[string]string
	// failed is when a DeliveryDue's publication last failed, per line;
	// checked when a line was last read back from the bucket.
	failed  map[string]time.Time
	checked map[string]time.Time
	ready   bool
	wake    chan struct{}
}

// initLocked makes the maps; the caller holds mu.
func (x *index) initLocked() {
	if x.open == nil {
		x.open, x.status, x.failed, x.checked, x.wake = map[string]Line{}, map[string]string{}, map[string]time.Time{}, map[string]time.Time{}, make(chan struct{}, 1)
	}
}

func (x *index) init() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.initLocked()
}

// progress orders a line's states: its schedule only moves forward.
func progress(l Line) [3]int {
	done, round := 0, -1
	if l.Done {
		done = 1
	}
	if l.Sent != nil && l.Sent.Seq == l.NextSeq {
		round = l.Sent.Round
	}
	return [3]int{done, l.NextSeq, round}
}

func behind(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// apply takes a line's state into the view, unless the view already has a
// later one (the watch, the pacer's own writes and read-backs arrive in any
// order).
func (x *index) apply(c bus.Change[Line]) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.initLocked()
	if c.Deleted || c.Bad {
		delete(x.open, c.Key)
		delete(x.status, c.Key)
		return
	}
	if cur, ok := x.open[c.Key]; ok && behind(progress(c.Value), progress(cur)) {
		return
	}
	if _, open := x.open[c.Key]; !open && x.status[c.Key] == "done" {
		return
	}
	x.status[c.Key] = c.Value.Status()
	delete(x.checked, c.Key)
	if c.Value.Done {
		delete(x.open, c.Key)
		delete(x.failed, c.Key)
	} else {
		x.open[c.Key] = c.Value
	}
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// learn takes a line the pacer itself wrote (or read back) into its
// sweeper's view.
func (s *Service) learn(key string, l Line) {
	s.index.apply(bus.Change[Line]{Key: key, Value: l})
}

// sendAt is when the sweeper publishes the line's next DeliveryDue (or
// publishes it again).
func (s *Service) sendAt(l Line) time.Time {
	if l.Sent != nil && l.Sent.Seq == l.NextSeq {
		return l.Sent.At.Add(s.resendAfter())
	}
	return l.NextDue
}

func (s *Service) resendAfter() time.Duration {
	if s.ResendAfter > 0 {
		return s.ResendAfter
	}
	return DefaultResendAfter
}

// due lists the lines whose DeliveryDue is to be published now, earliest
// first, the lines to read back from the bucket (a published reading not
// taken within staleCheck), and when to look again.
func (s *Service) due(now time.Time) (keys, stale []string, next time.Time) {
	x := &s.index
	x.mu.Lock()
	defer x.mu.Unlock()
	x.initLocked()
	next = now.Add(maxSweepWait)
	type item struct {
		key string
		at  time.Time
	}
	var items []item
	for k, l := range x.open {
		if l.Sent != nil && l.Sent.Seq == l.NextSeq {
			check := l.Sent.At.Add(staleCheck)
			if c, ok := x.checked[k]; ok {
				check = c.Add(staleCheck)
			}
			if !check.After(now) {
				stale = append(stale, k)
				x.checked[k] = now
			}
		}
		at := s.sendAt(l)
		if f, ok := x.failed[k]; ok && f.Add(publishRetry).After(at) {
			at = f.Add(publishRetry)
		}
		if !at.After(now) {
			items = append(items, item{k, at})
		} else if at.Before(next) {
			next = at
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].at.Before(items[j].at) })
	for _, it := range items {
		keys = append(keys, it.key)
	}
	return keys, stale, next
}

// readBack reads lines from the bucket into the view (every line, with nil
// keys).
func (s *Service) readBack(ctx context.Context, keys []string) {
	if keys == nil {
		all, err := s.Lines.Values(ctx, "")
		if err != nil {
			if ctx.Err() == nil {
				s.Log.Warn().Err(err).Msg("pacer sweeper: reading the pacing bucket failed; will retry")
			}
			return
		}
		for k, l := range all {
			s.learn(k, l)
		}
		s.index.mu.Lock()
		s.index.ready = true
		s.index.mu.Unlock()
		return
	}
	for _, k := range keys {
		if l, ok, err := s.Lines.Get(ctx, k); err == nil && ok {
			s.learn(k, l)
		}
	}
}

// Counts is how many followed lines have each status (Line.Status), as
// the sweeper's view of the bucket has them; nil before it was read.
func (s *Service) Counts() map[string]int {
	x := &s.index
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.ready {
		return nil
	}
	out := map[string]int{}
	for _, st := range x.status {
		out[st]++
	}
	return out
}

// RunSweeper publishes, until ctx ends, the DeliveryDue of every followed
// line whose reading falls due (see the comment above).
func (s *Service) RunSweeper(ctx context.Context, publish func(context.Context, events.Event) error) {
	s.index.init()
	go func() {
		for ctx.Err() == nil {
			err := s.Lines.Watch(ctx, s.index.apply, func() {
				s.index.mu.Lock()
				s.index.ready = true
				s.index.mu.Unlock()
			})
			if ctx.Err() == nil {
				s.Log.Warn().Err(err).Msg("pacer sweeper: pacing bucket watch ended; restarting")
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
	}()
	resync := s.now()
	for {
		if now := s.now(); !now.Before(resync) {
			s.readBack(ctx, nil)
			resync = now.Add(resyncEvery)
		}
		keys, stale, next := s.due(s.now())
		if len(stale) > 0 {
			s.readBack(ctx, stale)
		}
		for _, k := range keys {
			if ctx.Err() != nil {
				return
			}
			s.send(ctx, k, publish)
		}
		if len(keys) > 0 {
			continue
		}
		t := time.NewTimer(max(next.Sub(s.now()), time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-s.index.wake:
			t.Stop()
		}
	}
}

// send publishes the line's due DeliveryDue, then claims it in the line's
// record (revision-checked) so no sweeper publishes it again until
// ResendAfter.
func (s *Service) send(ctx context.Context, key string, publish func(context.Context, events.Event) error) {
	x := &s.index
	x.mu.Lock()
	l, ok := x.open[key]
	x.mu.Unlock()
	now := s.now()
	// The view may have moved on since due() listed the line (a reading
	// taken, or another sweeper's claim of this round learnt meanwhile):
	// what is sent is decided on the view now, and only if still due, or a
	// claim learnt late would turn into the next round published at once.
	if !ok || s.sendAt(l).After(now) {
		return
	}
	round := 0
	if l.Sent != nil && l.Sent.Seq == l.NextSeq {
		round = l.Sent.Round + 1
	}
	d := l.Deal
	log := s.Log.With().Str("campaign_id", d.CampaignID).Str("line_key", d.LineKey).Str("seller", d.SellerURL).Int("seq", l.NextSeq).Int("round", round).Logger()
	due := events.DeliveryDue{CampaignID: d.CampaignID, LineKey: d.LineKey, Seq: l.NextSeq, Round: round, DueAt: l.NextDue.UTC()}
	e, err := events.New(events.KindDeliveryDue, dueID(d.CampaignID, d.LineKey, l.NextSeq, round), Stage, d.CampaignID, due)
	if err == nil {
		err = publish(ctx, e)
	}
	if err != nil {
		x.mu.Lock()
		x.failed[key] = now
		x.mu.Unlock()
		if ctx.Err() == nil {
			log.Warn().Err(err).Msg("pacer sweeper: publishing a due reading failed; will retry")
		}
		return
	}
	sent := Sent{Seq: l.NextSeq, Round: round, At: now.UTC()}
	v, err := s.Lines.Update(ctx, key, func(v *Line, exists bool) (bool, error) {
		if !exists || v.Done || v.NextSeq != sent.Seq || (v.Sent != nil && v.Sent.Seq == sent.Seq && v.Sent.Round >= sent.Round) {
			return false, nil // taken meanwhile, or claimed by another sweeper
		}
		v.Sent = &sent
		return true, nil
	})
	if err != nil {
		// Published but not claimed: the same round goes out again (one
		// event: same id) until the claim is written.
		x.mu.Lock()
		x.failed[key] = now
		x.mu.Unlock()
		if ctx.Err() == nil {
			log.Warn().Err(err).Msg("pacer sweeper: claiming a published due reading failed; will publish it again")
		}
		return
	}
	x.mu.Lock()
	delete(x.failed, key)
	x.mu.Unlock()
	s.learn(key, v) // do not wait for the watch to see the claim
	log.Debug().Time("due_at", due.DueAt).Msg("pacer sweeper: due reading published")
}
