package negotiation

import "fmt"

// DefaultLeverage is how far below the best competing price Competitive
// opens when its target is not already lower (10%).
const DefaultLeverage = 0.10

// Competitive negotiates with the best competing quote for comparable
// inventory (State.BestCompeting, from other sellers in the same campaign) as
// its walk-away point and its leverage:
//
//   - the walk-away point is min(Max, BestCompeting): a price that does not
//     beat the competing one is never accepted;
//   - it opens at its target, but at least Leverage below the competing
//     price, and cites that price in every reason;
//   - it walks away at once when the seller's final price cannot beat the
//     competing one: a known floor at or above it (before any message), a
//     final offer at or above it, or a seller that stopped there;
//   - otherwise it negotiates exactly like Adaptive with that ceiling.
//
// Without a competing price it is Adaptive.
type Competitive struct {
	Target, Max float64
	MaxRounds   int
	Leverage    float64 // open at least this fraction below BestCompeting; 0 = DefaultLeverage
	Mirror      float64 // as Adaptive.Mirror
	Boulware    float64 // as Adaptive.Boulware
	Margin      float64 // as Adaptive.Margin
}

// NewCompetitive validates and returns a Competitive with default knobs.
func NewCompetitive(target, max float64, maxRounds int) (Competitive, error) {
	c := Competitive{Target: target, Max: max, MaxRounds: maxRounds}
	return c, c.Validate()
}

func (c Competitive) adaptive() Adaptive {
	return Adaptive{Target: c.Target, Max: c.Max, MaxRounds: c.MaxRounds, Mirror: c.Mirror, Boulware: c.Boulware, Margin: c.Margin}
}

// Validate checks the Adaptive parameters and the leverage (in [0, 0.9]).
func (c Competitive) Validate() error {
	if err := c.adaptive().Validate(); err != nil {
		return err
	}
	if !finite(c.Leverage) || c.Leverage < 0 || c.Leverage > 0.9 {
		return fmt.Errorf("%w: leverage %v must be in [0, 0.9]", ErrInvalidParams, c.Leverage)
	}
	return nil
}

// Name is "competitive".
func (c Competitive) Name() string { return "competitive" }

// Limits returns the configured target and max.
func (c Competitive) Limits() (float64, float64) { return c.Target, c.Max }

// Next decides the next move; see Competitive.
func (c Competitive) Next(st State) (Move, error) {
	if err := c.Validate(); err != nil {
		return Move{}, err
	}
	a := c.adaptive()
	v, err := readState(st, a.Target, a.Max, a.MaxRounds)
	if err != nil {
		return Move{}, err
	}
	k := core{a: a, v: v, st: st}
	if st.BestCompeting == nil || !finite(*st.BestCompeting) || *st.BestCompeting <= 0 {
		k.note = "no competing quote"
		return k.next(), nil
	}
	best := *st.BestCompeting
	k.strictBelow = best
	k.v.max = min(v.max, best)
	k.v.target = min(v.target, k.v.max)
	k.note = fmt.Sprintf("best competing offer %s CPM", fmtPrice(best))
	if v.floor >= best {
		return k.move(WalkAway, 0, "seller's floor %s (%s) cannot beat the competing price", fmtPrice(v.floor), v.floorSrc), nil
	}
	if v.k == 0 {
		lev := c.Leverage
		if lev == 0 {
			lev = DefaultLeverage
		}
		return k.opening(min(k.v.target, best*(1-lev))), nil
	}
	stopped := v.lastAction == ActionFinalOffer || k.stopped()
	if stopped && v.ask >= best {
		return k.move(WalkAway, 0, "seller's final price %s cannot beat the competing price", fmtPrice(v.ask)), nil
	}
	return k.next(), nil
}
