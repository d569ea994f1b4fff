package portfolio

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// FuzzOptimise builds instances with extreme magnitudes (cent budgets,
// trillion-dollar budgets, micro-dollar CPMs, near-total format shares) from
// the fuzzer's numbers and checks that Optimise never panics, rejects only
// invalid input, and keeps every hard limit.
func FuzzOptimise(f *testing.F) {
	f.Add(uint64(1), 10_000.0, 10.0, 0.3, 5, 2)
	f.Add(uint64(2), 0.01, 0.000001, 0.99, 3, 1)
	f.Add(uint64(3), 1e12, 1e6, 0.5, 12, 3)
	f.Add(uint64(4), 9_999.99, 3.33, 0.0, 1, 0)
	f.Add(uint64(5), 123.45, 62.0, 1.0, 8, 4)
	f.Add(uint64(6), -1.0, 10.0, 0.3, 2, 1)
	f.Add(uint64(7), math.NaN(), 10.0, 0.3, 2, 1)
	f.Fuzz(func(t *testing.T, seed uint64, budget, cpm, share float64, n, minSellers int) {
		n = 1 + abs(n)%30
		minSellers = abs(minSellers) % 5
		r := rand.New(rand.NewPCG(seed, 9))
		var quotes []Quote
		for i := 0; i < n; i++ {
			q := Quote{
				ID:     fmt.Sprintf("q%d", i),
				Seller: fmt.Sprintf("s%d", r.IntN(4)),
				CPM:    cpm * (0.5 + r.Float64()),
			}
			if r.IntN(2) == 0 {
				q.AvailableImpressions = int64(r.IntN(10_000_000))
			}
			if r.IntN(3) == 0 {
				q.MinImpressions = int64(r.IntN(5_000_000))
			}
			if r.IntN(2) == 0 {
				q.Formats = []string{"video"}
			}
			quotes = append(quotes, q)
		}
		brief := Brief{Budget: budget, PerSellerCapShare: 0.5, MinSellers: minSellers, FormatMix: map[string]float64{"video": share}}
		plan, err := Optimise(quotes, brief)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if v := planViolations(quotes, brief, plan, minSellersKept(plan, brief)); len(v) > 0 {
			t.Fatalf("violations %v\nbrief %+v\nplan %+v", v, brief, plan)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// TestOptimiseConcurrently: Optimise holds no shared state, so concurrent
// calls (one per campaign) are safe; run with -race.
func TestOptimiseConcurrently(t *testing.T) {
	t.Parallel()
	quotes, brief := realisticInstance(rand.New(rand.NewPCG(8, 8)), 200)
	want, err := Optimise(quotes, brief)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for k := 0; k < 4; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := Optimise(quotes, brief)
			if err != nil || got.TotalValue != want.TotalValue || len(got.Lines) != len(want.Lines) {
				errs <- fmt.Errorf("concurrent plan differs: %v %v vs %v", err, got.TotalValue, want.TotalValue)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
