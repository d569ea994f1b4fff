package portfolio

import (
	"fmt"
	"github.com/dealflow/dealflow/pkg/events"
	"math"
	"sort"
	"time"
)

// Input limits. They keep every money product inside exact integer arithmetic
// (impressions × CPM micros fits in 128 bits) and reject values that can only
// be bugs upstream.
const (
	maxBudget      = 1e12 // dollars
	maxCPM         = 1e7  // dollars per thousand
	maxImpressions = 1e15
	maxQuotes      = 1 << 20
	// maxWeight bounds every score weight's magnitude, so a score (at most
	// |Price| × maxCPM + the four bonuses, about 1e13) and every product
	// the solver forms from it stay finite: a weight of 1e308 made scores
	// +Inf, the solver's values NaN, and the fill loops never end.
	maxWeight = 1e6
)

// The brief's documented limits (pkg/events) must be within the optimiser's:
// each line below fails to compile (a negative uint64 constant) otherwise.
// TestHandlesMaxBudgetExactly checks the budget limit is also exact.
const (
	_ = uint64(maxBudget*1e6) - uint64(events.MaxBudgetMicros)
	_ = uint64(maxCPM*1e6) - uint64(events.MaxCPMMicros)
	_ = uint64(maxImpressions) - uint64(events.MaxImpressions)
	_ = uint64(maxWeight) - uint64(events.MaxWeight)
)

// cand is an eligible quote in solver units: spend is scaled by the budget
// (x = dollars / budget, so the budget row is Σx ≤ 1) and value per scaled
// dollar by the best score (v = score / scoreScale ≤ 1). Both keep gonum's
// absolute tolerances meaningful whatever the campaign size.
type cand struct {
	q         int // index into the caller's quotes
	id        string
	seller    int
	class     int // index into problem.classes
	score     float64
	v         float64
	u         float64 // capacity, scaled
	m         float64 // minimum spend, scaled (0 = none)
	cpm       float64 // dollars, from micros
	cpmMicros int64
	avail     int64
	minImps   int64
	rank      int // 1-based rank by score desc, ID asc among eligible quotes
}

// sellerInfo is one seller's laminar block: a cap on its total and the spend at
// which it counts toward MinSellers.
type sellerInfo struct {
	name      string
	cap       float64 // scaled; 1 (the budget) when uncapped
	capMicros int64   // -1 when uncapped
	capDollar float64
	L         float64 // scaled spend needed to count toward MinSellers
	Lnano     u128    // the same in nano-dollars, rounded up
	groups    []int   // indices into problem.groups
	cands     []int   // candidate indices (ID order)
}

// group is the quotes of one seller serving the same set of format-mix formats.
// They have identical constraint columns, so any optimum fills them in order of
// value (the exchange argument); members are kept in that order.
type group struct {
	seller  int
	class   int
	members []int
}

type fmtRow struct {
	key   string
	share float64
	bit   uint32
}

// problem is one Optimise call: immutable data plus oracle scratch space.
type problem struct {
	budget       float64 // dollars, from micros
	budgetMicros int64
	scoreScale   float64
	cands        []cand
	sellers      []sellerInfo
	groups       []group
	classes      []uint32 // format-mix bitmask per class
	formats      []fmtRow
	minSellers   int
	weights      Weights
	nQuotes      int
	nElig        int
	blocker      string // why nothing at all can be booked, when known up front

	// exclusions and notes found while preparing, keyed by input index.
	excluded map[int]string
	notes    []string

	// now and deadline bound the search in time (Brief.TimeLimit);
	// timedOut records that it was hit.
	now       func() time.Time
	deadline  time.Time
	timeLimit time.Duration
	timedOut  bool

	sc oracleScratch
}

// outOfTime reports (and records) that the search's time limit has passed.
// A problem without a clock (prepare's callers other than optimise) never
// runs out.
func (p *problem) outOfTime() bool {
	if p.timedOut {
		return true
	}
	if p.now != nil && p.now().After(p.deadline) {
		p.timedOut = true
	}
	return p.timedOut
}

func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}

