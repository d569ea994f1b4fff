package negotiation

import (
	"fmt"
	"math"
	"strings"
)

// Defaults for Adaptive's tuning knobs (used when a knob is zero).
const (
	DefaultMirror   = 0.25  // return a quarter of the seller's relative concession: firm, but reciprocal
	DefaultBoulware = 2.0   // time-curve exponent: hold near target early, concede late
	DefaultMargin   = 0.005 // end-game offer this fraction above the estimated floor
	floorTolerance  = 0.005 // an ask within 0.5% of the estimated floor is "at the floor"
)

// Adaptive concedes in proportion to the seller's concessions and estimates
// the seller's floor from its counters.
//
//   - Reciprocity (tit-for-tat): if the seller's last counter closed a
//     fraction ρ of the gap between its previous ask and our offer, the next
//     offer closes Mirror×ρ of the current gap, and never more than the
//     seller conceded in absolute terms. A seller that stops conceding gets
//     nothing back.
//   - Time pressure: offers never fall below a Boulware curve from Target
//     (first round) toward Max (last round), so two firm reciprocators
//     cannot deadlock.
//   - Floor estimate: a final_offer is the floor; otherwise the seller's
//     relative concessions are fitted (geometric decay, or linear when three
//     or more concessions fit that better), played forward over the rounds
//     left, and bounded below by the known floor and our own offer.
//   - End game: the last counter the seller will evaluate is just above the
//     estimated floor (clamped to Max and below the ask).
//   - Acceptance: the ask is at or below a reservation price on the same
//     Boulware curve, or at the estimated floor and within Max, or the
//     seller stopped (or made its final offer) within Max, or no rounds are
//     left and the ask is within Max. Any ask at or below our next offer is
//     accepted rather than countered.
//   - Walk away: above Max and the seller stopped, made its final offer, or
//     the rounds ran out.
//
// Mirror 0.25 and Boulware 2 were chosen by playing this package's model of
// the seller's concession engine and a reciprocating seller model (see the
// tests): against the engine, whose counters converge toward the buyer's
// offer, firmness pays; the time curve keeps it from failing against a
// seller that only reciprocates.
type Adaptive struct {
	Target, Max float64
	MaxRounds   int     // seller responses allowed, the opening's included
	Mirror      float64 // fraction of the seller's relative concession returned; 0 = DefaultMirror
	Boulware    float64 // time-curve exponent (>1 holds firm longer); 0 = DefaultBoulware
	Margin      float64 // end-game offer above the estimated floor, as a fraction; 0 = DefaultMargin
}

// NewAdaptive validates and returns an Adaptive with default knobs.
func NewAdaptive(target, max float64, maxRounds int) (Adaptive, error) {
	a := Adaptive{Target: target, Max: max, MaxRounds: maxRounds}
	return a, a.Validate()
}

// Validate requires max >= target > 0, rounds >= 1 and sane knobs.
func (a Adaptive) Validate() error {
	if err := validLimits(a.Target, a.Max); err != nil {
		return err
	}
	if a.MaxRounds < 1 {
		return fmt.Errorf("%w: max rounds %d must be >= 1", ErrInvalidParams, a.MaxRounds)
	}
	if !finite(a.Mirror) || a.Mirror < 0 || a.Mirror > 2 {
		return fmt.Errorf("%w: mirror %v must be in [0, 2]", ErrInvalidParams, a.Mirror)
	}
	if !finite(a.Boulware) || a.Boulware < 0 {
		return fmt.Errorf("%w: boulware exponent %v must be >= 0", ErrInvalidParams, a.Boulware)
	}
	if !finite(a.Margin) || a.Margin < 0 || a.Margin > 0.5 {
		return fmt.Errorf("%w: margin %v must be in [0, 0.5]", ErrInvalidParams, a.Margin)
	}
	return nil
}

// Name is "adaptive".
func (a Adaptive) Name() string { return "adaptive" }

// Limits returns the configured target and max.
func (a Adaptive) Limits() (float64, float64) { return a.Target, a.Max }

// Next decides the next move; see Adaptive.
func (a Adaptive) Next(st State) (Move, error) {
	if err := a.Validate(); err != nil {
		return Move{}, err
	}
	v, err := readState(st, a.Target, a.Max, a.MaxRounds)
	if err != nil {
		return Move{}, err
	}
	c := core{a: a, v: v, st: st}
	return c.next(), nil
}

// core is one decision of the adaptive family. v.max is the highest price we
// may pay; strictBelow, when > 0, is a price we must beat (competitive).
type core struct {
	a           Adaptive
	v           view
	st          State
	strictBelow float64
	note        string // appended to every reason (competitive's leverage)
}

func (c core) acceptable(p float64) bool {
	return p > 0 && p <= c.v.max && (c.strictBelow <= 0 || p < c.strictBelow)
}

// offerCap is the highest offer we may make: within max, below the price to
// beat, and a tick below the seller's ask.
func (c core) offerCap() float64 {
	hi := c.v.max
	if c.strictBelow > 0 {
		hi = min(hi, c.strictBelow-tick)
	}
	if c.v.ask > 0 {
		hi = min(hi, c.v.ask-tick)
	}
	return cents(hi)
}

