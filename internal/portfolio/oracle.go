package portfolio

import (
	"math"
	"slices"
)

// nodeBounds are the branch-and-bound decisions in force at one node.
type nodeBounds struct {
	on     []bool // quote forced to at least its minimum spend
	onList []int  // the quotes with on set
	off    []bool // quote forced out
	sState []int8 // seller: 0 free, +1 counted (spend >= L), -1 not counted
	kRem   int    // sellers still to count beyond the counted ones
}

func (p *problem) rootBounds(minSellers int) *nodeBounds {
	nb := &nodeBounds{
		on:     make([]bool, len(p.cands)),
		off:    make([]bool, len(p.cands)),
		sState: make([]int8, len(p.sellers)),
		kRem:   minSellers,
	}
	return nb
}

// column is one extreme point of the block polytope P (budget, seller caps,
// availability, node bounds), with the aggregates the master LP needs.
type column struct {
	idx   []int32
	amt   []float64 // scaled spend per listed candidate
	total float64
	fmt   []float64 // spend serving each format-mix row
	y     float64   // Σ over free sellers of min(1, t_s/L_s)
	val   float64   // Σ v_i x_i
}

type hentry struct {
	slope float64
	idx   int32
	g     int32
}

type oracleScratch struct {
	x       []float64
	t       []float64
	pos     []int
	heap    []hentry
	touched []int // candidates with x > 0, to clear and collect in O(lines)
}

func (sc *oracleScratch) init(p *problem) {
	sc.x = make([]float64, len(p.cands))
	sc.t = make([]float64, len(p.sellers))
	sc.pos = make([]int, len(p.groups))
	sc.heap = make([]hentry, 0, len(p.groups))
}

const tiny = 1e-14 // scaled dollars: below this an amount is zero

func hless(a, b hentry) bool {
	return a.slope > b.slope || (a.slope == b.slope && a.idx < b.idx)
}

func (sc *oracleScratch) down(i int) {
	h := sc.heap
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		best := l
		if r := l + 1; r < len(h) && hless(h[r], h[l]) {
			best = r
		}
		if !hless(h[best], h[i]) {
			return
		}
		h[i], h[best] = h[best], h[i]
		i = best
	}
}

func (sc *oracleScratch) pop() {
	h := sc.heap
	h[0] = h[len(h)-1]
	sc.heap = h[:len(h)-1]
	if len(sc.heap) > 0 {
		sc.down(0)
	}
}

