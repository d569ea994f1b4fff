package engine

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/dealflow/dealflow/pkg/identity"
)

// ErrNotActive is returned when a priced move arrives on a negotiation that
// already reached a terminal status (the seller answers 400).
var ErrNotActive = errors.New("engine: negotiation is not active")

// Strategy is the seller's negotiation strategy, fixed by the buyer's tier at
// the start of a negotiation.
type Strategy string

// The four strategies, one per tier.
const (
	StrategyAggressive    Strategy = "aggressive"
	StrategyStandard      Strategy = "standard"
	StrategyCollaborative Strategy = "collaborative"
	StrategyPremium       Strategy = "premium"
)

// Limits are a strategy's concession limits (fractions of the base price).
type Limits struct {
	MaxRounds   int
	PerRoundCap float64
	TotalCap    float64
	BuyerShare  float64 // the buyer's share of the gap the seller concedes
}

// StrategyFor maps a tier to its strategy and limits (§4 table). Unknown tiers
// negotiate like public.
func StrategyFor(t identity.Tier) (Strategy, Limits) {
	switch t {
	case identity.TierSeat:
		return StrategyStandard, Limits{MaxRounds: 4, PerRoundCap: 0.04, TotalCap: 0.12, BuyerShare: 0.40}
	case identity.TierAgency:
		return StrategyCollaborative, Limits{MaxRounds: 5, PerRoundCap: 0.05, TotalCap: 0.15, BuyerShare: 0.50}
	case identity.TierAdvertiser:
		return StrategyPremium, Limits{MaxRounds: 6, PerRoundCap: 0.06, TotalCap: 0.20, BuyerShare: 0.65}
	default:
		return StrategyAggressive, Limits{MaxRounds: 3, PerRoundCap: 0.03, TotalCap: 0.08, BuyerShare: 0.30}
	}
}

// Action is a move in a round. On engine rounds it is the SELLER's move; on
// rounds recorded from a buyer's accept/reject it is the buyer's.
type Action string

// Negotiation actions.
const (
	ActionAccept     Action = "accept"
	ActionCounter    Action = "counter"
	ActionReject     Action = "reject"
	ActionFinalOffer Action = "final_offer"
)

// Negotiation statuses.
const (
	StatusActive   = "active"
	StatusAccepted = "accepted"
	StatusRejected = "rejected"
)

// Round is one recorded negotiation round. Prices are float dollars; the
// concession fields are raw fractions exactly as the seller computes them.
type Round struct {
	Number                  int
	BuyerPrice              float64
	SellerPrice             float64
	Action                  Action
	ConcessionPct           float64
	CumulativeConcessionPct float64
	Rationale               string
}

// Negotiation is the seller's NegotiationHistory plus the engine that moves it.
// It is not safe for concurrent use; the caller serialises access.
type Negotiation struct {
	Tier     identity.Tier
	Strategy Strategy
	Limits   Limits
	Base     float64 // tier-adjusted base ("B")
	Floor    float64 // product floor ("F")
	Rounds   []Round
	Status   string
}

// NewNegotiation starts a negotiation for a buyer of the given tier on a
// product with base price productBase and floor productFloor. The base is
// tier-adjusted like start_negotiation: round(base*(1-td), 2) for tiers that
// see exact prices, the raw base for public.
func NewNegotiation(tier identity.Tier, productBase, productFloor float64) *Negotiation {
	if !tier.Valid() {
		tier = identity.TierPublic
	}
	strategy, limits := StrategyFor(tier)
	b := productBase
	if d := DisplayFor(productBase, tier); d.Exact {
		b = d.Price
	}
	return &Negotiation{Tier: tier, Strategy: strategy, Limits: limits, Base: b, Floor: productFloor, Status: StatusActive}
}

// Active reports whether the negotiation still takes counters.
func (n *Negotiation) Active() bool { return n.Status == StatusActive }

