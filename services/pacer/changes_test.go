package pacer

import (
	"testing"

	"github.com/dealflow/dealflow/pkg/events"
)

func lineChangedEvent(t *testing.T, c events.LineChanged) events.Event {
	t.Helper()
	c.CampaignID, c.LineKey, c.SellerURL, c.PackageID = "c-1", "line-1", booked().SellerURL, "pkg-1"
	if c.ChangeID == "" {
		c.ChangeID = events.NewID()
	}
	e, err := events.New(events.KindLineChanged, events.NewID(), events.StageBooker, "c-1", c)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestPacerFollowsLineChanges: a paused line's snapshots say paused and
// raise no deviation however far behind it falls; an additional deal of
// the line (an IAB increase) is read with the first and the plan follows
// the new budget; a cancelled line's next reading is its final snapshot,
// and its schedule ends there.
func TestPacerFollowsLineChanges(t *testing.T) {
	f := newFixture(t)
	if _, err := f.handle(t, dealBookedEvent(t, booked())); err != nil {
		t.Fatal(err)
	}
	if _, err := f.handle(t, lineChangedEvent(t, events.LineChanged{Action: events.LinePause, State: events.LineStatePaused,
		BudgetAfterMicros: 20_000_000_000})); err != nil {
		t.Fatal(err)
	}
	// Two days in, nothing delivered: under plan, but paused.
	f.clock.set(flightStart.AddDate(0, 0, 2))
	f.reader.set(func(events.DealBooked) (Reading, error) { return Reading{SpendMicros: 100_000_000}, nil })
	out, err := f.handle(t, dueEvent(t, 0, 0))
	if err != nil || len(out) != 1 {
		t.Fatalf("paused reading: %v %v", out, err)
	}
	s, _ := events.PayloadOf[events.DeliveryReported](out[0], events.KindDeliveryReported)
	if s.Status != events.PacingPaused || s.Final {
		t.Fatalf("paused snapshot %+v", s)
	}

	// Resumed, with a second deal of $10,000 and a budget of $30,000.
	if _, err := f.handle(t, lineChangedEvent(t, events.LineChanged{Action: events.LineResume, State: events.LineStateLive, BudgetAfterMicros: 20_000_000_000})); err != nil {
		t.Fatal(err)
	}
	more := booked()
	more.DealID, more.Impressions, more.SpendMicros = "DEMO-2", 500_000, 10_000_000_000
	for range 2 { // redelivered: added once
		if _, err := f.handle(t, dealBookedEvent(t, more)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.handle(t, lineChangedEvent(t, events.LineChanged{Action: events.LineSetBudget, State: events.LineStateLive,
		BudgetAfterMicros: 30_000_000_000})); err != nil {
		t.Fatal(err)
	}
	if l := f.line(t); len(l.Added) != 1 || l.Budget != 30_000_000_000 || l.State != events.LineStateLive {
		t.Fatalf("line %+v", l)
	}
	read := map[string]int{}
	f.clock.set(flightStart.AddDate(0, 0, 3))
	f.reader.set(func(d events.DealBooked) (Reading, error) {
		read[d.DealID]++
		return Reading{SpendMicros: 4_500_000_000, Impressions: 225_000}, nil
	})
	out, err = f.handle(t, dueEvent(t, 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	s, _ = events.PayloadOf[events.DeliveryReported](out[0], events.KindDeliveryReported)
	if read["DEMO-1"] != 1 || read["DEMO-2"] != 1 || s.SpendMicros != 9_000_000_000 || s.PlannedSpendMicros != 30_000_000_000 ||
		s.PlannedImpressions != 1_500_000 || s.Status != events.PacingOnTrack {
		t.Fatalf("both deals read (%v): %+v", read, s)
	}

	if _, err := f.handle(t, lineChangedEvent(t, events.LineChanged{Action: events.LineCancel, State: events.LineStateCancelled,
		BudgetAfterMicros: 9_000_000_000})); err != nil {
		t.Fatal(err)
	}
	f.clock.set(flightStart.AddDate(0, 0, 4))
	f.reader.set(func(events.DealBooked) (Reading, error) { return Reading{SpendMicros: 4_500_000_000}, nil })
	out, err = f.handle(t, dueEvent(t, 2, 0))
	if err != nil || len(out) != 1 {
		t.Fatalf("cancelled reading: %v %v", out, err)
	}
	s, _ = events.PayloadOf[events.DeliveryReported](out[0], events.KindDeliveryReported)
	if !s.Final || s.Status != events.PacingCancelled {
		t.Fatalf("cancelled snapshot %+v", s)
	}
	if l := f.line(t); !l.Done {
		t.Fatalf("the cancelled line's schedule goes on: %+v", l)
	}
	if out, err := f.handle(t, dueEvent(t, 3, 0)); err != nil || len(out) != 0 {
		t.Fatalf("a reading after the final one: %v %v", out, err)
	}
}
