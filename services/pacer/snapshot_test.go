package pacer

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/flight"
	"github.com/dealflow/dealflow/pkg/events"
)

var (
	flightStart = time.Date(2028, 6, 1, 0, 0, 0, 0, time.UTC)
	flightEnd   = flightStart.AddDate(0, 0, 10)
)

// booked is a ten-day IAB line: 1,000,000 impressions at $20, $20,000.
func booked() events.DealBooked {
	return events.DealBooked{CampaignID: "c-1", LineKey: "line-1", SellerURL: "http://127.0.0.1:9001", Protocol: events.ProtocolIAB,
		PackageID: "pkg-1", QuoteID: "qt-1", DealID: "DEMO-1", DealType: "PD", CPMMicros: 20_000_000, AgreedCPMMicros: 20_000_000,
		Impressions: 1_000_000, SpendMicros: 20_000_000_000, Currency: "USD", FlightStart: "2028-06-01", FlightEnd: "2028-06-10",
		Tier: events.TierAgency, BookedAt: flightStart.AddDate(0, 0, -14)}
}

// realTimeLine is booked()'s line on the real clock, read daily, with the
// service's clock at now.
func realTimeLine(t *testing.T, now time.Time) *Line {
	t.Helper()
	s := &Service{Every: 24 * time.Hour, Now: func() time.Time { return now }}
	l, err := s.newLine(booked())
	if err != nil {
		t.Fatal(err)
	}
	return &l
}

// spendAt is a reading of spend micros (at the booked CPM) as of at.
func spendAt(spend events.Micros, at time.Time) *Reading {
	return &Reading{SpendMicros: spend, Impressions: int64(spend / 20_000), AsOf: at, SellerStatus: "on_track"}
}

