package pacer

import (
	"fmt"
	"math"
	"time"

	"github.com/dealflow/dealflow/pkg/events"
)

// Reading is what a seller says a line has delivered to date.
type Reading struct {
	Impressions int64
	SpendMicros events.Micros
	// AsOf is the seller's report time on the line's flight clock (IAB
	// last_updated, AdCP reporting_period.end); zero when it says none.
	AsOf time.Time
	// SellerStatus is the seller's own word on the line.
	SellerStatus string
}

// NotReportingAfter is how many readings of a line in a row must fail
// before a PacingDeviation says its seller stopped reporting: one failed
// reading is a snapshot with status not_reporting, not yet a deviation.
const NotReportingAfter = 2

// bookedSpend is the spend its deals booked.
func (l *Line) bookedSpend() events.Micros {
	spend := func(d events.DealBooked) events.Micros {
		if d.SpendMicros > 0 {
			return d.SpendMicros
		}
		return events.CostMicros(d.Impressions, d.CPMMicros)
	}
	s := spend(l.Deal)
	for _, d := range l.Added {
		s += spend(d)
	}
	return s
}

// plannedSpend is the line's budget for the flight: what its deals booked,
// or its budget after a set_budget.
func (l *Line) plannedSpend() events.Micros {
	if l.Budget > 0 {
		return l.Budget
	}
	return l.bookedSpend()
}

// plannedImpressions is what the line's deals booked, scaled to its budget
// after a set_budget.
func (l *Line) plannedImpressions() int64 {
	imps := l.Deal.Impressions
	for _, d := range l.Added {
		imps += d.Impressions
	}
	if booked := l.bookedSpend(); l.Budget > 0 && booked > 0 {
		imps = int64(math.Round(float64(imps) * float64(l.Budget) / float64(booked)))
	}
	return imps
}