// LastSellerPrice is the previous round's seller price, or the base.
func (n *Negotiation) LastSellerPrice() float64 {
	if len(n.Rounds) == 0 {
		return n.Base
	}
	return n.Rounds[len(n.Rounds)-1].SellerPrice
}

// cumulative is the previous round's cumulative concession (0 initially).
func (n *Negotiation) cumulative() float64 {
	if len(n.Rounds) == 0 {
		return 0
	}
	return n.Rounds[len(n.Rounds)-1].CumulativeConcessionPct
}

// RoundsRemaining is the v1 response's max(0, max_rounds - round_number).
func (n *Negotiation) RoundsRemaining(r Round) int {
	return max(0, n.Limits.MaxRounds-r.Number)
}

// Evaluate computes the seller's answer to a buyer offer without recording it
// (evaluate_buyer_offer, §4).
func (n *Negotiation) Evaluate(b float64) Round {
	num := len(n.Rounds) + 1
	lim := n.Limits
	B, F := n.Base, n.Floor
	cum := n.cumulative()
	last := n.LastSellerPrice()

	// 1. Accept when the buyer meets the base or the seller's last price —
	// checked before the round limit.
	if b >= B || b >= last {
		return Round{Number: num, BuyerPrice: b, SellerPrice: b, Action: ActionAccept,
			CumulativeConcessionPct: cum,
			Rationale:               "Buyer price meets or exceeds seller target. Deal accepted."}
	}
	// 2. Non-positive offers are not offers.
	if b <= 0 {
		return Round{Number: num, BuyerPrice: b, SellerPrice: B, Action: ActionReject,
			CumulativeConcessionPct: cum,
			Rationale:               "Buyer price $" + Fmt2(b) + " is not a valid offer. Cannot negotiate."}
	}
	// 3. Walk away after the last round.
	if num > lim.MaxRounds {
		return Round{Number: num, BuyerPrice: b, SellerPrice: B, Action: ActionReject,
			CumulativeConcessionPct: cum,
			Rationale: "Maximum " + strconv.Itoa(lim.MaxRounds) +
				" rounds reached. Negotiation concluded without agreement."}
	}
	// 4. Below floor: counter at the floor (final offer on the last round).
	if b < F {
		fc := Round2(F)
		this := 0.0
		if B > 0 {
			this = max(0.0, float64(B-fc)/B)
		}
		inc := max(0.0, this-cum)
		r := Round{Number: num, BuyerPrice: b, SellerPrice: fc, ConcessionPct: inc, CumulativeConcessionPct: cum + inc}
		if num == lim.MaxRounds {
			r.Action = ActionFinalOffer
			r.Rationale = "Final offer at our floor price $" + Fmt2(fc) + " CPM. We cannot go lower."
		} else {
			r.Action = ActionCounter
			r.Rationale = "Buyer offer $" + Fmt2(b) + " is below our floor. Countering at the floor price $" +
				Fmt2(fc) + " CPM — the minimum viable price for this inventory (round " +
				strconv.Itoa(num) + "/" + strconv.Itoa(lim.MaxRounds) + ")."
		}
		return r
	}
	// 5. Gap-split counter, clamped.
	c := n.counterPrice(b, last)
	this := 0.0
	if B > 0 {
		this = float64(B-c) / B
	}
	inc := max(0.0, this-cum)
	newCum := cum + inc
	remaining := lim.TotalCap - cum
	// 6. Near the total cap, or on the last round: final position.
	if inc >= float64(remaining*0.8) || num == lim.MaxRounds {
		fp := max(F, float64(B*float64(1-lim.TotalCap)))
		fcon := 0.0
		if B > 0 {
			fcon = float64(B-fp) / B
		}
		if b >= fp {
			return Round{Number: num, BuyerPrice: b, SellerPrice: b, Action: ActionAccept,
				ConcessionPct: inc, CumulativeConcessionPct: newCum,
				Rationale: "Buyer price is acceptable within concession limits."}
		}
		return Round{Number: num, BuyerPrice: b, SellerPrice: Round2(fp), Action: ActionFinalOffer,
			ConcessionPct: fcon - cum, CumulativeConcessionPct: fcon,
			Rationale: "Final offer at $" + Fmt2(fp) + " CPM. This represents our maximum concession of " +
				Fmt0(float64(lim.TotalCap*100)) + "%."}
	}
	// 7. Counter.
	return Round{Number: num, BuyerPrice: b, SellerPrice: c, Action: ActionCounter,
		ConcessionPct: inc, CumulativeConcessionPct: newCum,
		Rationale: "Counter at $" + Fmt2(c) + " CPM (" + string(n.Strategy) + " strategy, round " +
			strconv.Itoa(num) + "/" + strconv.Itoa(lim.MaxRounds) + ")."}
}