// validate rejects input that cannot describe a campaign. Ordinary
// infeasibility is not rejected here.
func validate(quotes []Quote, b Brief) error {
	if len(quotes) > maxQuotes {
		return invalid("%d quotes, more than %d", len(quotes), maxQuotes)
	}
	if !finite(b.Budget, b.PerSellerCap, b.PerSellerCapShare, b.MaxCPM, b.MinSellerSpend) {
		return invalid("brief has a NaN or infinite number")
	}
	w := b.Weights
	if !finite(w.Price, w.Video, w.Display, w.Negotiable, w.Volume, w.PriceCeiling) {
		return invalid("weights have a NaN or infinite number")
	}
	for _, x := range []float64{w.Price, w.Video, w.Display, w.Negotiable, w.Volume} {
		if math.Abs(x) > maxWeight {
			return invalid("weight %v beyond ±%v", x, float64(maxWeight))
		}
	}
	if math.Abs(w.PriceCeiling) > maxCPM {
		return invalid("price ceiling %v beyond ±%v", w.PriceCeiling, float64(maxCPM))
	}
	if b.TimeLimit < 0 {
		return invalid("negative time limit %v", b.TimeLimit)
	}
	switch {
	case b.Budget < 0:
		return invalid("negative budget %v", b.Budget)
	case b.Budget > maxBudget:
		return invalid("budget %v above %v", b.Budget, maxBudget)
	case b.PerSellerCap < 0:
		return invalid("negative per-seller cap %v", b.PerSellerCap)
	case b.PerSellerCapShare < 0 || b.PerSellerCapShare > 1:
		return invalid("per-seller cap share %v outside [0,1]", b.PerSellerCapShare)
	case b.MaxCPM < 0:
		return invalid("negative max CPM %v", b.MaxCPM)
	case b.MinSellers < 0:
		return invalid("negative min sellers %d", b.MinSellers)
	case b.MinSellerSpend < 0:
		return invalid("negative min seller spend %v", b.MinSellerSpend)
	}
	keys := map[string]string{}
	for k, s := range b.FormatMix {
		if !finite(s) || s < 0 || s > 1 {
			return invalid("format mix share %v for %q outside [0,1]", s, k)
		}
		nk := normFormat(k)
		if nk == "" {
			return invalid("empty format in format mix")
		}
		if prev, dup := keys[nk]; dup {
			return invalid("format mix lists %q and %q, the same format", prev, k)
		}
		keys[nk] = k
	}
	ids := make(map[string]struct{}, len(quotes))
	for i, q := range quotes {
		if q.ID == "" {
			return invalid("quote %d has no ID", i)
		}
		if _, dup := ids[q.ID]; dup {
			return invalid("duplicate quote ID %q", q.ID)
		}
		ids[q.ID] = struct{}{}
		if q.Seller == "" {
			return invalid("quote %q has no seller", q.ID)
		}
		if !finite(q.CPM) {
			return invalid("quote %q has a NaN or infinite CPM", q.ID)
		}
		if q.CPM > maxCPM {
			return invalid("quote %q CPM %v above %v", q.ID, q.CPM, maxCPM)
		}
		if q.AvailableImpressions < 0 || q.MinImpressions < 0 {
			return invalid("quote %q has negative impressions", q.ID)
		}
		if q.AvailableImpressions > maxImpressions || q.MinImpressions > maxImpressions {
			return invalid("quote %q impressions above %v", q.ID, float64(maxImpressions))
		}
	}
	return nil
}

// toMicros reads a dollar amount to the nearest micro-dollar, the unit the
// seller's money fields use (decision 5), with the contract's one conversion
// (events.MicrosFromDollars, half to even). Inputs are validated finite and
// bounded before, so the error case cannot happen; it reads as 0.
func toMicros(d float64) int64 {
	m, err := events.MicrosFromDollars(d)
	if err != nil {
		return 0
	}
	return int64(m)
}

// limitMicros reads a limit (budget, cap) or a quote's CPM to the nearest
// micro-dollar that is not above it, so an amount that fits the micros also
// fits the float the caller passed and no CPM is ever read above its quote.
// An amount that came from micros (events.Micros.Dollars) reads back exactly.
func limitMicros(d float64) int64 {
	m := toMicros(d)
	if m > 0 && float64(m)/1e6 > d {
		m--
	}
	return m
}

// capReached starts the reason of a quote left out for its seller's cap.
const capReached = "seller cap reached"

// capMicrosFor is the effective per-seller cap in micros (-1 = none): the
// smaller of the absolute cap and the share of the budget, rounded down so it
// never exceeds either.
func capMicrosFor(b Brief, budgetMicros int64) int64 {
	c := int64(-1)
	if b.PerSellerCap > 0 {
		c = limitMicros(b.PerSellerCap)
	}
	if b.PerSellerCapShare > 0 {
		s := int64(math.Floor(b.PerSellerCapShare * float64(budgetMicros)))
		if s > 0 && float64(s)/1e6 > b.PerSellerCapShare*b.Budget {
			s--
		}
		if c < 0 || s < c {
			c = s
		}
	}
	return c
}

func effectiveWeights(w Weights) Weights {
	if w == (Weights{}) {
		return DefaultWeights()
	}
	return w
}

