package portfolio

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// The restricted master LP of the Dantzig-Wolfe decomposition, solved by a
// bounded primal simplex with Bland's rule (finishBasis) on gonum's dense
// matrices. Its rows are the constraints that are not laminar: one per
// format-mix share, one for the seller count (when still needed), and the
// convexity row. So it has at most a handful of rows whatever the number of
// quotes, which is what makes a dense simplex fast here.
//
// gonum's lp.Simplex is not used: its pivot loop has no iteration bound, and
// on a degenerate master (fuzz input FuzzOptimise/f9c2abed03227d5b) floating
// point made it cycle forever, hanging the booker's planning. finishBasis
// stops at a pivot limit and reports errLP instead.
//
// Standard form (minimise cᵀz, A z = b, z >= 0):
//
//	format f:  Σ_k w_k (share_f·T_k - F_kf) + s_f - a_f = 0
//	count:     Σ_k w_k Y_k - e + a_c = K'
//	convexity: Σ_k w_k = 1
//
// with artificials a (cost M in phase 2, 1 in phase 1) so that the first
// column alone gives a feasible starting basis.

type masterSol struct {
	w     []float64 // weight per column
	art   float64   // Σ artificials
	yF    []float64 // duals of the format rows (<= 0)
	yC    float64   // dual of the count row (>= 0)
	yConv float64
	val   float64 // Σ w_k val_k
	// basis is the optimal basis in position-independent keys: a column's
	// index, or -(1+offset) for the slack and artificial columns after them.
	// It stays feasible when columns are appended, so the next solve starts
	// from it.
	basis []int
}

var errLP = errors.New("portfolio: LP solve failed")

const (
	dualTol = 1e-10
)

func (p *problem) solveMaster(cols []*column, phase int, bigM float64, kRem int, warm []int) (masterSol, error) {
	F := len(p.formats)
	hasC := kRem > 0
	m := F + 1
	if hasC {
		m++
	}
	k := len(cols)
	n := k + 2*F
	if hasC {
		n += 2
	}
	A := mat.NewDense(m, n, nil)
	c := make([]float64, n)
	b := make([]float64, m)
	conv := m - 1
	cRow := F
	for j, col := range cols {
		for f, row := range p.formats {
			A.Set(f, j, row.share*col.total-col.fmt[f])
		}
		if hasC {
			A.Set(cRow, j, col.y)
		}
		A.Set(conv, j, 1)
		if phase == 2 {
			c[j] = -col.val
		}
	}
	artCost := 1.0
	if phase == 2 {
		artCost = bigM
	}
	isArt := make([]bool, n)
	for f := 0; f < F; f++ {
		A.Set(f, k+2*f, 1)
		A.Set(f, k+2*f+1, -1)
		c[k+2*f+1] = artCost
		isArt[k+2*f+1] = true
	}
	if hasC {
		A.Set(cRow, k+2*F, -1)
		A.Set(cRow, k+2*F+1, 1)
		c[k+2*F+1] = artCost
		isArt[k+2*F+1] = true
		b[cRow] = float64(kRem)
	}
	b[conv] = 1

	// Feasible start: w_0 = 1, each other row's slack or artificial takes
	// the residual.
	z0 := make([]float64, n)
	z0[0] = 1
	for f := 0; f < F; f++ {
		if g := A.At(f, 0); g <= 0 {
			z0[k+2*f] = -g
		} else {
			z0[k+2*f+1] = g
		}
	}
	if hasC {
		if y := cols[0].y; y >= float64(kRem) {
			z0[k+2*F] = y - float64(kRem)
		} else {
			z0[k+2*F+1] = float64(kRem) - y
		}
	}

	// Start from the previous optimal basis when it is still primal
	// feasible (columns were only appended), else from the first column.
	z := z0
	if len(warm) == m {
		wb := make([]int, m)
		for i, key := range warm {
			if key >= 0 {
				wb[i] = key
			} else {
				wb[i] = k - key - 1
			}
		}
		if zw, ok := basicSolution(A, b, wb); ok {
			z = zw
		}
	}
	bas, xB, y, err := finishBasis(A, b, c, z, isArt)
	if err != nil {
		return masterSol{}, err
	}
	sol := masterSol{w: make([]float64, k), yF: make([]float64, F), basis: make([]int, m)}
	for i, j := range bas {
		if j < k {
			sol.basis[i] = j
		} else {
			sol.basis[i] = -(j - k + 1)
		}
		v := math.Max(0, xB[i])
		switch {
		case j < k:
			sol.w[j] = v
		case isArt[j]:
			sol.art += v
		}
	}
	for f := 0; f < F; f++ {
		sol.yF[f] = math.Min(0, y[f])
	}
	if hasC {
		sol.yC = math.Max(0, y[cRow])
	}
	sol.yConv = y[conv]
	for j, w := range sol.w {
		sol.val += w * cols[j].val
	}
	return sol, nil
}

// basicSolution is the basic solution of A z = b for the given basis
// columns, and whether it exists and is primal feasible (z >= 0 within
// tolerance), so that it can start the pivoting.
func basicSolution(A *mat.Dense, b []float64, basis []int) ([]float64, bool) {
	m, n := A.Dims()
	if len(basis) != m {
		return nil, false
	}
	B := mat.NewDense(m, m, nil)
	col := make([]float64, m)
	seen := make(map[int]bool, m)
	for i, j := range basis {
		if j < 0 || j >= n || seen[j] {
			return nil, false
		}
		seen[j] = true
		mat.Col(col, j, A)
		B.SetCol(i, col)
	}
	var lu mat.LU
	lu.Factorize(B)
	if lu.Cond() > 1e12 {
		return nil, false
	}
	x := mat.NewVecDense(m, nil)
	if err := lu.SolveVecTo(x, false, mat.NewVecDense(m, append([]float64(nil), b...))); err != nil {
		return nil, false
	}
	z := make([]float64, n)
	for i, j := range basis {
		v := x.AtVec(i)
		if v < -1e-9 || math.IsNaN(v) {
			return nil, false
		}
		z[j] = math.Max(0, v)
	}
	return z, true
}

