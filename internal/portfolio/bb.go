package portfolio

import (
	"container/heap"
	"math"
	"slices"
)

// Branch and bound over the binary parts: a quote with a seller minimum is
// either out (x = 0) or at least at its minimum (x >= m), and with MinSellers
// each seller either counts (spend >= L_s) or does not. Every node's LP
// relaxation is solved exactly by column generation (solveLP); nodes are
// explored best bound first, after a diving heuristic has found a first plan.

const (
	gapRel   = 1e-7 // nodes whose bound is within this of the incumbent are pruned
	intTol   = 1e-9 // scaled spend treated as "at" a bound
	maxDive  = 64
	nodeWork = 4_000_000 // node budget ≈ nodeWork / candidates, clamped
	// maxWork bounds the total column-generation effort (iterations ×
	// candidates) of one search, so a run of hard nodes cannot take long.
	maxWork = 100_000_000
)

// defaultMaxNodes bounds the search so that large instances stay fast: each
// node costs a few oracle passes over all candidates.
func defaultMaxNodes(nCands int) int {
	n := nodeWork / max(1, nCands)
	return min(5000, max(40, n))
}

const (
	brOn int8 = iota + 1
	brOff
	brCounted
	brNotCounted
)

type bbNode struct {
	parent *bbNode
	kind   int8
	idx    int
	ub     float64
	cols   []*column
	seq    int
}

type nodeHeap []*bbNode

func (h nodeHeap) Len() int { return len(h) }
func (h nodeHeap) Less(i, j int) bool {
	if h[i].ub != h[j].ub {
		return h[i].ub > h[j].ub
	}
	return h[i].seq < h[j].seq
}
func (h nodeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *nodeHeap) Push(x any)   { *h = append(*h, x.(*bbNode)) }
func (h *nodeHeap) Pop() any {
	old := *h
	n := old[len(old)-1]
	*h = old[:len(old)-1]
	return n
}

type searchStats struct {
	nodes    int
	work     int // Σ column-generation iterations × candidates
	hitLimit bool
	timedOut bool    // the limit hit was the time limit
	bound    float64 // best remaining bound when the limit was hit
	failed   int     // node LPs the solver could not finish
	approx   int     // node LPs stopped at the column-generation limit
}

type incumbent struct {
	x     []float64
	value float64
	ok    bool
}

func (inc *incumbent) offer(x []float64, v float64) {
	if !inc.ok || v > inc.value+1e-15 {
		inc.x, inc.value, inc.ok = x, v, true
	}
}

func (inc *incumbent) pruneAt() float64 {
	if !inc.ok {
		return math.Inf(-1)
	}
	return inc.value + gapRel*math.Abs(inc.value) + 1e-13
}

// apply rebuilds the bounds of node n from the root.
func (p *problem) apply(nb *nodeBounds, n *bbNode, minSellers int) {
	clear(nb.on)
	clear(nb.off)
	clear(nb.sState)
	nb.onList = nb.onList[:0]
	counted := 0
	for ; n != nil && n.kind != 0; n = n.parent {
		switch n.kind {
		case brOn:
			nb.on[n.idx] = true
			nb.onList = append(nb.onList, n.idx)
		case brOff:
			nb.off[n.idx] = true
		case brCounted:
			nb.sState[n.idx] = 1
			counted++
		case brNotCounted:
			nb.sState[n.idx] = -1
		}
	}
	nb.kRem = max(0, minSellers-counted)
}

// violation finds what keeps x from being a valid plan at this node: a quote
// strictly between 0 and its minimum, or too few sellers reaching their count
// threshold. It returns (-1, -1) when x is integer feasible and seller -2 when
// the count is short but no seller can be branched on.
func (p *problem) violation(x []float64, nb *nodeBounds, minSellers int) (quote, seller int) {
	quote, seller = -1, -1
	best := -1.0
	for i, c := range p.cands {
		if c.m == 0 || nb.on[i] || nb.off[i] {
			continue
		}
		if x[i] > intTol && x[i] < c.m-intTol {
			w := math.Min(x[i], c.m-x[i]) * math.Max(c.v, 1e-6)
			if w > best {
				best, quote = w, i
			}
		}
	}
	if minSellers <= 0 {
		return quote, -1
	}
	t := p.sc.t
	clear(t)
	for i, c := range p.cands {
		t[c.seller] += x[i]
	}
	count := 0
	for s, si := range p.sellers {
		if t[s] >= si.L-intTol {
			count++
		}
	}
	if count >= minSellers {
		return quote, -1
	}
	bestFrac := -1.0
	for s, si := range p.sellers {
		if nb.sState[s] != 0 {
			continue
		}
		if t[s] > intTol && t[s] < si.L-intTol {
			if f := t[s] / si.L; f > bestFrac {
				bestFrac, seller = f, s
			}
		}
	}
	if seller < 0 {
		seller = -2
	}
	return quote, seller
}

