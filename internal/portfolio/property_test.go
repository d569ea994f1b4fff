package portfolio

import (
	"fmt"
	"github.com/dealflow/dealflow/pkg/events"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// planViolations checks a plan against the quotes and the brief from the
// outside (no solver internals): every quote exactly once, whole impressions
// within availability and seller minimums, spend = impressions × CPM / 1000
// rounded down to the cent, the budget, the seller caps, the max CPM and the
// format mix. With minSellers set it also counts sellers reaching
// max(MinSellerSpend, one impression).
func planViolations(quotes []Quote, b Brief, p Plan, minSellers bool) []string {
	var out []string
	byID := map[string]Quote{}
	for _, q := range quotes {
		byID[q.ID] = q
	}
	seen := map[string]int{}
	for _, l := range p.Lines {
		seen[l.QuoteID]++
	}
	for _, e := range p.Excluded {
		seen[e.QuoteID]++
		if e.Reason == "" {
			out = append(out, "exclusion without reason: "+e.QuoteID)
		}
	}
	for _, q := range quotes {
		if seen[q.ID] != 1 {
			out = append(out, fmt.Sprintf("quote %s appears %d times", q.ID, seen[q.ID]))
		}
	}
	if len(seen) != len(quotes) {
		out = append(out, "plan mentions unknown quotes")
	}
	total := 0.0
	var totalMicros events.Micros
	sellerMicros := map[string]events.Micros{}
	seller := map[string]float64{}
	exact := map[string]float64{}
	fmtSpend := map[string]float64{}
	for _, l := range p.Lines {
		q := byID[l.QuoteID]
		if l.Reason == "" {
			out = append(out, "line without reason: "+l.QuoteID)
		}
		if l.Impressions <= 0 {
			out = append(out, "line with no impressions: "+l.QuoteID)
		}
		if q.AvailableImpressions > 0 && l.Impressions > q.AvailableImpressions {
			out = append(out, fmt.Sprintf("%s: %d impressions > %d available", l.QuoteID, l.Impressions, q.AvailableImpressions))
		}
		if l.Impressions < q.MinImpressions {
			out = append(out, fmt.Sprintf("%s: %d impressions < minimum %d", l.QuoteID, l.Impressions, q.MinImpressions))
		}
		// The booked CPM is the quote's, read to the micro-dollar and never
		// rounded above it.
		if l.CPMMicros.Dollars() > q.CPM || q.CPM-l.CPMMicros.Dollars() >= 1e-6*(1+1e-9) || l.CPM != l.CPMMicros.Dollars() {
			out = append(out, fmt.Sprintf("%s: booked CPM %d micros (%v) for quoted %v", l.QuoteID, l.CPMMicros, l.CPM, q.CPM))
		}
		// The spend is exactly what the seller books.
		if want := events.CostMicros(l.Impressions, l.CPMMicros); l.SpendMicros != want || l.Spend != want.Dollars() {
			out = append(out, fmt.Sprintf("%s: spend %d micros (%v), booked amount %d", l.QuoteID, l.SpendMicros, l.Spend, want))
		}
		totalMicros += l.SpendMicros
		sellerMicros[q.Seller] += l.SpendMicros
		// The format mix is a share of the exact cost (rounding each line up
		// to the micro is below its resolution).
		cost := float64(l.Impressions) * l.CPM / 1000
		if b.MaxCPM > 0 && l.CPM > b.MaxCPM+5e-7 {
			out = append(out, fmt.Sprintf("%s: CPM %.2f above max", l.QuoteID, q.CPM))
		}
		total += l.Spend
		seller[q.Seller] += l.Spend
		exact[q.Seller] += cost
		for f, share := range b.FormatMix {
			if share <= 0 {
				continue
			}
			for _, qf := range q.Formats {
				if strings.EqualFold(strings.TrimSpace(qf), f) {
					fmtSpend[f] += cost
					break
				}
			}
		}
	}
	if p.TotalSpendMicros != totalMicros || p.TotalSpend != totalMicros.Dollars() {
		out = append(out, fmt.Sprintf("TotalSpendMicros %d != Σ lines %d", p.TotalSpendMicros, totalMicros))
	}
	if len(p.Lines) > 0 && (totalMicros > p.BudgetMicros || p.BudgetMicros > events.Micros(toMicros(b.Budget))) {
		out = append(out, fmt.Sprintf("booked %d micros over the budget %d micros (%v)", totalMicros, p.BudgetMicros, b.Budget))
	}
	for s, v := range sellerMicros {
		if b.PerSellerCap > 0 && v.Dollars() > b.PerSellerCap {
			out = append(out, fmt.Sprintf("seller %s: %s over cap %v", s, v, b.PerSellerCap))
		}
		if b.PerSellerCapShare > 0 && v.Dollars() > b.PerSellerCapShare*b.Budget {
			out = append(out, fmt.Sprintf("seller %s: %s over cap share %v", s, v, b.PerSellerCapShare*b.Budget))
		}
	}
	if p.TotalSpend > b.Budget {
		out = append(out, fmt.Sprintf("TotalSpend %.2f > budget %.2f", p.TotalSpend, b.Budget))
	}
	if math.Abs(total-p.TotalSpend) > 1e-6+1e-12*total {
		out = append(out, fmt.Sprintf("TotalSpend %.2f != Σ lines %.2f", p.TotalSpend, total))
	}
	exactTotal := 0.0
	for s, v := range exact {
		exactTotal += v
		if b.PerSellerCap > 0 && v > b.PerSellerCap*(1+1e-12)+1e-9 {
			out = append(out, fmt.Sprintf("seller %s: %.4f over cap %.2f", s, v, b.PerSellerCap))
		}
		if b.PerSellerCapShare > 0 && v > b.PerSellerCapShare*b.Budget*(1+1e-12)+1e-9 {
			out = append(out, fmt.Sprintf("seller %s: %.4f over cap share %.4f", s, v, b.PerSellerCapShare*b.Budget))
		}
	}
	if exactTotal > b.Budget*(1+1e-12)+1e-9 {
		out = append(out, fmt.Sprintf("booked cost %.6f over budget %.2f", exactTotal, b.Budget))
	}
	if exactTotal > 0 {
		for f, share := range b.FormatMix {
			if share > 0 && fmtSpend[f] < share*exactTotal*(1-1e-9) {
				out = append(out, fmt.Sprintf("format %s: %.4f of %.4f below share %.4f", f, fmtSpend[f], exactTotal, share))
			}
		}
	}
	if minSellers && b.MinSellers > 0 {
		n := 0
		for s, v := range exact {
			th := b.MinSellerSpend
			for _, q := range quotes {
				cpm := float64(limitMicros(q.CPM)) / 1e6 // read as booked: never above the quote
				if q.Seller == s && cpm > 0 && (b.MaxCPM == 0 || cpm <= float64(toMicros(b.MaxCPM))/1e6) {
					th = math.Max(th, cpm/1000)
				}
			}
			if v >= th*(1-1e-12) {
				n++
			}
		}
		if n < b.MinSellers {
			out = append(out, fmt.Sprintf("%d sellers < min sellers %d", n, b.MinSellers))
		}
	}
	return out
}

// minSellersKept reports whether the plan claims to meet MinSellers: it books
// something and has no note saying min sellers was dropped.
func minSellersKept(p Plan, b Brief) bool {
	return len(p.Lines) > 0 && b.MinSellers > 0 && !strings.Contains(strings.Join(p.Notes, "\n"), "min sellers")
}

// TestPlanInvariants: on 500 seeded random instances (small ones with every
// constraint type, and campaign-shaped ones), every plan keeps the budget,
// the seller caps, availability and minimums, lists every quote exactly
// once, meets the format mix whenever it is marked feasible, and is worth at
// least as much as the guide's greedy plan whenever that plan satisfies the
// same constraints.
func TestPlanInvariants(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(2026, 1))
	const instances = 500
	feasible, compared, better := 0, 0, 0
	for it := 0; it < instances; it++ {
		var quotes []Quote
		var brief Brief
		if it%5 == 4 {
			quotes, brief = realisticInstance(r, 20+r.IntN(130))
		} else {
			quotes, brief = smallInstance(r, 40)
		}
		plan, err := Optimise(quotes, brief)
		if err != nil {
			t.Fatalf("instance %d: %v", it, err)
		}
		viol := planViolations(quotes, brief, plan, minSellersKept(plan, brief))
		if !plan.Feasible {
			// An infeasible plan still keeps the hard limits; it only books
			// nothing.
			if len(plan.Lines) > 0 {
				t.Fatalf("instance %d: infeasible plan with lines: %+v", it, plan)
			}
		} else {
			feasible++
		}
		if len(viol) > 0 {
			t.Fatalf("instance %d: %v\nquotes %+v\nbrief %+v\nplan %+v", it, viol, quotes, brief, plan)
		}
		if plan.Feasible != (len(plan.Lines) > 0) {
			t.Fatalf("instance %d: Feasible=%v with %d lines", it, plan.Feasible, len(plan.Lines))
		}

		// Greedy with the seller cap as its per-seller amount.
		g := Greedy(quotes, brief, 0)
		if gv := planViolations(quotes, brief, g, brief.MinSellers > 0); len(gv) == 0 && len(g.Lines) > 0 {
			compared++
			// The optimiser's continuous optimum dominates any feasible
			// plan; its booked plan loses at most the rounding to whole
			// impressions.
			p := prepare(quotes, brief, true)
			sol := p.solve(0)
			if opt := p.dollars(sol.value); opt < g.TotalValue*(1-1e-7)-1e-9 {
				t.Fatalf("instance %d: optimum %.6f below greedy %.6f", it, opt, g.TotalValue)
			}
			slack := 0.0
			for _, l := range plan.Lines {
				slack += 2 * l.Score * (l.CPM/1000 + 0.01) / 1000
			}
			if plan.TotalValue < g.TotalValue-slack-1e-9 {
				t.Fatalf("instance %d: plan value %.6f below greedy %.6f (slack %.6f)", it, plan.TotalValue, g.TotalValue, slack)
			}
			if plan.TotalValue > g.TotalValue+1e-6 {
				better++
			}
		}
	}
	t.Logf("%d instances: %d feasible plans, %d compared with a feasible greedy plan, optimiser strictly better in %d", instances, feasible, compared, better)
	if feasible < instances/2 || compared < instances/10 {
		t.Fatalf("generator too weak: %d feasible, %d compared", feasible, compared)
	}
}
