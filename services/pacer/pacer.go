// Package pacer is the stage that follows every booked line for its
// flight: DealBooked -> a line on a schedule that lives in JetStream (the
// dealflow_pacing bucket, swept by RunSweeper into DeliveryDue events);
// DeliveryDue -> the seller's delivery read (IAB deal performance, AdCP
// get_media_buy_delivery) and published as a DeliveryReported snapshot
// against the line's plan to date, with a PacingDeviation when the line
// strays beyond the tolerance or its seller stops reporting. The schedule
// ends at the flight's end with a final snapshot.
package pacer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/flight"
	"github.com/dealflow/dealflow/pkg/events"
)

// Stage is the pacer's durable consumer.
const Stage = "pacer"

// Subjects are the pacer's inputs: booked deals and due readings.
func Subjects() []string {
	return []string{events.KindDealBooked.Filter(), events.KindDeliveryDue.Filter(), events.KindLineChanged.Filter()}
}

// Defaults of a Service's zero fields.
const (
	DefaultEvery       = time.Hour
	DefaultTolerance   = 0.2
	DefaultReadTimeout = 15 * time.Second
	DefaultResendAfter = time.Minute
	// MinWallInterval bounds how often one line is read on the wall
	// clock: on an accelerated clock a short --pacing-every would
	// otherwise ask a seller hundreds of times a second.
	MinWallInterval = 100 * time.Millisecond
)

// Reader reads a booked line's delivery to date from its seller.
type Reader interface {
	Read(ctx context.Context, d events.DealBooked) (Reading, error)
}

// Observer is told about the pacer's work (telemetry.Metrics implements
// it): each new snapshot, with what it adds to the line's delivery since the
// one before and how late its reading was, and each deviation.
type Observer interface {
	ObserveDelivery(protocol events.Protocol, status events.PacingStatus, impressions int64, spend events.Micros, pacingIndex float64, late time.Duration)
	ObservePacingDeviation(direction events.Deviation)
}

// Service is the pacer.
type Service struct {
	// Lines is the pacing bucket.
	Lines  *bus.Store[Line]
	Reader Reader
	// Clock is the flight clock new lines are followed on (--time-scale);
	// a line keeps the clock it was booked on.
	Clock flight.Clock
	// Every is the flight time between two readings of a line
	// (--pacing-every, default 1h); Tolerance how far the pacing index
	// may stray from 1 (--pacing-tolerance, default 0.2).
	Every     time.Duration
	Tolerance float64
	// ReadTimeout bounds one reading (default 15s, --seller-timeout).
	ReadTimeout time.Duration
	// ResendAfter is how long a published DeliveryDue may wait for a
	// pacer before the sweeper publishes it again (default 1m).
	ResendAfter time.Duration
	Log         zerolog.Logger
	Metrics     Observer
	// Now is the wall clock (default time.Now).
	Now func() time.Time

	index index // the sweeper's view of the bucket
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) every() time.Duration {
	if s.Every > 0 {
		return s.Every
	}
	return DefaultEvery
}

func (s *Service) tolerance() float64 {
	if s.Tolerance > 0 {
		return s.Tolerance
	}
	return DefaultTolerance
}

// Handle is the pacer's handler: a DealBooked starts following its line,
// a DeliveryDue reads it.
func (s *Service) Handle(ctx context.Context, in events.Event, payload any) ([]events.Event, error) {
	switch p := payload.(type) {
	case *events.DealBooked:
		return nil, s.follow(ctx, p)
	case *events.DeliveryDue:
		return s.read(ctx, in, p)
	case *events.LineChanged:
		return nil, s.change(ctx, p)
	}
	return nil, bus.Permanent(fmt.Errorf("%w: the pacer does not handle %s", events.ErrInvalid, in.Type()))
}

// ErrNotFollowed is a booked line the pacer cannot follow: no flight, no
// plan, or nothing to read its delivery by.
var ErrNotFollowed = errors.New("pacer: line not followed")

// newLine is the record of a line booked as d, first due at the slot after
// its flight clock's now.
func (s *Service) newLine(d events.DealBooked) (Line, error) {
	w, err := flight.Days(d.FlightStart, d.FlightEnd)
	if err != nil {
		return Line{}, fmt.Errorf("%w: %w", ErrNotFollowed, err)
	}
	switch {
	case d.Impressions <= 0 && d.SpendMicros <= 0:
		return Line{}, fmt.Errorf("%w: no planned impressions or spend", ErrNotFollowed)
	case d.Protocol.IsADCP() && d.MediaBuyID == "":
		return Line{}, fmt.Errorf("%w: an AdCP line without a media_buy_id", ErrNotFollowed)
	case !d.Protocol.IsADCP() && d.DealID == "":
		return Line{}, fmt.Errorf("%w: an IAB line without a deal_id", ErrNotFollowed)
	}
	anchor := d.BookedAt
	if anchor.IsZero() {
		anchor = s.now()
	}
	l := Line{Deal: d, Window: w, Anchor: anchor.UTC(), Day: s.Clock.Day, Every: s.every()}
	if wall := l.clock().WallDuration(l.Every); wall < MinWallInterval {
		l.Every = time.Duration(float64(l.Every) * float64(MinWallInterval) / float64(wall))
	}
	l.schedule(l.slotAfter(l.flightNow(s.now())))
	return l, nil
}

