package negotiation

import (
	"context"
	"fmt"
	"math"
	"sort"
	"testing"
)

// scenario is one package negotiated at one tier by a buyer with a target
// and max drawn around the package's prices.
type scenario struct {
	name         string
	base, floor  float64 // product base and floor CPM (untiered)
	tier         string  // "agency" or "advertiser"
	list         float64 // the buyer's quoted price (tier-adjusted base)
	target, max  float64
	rounds       int
	sellerRounds int      // 0: the buyer does not know the seller's limit
	best         *float64 // best competing price, if any
	knownFloor   bool
}

// packages are the default catalog's priced products (seller-protocol 1.7).
var packages = []struct{ base, floor float64 }{
	{15, 10}, {8, 5}, {25, 18}, {35, 28}, {20, 15}, {12, 8}, {55, 40}, {22, 15}, {30, 20},
}

var tierDiscount = map[string]float64{"agency": 0.10, "advertiser": 0.15}
var tierRounds = map[string]int{"agency": 5, "advertiser": 6}

// scenarios draws buyers around each package: targets from well below the
// floor to near the list price, maxes from below the seller's reservation to
// the list price, with and without knowledge of the seller's floor and round
// limit, and with a competing quote that is sometimes beatable and sometimes
// not.
func scenarios() []scenario {
	var out []scenario
	for _, p := range packages {
		for _, tier := range []string{"agency", "advertiser"} {
			list := pyRound2(p.base * (1 - tierDiscount[tier]))
			for _, tf := range []float64{0.70, 0.80, 0.90} {
				for _, mf := range []float64{0.84, 0.90, 0.95, 1.00} {
					target, max := pyRound2(list*tf), pyRound2(list*mf)
					if target > max {
						continue
					}
					for _, know := range []bool{false, true} {
						for _, competing := range []bool{false, true} {
							sc := scenario{
								base: p.base, floor: p.floor, tier: tier, list: list,
								target: target, max: max, rounds: 5, knownFloor: know,
							}
							if know {
								sc.sellerRounds = tierRounds[tier]
							}
							if competing {
								// A competing quote a little under this buyer's
								// max: beatable by most sellers, not by all.
								best := pyRound2(max * 0.97)
								sc.best = &best
							}
							sc.name = fmt.Sprintf("%s %g/%g t%.2f m%.2f know=%v competing=%v", tier, p.base, p.floor, target, max, know, competing)
							out = append(out, sc)
						}
					}
				}
			}
		}
	}
	return out
}

func (sc scenario) state() State {
	st := State{ListPrice: sc.list, Target: sc.target, Max: sc.max, SellerMaxRounds: sc.sellerRounds, BestCompeting: sc.best}
	if sc.knownFloor {
		f := sc.floor
		st.Floor = &f
	}
	return st
}

func (sc scenario) strategies(t testing.TB) []Strategy {
	p := Params{Target: sc.target, Max: sc.max, Step: math.Max(0.01, pyRound2((sc.max-sc.target)/4)), MaxRounds: sc.rounds}
	var out []Strategy
	for _, name := range []string{"threshold", "adaptive", "competitive"} {
		s, err := New(name, p)
		if err != nil {
			t.Fatalf("%s: %v", sc.name, err)
		}
		out = append(out, s)
	}
	return out
}

// tally aggregates one strategy's results.
type tally struct {
	deals, failures, rounds int
	sum                     float64
	forCompetitor           int     // walked away for a cheaper competing quote
	effSum                  float64 // deal price, or the competing price it walked away for
	outcomes                map[Outcome]int
}

func (t *tally) avg() float64    { return t.sum / math.Max(1, float64(t.deals)) }
func (t *tally) effAvg() float64 { return t.effSum / math.Max(1, float64(t.deals+t.forCompetitor)) }
func (t *tally) avgRounds(n int) float64 {
	return float64(t.rounds) / math.Max(1, float64(n))
}

// walkedForCompetitor reports a walk-away from a seller whose last price (or
// known floor, before any round) could not beat the best competing quote:
// the buyer then takes the competing quote, so it is no failure.
func walkedForCompetitor(sc scenario, res Result) bool {
	if res.Outcome != OutcomeWalkedAway || sc.best == nil {
		return false
	}
	p := sc.list
	if sc.knownFloor {
		p = sc.floor
	}
	if n := len(res.Rounds); n > 0 {
		p = res.Rounds[n-1].SellerPrice
	}
	return p >= *sc.best
}

// compare runs every strategy on every scenario against the counterparty
// newSeller builds, checks each move's invariants through Run, and returns
// the tallies by strategy name and the scenarios all three closed.
func compare(t *testing.T, scs []scenario, newSeller func(scenario) Counterparty) map[string]*tally {
	t.Helper()
	tallies := map[string]*tally{}
	paired := map[string]float64{}
	pairedN := 0
	for _, sc := range scs {
		prices := map[string]float64{}
		for _, s := range sc.strategies(t) {
			res, err := Run(context.Background(), s, sc.state(), newSeller(sc))
			if res.Outcome == OutcomeError || res.Outcome == OutcomeDeadline {
				t.Fatalf("%s / %s: %v (%+v)", sc.name, s.Name(), err, res)
			}
			ty := tallies[s.Name()]
			if ty == nil {
				ty = &tally{outcomes: map[Outcome]int{}}
				tallies[s.Name()] = ty
			}
			ty.outcomes[res.Outcome]++
			ty.rounds += len(res.Rounds)
			if res.Outcome == OutcomeAccepted {
				if res.FinalPrice > sc.max+1e-9 {
					t.Fatalf("%s / %s: agreed %v above max %v", sc.name, s.Name(), res.FinalPrice, sc.max)
				}
				ty.deals++
				ty.sum += res.FinalPrice
				ty.effSum += res.FinalPrice
				prices[s.Name()] = res.FinalPrice
				continue
			}
			if walkedForCompetitor(sc, res) {
				ty.forCompetitor++
				ty.effSum += *sc.best
				continue
			}
			ty.failures++
		}
		if len(prices) == 3 {
			pairedN++
			for k, v := range prices {
				paired[k] += v
			}
		}
	}
	names := make([]string, 0, len(tallies))
	for n := range tallies {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("%d scenarios; %d closed by all three", len(scs), pairedN)
	t.Logf("%-12s %6s %9s %9s %8s %7s %9s %10s %s", "strategy", "deals", "avg CPM", "paired", "rounds", "fails", "for comp", "effective", "outcomes")
	for _, n := range names {
		ty := tallies[n]
		t.Logf("%-12s %6d %9.3f %9.3f %8.2f %7d %9d %10.3f %v", n, ty.deals, ty.avg(), paired[n]/math.Max(1, float64(pairedN)),
			ty.avgRounds(len(scs)), ty.failures, ty.forCompetitor, ty.effAvg(), ty.outcomes)
	}
	return tallies
}
