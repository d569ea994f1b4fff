package portfolio

import (
	"testing"

	"github.com/dealflow/dealflow/pkg/events"
)

// TestHandlesMaxBudgetExactly: the largest budget a brief may carry
// (events.MaxBudgetMicros) and its neighbours below reach the optimiser
// through dollars and come back to the micro, and the plan spends within
// one impression of them without exceeding them.
func TestHandlesMaxBudgetExactly(t *testing.T) {
	t.Parallel()
	for _, budget := range []events.Micros{events.MaxBudgetMicros, events.MaxBudgetMicros - 1, events.MaxBudgetMicros - 999_999, 123_456_789_012_345} {
		cpm := events.Micros(7_123_457)
		quotes := []Quote{{ID: "q1", Seller: "s1", CPM: cpm.Dollars(), Formats: []string{"video"}}}
		plan, err := Optimise(quotes, Brief{Budget: budget.Dollars(), MaxCPM: events.MaxCPMMicros.Dollars()})
		if err != nil {
			t.Fatalf("budget %d: %v", budget, err)
		}
		if plan.BudgetMicros != budget {
			t.Fatalf("budget %d micros read as %d", budget, plan.BudgetMicros)
		}
		if len(plan.Lines) != 1 || plan.TotalSpendMicros > budget || budget-plan.TotalSpendMicros > cpm/1000+1 {
			t.Fatalf("budget %d: spend %d, lines %+v", budget, plan.TotalSpendMicros, plan.Lines)
		}
		if got := events.CostMicros(plan.Lines[0].Impressions, plan.Lines[0].CPMMicros); got != plan.TotalSpendMicros {
			t.Fatalf("line cost %d != total %d", got, plan.TotalSpendMicros)
		}
	}
	// Just past the limit the brief is refused (pkg/events), and the
	// optimiser still accepts it: the brief's limit is the binding one.
	if _, err := Optimise(nil, Brief{Budget: (events.MaxBudgetMicros + 1).Dollars()}); err != nil {
		t.Fatalf("the optimiser's own limit is below the brief's: %v", err)
	}
}
