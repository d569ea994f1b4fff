package negotiation

import (
	"context"
	"errors"
	"math"
	"strconv"
	"testing"
)

// sellerSim is this package's own small model of the seller's concession
// engine (seller-protocol.md section 4), used as a counterparty in tests. It
// is deliberately independent of any sandbox package.
type sellerSim struct {
	B, F                   float64 // tier-adjusted base and product floor
	maxRounds              int
	perRound, total, share float64
	prices, cums           []float64
	status                 string
}

type tierParams struct {
	discount               float64
	maxRounds              int
	perRound, total, share float64
}

var simTiers = map[string]tierParams{
	"public":     {0, 3, 0.03, 0.08, 0.30},
	"seat":       {0.05, 4, 0.04, 0.12, 0.40},
	"agency":     {0.10, 5, 0.05, 0.15, 0.50},
	"advertiser": {0.15, 6, 0.06, 0.20, 0.65},
}

// pyRound2 is Python's round(x, 2) (correctly rounded, ties-to-even on the
// binary value), as section 0.10 of the seller protocol prescribes.
func pyRound2(x float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', 2, 64), 64)
	return v
}

func newSellerSim(base, floor float64, tier string) *sellerSim {
	p := simTiers[tier]
	b := base
	if p.discount > 0 {
		b = pyRound2(base * (1 - p.discount))
	}
	return &sellerSim{B: b, F: floor, maxRounds: p.maxRounds, perRound: p.perRound, total: p.total, share: p.share, status: "active"}
}

var errNotActive = errors.New("negotiation is not active")

func (e *sellerSim) Respond(_ context.Context, m Move, round int) (Round, error) {
	last := e.B
	if n := len(e.prices); n > 0 {
		last = e.prices[n-1]
	}
	switch m.Kind {
	case Accept:
		if e.status != "active" {
			return Round{}, errNotActive
		}
		e.status = "accepted"
		return Round{N: round, BuyerPrice: last, SellerPrice: last, SellerAction: ActionAccept}, nil
	case WalkAway:
		e.status = "rejected"
		return Round{N: round, SellerPrice: last, SellerAction: ActionReject}, nil
	}
	if e.status != "active" {
		return Round{}, errNotActive
	}
	act, price := e.evaluate(m.Price)
	switch act {
	case ActionAccept:
		e.status = "accepted"
	case ActionReject:
		e.status = "rejected"
	}
	return Round{N: round, BuyerPrice: m.Price, SellerPrice: price, SellerAction: act}, nil
}

// evaluate is section 4's evaluate(b), step by step.
func (e *sellerSim) evaluate(b float64) (string, float64) {
	B, F := e.B, e.F
	cum, last := 0.0, B
	if n := len(e.prices); n > 0 {
		cum, last = e.cums[n-1], e.prices[n-1]
	}
	n := len(e.prices) + 1
	record := func(act string, p, c float64) (string, float64) {
		e.prices = append(e.prices, p)
		e.cums = append(e.cums, c)
		return act, p
	}
	if b >= B || b >= last {
		return record(ActionAccept, b, cum)
	}
	if b <= 0 || n > e.maxRounds {
		return record(ActionReject, B, cum)
	}
	if b < F {
		fc := pyRound2(F)
		inc := math.Max(0, math.Max(0, (B-fc)/B)-cum)
		act := ActionCounter
		if n == e.maxRounds {
			act = ActionFinalOffer
		}
		return record(act, fc, cum+inc)
	}
	c := b
	if gap := last - b; gap > 0 {
		c = last - gap*e.share
		if last-c > B*e.perRound {
			c = last - B*e.perRound
		}
		if B-c > B*e.total {
			c = B * (1 - e.total)
		}
		c = math.Max(c, F)
		c = pyRound2(c)
	}
	this := (B - c) / B
	inc := math.Max(0, this-cum)
	remaining := e.total - cum
	if inc >= 0.8*remaining || n == e.maxRounds {
		fp := math.Max(F, B*(1-e.total))
		if b >= fp {
			return record(ActionAccept, b, cum+inc)
		}
		return record(ActionFinalOffer, pyRound2(fp), (B-fp)/B)
	}
	return record(ActionCounter, c, cum+inc)
}

