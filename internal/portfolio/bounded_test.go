package portfolio

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestExtremeWeightsAreRefused: a weight whose score cannot stay finite
// (the attack's weights.price 1e308) is invalid input, answered at once.
func TestExtremeWeightsAreRefused(t *testing.T) {
	t.Parallel()
	quotes, brief := realisticInstance(rand.New(rand.NewPCG(7, 0)), 50)
	for _, w := range []Weights{{Price: 1e308, PriceCeiling: 50}, {Price: -1e308, PriceCeiling: 50}, {Video: 1e7}, {Price: 1, PriceCeiling: 1e8},
		{Volume: math.MaxFloat64}, {Display: -2e6}} {
		b := brief
		b.Weights = w
		if _, err := Optimise(quotes, b); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("weights %+v: %v, want ErrInvalidInput", w, err)
		}
	}
	b := brief
	b.Weights = Weights{Price: maxWeight, Video: -maxWeight, Display: maxWeight, Negotiable: maxWeight, Volume: maxWeight, PriceCeiling: maxCPM}
	if p, err := Optimise(quotes, b); err != nil || !p.Feasible {
		t.Fatalf("the largest valid weights: %v, feasible %v, notes %q", err, p.Feasible, p.Notes)
	}
}

// TestNonFiniteScoresCannotSpin: should a score ever not be a number (the
// weights that made it so are refused first), the solver's fill loops are
// bounded and the search ends, with no plan, instead of spinning forever.
func TestNonFiniteScoresCannotSpin(t *testing.T) {
	t.Parallel()
	quotes, brief := realisticInstance(rand.New(rand.NewPCG(8, 0)), 40)
	brief.MinSellers = 3
	brief.FormatMix = map[string]float64{"video": 0.3}
	brief.Weights = Weights{Price: 1e308, Video: 10, PriceCeiling: 50}
	done := make(chan solution, 1)
	go func() {
		p := prepare(quotes, brief, true) // validate skipped on purpose
		done <- p.solve(0)
	}()
	select {
	case sol := <-done:
		if sol.x != nil {
			for _, x := range sol.x {
				if math.IsNaN(x) {
					t.Fatalf("a plan with NaN spend: %v", sol.x)
				}
			}
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the solver spun on non-finite scores")
	}
}

// TestTimeLimitEndsTheSearch: with a clock that runs a second per reading
// and a 5 s limit, a hard instance's search stops after a handful of
// readings and returns the best plan found, valid, with a note naming the
// limit; with no limit hit the plan is the same as ever.
func TestTimeLimitEndsTheSearch(t *testing.T) {
	t.Parallel()
	quotes, brief := realisticInstance(rand.New(rand.NewPCG(1000, 0)), 1000)
	brief.TimeLimit = 5 * time.Second
	var reads atomic.Int64
	start := time.Unix(0, 0)
	clock := func() time.Time { return start.Add(time.Duration(reads.Add(1)) * time.Second) }
	plan, err := optimiseWith(quotes, brief, 0, clock)
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(plan.Notes, "\n")
	if !strings.Contains(notes, "time limit of 5s") {
		t.Fatalf("notes %q, want the time-limit note", plan.Notes)
	}
	if n := reads.Load(); n > 40 {
		t.Fatalf("the clock was read %d times after the limit passed at the 6th", n)
	}
	if !plan.Feasible || len(plan.Lines) == 0 {
		t.Fatalf("no feasible plan at the time limit: %q", plan.Notes)
	}
	if v := planViolations(quotes, brief, plan, minSellersKept(plan, brief)); len(v) > 0 {
		t.Fatalf("the time-limited plan breaks the brief: %v", v)
	}
	if plan.TotalSpendMicros > plan.BudgetMicros {
		t.Fatalf("spend %d over budget %d", plan.TotalSpendMicros, plan.BudgetMicros)
	}
	// A clock that never moves never stops the search: the same plan as the
	// default Optimise.
	still, err := optimiseWith(quotes, brief, 0, func() time.Time { return start })
	if err != nil {
		t.Fatal(err)
	}
	full, err := Optimise(quotes, brief)
	if err != nil {
		t.Fatal(err)
	}
	if still.TotalValue != full.TotalValue || strings.Contains(strings.Join(full.Notes, "\n"), "time limit") {
		t.Fatalf("unhurried %v vs Optimise %v (%q)", still.TotalValue, full.TotalValue, full.Notes)
	}
}

// TestTimeLimitBeforeAnyPlanFallsBackToGreedy: out of time before the
// search found any plan, the answer is the guide's greedy selection when it
// meets the brief, said in the notes.
func TestTimeLimitBeforeAnyPlanFallsBackToGreedy(t *testing.T) {
	t.Parallel()
	quotes, brief := realisticInstance(rand.New(rand.NewPCG(1001, 0)), 300)
	brief.FormatMix, brief.MinSellers = nil, 0
	// Seller minimums everywhere: the relaxation's optimum is fractional,
	// so no plan exists before the search branches.
	for i := range quotes {
		quotes[i].MinImpressions = 1 + quotes[i].AvailableImpressions/3
	}
	brief.TimeLimit = time.Nanosecond
	start := time.Unix(0, 0)
	var reads atomic.Int64
	clock := func() time.Time { return start.Add(time.Duration(reads.Add(1)) * time.Hour) }
	plan, err := optimiseWith(quotes, brief, 0, clock)
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(plan.Notes, "\n")
	if !strings.Contains(notes, "time limit") || !strings.Contains(notes, "greedy selection") || !plan.Feasible {
		t.Fatalf("feasible %v, notes %q", plan.Feasible, plan.Notes)
	}
	if v := planViolations(quotes, brief, plan, false); len(v) > 0 {
		t.Fatalf("plan breaks the brief: %v", v)
	}
}
