package portfolio

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize/convex/lp"
)

// TestNodeLimitReportsGap: a search cut short still returns a valid plan and
// says how far from optimal it may be.
func TestNodeLimitReportsGap(t *testing.T) {
	t.Parallel()
	quotes, brief := realisticInstance(rand.New(rand.NewPCG(1000, 0)), 1000)
	full, err := optimise(quotes, brief, 0)
	if err != nil {
		t.Fatal(err)
	}
	cut, err := optimise(quotes, brief, 3)
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(cut.Notes, "\n")
	if !strings.Contains(notes, "search stopped at its limit after") || !strings.Contains(notes, "of the best possible") {
		t.Fatalf("notes %q, want the node-limit note", cut.Notes)
	}
	if v := planViolations(quotes, brief, cut, minSellersKept(cut, brief)); len(v) > 0 || !cut.Feasible {
		t.Fatalf("cut-short plan invalid: %v", v)
	}
	if cut.TotalValue > full.TotalValue+1e-6 || len(full.Notes) != 0 {
		t.Fatalf("cut-short value %.4f above full search %.4f (notes %q)", cut.TotalValue, full.TotalValue, full.Notes)
	}
}

// TestBasicSolution: a warm basis starts the pivoting only when it names m
// distinct columns, is non-singular and gives z >= 0.
func TestBasicSolution(t *testing.T) {
	t.Parallel()
	// x0 + x1 = 1, x0 - x2 = 0.25 (x2 a surplus column)
	A := mat.NewDense(2, 3, []float64{1, 1, 0, 1, 0, -1})
	b := []float64{1, 0.25}
	for _, c := range []struct {
		name  string
		basis []int
		want  []float64 // nil: refused
	}{
		{"feasible", []int{0, 1}, []float64{0.25, 0.75, 0}},
		{"infeasible (surplus negative)", []int{1, 2}, nil},
		{"out of range", []int{0, 5}, nil},
		{"repeated column", []int{0, 0}, nil},
		{"too short", []int{0}, nil},
	} {
		z, ok := basicSolution(A, b, c.basis)
		if ok != (c.want != nil) {
			t.Errorf("%s: ok = %v, want %v (z %v)", c.name, ok, c.want != nil, z)
			continue
		}
		for j, w := range c.want {
			if math.Abs(z[j]-w) > 1e-12 {
				t.Errorf("%s: z = %v, want %v", c.name, z, c.want)
				break
			}
		}
	}
}

// TestFinishBasisSolvesFromAStartingBasis: finishBasis's pivoting solves the
// master from the starting basis; its optimum and duals match gonum's
// lp.Simplex (the oracle here; unbounded, so never used in the package) on
// random small LPs (duals checked by strong duality).
func TestFinishBasisSolvesFromAStartingBasis(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(4, 4))
	solved := 0
	for it := 0; it < 200; it++ {
		m := 1 + r.IntN(4)
		k := 1 + r.IntN(8)
		// rows: Σ_j a_ij w_j + s_i = b_i (b >= 0), plus convexity Σ w = 1
		rows := m + 1
		n := k + m
		A := mat.NewDense(rows, n, nil)
		b := make([]float64, rows)
		c := make([]float64, n)
		for j := 0; j < k; j++ {
			for i := 0; i < m; i++ {
				A.Set(i, j, math.Round((r.Float64()*2-1)*100)/100)
			}
			A.Set(m, j, 1)
			c[j] = -r.Float64()
		}
		for i := 0; i < m; i++ {
			A.Set(i, k+i, 1)
			b[i] = r.Float64()
		}
		b[m] = 1
		// Start: w_0 = 1 with slacks, when feasible.
		z0 := make([]float64, n)
		z0[0] = 1
		feasible := true
		for i := 0; i < m; i++ {
			z0[k+i] = b[i] - A.At(i, 0)
			if z0[k+i] < 0 {
				feasible = false
			}
		}
		if !feasible {
			continue
		}
		want, _, err := lp.Simplex(c, A, b, 1e-12, nil)
		if err != nil {
			t.Fatalf("gonum: %v", err)
		}
		basis, xB, y, err := finishBasis(A, b, c, z0, make([]bool, n))
		if err != nil {
			t.Fatalf("finishBasis: %v", err)
		}
		got, dual := 0.0, 0.0
		for i, j := range basis {
			got += c[j] * xB[i]
		}
		for i := range b {
			dual += b[i] * y[i]
		}
		if math.Abs(got-want) > 1e-9 || math.Abs(dual-want) > 1e-9 {
			t.Fatalf("instance %d: pivoting %.12f (dual %.12f), gonum %.12f", it, got, dual, want)
		}
		solved++
	}
	if solved < 50 {
		t.Fatalf("only %d instances had a feasible start", solved)
	}
}