// TestSellerSimMatchesWorkedTraces checks the model against the observed
// traces in section 4, so comparisons against it mean something.
func TestSellerSimMatchesWorkedTraces(t *testing.T) {
	t.Parallel()
	type step struct {
		offer float64
		act   string
		price float64
	}
	cases := []struct {
		name        string
		base, floor float64
		tier        string
		steps       []step
	}{
		{"public video", 25, 18, "public", []step{{20, ActionCounter, 24.25}, {21, ActionCounter, 23.50}, {22, ActionFinalOffer, 23.00}, {23, ActionAccept, 23}}},
		{"agency CTV", 35, 28, "agency", []step{{29, ActionCounter, 30.25}, {29, ActionCounter, 29.62}, {29.5, ActionCounter, 29.56}, {29.5, ActionCounter, 29.53}, {30, ActionAccept, 30}}},
		{"advertiser CTV", 35, 28, "advertiser", []step{{29, ActionCounter, 29.26}, {29, ActionCounter, 29.09}, {29.5, ActionAccept, 29.5}}},
		{"seat CTV", 35, 28, "seat", []step{{29, ActionCounter, 31.92}, {29, ActionCounter, 30.75}, {29.5, ActionCounter, 30.25}, {29.5, ActionAccept, 29.5}}},
		{"agency video below floor", 25, 18, "agency", []step{{15, ActionCounter, 18}, {19, ActionAccept, 19}}},
		{"public zero", 25, 18, "public", []step{{0, ActionReject, 25}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newSellerSim(c.base, c.floor, c.tier)
			for i, s := range c.steps {
				r, err := e.Respond(context.Background(), Move{Kind: Offer, Price: s.offer}, i+1)
				if err != nil {
					t.Fatal(err)
				}
				if r.SellerAction != s.act || math.Abs(r.SellerPrice-s.price) > 1e-9 {
					t.Fatalf("round %d: offer %v → %s %v, want %s %v", i+1, s.offer, r.SellerAction, r.SellerPrice, s.act, s.price)
				}
			}
		})
	}
}

// reciprocalSeller is a second, different seller model: it concedes the same
// fraction of the gap that the buyer's last concession closed (at least 5%),
// never below its floor, and makes a final offer in its last round. Against
// it, a buyer that never concedes deadlocks.
type reciprocalSeller struct {
	list, floor  float64
	maxRounds    int
	asks, offers []float64
}

func (s *reciprocalSeller) Respond(_ context.Context, m Move, round int) (Round, error) {
	last := s.list
	if n := len(s.asks); n > 0 {
		last = s.asks[n-1]
	}
	switch m.Kind {
	case Accept:
		return Round{N: round, SellerPrice: last, SellerAction: ActionAccept}, nil
	case WalkAway:
		return Round{N: round, SellerPrice: last, SellerAction: ActionReject}, nil
	}
	b, n := m.Price, len(s.asks)+1
	record := func(act string, p float64) (Round, error) {
		s.asks = append(s.asks, p)
		s.offers = append(s.offers, b)
		return Round{N: round, BuyerPrice: b, SellerPrice: p, SellerAction: act}, nil
	}
	if b >= last {
		return record(ActionAccept, b)
	}
	if n > s.maxRounds {
		return record(ActionReject, last)
	}
	rel := 0.05
	if k := len(s.offers); k > 0 && last > s.offers[k-1] {
		rel = math.Max(rel, (b-s.offers[k-1])/(last-s.offers[k-1]))
	}
	c := pyRound2(math.Max(s.floor, last-rel*(last-b)))
	if n == s.maxRounds {
		return record(ActionFinalOffer, c)
	}
	return record(ActionCounter, c)
}