// finishBasis recovers an optimal basis, and with it the dual prices that
// column generation needs, from a basic feasible solution z (the warm basis
// or the first column): the support of z gives most of the basis, the rest is
// completed with slack columns, and Bland-rule pivots (entering: the first
// column with a negative reduced cost; leaving: the smallest ratio, ties by
// smallest column) then solve the LP. Bland's rule cannot cycle in exact
// arithmetic, and the pivot limit ends it in floating point. The master has at
// most a handful of rows, so each pivot is a tiny dense solve.
func finishBasis(A *mat.Dense, b, c, z []float64, isArt []bool) (basis []int, xB, y []float64, err error) {
	m, n := A.Dims()
	inBasis := make([]bool, n)
	var q [][]float64 // orthonormal span of chosen columns
	col := make([]float64, m)
	try := func(j int) bool {
		if len(basis) == m || inBasis[j] {
			return false
		}
		mat.Col(col, j, A)
		norm := math.Sqrt(dot(col, col))
		if norm == 0 {
			return false
		}
		r := append([]float64(nil), col...)
		for pass := 0; pass < 2; pass++ {
			for _, v := range q {
				d := dot(v, r)
				for i := range r {
					r[i] -= d * v[i]
				}
			}
		}
		rn := math.Sqrt(dot(r, r))
		if rn <= 1e-9*norm {
			return false
		}
		for i := range r {
			r[i] /= rn
		}
		q = append(q, r)
		basis = append(basis, j)
		inBasis[j] = true
		return true
	}
	// Support first, largest values first.
	supp := make([]int, 0, m)
	for j, v := range z {
		if v > 1e-12 {
			supp = append(supp, j)
		}
	}
	sortByDesc(supp, z)
	for _, j := range supp {
		try(j)
	}
	// Then slack columns (unit vectors), then artificials, then the rest.
	for j := 0; j < n; j++ {
		if !isArt[j] && isUnit(A, j) {
			try(j)
		}
	}
	for j := 0; j < n; j++ {
		if isArt[j] {
			try(j)
		}
	}
	for j := 0; j < n && len(basis) < m; j++ {
		try(j)
	}
	if len(basis) != m {
		return nil, nil, nil, fmt.Errorf("%w: master has no basis", errLP)
	}

	B := mat.NewDense(m, m, nil)
	bv := mat.NewVecDense(m, b)
	cB := mat.NewVecDense(m, nil)
	xv := mat.NewVecDense(m, nil)
	yv := mat.NewVecDense(m, nil)
	dv := mat.NewVecDense(m, nil)
	var lu mat.LU
	maxIter := 100 + 10*n
	for iter := 0; iter < maxIter; iter++ {
		for i, j := range basis {
			mat.Col(col, j, A)
			B.SetCol(i, col)
			cB.SetVec(i, c[j])
		}
		lu.Factorize(B)
		if lu.Cond() > 1e14 {
			return nil, nil, nil, fmt.Errorf("%w: singular master basis", errLP)
		}
		if err := lu.SolveVecTo(xv, false, bv); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: %w", errLP, err)
		}
		if err := lu.SolveVecTo(yv, true, cB); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: %w", errLP, err)
		}
		enter := -1
		for j := 0; j < n; j++ {
			if inBasis[j] {
				continue
			}
			d := c[j]
			for i := 0; i < m; i++ {
				d -= A.At(i, j) * yv.AtVec(i)
			}
			if d < -dualTol {
				enter = j
				break
			}
		}
		if enter < 0 {
			return basis, append([]float64(nil), xv.RawVector().Data...), append([]float64(nil), yv.RawVector().Data...), nil
		}
		mat.Col(col, enter, A)
		if err := lu.SolveVecTo(dv, false, mat.NewVecDense(m, col)); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: %w", errLP, err)
		}
		leave := -1
		best := math.Inf(1)
		for i := 0; i < m; i++ {
			d := dv.AtVec(i)
			if d <= 1e-12 {
				continue
			}
			t := math.Max(0, xv.AtVec(i)) / d
			if leave < 0 || t < best-1e-13 || (t <= best+1e-13 && basis[i] < basis[leave]) {
				leave, best = i, t
			}
		}
		if leave < 0 {
			return nil, nil, nil, fmt.Errorf("%w: master unbounded", errLP)
		}
		inBasis[basis[leave]] = false
		basis[leave] = enter
		inBasis[enter] = true
	}
	return nil, nil, nil, fmt.Errorf("%w: pivot limit", errLP)
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func isUnit(A *mat.Dense, j int) bool {
	m, _ := A.Dims()
	nz := 0
	for i := 0; i < m; i++ {
		if v := A.At(i, j); v != 0 {
			if v != 1 {
				return false
			}
			nz++
		}
	}
	return nz == 1
}

func sortByDesc(idx []int, key []float64) {
	// insertion sort: the support has at most a handful of entries
	for i := 1; i < len(idx); i++ {
		for j := i; j > 0 && (key[idx[j]] > key[idx[j-1]] || (key[idx[j]] == key[idx[j-1]] && idx[j] < idx[j-1])); j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
}
