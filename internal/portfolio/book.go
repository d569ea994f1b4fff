package portfolio

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/dealflow/dealflow/pkg/events"
)

// roundImpressions turns scaled spend into whole impressions: floor of
// spend×1000/CPM (with a hair of tolerance so an LP value of 999999.9999999
// impressions is read as the million it stands for; the exact money checks
// below take back any excess), capped by availability, and snapped to the
// seller minimum when the LP sat on it.
func (p *problem) roundImpressions(x []float64) []int64 {
	imps := make([]int64, len(p.cands))
	for i, c := range p.cands {
		if x == nil || x[i] <= 0 {
			continue
		}
		q := x[i] * p.budget * 1000 / c.cpm
		n := int64(math.Floor(q + 1e-6))
		if c.avail > 0 && n > c.avail {
			n = c.avail
		}
		if c.minImps > 0 && n < c.minImps {
			if q >= float64(c.minImps)*(1-1e-9)-1e-3 {
				n = c.minImps
			} else {
				n = 0
			}
		}
		imps[i] = max(0, n)
	}
	return imps
}

// lowFirst orders candidates from least to most valuable (score, then the
// later ID first), the order in which rounding repairs take impressions back.
func (p *problem) lowFirst() []int {
	o := make([]int, len(p.cands))
	for i := range o {
		o[i] = i
	}
	sort.SliceStable(o, func(a, b int) bool {
		ca, cb := &p.cands[o[a]], &p.cands[o[b]]
		if ca.score != cb.score {
			return ca.score < cb.score
		}
		return ca.id > cb.id
	})
	return o
}

func (p *problem) capNano() (u128, bool) {
	if len(p.sellers) == 0 || p.sellers[0].capMicros < 0 {
		return u128{}, false
	}
	return microsNano(p.sellers[0].capMicros), true
}

// repair makes the booked impressions satisfy the budget and seller caps
// exactly (integer nano-dollars), and the format mix when mix is set, by
// taking impressions back from the least valuable lines. It only ever lowers
// spend, so availability stays met; a line that would fall below its seller
// minimum is dropped instead. It reports which lines it touched.
func (p *problem) repair(imps []int64, mix bool, protect []bool) []bool {
	cut := make([]bool, len(imps))
	order := p.lowFirst()
	sellerNano := func(s int) u128 {
		t := u128{}
		for _, i := range p.sellers[s].cands {
			t = t.add(lineNano(imps[i], p.cands[i].cpmMicros))
		}
		return t
	}
	reduce := func(in func(i int) bool, excess u128) u128 {
		// First trim lines down to their seller minimum, keeping protected
		// sellers at their count threshold; then trim protected sellers;
		// then drop whole lines.
		for stage := 0; stage < 2; stage++ {
			for _, i := range order {
				if excess.isZero() {
					return excess
				}
				c := &p.cands[i]
				if imps[i] == 0 || !in(i) {
					continue
				}
				d := min(imps[i]-c.minImps, excess.ceilDiv(uint64(c.cpmMicros)))
				if stage == 0 && protect != nil && protect[c.seller] {
					spare := sellerNano(c.seller).sub(p.sellers[c.seller].Lnano)
					d = min(d, spare.floorDiv(uint64(c.cpmMicros)))
				}
				if d <= 0 {
					continue
				}
				imps[i] -= d
				cut[i] = true
				excess = excess.sub(lineNano(d, c.cpmMicros))
			}
		}
		for _, i := range order {
			if excess.isZero() {
				return excess
			}
			if imps[i] == 0 || !in(i) {
				continue
			}
			excess = excess.sub(lineNano(imps[i], p.cands[i].cpmMicros))
			imps[i] = 0
			cut[i] = true
		}
		return excess
	}
	// Sellers counted toward MinSellers in the solution keep their threshold:
	// flooring may have left them a fraction of an impression short.
	if protect != nil {
		for s := range p.sellers {
			if !protect[s] {
				continue
			}
			deficit := p.sellers[s].Lnano.sub(sellerNano(s))
			for k := len(order) - 1; k >= 0 && !deficit.isZero(); k-- {
				i := order[k]
				c := &p.cands[i]
				if c.seller != s || imps[i] == 0 {
					continue
				}
				add := deficit.ceilDiv(uint64(c.cpmMicros))
				if c.avail > 0 {
					add = min(add, c.avail-imps[i])
				}
				if add > 0 {
					imps[i] += add
					deficit = deficit.sub(lineNano(add, c.cpmMicros))
				}
			}
		}
	}
	if capN, ok := p.capNano(); ok {
		for s := range p.sellers {
			tot := u128{}
			for _, i := range p.sellers[s].cands {
				tot = tot.add(lineNano(imps[i], p.cands[i].cpmMicros))
			}
			if tot.cmp(capN) > 0 {
				reduce(func(i int) bool { return p.cands[i].seller == s }, tot.sub(capN))
			}
		}
	}
	budgetN := microsNano(p.budgetMicros)
	if tot := p.totalNano(imps); tot.cmp(budgetN) > 0 {
		reduce(func(int) bool { return true }, tot.sub(budgetN))
	}
	if !mix {
		return cut
	}
	// Format shares: cutting lines that serve no format-mix format raises
	// every share at once, so try those first; then cut outside each short
	// format in turn.
	for pass := 0; pass < 8*len(p.formats)+8; pass++ {
		worst := 0.0
		var short []fmtRow
		for _, f := range p.formats {
			F, T := p.formatNano(imps, f.bit)
			if F >= f.share*T*(1-1e-12) {
				continue
			}
			short = append(short, f)
			worst = math.Max(worst, T-F/f.share)
		}
		if len(short) == 0 {
			break
		}
		rest := reduce(func(i int) bool { return p.classes[p.cands[i].class] == 0 }, fromFloat(math.Ceil(worst)+1))
		if rest.isZero() {
			continue
		}
		for _, f := range short {
			F, T := p.formatNano(imps, f.bit)
			if F >= f.share*T*(1-1e-12) {
				continue
			}
			reduce(func(i int) bool { return p.classes[p.cands[i].class]&f.bit == 0 }, fromFloat(math.Ceil(T-F/f.share)+1))
		}
	}
	return cut
}

