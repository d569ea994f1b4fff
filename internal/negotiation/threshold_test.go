package negotiation

import (
	"errors"
	"math"
	"testing"
)

func fp(x float64) *float64 { return &x }

// ref is the reference SimpleThresholdStrategy(20, 30, 2, 5) of section 8.
var ref = Threshold{Target: 20, Max: 30, Step: 2, MaxRounds: 5}

func TestThresholdShouldAccept(t *testing.T) {
	t.Parallel()
	// S-1, plus the fix: a missing price is never acceptable.
	for _, c := range []struct {
		price float64
		want  bool
	}{{28, true}, {30, true}, {30.01, false}, {0, false}, {-1, false}, {math.NaN(), false}} {
		if got := ref.ShouldAccept(c.price, RoundContext{}); got != c.want {
			t.Errorf("ShouldAccept(%v) = %v, want %v", c.price, got, c.want)
		}
	}
}

func TestThresholdNextOffer(t *testing.T) {
	t.Parallel()
	step0 := ref
	step0.Step = 0
	above := Threshold{Target: 35, Max: 30, Step: 2, MaxRounds: 5}
	cases := []struct {
		id    string
		s     Threshold
		price float64
		last  *float64
		want  float64
	}{
		{"S-2 opening", ref, 40, nil, 20},
		{"S-2 concede", ref, 35, fp(20), 22},
		{"S-2 capped", ref, 50, fp(29), 30},
		{"S-3 step 0", step0, 35, fp(20), 20},
		{"S-7 fixed: opening clamped to max", above, 40, nil, 30},
	}
	for _, c := range cases {
		if got := c.s.NextOffer(c.price, RoundContext{OurLastOffer: c.last}); got != c.want {
			t.Errorf("%s: NextOffer = %v, want %v", c.id, got, c.want)
		}
	}
}

func TestThresholdShouldWalkAway(t *testing.T) {
	t.Parallel()
	cases := []struct {
		id     string
		price  float64
		rounds int
		prev   *float64
		want   bool
	}{
		{"S-4 rounds exhausted", 35, 5, nil, true},
		{"S-4 early", 35, 2, nil, false},
		{"S-5 seller not moving", 35, 2, fp(35), true},
		{"S-5 seller moving", 33, 2, fp(35), false},
		{"S-5 seller raised", 36, 2, fp(35), true},
		{"S-6 no rounds", 35, 0, nil, false},
	}
	for _, c := range cases {
		got := ref.ShouldWalkAway(c.price, RoundContext{RoundsCompleted: c.rounds, SellerPreviousPrice: c.prev})
		if got != c.want {
			t.Errorf("%s: ShouldWalkAway = %v, want %v", c.id, got, c.want)
		}
	}
}

func TestThresholdValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		s    Threshold
		ok   bool
	}{
		{"reference", ref, true},
		{"step 0", Threshold{20, 30, 0, 5}, true},
		{"target == max", Threshold{30, 30, 1, 1}, true},
		{"negative step", Threshold{20, 30, -1, 5}, false},
		{"S-7 target above max", Threshold{35, 30, 2, 5}, false},
		{"zero target", Threshold{0, 30, 2, 5}, false},
		{"zero rounds", Threshold{20, 30, 2, 0}, false},
		{"NaN max", Threshold{20, math.NaN(), 2, 5}, false},
	}
	for _, c := range cases {
		_, err := NewThreshold(c.s.Target, c.s.Max, c.s.Step, c.s.MaxRounds)
		if c.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidParams)) {
			t.Errorf("%s: err = %v, want ok=%v", c.name, err, c.ok)
		}
		if _, err := c.s.Next(State{}); c.ok != (err == nil) {
			t.Errorf("%s: Next err = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

func TestThresholdNext(t *testing.T) {
	t.Parallel()
	r := func(b, s float64, a string) Round { return Round{BuyerPrice: b, SellerPrice: s, SellerAction: a} }
	cases := []struct {
		name  string
		st    State
		kind  MoveKind
		price float64
		err   error
	}{
		{"opening at target", State{ListPrice: 40}, Offer, 20, nil},
		{"opening without list price", State{}, Offer, 20, nil},
		{"opening clamped by State.Max", State{ListPrice: 40, Max: 18}, Offer, 18, nil},
		{"list price at or below opening: accept", State{ListPrice: 19}, Accept, 19, nil},
		{"list price within max still negotiated", State{ListPrice: 28}, Offer, 20, nil},
		{"accept within max", State{Rounds: []Round{r(20, 28, ActionCounter)}}, Accept, 28, nil},
		{"concede", State{Rounds: []Round{r(20, 35, ActionCounter)}}, Offer, 22, nil},
		{"stuck seller", State{Rounds: []Round{r(20, 35, ActionCounter), r(22, 35, ActionCounter)}}, WalkAway, 0, nil},
		{"final offer above max", State{Rounds: []Round{r(20, 31, ActionFinalOffer)}}, WalkAway, 0, nil},
		{"final offer within max", State{Rounds: []Round{r(20, 29, ActionFinalOffer)}}, Accept, 29, nil},
		{"seller max rounds", State{SellerMaxRounds: 1, Rounds: []Round{r(20, 35, ActionCounter)}}, WalkAway, 0, nil},
		{"N-9 fixed: missing price is an error", State{Rounds: []Round{r(20, 0, ActionCounter)}}, 0, 0, ErrMissingSellerPrice},
		{"round after reject", State{Rounds: []Round{r(20, 35, ActionReject)}}, 0, 0, ErrInvalidState},
		{"negative list price", State{ListPrice: -1}, 0, 0, ErrInvalidState},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m, err := ref.Next(c.st)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Kind != c.kind || m.Price != c.price || m.Reason == "" {
				t.Fatalf("move = %+v, want %v %v", m, c.kind, c.price)
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	p := Params{Target: 20, Max: 30, Step: 2, MaxRounds: 5}
	for _, name := range []string{"threshold", "adaptive", "Competitive "} {
		s, err := New(name, p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if tg, mx := s.(Limiter).Limits(); tg != 20 || mx != 30 {
			t.Fatalf("%s limits %v %v", name, tg, mx)
		}
	}
	if s, _ := New("threshold", p); s != (Threshold{20, 30, 2, 5}) {
		t.Fatalf("threshold = %+v", s)
	}
	if _, err := New("greedy", p); !errors.Is(err, ErrUnknownStrategy) {
		t.Fatalf("unknown: %v", err)
	}
	for _, name := range Names() {
		if s, err := New(name, Params{Target: 30, Max: 20, MaxRounds: 5}); !errors.Is(err, ErrInvalidParams) || s != nil {
			t.Fatalf("%s with max < target: %v %v", name, s, err)
		}
		if _, err := New(name, Params{Target: 20, Max: 30}); !errors.Is(err, ErrInvalidParams) {
			t.Fatalf("%s with no rounds: %v", name, err)
		}
	}
	if _, err := New("threshold", Params{Target: 20, Max: 30, Step: -1, MaxRounds: 3}); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("negative step: %v", err)
	}
}

func TestCentsNeverAbove(t *testing.T) {
	cases := []struct{ in, want float64 }{
		{92.39999999999999, 92.39}, {92.4, 92.4}, {0.29, 0.29}, {0.1 + 0.2, 0.3}, {29.625, 29.62}, {0.009, 0}, {18, 18},
	}
	for _, c := range cases {
		if got := cents(c.in); got != c.want || got > c.in {
			t.Errorf("cents(%v) = %v, want %v (never above the input)", c.in, got, c.want)
		}
	}
}