func (c core) move(kind MoveKind, price float64, format string, args ...any) Move {
	r := fmt.Sprintf(format, args...)
	if c.note != "" {
		r += "; " + c.note
	}
	return Move{Kind: kind, Price: price, Reason: r}
}

func (c core) knob(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}

// progress is how far along the negotiation is, in [0, 1], by rounds or
// time, whichever is further.
func (c core) progress() float64 {
	p := float64(c.v.k) / float64(c.v.limit)
	if c.st.Deadline > 0 {
		p = max(p, float64(c.st.Elapsed)/float64(c.st.Deadline))
	}
	return math.Min(1, math.Max(0, p))
}

// reservation is the price we would accept now: Target early, Max at the end.
func (c core) reservation() float64 {
	return c.v.target + (c.v.max-c.v.target)*math.Pow(c.progress(), c.knob(c.a.Boulware, DefaultBoulware))
}

// concession is one seller counter seen as a concession: how much the ask
// came down (d) out of the gap between its previous ask and the offer it
// answered (gap), so rel = d/gap is independent of how far apart we were.
type concession struct{ d, gap, rel float64 }

// concessions lists the seller's concessions, oldest first. The list price
// counts as the ask before the first counter only if that counter came down
// from it: a quote can include discounts the seller's negotiation base
// ignores, and that is no sign the seller stopped.
func (c core) concessions() []concession {
	var out []concession
	prev := 0.0
	if c.st.ListPrice > 0 && len(c.st.Rounds) > 0 && c.st.Rounds[0].SellerPrice < c.st.ListPrice {
		prev = c.st.ListPrice
	}
	for _, r := range c.st.Rounds {
		if prev > 0 {
			k := concession{d: prev - r.SellerPrice, gap: prev - r.BuyerPrice}
			if k.gap > 0 {
				k.rel = math.Max(0, k.d/k.gap)
			}
			out = append(out, k)
		}
		prev = r.SellerPrice
	}
	return out
}