// follow starts following a booked line: its record, with the first
// reading scheduled. A line already followed (a redelivered or reconciled
// DealBooked) is left as it is.
func (s *Service) follow(ctx context.Context, d *events.DealBooked) error {
	key := campaign.DealLineKey(d)
	log := bus.CampaignLogger(ctx, s.Log, d.CampaignID).With().Str("seller", d.SellerURL).Str("line_key", key).Logger()
	dd := *d
	dd.LineKey = key
	l, err := s.newLine(dd)
	if err != nil {
		log.Warn().Err(err).Msg("booked line not followed")
		return nil
	}
	created := false
	stored, err := s.Lines.Update(ctx, LineID(d.CampaignID, key), func(v *Line, exists bool) (bool, error) {
		created = !exists
		if exists {
			// Another deal of the line (an IAB budget increase): read
			// with the others from now on.
			return v.add(dd), nil
		}
		*v = l
		return true, nil
	})
	if err != nil {
		return err
	}
	s.learn(LineID(d.CampaignID, key), stored)
	if created {
		log.Info().Time("flight_start", l.Window.Start).Time("flight_end", l.Window.End).Dur("every", l.Every).Dur("flight_day", l.Day).
			Time("first_due", l.NextDue).Msg("following booked line")
	}
	return nil
}

