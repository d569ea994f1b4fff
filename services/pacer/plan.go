package pacer

import (
	"math"
	"time"

	"github.com/dealflow/dealflow/pkg/events"
)

// planShare is the share of a line's total the plan expects delivered when
// elapsed of the flight has gone by (0 to 1), for a plan whose total last
// changed when from of the flight had gone by and the plan then expected
// at. Before any change (from 0, at 0) it is elapsed, even pacing over the
// flight; after one it continues from what it expected at the change, the
// rest of the new total spread evenly over the rest of the flight, so a
// new budget neither makes the line look behind (an increase: delivered on
// the old curve until then) nor ahead (a decrease). Before the change
// (a seller's report time may lag the change) it rises evenly to at.
// Amounts are shares of the new total: at exceeds 1 after a decrease
// below what was expected by then, and the plan then comes down to the new
// total by the flight's end, as the formula says.
func planShare(elapsed, from, at float64) float64 {
	elapsed = min(max(elapsed, 0), 1)
	switch {
	case from <= 0:
		return elapsed
	case elapsed <= from:
		return at * elapsed / from
	case from >= 1:
		return at
	}
	return at + (1-at)*(elapsed-from)/(1-from)
}

// expected is what the line's plan expects delivered by flight time t:
// spend and impressions.
func (l *Line) expected(t time.Time) (events.Micros, int64) {
	e := l.Window.Elapsed(t)
	spend, imps := l.plannedSpend(), l.plannedImpressions()
	if l.PlanFrom.IsZero() {
		return events.Micros(math.Round(float64(spend) * e)), int64(math.Round(float64(imps) * e))
	}
	from := l.Window.Elapsed(l.PlanFrom)
	var s, i float64
	if spend > 0 {
		s = float64(spend) * planShare(e, from, float64(l.PlanFromSpend)/float64(spend))
	}
	if imps > 0 {
		i = float64(imps) * planShare(e, from, float64(l.PlanFromImpressions)/float64(imps))
	}
	return events.Micros(math.Round(s)), int64(math.Round(i))
}

// rebudget gives the line a new budget from flight time t on (a
// set_budget applied then): the plan continues from what it expected at t.
func (l *Line) rebudget(budget events.Micros, t time.Time) {
	switch {
	case t.Before(l.Window.Start):
		t = l.Window.Start
	case t.After(l.Window.End):
		t = l.Window.End
	}
	l.PlanFromSpend, l.PlanFromImpressions = l.expected(t)
	l.PlanFrom, l.Budget = t, budget
}