// topUp spends what rounding left over: in two passes over the lines, best
// score first, each line takes the most whole impressions that keep the
// budget, its seller cap, its availability and every format share. It never
// opens a new line (that could break a seller minimum) and never exceeds what
// the LP would allow, so it only wins back rounding losses.
func (p *problem) topUp(imps []int64) {
	order := p.lowFirst()
	budgetN := microsNano(p.budgetMicros)
	capN, capped := p.capNano()
	total := p.totalNano(imps)
	seller := make([]u128, len(p.sellers))
	fmtF := make([]u128, len(p.formats))
	for i, n := range imps {
		if n == 0 {
			continue
		}
		c := &p.cands[i]
		cost := lineNano(n, c.cpmMicros)
		seller[c.seller] = seller[c.seller].add(cost)
		for f, row := range p.formats {
			if p.classes[c.class]&row.bit != 0 {
				fmtF[f] = fmtF[f].add(cost)
			}
		}
	}
	for pass := 0; pass < 2; pass++ {
		for k := len(order) - 1; k >= 0; k-- {
			i := order[k]
			c := &p.cands[i]
			if imps[i] == 0 {
				continue
			}
			room := budgetN.sub(total)
			if capped {
				if r := capN.sub(seller[c.seller]); r.cmp(room) < 0 {
					room = r
				}
			}
			add := room.floorDiv(uint64(c.cpmMicros))
			if c.avail > 0 {
				add = min(add, c.avail-imps[i])
			}
			mask := p.classes[c.class]
			for f, row := range p.formats {
				if mask&row.bit != 0 || add <= 0 {
					continue
				}
				// Spend outside f may grow by F/share - T.
				lim := fmtF[f].float()/row.share - total.float()
				add = min(add, int64(math.Max(0, math.Floor(lim*(1-1e-12)/float64(c.cpmMicros)))))
			}
			if add <= 0 {
				continue
			}
			imps[i] += add
			cost := lineNano(add, c.cpmMicros)
			total = total.add(cost)
			seller[c.seller] = seller[c.seller].add(cost)
			for f, row := range p.formats {
				if mask&row.bit != 0 {
					fmtF[f] = fmtF[f].add(cost)
				}
			}
		}
	}
}

