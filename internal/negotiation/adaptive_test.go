package negotiation

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func rd(b, s float64) Round { return Round{BuyerPrice: b, SellerPrice: s, SellerAction: ActionCounter} }
func rf(b, s float64) Round {
	return Round{BuyerPrice: b, SellerPrice: s, SellerAction: ActionFinalOffer}
}

type moveCase struct {
	name   string
	st     State
	kind   MoveKind
	price  float64 // checked when >= 0
	reason string  // substring
	err    error
}

func checkMoves(t *testing.T, s Strategy, cases []moveCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m, err := s.Next(c.st)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Kind != c.kind || (c.price >= 0 && math.Abs(m.Price-c.price) > 1e-9) || !strings.Contains(m.Reason, c.reason) {
				t.Fatalf("move = %v %v %q, want %v %v containing %q", m.Kind, m.Price, m.Reason, c.kind, c.price, c.reason)
			}
		})
	}
}

func TestAdaptiveMoves(t *testing.T) {
	t.Parallel()
	a := Adaptive{Target: 20, Max: 30, MaxRounds: 5}
	cases := []moveCase{
		{name: "opening at target", st: State{ListPrice: 40}, kind: Offer, price: 20, reason: "opening at 20.00"},
		{name: "opening cites a known floor", st: State{ListPrice: 40, Floor: fp(25)}, kind: Offer, price: 20, reason: "seller floor 25.00"},
		{name: "list price already below target", st: State{ListPrice: 19}, kind: Accept, price: 19},
		{name: "opening clamped by State.Max", st: State{ListPrice: 40, Target: 25, Max: 18}, kind: Offer, price: 18},
		// The seller closed 5 of a 20 gap (25%); a quarter of that is
		// returned on the current gap of 15: 20 + 0.25·0.25·15 = 20.9375.
		{name: "reciprocates the relative concession", st: State{ListPrice: 40, Rounds: []Round{rd(20, 35)}}, kind: Offer, price: 20.93, reason: "reciprocating the seller's 25% gap concession"},
		{name: "keeps negotiating an ask within max while the seller concedes", st: State{ListPrice: 40, Rounds: []Round{rd(20, 29)}}, kind: Offer, price: -1},
		{name: "seller stopped within max: accept", st: State{ListPrice: 40, Rounds: []Round{rd(20, 29), rd(21, 29)}}, kind: Accept, price: 29, reason: "29.00"},
		{name: "seller stopped above max: walk", st: State{ListPrice: 40, Rounds: []Round{rd(20, 35), rd(21, 35)}}, kind: WalkAway, price: 0, reason: "stopped conceding"},
		{name: "seller raised above max: walk", st: State{ListPrice: 40, Rounds: []Round{rd(20, 35), rd(21, 36)}}, kind: WalkAway, price: 0},
		{name: "final offer within max", st: State{ListPrice: 40, Rounds: []Round{rd(20, 35), rf(21, 29.5)}}, kind: Accept, price: 29.5, reason: "final offer"},
		{name: "final offer above max", st: State{ListPrice: 40, Rounds: []Round{rd(20, 35), rf(21, 31)}}, kind: WalkAway, price: 0, reason: "final offer"},
		{name: "ask at the known floor", st: State{ListPrice: 40, Floor: fp(28), Rounds: []Round{rd(20, 28)}}, kind: Accept, price: 28, reason: "estimated floor 28.00"},
		{name: "rounds exhausted within max", st: State{ListPrice: 40, Rounds: []Round{rd(20, 38), rd(21, 36), rd(22, 34), rd(23, 32), rd(24, 30)}}, kind: Accept, price: 30},
		{name: "rounds exhausted above max", st: State{ListPrice: 40, Rounds: []Round{rd(20, 39), rd(21, 38), rd(22, 37), rd(23, 36), rd(24, 35)}}, kind: WalkAway, price: 0, reason: "within 5 rounds"},
		{name: "seller round limit counts", st: State{ListPrice: 40, SellerMaxRounds: 2, Rounds: []Round{rd(20, 38), rd(21, 36)}}, kind: WalkAway, price: 0, reason: "within 2 rounds"},
		// Limit 3 (the seller's): the third counter is the last one the seller
		// evaluates, so it goes just above the estimated floor. Projected
		// concessions end below the known floor 25, so 25 × 1.005.
		{name: "end game just above the estimated floor", st: State{ListPrice: 40, Floor: fp(25), SellerMaxRounds: 3, Rounds: []Round{rd(20, 30), rd(20.5, 26)}}, kind: Offer, price: 25.12, reason: "just above the estimated floor 25.00"},
		{name: "ask a tick above our offer: accept, never counter at the ask", st: State{ListPrice: 40, Rounds: []Round{rd(20, 35), rd(25, 25.005)}}, kind: Accept, price: 25.005},
		{name: "late in the time budget the reservation is high", st: State{ListPrice: 40, Elapsed: 99 * time.Second, Deadline: 100 * time.Second, Rounds: []Round{rd(20, 29)}}, kind: Accept, price: 29, reason: "reservation"},
		{name: "missing seller price", st: State{Rounds: []Round{rd(20, 0)}}, err: ErrMissingSellerPrice},
		{name: "bad floor", st: State{Floor: fp(-1)}, err: ErrInvalidState},
	}
	checkMoves(t, a, cases)
	if _, err := (Adaptive{Target: 20, Max: 30, MaxRounds: 5, Mirror: 3}).Next(State{}); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("bad mirror: %v", err)
	}
	if _, err := NewAdaptive(20, 30, 0); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("no rounds: %v", err)
	}
	m, _ := Adaptive{Target: 20, Max: 30, MaxRounds: 5, Mirror: 1}.Next(State{ListPrice: 40, Rounds: []Round{rd(20, 35)}})
	if m.Kind != Offer || m.Price != 23.75 {
		t.Fatalf("mirror 1: %+v, want offer 23.75 (a quarter of the 15 gap)", m)
	}
}

