package portfolio

import (
	"errors"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize/convex/lp"
)

// bruteForce computes the exact optimum of the model for a small instance
// independently of the optimiser: it enumerates every binary choice (each
// seller minimum on or off, each set of exactly K counted sellers) and solves
// the full LP of each with a direct gonum Simplex (one row per bound). It
// returns the best value in dollars, whether MinSellers could be met, and
// whether any LP failed numerically.
func bruteForce(t *testing.T, quotes []Quote, b Brief) (best float64, kept bool) {
	t.Helper()
	p := prepare(quotes, b, false) // eligibility rules only; no presolve
	if len(p.cands) == 0 {
		return 0, b.MinSellers == 0
	}
	n := len(p.cands)
	var semis []int
	for i, c := range p.cands {
		if c.m > 0 {
			semis = append(semis, i)
		}
	}
	solveWith := func(K int) (float64, bool) {
		best := math.Inf(-1)
		found := false
		var subsets [][]int
		if K == 0 {
			subsets = [][]int{nil}
		} else {
			subsets = kSubsets(len(p.sellers), K)
		}
		for mask := 0; mask < 1<<len(semis); mask++ {
			on := make([]bool, n)
			off := make([]bool, n)
			for k, i := range semis {
				if mask&(1<<k) != 0 {
					on[i] = true
				} else {
					off[i] = true
				}
			}
			for _, counted := range subsets {
				v, ok := directLP(t, p, on, off, counted)
				if ok && v > best {
					best, found = v, true
				}
			}
		}
		return best, found
	}
	if b.MinSellers > 0 && b.MinSellers <= len(p.sellers) {
		if v, ok := solveWith(b.MinSellers); ok {
			return p.dollars(v), true
		}
	}
	v, ok := solveWith(0)
	if !ok {
		t.Fatalf("brute force: no feasible LP even without min sellers")
	}
	return p.dollars(v), b.MinSellers == 0
}

func kSubsets(n, k int) [][]int {
	var out [][]int
	var rec func(start int, cur []int)
	rec = func(start int, cur []int) {
		if len(cur) == k {
			out = append(out, append([]int(nil), cur...))
			return
		}
		for i := start; i < n; i++ {
			rec(i+1, append(cur, i))
		}
	}
	rec(0, nil)
	return out
}

// directLP solves max Σ v x over the full LP in scaled units with gonum, one
// explicit row per constraint (budget, caps, bounds, format shares, forced
// minimums, counted sellers).
func directLP(t *testing.T, p *problem, on, off []bool, counted []int) (float64, bool) {
	t.Helper()
	n := len(p.cands)
	type row struct {
		a   []float64
		b   float64
		sgn float64 // +1: a·x + s = b (≤), -1: a·x - s = b (≥)
	}
	var rows []row
	all := make([]float64, n)
	for i := range all {
		all[i] = 1
	}
	rows = append(rows, row{all, 1, 1})
	for s, si := range p.sellers {
		a := make([]float64, n)
		for i, c := range p.cands {
			if c.seller == s {
				a[i] = 1
			}
		}
		if si.capMicros >= 0 {
			rows = append(rows, row{a, si.cap, 1})
		}
	}
	for i, c := range p.cands {
		a := make([]float64, n)
		a[i] = 1
		ub := c.u
		if off[i] {
			ub = 0
		}
		rows = append(rows, row{a, ub, 1})
		if on[i] {
			rows = append(rows, row{a, c.m, -1})
		}
	}
	for _, f := range p.formats {
		a := make([]float64, n)
		for i, c := range p.cands {
			a[i] = f.share
			if p.classes[c.class]&f.bit != 0 {
				a[i] -= 1
			}
		}
		rows = append(rows, row{a, 0, 1})
	}
	for _, s := range counted {
		a := make([]float64, n)
		for i, c := range p.cands {
			if c.seller == s {
				a[i] = 1
			}
		}
		rows = append(rows, row{a, p.sellers[s].L, -1})
	}
	m := len(rows)
	A := mat.NewDense(m, n+m, nil)
	bv := make([]float64, m)
	c := make([]float64, n+m)
	for i, cd := range p.cands {
		c[i] = -cd.v
	}
	for r, rw := range rows {
		for j, v := range rw.a {
			A.Set(r, j, v)
		}
		A.Set(r, n+r, rw.sgn)
		bv[r] = rw.b
	}
	opt, _, err := lp.Simplex(c, A, bv, 1e-12, nil)
	if errors.Is(err, lp.ErrInfeasible) {
		return 0, false
	}
	if err != nil {
		t.Fatalf("direct gonum LP failed: %v", err)
	}
	return -opt, true
}

