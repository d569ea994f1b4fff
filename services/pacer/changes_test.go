package pacer

import (
	"testing"
	"time"

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
		return Reading{SpendMicros: 3_625_000_000, Impressions: 181_250}, nil
	})
	out, err = f.handle(t, dueEvent(t, 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	// The budget changed at day 2 of 10, when the plan expected $4,000 of
	// $20,000: by day 3 it expects $4,000 + $26,000 x 1/8 = $7,250, not
	// $30,000 x 3/10 (likewise 200,000 + 1,300,000 x 1/8 impressions).
	s, _ = events.PayloadOf[events.DeliveryReported](out[0], events.KindDeliveryReported)
	if read["DEMO-1"] != 1 || read["DEMO-2"] != 1 || s.SpendMicros != 7_250_000_000 || s.PlannedSpendMicros != 30_000_000_000 ||
		s.PlannedImpressions != 1_500_000 || s.ExpectedSpendMicros != 7_250_000_000 || s.ExpectedImpressions != 362_500 ||
		s.PacingIndex != 1 || s.Status != events.PacingOnTrack {
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

// TestPacerPlanFollowsBudgetChangesOnce: a new budget moves the plan from
// the change's applied_at (not from when the pacer sees it), through a
// fresh pacer over the same bucket too; the added deal booked for it does
// not move the plan alone, whichever arrives first; the same change
// redelivered, or an older one arriving after a newer, changes nothing.
func TestPacerPlanFollowsBudgetChangesOnce(t *testing.T) {
	f := newFixture(t)
	day := func(d float64) time.Time { return flightStart.Add(time.Duration(d * 24 * float64(time.Hour))) }
	if _, err := f.handle(t, dealBookedEvent(t, booked())); err != nil {
		t.Fatal(err)
	}
	f.clock.set(day(5))
	more := booked()
	more.DealID, more.Impressions, more.SpendMicros = "DEMO-2", 500_000, 10_000_000_000
	if _, err := f.handle(t, dealBookedEvent(t, more)); err != nil {
		t.Fatal(err)
	}
	if l := f.line(t); l.plannedSpend() != 20_000_000_000 || !l.PlanFrom.IsZero() {
		t.Fatalf("the added deal alone moved the plan: %+v", l)
	}
	raise := lineChangedEvent(t, events.LineChanged{ChangeID: "chg-1", Action: events.LineSetBudget, State: events.LineStateLive,
		BudgetBeforeMicros: 20_000_000_000, BudgetAfterMicros: 30_000_000_000, AppliedAt: day(2)})
	lower := lineChangedEvent(t, events.LineChanged{ChangeID: "chg-2", Action: events.LineSetBudget, State: events.LineStateLive,
		BudgetBeforeMicros: 30_000_000_000, BudgetAfterMicros: 25_000_000_000, AppliedAt: day(4)})
	want := func(step string, budget, fromSpend events.Micros, from time.Time) {
		t.Helper()
		l := f.line(t)
		if l.plannedSpend() != budget || l.PlanFromSpend != fromSpend || !l.PlanFrom.Equal(from) {
			t.Fatalf("%s: budget %s, plan from %s at %s; want %s from %s at %s", step, l.plannedSpend(), l.PlanFromSpend, l.PlanFrom, budget, fromSpend, from)
		}
	}
	if _, err := f.handle(t, raise); err != nil {
		t.Fatal(err)
	}
	want("raised", 30_000_000_000, 4_000_000_000, day(2))
	f.clock.set(day(7))
	f.svc = &Service{Lines: f.svc.Lines, Reader: f.reader, Every: 24 * time.Hour, Now: f.clock.now, Log: f.svc.Log} // restarted
	if _, err := f.handle(t, raise); err != nil {
		t.Fatal(err)
	}
	want("raise redelivered", 30_000_000_000, 4_000_000_000, day(2))
	if _, err := f.handle(t, lower); err != nil {
		t.Fatal(err)
	}
	// $4,000 + $26,000 x 2/8 expected by day 4.
	want("lowered", 25_000_000_000, 10_500_000_000, day(4))
	if _, err := f.handle(t, raise); err != nil {
		t.Fatal(err)
	}
	want("the older raise arriving late", 25_000_000_000, 10_500_000_000, day(4))
}