// plausible reports whether the seller's as-of time t can be the line's
// flight time now: a seller reporting on another clock (the wall clock,
// while the line plays an accelerated flight) is ignored.
func (l *Line) plausible(t, now time.Time) bool {
	if t.IsZero() {
		return false
	}
	slack := max(2*l.Every, 24*time.Hour)
	return t.Sub(now).Abs() <= slack
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// take makes snapshot seq of the line from reading r, taken at wall time
// now (r nil and readErr set when the seller could not be read), and the
// deviation it shows, and advances the line: its failure count, deviation
// episode, next reading, or the end of its schedule. Pure: the caller
// stores the line, then publishes what it returns.
func (l *Line) take(seq int, r *Reading, readErr error, now time.Time, tolerance float64) (events.DeliveryReported, *events.PacingDeviation) {
	d := l.Deal
	flightNow := l.flightNow(now)
	s := events.DeliveryReported{CampaignID: d.CampaignID, LineKey: d.LineKey, Seq: seq, SellerURL: d.SellerURL, SellerName: d.SellerName,
		Protocol: d.Protocol.Or(), PackageID: d.PackageID, DealID: d.DealID, MediaBuyID: d.MediaBuyID, SellerPackageID: d.SellerPackageID,
		FlightStart: d.FlightStart, FlightEnd: d.FlightEnd, DueAt: l.slotTime(l.NextSlot).UTC(), ReadAt: now.UTC(),
		PlannedImpressions: l.plannedImpressions(), PlannedSpendMicros: l.plannedSpend()}
	// A cancelled line's next reading is its last: its delivery stopped.
	final := l.NextSlot >= l.lastSlot() || !flightNow.Before(l.Window.End) || l.State == events.LineStateCancelled
	if r == nil {
		l.Missed++
		s.Status, s.MissedReadings = events.PacingNotReporting, l.Missed
		s.Error = events.ShortReason(fmt.Sprint(readErr))
		s.AsOf = l.Window.Start
		if p := l.Last; p != nil {
			s.Impressions, s.SpendMicros, s.AsOf, s.SellerStatus = p.Impressions, p.SpendMicros, p.AsOf, p.SellerStatus
		}
	} else {
		l.Missed = 0
		s.Impressions, s.SpendMicros, s.SellerStatus, s.AsOf = r.Impressions, r.SpendMicros, r.SellerStatus, flightNow
		if l.plausible(r.AsOf, flightNow) {
			s.AsOf = r.AsOf
		}
	}
	s.AsOf = s.AsOf.UTC()
	elapsed := l.Window.Elapsed(s.AsOf)
	s.FlightElapsed = round4(elapsed)
	s.ExpectedImpressions = int64(math.Round(float64(s.PlannedImpressions) * elapsed))
	s.ExpectedSpendMicros = events.Micros(math.Round(float64(s.PlannedSpendMicros) * elapsed))
	switch {
	case s.ExpectedSpendMicros > 0:
		s.PacingIndex = round4(float64(s.SpendMicros) / float64(s.ExpectedSpendMicros))
	case s.ExpectedImpressions > 0:
		s.PacingIndex = round4(float64(s.Impressions) / float64(s.ExpectedImpressions))
	}
	if r != nil {
		switch {
		case elapsed == 0:
			s.Status = events.PacingNotStarted
		case elapsed < events.PacingJudgedFrom:
			s.Status = events.PacingEarly
		case s.PacingIndex < 1-tolerance:
			s.Status = events.PacingUnder
		case s.PacingIndex > 1+tolerance:
			s.Status = events.PacingOver
		default:
			s.Status = events.PacingOnTrack
		}
		// A paused or cancelled line is behind its plan by the buyer's
		// choice: not a deviation to act on.
		switch l.State {
		case events.LineStatePaused:
			s.Status = events.PacingPaused
		case events.LineStateCancelled:
			s.Status = events.PacingCancelled
		}
	}
	s.Final = final

	var dev *events.PacingDeviation
	dir, deviates := events.DeviationOf(s.Status)
	if s.Status == events.PacingNotReporting && l.Missed < NotReportingAfter {
		deviates = false // one failed reading: not yet a seller that stopped reporting
	}
	switch {
	case deviates:
		if l.RunDirection != dir {
			// The episode begins here, or, for a seller that stopped
			// reporting, at its first failed reading.
			l.RunDirection, l.RunSince = dir, seq
			if dir == events.DeviationNotReporting {
				l.RunSince = seq - l.Missed + 1
			}
		}
		dev = l.deviation(s, dir, tolerance)
	case s.Status != events.PacingNotReporting:
		l.RunDirection, l.RunSince = "", 0
	}

	l.NextSeq = seq + 1
	if final {
		l.Done = true
	} else {
		l.schedule(max(l.NextSlot+1, l.slotAfter(flightNow)))
	}
	last := s
	l.Last = &last
	l.LastDeviation = dev
	return s, dev
}

// deviation is the PacingDeviation snapshot s shows, in direction dir.
func (l *Line) deviation(s events.DeliveryReported, dir events.Deviation, tolerance float64) *events.PacingDeviation {
	dev := &events.PacingDeviation{CampaignID: s.CampaignID, LineKey: s.LineKey, Seq: s.Seq, SinceSeq: l.RunSince, Direction: dir, Final: s.Final,
		SellerURL: s.SellerURL, SellerName: s.SellerName, Protocol: s.Protocol, PackageID: s.PackageID, DealID: s.DealID, MediaBuyID: s.MediaBuyID,
		SellerPackageID: s.SellerPackageID, AsOf: s.AsOf, FlightElapsed: s.FlightElapsed, PacingIndex: s.PacingIndex, Tolerance: tolerance,
		Impressions: s.Impressions, ExpectedImpressions: s.ExpectedImpressions, PlannedImpressions: s.PlannedImpressions,
		SpendMicros: s.SpendMicros, ExpectedSpendMicros: s.ExpectedSpendMicros, PlannedSpendMicros: s.PlannedSpendMicros}
	if elapsed := l.Window.Elapsed(s.AsOf); elapsed > 0 {
		dev.ProjectedSpendMicros = events.Micros(math.Floor(float64(s.SpendMicros) / elapsed))
	}
	pct := func(x float64) string { return fmt.Sprintf("%.0f%%", x*100) }
	switch dir {
	case events.DeviationNotReporting:
		dev.Reason = events.ShortReason(fmt.Sprintf("the seller's delivery could not be read %d times in a row (last: %s); the last numbers read are as of %s",
			l.Missed, s.Error, s.AsOf.Format(time.RFC3339)))
	default:
		dev.Reason = fmt.Sprintf("spend %s is %s of the %s the plan expects by %s of the flight (tolerance %s); at this pace the line spends %s of %s",
			s.SpendMicros, pct(s.PacingIndex), s.ExpectedSpendMicros, pct(s.FlightElapsed), pct(tolerance), dev.ProjectedSpendMicros, s.PlannedSpendMicros)
	}
	return dev
}
