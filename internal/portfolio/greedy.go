package portfolio

import (
	"fmt"
	"sort"
	"strings"
)

// Greedy is the guide's selection (section 0, step 6), kept as the baseline
// the optimiser is measured against: sort the eligible quotes by score (ties
// by ID) and give each, in turn, as much as it can take up to a fixed amount
// per seller, until the budget is used. perSeller <= 0 means the brief's
// seller cap, or the whole budget when there is none.
//
// Like the optimiser it books whole impressions, never exceeds the budget or
// a quote's availability, and skips a quote whose seller minimum does not
// fit. It knows nothing of the format mix or MinSellers (nor, when perSeller
// is larger, of the brief's seller cap); Feasible and Notes say when its plan
// breaks them. Invalid input gives an empty plan whose Notes carry the error.
func Greedy(quotes []Quote, brief Brief, perSeller float64) (plan Plan) {
	defer func() {
		if r := recover(); r != nil {
			plan = Plan{Budget: brief.Budget, Notes: []string{fmt.Sprintf("%v: %v", ErrInternal, r)}}
		}
	}()
	if err := validate(quotes, brief); err != nil {
		plan := Plan{Budget: brief.Budget, Notes: []string{err.Error()}}
		for _, q := range quotes {
			plan.Excluded = append(plan.Excluded, Exclusion{QuoteID: q.ID, Reason: "invalid input"})
		}
		return plan
	}
	p := prepare(quotes, brief, false)
	per := p.budgetMicros
	if perSeller > 0 {
		per = min(per, limitMicros(perSeller))
	} else if len(p.sellers) > 0 && p.sellers[0].capMicros >= 0 {
		per = p.sellers[0].capMicros
	}
	perN := microsNano(per)
	left := microsNano(p.budgetMicros)
	spent := make([]u128, len(p.sellers))

	order := make([]int, len(p.cands))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return p.cands[order[a]].score > p.cands[order[b]].score })

	imps := make([]int64, len(p.cands))
	why := make([]string, len(p.cands))
	limit := make([]string, len(p.cands))
	for _, i := range order {
		c := &p.cands[i]
		room := perN.sub(spent[c.seller])
		byBudget := left.cmp(room) < 0
		if byBudget {
			room = left
		}
		n := room.floorDiv(uint64(c.cpmMicros))
		lim := "the fixed per-seller amount " + money(float64(per)/1e6)
		if byBudget {
			lim = "the remaining budget"
		}
		if c.avail > 0 && n >= c.avail {
			n, lim = c.avail, "all available impressions"
		}
		switch {
		case n <= 0 && byBudget:
			why[i] = "budget exhausted by higher-score quotes"
			continue
		case n <= 0:
			why[i] = fmt.Sprintf("seller cap reached: the per-seller amount %s for %s is used by higher-score quotes", money(float64(per)/1e6), p.sellers[c.seller].name)
			continue
		case n < c.minImps:
			why[i] = fmt.Sprintf("below seller minimum spend: only %s impressions fit, the seller minimum is %s", groupInt(n), groupInt(c.minImps))
			continue
		}
		imps[i] = n
		limit[i] = lim
		cost := lineNano(n, c.cpmMicros)
		spent[c.seller] = spent[c.seller].add(cost)
		left = left.sub(cost)
	}
	p.fitMicros(imps, false)
	plan = p.assemble(quotes, imps,
		func(i int) string {
			c := &p.cands[i]
			return fmt.Sprintf("greedy: score %.2f, rank %d of %d; %s impressions, limited by %s", c.score, c.rank, p.nElig, groupInt(imps[i]), limit[i])
		},
		func(i int) string { return why[i] })
	viol := p.check(imps, 0)
	plan.Feasible = len(viol) == 0
	if len(viol) > 0 && len(plan.Lines) > 0 {
		plan.Notes = append(plan.Notes, "greedy plan breaks the brief: "+strings.Join(viol, "; "))
	}
	if brief.MinSellers > 0 && len(plan.Lines) > 0 {
		if n := p.sellerCount(imps); n < brief.MinSellers {
			plan.Notes = append(plan.Notes, fmt.Sprintf("greedy plan has %d sellers, fewer than min sellers %d", n, brief.MinSellers))
		}
	}
	return plan
}