// oracle maximises Σ r_i x_i + σ Σ_{free s} min(1, t_s/L_s) over the block
// polytope P of node nb, where r_i = pc·v_i + classBonus[class_i] and t_s is
// seller s's total.
//
// P is laminar (the budget contains the seller caps, which contain the quote
// bounds), so a greedy fill is exact: each seller's best value as a function of
// its total is concave (fill its quotes by r, plus the count bonus σ/L_s on its
// first L_s dollars, which is also non-increasing), and a budget shared by
// concave pieces is filled by taking the steepest pieces first. Forced-on
// minimums and counted sellers' thresholds are allocated first; they are the
// lower bounds of the same laminar system. It returns false when P is empty.
func (p *problem) oracle(nb *nodeBounds, pc float64, classBonus []float64, sigma float64) (*column, bool) {
	sc := &p.sc
	for _, i := range sc.touched {
		sc.x[i] = 0
	}
	sc.touched = sc.touched[:0]
	clear(sc.t)
	clear(sc.pos)
	left := 1.0
	for _, i := range nb.onList {
		c := &p.cands[i]
		sc.x[i] = c.m
		sc.touched = append(sc.touched, i)
		sc.t[c.seller] += c.m
		left -= c.m
	}
	const slack = 1e-12
	for s := range p.sellers {
		if sc.t[s] > p.sellers[s].cap+slack {
			return nil, false
		}
	}
	if left < -slack {
		return nil, false
	}
	hi := func(i int) float64 {
		if nb.off[i] {
			return 0
		}
		return p.cands[i].u
	}
	r := func(i int) float64 {
		c := &p.cands[i]
		return pc*c.v + classBonus[c.class]
	}
	head := func(g int) int {
		mem := p.groups[g].members
		for sc.pos[g] < len(mem) {
			i := mem[sc.pos[g]]
			if hi(i)-sc.x[i] > tiny {
				return i
			}
			sc.pos[g]++
		}
		return -1
	}

	// Counted sellers must reach L_s: their first dollars go to their best
	// quotes, as in the concave fill.
	for s := range p.sellers {
		if nb.sState[s] != 1 {
			continue
		}
		si := &p.sellers[s]
		// Each pass exhausts a quote, reaches L_s or the cap; more passes
		// than that can only be a numerical fault (a NaN never compares
		// done): refuse the node rather than spin.
		for pass := 0; si.L-sc.t[s] > tiny; pass++ {
			if pass > len(si.cands)+2 {
				return nil, false
			}
			best, bestR := -1, math.Inf(-1)
			for _, g := range si.groups {
				i := head(g)
				if i < 0 {
					continue
				}
				if ri := r(i); best < 0 || ri > bestR || (ri == bestR && i < best) {
					best, bestR = i, ri
				}
			}
			room := si.cap - sc.t[s]
			if best < 0 || room <= tiny {
				return nil, false
			}
			a := math.Min(hi(best)-sc.x[best], math.Min(si.L-sc.t[s], room))
			if sc.x[best] == 0 {
				sc.touched = append(sc.touched, best)
			}
			sc.x[best] += a
			sc.t[s] += a
			left -= a
		}
	}
	if left < -slack {
		return nil, false
	}

	bonus := func(s int) float64 {
		if sigma <= 0 || nb.sState[s] != 0 {
			return 0
		}
		if si := &p.sellers[s]; sc.t[s] < si.L-tiny {
			return sigma / si.L
		}
		return 0
	}
	sc.heap = sc.heap[:0]
	for g := range p.groups {
		s := p.groups[g].seller
		if p.sellers[s].cap-sc.t[s] <= tiny {
			continue
		}
		if i := head(g); i >= 0 {
			sc.heap = append(sc.heap, hentry{slope: r(i) + bonus(s), idx: int32(i), g: int32(g)})
		}
	}
	for k := len(sc.heap)/2 - 1; k >= 0; k-- {
		sc.down(k)
	}
	// Every pass pops an entry, re-queues one whose count bonus ran out
	// (once per group), or exhausts a quote, a seller's room or the budget;
	// past that bound the slopes are not numbers (NaN != NaN re-queues
	// forever) and the node is refused.
	maxPasses := 4*(len(p.cands)+len(p.groups)+len(p.sellers)) + 64
	for pass := 0; left > tiny && len(sc.heap) > 0; pass++ {
		if pass > maxPasses {
			return nil, false
		}
		e := sc.heap[0]
		if e.slope <= 0 {
			break
		}
		g := int(e.g)
		s := p.groups[g].seller
		si := &p.sellers[s]
		room := si.cap - sc.t[s]
		i := head(g)
		if room <= tiny || i < 0 {
			sc.pop()
			continue
		}
		b := bonus(s)
		if sl := r(i) + b; sl != e.slope || int32(i) != e.idx {
			// The seller's count bonus ran out since this entry was pushed:
			// slopes only fall, so re-queue at the true slope.
			sc.heap[0].slope, sc.heap[0].idx = sl, int32(i)
			sc.down(0)
			continue
		}
		a := math.Min(hi(i)-sc.x[i], math.Min(room, left))
		if b > 0 {
			a = math.Min(a, si.L-sc.t[s])
		}
		if sc.x[i] == 0 {
			sc.touched = append(sc.touched, i)
		}
		sc.x[i] += a
		sc.t[s] += a
		left -= a
		j := head(g)
		if j < 0 || si.cap-sc.t[s] <= tiny {
			sc.pop()
			continue
		}
		sc.heap[0].slope, sc.heap[0].idx = r(j)+bonus(s), int32(j)
		sc.down(0)
	}

	col := &column{fmt: make([]float64, len(p.formats))}
	slices.Sort(sc.touched)
	col.idx = make([]int32, 0, len(sc.touched))
	col.amt = make([]float64, 0, len(sc.touched))
	for _, i := range sc.touched {
		x := sc.x[i]
		if x <= 0 {
			continue
		}
		c := &p.cands[i]
		col.idx = append(col.idx, int32(i))
		col.amt = append(col.amt, x)
		col.total += x
		col.val += c.v * x
		mask := p.classes[c.class]
		for f, row := range p.formats {
			if mask&row.bit != 0 {
				col.fmt[f] += x
			}
		}
	}
	if nb.kRem > 0 {
		for s, si := range p.sellers {
			if nb.sState[s] == 0 {
				col.y += math.Min(1, sc.t[s]/si.L)
			}
		}
	}
	return col, true
}

// validIn reports whether a column found at another node lies in this node's
// polytope, so children can start from their parent's columns.
func (p *problem) validIn(c *column, nb *nodeBounds) bool {
	nOn := len(nb.onList)
	t := p.sc.t
	clear(t)
	got := 0
	for k, i := range c.idx {
		if nb.off[i] {
			return false
		}
		ci := &p.cands[i]
		if nb.on[i] {
			if c.amt[k] < ci.m-1e-12 {
				return false
			}
			got++
		}
		t[ci.seller] += c.amt[k]
	}
	if got != nOn {
		return false
	}
	for s := range p.sellers {
		if nb.sState[s] == 1 && t[s] < p.sellers[s].L-1e-12 {
			return false
		}
	}
	return true
}

// recount recomputes the column's seller-count aggregate for a node (it
// depends on which sellers are free there).
func (p *problem) recount(c *column, nb *nodeBounds) *column {
	if nb.kRem <= 0 {
		if c.y == 0 {
			return c
		}
		cc := *c
		cc.y = 0
		return &cc
	}
	t := p.sc.t
	clear(t)
	for k, i := range c.idx {
		t[p.cands[i].seller] += c.amt[k]
	}
	y := 0.0
	for s, si := range p.sellers {
		if nb.sState[s] == 0 {
			y += math.Min(1, t[s]/si.L)
		}
	}
	if y == c.y {
		return c
	}
	cc := *c
	cc.y = y
	return &cc
}
