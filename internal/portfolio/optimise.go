package portfolio

import (
	"fmt"
	"github.com/dealflow/dealflow/pkg/events"
	"math"
	"strings"
	"time"
)

// Optimise selects the portfolio: the spend per quote that maximises the
// score-weighted spend subject to the brief (see the package doc for the
// model). It returns an error only for invalid input (errors.Is
// ErrInvalidInput); an infeasible brief gives a Plan with Feasible=false and
// the reasons. The result is deterministic: ties go to the lower quote ID.
func Optimise(quotes []Quote, brief Brief) (plan Plan, err error) {
	defer func() {
		if r := recover(); r != nil {
			plan, err = Plan{}, fmt.Errorf("%w: %v", ErrInternal, r)
		}
	}()
	return optimise(quotes, brief, 0)
}

// optimise is Optimise with a node limit (0: defaultMaxNodes) and the
// system clock.
func optimise(quotes []Quote, brief Brief, maxNodes int) (Plan, error) {
	return optimiseWith(quotes, brief, maxNodes, time.Now)
}

// solution is the optimiser's continuous answer before rounding.
type solution struct {
	x          []float64 // scaled spend per candidate; nil when nothing
	value      float64   // scaled objective Σ v x
	minSellers int       // MinSellers actually enforced (0 when dropped)
	notes      []string
	stats      searchStats
}

// optimiseWith is optimise with the clock the time limit reads.
func optimiseWith(quotes []Quote, brief Brief, maxNodes int, now func() time.Time) (Plan, error) {
	if err := validate(quotes, brief); err != nil {
		return Plan{}, err
	}
	p := prepare(quotes, brief, true)
	p.timeLimit = brief.TimeLimit
	if p.timeLimit <= 0 {
		p.timeLimit = DefaultTimeLimit
	}
	p.now, p.deadline = now, now().Add(p.timeLimit)
	sol := p.solve(maxNodes)
	if sol.x == nil && p.timedOut {
		// Out of time before any plan: the guide's greedy selection, when
		// it meets the brief, is a feasible plan found in linear time.
		if g := Greedy(quotes, brief, 0); g.Feasible {
			g.Notes = append(append(p.notes, sol.notes...), fmt.Sprintf("the optimiser found no plan within its time limit of %s: the plan is the guide's greedy selection, which meets the brief but may be worth less than the optimum", p.timeLimit))
			return g, nil
		}
	}
	imps := p.roundImpressions(sol.x)
	cut := p.repair(imps, true, p.counted(sol))
	p.topUp(imps)
	p.fitMicros(imps, true)
	p.notes = append(p.notes, sol.notes...)
	ex := p.newExplainer(sol, imps, cut)
	plan := p.assemble(quotes, imps, ex.line, ex.excl)
	viol := p.check(imps, 0)
	plan.Feasible = len(viol) == 0
	if len(plan.Lines) > 0 && !plan.Feasible {
		plan.Notes = append(plan.Notes, "after rounding to whole impressions: "+strings.Join(viol, "; "))
	}
	if sol.minSellers > 0 && len(plan.Lines) > 0 {
		if n := p.sellerCount(imps); n < sol.minSellers {
			plan.Notes = append(plan.Notes, fmt.Sprintf("after rounding to whole impressions only %d sellers reach their threshold (min sellers %d)", n, sol.minSellers))
		}
	}
	if len(plan.Lines) == 0 && len(plan.Notes) == 0 {
		plan.Notes = append(plan.Notes, "nothing can be booked: no quote adds value within the constraints")
	}
	return plan, nil
}

// counted marks the sellers that the solution counts toward MinSellers, so
// rounding keeps them at their threshold.
func (p *problem) counted(sol solution) []bool {
	if sol.minSellers <= 0 || sol.x == nil {
		return nil
	}
	t := make([]float64, len(p.sellers))
	for i, c := range p.cands {
		t[c.seller] += sol.x[i]
	}
	out := make([]bool, len(p.sellers))
	for s, si := range p.sellers {
		out[s] = t[s] >= si.L-intTol
	}
	return out
}

// dollars converts a scaled objective to the plan's value unit.
func (p *problem) dollars(v float64) float64 { return v * p.scoreScale * p.budget / 1000 }