// estimateFloor estimates the lowest price the seller will go to, and says
// where the estimate comes from. A final offer is the floor. Otherwise the
// seller's relative concessions are fitted with a geometric decay (or a
// linear one, when three or more concessions fit that better) and played
// forward over the rounds left against our current offer; the result is
// bounded below by the known floor and by our own offer.
func (c core) estimateFloor() (floor float64, how string) {
	for i := len(c.st.Rounds) - 1; i >= 0; i-- {
		if c.st.Rounds[i].SellerAction == ActionFinalOffer {
			return c.st.Rounds[i].SellerPrice, "the seller's final offer"
		}
	}
	// The known floor bounds the estimate only while the seller has not
	// already asked less: an ask below it proves it is not the seller's floor.
	lower, lowerHow := c.v.lastOffer, "our offer"
	if c.v.floor > 0 && (c.v.ask <= 0 || c.v.ask >= c.v.floor) && c.v.floor >= lower {
		lower, lowerHow = c.v.floor, "the "+c.v.floorSrc+" "+fmtPrice(c.v.floor)
	}
	ks := c.concessions()
	if len(ks) == 0 {
		return lower, lowerHow
	}
	left := c.v.limit - c.v.k
	last := ks[len(ks)-1]
	if left <= 0 || last.d <= 0 {
		// No rounds left, or the seller stopped: its current ask is its
		// floor as far as we can tell.
		return max(lower, c.v.ask), "the seller's current ask"
	}
	// rel_j = rel_k·r^j (geometric) or rel_k + slope·j (linear).
	r, slope := 1.0, 0.0
	if n := len(ks); n >= 2 && ks[n-2].rel > 0 {
		r = math.Min(1, last.rel/ks[n-2].rel)
		slope = math.Min(0, last.rel-ks[n-2].rel)
	}
	linear := false
	if n := len(ks); n >= 3 {
		var eg, el float64
		for i := 2; i < n; i++ {
			a, b := ks[i-2].rel, ks[i-1].rel
			g := b * math.Min(1, safeDiv(b, a))
			l := math.Max(0, b+math.Min(0, b-a))
			eg += (ks[i].rel - g) * (ks[i].rel - g)
			el += (ks[i].rel - l) * (ks[i].rel - l)
		}
		linear = el < eg
	}
	ask, b := c.v.ask, c.v.lastOffer
	if b <= 0 {
		b = lower
	}
	rel := last.rel
	for j := 1; j <= left; j++ {
		if linear {
			rel = math.Max(0, last.rel+slope*float64(j))
		} else {
			rel *= r
		}
		ask -= math.Min(1, rel) * math.Max(0, ask-b)
	}
	how = "the seller's concessions (geometric fit)"
	if linear {
		how = "the seller's concessions (linear fit)"
	}
	if ask < lower {
		return lower, how + ", bounded by " + lowerHow
	}
	return ask, how
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// stopped reports whether the seller's last counter did not come down.
func (c core) stopped() bool {
	return c.v.k >= 2 && c.v.ask >= c.v.prevAsk
}

func (c core) next() Move {
	v := c.v
	if v.k == 0 {
		return c.opening(min(v.target, v.max))
	}
	ask := v.ask
	floor, how := c.estimateFloor()
	res := c.reservation()
	ok := c.acceptable(ask)
	switch {
	case v.lastAction == ActionFinalOffer && ok:
		return c.move(Accept, ask, "accepting the seller's final offer %s (max %s)", fmtPrice(ask), fmtPrice(v.max))
	case v.lastAction == ActionFinalOffer:
		return c.move(WalkAway, 0, "seller's final offer %s is not acceptable (max %s)", fmtPrice(ask), fmtPrice(v.max))
	case ok && ask <= res:
		return c.move(Accept, ask, "seller's %s is within our reservation %s", fmtPrice(ask), fmtPrice(res))
	case ok && ask < floor*(1-floorTolerance):
		return c.move(Accept, ask, "seller's %s is already below its estimated floor %s (from %s); accepting within max %s",
			fmtPrice(ask), fmtPrice(floor), how, fmtPrice(v.max))
	case ok && ask <= floor*(1+floorTolerance):
		return c.move(Accept, ask, "seller's %s is at its estimated floor %s (from %s)", fmtPrice(ask), fmtPrice(floor), how)
	case ok && c.stopped():
		return c.move(Accept, ask, "seller stopped conceding at %s, within max %s", fmtPrice(ask), fmtPrice(v.max))
	case ok && v.k >= v.limit:
		return c.move(Accept, ask, "last round: accepting %s within max %s", fmtPrice(ask), fmtPrice(v.max))
	case v.k >= v.limit:
		return c.move(WalkAway, 0, "no agreement within %d rounds; seller at %s, max %s", v.limit, fmtPrice(ask), fmtPrice(v.max))
	case c.stopped():
		return c.move(WalkAway, 0, "seller stopped conceding at %s (previous %s), not acceptable (max %s)", fmtPrice(ask), fmtPrice(v.prevAsk), fmtPrice(v.max))
	}
	// Reciprocate the seller's last concession, relative to the gap it
	// faced, and never by more than the seller gave in absolute terms.
	b := v.lastOffer
	if b <= 0 {
		b = min(v.target, v.max)
	}
	give, rho := 0.0, 0.0
	if ks := c.concessions(); len(ks) > 0 && ks[len(ks)-1].d > 0 {
		last := ks[len(ks)-1]
		rho = last.rel
		give = math.Min(last.d, c.knob(c.a.Mirror, DefaultMirror)*math.Min(1, rho)*(ask-b))
	}
	p := b + give
	why := fmt.Sprintf("reciprocating the seller's %.0f%% gap concession", rho*100)
	// Time pressure: never below the reservation curve (target toward the
	// ceiling), so two firm reciprocators cannot deadlock.
	if res > p {
		p = res
		why = fmt.Sprintf("time pressure (round %d of %d)", v.k+1, v.limit)
	}
	if v.k == v.limit-1 {
		// The seller evaluates one more counter: make it just above the floor.
		end := floor * (1 + c.knob(c.a.Margin, DefaultMargin))
		if end > p {
			p = end
			why = fmt.Sprintf("last counter just above the estimated floor %s (from %s)", fmtPrice(floor), how)
		}
	}
	p = max(cents(p), b) // never go back on an offer
	hi := c.offerCap()
	if p > hi {
		p = hi
	}
	if p <= 0 || p < b || p >= ask {
		// No room to counter below the ask (or below our previous offer).
		if ok {
			return c.move(Accept, ask, "no room to counter below %s; accepting within max %s", fmtPrice(ask), fmtPrice(v.max))
		}
		return c.move(WalkAway, 0, "no room to counter: seller at %s, our limit %s", fmtPrice(ask), fmtPrice(hi))
	}
	return c.move(Offer, p, "offering %s: %s (seller at %s, estimated floor %s, max %s)", fmtPrice(p), why, fmtPrice(ask), fmtPrice(floor), fmtPrice(v.max))
}

// opening opens at open (clamped below the ask), or accepts a list price
// already at or below it.
func (c core) opening(open float64) Move {
	v := c.v
	if v.ask > 0 && open >= v.ask && c.acceptable(v.ask) {
		return c.move(Accept, v.ask, "list price %s is at or below our opening %s", fmtPrice(v.ask), fmtPrice(open))
	}
	p := min(cents(open), c.offerCap())
	if p <= 0 {
		return c.move(WalkAway, 0, "no room to open below %s", fmtPrice(v.ask))
	}
	parts := []string{fmt.Sprintf("opening at %s", fmtPrice(p))}
	if v.floor > 0 {
		parts = append(parts, fmt.Sprintf("seller floor %s (%s)", fmtPrice(v.floor), v.floorSrc))
	}
	parts = append(parts, fmt.Sprintf("target %s, max %s", fmtPrice(v.target), fmtPrice(v.max)))
	return c.move(Offer, p, "%s", strings.Join(parts, "; "))
}