func TestAdaptiveTimePressureBreaksDeadlock(t *testing.T) {
	t.Parallel()
	// The seller concedes only 1% of the gap each round: reciprocity alone
	// would barely move, but the time curve lifts the offers toward max.
	a := Adaptive{Target: 20, Max: 30, MaxRounds: 5}
	st := State{ListPrice: 40, Rounds: []Round{rd(20, 39.8), rd(20.05, 39.6), rd(20.1, 39.4)}}
	m, err := a.Next(st)
	if err != nil {
		t.Fatal(err)
	}
	// progress 3/5 → 20 + 10 × 0.36 = 23.6.
	if m.Kind != Offer || m.Price != 23.6 || !strings.Contains(m.Reason, "time pressure") {
		t.Fatalf("move %+v", m)
	}
}

func TestCompetitiveMoves(t *testing.T) {
	t.Parallel()
	c := Competitive{Target: 20, Max: 30, MaxRounds: 5}
	cases := []moveCase{
		{name: "known floor cannot beat the competing price", st: State{ListPrice: 40, Floor: fp(26), BestCompeting: fp(26)}, kind: WalkAway, price: 0, reason: "cannot beat"},
		{name: "opens below the competing price", st: State{ListPrice: 40, BestCompeting: fp(21)}, kind: Offer, price: 18.9, reason: "best competing offer 21.00 CPM"},
		{name: "target already well below", st: State{ListPrice: 40, BestCompeting: fp(28)}, kind: Offer, price: 20, reason: "best competing offer 28.00"},
		{name: "final offer equal to competing: walk", st: State{ListPrice: 40, BestCompeting: fp(25), Rounds: []Round{rd(20, 30), rf(21, 25)}}, kind: WalkAway, price: 0, reason: "cannot beat"},
		{name: "final offer beats competing", st: State{ListPrice: 40, BestCompeting: fp(25), Rounds: []Round{rd(20, 30), rf(21, 24.9)}}, kind: Accept, price: 24.9},
		{name: "stopped at the competing price", st: State{ListPrice: 40, BestCompeting: fp(25), Rounds: []Round{rd(20, 25), rd(21, 25)}}, kind: WalkAway, price: 0, reason: "cannot beat"},
		{name: "competing above max: max is the walk-away point", st: State{ListPrice: 40, BestCompeting: fp(35), Rounds: []Round{rd(20, 31), rf(21, 29)}}, kind: Accept, price: 29},
		{name: "competing above max, final above max", st: State{ListPrice: 40, BestCompeting: fp(35), Rounds: []Round{rd(20, 33), rf(21, 31)}}, kind: WalkAway, price: 0},
		{name: "list price beats competing and is within opening", st: State{ListPrice: 18, BestCompeting: fp(25)}, kind: Accept, price: 18},
		{name: "offers stay below the competing price", st: State{ListPrice: 40, BestCompeting: fp(22), SellerMaxRounds: 2, Rounds: []Round{rd(19.8, 23)}}, kind: Offer, price: -1},
		{name: "no competing quote", st: State{ListPrice: 40}, kind: Offer, price: 20, reason: "no competing quote"},
	}
	checkMoves(t, c, cases)
	m, _ := c.Next(State{ListPrice: 40, BestCompeting: fp(22), SellerMaxRounds: 2, Rounds: []Round{rd(19.8, 23)}})
	if m.Price >= 22 || m.Price < 19.8 {
		t.Fatalf("offer %v not in [19.8, 22)", m.Price)
	}
	// Without a competing quote it moves exactly like Adaptive.
	a := Adaptive{Target: 20, Max: 30, MaxRounds: 5}
	for _, st := range []State{
		{ListPrice: 40, Rounds: []Round{rd(20, 35)}},
		{ListPrice: 40, Rounds: []Round{rd(20, 35), rd(21, 33)}},
		{ListPrice: 40, Floor: fp(28), Rounds: []Round{rd(20, 28)}},
	} {
		ma, _ := a.Next(st)
		mc, _ := c.Next(st)
		if ma.Kind != mc.Kind || ma.Price != mc.Price {
			t.Fatalf("competitive %+v differs from adaptive %+v", mc, ma)
		}
	}
	if _, err := (Competitive{Target: 20, Max: 30, MaxRounds: 5, Leverage: 1}).Next(State{}); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("bad leverage: %v", err)
	}
}

