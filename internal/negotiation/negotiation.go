// Package negotiation holds the buyer's negotiation strategies and a pure
// negotiation loop. Nothing here speaks HTTP: a Counterparty carries the moves
// to a seller, so the same loop runs against the real seller, the sandbox and
// a scripted test seller.
//
// A Strategy is asked for one move at a time given the whole State so far
// (prices, rounds, the seller's floor if known, the best competing quote), so
// it can be stateless and shared by concurrent negotiations. Three strategies
// exist: threshold (the reference's SimpleThresholdStrategy with its defects
// fixed), adaptive (reciprocal concessions and a seller-floor estimate) and
// competitive (adaptive, with the best competing quote as walk-away point and
// leverage).
package negotiation

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Seller actions in a Round, as the seller's wire protocol names them.
const (
	ActionCounter    = "counter"
	ActionFinalOffer = "final_offer"
	ActionAccept     = "accept"
	ActionReject     = "reject"
)

// Errors. Every error this package returns wraps one of them.
var (
	// ErrInvalidParams reports strategy parameters that cannot work
	// (negative step, max below target, no rounds, ...).
	ErrInvalidParams = errors.New("negotiation: invalid parameters")
	// ErrInvalidState reports a State a strategy cannot read (negative list
	// price, a round after the negotiation ended, ...).
	ErrInvalidState = errors.New("negotiation: invalid state")
	// ErrMissingSellerPrice reports a seller round without a usable price.
	// The reference read it as 0.0 and accepted; here it is an error.
	ErrMissingSellerPrice = errors.New("negotiation: seller round has no price")
	// ErrInvalidMove reports a move that breaks the loop's invariants (an
	// offer above max or at/above the seller's ask, a counter after a final
	// offer); Run refuses to send it.
	ErrInvalidMove = errors.New("negotiation: invalid move")
	// ErrUnknownStrategy reports a name New does not know.
	ErrUnknownStrategy = errors.New("negotiation: unknown strategy")
	// ErrSellerRound reports a seller reply Run cannot interpret.
	ErrSellerRound = errors.New("negotiation: bad seller round")
)

// Round is one seller response: the buyer's price it answered and the
// seller's price and action (SellerAction is the seller's move).
type Round struct {
	N            int
	BuyerPrice   float64
	SellerPrice  float64
	SellerAction string // ActionCounter, ActionFinalOffer, ActionAccept or ActionReject
}

// State is everything a strategy may look at before its next move.
type State struct {
	ListPrice       float64       // the seller's quoted/asking CPM at the start; 0 if unknown
	Floor           *float64      // the seller's negotiation floor CPM if known (the product's floor_cpm)
	FloorSource     string        // where Floor comes from, quoted in reasons ("product prod-x floor_cpm"); "" = "known floor"
	Target, Max     float64       // this deal's target and max CPM; 0 = the strategy's own (Max can only lower it)
	Rounds          []Round       // seller responses so far, oldest first
	SellerMaxRounds int           // the seller's round limit; 0 if unknown
	BestCompeting   *float64      // best competing CPM from other sellers for comparable inventory
	Elapsed         time.Duration // time spent so far
	Deadline        time.Duration // overall time budget; 0 = none
}

// MoveKind is what the buyer does next.
type MoveKind int

// The buyer's three possible moves.
const (
	Offer    MoveKind = iota // counter at Move.Price
	Accept                   // accept the seller's current ask
	WalkAway                 // end without agreement (a reject message)
)

// String names the move for logs and reasons.
func (k MoveKind) String() string {
	switch k {
	case Offer:
		return "offer"
	case Accept:
		return "accept"
	case WalkAway:
		return "walk_away"
	}
	return fmt.Sprintf("MoveKind(%d)", int(k))
}

// Move is the buyer's next move. Price is the offer for Offer, the seller's
// ask being accepted for Accept, and 0 for WalkAway.
type Move struct {
	Kind   MoveKind
	Price  float64
	Reason string
}

// Strategy decides the buyer's next move. Next with no rounds is the opening
// move. Implementations must be safe for concurrent use; the built-in ones
// are immutable values.
type Strategy interface {
	Name() string
	Next(State) (Move, error)
}

