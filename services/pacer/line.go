package pacer

import (
	"math"
	"time"

	"github.com/dealflow/dealflow/internal/flight"
	"github.com/dealflow/dealflow/pkg/events"
)

// Line is the pacer's record of one booked line it follows, in the
// dealflow_pacing bucket under LineID: the booking, the line's flight clock,
// its schedule (the next reading and when it falls due), and its last
// snapshot, written before that snapshot is published so a redelivered
// DeliveryDue publishes the same one again. The pacer is its only writer:
// its consumer (the booking, each reading) and its sweeper (the claim of a
// published DeliveryDue), every write revision-checked.
type Line struct {
	Deal events.DealBooked `json:"deal"`
	// Window is the flight; Anchor and Day its clock (flight.Clock): Day
	// 0 is real time, else one flight day per Day of wall time from
	// Anchor, the booking. A line keeps the clock it was booked on.
	Window flight.Window `json:"window"`
	Anchor time.Time     `json:"anchor"`
	Day    time.Duration `json:"day,omitempty"`
	// Every is the flight time between two readings: slot k of the
	// schedule falls at Window.Start + k*Every, the last at Window.End.
	Every time.Duration `json:"every"`

	// NextSeq is the seq of the next snapshot, NextSlot the slot it
	// answers and NextDue when that slot falls due on the wall clock.
	NextSeq  int       `json:"next_seq"`
	NextSlot int       `json:"next_slot"`
	NextDue  time.Time `json:"next_due"`
	// Done: the final snapshot is taken; the schedule has ended.
	Done bool `json:"done,omitempty"`
	// Sent is the last DeliveryDue the sweeper published for this line.
	Sent *Sent `json:"sent,omitempty"`

	// Last is the last snapshot and LastDeviation its deviation, if any;
	// LastDueID the DeliveryDue that made them: only that one, redelivered,
	// publishes them again.
	Last          *events.DeliveryReported `json:"last,omitempty"`
	LastDeviation *events.PacingDeviation  `json:"last_deviation,omitempty"`
	LastDueID     string                   `json:"last_due_id,omitempty"`
	// Missed counts the readings in a row that failed.
	Missed int `json:"missed,omitempty"`
	// After the booking (LineChanged, DealBooked of an increase): Added
	// are the deals an IAB budget increase booked on the same line, read
	// with Deal and summed; State the line's state at its seller (paused:
	// snapshots are not judged; cancelled: the next reading is the final
	// one); Budget the line's budget after a set_budget (0: its booking's).
	Added  []events.DealBooked `json:"added,omitempty"`
	State  events.LineState    `json:"state,omitempty"`
	Budget events.Micros       `json:"budget_micros,omitempty"`
	// RunDirection and RunSince are the current deviation episode: its
	// direction and first snapshot.
	RunDirection events.Deviation `json:"run_direction,omitempty"`
	RunSince     int              `json:"run_since,omitempty"`
}

// Sent records a DeliveryDue the sweeper published.
type Sent struct {
	Seq   int       `json:"seq"`
	Round int       `json:"round"`
	At    time.Time `json:"at"`
}

// LineID is a line's key in the pacing bucket.
func LineID(campaignID, lineKey string) string { return campaignID + "." + lineKey }

// clock is the line's flight clock.
func (l *Line) clock() flight.Clock { return flight.Clock{Day: l.Day} }

// flightNow is the line's flight time at wall time now.
func (l *Line) flightNow(now time.Time) time.Time { return l.clock().Now(l.Window, l.Anchor, now) }

// lastSlot is the index of the flight's last slot, at its end.
func (l *Line) lastSlot() int {
	return int(math.Ceil(float64(l.Window.Length()) / float64(l.Every)))
}

// slotTime is when slot k falls on the flight clock.
func (l *Line) slotTime(k int) time.Time {
	if k >= l.lastSlot() {
		return l.Window.End
	}
	return l.Window.Start.Add(time.Duration(k) * l.Every)
}

// slotAfter is the first slot strictly after flight time t (at least 1,
// at most the last).
func (l *Line) slotAfter(t time.Time) int {
	k := 1
	if d := t.Sub(l.Window.Start); d >= 0 {
		k = int(d/l.Every) + 1
	}
	return min(k, l.lastSlot())
}

// schedule sets the next reading: slot k, due on the wall clock when the
// line's flight clock reaches it.
func (l *Line) schedule(k int) {
	l.NextSlot = k
	l.NextDue = l.clock().Wall(l.Window, l.Anchor, l.slotTime(k))
}

// Status is the line's status for the pacing gauge: its last snapshot's,
// "scheduled" before the first, "done" once the schedule ended.
func (l *Line) Status() string {
	switch {
	case l.Done:
		return "done"
	case l.Last == nil:
		return "scheduled"
	}
	return string(l.Last.Status)
}