func TestCompetitiveRunWalksBeforeContact(t *testing.T) {
	t.Parallel()
	cp := &scripted{replies: []Round{counter(30)}}
	res, err := Run(context.Background(), Competitive{Target: 20, Max: 30, MaxRounds: 5}, State{ListPrice: 40, Floor: fp(27), BestCompeting: fp(26)}, cp)
	if err != nil || res.Outcome != OutcomeWalkedAway || len(cp.sent) != 0 || !strings.Contains(res.Reason, "26.00") {
		t.Fatalf("%+v %v sent %q", res, err, cp.sent)
	}
}

// TestAdaptiveAgainstSellerModel pins one full negotiation against the model
// of the seller engine (agency CTV: base 31.50, floor 28): the threshold
// buyer accepts the first counter within its max; the adaptive buyer holds.
func TestAdaptiveAgainstSellerModel(t *testing.T) {
	t.Parallel()
	st := State{ListPrice: 31.5, Floor: fp(28), SellerMaxRounds: 5}
	th, err := Run(context.Background(), Threshold{Target: 28.5, Max: 30.5, Step: 0.5, MaxRounds: 5}, st, newSellerSim(35, 28, "agency"))
	if err != nil || th.Outcome != OutcomeAccepted || th.FinalPrice != 30 || len(th.Rounds) != 1 {
		t.Fatalf("threshold %+v %v", th, err)
	}
	ad, err := Run(context.Background(), Adaptive{Target: 28.5, Max: 30.5, MaxRounds: 5}, st, newSellerSim(35, 28, "agency"))
	if err != nil || ad.Outcome != OutcomeAccepted || ad.FinalPrice >= th.FinalPrice || ad.FinalPrice < 28 {
		t.Fatalf("adaptive %+v %v", ad, err)
	}
	t.Logf("threshold %.2f in %d rounds; adaptive %.2f in %d rounds (%s)", th.FinalPrice, len(th.Rounds), ad.FinalPrice, len(ad.Rounds), ad.Reason)
}