// prepare filters the quotes, converts them to solver units and (when
// presolve is set) runs the exact presolve. Every quote it drops gets its
// reason in p.excluded.
func prepare(quotes []Quote, b Brief, presolve bool) *problem {
	p := &problem{
		nQuotes:      len(quotes),
		budgetMicros: limitMicros(b.Budget),
		minSellers:   b.MinSellers,
		weights:      effectiveWeights(b.Weights),
		excluded:     map[int]string{},
	}
	p.budget = float64(p.budgetMicros) / 1e6

	// Format-mix rows, sorted by key for determinism; zero shares impose nothing.
	for k, s := range b.FormatMix {
		if s > 0 {
			p.formats = append(p.formats, fmtRow{key: normFormat(k), share: s})
		}
	}
	sort.Slice(p.formats, func(i, j int) bool { return p.formats[i].key < p.formats[j].key })
	for i := range p.formats {
		p.formats[i].bit = 1 << uint(i)
	}

	order := make([]int, len(quotes))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, c int) bool { return quotes[order[a]].ID < quotes[order[c]].ID })

	if p.budgetMicros <= 0 {
		for _, i := range order {
			p.excluded[i] = "budget is $0.00: nothing can be booked"
		}
		return p
	}

	capMicros := capMicrosFor(b, p.budgetMicros)
	capDollars := math.Inf(1)
	if capMicros >= 0 {
		capDollars = float64(capMicros) / 1e6
	}
	maxMicros := int64(-1)
	if b.MaxCPM > 0 {
		maxMicros = toMicros(b.MaxCPM)
	}
	limit := math.Min(p.budget, capDollars) // the most any one seller can take

	var elig []cand
	dearest := map[string]float64{} // per seller, among priced quotes within MaxCPM
	for _, i := range order {
		q := quotes[i]
		cm := limitMicros(q.CPM) // never above the quote
		cpm := float64(cm) / 1e6
		if cm > 0 && (maxMicros < 0 || cm <= maxMicros) {
			dearest[q.Seller] = math.Max(dearest[q.Seller], cpm)
		}
		switch {
		case cm <= 0:
			p.excluded[i] = fmt.Sprintf("unpriced quote (CPM %.2f): never booked without a price", q.CPM)
			continue
		case maxMicros >= 0 && cm > maxMicros:
			p.excluded[i] = fmt.Sprintf("CPM %.2f above max CPM %.2f", cpm, float64(maxMicros)/1e6)
			continue
		case q.AvailableImpressions > 0 && q.MinImpressions > q.AvailableImpressions:
			p.excluded[i] = fmt.Sprintf("below seller minimum spend: the minimum order of %s impressions exceeds the %s available",
				groupInt(q.MinImpressions), groupInt(q.AvailableImpressions))
			continue
		}
		minSpend := float64(q.MinImpressions) * cpm / 1000
		if q.MinImpressions > 0 && minSpend > limit {
			what := "the budget " + money(p.budget)
			if capDollars < p.budget {
				what = "the seller cap " + money(capDollars)
			}
			p.excluded[i] = fmt.Sprintf("below seller minimum spend: the minimum order of %s impressions costs %s, more than %s",
				groupInt(q.MinImpressions), money(minSpend), what)
			continue
		}
		capac := limit
		if q.AvailableImpressions > 0 {
			capac = math.Min(capac, float64(q.AvailableImpressions)*cpm/1000)
		}
		if capac < cpm/1000 {
			p.excluded[i] = fmt.Sprintf("budget or seller cap (%s) below the cost of one impression at CPM %.2f", money(limit), cpm)
			continue
		}
		var mask uint32
		for _, f := range q.Formats {
			nf := normFormat(f)
			for _, r := range p.formats {
				if r.key == nf {
					mask |= r.bit
				}
			}
		}
		elig = append(elig, cand{
			q: i, id: q.ID, score: Score(q, p.weights),
			u: capac / p.budget, m: minSpend / p.budget,
			cpm: cpm, cpmMicros: cm, avail: q.AvailableImpressions, minImps: q.MinImpressions,
			class: int(mask), // bitmask for now, remapped to a class index below
		})
	}
	if len(quotes) == 0 {
		p.notes = append(p.notes, "no quotes to choose from")
	} else if len(elig) == 0 {
		p.notes = append(p.notes, "no quote is eligible (see Excluded)")
	}

	p.nElig = len(elig)
	// Ranks by score among eligible quotes, for the explanations.
	byScore := make([]int, len(elig))
	for i := range byScore {
		byScore[i] = i
	}
	sort.SliceStable(byScore, func(a, c int) bool { return elig[byScore[a]].score > elig[byScore[c]].score })
	for r, i := range byScore {
		elig[i].rank = r + 1
	}
	p.scoreScale = 1
	if len(elig) > 0 && elig[byScore[0]].score > 0 {
		p.scoreScale = elig[byScore[0]].score
	}

	// Sellers, by name for determinism.
	sellerOf := map[string]int{}
	var names []string
	for _, c := range elig {
		s := quotes[c.q].Seller
		if _, ok := sellerOf[s]; !ok {
			sellerOf[s] = 0
			names = append(names, s)
		}
	}
	sort.Strings(names)
	for i, n := range names {
		sellerOf[n] = i
		si := sellerInfo{name: n, cap: 1, capMicros: capMicros, capDollar: capDollars}
		if capMicros >= 0 {
			si.cap = math.Min(1, capDollars/p.budget)
		}
		p.sellers = append(p.sellers, si)
	}
	for i := range elig {
		elig[i].seller = sellerOf[quotes[elig[i].q].Seller]
		elig[i].v = elig[i].score / p.scoreScale
	}
	for si := range p.sellers {
		s := &p.sellers[si]
		// The count threshold: one impression at the seller's dearest priced
		// CPM within MaxCPM (so whichever quote carries it books at least one
		// whole impression), or the brief's MinSellerSpend when larger.
		lDollars := math.Max(b.MinSellerSpend, dearest[s.name]/1000)
		s.L = lDollars / p.budget
		s.Lnano = fromFloat(math.Ceil(lDollars * 1e9))
	}

	// Presolve: within one seller and one format class, a quote with no
	// minimum absorbs spend at least as well as any quote ranked below it. Once
	// such better quotes can take everything the seller may receive
	// (min(cap, budget)), the quotes below them can never be needed: moving
	// their spend up keeps every constraint and does not lower the value. This
	// is exact, also for the integer parts (seller totals are unchanged).
	type key struct{ s, mask int }
	buckets := map[key][]int{}
	var keys []key
	for i, c := range elig {
		k := key{c.seller, c.class}
		if _, ok := buckets[k]; !ok {
			keys = append(keys, k)
		}
		buckets[k] = append(buckets[k], i)
	}
	sort.Slice(keys, func(a, c int) bool {
		if keys[a].s != keys[c].s {
			return keys[a].s < keys[c].s
		}
		return keys[a].mask < keys[c].mask
	})
	keep := make([]bool, len(elig))
	for _, k := range keys {
		mem := buckets[k]
		sort.SliceStable(mem, func(a, c int) bool { return elig[mem[a]].v > elig[mem[c]].v })
		lim := p.sellers[k.s].cap
		cum := 0.0
		for _, i := range mem {
			if presolve && cum >= lim*(1-1e-12) {
				c := elig[i]
				if p.sellers[k.s].cap < 1 {
					p.excluded[c.q] = fmt.Sprintf(capReached+": higher-value quotes from %s with the same formats fill its %s cap",
						p.sellers[k.s].name, moneyFloor(p.sellers[k.s].capDollar))
				} else {
					p.excluded[c.q] = fmt.Sprintf("budget exhausted by higher-value quotes: better quotes from %s with the same formats can take the whole budget",
						p.sellers[k.s].name)
				}
				continue
			}
			keep[i] = true
			if elig[i].m == 0 {
				cum += elig[i].u
			}
		}
	}

	classOf := map[uint32]int{}
	for i, c := range elig {
		if !keep[i] {
			continue
		}
		mask := uint32(c.class)
		ci, ok := classOf[mask]
		if !ok {
			ci = len(p.classes)
			classOf[mask] = ci
			p.classes = append(p.classes, mask)
		}
		c.class = ci
		p.cands = append(p.cands, c)
	}
	// Groups (seller, class), members by value desc then ID.
	gIdx := map[[2]int]int{}
	for i, c := range p.cands {
		k := [2]int{c.seller, c.class}
		g, ok := gIdx[k]
		if !ok {
			g = len(p.groups)
			gIdx[k] = g
			p.groups = append(p.groups, group{seller: c.seller, class: c.class})
			p.sellers[c.seller].groups = append(p.sellers[c.seller].groups, g)
		}
		p.groups[g].members = append(p.groups[g].members, i)
		p.sellers[c.seller].cands = append(p.sellers[c.seller].cands, i)
	}
	for g := range p.groups {
		mem := p.groups[g].members
		sort.SliceStable(mem, func(a, c int) bool { return p.cands[mem[a]].v > p.cands[mem[c]].v })
	}
	for _, f := range p.formats {
		found := false
		for _, c := range p.cands {
			if p.classes[c.class]&f.bit != 0 {
				found = true
				break
			}
		}
		if !found && len(p.cands) > 0 {
			p.blocker = fmt.Sprintf("format mix %s >= %s cannot be met: no eligible quote serves %s, so nothing can be booked",
				f.key, pct(f.share), f.key)
			p.notes = append(p.notes, p.blocker)
		}
	}
	p.sc.init(p)
	return p
}
