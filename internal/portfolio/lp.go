package portfolio

import "math"

type lpStatus int

const (
	lpOptimal lpStatus = iota
	lpInfeasible
	lpPruned // the Lagrangian bound proved the node cannot beat the incumbent
	lpFailed
)

type lpResult struct {
	status lpStatus
	x      []float64 // scaled spend per candidate
	value  float64   // Σ v x (scaled)
	ub     float64   // proven upper bound on the node's LP value
	cols   []*column // columns with positive weight, for the children
	approx bool      // column generation stopped at its iteration limit
	iters  int
}

const (
	cgTol    = 1e-10 // reduced profit below which no column improves (scaled)
	artTol   = 1e-9  // artificial mass treated as zero
	maxCG    = 400   // column-generation iterations per phase
	maxBigM  = 1e7
	bigMInit = 1e3
)

// solveLP solves the LP relaxation of one branch-and-bound node exactly:
//
//	max Σ v_i x_i  s.t.  x ∈ P (budget, seller caps, availability, node bounds),
//	                    format-mix rows, Σ_s y_s >= K' with y_s <= min(1, t_s/L_s)
//
// by Dantzig-Wolfe column generation: the laminar part P is priced by the
// greedy oracle, the few coupling rows live in a gonum master LP. Without
// coupling rows the oracle's greedy point is already optimal.
func (p *problem) solveLP(nb *nodeBounds, inherit []*column, pruneAt float64) lpResult {
	zero := make([]float64, len(p.classes))
	col0, ok := p.oracle(nb, 1, zero, 0)
	if !ok {
		return lpResult{status: lpInfeasible}
	}
	if len(p.formats) == 0 && nb.kRem <= 0 {
		return lpResult{status: lpOptimal, x: p.dense([]*column{col0}, []float64{1}), value: col0.val, ub: col0.val, cols: []*column{col0}}
	}
	var cols []*column
	for _, c := range inherit {
		if p.validIn(c, nb) {
			cols = append(cols, p.recount(c, nb))
		}
	}
	cols = append(cols, col0)

	total := 0
	for bigM := bigMInit; bigM <= maxBigM; bigM *= 100 {
		sol, st, ub, approx, it := p.cg(&cols, nb, 2, bigM, pruneAt)
		total += it
		switch st {
		case lpPruned:
			return lpResult{status: lpPruned, ub: ub, iters: total}
		case lpFailed:
			return lpResult{status: lpFailed, iters: total}
		}
		if sol.art <= artTol {
			var keep []*column
			var kw []float64
			for j, w := range sol.w {
				if w > 0 {
					keep = append(keep, cols[j])
					kw = append(kw, w)
				}
			}
			return lpResult{status: lpOptimal, x: p.dense(keep, kw), value: sol.val, ub: math.Max(sol.val, ub),
				cols: keep, approx: approx, iters: total}
		}
		// Artificials remain: either the node is infeasible or M is too
		// small. Phase 1 (minimise the artificials alone) decides.
		sol1, st1, _, _, it1 := p.cg(&cols, nb, 1, 0, math.Inf(-1))
		total += it1
		if st1 == lpFailed {
			return lpResult{status: lpFailed, iters: total}
		}
		if sol1.art > artTol {
			return lpResult{status: lpInfeasible, iters: total}
		}
	}
	return lpResult{status: lpFailed, iters: total}
}

// cg runs column generation for one phase. It returns the last master
// solution, the status, the best Lagrangian bound seen (phase 2), whether it
// stopped at the iteration limit, and the iteration count.
func (p *problem) cg(cols *[]*column, nb *nodeBounds, phase int, bigM, pruneAt float64) (masterSol, lpStatus, float64, bool, int) {
	F := len(p.formats)
	bonus := make([]float64, len(p.classes))
	pc := 0.0
	if phase == 2 {
		pc = 1
	}
	ub := math.Inf(1)
	var sol masterSol
	for it := 0; it < maxCG; it++ {
		if it > 0 && p.outOfTime() {
			// Out of time: the master solution so far, as at the
			// iteration limit (phase 2's bound stays valid).
			return sol, lpOptimal, ub, true, it
		}
		var err error
		sol, err = p.solveMaster(*cols, phase, bigM, nb.kRem, sol.basis)
		if err != nil {
			return sol, lpFailed, ub, false, it
		}
		base := 0.0
		for f := 0; f < F; f++ {
			base += sol.yF[f] * p.formats[f].share
		}
		for ci, mask := range p.classes {
			bonus[ci] = base
			for f := 0; f < F; f++ {
				if mask&p.formats[f].bit != 0 {
					bonus[ci] -= sol.yF[f]
				}
			}
		}
		sigma := 0.0
		if nb.kRem > 0 {
			sigma = sol.yC
		}
		col, ok := p.oracle(nb, pc, bonus, sigma)
		if !ok {
			return sol, lpFailed, ub, false, it
		}
		phi := pc * col.val
		for f := 0; f < F; f++ {
			phi += sol.yF[f] * (p.formats[f].share*col.total - col.fmt[f])
		}
		phi += sigma * col.y
		if phase == 2 {
			// Lagrangian bound: for any duals of the right sign, every
			// feasible x has value <= max_P L = phi - σK'.
			if b := phi - sigma*float64(nb.kRem); b < ub {
				ub = b
			}
			if ub <= pruneAt {
				return sol, lpPruned, ub, false, it
			}
		}
		if phi+sol.yConv <= cgTol {
			return sol, lpOptimal, ub, false, it
		}
		if hasColumn(*cols, col) {
			// Numerical stall: the best column is already in the master.
			return sol, lpOptimal, ub, false, it
		}
		*cols = append(*cols, col)
	}
	return sol, lpOptimal, ub, true, maxCG
}

func hasColumn(cols []*column, c *column) bool {
outer:
	for _, o := range cols {
		if len(o.idx) != len(c.idx) || o.total != c.total {
			continue
		}
		for k := range o.idx {
			if o.idx[k] != c.idx[k] || o.amt[k] != c.amt[k] {
				continue outer
			}
		}
		return true
	}
	return false
}

// dense combines weighted columns into one allocation.
func (p *problem) dense(cols []*column, w []float64) []float64 {
	x := make([]float64, len(p.cands))
	for j, c := range cols {
		for k, i := range c.idx {
			x[i] += w[j] * c.amt[k]
		}
	}
	return x
}
