package negotiation

import "fmt"

// Threshold is the guide's SimpleThresholdStrategy with its defects fixed:
// it opens at the target clamped to max, concedes Step per round up to Max,
// accepts any ask at or below Max, and walks away when the seller stops
// moving or raises, or after MaxRounds seller responses. Unlike the
// reference it validates its parameters, never offers at or above the
// seller's ask (it accepts instead), and treats a missing seller price as an
// error rather than a price of 0.
type Threshold struct {
	Target, Max, Step float64
	MaxRounds         int // seller responses allowed, the opening's included
}

// NewThreshold validates the parameters: step >= 0, max >= target > 0,
// rounds >= 1.
func NewThreshold(target, max, step float64, maxRounds int) (Threshold, error) {
	t := Threshold{Target: target, Max: max, Step: step, MaxRounds: maxRounds}
	return t, t.Validate()
}

// Validate reports parameters the reference silently accepted.
func (t Threshold) Validate() error {
	if err := validLimits(t.Target, t.Max); err != nil {
		return err
	}
	if !finite(t.Step) || t.Step < 0 {
		return fmt.Errorf("%w: step %v must be >= 0", ErrInvalidParams, t.Step)
	}
	if t.MaxRounds < 1 {
		return fmt.Errorf("%w: max rounds %d must be >= 1", ErrInvalidParams, t.MaxRounds)
	}
	return nil
}

// Name is "threshold".
func (t Threshold) Name() string { return "threshold" }

// Limits returns the configured target and max.
func (t Threshold) Limits() (float64, float64) { return t.Target, t.Max }

// RoundContext is the reference's NegotiationContext, for the reference-style
// methods ShouldAccept, NextOffer and ShouldWalkAway.
type RoundContext struct {
	RoundsCompleted     int      // seller responses so far
	SellerLastPrice     float64  // the seller's current ask
	OurLastOffer        *float64 // nil before the opening
	SellerPreviousPrice *float64 // the ask before the current one, if any
}

// ShouldAccept is the reference rule, seller price <= max, except that a
// missing (zero, negative or NaN) price is never acceptable.
func (t Threshold) ShouldAccept(sellerPrice float64, _ RoundContext) bool {
	return finite(sellerPrice) && sellerPrice > 0 && sellerPrice <= t.Max
}

// NextOffer opens at min(target, max) (the reference opened at target even
// above max) and then concedes min(last + step, max).
func (t Threshold) NextOffer(_ float64, c RoundContext) float64 {
	if c.OurLastOffer == nil {
		return min(t.Target, t.Max)
	}
	return min(*c.OurLastOffer+t.Step, t.Max)
}

// ShouldWalkAway is the reference rule: rounds exhausted, or the seller did
// not move or raised its price since its previous response.
func (t Threshold) ShouldWalkAway(sellerPrice float64, c RoundContext) bool {
	if c.RoundsCompleted >= t.MaxRounds {
		return true
	}
	return c.SellerPreviousPrice != nil && c.RoundsCompleted > 0 && sellerPrice >= *c.SellerPreviousPrice
}

// Next applies the reference loop's order (accept, then walk away, then
// counter) to the State, with the fixes described on Threshold.
func (t Threshold) Next(st State) (Move, error) {
	if err := t.Validate(); err != nil {
		return Move{}, err
	}
	v, err := readState(st, t.Target, t.Max, t.MaxRounds)
	if err != nil {
		return Move{}, err
	}
	eff := t
	eff.Target, eff.Max = v.target, v.max
	if v.k == 0 {
		open := eff.NextOffer(v.ask, RoundContext{})
		if v.ask > 0 && open >= v.ask {
			return Move{Kind: Accept, Price: v.ask, Reason: fmt.Sprintf("list price %s is at or below our opening %s", fmtPrice(v.ask), fmtPrice(open))}, nil
		}
		return Move{Kind: Offer, Price: open, Reason: fmt.Sprintf("opening at target %s (max %s)", fmtPrice(open), fmtPrice(v.max))}, nil
	}
	c := RoundContext{RoundsCompleted: v.k, SellerLastPrice: v.ask}
	if v.lastOffer > 0 {
		last := v.lastOffer
		c.OurLastOffer = &last
	}
	if v.k >= 2 {
		prev := v.prevAsk
		c.SellerPreviousPrice = &prev
	}
	if eff.ShouldAccept(v.ask, c) {
		return Move{Kind: Accept, Price: v.ask, Reason: fmt.Sprintf("seller's %s is within our max %s", fmtPrice(v.ask), fmtPrice(v.max))}, nil
	}
	switch {
	case v.lastAction == ActionFinalOffer:
		return Move{Kind: WalkAway, Reason: fmt.Sprintf("seller's final offer %s is above our max %s", fmtPrice(v.ask), fmtPrice(v.max))}, nil
	case v.k >= v.limit:
		return Move{Kind: WalkAway, Reason: fmt.Sprintf("no agreement within %d rounds; seller at %s, our max %s", v.limit, fmtPrice(v.ask), fmtPrice(v.max))}, nil
	case eff.ShouldWalkAway(v.ask, c):
		return Move{Kind: WalkAway, Reason: fmt.Sprintf("seller stopped conceding at %s (previous %s), above our max %s", fmtPrice(v.ask), fmtPrice(v.prevAsk), fmtPrice(v.max))}, nil
	}
	p := eff.NextOffer(v.ask, c)
	// p <= max < ask here, so the offer is always below the ask.
	return Move{Kind: Offer, Price: p, Reason: fmt.Sprintf("conceding %s to %s (seller at %s, max %s)", fmtPrice(t.Step), fmtPrice(p), fmtPrice(v.ask), fmtPrice(v.max))}, nil
}