// solve runs the search with MinSellers, and without it when it cannot be met.
func (p *problem) solve(maxNodes int) solution {
	var sol solution
	if len(p.cands) == 0 {
		return sol
	}
	if maxNodes <= 0 {
		maxNodes = defaultMaxNodes(len(p.cands))
	}
	K := p.minSellers
	if K > len(p.sellers) {
		sol.notes = append(sol.notes, fmt.Sprintf("min sellers %d cannot be met: only %d sellers have eligible quotes; planned without it", K, len(p.sellers)))
		K = 0
	}
	if K > 0 {
		inc, st := p.search(K, maxNodes)
		if inc.ok {
			sol.x, sol.value, sol.minSellers, sol.stats = inc.x, inc.value, K, st
			sol.notes = append(sol.notes, p.searchNotes(st, inc)...)
			return sol
		}
		if st.timedOut {
			sol.notes = append(sol.notes, fmt.Sprintf("min sellers %d: no plan meeting it was found within the time limit of %s; planned without it", K, p.timeLimit))
		} else if st.hitLimit {
			sol.notes = append(sol.notes, fmt.Sprintf("min sellers %d: no plan meeting it was found within the search limit of %d nodes; planned without it", K, maxNodes))
		} else {
			sol.notes = append(sol.notes, fmt.Sprintf("min sellers %d cannot be met within the budget, seller caps and seller minimums; planned without it", K))
		}
	}
	inc, st := p.search(0, maxNodes)
	sol.stats = st
	sol.notes = append(sol.notes, p.searchNotes(st, inc)...)
	switch {
	case inc.ok:
		sol.x, sol.value = inc.x, inc.value
	case st.timedOut:
		sol.notes = append(sol.notes, fmt.Sprintf("the optimiser found no plan within its time limit of %s after %d nodes; nothing booked", p.timeLimit, st.nodes))
	default:
		sol.notes = append(sol.notes, "the optimiser found no plan (numerical failure); nothing booked")
	}
	return sol
}

func (p *problem) searchNotes(st searchStats, inc incumbent) []string {
	var out []string
	if st.hitLimit && inc.ok {
		gap := 0.0
		if inc.value > 0 {
			gap = math.Max(0, (st.bound-inc.value)/inc.value)
		}
		limit := "its limit"
		if st.timedOut {
			limit = "its time limit of " + p.timeLimit.String()
		}
		out = append(out, fmt.Sprintf("search stopped at %s after %d nodes: the plan's value %.2f is within %.4f%% of the best possible (bound %.2f)",
			limit, st.nodes, p.dollars(inc.value), 100*gap, p.dollars(st.bound)))
	}
	if st.failed > 0 {
		out = append(out, fmt.Sprintf("%d branch-and-bound nodes could not be solved numerically and were skipped", st.failed))
	}
	if st.approx > 0 {
		out = append(out, fmt.Sprintf("%d LP relaxations stopped at the column-generation limit (their bounds are still valid)", st.approx))
	}
	return out
}

// explainer writes the reasons: why each line is in at its spend and why
// every other candidate is out, from the LP solution's tight constraints.
type explainer struct {
	p           *problem
	sol         solution
	imps        []int64
	cut         []bool
	t           []float64 // LP spend per seller (scaled)
	T           float64
	budgetTight bool
	sellerTight []bool
	fmtTight    []bool
	minLine     float64   // lowest score among lines
	sellerMin   []float64 // lowest line score per seller
	atThreshold []bool    // sellers booked within one impression of their count threshold
}

func (p *problem) newExplainer(sol solution, imps []int64, cut []bool) *explainer {
	e := &explainer{p: p, sol: sol, imps: imps, cut: cut,
		t: make([]float64, len(p.sellers)), sellerTight: make([]bool, len(p.sellers)),
		fmtTight: make([]bool, len(p.formats)), minLine: math.Inf(1), sellerMin: make([]float64, len(p.sellers))}
	for s := range e.sellerMin {
		e.sellerMin[s] = math.Inf(1)
	}
	fmtSpend := make([]float64, len(p.formats))
	for i, c := range p.cands {
		if sol.x != nil {
			e.t[c.seller] += sol.x[i]
			e.T += sol.x[i]
			for f, row := range p.formats {
				if p.classes[c.class]&row.bit != 0 {
					fmtSpend[f] += sol.x[i]
				}
			}
		}
		if imps[i] > 0 {
			e.minLine = math.Min(e.minLine, c.score)
			e.sellerMin[c.seller] = math.Min(e.sellerMin[c.seller], c.score)
		}
	}
	const tol = 1e-7
	e.budgetTight = e.T >= 1-tol
	for s, si := range p.sellers {
		e.sellerTight[s] = si.capMicros >= 0 && si.cap < 1 && e.t[s] >= si.cap-tol
	}
	for f, row := range p.formats {
		e.fmtTight[f] = e.T > tol && fmtSpend[f] <= row.share*e.T+tol
	}
	e.atThreshold = make([]bool, len(p.sellers))
	for s, si := range p.sellers {
		tot := u128{}
		maxCPM := int64(0)
		for _, i := range si.cands {
			if imps[i] > 0 {
				tot = tot.add(lineNano(imps[i], p.cands[i].cpmMicros))
				maxCPM = max(maxCPM, p.cands[i].cpmMicros)
			}
		}
		e.atThreshold[s] = maxCPM > 0 && tot.cmp(si.Lnano) >= 0 && tot.sub(si.Lnano).cmp(u128{lo: uint64(maxCPM)}) < 0
	}
	return e
}

