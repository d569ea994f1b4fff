package negotiation

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/dealflow/dealflow/internal/sandbox/engine"
	"github.com/dealflow/dealflow/pkg/identity"
)

// engineSeller puts the sandbox's seller engine (the seller-agent's §4
// NegotiationEngine, reproduced number for number) behind Counterparty,
// the way the sandbox's negotiation endpoint does.
type engineSeller struct{ n *engine.Negotiation }

func newEngineSeller(sc scenario) *engineSeller {
	return &engineSeller{n: engine.NewNegotiation(identity.Tier(sc.tier), sc.base, sc.floor)}
}

func (e *engineSeller) Respond(_ context.Context, m Move, _ int) (Round, error) {
	var r engine.Round
	switch m.Kind {
	case Offer:
		var err error
		if r, err = e.n.Counter(m.Price); err != nil {
			return Round{}, err
		}
	case Accept:
		p := m.Price
		var changed bool
		if r, changed = e.n.Accept(&p); !changed {
			return Round{}, engine.ErrNotActive
		}
	case WalkAway:
		r, _ = e.n.Reject()
	default:
		return Round{}, fmt.Errorf("unknown move %v", m.Kind)
	}
	return Round{N: r.Number, BuyerPrice: r.BuyerPrice, SellerPrice: r.SellerPrice, SellerAction: string(r.Action)}, nil
}

// TestStrategiesAgainstSandboxEngine plays threshold, adaptive and
// competitive against the sandbox seller engine over agency and advertiser
// tiers × the default catalog's priced products × buyers whose target and
// max are drawn around the tier's list price (with and without the known
// floor and round limit, with and without a competing quote). It prints
// each strategy's deals, average final CPM (all deals, and over the
// scenarios all three closed), average rounds and failures, and requires
// adaptive and competitive to pay less on average than threshold without
// failing more often. A walk-away from a seller that could not beat the
// best competing quote is not a failure: the buyer books the competitor.
func TestStrategiesAgainstSandboxEngine(t *testing.T) {
	t.Parallel()
	scs := scenarios()
	for i := range scs {
		// Take the list price and the round limit from the engine itself.
		scs[i].list = engine.ExactPrice(scs[i].base, identity.Tier(scs[i].tier))
		if scs[i].sellerRounds > 0 {
			_, lim := engine.StrategyFor(identity.Tier(scs[i].tier))
			scs[i].sellerRounds = lim.MaxRounds
		}
	}
	tallies := compare(t, scs, func(sc scenario) Counterparty { return newEngineSeller(sc) })
	th := tallies["threshold"]
	for _, name := range []string{"adaptive", "competitive"} {
		ty := tallies[name]
		if ty.avg() >= th.avg() {
			t.Errorf("%s average final CPM %.3f is not below threshold's %.3f", name, ty.avg(), th.avg())
		}
		if ty.failures > th.failures {
			t.Errorf("%s failed %d negotiations, threshold %d", name, ty.failures, th.failures)
		}
	}

	// The package's own seller model (sellersim_test.go) and the sandbox
	// engine implement the same section 4; report where they disagree.
	diverged := 0
	for _, sc := range scs {
		for _, s := range sc.strategies(t) {
			a, _ := Run(context.Background(), s, sc.state(), newEngineSeller(sc))
			b, _ := Run(context.Background(), s, sc.state(), newSellerSim(sc.base, sc.floor, sc.tier))
			if a.Outcome != b.Outcome || a.FinalPrice != b.FinalPrice || !reflect.DeepEqual(a.Rounds, b.Rounds) {
				diverged++
				if diverged <= 3 {
					t.Logf("engine and model differ on %s / %s:\n  engine %+v\n  model  %+v", sc.name, s.Name(), a, b)
				}
			}
		}
	}
	t.Logf("sandbox engine vs this package's seller model: %d of %d negotiations differ", diverged, 3*len(scs))
}