// search runs the dive and then best-first branch and bound.
func (p *problem) search(minSellers, maxNodes int) (incumbent, searchStats) {
	var inc incumbent
	var st searchStats
	nb := p.rootBounds(minSellers)
	root := p.solveLP(nb, nil, math.Inf(-1))
	st.nodes = 1
	p.tally(&st, root)
	if root.status != lpOptimal {
		st.timedOut = p.outOfTime()
		return inc, st
	}
	p.dive(root, minSellers, &inc, &st)

	h := &nodeHeap{}
	seq := 0
	rootNode := &bbNode{ub: root.ub}
	expand := func(n *bbNode, res lpResult) {
		if res.status != lpOptimal || res.ub <= inc.pruneAt() {
			return
		}
		q, s := p.violation(res.x, nb, minSellers)
		switch {
		case s == -2:
			return
		case s >= 0:
			seq++
			heap.Push(h, &bbNode{parent: n, kind: brCounted, idx: s, ub: res.ub, cols: res.cols, seq: seq})
			seq++
			heap.Push(h, &bbNode{parent: n, kind: brNotCounted, idx: s, ub: res.ub, cols: res.cols, seq: seq})
		case q >= 0:
			first, second := brOff, brOn
			if res.x[q] >= p.cands[q].m/2 {
				first, second = brOn, brOff
			}
			seq++
			heap.Push(h, &bbNode{parent: n, kind: first, idx: q, ub: res.ub, cols: res.cols, seq: seq})
			seq++
			heap.Push(h, &bbNode{parent: n, kind: second, idx: q, ub: res.ub, cols: res.cols, seq: seq})
		default:
			inc.offer(res.x, res.value)
		}
	}
	expand(rootNode, root)
	for h.Len() > 0 {
		if st.nodes >= maxNodes || st.work >= maxWork || p.outOfTime() {
			st.hitLimit = true
			break
		}
		n := heap.Pop(h).(*bbNode)
		if n.ub <= inc.pruneAt() {
			continue
		}
		p.apply(nb, n, minSellers)
		res := p.solveLP(nb, n.cols, inc.pruneAt())
		st.nodes++
		p.tally(&st, res)
		n.cols = nil // free memory: children carry their own copy
		expand(n, res)
	}
	st.timedOut = p.timedOut
	if st.hitLimit {
		st.bound = inc.value
		for _, n := range *h {
			st.bound = math.Max(st.bound, n.ub)
		}
	}
	return inc, st
}

func (p *problem) tally(st *searchStats, r lpResult) {
	st.work += max(1, r.iters) * len(p.cands)
	if r.status == lpFailed {
		st.failed++
	}
	if r.approx {
		st.approx++
	}
}

// dive finds a first plan quickly: round the LP solution (quotes at half
// their minimum or more are forced in, the others out; the most advanced
// seller is counted), re-solve, repeat.
func (p *problem) dive(res lpResult, minSellers int, inc *incumbent, st *searchStats) {
	nb := p.rootBounds(minSellers)
	for d := 0; d < maxDive; d++ {
		q, s := p.violation(res.x, nb, minSellers)
		if (q >= 0 || s != -1) && p.outOfTime() {
			return
		}
		if q < 0 && s == -1 {
			inc.offer(res.x, res.value)
			return
		}
		if s == -2 {
			return
		}
		var ons []int
		if s >= 0 {
			nb.sState[s] = 1
			nb.kRem = max(0, nb.kRem-1)
		} else {
			for i, c := range p.cands {
				if c.m == 0 || nb.on[i] || nb.off[i] {
					continue
				}
				if x := res.x[i]; x > intTol && x < c.m-intTol {
					if x >= c.m/2 {
						nb.on[i] = true
						nb.onList = append(nb.onList, i)
						ons = append(ons, i)
					} else {
						nb.off[i] = true
					}
				}
			}
		}
		next := p.solveLP(nb, res.cols, math.Inf(-1))
		st.nodes++
		p.tally(st, next)
		if next.status != lpOptimal && len(ons) > 0 {
			for _, i := range ons {
				nb.on[i], nb.off[i] = false, true
			}
			nb.onList = slices.DeleteFunc(nb.onList, func(i int) bool { return nb.off[i] })
			next = p.solveLP(nb, res.cols, math.Inf(-1))
			st.nodes++
			p.tally(st, next)
		}
		if next.status != lpOptimal {
			return
		}
		res = next
	}
}
