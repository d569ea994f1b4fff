package negotiation

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestRoundOneAcceptBelowThePackageFloorIsNotAtTheFloor is the reported
// case: the package's floor_price (22) stood in for the seller's floor, the
// seller countered 20.44 in round 1 and the buyer accepted "at its estimated
// floor 22.00". An ask below a floor proves that floor wrong: no reason may
// call it "at the floor".
func TestRoundOneAcceptBelowThePackageFloorIsNotAtTheFloor(t *testing.T) {
	f := 22.0
	st := State{ListPrice: 24.3, Floor: &f, FloorSource: "package floor_price", Rounds: []Round{{N: 1, BuyerPrice: 15, SellerPrice: 20.44, SellerAction: ActionCounter}}}
	for _, s := range []Strategy{must(NewAdaptive(15, 26, 6)), must(NewCompetitive(15, 26, 6))} {
		m, err := s.Next(st)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(m.Reason, "at its estimated floor") || strings.Contains(m.Reason, "22.00") {
			t.Errorf("%s: %s %.2f: %q claims a floor the seller already went below", s.Name(), m.Kind, m.Price, m.Reason)
		}
	}
}

var floorClaim = regexp.MustCompile(`floor (\d+\.\d\d)`)

// TestReasonsNameOnlyTheFloorUsed plays the strategies over many states and
// checks every floor a reason quotes is the known floor given to it or the
// estimate it computed, and that the known floor is named by its source.
func TestReasonsNameOnlyTheFloorUsed(t *testing.T) {
	for _, floor := range []float64{0, 14, 18, 20, 22, 25} {
		for _, asks := range [][]float64{nil, {24}, {21}, {20.44}, {23, 22.5}, {22, 21.9, 21.9}, {19, 18.5, 18.4, 18.35, 18.3}} {
			st := State{ListPrice: 24.3, FloorSource: "product p-1 floor_cpm"}
			if floor > 0 {
				f := floor
				st.Floor = &f
			}
			b := 15.0
			for i, a := range asks {
				st.Rounds = append(st.Rounds, Round{N: i + 1, BuyerPrice: b, SellerPrice: a, SellerAction: ActionCounter})
				b += 0.5
			}
			for _, s := range []Strategy{must(NewAdaptive(15, 26, 6)), must(NewCompetitive(15, 26, 6))} {
				m, err := s.Next(st)
				if err != nil {
					t.Fatal(err)
				}
				v := must(readState(st, 15, 26, 6))
				est, _ := core{a: Adaptive{Target: 15, Max: 26, MaxRounds: 6}, v: v, st: st}.estimateFloor()
				for _, g := range floorClaim.FindAllStringSubmatch(m.Reason, -1) {
					x, _ := strconv.ParseFloat(g[1], 64)
					if x != floor && fmtPrice(x) != fmtPrice(est) {
						t.Errorf("floor %v asks %v %s: reason %q quotes floor %s; known %v, estimated %s", floor, asks, s.Name(), m.Reason, g[1], floor, fmtPrice(est))
					}
				}
				if floor > 0 && strings.Contains(m.Reason, "seller floor "+fmtPrice(floor)) && !strings.Contains(m.Reason, "product p-1 floor_cpm") {
					t.Errorf("reason %q names the known floor without its source", m.Reason)
				}
				if m.Kind == Accept && strings.Contains(m.Reason, "at its estimated floor") && m.Price < est*(1-floorTolerance) {
					t.Errorf("accept at %.2f explained as at the estimated floor %.2f", m.Price, est)
				}
			}
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic("test setup: " + err.Error())
	}
	return v
}
