package negotiation

import (
	"math"
	"testing"
)

// TestStrategiesAgainstSellerModel plays every strategy against this
// package's model of the seller engine over a grid of packages, tiers and
// buyers, and requires the adaptive family to pay less on average without
// failing more often.
func TestStrategiesAgainstSellerModel(t *testing.T) {
	t.Parallel()
	scs := scenarios()
	tallies := compare(t, scs, func(sc scenario) Counterparty { return newSellerSim(sc.base, sc.floor, sc.tier) })
	th, ad, co := tallies["threshold"], tallies["adaptive"], tallies["competitive"]
	if ad.avg() >= th.avg() {
		t.Errorf("adaptive average %.3f not below threshold %.3f", ad.avg(), th.avg())
	}
	if ad.failures > th.failures {
		t.Errorf("adaptive failed %d times, threshold %d", ad.failures, th.failures)
	}
	if co.avg() >= th.avg() {
		t.Errorf("competitive average %.3f not below threshold %.3f", co.avg(), th.avg())
	}
	if co.failures > th.failures {
		t.Errorf("competitive failed %d times (without a better competing quote), threshold %d", co.failures, th.failures)
	}
}

// TestStrategiesAgainstReciprocalSeller checks the adaptive family is not
// tuned to one seller only: against a seller that merely reciprocates, it
// still fails no more often than threshold and pays less.
func TestStrategiesAgainstReciprocalSeller(t *testing.T) {
	t.Parallel()
	tallies := compare(t, scenarios(), func(sc scenario) Counterparty {
		return &reciprocalSeller{list: sc.list, floor: math.Max(sc.floor, sc.list*0.85), maxRounds: tierRounds[sc.tier]}
	})
	th := tallies["threshold"]
	for _, name := range []string{"adaptive", "competitive"} {
		ty := tallies[name]
		if ty.avg() >= th.avg() || ty.failures > th.failures {
			t.Errorf("%s: average %.3f (threshold %.3f), failures %d (threshold %d)", name, ty.avg(), th.avg(), ty.failures, th.failures)
		}
	}
}