func TestSnapshotAgainstPlan(t *testing.T) {
	t.Parallel()
	day := func(d float64) time.Time { return flightStart.Add(time.Duration(d * 24 * float64(time.Hour))) }
	for _, c := range []struct {
		name      string
		now       time.Time
		reading   *Reading
		status    events.PacingStatus
		index     float64
		expected  events.Micros
		deviation events.Deviation
	}{
		{"before the flight", flightStart.Add(-time.Hour), spendAt(0, flightStart.Add(-time.Hour)), events.PacingNotStarted, 0, 0, ""},
		{"too early to judge", day(0.25), spendAt(0, day(0.25)), events.PacingEarly, 0, 500_000_000, ""},
		{"on plan half way", day(5), spendAt(10_000_000_000, day(5)), events.PacingOnTrack, 1, 10_000_000_000, ""},
		{"at the lower edge", day(5), spendAt(8_000_000_000, day(5)), events.PacingOnTrack, 0.8, 10_000_000_000, ""},
		{"under", day(5), spendAt(4_000_000_000, day(5)), events.PacingUnder, 0.4, 10_000_000_000, events.DeviationUnder},
		{"never started", day(3), spendAt(0, day(3)), events.PacingUnder, 0, 6_000_000_000, events.DeviationUnder},
		{"over", day(5), spendAt(13_000_000_000, day(5)), events.PacingOver, 1.3, 10_000_000_000, events.DeviationOver},
		{"the seller's as-of time counts", day(5), spendAt(8_000_000_000, day(4)), events.PacingOnTrack, 1, 8_000_000_000, ""},
		// A seller reporting on another clock (the wall clock, two years
		// before the flight) is read at the pacer's time instead.
		{"an implausible as-of time is ignored", day(5), spendAt(10_000_000_000, time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)), events.PacingOnTrack, 1, 10_000_000_000, ""},
		{"no as-of time", day(5), spendAt(10_000_000_000, time.Time{}), events.PacingOnTrack, 1, 10_000_000_000, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := realTimeLine(t, flightStart.Add(-time.Hour))
			s, dev := l.take(0, c.reading, nil, c.now, 0.2)
			if s.Status != c.status || s.PacingIndex != c.index || s.ExpectedSpendMicros != c.expected {
				t.Fatalf("status %s index %v expected %s; want %s %v %s", s.Status, s.PacingIndex, s.ExpectedSpendMicros, c.status, c.index, c.expected)
			}
			if s.SpendMicros != c.reading.SpendMicros || s.Impressions != c.reading.Impressions || s.PlannedSpendMicros != 20_000_000_000 ||
				s.ExpectedImpressions != int64(c.expected/20_000) || s.SellerStatus != "on_track" || s.Seq != 0 || s.LineKey != "line-1" {
				t.Fatalf("snapshot %+v", s)
			}
			if (dev == nil) != (c.deviation == "") || dev != nil && (dev.Direction != c.deviation || dev.SinceSeq != 0 || dev.PacingIndex != c.index ||
				dev.Tolerance != 0.2 || dev.Reason == "") {
				t.Fatalf("deviation %+v, want %q", dev, c.deviation)
			}
			if dev != nil && s.FlightElapsed > 0 {
				want := events.Micros(float64(s.SpendMicros) / s.FlightElapsed)
				if d := dev.ProjectedSpendMicros - want; d < -1 || d > 1 {
					t.Fatalf("projected %s, want %s", dev.ProjectedSpendMicros, want)
				}
			}
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestScheduleAndEpisodes follows a line reading by reading: slots one a
// day, deviation episodes named by their first snapshot, failed readings
// (a deviation only from the second in a row), a late reading that skips
// the slots it missed, and the final snapshot at the flight's end.
func TestScheduleAndEpisodes(t *testing.T) {
	t.Parallel()
	l := realTimeLine(t, flightStart.Add(-time.Hour))
	if l.NextSlot != 1 || !l.NextDue.Equal(flightStart.AddDate(0, 0, 1)) || l.lastSlot() != 10 {
		t.Fatalf("first reading: slot %d due %s of %d", l.NextSlot, l.NextDue, l.lastSlot())
	}
	boom := errors.New("503 Service Unavailable")
	type step struct {
		day       int     // the reading is taken at this day of the flight
		pace      float64 // spend as a share of plan to date; < 0: the read fails
		status    events.PacingStatus
		deviation events.Deviation
		since     int
		nextSlot  int
	}
	steps := []step{
		{1, 1, events.PacingOnTrack, "", 0, 2},
		{2, 0.5, events.PacingUnder, events.DeviationUnder, 1, 3},
		{3, 0.55, events.PacingUnder, events.DeviationUnder, 1, 4},
		{4, -1, events.PacingNotReporting, "", 0, 5}, // one failure: no deviation, the under episode goes on
		{5, 0.5, events.PacingUnder, events.DeviationUnder, 1, 6},
		{6, 1, events.PacingOnTrack, "", 0, 7},
		{7, 0.5, events.PacingUnder, events.DeviationUnder, 6, 8},
		{8, -1, events.PacingNotReporting, "", 0, 9},
		{9, -1, events.PacingNotReporting, events.DeviationNotReporting, 7, 10}, // the second in a row: since the first
	}
	var last events.DeliveryReported
	for seq, st := range steps {
		now := flightStart.AddDate(0, 0, st.day)
		var r *Reading
		var err error
		if st.pace < 0 {
			err = boom
		} else {
			r = spendAt(events.Micros(st.pace*float64(st.day)*2_000_000_000), now)
		}
		if due := l.slotTime(l.NextSlot); !due.Equal(now) {
			t.Fatalf("seq %d: due %s, read at %s", seq, due, now)
		}
		s, dev := l.take(seq, r, err, now, 0.2)
		if s.Status != st.status || (dev == nil) != (st.deviation == "") || dev != nil && (dev.Direction != st.deviation || dev.SinceSeq != st.since) {
			t.Fatalf("seq %d: %s %+v, want %s %s since %d", seq, s.Status, dev, st.status, st.deviation, st.since)
		}
		if st.pace < 0 {
			if s.Impressions != last.Impressions || s.SpendMicros != last.SpendMicros || !s.AsOf.Equal(last.AsOf) || !strings.Contains(s.Error, "503") {
				t.Fatalf("seq %d: a failed reading carries the last numbers and the error: %+v (last %+v)", seq, s, last)
			}
		}
		if l.NextSeq != seq+1 || l.NextSlot != st.nextSlot || l.Done || s.Final {
			t.Fatalf("seq %d: next seq %d slot %d done %v", seq, l.NextSeq, l.NextSlot, l.Done)
		}
		last = s
	}
	// The last reading (slot 10, the flight's end) is final.
	s, dev := l.take(len(steps), spendAt(20_000_000_000, flightEnd), nil, flightEnd, 0.2)
	if !s.Final || !l.Done || s.Status != events.PacingOnTrack || s.FlightElapsed != 1 || dev != nil || !s.DueAt.Equal(flightEnd) || l.Status() != "done" {
		t.Fatalf("final: %+v %+v", s, dev)
	}

	// A reading taken late skips the slots that passed.
	l = realTimeLine(t, flightStart.Add(-time.Hour))
	l.take(0, spendAt(0, flightStart.AddDate(0, 0, 3)), nil, flightStart.AddDate(0, 0, 3).Add(time.Hour), 0.2)
	if l.NextSlot != 4 {
		t.Fatalf("after a reading late into day 3 the next slot is %d, want 4", l.NextSlot)
	}
	// A reading due before the end but taken after it is the final one.
	s, _ = l.take(1, nil, boom, flightEnd.Add(time.Hour), 0.2)
	if !s.Final || !l.Done {
		t.Fatal("a reading after the flight's end did not end the schedule")
	}
}

func TestNewLine(t *testing.T) {
	t.Parallel()
	// Booked mid-flight, real time: the first reading is the next slot.
	now := flightStart.Add(3*24*time.Hour + time.Hour)
	l := realTimeLine(t, now)
	if l.NextSlot != 4 || !l.NextDue.Equal(flightStart.AddDate(0, 0, 4)) {
		t.Fatalf("booked mid-flight: slot %d due %s", l.NextSlot, l.NextDue)
	}
	// Booked after the flight: one final reading, now.
	l = realTimeLine(t, flightEnd.Add(time.Hour))
	if l.NextSlot != l.lastSlot() || !l.NextDue.Equal(flightEnd) {
		t.Fatalf("booked after the flight: slot %d due %s", l.NextSlot, l.NextDue)
	}
	// On an accelerated clock the flight starts at the booking; a
	// reading interval shorter than MinWallInterval is stretched.
	wall := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	d := booked()
	d.BookedAt = wall
	s := &Service{Clock: flight.Clock{Day: time.Second}, Every: time.Hour, Now: func() time.Time { return wall }}
	acc, err := s.newLine(d)
	if err != nil {
		t.Fatal(err)
	}
	if got := acc.clock().WallDuration(acc.Every); got < MinWallInterval-time.Microsecond {
		t.Fatalf("readings %s apart on the wall clock", got)
	}
	if !acc.NextDue.Equal(wall.Add(acc.clock().WallDuration(acc.Every))) {
		t.Fatalf("first reading due %s, want one interval after the booking %s", acc.NextDue, wall)
	}
	for name, mod := range map[string]func(*events.DealBooked){
		"no flight":       func(d *events.DealBooked) { d.FlightEnd = "" },
		"reversed flight": func(d *events.DealBooked) { d.FlightStart, d.FlightEnd = d.FlightEnd, d.FlightStart },
		"no plan":         func(d *events.DealBooked) { d.Impressions, d.SpendMicros = 0, 0 },
		"no deal id":      func(d *events.DealBooked) { d.DealID = "" },
		"AdCP, no buy":    func(d *events.DealBooked) { d.Protocol, d.DealID = events.ProtocolADCP, "" },
	} {
		d := booked()
		mod(&d)
		if _, err := s.newLine(d); !errors.Is(err, ErrNotFollowed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
