package portfolio

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkOptimise solves realistic campaigns: n quotes over 20-200
// sellers, five formats, seller minimums on a third of the quotes, a 5-15%
// seller cap, a video and display mix, five sellers minimum.
func BenchmarkOptimise(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000} {
		quotes, brief := realisticInstance(rand.New(rand.NewPCG(uint64(n), 42)), n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			var plan Plan
			for b.Loop() {
				var err error
				plan, err = Optimise(quotes, brief)
				if err != nil {
					b.Fatal(err)
				}
			}
			if !plan.Feasible || plan.TotalSpend > brief.Budget {
				b.Fatalf("plan not feasible: %v", plan.Notes)
			}
			b.ReportMetric(float64(len(plan.Lines)), "lines")
			b.Logf("%d quotes: %d lines, spend %s of %s, value %.2f, notes %q", n, len(plan.Lines), money(plan.TotalSpend), money(plan.Budget), plan.TotalValue, plan.Notes)
		})
	}
}