func (p *problem) totalNano(imps []int64) u128 {
	t := u128{}
	for i, n := range imps {
		if n > 0 {
			t = t.add(lineNano(n, p.cands[i].cpmMicros))
		}
	}
	return t
}

// formatNano returns (spend serving the format, total spend) in nano-dollars.
func (p *problem) formatNano(imps []int64, bit uint32) (float64, float64) {
	F, T := u128{}, u128{}
	for i, n := range imps {
		if n == 0 {
			continue
		}
		c := lineNano(n, p.cands[i].cpmMicros)
		T = T.add(c)
		if p.classes[p.cands[i].class]&bit != 0 {
			F = F.add(c)
		}
	}
	return F.float(), T.float()
}

// sellerCount counts sellers whose booked spend reaches their count threshold.
func (p *problem) sellerCount(imps []int64) int {
	n := 0
	for _, si := range p.sellers {
		tot := u128{}
		for _, i := range si.cands {
			tot = tot.add(lineNano(imps[i], p.cands[i].cpmMicros))
		}
		if !tot.isZero() && tot.cmp(si.Lnano) >= 0 {
			n++
		}
	}
	return n
}

// check lists the brief's constraints that the booked impressions break;
// minSellers <= 0 skips the seller count.
func (p *problem) check(imps []int64, minSellers int) []string {
	var out []string
	any := false
	for _, n := range imps {
		if n > 0 {
			any = true
			break
		}
	}
	if !any {
		out = append(out, "nothing booked")
	}
	if tot := p.totalNano(imps); tot.cmp(microsNano(p.budgetMicros)) > 0 {
		out = append(out, fmt.Sprintf("spend %s over the budget %s", money(tot.float()/1e9), money(p.budget)))
	}
	if capN, ok := p.capNano(); ok {
		for _, si := range p.sellers {
			tot := u128{}
			for _, i := range si.cands {
				tot = tot.add(lineNano(imps[i], p.cands[i].cpmMicros))
			}
			if tot.cmp(capN) > 0 {
				out = append(out, fmt.Sprintf("seller %s gets %s, over its cap %s", si.name, money(tot.float()/1e9), moneyFloor(si.capDollar)))
			}
		}
	}
	for i, n := range imps {
		c := &p.cands[i]
		if c.avail > 0 && n > c.avail {
			out = append(out, fmt.Sprintf("quote %s books %s impressions, more than the %s available", c.id, groupInt(n), groupInt(c.avail)))
		}
		if n > 0 && n < c.minImps {
			out = append(out, fmt.Sprintf("quote %s books %s impressions, below the seller minimum %s", c.id, groupInt(n), groupInt(c.minImps)))
		}
	}
	for _, f := range p.formats {
		F, T := p.formatNano(imps, f.bit)
		if T > 0 && F < f.share*T*(1-1e-9) {
			out = append(out, fmt.Sprintf("format mix: %s is %.2f%% of spend, below %s", f.key, 100*F/T, pct(f.share)))
		}
	}
	if minSellers > 0 {
		if n := p.sellerCount(imps); n < minSellers {
			out = append(out, fmt.Sprintf("%d sellers, fewer than the minimum %d", n, minSellers))
		}
	}
	return out
}

