package pacer

import (
	"math"
	"testing"
	"time"

	"github.com/dealflow/dealflow/pkg/events"
)

func TestPlanShare(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name              string
		elapsed, from, at float64
		want              float64
	}{
		{"no change: even pacing", 0.3, 0, 0, 0.3},
		{"no change, before the flight", -0.1, 0, 0, 0},
		{"no change, after the flight", 1.2, 0, 0, 1},
		{"a change at the start is the new plan", 0.5, 0, 0, 0.5},
		// A budget doubled at 40%: the plan expected 0.4 of the old budget,
		// 0.2 of the new one, and spreads the other 0.8 over the last 60%.
		{"an increase, at the change", 0.4, 0.4, 0.2, 0.2},
		{"an increase, half way through the rest", 0.7, 0.4, 0.2, 0.6},
		{"an increase, at the end", 1, 0.4, 0.2, 1},
		// Halved at 40%: 0.8 of the new budget was expected by then.
		{"a decrease, at the change", 0.4, 0.4, 0.8, 0.8},
		{"a decrease, half way through the rest", 0.7, 0.4, 0.8, 0.9},
		{"a decrease, at the end", 1, 0.4, 0.8, 1},
		// Cut below what the plan expected by then: the plan comes down to
		// the new budget by the end.
		{"a decrease below the plan to date", 0.7, 0.4, 1.2, 1.1},
		{"a decrease below the plan to date, at the end", 1, 0.4, 1.2, 1},
		{"a report time before the change rises evenly to it", 0.2, 0.4, 0.2, 0.1},
		{"a change at the flight's end", 1, 1, 0.9, 0.9},
	} {
		if got := planShare(c.elapsed, c.from, c.at); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: planShare(%v, %v, %v) = %v, want %v", c.name, c.elapsed, c.from, c.at, got, c.want)
		}
	}
}

// TestPlanAfterBudgetChanges: the plan to date of booked()'s $20,000 line
// (1,000,000 impressions over ten days) through two budget changes, each
// continuing from what the plan expected when it was made.
func TestPlanAfterBudgetChanges(t *testing.T) {
	t.Parallel()
	day := func(d float64) time.Time { return flightStart.Add(time.Duration(d * 24 * float64(time.Hour))) }
	l := realTimeLine(t, flightStart)
	type want struct {
		at    time.Time
		spend events.Micros
		imps  int64
	}
	check := func(step string, ws ...want) {
		t.Helper()
		for _, w := range ws {
			if s, i := l.expected(w.at); s != w.spend || i != w.imps {
				t.Errorf("%s: expected at %s = %s, %d impressions; want %s, %d", step, w.at.Format(time.DateTime), s, i, w.spend, w.imps)
			}
		}
	}
	check("booked", want{day(0), 0, 0}, want{day(2), 4_000_000_000, 200_000}, want{day(10), 20_000_000_000, 1_000_000})

	// Raised to $30,000 on day 2: $4,000 expected then, $26,000 over the
	// last 8 days (impressions scaled to the budget: 1,500,000).
	l.rebudget(30_000_000_000, day(2))
	check("raised", want{day(1), 2_000_000_000, 100_000}, want{day(2), 4_000_000_000, 200_000},
		want{day(6), 17_000_000_000, 850_000}, want{day(10), 30_000_000_000, 1_500_000}, want{day(11), 30_000_000_000, 1_500_000})

	// Lowered to $12,000 on day 6, when $17,000 was expected: the plan comes
	// down to $12,000 by the end.
	l.rebudget(12_000_000_000, day(6))
	check("lowered", want{day(6), 17_000_000_000, 850_000}, want{day(8), 14_500_000_000, 725_000}, want{day(10), 12_000_000_000, 600_000})

	// Raised again on day 8 to $20,000: from the $14,500 expected then.
	l.rebudget(20_000_000_000, day(8))
	check("raised again", want{day(8), 14_500_000_000, 725_000}, want{day(9), 17_250_000_000, 862_500}, want{day(10), 20_000_000_000, 1_000_000})

	// A change dated outside the flight is taken at its edge.
	l = realTimeLine(t, flightStart)
	l.rebudget(10_000_000_000, flightStart.Add(-48*time.Hour))
	check("changed before the flight", want{day(5), 5_000_000_000, 250_000})
}