func (e *explainer) mixText() string {
	var parts []string
	for _, f := range e.p.formats {
		parts = append(parts, f.key+" >= "+pct(f.share))
	}
	return strings.Join(parts, ", ")
}

func (e *explainer) line(i int) string {
	p := e.p
	c := &p.cands[i]
	s := p.sellers[c.seller]
	var b strings.Builder
	fmt.Fprintf(&b, "score %.2f, value rank %d of %d", c.score, c.rank, p.nElig)
	if c.rank == 1 {
		b.WriteString(" (best value per dollar)")
	}
	fmt.Fprintf(&b, "; %s for %s impressions at CPM %s; ", p.lineMicros(i, e.imps[i]), groupInt(e.imps[i]), events.Micros(c.cpmMicros).Cents())
	mask := p.classes[c.class]
	switch {
	case c.avail > 0 && e.imps[i] == c.avail:
		b.WriteString("all available impressions")
	case e.sellerTight[c.seller]:
		b.WriteString("capped by seller cap " + moneyFloor(s.capDollar))
	case c.minImps > 0 && e.imps[i] == c.minImps:
		b.WriteString("at the seller minimum of " + groupInt(c.minImps) + " impressions")
	case e.budgetTight:
		b.WriteString("limited by the budget (fully used)")
	default:
		b.WriteString("sized to keep the format mix (" + e.mixText() + ")")
	}
	if e.cut[i] {
		b.WriteString("; trimmed to whole impressions within the limits")
	}
	for f, row := range p.formats {
		if e.fmtTight[f] && mask&row.bit != 0 {
			fmt.Fprintf(&b, "; counts toward %s >= %s", row.key, pct(row.share))
		}
	}
	if e.sol.minSellers > 0 && e.atThreshold[c.seller] {
		fmt.Fprintf(&b, "; keeps %s at the %s that counts toward min sellers %d", s.name, money(s.L*p.budget), e.sol.minSellers)
	}
	return b.String()
}

func (e *explainer) excl(i int) string {
	p := e.p
	c := &p.cands[i]
	s := &p.sellers[c.seller]
	x := 0.0
	if e.sol.x != nil {
		x = e.sol.x[i]
	}
	switch {
	case x > 0 && e.cut[i]:
		return "cut while rounding to whole impressions to stay within the budget, seller cap and format mix"
	case x > 0:
		return "allocation below one impression"
	case p.blocker != "":
		return "nothing can be booked: " + p.blocker
	case c.score <= 0:
		return fmt.Sprintf("score %.2f: no value under the weights", c.score)
	case e.sellerTight[c.seller]:
		if c.score <= e.sellerMin[c.seller] {
			return fmt.Sprintf("seller cap reached: %s is at its %s cap with higher-value quotes", s.name, moneyFloor(s.capDollar))
		}
		return fmt.Sprintf("seller cap reached: %s's %s cap is used by quotes that also serve the format mix (%s)", s.name, moneyFloor(s.capDollar), e.mixText())
	case c.m > 0:
		room := 1 - e.T
		where := "the budget"
		if s.capMicros >= 0 && s.cap-e.t[c.seller] < room {
			room, where = s.cap-e.t[c.seller], "the seller cap"
		}
		if room < c.m-intTol {
			return fmt.Sprintf("below seller minimum spend: the minimum order of %s impressions costs %s, only %s is left under %s",
				groupInt(c.minImps), money(c.m*p.budget), money(math.Max(0, room)*p.budget), where)
		}
		return fmt.Sprintf("below seller minimum spend: the minimum order of %s impressions (%s) would displace higher-value spend",
			groupInt(c.minImps), money(c.m*p.budget))
	case e.budgetTight:
		if c.score <= e.minLine || len(p.formats) == 0 {
			return "budget exhausted by higher-value quotes"
		}
		return "budget exhausted: the format mix (" + e.mixText() + ") needs the budget on other quotes"
	case len(p.formats) > 0:
		return "left out to keep the format mix (" + e.mixText() + ")"
	default:
		return "not needed for the plan"
	}
}