// assemble builds the Plan: lines for booked candidates, exclusions for the
// rest (candidates and the quotes dropped while preparing), totals.
func (p *problem) assemble(quotes []Quote, imps []int64, lineReason, exclReason func(i int) string) Plan {
	plan := Plan{Budget: p.budget, BudgetMicros: events.Micros(p.budgetMicros)}
	inPlan := make(map[int]bool, len(p.cands))
	for i, c := range p.cands {
		inPlan[c.q] = true
		if imps[i] <= 0 {
			plan.Excluded = append(plan.Excluded, Exclusion{QuoteID: c.id, Reason: exclReason(i)})
			continue
		}
		spend := p.lineMicros(i, imps[i])
		plan.TotalSpendMicros += spend
		q := quotes[c.q]
		l := Line{
			QuoteID: c.id, Seller: q.Seller, PackageID: q.PackageID, CPMMicros: events.Micros(c.cpmMicros), CPM: c.cpm,
			Impressions: imps[i], SpendMicros: spend, Spend: spend.Dollars(), Score: c.score,
		}
		l.Reason = lineReason(i)
		plan.Lines = append(plan.Lines, l)
		plan.TotalValue += l.Score * l.Spend / 1000
	}
	plan.TotalSpend = plan.TotalSpendMicros.Dollars()
	planned := map[string]bool{}
	for _, l := range plan.Lines {
		planned[l.Seller] = true
	}
	for qi, q := range quotes {
		if !inPlan[qi] {
			r, ok := p.excluded[qi]
			if !ok {
				r = "not considered"
			}
			if strings.HasPrefix(r, capReached) && !planned[q.Seller] {
				// Set aside before the solve for better quotes of the same
				// seller, none of which made the plan: it is not the cap
				// that keeps it out.
				r = "budget exhausted by higher-value quotes: " + q.Seller + " has better quotes with the same formats, and none of its quotes made the plan"
			}
			plan.Excluded = append(plan.Excluded, Exclusion{QuoteID: q.ID, Reason: r})
		}
	}
	sort.SliceStable(plan.Lines, func(a, b int) bool {
		if plan.Lines[a].Score != plan.Lines[b].Score {
			return plan.Lines[a].Score > plan.Lines[b].Score
		}
		return plan.Lines[a].QuoteID < plan.Lines[b].QuoteID
	})
	sort.Slice(plan.Excluded, func(a, b int) bool { return plan.Excluded[a].QuoteID < plan.Excluded[b].QuoteID })
	plan.Notes = append(plan.Notes, p.notes...)
	return plan
}

// lineMicros is what the seller books for n impressions of candidate i:
// events.CostMicros, impressions x CPM micros / 1000 rounded up to the micro.
func (p *problem) lineMicros(i int, n int64) events.Micros {
	return events.CostMicros(n, events.Micros(p.cands[i].cpmMicros))
}

// fitMicros makes the booked amounts fit the seller caps and the budget
// exactly. The fill keeps the exact Σ impressions x CPM within them, and
// rounding each line up to the micro (what the seller books) adds less than
// a micro per line; that excess is taken back from the least valuable lines
// that stay at or above their seller minimum. When mix is set and a line was
// trimmed, the format mix is repaired again (repair only lowers spend, so the
// amounts stay within the caps and the budget).
func (p *problem) fitMicros(imps []int64, mix bool) {
	order := p.lowFirst()
	trimmed := false
	fit := func(member func(i int) bool, limit int64) {
		var total int64
		for i := range imps {
			if member(i) && imps[i] > 0 {
				total += int64(p.lineMicros(i, imps[i]))
			}
		}
		for _, i := range order {
			if total <= limit {
				return
			}
			c := &p.cands[i]
			if !member(i) || imps[i] <= 0 || c.cpmMicros <= 0 {
				continue
			}
			room := imps[i] - c.minImps
			if c.minImps == 0 {
				room = imps[i]
			}
			k := min(room, mul64(uint64(total-limit), 1000).ceilDiv(uint64(c.cpmMicros)))
			if k <= 0 {
				continue
			}
			before := p.lineMicros(i, imps[i])
			imps[i] -= k
			trimmed = true
			total -= int64(before - p.lineMicros(i, imps[i]))
		}
	}
	for s, si := range p.sellers {
		if si.capMicros >= 0 {
			fit(func(i int) bool { return p.cands[i].seller == s }, si.capMicros)
		}
	}
	fit(func(int) bool { return true }, p.budgetMicros)
	if trimmed && mix && len(p.formats) > 0 {
		p.repair(imps, true, nil)
	}
}
