package engine

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/dealflow/dealflow/pkg/identity"
)

func TestRoundLikePython(t *testing.T) {
	t.Parallel()
	// Python-verified values (§0.10): ties go to even on the exact binary value.
	tests := []struct {
		in   float64
		want float64
	}{
		{29.625, 29.62},
		{26.775, 26.77},
		{21.375, 21.38},
		{2.675, 2.67},
		{0.125, 0.12},
		{33.25, 33.25},
	}
	for _, tc := range tests {
		if got := Round2(tc.in); got != tc.want {
			t.Errorf("Round2(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	// Runtime multiplication, not constant folding: 31.5*0.95 → 29.924999… → 29.92.
	a, f := 31.5, 0.95
	if got := Round2(a * f); got != 29.92 {
		t.Errorf("Round2(31.5*0.95 at runtime) = %v, want 29.92", got)
	}
	for _, tc := range []struct {
		in   float64
		want string
	}{{31.5, "32"}, {13.5, "14"}, {32.5, "32"}, {28.000000000000004, "28"}} {
		if got := Fmt0(tc.in); got != tc.want {
			t.Errorf("Fmt0(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := Micros(23.0); got != 23_000_000 {
		t.Errorf("Micros(23) = %d", got)
	}
	if got := Micros(Dollars(19_123_457)); got != 19_123_457 {
		t.Errorf("micros round trip = %d", got)
	}
}

func TestPrice(t *testing.T) {
	t.Parallel()
	// Contract cases 22, 24, 43 and the §3 rationale example.
	tests := []struct {
		name                 string
		base                 float64
		tier                 identity.Tier
		volume               int64
		final                float64
		tierPct, volPct      float64
		tierFrac, volumeFrac float64
		rationale            string
	}{
		{"22 seat PG 6M video", 25, identity.TierSeat, 6_000_000, 23.75, 5.0, 0.0, 0.05, 0,
			"Base price: $25.00 CPM | Seat tier: -5% | Final price: $23.75 CPM | (Total savings: 5.0%)"},
		{"22 agency PG 6M video", 25, identity.TierAgency, 6_000_000, 21.38, 10.0, 5.0, 0.10, 0.05,
			"Base price: $25.00 CPM | Agency tier: -10% | Volume discount: -5.0% | Final price: $21.38 CPM | (Total savings: 14.5%)"},
		{"22 advertiser PG 6M video", 25, identity.TierAdvertiser, 6_000_000, 20.19, 15.0, 5.0, 0.15, 0.05, ""},
		{"22 advertiser_id-only key is public", 25, identity.BuyerIdentity{AdvertiserID: "adv-1"}.SellerTier(), 6_000_000, 25.0, 0.0, 0.0, 0, 0,
			"Base price: $25.00 CPM | Final price: $25.00 CPM"},
		{"24 advertiser CTV PG 60M", 35, identity.TierAdvertiser, 60_000_000, 23.80, 15.0, 20.0, 0.15, 0.20, ""},
		{"43 pricing agency CTV 20M", 35, identity.TierAgency, 20_000_000, 26.77, 10.0, 15.0, 0.1, 0.15, ""},
		{"pricing anon CTV 20M", 35, identity.TierPublic, 20_000_000, 35.0, 0, 0, 0, 0, ""},
		{"pricing seat CTV 20M (no volume for seat)", 35, identity.TierSeat, 20_000_000, 33.25, 5.0, 0, 0.05, 0, ""},
		{"pricing advertiser CTV 20M", 35, identity.TierAdvertiser, 20_000_000, 25.29, 15.0, 15.0, 0.15, 0.15, ""},
		{"global floor", 1.0, identity.TierAdvertiser, 60_000_000, 1.0, 15.0, 20.0, 0.15, 0.20, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := Price(tc.base, tc.tier, tc.volume)
			if p.FinalPrice != tc.final {
				t.Errorf("final = %v, want %v", p.FinalPrice, tc.final)
			}
			if p.TierDiscountPct() != tc.tierPct || p.VolumeDiscountPct() != tc.volPct {
				t.Errorf("pcts = %v/%v, want %v/%v", p.TierDiscountPct(), p.VolumeDiscountPct(), tc.tierPct, tc.volPct)
			}
			if p.TierDiscount != tc.tierFrac || p.VolumeDiscount != tc.volumeFrac {
				t.Errorf("fractions = %v/%v, want %v/%v", p.TierDiscount, p.VolumeDiscount, tc.tierFrac, tc.volumeFrac)
			}
			if tc.rationale != "" && p.Rationale != tc.rationale {
				t.Errorf("rationale = %q, want %q", p.Rationale, tc.rationale)
			}
		})
	}
}

func TestPriceDisplayAndRange(t *testing.T) {
	t.Parallel()
	// §2.3 live values for base 35.
	if got := PriceRange(35); got != "$28-$42 CPM" {
		t.Errorf("PriceRange(35) = %q", got)
	}
	tests := []struct {
		tier    identity.Tier
		exact   bool
		price   float64
		display string
	}{
		{identity.TierPublic, false, 0, "$28-$42 CPM"},
		{identity.TierSeat, true, 33.25, "$33 CPM"},
		{identity.TierAgency, true, 31.5, "$32 CPM"},
		{identity.TierAdvertiser, true, 29.75, "$30 CPM"},
	}
	for _, tc := range tests {
		d := DisplayFor(35, tc.tier)
		if d.Exact != tc.exact || d.Price != tc.price || d.Display != tc.display {
			t.Errorf("DisplayFor(35, %s) = %+v, want exact=%v price=%v display=%q", tc.tier, d, tc.exact, tc.price, tc.display)
		}
	}
}

func TestIsPriceAcceptable(t *testing.T) {
	t.Parallel()
	// Contract case 25 (video floor 18).
	tests := []struct {
		offer, floor float64
		tier         identity.Tier
		want         bool
	}{
		{19, 18, identity.TierPublic, true},
		{17, 18, identity.TierPublic, false},
		{30, 18, identity.TierAdvertiser, true},
		{18, 18, identity.TierAgency, true},
		{0.5, 0, identity.TierPublic, false},
	}
	for _, tc := range tests {
		if got := IsPriceAcceptable(tc.offer, tc.floor, tc.tier); got != tc.want {
			t.Errorf("IsPriceAcceptable(%v, %v, %s) = %v, want %v", tc.offer, tc.floor, tc.tier, got, tc.want)
		}
	}
}

type step struct {
	buyer     float64
	action    Action
	seller    float64
	conc, cum float64 // checked when check is true
	check     bool
	remaining int
	status    string
	rationale string // prefix check when non-empty
}

func runTrace(t *testing.T, n *Negotiation, steps []step) {
	t.Helper()
	for i, s := range steps {
		r, err := n.Counter(s.buyer)
		if err != nil {
			t.Fatalf("round %d: %v", i+1, err)
		}
		if r.Number != i+1 || r.Action != s.action || r.SellerPrice != s.seller {
			t.Fatalf("round %d: got #%d %s %v, want %s %v (%s)", i+1, r.Number, r.Action, r.SellerPrice, s.action, s.seller, r.Rationale)
		}
		if s.check && (math.Abs(r.ConcessionPct-s.conc) > 1e-9 || math.Abs(r.CumulativeConcessionPct-s.cum) > 1e-9) {
			t.Errorf("round %d: concession %v/%v, want %v/%v", i+1, r.ConcessionPct, r.CumulativeConcessionPct, s.conc, s.cum)
		}
		if s.status != "" && n.Status != s.status {
			t.Errorf("round %d: status %q, want %q", i+1, n.Status, s.status)
		}
		if got := n.RoundsRemaining(r); s.remaining >= 0 && got != s.remaining {
			t.Errorf("round %d: rounds_remaining %d, want %d", i+1, got, s.remaining)
		}
		if s.rationale != "" && !strings.HasPrefix(r.Rationale, s.rationale) {
			t.Errorf("round %d: rationale %q, want prefix %q", i+1, r.Rationale, s.rationale)
		}
	}
}

func TestNegotiationWorkedTraces(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		tier       identity.Tier
		base, flr  float64
		wantB      float64
		wantStrat  Strategy
		steps      []step
		finalState string
	}{
		{
			name: "31 public video", tier: identity.TierPublic, base: 25, flr: 18, wantB: 25, wantStrat: StrategyAggressive,
			steps: []step{
				{20, ActionCounter, 24.25, 0.03, 0.03, true, 2, "active", "Counter at $24.25 CPM (aggressive strategy, round 1/3)."},
				{21, ActionCounter, 23.50, 0.03, 0.06, true, 1, "active", "Counter at $23.50 CPM (aggressive strategy, round 2/3)."},
				{22, ActionFinalOffer, 23.00, 0.02, 0.08, true, 0, "active", "Final offer at $23.00 CPM. This represents our maximum concession of 8%."},
				{23, ActionAccept, 23.00, 0, 0.08, true, 0, "accepted", "Buyer price meets or exceeds seller target. Deal accepted."},
			},
			finalState: "accepted",
		},
		{
			name: "agency CTV", tier: identity.TierAgency, base: 35, flr: 28, wantB: 31.5, wantStrat: StrategyCollaborative,
			steps: []step{
				{29, ActionCounter, 30.25, 0, 0, false, 4, "active", ""},
				{29, ActionCounter, 29.62, 0, 0, false, 3, "active", "Counter at $29.62 CPM"},
				{29.5, ActionCounter, 29.56, 0, 0, false, 2, "active", ""},
				{29.5, ActionCounter, 29.53, 0, 0, false, 1, "active", ""},
				{30, ActionAccept, 30, 0, 0, false, 0, "accepted", ""},
			},
			finalState: "accepted",
		},
		{
			name: "advertiser CTV", tier: identity.TierAdvertiser, base: 35, flr: 28, wantB: 29.75, wantStrat: StrategyPremium,
			steps: []step{
				{29, ActionCounter, 29.26, 0, 0, false, 5, "active", ""},
				{29, ActionCounter, 29.09, 0, 0, false, 4, "active", ""},
				{29.5, ActionAccept, 29.5, 0, 0, false, 3, "accepted", ""},
			},
			finalState: "accepted",
		},
		{
			name: "40 seat CTV", tier: identity.TierSeat, base: 35, flr: 28, wantB: 33.25, wantStrat: StrategyStandard,
			steps: []step{
				{29, ActionCounter, 31.92, 0, 0, false, 3, "active", ""},
				{29, ActionCounter, 30.75, 0, 0, false, 2, "active", ""},
				{29.5, ActionCounter, 30.25, 0, 0, false, 1, "active", ""},
				{29.5, ActionAccept, 29.5, 0, 0, false, 0, "accepted", "Buyer price is acceptable within concession limits."},
			},
			finalState: "accepted",
		},
		{
			name: "36 agency video below floor", tier: identity.TierAgency, base: 25, flr: 18, wantB: 22.5, wantStrat: StrategyCollaborative,
			steps: []step{
				{15, ActionCounter, 18.00, 0.2, 0.2, true, 4, "active", "Buyer offer $15.00 is below our floor. Countering at the floor price $18.00 CPM — the minimum viable price for this inventory (round 1/5)."},
				{19, ActionAccept, 19, 0, 0.2, true, 3, "accepted", ""},
			},
			finalState: "accepted",
		},
		{
			name: "38 public zero offer", tier: identity.TierPublic, base: 25, flr: 18, wantB: 25, wantStrat: StrategyAggressive,
			steps: []step{
				{0, ActionReject, 25, 0, 0, true, 2, "rejected", "Buyer price $0.00 is not a valid offer. Cannot negotiate."},
			},
			finalState: "rejected",
		},
		{
			name: "39 first offer above base", tier: identity.TierPublic, base: 25, flr: 18, wantB: 25, wantStrat: StrategyAggressive,
			steps: []step{
				{26, ActionAccept, 26, 0, 0, true, 2, "accepted", ""},
			},
			finalState: "accepted",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := NewNegotiation(tc.tier, tc.base, tc.flr)
			if n.Base != tc.wantB || n.Strategy != tc.wantStrat || n.Floor != tc.flr {
				t.Fatalf("start: B=%v strategy=%s F=%v", n.Base, n.Strategy, n.Floor)
			}
			runTrace(t, n, tc.steps)
			if n.Status != tc.finalState {
				t.Errorf("final status %q, want %q", n.Status, tc.finalState)
			}
		})
	}
}

func TestNegotiationBuyerAcceptAfterCounter(t *testing.T) {
	t.Parallel()
	// Contract case 37: counter 20, then the buyer accepts (echo 20) → the
	// recorded round strikes at the seller's last price 24.25.
	n := NewNegotiation(identity.TierPublic, 25, 18)
	if _, err := n.Counter(20); err != nil {
		t.Fatal(err)
	}
	echo := 20.0
	r, changed := n.Accept(&echo)
	if !changed || r.Number != 2 || r.Action != ActionAccept || r.SellerPrice != 24.25 || r.BuyerPrice != 20 {
		t.Fatalf("accept round = %+v changed=%v", r, changed)
	}
	if r.Rationale != "Buyer accepted at $24.25 CPM." || n.Status != StatusAccepted {
		t.Errorf("rationale %q status %q", r.Rationale, n.Status)
	}
	// Terminal: a counter is refused, a second accept changes nothing.
	if _, err := n.Counter(21); !errors.Is(err, ErrNotActive) {
		t.Errorf("counter after accept: err = %v, want ErrNotActive", err)
	}
	if _, changed := n.Reject(); changed || n.Status != StatusAccepted || len(n.Rounds) != 2 {
		t.Errorf("reject after accept changed state: status %q rounds %d", n.Status, len(n.Rounds))
	}
}

func TestNegotiationBuyerRejectAndAcceptWithoutEcho(t *testing.T) {
	t.Parallel()
	n := NewNegotiation(identity.TierAgency, 25, 18)
	r, changed := n.Accept(nil)
	if !changed || r.SellerPrice != 22.5 || r.BuyerPrice != 22.5 || r.Number != 1 {
		t.Errorf("accept without rounds = %+v", r)
	}
	m := NewNegotiation(identity.TierAgency, 25, 18)
	r, changed = m.Reject()
	if !changed || r.Action != ActionReject || r.Rationale != "Buyer declined (walk-away)." || m.Status != StatusRejected {
		t.Errorf("reject = %+v status %q", r, m.Status)
	}
}

func TestNegotiationRoundLimitAndFloorFinalOffer(t *testing.T) {
	t.Parallel()
	// Public: round 3 below floor is a final offer at the floor; round 4
	// below the last price is a walk-away.
	n := NewNegotiation(identity.TierPublic, 25, 18)
	steps := []step{
		{10, ActionCounter, 18, 0, 0, false, 2, "active", "Buyer offer $10.00 is below our floor."},
		{10, ActionCounter, 18, 0, 0, false, 1, "active", ""},
		{10, ActionFinalOffer, 18, 0, 0, false, 0, "active", "Final offer at our floor price $18.00 CPM. We cannot go lower."},
		{17, ActionReject, 25, 0, 0, false, 0, "rejected", "Maximum 3 rounds reached. Negotiation concluded without agreement."},
	}
	runTrace(t, n, steps)
	// Below-floor counter can exceed the total cap (0.28 > 0.08).
	if got := n.Rounds[0].CumulativeConcessionPct; math.Abs(got-0.28) > 1e-12 {
		t.Errorf("below-floor cumulative = %v, want 0.28", got)
	}
}

func FuzzNegotiationInvariants(f *testing.F) {
	f.Add(25.0, 18.0, 20.0, 21.0, 22.0, uint8(0))
	f.Add(35.0, 28.0, 29.0, 29.0, 29.5, uint8(2))
	f.Add(35.0, 28.0, 29.0, 29.0, 29.5, uint8(1))
	f.Add(12.0, 8.0, 1.0, 0.0, 50.0, uint8(3))
	// Floor above the tier-adjusted base (59*0.9 = 53.1 < 56): the seller
	// counters at its floor, above its own exact price.
	f.Add(59.0, 56.0, 29.0, 29.0, 5.9, uint8(2))
	// A below-floor counter takes the cumulative concession past the total
	// cap; the next offer at the floor gets the gap-split counter clamped UP
	// to B*(1-total_cap) (94.52, above the last 4.92). The real seller's
	// engine does this (seller-protocol §4 step 5), so the sandbox must too.
	f.Add(139.0, 4.916666666666667, 29.0, 4.833333333333333, 4.916666666666667, uint8(23))
	f.Fuzz(func(t *testing.T, base, floor, b1, b2, b3 float64, tierN uint8) {
		if !(base > 1 && base < 1000) || !(floor > 0 && floor <= base) {
			return
		}
		tier := []identity.Tier{identity.TierPublic, identity.TierSeat, identity.TierAgency, identity.TierAdvertiser}[tierN%4]
		n := NewNegotiation(tier, base, floor)
		for _, b := range []float64{b1, b2, b3} {
			if math.IsNaN(b) || math.IsInf(b, 0) {
				return
			}
			if !n.Active() {
				break
			}
			last := n.LastSellerPrice()
			r, err := n.Counter(b)
			if err != nil {
				t.Fatal(err)
			}
			switch r.Action {
			case ActionCounter, ActionFinalOffer:
				// A counter never rises above the seller's previous price,
				// except to its floor (when the floor exceeds the
				// tier-adjusted base) or to its total-cap position
				// B*(1-total_cap) (when a below-floor counter already
				// conceded past the cap); and never goes below the floor
				// (rounded to cents).
				capped := Round2(n.Base * (1 - n.Limits.TotalCap))
				if r.SellerPrice > max(last, Round2(floor), capped)+1e-9 {
					t.Fatalf("counter %v above last %v, floor %v and cap position %v", r.SellerPrice, last, floor, capped)
				}
				if r.SellerPrice < Round2(floor)-1e-9 && r.SellerPrice < Round2(n.Base*(1-n.Limits.TotalCap))-0.01 {
					t.Fatalf("counter %v below floor %v", r.SellerPrice, floor)
				}
			case ActionAccept:
				if r.SellerPrice != b {
					t.Fatalf("accept at %v, buyer offered %v", r.SellerPrice, b)
				}
			}
		}
	})
}