// TestOptimumMatchesBruteForce: on random small instances the optimiser's
// continuous optimum equals the brute-force optimum (enumeration of the binary
// choices × a direct gonum LP) within 1e-6 relative, and the booked plan's
// value is that optimum less at most the rounding to whole impressions and
// cents.
func TestOptimumMatchesBruteForce(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 11))
	const instances = 200
	withMix, withMin, withSellers := 0, 0, 0
	for it := 0; it < instances; it++ {
		quotes, brief := smallInstance(r, 12)
		if len(brief.FormatMix) > 0 {
			withMix++
		}
		if brief.MinSellers > 0 {
			withSellers++
		}
		for _, q := range quotes {
			if q.MinImpressions > 0 {
				withMin++
				break
			}
		}
		want, kept := bruteForce(t, quotes, brief)

		p := prepare(quotes, brief, true)
		sol := p.solve(100000)
		got := p.dollars(sol.value)
		if sol.x == nil {
			got = 0
		}
		if math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
			t.Fatalf("instance %d: optimiser %.9f, brute force %.9f\nquotes %+v\nbrief %+v\nnotes %v", it, got, want, quotes, brief, sol.notes)
		}
		if kept != (sol.minSellers > 0) && brief.MinSellers > 0 {
			t.Fatalf("instance %d: min sellers kept=%v, brute force says %v", it, sol.minSellers > 0, kept)
		}
		plan, err := Optimise(quotes, brief)
		if err != nil {
			t.Fatal(err)
		}
		// Rounding loses at most one impression and one cent per line (plus
		// what the exact repairs take back, also bounded by the line count).
		minShare := 1.0
		for _, s := range brief.FormatMix {
			if s > 0 {
				minShare = math.Min(minShare, s)
			}
		}
		slack := 0.0
		for _, l := range plan.Lines {
			slack += 2 * l.Score * (l.CPM/1000 + 0.01) / 1000 / minShare
		}
		if plan.TotalValue > want*(1+1e-9)+1e-6 || plan.TotalValue < want-slack-1e-6*want-1e-6 {
			t.Fatalf("instance %d: booked value %g outside [%g - %g, %g]\n%+v\n%+v\n%+v", it, plan.TotalValue, want, slack, want, quotes, brief, plan)
		}
	}
	t.Logf("%d instances: %d with format mix, %d with seller minimums, %d with min sellers", instances, withMix, withMin, withSellers)
	if withMix < instances/4 || withMin < instances/4 || withSellers < instances/6 {
		t.Fatalf("generator does not cover the constraints")
	}
}

// TestColumnGenerationMatchesDirectLP checks the LP relaxation alone on
// larger instances (up to 40 quotes) where brute force is too slow: the root
// LP by column generation equals the direct gonum LP.
func TestColumnGenerationMatchesDirectLP(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 5))
	for it := 0; it < 60; it++ {
		quotes, brief := smallInstance(r, 40)
		brief.MinSellers = 0
		p := prepare(quotes, brief, false)
		if len(p.cands) == 0 {
			continue
		}
		nb := p.rootBounds(0)
		res := p.solveLP(nb, nil, math.Inf(-1))
		if res.status != lpOptimal {
			t.Fatalf("instance %d: status %v", it, res.status)
		}
		want, ok := directLP(t, p, make([]bool, len(p.cands)), make([]bool, len(p.cands)), nil)
		if !ok {
			t.Fatalf("instance %d: direct LP infeasible", it)
		}
		if math.Abs(res.value-want) > 1e-7*math.Max(1, want) {
			t.Fatalf("instance %d: column generation %.12f, direct %.12f", it, res.value, want)
		}
	}
}

var _ = sort.Ints
