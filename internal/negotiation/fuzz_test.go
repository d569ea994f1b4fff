package negotiation

import (
	"context"
	"math"
	"testing"
)

// FuzzStrategyInvariants feeds every strategy arbitrary (valid) states and
// checks the loop's invariants on each move: offers are positive, within the
// effective max, below the seller's ask and never below our previous offer
// (adaptive family); accepts are of the current ask within max; nothing but
// accept or walk-away follows a final offer.
func FuzzStrategyInvariants(f *testing.F) {
	f.Add(40.0, 25.0, 20.0, 30.0, 2.0, uint8(5), uint8(0), 0.0, 35.0, 33.0, 31.0, uint8(0), 20.0, 21.0)
	f.Add(31.5, 28.0, 26.0, 30.0, 1.0, uint8(5), uint8(5), 29.0, 29.93, 28.36, 28.0, uint8(4), 26.0, 26.5)
	f.Add(0.0, 0.0, 10.0, 10.0, 0.0, uint8(1), uint8(1), 9.0, 12.0, 12.0, 12.0, uint8(7), 10.0, 10.0)
	f.Add(12.0, 0.0, 5.0, 50.0, 10.0, uint8(9), uint8(2), 0.0, 11.0, 11.5, 3.0, uint8(2), 4.0, 4.5)
	f.Fuzz(func(t *testing.T, list, floor, target, max, step float64, rounds, sellerRounds uint8, best, s1, s2, s3 float64, shape uint8, b1, b2 float64) {
		for _, x := range []float64{list, floor, target, max, step, best, s1, s2, s3, b1, b2} {
			if !finite(x) || x < 0 || x > 1e6 {
				return
			}
		}
		p := Params{Target: target, Max: max, Step: step, MaxRounds: int(rounds%12) + 1}
		st := State{ListPrice: list, SellerMaxRounds: int(sellerRounds % 8)}
		if floor > 0 {
			st.Floor = &floor
		}
		if best > 0 {
			st.BestCompeting = &best
		}
		// Build up to three seller rounds answering increasing offers.
		n := int(shape % 4)
		asks, offers := []float64{s1, s2, s3}, []float64{b1, math.Max(b1, b2), math.Max(b1, b2) + 0.01}
		for i := 0; i < n; i++ {
			if asks[i] <= 0 || offers[i] <= 0 || offers[i] >= asks[i] {
				return
			}
			act := ActionCounter
			if i == n-1 && shape&4 != 0 {
				act = ActionFinalOffer
			}
			st.Rounds = append(st.Rounds, Round{N: i + 1, BuyerPrice: offers[i], SellerPrice: asks[i], SellerAction: act})
		}
		for _, name := range Names() {
			s, err := New(name, p)
			if err != nil {
				return // invalid parameters are rejected, that is all
			}
			m, err := s.Next(st)
			if err != nil {
				t.Fatalf("%s: unexpected error %v for %+v", name, err, st)
			}
			_, effMax := effectiveLimits(target, max, st)
			ask := list
			last := ""
			lastOffer := 0.0
			if k := len(st.Rounds); k > 0 {
				ask, last, lastOffer = st.Rounds[k-1].SellerPrice, st.Rounds[k-1].SellerAction, st.Rounds[k-1].BuyerPrice
			}
			switch m.Kind {
			case Offer:
				// Never above max, not even by float noise: the offer is sent
				// as micros and checked against the max exactly.
				if m.Price <= 0 || m.Price > effMax || (ask > 0 && m.Price >= ask) {
					t.Fatalf("%s: offer %v (max %v, ask %v)", name, m.Price, effMax, ask)
				}
				if last == ActionFinalOffer {
					t.Fatalf("%s: counter after a final offer", name)
				}
				if name != "threshold" && m.Price < lastOffer {
					t.Fatalf("%s: offer %v below our previous %v", name, m.Price, lastOffer)
				}
				if name == "competitive" && st.BestCompeting != nil && m.Price >= best {
					t.Fatalf("competitive offered %v, competing %v", m.Price, best)
				}
			case Accept:
				if m.Price != ask || ask > effMax+1e-9 || ask <= 0 {
					t.Fatalf("%s: accept %v (ask %v, max %v)", name, m.Price, ask, effMax)
				}
				if name == "competitive" && st.BestCompeting != nil && ask >= best {
					t.Fatalf("competitive accepted %v, competing %v", ask, best)
				}
			case WalkAway:
			default:
				t.Fatalf("%s: move %v", name, m.Kind)
			}
			if m.Reason == "" {
				t.Fatalf("%s: empty reason", name)
			}
		}
		// A whole negotiation against the seller model never errors.
		if list > 0 && floor > 0 && floor <= list {
			for _, name := range Names() {
				s, err := New(name, p)
				if err != nil {
					return
				}
				res, err := Run(context.Background(), s, State{ListPrice: list, Floor: st.Floor, BestCompeting: st.BestCompeting}, newSellerSim(list, floor, "public"))
				if err != nil || res.Outcome == OutcomeError {
					t.Fatalf("%s: %+v %v", name, res, err)
				}
				if res.Outcome == OutcomeAccepted && res.FinalPrice > max+1e-9 {
					t.Fatalf("%s: agreed %v above max %v", name, res.FinalPrice, max)
				}
			}
		}
	})
}