// Limiter is implemented by strategies that know their own target and max,
// so Run can guard moves even when State.Target/Max are left zero.
type Limiter interface {
	Limits() (target, max float64)
}

// tick is the smallest price step (one cent of CPM): offers are kept at
// least a tick below the seller's ask.
const tick = 0.01

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// cents rounds a price down to whole cents: the largest k/100 that is not
// above x, so a cent-rounded offer never exceeds the limit it was cut from
// (92.39999999999999 gives 92.39, not 92.40; 0.29 stays 0.29). The offer
// goes to the seller as k x 10,000 micros, exactly.
func cents(x float64) float64 {
	k := math.Floor(x*100 + 1e-6)
	for k > 0 && k/100 > x {
		k--
	}
	return k / 100
}

func fmtPrice(x float64) string { return fmt.Sprintf("%.2f", x) }

// view is a State digested for the built-in strategies.
type view struct {
	target, max float64 // effective limits
	k           int     // seller responses so far
	ask         float64 // the seller's current ask; 0 if unknown
	prevAsk     float64 // the ask before the current one (0 if none)
	lastOffer   float64 // the buyer's last offer (0 if none)
	lastAction  string  // the seller's last action ("" before any round)
	limit       int     // rounds the seller will evaluate: min(strategy, seller)
	floor       float64 // known floor (0 if unknown)
	floorSrc    string  // where the known floor comes from, for reasons
}

// effectiveLimits merges the strategy's limits with the State's: the State
// may lower the ceiling but never raise it, and the target never exceeds it.
func effectiveLimits(target, max float64, st State) (float64, float64) {
	if st.Max > 0 && finite(st.Max) && st.Max < max {
		max = st.Max
	}
	if st.Target > 0 && finite(st.Target) {
		target = st.Target
	}
	if target > max {
		target = max
	}
	return target, max
}

// readState validates st and digests it. rounds is the strategy's own round
// limit (seller responses).
func readState(st State, target, max float64, rounds int) (view, error) {
	v := view{limit: rounds}
	v.target, v.max = effectiveLimits(target, max, st)
	if !finite(st.ListPrice) || st.ListPrice < 0 {
		return v, fmt.Errorf("%w: list price %v", ErrInvalidState, st.ListPrice)
	}
	if st.Floor != nil {
		if !finite(*st.Floor) || *st.Floor < 0 {
			return v, fmt.Errorf("%w: floor %v", ErrInvalidState, *st.Floor)
		}
		v.floor = *st.Floor
		v.floorSrc = st.FloorSource
		if v.floorSrc == "" {
			v.floorSrc = "known floor"
		}
	}
	if st.SellerMaxRounds > 0 && st.SellerMaxRounds < v.limit {
		v.limit = st.SellerMaxRounds
	}
	v.ask = st.ListPrice
	for i, r := range st.Rounds {
		if r.SellerAction == ActionReject || r.SellerAction == ActionAccept {
			return v, fmt.Errorf("%w: round %d: the seller already answered %s", ErrInvalidState, i+1, r.SellerAction)
		}
		if r.SellerAction != ActionCounter && r.SellerAction != ActionFinalOffer {
			return v, fmt.Errorf("%w: round %d: seller action %q", ErrSellerRound, i+1, r.SellerAction)
		}
		if !finite(r.SellerPrice) || r.SellerPrice <= 0 {
			return v, fmt.Errorf("%w: round %d", ErrMissingSellerPrice, i+1)
		}
		v.prevAsk = v.ask
		if i == 0 {
			v.prevAsk = 0 // the list price is not a counter
		}
		v.ask = r.SellerPrice
		if finite(r.BuyerPrice) && r.BuyerPrice > 0 {
			v.lastOffer = r.BuyerPrice
		}
		v.lastAction = r.SellerAction
	}
	v.k = len(st.Rounds)
	return v, nil
}

func validLimits(target, max float64) error {
	if !finite(target) || !finite(max) || target <= 0 || max < target {
		return fmt.Errorf("%w: need max >= target > 0 (target %v, max %v)", ErrInvalidParams, target, max)
	}
	return nil
}