// counterPrice is _generate_counter: gap split, per-round cap, total cap,
// floor, then Python rounding.
func (n *Negotiation) counterPrice(b, last float64) float64 {
	lim := n.Limits
	B := n.Base
	gap := last - b
	if gap <= 0 {
		return b
	}
	concession := float64(gap * lim.BuyerShare)
	c := last - concession
	maxDrop := float64(B * lim.PerRoundCap)
	if last-c > maxDrop {
		c = last - maxDrop
	}
	if B-c > float64(B*lim.TotalCap) {
		c = float64(B * float64(1-lim.TotalCap))
	}
	c = max(c, n.Floor)
	return Round2(c)
}

// Record appends a round and applies its status change: ACCEPT → accepted,
// REJECT → rejected; COUNTER and FINAL_OFFER keep the negotiation active.
func (n *Negotiation) Record(r Round) {
	n.Rounds = append(n.Rounds, r)
	switch r.Action {
	case ActionAccept:
		n.Status = StatusAccepted
	case ActionReject:
		n.Status = StatusRejected
	}
}

// Counter evaluates a buyer's counter (or buyer final_offer, which the seller
// treats identically) and records the seller's answer. It fails with
// ErrNotActive on a terminal negotiation, like the seller's 400.
func (n *Negotiation) Counter(buyerPrice float64) (Round, error) {
	if !n.Active() {
		return Round{}, fmt.Errorf("negotiation is %s, cannot counter: %w", n.Status, ErrNotActive)
	}
	r := n.Evaluate(buyerPrice)
	n.Record(r)
	return r, nil
}

// Accept records the buyer striking at the seller's last price (the base when
// no round exists). buyerPrice is the optional echo; nil records the seller's
// price. On a terminal negotiation nothing changes and changed is false; the
// returned round is then the last stored one.
func (n *Negotiation) Accept(buyerPrice *float64) (r Round, changed bool) {
	return n.terminal(ActionAccept, buyerPrice)
}

// Reject records the buyer walking away. On a terminal negotiation nothing
// changes and changed is false.
func (n *Negotiation) Reject() (r Round, changed bool) {
	return n.terminal(ActionReject, nil)
}

func (n *Negotiation) terminal(a Action, buyerPrice *float64) (Round, bool) {
	if !n.Active() {
		if len(n.Rounds) == 0 {
			return Round{}, false
		}
		return n.Rounds[len(n.Rounds)-1], false
	}
	sp := n.LastSellerPrice()
	bp := sp
	if buyerPrice != nil {
		bp = *buyerPrice
	}
	r := Round{Number: len(n.Rounds) + 1, BuyerPrice: bp, SellerPrice: sp, Action: a}
	if a == ActionAccept {
		r.Rationale = "Buyer accepted at $" + Fmt2(sp) + " CPM."
		n.Status = StatusAccepted
	} else {
		r.Rationale = "Buyer declined (walk-away)."
		n.Status = StatusRejected
	}
	n.Rounds = append(n.Rounds, r)
	return r, true
}