// read handles a due reading: the seller is read and the snapshot (and
// deviation) stored with the line's next reading before they are
// returned, under ids derived from the line and seq alone. A due reading
// already taken is answered with what its own first handling stored (only
// when it is that same DeliveryDue, redelivered); any other is stale.
func (s *Service) read(ctx context.Context, in events.Event, due *events.DeliveryDue) ([]events.Event, error) {
	id := LineID(due.CampaignID, due.LineKey)
	log := bus.CampaignLogger(ctx, s.Log, due.CampaignID).With().Str("line_key", due.LineKey).Int("seq", due.Seq).Logger()
	l, found, err := s.Lines.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	switch {
	case !found:
		log.Warn().Msg("due reading of a line the pacer does not follow; dropped")
		return nil, nil
	case l.Last != nil && l.Last.Seq == due.Seq && l.LastDueID == in.ID():
		// This DeliveryDue's first handling stored the snapshot and was
		// cut short before its outputs were acknowledged.
		return s.outputs(in, *l.Last, l.LastDeviation)
	case l.Done || l.NextSeq != due.Seq:
		log.Debug().Int("next_seq", l.NextSeq).Bool("done", l.Done).Msg("stale due reading; dropped")
		return nil, nil
	}
	log = log.With().Str("seller", l.Deal.SellerURL).Logger()

	timeout := s.ReadTimeout
	if timeout <= 0 {
		timeout = DefaultReadTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	r, rerr := s.readAll(rctx, l)
	cancel()
	if rerr != nil && ctx.Err() != nil {
		return nil, ctx.Err() // stopped, not the seller's failure: read again
	}
	var reading *Reading
	if rerr == nil {
		reading = &r
	}
	now := s.now()
	var (
		snap    events.DeliveryReported
		dev     *events.PacingDeviation
		prev    *events.DeliveryReported
		prevDev *events.PacingDeviation
		won     bool
	)
	stored, err := s.Lines.Update(ctx, id, func(v *Line, exists bool) (bool, error) {
		won = false
		if !exists || v.Done || v.NextSeq != due.Seq {
			return false, nil // another pacer took this reading meanwhile
		}
		prev, prevDev = v.Last, v.LastDeviation
		snap, dev = v.take(due.Seq, reading, rerr, now, s.tolerance())
		v.LastDueID = in.ID()
		won = true
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	s.learn(id, stored) // the sweeper schedules the next reading without waiting for its watch
	if !won {
		log.Debug().Msg("another pacer took this reading")
		return nil, nil
	}
	s.observe(snap, dev, prev, now.Sub(due.DueAt))
	ev := log.Info()
	if rerr != nil {
		ev = log.Warn().Err(rerr)
	}
	ev.Str("status", string(snap.Status)).Float64("pacing_index", snap.PacingIndex).Int64("impressions", snap.Impressions).
		Int64("spend_micros", int64(snap.SpendMicros)).Float64("flight_elapsed", snap.FlightElapsed).Bool("final", snap.Final).
		Msg("delivery read")
	if dev != nil {
		// A new episode is a warning; the snapshots that continue it are
		// in the info line above.
		ev := log.Info()
		if prevDev == nil || prevDev.Direction != dev.Direction || prevDev.SinceSeq != dev.SinceSeq {
			ev = log.Warn()
		}
		ev.Str("direction", string(dev.Direction)).Int("since_seq", dev.SinceSeq).Str("reason", dev.Reason).Msg("pacing deviation")
	}
	return s.outputs(in, snap, dev)
}

// readAll reads every deal of the line and sums what they delivered.
func (s *Service) readAll(ctx context.Context, l Line) (Reading, error) {
	r, err := s.Reader.Read(ctx, l.Deal)
	for _, d := range l.Added {
		if err != nil {
			break
		}
		var x Reading
		if x, err = s.Reader.Read(ctx, d); err == nil {
			r.Impressions += x.Impressions
			r.SpendMicros += x.SpendMicros
		}
	}
	return r, err
}

// add records another deal booked on the line, once; it reports whether
// the line changed.
// The deal alone does not move the plan: the budget it was booked for
// comes with the change's LineChanged, which sets the plan from the
// change's time (the line keeps its budget until then, whichever of the
// two the pacer sees first).
func (l *Line) add(d events.DealBooked) bool {
	if d.DealID == "" || d.DealID == l.Deal.DealID || l.Done {
		return false
	}
	for _, x := range l.Added {
		if x.DealID == d.DealID {
			return false
		}
	}
	if l.Budget == 0 {
		l.Budget = l.bookedSpend()
	}
	l.Added = append(l.Added, d)
	return true
}

// change follows a line change the booker applied at the seller: the
// line's state and budget. A line the pacer does not follow (or no longer
// does) is left alone, and so is a change it already followed or one older
// than the last it followed (a late redelivery). A new budget takes effect
// at the change's applied_at on the line's flight clock: the plan to date
// continues from what it expected then (plan.go), the same on every
// delivery of the event.
func (s *Service) change(ctx context.Context, c *events.LineChanged) error {
	id := LineID(c.CampaignID, c.LineKey)
	stored, err := s.Lines.Update(ctx, id, func(v *Line, exists bool) (bool, error) {
		if !exists || v.Done || c.Noop {
			return false, nil
		}
		if (c.ChangeID != "" && c.ChangeID == v.ChangeID) || c.AppliedAt.Before(v.ChangeAt) {
			return false, nil
		}
		v.ChangeID, v.ChangeAt = c.ChangeID, c.AppliedAt
		if c.State != "" {
			v.State = c.State
		}
		if c.Action == events.LineSetBudget && c.State != events.LineStateCancelled && v.plannedSpend() != c.BudgetAfterMicros {
			at := c.AppliedAt
			if at.IsZero() {
				at = s.now()
			}
			v.rebudget(c.BudgetAfterMicros, v.flightNow(at))
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if stored.Deal.LineKey != "" {
		s.learn(id, stored)
	}
	return nil
}

// outputs are a snapshot's events: ids derived from the line and seq, so
// whichever DeliveryDue made the snapshot, it is one event.
func (s *Service) outputs(in events.Event, snap events.DeliveryReported, dev *events.PacingDeviation) ([]events.Event, error) {
	line := snap.CampaignID + "/" + snap.LineKey
	e, err := events.Derive(in, events.KindDeliveryReported, Stage, "snapshot", snap)
	if err != nil {
		return nil, err
	}
	e.SetID(SnapshotID(snap.CampaignID, snap.LineKey, snap.Seq))
	out := []events.Event{e}
	if dev != nil {
		de, err := events.Derive(in, events.KindPacingDeviation, Stage, "deviation", dev)
		if err != nil {
			return nil, err
		}
		de.SetID(events.ChildID(line, Stage, "deviation/"+strconv.Itoa(snap.Seq)))
		out = append(out, de)
	}
	return out, nil
}

// SnapshotID is the event id of a line's snapshot seq: one id per
// snapshot, whichever DeliveryDue made it, so JetStream keeps one.
func SnapshotID(campaignID, lineKey string, seq int) string {
	return events.ChildID(campaignID+"/"+lineKey, Stage, "snapshot/"+strconv.Itoa(seq))
}

// dueID is the event id of a line's DeliveryDue seq, round round.
func dueID(campaignID, lineKey string, seq, round int) string {
	return events.ChildID(campaignID+"/"+lineKey, Stage, "due/"+strconv.Itoa(seq)+"/"+strconv.Itoa(round))
}

// observe tells the metrics about a new snapshot: what it adds to the
// line's delivery since prev, and how late its reading was.
func (s *Service) observe(snap events.DeliveryReported, dev *events.PacingDeviation, prev *events.DeliveryReported, late time.Duration) {
	if s.Metrics == nil {
		return
	}
	var imps int64
	var spend events.Micros
	if snap.Status != events.PacingNotReporting {
		imps, spend = snap.Impressions, snap.SpendMicros
		if prev != nil {
			imps, spend = max(imps-prev.Impressions, 0), max(spend-prev.SpendMicros, 0)
		}
	}
	s.Metrics.ObserveDelivery(snap.Protocol, snap.Status, imps, spend, snap.PacingIndex, max(late, 0))
	if dev != nil {
		s.Metrics.ObservePacingDeviation(dev.Direction)
	}
}
